//! Reading a webhook body into chatbase-core's [`Verification`], and draining the
//! rest of a rejected one so that the client receives the rejection.
//!
//! [`Verification`]: chatbase_core::Verification

use std::time::Duration;

use axum_core::body::Body;
use chatbase_core::observe::{Outcome, Recorder};
use chatbase_core::{ChatbaseEvent, Error, SIGNATURE_HEADER, Verifier};
use http::header::EXPECT;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::task::JoinHandle;

use crate::ChatbaseRejection;

/// [`SIGNATURE_HEADER`] as a header name, so that looking it up does not parse
/// the name again for every request.
const SIGNATURE: http::HeaderName = http::HeaderName::from_static(SIGNATURE_HEADER);

/// Verifies a request and parses its body, in chatbase-core's order: the head
/// (signature header, announced length) before any of the body is read, then
/// the body frame by frame into the verification (which stops it at the limit),
/// then the HMAC, then the event.
///
/// A rejection is logged once. When it comes before the body was read to its
/// end, the rest is drained in the background so that the client receives it.
pub(crate) async fn verify(
    verifier: &Verifier,
    parts: &Parts,
    body: Body,
    recorder: &Recorder,
) -> Result<ChatbaseEvent, ChatbaseRejection> {
    read_and_verify(verifier, parts, body)
        .await
        .map_err(|error| {
            recorder.record_error(&error);
            ChatbaseRejection::Rejected(error).logged()
        })
}

async fn read_and_verify(
    verifier: &Verifier,
    parts: &Parts,
    mut body: Body,
) -> Result<ChatbaseEvent, Error> {
    let signatures = parts
        .headers
        .get_all(&SIGNATURE)
        .iter()
        .map(HeaderValue::as_bytes);
    // hyper announces a `Content-Length` as the body's size hint.
    let announced = body.size_hint().lower();
    let limit = verifier.body_limit();
    let mut verification = match verifier.head(signatures, Some(announced)) {
        Ok(verification) => verification,
        Err(error) => {
            drain_in_background(parts, body, 0, limit);
            return Err(error);
        }
    };
    let mut read = 0_usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Error::read_body)?;
        // Trailers carry nothing that is signed.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read = read.saturating_add(data.len());
        if let Err(error) = verification.chunk(data) {
            drain_in_background(parts, body, read, limit);
            return Err(error);
        }
    }
    verification.finish().await
}

/// Records an accepted request on its span (and in the metrics).
pub(crate) fn accepted(recorder: &Recorder, event: &ChatbaseEvent) {
    recorder.record(Outcome::Accepted, "none", Some(event.event_type()));
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
        while let Some(frame) = body.frame().await {
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
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use chatbase_core::{Secret, testing};
    use futures_util::stream;
    use http_body::{Frame, SizeHint};

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

    fn signed_parts(body: &[u8]) -> (Verifier, Parts) {
        let secret = Secret::new("body-test").unwrap();
        let signed = testing::sign_body(&secret, body.to_vec());
        let parts = request_parts(Version::HTTP_11, &[(SIGNATURE_HEADER, signed.signature())]);
        (Verifier::new(secret), parts)
    }

    #[tokio::test]
    async fn verifies_a_body_in_many_frames() {
        let body = testing::SAMPLE_LEADS_SUBMIT.as_bytes();
        let (verifier, parts) = signed_parts(body);
        let frames = body
            .chunks(10)
            .map(|chunk| Ok::<_, Infallible>(Bytes::copy_from_slice(chunk)));
        let event = verify(
            &verifier,
            &parts,
            Body::from_stream(stream::iter(frames)),
            &Recorder::new(),
        )
        .await
        .unwrap();
        assert_eq!(event.raw_body(), body);
    }

    #[tokio::test]
    async fn stops_reading_as_soon_as_the_limit_is_passed() {
        let (verifier, parts) = signed_parts(b"{}");
        // An endless body: reading it to the end would never finish.
        let (body, pulled) = counted(100, None);
        let rejection = verify(
            &verifier.with_body_limit(1000),
            &parts,
            body,
            &Recorder::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(rejection.reason(), "body_too_large");
        // Ten frames fit, the eleventh passes the limit. (On this
        // current-thread runtime the drain task has not run yet.)
        assert_eq!(pulled.load(Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn stream_errors_are_400() {
        let (verifier, parts) = signed_parts(b"{}");
        let frames = stream::iter([Ok(Bytes::from_static(b"{")), Err("client went away")]);
        let rejection = verify(
            &verifier,
            &parts,
            Body::from_stream(frames),
            &Recorder::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(rejection.reason(), "read_body");
        assert_eq!(rejection.status(), 400);
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
