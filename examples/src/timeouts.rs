//! [`Timeouts`]: how long a client may take, so that a slow or stalled one cannot
//! hold a connection forever.

use std::time::Duration;

/// How long a client may take to send a request's head (request line and
/// headers): 10 seconds. Then the connection is closed (actix-web answers 408
/// first). On the axum receiver it applies to every request of a connection, the
/// idle time before it included; actix-web applies it to the first request only,
/// so its receiver serves one request per connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request may take once its head has arrived — reading and
/// verifying the body and running the handler: 10 seconds. Then it is answered
/// with `408 Request Timeout` and the connection is closed. This is what stops a
/// client that sends the headers and then trickles the body, or never finishes it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the actix-web receiver keeps reading (and throwing away) what a
/// client still sends after the response, before closing: 1 second (actix-web's
/// default). It lets a client that is still sending an oversized body receive the
/// 413 instead of a connection reset. (chatbase-axum drains such bodies itself,
/// for 5 seconds at most.)
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a graceful shutdown waits for requests in flight: 30 seconds. New
/// connections are refused at once; requests already being served are given this
/// long to finish (each is bounded by [`REQUEST_TIMEOUT`] anyway).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request head (request line and headers) the axum receiver reads:
/// 64 KiB; a larger one is answered `431 Request Header Fields Too Large`, as is
/// one with more than 100 headers. (hyper's own default is about 400 KiB.)
pub const AXUM_MAX_HEADER_BYTES: usize = 64 * 1024;

/// The largest request head the actix-web receiver reads: 128 KiB, fixed by
/// actix-http; a larger one, or one with more than 96 headers, is answered
/// `431 Request Header Fields Too Large`.
pub const ACTIX_MAX_HEADER_BYTES: usize = 128 * 1024;

/// The receivers' timeouts: [`Timeouts::default()`] holds the constants of this
/// module. Tests shorten them to see a stalled client cut off without waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// [`HEADER_READ_TIMEOUT`].
    pub header_read: Duration,
    /// [`REQUEST_TIMEOUT`].
    pub request: Duration,
    /// [`DISCONNECT_TIMEOUT`] (actix-web only).
    pub disconnect: Duration,
    /// [`SHUTDOWN_TIMEOUT`].
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: HEADER_READ_TIMEOUT,
            request: REQUEST_TIMEOUT,
            disconnect: DISCONNECT_TIMEOUT,
            shutdown: SHUTDOWN_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_documented_constants() {
        let timeouts = Timeouts::default();
        assert_eq!(timeouts.header_read, Duration::from_secs(10));
        assert_eq!(timeouts.request, Duration::from_secs(10));
        assert_eq!(timeouts.disconnect, Duration::from_secs(1));
        assert_eq!(timeouts.shutdown, Duration::from_secs(30));
    }
}
