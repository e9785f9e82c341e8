//! Reading a webhook body under the limit, and draining the rest of a rejected
//! one so that the client receives the rejection.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use axum_core::body::Body;
use bytes::{Bytes, BytesMut};
use http::header::EXPECT;
use http::request::Parts;
use http::{HeaderMap, Version};
use http_body::{Body as _, Frame};
use tokio::task::JoinHandle;

/// Why [`read_to_limit`] stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The body passed the limit after `read` bytes; the rest is still unread.
    TooLarge { read: usize },
    /// The body stream failed.
    Stream(axum_core::Error),
}

/// Reads the whole body, or stops as soon as more than `limit` bytes have
/// arrived. The body is borrowed so that the caller can still drain what is left.
///
/// A body sent in one frame (a `Content-Length` body that arrived in one read,
/// or an in-memory body) is returned without copying.
pub(crate) async fn read_to_limit(body: &mut Body, limit: usize) -> Result<Bytes, ReadError> {
    let capacity = body
        .size_hint()
        .exact()
        .and_then(|len| usize::try_from(len).ok())
        .filter(|&len| len <= limit)
        .unwrap_or(0);
    let mut read = 0_usize;
    let mut single: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(frame) = next_frame(body).await {
        // Trailers carry nothing that is signed.
        let Ok(data) = frame.map_err(ReadError::Stream)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        read = read.saturating_add(data.len());
        if read > limit {
            return Err(ReadError::TooLarge { read });
        }
        if joined.is_empty() {
            let Some(first) = single.take() else {
                single = Some(data);
                continue;
            };
            joined.reserve(capacity.max(first.len() + data.len()));
            joined.extend_from_slice(&first);
        }
        joined.extend_from_slice(&data);
    }
    Ok(single.unwrap_or_else(|| joined.freeze()))
}

