//! The [`ChatbaseEvent`] extractor.

use std::any::Any;
use std::ops::Deref;

use axum_core::extract::{FromRequest, Request};
use chatbase_core::Verifier;
use chatbase_core::observe::{Outcome, Recorder};
use tracing::Instrument as _;

use crate::ChatbaseRejection;
use crate::body::{accepted, verify};

/// Extractor for a verified Chatbase webhook event.
///
/// A handler that takes a `ChatbaseEvent` only ever runs for a correctly signed
/// Chatbase event: an unsigned, forged or oversized request, or a body that is
/// not an event, is answered with a [`ChatbaseRejection`] (401, 413 or 400)
/// and logged once, and the handler never sees it.
///
/// It derefs to [`chatbase_core::ChatbaseEvent`]: [`event()`] to match on the
/// typed event, [`chatbot_id()`], and [`raw_body()`] for the bytes as signed.
///
/// Where it gets the event, in this order:
///
/// 1. behind a [`VerifyChatbaseLayer`](crate::VerifyChatbaseLayer), the event
///    the layer verified (from the request extensions): nothing is read, hashed
///    or parsed again, and the router's state can be anything;
/// 2. otherwise it verifies the request itself, with the [`Verifier`] that is
///    the router's state (`.with_state(verifier)`), or one in the request
///    extensions (`.layer(Extension(verifier))`): it reads the raw body up to
///    the verifier's limit (413 as soon as it is passed), checks the
///    `x-chatbase-signature` header against those exact bytes, and only then
///    parses them.
///
/// With neither, the request is answered 500 and an `ERROR` line says what to
/// add. No `Content-Type` is required: Chatbase does not promise one.
///
/// [`event()`]: chatbase_core::ChatbaseEvent::event
/// [`chatbot_id()`]: chatbase_core::ChatbaseEvent::chatbot_id
/// [`raw_body()`]: chatbase_core::ChatbaseEvent::raw_body
///
/// # Example
///
/// ```
/// use axum::{Router, http::StatusCode, routing::post};
/// use chatbase_axum::{ChatbaseEvent, Event, Secret, Verifier};
///
/// async fn webhook(event: ChatbaseEvent) -> StatusCode {
///     match event.event() {
///         Event::LeadsSubmit(lead) => {
///             tracing::info!(conversation_id = lead.conversation_id(), "new lead");
///             StatusCode::NO_CONTENT
///         }
///         // Chatbase may add event types: acknowledge them, don't fail.
///         _ => StatusCode::NO_CONTENT,
///     }
/// }
///
/// // In production: `Verifier::from_env()?`, which reads `CHATBASE_WEBHOOK_SECRET`.
/// let verifier = Verifier::new(Secret::new("secret-from-the-chatbase-dashboard")?);
/// let app: Router = Router::new().route("/webhook", post(webhook)).with_state(verifier);
/// # Ok::<(), chatbase_axum::SecretError>(())
/// ```
///
/// With a state of your own, put the verifier in a layer:
///
/// ```
/// use axum::{Router, extract::State, routing::post};
/// use chatbase_axum::{ChatbaseEvent, Secret, Verifier, VerifyChatbaseLayer};
///
/// #[derive(Clone)]
/// struct AppState {/* a database pool... */}
///
/// async fn webhook(State(_state): State<AppState>, event: ChatbaseEvent) {
///     // store the event
///     # let _ = event;
/// }
///
/// let verifier = Verifier::new(Secret::new("secret-from-the-chatbase-dashboard")?);
/// let app: Router = Router::new()
///     .route("/webhook", post(webhook))
///     .layer(VerifyChatbaseLayer::new(verifier))
///     .with_state(AppState {});
/// # Ok::<(), chatbase_axum::SecretError>(())
/// ```
///
/// # No `Option<ChatbaseEvent>`
///
/// `Option<ChatbaseEvent>` is deliberately not an extractor: it would turn a
/// forged request into `None` and let it through. Take
/// `Result<ChatbaseEvent, ChatbaseRejection>` to handle rejections yourself.
///
/// ```compile_fail
/// # use axum::{Router, routing::post};
/// # use chatbase_axum::{ChatbaseEvent, Verifier};
/// async fn webhook(event: Option<ChatbaseEvent>) {}
///
/// # let verifier: Verifier = todo!();
/// let app: Router = Router::new().route("/webhook", post(webhook)).with_state(verifier);
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

