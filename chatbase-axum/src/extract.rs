//! The [`ChatbaseEvent`] extractor.

use std::ops::Deref;

use axum_core::extract::{FromRef, FromRequest, Request};
use chatbase_core::Verifier;

use crate::ChatbaseRejection;
use crate::verify::verify;

/// Extractor for a verified Chatbase webhook event.
///
/// It takes the [`Verifier`] from the router's state through [`FromRef`], reads
/// the raw body up to the verifier's limit (413 as soon as it is passed, whatever
/// the framing), checks the `x-chatbase-signature` header against those exact
/// bytes, and only then parses them. A request that fails any step is answered
/// with a [`ChatbaseRejection`] (401, 413 or 400) and never reaches the handler.
/// No `Content-Type` is required: Chatbase does not promise one.
///
/// It derefs to [`chatbase_core::ChatbaseEvent`]: [`event()`] to match on the
/// typed event, [`chatbot_id()`], and [`raw_body()`] for the bytes as signed.
///
/// Behind a [`ChatbaseLayer`](crate::ChatbaseLayer) it takes the event the layer
/// verified from the request extensions: no second read, hash or parse.
///
/// [`event()`]: chatbase_core::ChatbaseEvent::event
/// [`chatbot_id()`]: chatbase_core::ChatbaseEvent::chatbot_id
/// [`raw_body()`]: chatbase_core::ChatbaseEvent::raw_body
///
/// # Example
///
/// The state can be the [`Verifier`] itself, or a larger struct the verifier is
/// taken from with [`FromRef`]:
///
/// ```
/// use axum::{Router, extract::{FromRef, State}, http::StatusCode, routing::post};
/// use chatbase_axum::{ChatbaseEvent, Event, Verifier};
///
/// #[derive(Clone)]
/// struct AppState {
///     verifier: Verifier,
///     leads: LeadStore,
/// }
///
/// impl FromRef<AppState> for Verifier {
///     fn from_ref(state: &AppState) -> Self {
///         state.verifier.clone()
///     }
/// }
///
/// async fn webhook(State(state): State<AppState>, event: ChatbaseEvent) -> StatusCode {
///     match event.event() {
///         Event::LeadsSubmit(lead) => {
///             state.leads.save(event.chatbot_id(), lead.customer_email.as_deref());
///             StatusCode::NO_CONTENT
///         }
///         // Chatbase may add event types: acknowledge them, don't fail.
///         _ => StatusCode::NO_CONTENT,
///     }
/// }
///
/// # #[derive(Clone)] struct LeadStore;
/// # impl LeadStore { fn save(&self, _: Option<&str>, _: Option<&str>) {} }
/// # use chatbase_axum::Secret;
/// // In production: `Verifier::from_env()?`, which reads `CHATBASE_WEBHOOK_SECRET`.
/// let verifier = Verifier::new(Secret::new("secret-from-the-chatbase-dashboard")?);
/// let state = AppState { verifier, leads: LeadStore };
/// let app = Router::new().route("/webhooks/chatbase", post(webhook)).with_state(state);
/// # let _: Router = app;
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
    /// The verified event.
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
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ChatbaseRejection;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Put there by `ChatbaseLayer` after it verified this very request; only a
        // verifier can make a `chatbase_core::ChatbaseEvent`.
        if let Some(event) = req
            .extensions_mut()
            .remove::<chatbase_core::ChatbaseEvent>()
        {
            return Ok(Self(event));
        }
        let verifier = Verifier::from_ref(state);
        let (parts, body) = req.into_parts();
        verify(&verifier, &parts, body).await.map(Self)
    }
}

#[cfg(test)]
mod tests {
    use axum_core::body::Body;
    use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
    use chatbase_core::{Error, Event, SIGNATURE_HEADER, Secret};

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

    #[tokio::test]
    async fn verifies_then_parses() {
        let secret = Secret::new("extract-secret").unwrap();
        let signed = testing::sign_body(&secret, SAMPLE_LEADS_SUBMIT);
        let req = request(Some(signed.signature()), signed.body().clone());
        let event = ChatbaseEvent::from_request(req, &verifier()).await.unwrap();
        assert_eq!(event.event(), &Event::LeadsSubmit(testing::sample_lead()));
        assert_eq!(event.raw_body(), SAMPLE_LEADS_SUBMIT.as_bytes());
        assert_eq!(event.clone().into_inner(), event.0);
    }

    #[tokio::test]
    async fn rejects_unsigned_and_forged() {
        let unsigned = request(None, SAMPLE_LEADS_SUBMIT);
        let rejection = ChatbaseEvent::from_request(unsigned, &verifier())
            .await
            .unwrap_err();
        assert!(matches!(rejection.reason(), Error::MissingSignature));

        let forged = testing::sign_body(&Secret::new("other").unwrap(), SAMPLE_LEADS_SUBMIT);
        let req = request(Some(forged.signature()), forged.body().clone());
        let rejection = ChatbaseEvent::from_request(req, &verifier())
            .await
            .unwrap_err();
        assert!(matches!(rejection.reason(), Error::SignatureMismatch));
    }

    #[tokio::test]
    async fn signature_is_checked_before_the_announced_length() {
        let verifier = verifier().with_body_limit(10);
        let unsigned = request(None, SAMPLE_LEADS_SUBMIT);
        let rejection = ChatbaseEvent::from_request(unsigned, &verifier)
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), 401);
        let signed = request(Some(&"0".repeat(40)), SAMPLE_LEADS_SUBMIT);
        let rejection = ChatbaseEvent::from_request(signed, &verifier)
            .await
            .unwrap_err();
        assert!(matches!(
            rejection.reason(),
            Error::BodyTooLarge { limit: 10 }
        ));
    }

    #[tokio::test]
    async fn a_verified_event_in_the_extensions_is_taken_as_is() {
        // The body is neither read nor verified: it is not even signed.
        let mut req = request(None, Body::empty());
        req.extensions_mut().insert(testing::sample_event());
        let event = ChatbaseEvent::from_request(req, &verifier()).await.unwrap();
        assert_eq!(event.0, testing::sample_event());
    }
}
