//! The [`ChatbaseEvent`] extractor.

use std::future::ready;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chatbase_core::Verifier;
use futures_util::future::LocalBoxFuture;

use tracing::Instrument as _;

use crate::ChatbaseRejection;
use crate::body::{accepted, head, read_and_verify, refused, unverifiable};

/// Extractor for a verified Chatbase webhook event.
///
/// A handler that takes a `ChatbaseEvent` only ever runs for a correctly signed
/// Chatbase event: an unsigned, forged or oversized request, or a body that is
/// not an event, is answered with a [`ChatbaseRejection`] (401, 413 or 400,
/// JSON body) and logged once, and the handler never sees it.
///
/// It derefs to [`chatbase_core::ChatbaseEvent`]: call
/// [`event()`](chatbase_core::ChatbaseEvent::event) and match on the
/// [`Event`](crate::Event). There is no `Content-Type` requirement.
///
/// Where it gets the event, in this order:
///
/// 1. behind [`VerifyChatbase`](crate::VerifyChatbase), the event the
///    middleware verified (from the request extensions): nothing is read,
///    hashed or parsed again, and no verifier need be registered;
/// 2. otherwise it verifies the request itself with the [`Verifier`] registered
///    as app data, `.app_data(web::Data::new(verifier))` (or a plain
///    `.app_data(verifier)`) on the `App`, `Scope` or `Resource`: it reads the
///    body up to the verifier's limit, verifies the HMAC-SHA1 of the raw bytes
///    and only then parses them.
///
/// With neither, the request is answered 500 and an `ERROR` line says what to
/// register.
///
/// Don't take an `Option<ChatbaseEvent>` or a `Result<ChatbaseEvent, _>`:
/// actix-web implements both for every extractor, and they would hand your
/// handler a forged request as `None` or `Err`.
///
/// Without the middleware, take the event once per handler, and no other
/// extractor that reads the body: the event consumes the payload (which a
/// second body extractor then finds empty), and actix-web builds a handler's
/// extractors together, so the event is not in the extensions yet for
/// `web::ReqData`. The bytes as signed are in
/// [`raw_body()`](chatbase_core::ChatbaseEvent::raw_body). Behind
/// [`VerifyChatbase`](crate::VerifyChatbase), every combination works.
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
///             lead.conversation_id().unwrap_or("?")
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

impl From<chatbase_core::ChatbaseEvent> for ChatbaseEvent {
    fn from(event: chatbase_core::ChatbaseEvent) -> Self {
        Self(event)
    }
}

impl FromRequest for ChatbaseEvent {
    type Error = ChatbaseRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Put there by `VerifyChatbase` after it verified this very request;
        // only a verifier can make a `chatbase_core::ChatbaseEvent`. Cloned, not
        // taken: actix-web shares one request between a handler's extractors.
        if let Some(event) = req.extensions().get::<chatbase_core::ChatbaseEvent>() {
            return Box::pin(ready(Ok(Self(event.clone()))));
        }
        let recorder = chatbase_core::observe::Recorder::new();
        let Some(verifier) = verifier_from_app_data(req) else {
            return Box::pin(ready(Err(unverifiable(&recorder))));
        };
        let limit = verifier.body_limit();
        let verification = match head(verifier, req.headers()) {
            Ok(verification) => verification,
            Err(error) => return Box::pin(ready(Err(refused(&recorder, error)))),
        };
        let payload = payload.take();
        let verifying =
            read_and_verify(verification, payload, limit).instrument(recorder.span().clone());
        Box::pin(async move {
            match verifying.await {
                Ok(event) => {
                    accepted(&recorder, &event);
                    Ok(Self(event))
                }
                Err(error) => Err(refused(&recorder, error)),
            }
        })
    }
}

/// The verifier registered as `Verifier` or `web::Data<Verifier>`, the way
/// actix-web looks up its own extractor configurations.
pub(crate) fn verifier_from_app_data(req: &HttpRequest) -> Option<&Verifier> {
    req.app_data::<Verifier>().or_else(|| {
        req.app_data::<web::Data<Verifier>>()
            .map(web::Data::get_ref)
    })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use chatbase_core::{Event, Secret, testing};

    use super::*;

    fn secret() -> Secret {
        Secret::new("extract-test-secret").unwrap()
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
        let Event::LeadsSubmit(lead) = event.event() else {
            panic!("not a lead")
        };
        assert_eq!(lead, testing::sample_lead());
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
        assert!(matches!(error, ChatbaseRejection::MissingVerifier));
    }

    #[actix_web::test]
    async fn a_verified_event_in_the_extensions_is_taken_as_is() {
        // No verifier and no signature: only the middleware's hand-over can succeed.
        let (req, mut payload) = TestRequest::post().to_http_parts();
        req.extensions_mut().insert(testing::sample_event());
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
}