impl<S> FromRequest<S> for ChatbaseEvent
where
    S: Send + Sync + 'static,
{
    type Rejection = ChatbaseRejection;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Put there by `VerifyChatbaseLayer` after it verified this very
        // request (and counted it); only a verifier can make a
        // `chatbase_core::ChatbaseEvent`.
        if let Some(event) = req
            .extensions_mut()
            .remove::<chatbase_core::ChatbaseEvent>()
        {
            return Ok(Self(event));
        }
        let recorder = Recorder::new();
        let (parts, body) = req.into_parts();
        // Borrowed, not cloned: a clone would be two more updates of the
        // verifier's shared reference count per request.
        let verifier = (state as &dyn Any)
            .downcast_ref::<Verifier>()
            .or_else(|| parts.extensions.get::<Verifier>());
        let Some(verifier) = verifier else {
            recorder.record(Outcome::Unavailable, "missing_verifier", None);
            return Err(recorder
                .span()
                .in_scope(|| ChatbaseRejection::MissingVerifier.logged()));
        };
        let event = verify(verifier, &parts, body, &recorder)
            .instrument(recorder.span().clone())
            .await?;
        accepted(&recorder, &event);
        Ok(Self(event))
    }
}

#[cfg(test)]
mod tests {
    use axum_core::body::Body;
    use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
    use chatbase_core::{Event, SIGNATURE_HEADER, Secret};

    use super::*;

    fn verifier() -> Verifier {
        Verifier::new(Secret::new("extract-secret").unwrap())
    }

    fn request(signature: Option<&str>, body: impl Into<Body>) -> Request {
        let mut builder = http::Request::post("/");
        if let Some(signature) = signature {
            builder = builder.header(SIGNATURE_HEADER, signature);
        }
        builder.body(body.into()).unwrap()
    }

    fn signed() -> Request {
        let secret = Secret::new("extract-secret").unwrap();
        let signed = testing::sign_body(&secret, SAMPLE_LEADS_SUBMIT);
        request(Some(signed.signature()), signed.body().clone())
    }

    #[tokio::test]
    async fn verifies_with_the_verifier_that_is_the_state() {
        let event = ChatbaseEvent::from_request(signed(), &verifier())
            .await
            .unwrap();
        let Event::LeadsSubmit(lead) = event.event() else {
            panic!("not a lead")
        };
        assert_eq!(lead, testing::sample_lead());
        assert_eq!(event.raw_body(), SAMPLE_LEADS_SUBMIT.as_bytes());
        assert_eq!(event.clone().into_inner(), event.0);
    }

    #[tokio::test]
    async fn verifies_with_a_verifier_in_the_extensions_whatever_the_state() {
        let mut req = signed();
        req.extensions_mut().insert(verifier());
        ChatbaseEvent::from_request(req, &"some other state")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn without_a_verifier_it_is_a_500() {
        let rejection = ChatbaseEvent::from_request(signed(), &())
            .await
            .unwrap_err();
        assert!(matches!(rejection, ChatbaseRejection::MissingVerifier));
        assert_eq!(rejection.status(), 500);
    }

    #[tokio::test]
    async fn rejects_unsigned_and_forged() {
        let unsigned = request(None, SAMPLE_LEADS_SUBMIT);
        let rejection = ChatbaseEvent::from_request(unsigned, &verifier())
            .await
            .unwrap_err();
        assert_eq!(rejection.reason(), "missing_signature");

        let forged = testing::sign_body(&Secret::new("other").unwrap(), SAMPLE_LEADS_SUBMIT);
        let req = request(Some(forged.signature()), forged.body().clone());
        let rejection = ChatbaseEvent::from_request(req, &verifier())
            .await
            .unwrap_err();
        assert_eq!(rejection.reason(), "signature_mismatch");
    }

    #[tokio::test]
    async fn two_signature_headers_are_refused() {
        let mut req = signed();
        let value = req.headers()[SIGNATURE_HEADER].clone();
        req.headers_mut().append(SIGNATURE_HEADER, value);
        let rejection = ChatbaseEvent::from_request(req, &verifier())
            .await
            .unwrap_err();
        assert_eq!(rejection.reason(), "multiple_signatures");
        assert_eq!(rejection.status(), 401);
    }

    #[tokio::test]
    async fn the_signature_is_checked_before_the_announced_length() {
        let verifier = verifier().with_body_limit(10);
        let unsigned = request(None, SAMPLE_LEADS_SUBMIT);
        let rejection = ChatbaseEvent::from_request(unsigned, &verifier)
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), 401);
        let forged = request(Some(&"0".repeat(40)), SAMPLE_LEADS_SUBMIT);
        let rejection = ChatbaseEvent::from_request(forged, &verifier)
            .await
            .unwrap_err();
        assert_eq!(rejection.reason(), "body_too_large");
    }

    #[tokio::test]
    async fn a_verified_event_in_the_extensions_is_taken_as_is() {
        // The body is neither read nor verified: it is not even signed, and
        // there is no verifier.
        let mut req = request(None, Body::empty());
        req.extensions_mut().insert(testing::sample_event());
        let event = ChatbaseEvent::from_request(req, &()).await.unwrap();
        assert_eq!(event.0, testing::sample_event());
    }
}