async fn next_frame(body: &mut Body) -> Option<Result<Frame<Bytes>, axum_core::Error>> {
    poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

/// The most a rejected body is drained to, in bytes, counted from its first
/// byte: four times the limit, and at least [`MIN_DRAIN_BUDGET`].
const DRAIN_FACTOR: usize = 4;

/// The least a rejected body is drained to, so that a small limit still lets a
/// slightly oversized body through to its end.
const MIN_DRAIN_BUDGET: usize = 64 * 1024;

/// How long the rest of a rejected body is drained for at most.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Lets the client of a rejected request receive the response.
///
/// An HTTP/1 server that answers before the request body has been read can only
/// close the connection afterwards, and closing a socket with unread data resets
/// it: a client still sending then gets `EPIPE` or `ECONNRESET` instead of the
/// 401 or 413. So what is left of the body is read and thrown away in a
/// background task, as servers do with a "lingering close" — bounded in bytes
/// (the whole body at most four times the limit, at least 64 KiB) and in time
/// ([`DRAIN_TIMEOUT`]), after which the body is dropped and the connection
/// closed. Nothing is kept in memory; an attacker gets nothing it could not get by
/// sending a body within the limit.
///
/// Nothing is drained when the body is already complete; when the client waits
/// for `100 Continue` (it has sent no body, and reading would invite it to);
/// when the body announces more than the budget (it could not be drained to its
/// end anyway); over HTTP/2 and later, which stop an upload without closing the
/// connection; and outside a Tokio runtime.
///
/// Returns the drain task, if one was spawned.
pub(crate) fn drain_in_background(
    parts: &Parts,
    body: Body,
    read: usize,
    limit: usize,
) -> Option<JoinHandle<bool>> {
    if body.is_end_stream() || parts.version >= Version::HTTP_2 || expects_continue(&parts.headers)
    {
        return None;
    }
    let budget = limit.saturating_mul(DRAIN_FACTOR).max(MIN_DRAIN_BUDGET);
    let remaining = budget.checked_sub(read)?;
    if body.size_hint().lower() > u64::try_from(remaining).unwrap_or(u64::MAX) {
        tracing::debug!(
            budget,
            "not draining a rejected Chatbase webhook body larger than the drain budget"
        );
        return None;
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    Some(runtime.spawn(drain(body, remaining)))
}

/// Reads and discards `body` until it ends, fails, passes `budget` bytes or
/// [`DRAIN_TIMEOUT`] elapses. Returns whether the body was read to its end.
async fn drain(mut body: Body, budget: usize) -> bool {
    let discard = async {
        let mut left = budget;
        while let Some(frame) = next_frame(&mut body).await {
            let Ok(frame) = frame else {
                return false;
            };
            if let Some(data) = frame.data_ref() {
                let Some(rest) = left.checked_sub(data.len()) else {
                    return false;
                };
                left = rest;
            }
        }
        true
    };
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, discard)
        .await
        .unwrap_or(false);
    if !drained {
        tracing::debug!(
            "stopped draining a rejected Chatbase webhook body: over the budget, too slow \
             or broken; the connection will be closed"
        );
    }
    drained
}

/// Whether the client waits for `100 Continue` before sending the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use futures_util::stream;
    use http_body::SizeHint;

    use super::*;

    /// A body of `frames` frames of `size` bytes (`None`: endless) that counts the
    /// frames pulled from it, and may announce an exact length.
    struct Counted {
        size: usize,
        left: Option<usize>,
        announced: Option<u64>,
        pulled: Arc<AtomicUsize>,
    }

    impl http_body::Body for Counted {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if let Some(left) = &mut self.left {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                *left -= 1;
            }
            self.pulled.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; self.size])))))
        }

        fn size_hint(&self) -> SizeHint {
            self.announced.map(SizeHint::with_exact).unwrap_or_default()
        }
    }

    fn counted(size: usize, frames: Option<usize>) -> (Body, Arc<AtomicUsize>) {
        announced(size, frames, None)
    }

    fn announced(size: usize, frames: Option<usize>, len: Option<u64>) -> (Body, Arc<AtomicUsize>) {
        let pulled = Arc::new(AtomicUsize::new(0));
        let body = Counted {
            size,
            left: frames,
            announced: len,
            pulled: Arc::clone(&pulled),
        };
        (Body::new(body), pulled)
    }

    fn request_parts(version: Version, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::post("/").version(version);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn reads_a_body_in_many_frames() {
        let (mut body, _) = counted(10, Some(7));
        let bytes = read_to_limit(&mut body, 70).await.unwrap();
        assert_eq!(bytes, vec![b'x'; 70]);
    }

    #[tokio::test]
    async fn one_frame_is_not_copied() {
        let data = Bytes::from(vec![7_u8; 100]);
        let mut body = Body::from(data.clone());
        let bytes = read_to_limit(&mut body, 100).await.unwrap();
        assert_eq!(bytes.as_ptr(), data.as_ptr());
    }

    #[tokio::test]
    async fn empty_body_is_empty() {
        assert!(
            read_to_limit(&mut Body::empty(), 0)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn stops_as_soon_as_the_limit_is_passed() {
        // An endless body: reading it to the end would never finish.
        let (mut body, pulled) = counted(100, None);
        let error = read_to_limit(&mut body, 1000).await.unwrap_err();
        assert!(
            matches!(error, ReadError::TooLarge { read: 1100 }),
            "{error:?}"
        );
        assert_eq!(pulled.load(Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn stream_errors_are_reported() {
        let frames = stream::iter([Ok(Bytes::from_static(b"{")), Err("client went away")]);
        let mut body = Body::from_stream(frames);
        let error = read_to_limit(&mut body, 1000).await.unwrap_err();
        let ReadError::Stream(error) = error else {
            panic!("expected a stream error, got {error:?}");
        };
        assert_eq!(error.to_string(), "client went away");
    }

    #[tokio::test]
    async fn drain_reads_to_the_end_within_the_budget() {
        let (body, pulled) = counted(1000, Some(10));
        assert!(drain(body, 10_000).await);
        assert_eq!(pulled.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn drain_gives_up_past_the_budget() {
        let (body, pulled) = counted(1000, None);
        assert!(!drain(body, 10_000).await);
        assert_eq!(pulled.load(Ordering::SeqCst), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_on_a_stalled_body() {
        let stalled = Body::from_stream(stream::pending::<Result<Bytes, Infallible>>());
        // The clock is paused: the runtime jumps to the timeout.
        assert!(!drain(stalled, 10_000).await);
    }

    #[test]
    fn expect_continue_is_recognised_in_any_case() {
        let waits = request_parts(Version::HTTP_11, &[("expect", "100-Continue")]);
        assert!(expects_continue(&waits.headers));
        let sends = request_parts(Version::HTTP_11, &[]);
        assert!(!expects_continue(&sends.headers));
    }

    #[tokio::test]
    async fn drains_http1_bodies_within_the_budget() {
        let parts = request_parts(Version::HTTP_11, &[]);
        let (body, pulled) = counted(1024, Some(10));
        let task = drain_in_background(&parts, body, 0, 1024).unwrap();
        assert!(task.await.unwrap());
        assert_eq!(pulled.load(Ordering::SeqCst), 10);

        // A budget of 4 x 64 KiB: the 100 KiB already read and the 100 KiB left fit.
        let (body, pulled) = announced(1024, Some(100), Some(100 * 1024));
        let task = drain_in_background(&parts, body, 100 * 1024, 64 * 1024).unwrap();
        assert!(task.await.unwrap());
        assert_eq!(pulled.load(Ordering::SeqCst), 100);
    }

    #[tokio::test]
    async fn does_not_drain_when_it_should_not() {
        let cases = [
            ("HTTP/2", request_parts(Version::HTTP_2, &[]), 0),
            (
                "100-continue",
                request_parts(Version::HTTP_11, &[("expect", "100-continue")]),
                0,
            ),
            // Already past the budget (64 KiB for a small limit).
            (
                "over budget",
                request_parts(Version::HTTP_11, &[]),
                65 * 1024,
            ),
        ];
        for (case, parts, read) in cases {
            let (body, pulled) = counted(1024, Some(10));
            assert!(
                drain_in_background(&parts, body, read, 1024).is_none(),
                "{case}"
            );
            assert_eq!(pulled.load(Ordering::SeqCst), 0, "{case}");
        }
        // Nothing left to read.
        let parts = request_parts(Version::HTTP_11, &[]);
        assert!(drain_in_background(&parts, Body::empty(), 0, 1024).is_none());
    }

    #[tokio::test]
    async fn does_not_drain_a_body_announced_over_the_budget() {
        let parts = request_parts(Version::HTTP_11, &[]);
        let (body, pulled) = announced(1024, Some(100), Some(100 * 1024));
        assert!(drain_in_background(&parts, body, 0, 1024).is_none());
        assert_eq!(pulled.load(Ordering::SeqCst), 0);
        // Within the budget, the same body is drained.
        let (body, _) = announced(1024, Some(100), Some(100 * 1024));
        assert!(drain_in_background(&parts, body, 0, 32 * 1024).is_some());
    }

    #[test]
    fn outside_a_runtime_nothing_is_spawned() {
        let parts = request_parts(Version::HTTP_11, &[]);
        let (body, pulled) = counted(1024, Some(10));
        assert!(drain_in_background(&parts, body, 0, 1024).is_none());
        assert_eq!(pulled.load(Ordering::SeqCst), 0);
    }
}
