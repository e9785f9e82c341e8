//! [`ChatbaseEvent`], the extractor, and the request flow it shares with the middleware.

use std::ops::{Deref, DerefMut};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use bytes::{Bytes, BytesMut};
use chatbase_core::{SIGNATURE_HEADER, Signature, Verifier};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;

use crate::ChatbaseError;

/// A verified Chatbase webhook event, as a handler argument.
///
/// Extracting it checks the `x-chatbase-signature` header, reads the body up to
/// the [`Verifier`]'s limit, verifies the HMAC-SHA1 of the raw bytes and only then
/// parses them, all through [`chatbase_core`]. A handler that takes a
/// `ChatbaseEvent` is never called for an unsigned or forged request: actix-web
/// answers with the [`ChatbaseError`] instead (401, 413 or 400, JSON body).
///
/// The verifier comes from app data: register it with
/// `.app_data(web::Data::new(verifier))` on the `App`, `Scope` or `Resource`
/// (a plain `.app_data(verifier)` works too; `Verifier` is cheap to clone). Without
/// one the request gets a 500 and an `ERROR` log line saying what to register.
/// Behind [`VerifyChatbase`](crate::VerifyChatbase) no verifier is needed here:
/// the middleware hands over the event it verified, which is not hashed or
/// parsed again.
///
/// It derefs to [`chatbase_core::ChatbaseEvent`]: call
/// [`event()`](chatbase_core::ChatbaseEvent::event) and match on the
/// [`Event`](crate::Event). There is no `Content-Type` requirement.
///
/// Don't take an `Option<ChatbaseEvent>` or a `Result<ChatbaseEvent, _>`: actix-web
/// implements both for every extractor, and they would hand your handler a
/// forged request as `None` or `Err`.
///
/// # Example
///
/// ```
/// use actix_web::{App, HttpResponse, test, web};
/// use chatbase_actix::{ChatbaseEvent, Event, Secret, Verifier};
///
/// async fn on_event(event: ChatbaseEvent) -> HttpResponse {
///     match event.event() {
///         Event::LeadsSubmit(lead) => HttpResponse::Ok().body(format!(
///             "lead in {}",
///             lead.conversation_id.as_deref().unwrap_or("?")
///         )),
///         other => HttpResponse::Ok().body(format!("ignored {}", other.event_type())),
///     }
/// }
///
/// # actix_web::rt::System::new().block_on(async {
/// let verifier = Verifier::new(Secret::new("secret-from-the-chatbase-dashboard")?);
/// let app = test::init_service(
///     App::new()
///         .app_data(web::Data::new(verifier))
///         .route("/webhook", web::post().to(on_event)),
/// )
/// .await;
///
/// // An unsigned request never reaches `on_event`.
/// let request = test::TestRequest::post().uri("/webhook").set_payload("{}").to_request();
/// assert_eq!(test::call_service(&app, request).await.status(), 401);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ChatbaseEvent(pub chatbase_core::ChatbaseEvent);

impl ChatbaseEvent {
    /// The verified event from chatbase-core.
    pub fn into_inner(self) -> chatbase_core::ChatbaseEvent {
        self.0
    }
}

