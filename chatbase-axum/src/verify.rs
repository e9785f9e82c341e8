//! The request flow the extractor and the layer share: head, body, verification.

use axum_core::body::Body;
use axum_core::extract::Request;
use chatbase_core::{ChatbaseEvent, Error, SIGNATURE_HEADER, Verifier};
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http_body::Body as _;

use crate::ChatbaseRejection;
use crate::body::{ReadError, drain_in_background, read_to_limit};

/// Verifies a request and parses its body, in chatbase-core's order:
///
/// 1. [`Verifier::check_head`] with the signature header and the length the body
///    announces (hyper takes it from `Content-Length`), before reading anything;
/// 2. reads the body, stopping as soon as it passes the verifier's limit;
/// 3. [`Verifier::verify_event`]: hashes, then parses.
///
/// A rejection is logged once. When it comes before the body was read to its
/// end, the rest is drained in the background so that the client receives it.
pub(crate) async fn verify(
    verifier: &Verifier,
    parts: &Parts,
    body: Body,
) -> Result<ChatbaseEvent, ChatbaseRejection> {
    run(verifier, parts, body)
        .await
        .map_err(ChatbaseRejection::logged)
}

async fn run(verifier: &Verifier, parts: &Parts, mut body: Body) -> Result<ChatbaseEvent, Error> {
    let limit = verifier.body_limit();
    let header = parts
        .headers
        .get(SIGNATURE_HEADER)
        .map(HeaderValue::as_bytes);
    let signature = match verifier.check_head(header, Some(body.size_hint().lower())) {
        Ok(signature) => signature,
        Err(error) => {
            drain_in_background(parts, body, 0, limit);
            return Err(error);
        }
    };
    let bytes = match read_to_limit(&mut body, limit).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge { read }) => {
            drain_in_background(parts, body, read, limit);
            return Err(Error::BodyTooLarge { limit });
        }
        Err(ReadError::Stream(error)) => return Err(Error::read_body(error)),
    };
    verifier.verify_event(&signature, bytes)
}

/// Verifies `request` and hands it on: the verified event in its extensions,
/// its body replaced by the verified bytes, and `content-type: application/json`
/// if it had no content type (the body is a JSON object now; Chatbase does not
/// promise the header, and axum's `Json` requires it).
pub(crate) async fn verified_request(
    verifier: &Verifier,
    request: Request,
) -> Result<Request, ChatbaseRejection> {
    let (mut parts, body) = request.into_parts();
    let event = verify(verifier, &parts, body).await?;
    let body = Body::from(event.raw_body().clone());
    parts.extensions.insert(event);
    parts
        .headers
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    Ok(Request::from_parts(parts, body))
}
