//! Reading a webhook payload into chatbase-core's [`Verification`]: the flow the
//! extractor and the middleware share.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, HeaderMap, HeaderName};
use chatbase_core::observe::{Outcome, Recorder};
use chatbase_core::{ChatbaseEvent, Error, SIGNATURE_HEADER, Verification, Verifier};
use futures_util::StreamExt as _;

use crate::ChatbaseRejection;

/// A refused request: recorded on its span (and in the metrics), logged once.
pub(crate) fn refused(recorder: &Recorder, error: Error) -> ChatbaseRejection {
    recorder.record_error(&error);
    recorder
        .span()
        .in_scope(|| ChatbaseRejection::Rejected(error).logged())
}

/// A request that found no verifier: recorded, logged once at `ERROR`.
pub(crate) fn unverifiable(recorder: &Recorder) -> ChatbaseRejection {
    recorder.record(Outcome::Unavailable, "missing_verifier", None);
    recorder
        .span()
        .in_scope(|| ChatbaseRejection::MissingVerifier.logged())
}

/// An accepted request: recorded on its span (and in the metrics).
pub(crate) fn accepted(recorder: &Recorder, event: &ChatbaseEvent) {
    recorder.record(Outcome::Accepted, "none", Some(event.event_type()));
}

/// [`SIGNATURE_HEADER`] as a header name, so that looking it up does not parse
/// the name again for every request.
const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);

/// Step 1 of the core's flow, before any byte of the body is read: the
/// signature headers, then the announced `Content-Length`.
pub(crate) fn head(verifier: &Verifier, headers: &HeaderMap) -> Result<Verification, Error> {
    let signatures = headers.get_all(&SIGNATURE).map(|value| value.as_bytes());
    // actix-http refuses a malformed `Content-Length` itself; one that still
    // does not parse here is ignored, and the limit is enforced while reading.
    let content_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    verifier.head(signatures, content_length)
}

/// Steps 2 and 3: the payload chunk by chunk into the verification (which
/// stops it at the limit), then the HMAC, then the event.
pub(crate) async fn read_and_verify(
    mut verification: Verification,
    mut payload: Payload,
    limit: usize,
) -> Result<ChatbaseEvent, Error> {
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| match error {
            // A limit of actix-web's own, below ours.
            PayloadError::Overflow => Error::BodyTooLarge { limit },
            other => Error::read_body(other),
        })?;
        verification.chunk(chunk)?;
    }
    verification.finish().await
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::pin::Pin;
    use std::rc::Rc;

    use actix_web::test::TestRequest;
    use bytes::Bytes;
    use chatbase_core::{Secret, testing};
    use futures_util::{Stream, stream};

    use super::*;

    fn secret() -> Secret {
        Secret::new("body-test-secret").unwrap()
    }

    fn stream_payload(
        chunks: impl Stream<Item = Result<Bytes, PayloadError>> + 'static,
    ) -> Payload {
        let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(chunks);
        Payload::from(boxed)
    }

    fn verification(verifier: &Verifier, body: &[u8]) -> Verification {
        let signed = testing::sign_body(&secret(), body.to_vec());
        let request = TestRequest::post()
            .insert_header(signed.header())
            .to_http_request();
        head(verifier, request.headers()).unwrap()
    }

    #[actix_web::test]
    async fn a_chunked_body_stops_one_chunk_past_the_limit() {
        let pulled = Rc::new(Cell::new(0));
        let limit = 64 * 1024;
        let verifier = Verifier::new(secret()).with_body_limit(limit);
        let counter = Rc::clone(&pulled);
        let endless = stream_payload(stream::repeat_with(move || {
            counter.set(counter.get() + 1000);
            Ok::<_, PayloadError>(Bytes::from(vec![b' '; 1000]))
        }));
        let error = read_and_verify(verification(&verifier, b"{}"), endless, limit)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge { limit: 65536 }));
        assert!(
            pulled.get() > limit && pulled.get() <= limit + 1000,
            "{}",
            pulled.get()
        );
    }

    #[actix_web::test]
    async fn many_chunks_verify() {
        let body = testing::SAMPLE_LEADS_SUBMIT.as_bytes();
        let verifier = Verifier::new(secret());
        let chunks = body
            .chunks(7)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect::<Vec<_>>();
        let event = read_and_verify(
            verification(&verifier, body),
            stream_payload(stream::iter(chunks)),
            verifier.body_limit(),
        )
        .await
        .unwrap();
        assert_eq!(event.raw_body(), body);
    }

    #[actix_web::test]
    async fn stream_errors_are_400_and_overflow_is_413() {
        let verifier = Verifier::new(secret());
        let failing = |error: fn() -> PayloadError| {
            let chunks = stream::iter([Ok(Bytes::from_static(b"{")), Err(error())]);
            stream_payload(chunks)
        };
        let error = read_and_verify(
            verification(&verifier, b"{}"),
            failing(|| PayloadError::Incomplete(None)),
            100,
        )
        .await
        .unwrap_err();
        assert_eq!(error.reason(), "read_body");
        let error = read_and_verify(
            verification(&verifier, b"{}"),
            failing(|| PayloadError::Overflow),
            100,
        )
        .await
        .unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge { limit: 100 }));
    }

    #[test]
    fn head_refuses_an_announced_length_over_the_limit_after_the_signature() {
        let verifier = Verifier::new(secret()).with_body_limit(10);
        let signed = testing::sign_body(&secret(), "{}");
        let headers = |length: &str| {
            TestRequest::post()
                .insert_header(signed.header())
                .insert_header((CONTENT_LENGTH, length))
                .to_http_request()
                .headers()
                .clone()
        };
        assert!(head(&verifier, &headers("10")).is_ok());
        assert!(matches!(
            head(&verifier, &headers("11")),
            Err(Error::BodyTooLarge { limit: 10 })
        ));
        let unsigned = TestRequest::post()
            .insert_header((CONTENT_LENGTH, "11"))
            .to_http_request();
        assert!(matches!(
            head(&verifier, unsigned.headers()),
            Err(Error::MissingSignature)
        ));
        let twice = TestRequest::post()
            .append_header(signed.header())
            .append_header(signed.header())
            .to_http_request();
        assert!(matches!(
            head(&verifier, twice.headers()),
            Err(Error::MultipleSignatures)
        ));
    }
}