impl Deref for ChatbaseEvent {
    type Target = chatbase_core::ChatbaseEvent;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for ChatbaseEvent {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<chatbase_core::ChatbaseEvent> for ChatbaseEvent {
    fn from(event: chatbase_core::ChatbaseEvent) -> Self {
        Self(event)
    }
}

impl FromRequest for ChatbaseEvent {
    type Error = ChatbaseError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Behind `VerifyChatbase`: the event is verified and parsed already.
        if let Some(Verified(event)) = req.extensions().get::<Verified>() {
            return Box::pin(std::future::ready(Ok(Self(event.clone()))));
        }
        let Some(verifier) = verifier_from_app_data(req) else {
            let error = ChatbaseError::MissingVerifier;
            error.log();
            return Box::pin(std::future::ready(Err(error)));
        };
        let verifier = verifier.clone();
        let signature = match check_head(&verifier, req.headers()) {
            Ok(signature) => signature,
            Err(error) => return Box::pin(std::future::ready(Err(reject(error)))),
        };
        let payload = payload.take();
        Box::pin(async move {
            read_and_verify(&verifier, &signature, payload)
                .await
                .map(Self)
                .map_err(reject)
        })
    }
}

/// The event [`VerifyChatbase`](crate::VerifyChatbase) verified, in the request
/// extensions. A private type, so nothing else can put an event there.
#[derive(Clone)]
pub(crate) struct Verified(pub(crate) chatbase_core::ChatbaseEvent);

/// The verifier registered as `Verifier` or `web::Data<Verifier>`, the way
/// actix-web looks up its own extractor configurations.
fn verifier_from_app_data(req: &HttpRequest) -> Option<&Verifier> {
    req.app_data::<Verifier>().or_else(|| {
        req.app_data::<web::Data<Verifier>>()
            .map(web::Data::get_ref)
    })
}

/// Logs a rejection once and turns it into the error the extractor and the
/// middleware answer with.
pub(crate) fn reject(error: chatbase_core::Error) -> ChatbaseError {
    let error = ChatbaseError::Rejected(error);
    error.log();
    error
}

/// Step 1 of the core's flow, before any byte of the body is read: the signature
/// header, then the announced `Content-Length`.
pub(crate) fn check_head(
    verifier: &Verifier,
    headers: &HeaderMap,
) -> Result<Signature, chatbase_core::Error> {
    let signature = headers.get(SIGNATURE_HEADER).map(|value| value.as_bytes());
    // actix-http refuses a malformed `Content-Length` itself; any that still does
    // not parse here is ignored, and the limit is enforced while reading.
    let content_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    verifier.check_head(signature, content_length)
}

/// Steps 2 and 3: read the body under the limit, then verify and parse it.
pub(crate) async fn read_and_verify(
    verifier: &Verifier,
    signature: &Signature,
    payload: Payload,
) -> Result<chatbase_core::ChatbaseEvent, chatbase_core::Error> {
    let body = read_body(payload, verifier.body_limit()).await?;
    verifier.verify_event(signature, body)
}

/// Reads the whole payload, stopping with [`chatbase_core::Error::BodyTooLarge`]
/// as soon as it passes `limit`: no more than one chunk past the limit is ever
/// pulled, whether the length was announced or not.
pub(crate) async fn read_body(
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, chatbase_core::Error> {
    let too_large = || chatbase_core::Error::BodyTooLarge { limit };
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| match error {
            PayloadError::Overflow => too_large(),
            other => chatbase_core::Error::read_body(other),
        })?;
        if chunk.len() > limit.saturating_sub(body.len()) {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::pin::Pin;
    use std::rc::Rc;

    use actix_web::test::TestRequest;
    use chatbase_core::{Event, Secret, testing};
    use futures_util::{Stream, stream};

    use super::*;

    fn secret() -> Secret {
        Secret::new("extract-test-secret").unwrap()
    }

    fn stream_payload(
        chunks: impl Stream<Item = Result<Bytes, PayloadError>> + 'static,
    ) -> Payload {
        let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(chunks);
        Payload::from(boxed)
    }

    /// A payload of `chunk`-byte chunks that never ends, counting the bytes pulled.
    fn endless(chunk: usize, pulled: Rc<Cell<usize>>) -> Payload {
        let chunks = stream::repeat_with(move || {
            pulled.set(pulled.get() + chunk);
            Ok::<_, PayloadError>(Bytes::from(vec![b' '; chunk]))
        });
        stream_payload(chunks)
    }

    #[actix_web::test]
    async fn extracts_a_signed_event() {
        let signed = testing::sign_body(&secret(), testing::SAMPLE_LEADS_SUBMIT);
        let (req, mut payload) = TestRequest::post()
            .app_data(web::Data::new(Verifier::new(secret())))
            .insert_header(signed.header())
            .set_payload(signed.body().clone())
            .to_http_parts();
        let event = ChatbaseEvent::from_request(&req, &mut payload)
            .await
            .unwrap();
        assert_eq!(event.event(), &Event::LeadsSubmit(testing::sample_lead()));
        assert_eq!(event.raw_body(), signed.body());
    }

    #[actix_web::test]
    async fn a_plain_verifier_in_app_data_works_too() {
        let signed = testing::sign_body(&secret(), testing::SAMPLE_LEADS_SUBMIT);
        let (req, mut payload) = TestRequest::post()
            .app_data(Verifier::new(secret()))
            .insert_header(signed.header())
            .set_payload(signed.body().clone())
            .to_http_parts();
        ChatbaseEvent::from_request(&req, &mut payload)
            .await
            .unwrap();
    }

    #[actix_web::test]
    async fn without_a_verifier_it_is_a_500() {
        let signed = testing::sign_body(&secret(), testing::SAMPLE_LEADS_SUBMIT);
        let (req, mut payload) = TestRequest::post()
            .insert_header(signed.header())
            .set_payload(signed.body().clone())
            .to_http_parts();
        let error = ChatbaseEvent::from_request(&req, &mut payload)
            .await
            .unwrap_err();
        assert!(matches!(error, ChatbaseError::MissingVerifier));
    }

    #[actix_web::test]
    async fn a_verified_event_in_the_extensions_is_taken_as_is() {
        // No verifier and no signature: only the middleware's hand-over can succeed.
        let (req, mut payload) = TestRequest::post().to_http_parts();
        req.extensions_mut()
            .insert(Verified(testing::sample_event()));
        let event = ChatbaseEvent::from_request(&req, &mut payload)
            .await
            .unwrap();
        assert_eq!(event.into_inner(), testing::sample_event());
        // Extracting twice in one handler gives the same event.
        assert!(
            ChatbaseEvent::from_request(&req, &mut payload)
                .await
                .is_ok()
        );
    }

    #[actix_web::test]
    async fn a_chunked_body_stops_one_chunk_past_the_limit() {
        let pulled = Rc::new(Cell::new(0));
        let limit = 64 * 1024;
        let signed = testing::sign_body(&secret(), "{}");
        let (req, _) = TestRequest::post()
            .app_data(web::Data::new(
                Verifier::new(secret()).with_body_limit(limit),
            ))
            .insert_header(signed.header())
            .to_http_parts();
        let mut payload = endless(1000, Rc::clone(&pulled));
        let error = ChatbaseEvent::from_request(&req, &mut payload)
            .await
            .unwrap_err();
        assert!(matches!(
            error.rejection(),
            Some(chatbase_core::Error::BodyTooLarge { limit: 65536 })
        ));
        assert!(
            pulled.get() > limit && pulled.get() <= limit + 1000,
            "{}",
            pulled.get()
        );
    }

    #[actix_web::test]
    async fn read_body_accepts_exactly_the_limit() {
        let payload = Payload::from(Bytes::from_static(b"12345"));
        assert_eq!(read_body(payload, 5).await.unwrap(), "12345");
        let payload = Payload::from(Bytes::from_static(b"123456"));
        assert!(matches!(
            read_body(payload, 5).await,
            Err(chatbase_core::Error::BodyTooLarge { limit: 5 })
        ));
    }

    #[actix_web::test]
    async fn stream_errors_are_400_and_overflow_is_413() {
        let failing = |error: fn() -> PayloadError| {
            let chunks = stream::iter([Ok(Bytes::from_static(b"{")), Err(error())]);
            stream_payload(chunks)
        };
        let error = read_body(failing(|| PayloadError::Incomplete(None)), 100)
            .await
            .unwrap_err();
        assert!(matches!(error, chatbase_core::Error::ReadBody(_)));
        assert_eq!(error.status(), 400);
        let error = read_body(failing(|| PayloadError::Overflow), 100)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            chatbase_core::Error::BodyTooLarge { limit: 100 }
        ));
    }

    #[test]
    fn check_head_refuses_an_announced_length_over_the_limit() {
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
        assert!(check_head(&verifier, &headers("10")).is_ok());
        assert!(matches!(
            check_head(&verifier, &headers("11")),
            Err(chatbase_core::Error::BodyTooLarge { limit: 10 })
        ));
        // Unsigned comes first, whatever the length.
        let unsigned = TestRequest::post()
            .insert_header((CONTENT_LENGTH, "11"))
            .to_http_request();
        assert!(matches!(
            check_head(&verifier, unsigned.headers()),
            Err(chatbase_core::Error::MissingSignature)
        ));
    }
}
