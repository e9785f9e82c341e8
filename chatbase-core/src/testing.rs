//! Helpers for testing code that receives Chatbase webhooks (feature `test-util`).
//!
//! Sign bodies the way Chatbase does, to drive your endpoint end to end, or build
//! verified [`ChatbaseEvent`]s to call your handler functions directly.
//! [`conformance`] is the request matrix every receiver must pass (401, 400, 413
//! and what must be delivered), ready to run against your server.
//!
//! ```
//! use chatbase_core::testing::{self, LeadPayload, SignedBody};
//! use chatbase_core::{Event, Secret, Verifier};
//!
//! // Drive an endpoint: a body and the header that signs it.
//! let secret = Secret::new("test-secret")?;
//! let lead = LeadPayload {
//!     conversation_id: Some("conv_42".to_owned()),
//!     ..LeadPayload::default()
//! };
//! let signed: SignedBody = testing::sign_body(&secret, testing::lead_body("bot_1", &lead));
//! let (name, value) = signed.header();
//! assert_eq!(name, "x-chatbase-signature");
//! let event = Verifier::new(secret).verify_and_parse(signed.body().clone(), Some(value.as_bytes()))?;
//! let Event::LeadsSubmit(received) = event.event() else { unreachable!() };
//! assert_eq!(received.conversation_id(), Some("conv_42"));
//! assert_eq!(received, lead);
//!
//! // Call a handler directly with a verified event.
//! fn on_event(event: &chatbase_core::ChatbaseEvent) -> bool {
//!     matches!(event.event(), Event::LeadsSubmit(_))
//! }
//! assert!(on_event(&testing::sample_event()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Test helpers fail the calling test on misuse, as assertions do.
#![allow(clippy::panic)]

use bytes::Bytes;
use serde::Serialize;

pub mod conformance;
pub mod logs;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;

use crate::{ChatbaseEvent, Error, Lead, SIGNATURE_HEADER, Secret, Verifier, sign};

/// A realistic `leads.submit` body, 167 bytes, in the shape of the example in
/// Chatbase's documentation.
pub const SAMPLE_LEADS_SUBMIT: &str = concat!(
    r#"{"eventType":"leads.submit","chatbotId":"xxxxxxxx","payload":{"#,
    r#""conversationId":"xxxxxxxx","customerEmail":"jo@acme.io","#,
    r#""customerName":"Example","customerPhone":"123"}}"#
);

/// A body and the `x-chatbase-signature` value that signs it.
#[derive(Debug, Clone)]
pub struct SignedBody {
    body: Bytes,
    signature: String,
}

impl SignedBody {
    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The signature: 40 lowercase hex digits.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The header to send: `("x-chatbase-signature", signature)`.
    pub fn header(&self) -> (&'static str, &str) {
        (SIGNATURE_HEADER, &self.signature)
    }

    /// The body and the signature.
    pub fn into_parts(self) -> (Bytes, String) {
        (self.body, self.signature)
    }
}

/// Signs `body` with `secret`, as Chatbase does.
pub fn sign_body(secret: &Secret, body: impl Into<Bytes>) -> SignedBody {
    let body = body.into();
    let signature = sign(secret, &body);
    SignedBody { body, signature }
}

/// A lead to put in a test body: the payload of a `leads.submit` event, owned.
///
/// Serializes to Chatbase's camelCase shape, leaving out the fields that are
/// `None`; compares equal to a received [`Lead`] with the same fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadPayload {
    /// `conversationId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// `customerEmail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// `customerName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// `customerPhone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_phone: Option<String>,
}

impl PartialEq<LeadPayload> for Lead<'_> {
    fn eq(&self, other: &LeadPayload) -> bool {
        self.conversation_id() == other.conversation_id.as_deref()
            && self.customer_email() == other.customer_email.as_deref()
            && self.customer_name() == other.customer_name.as_deref()
            && self.customer_phone() == other.customer_phone.as_deref()
    }
}

/// The sample lead of [`SAMPLE_LEADS_SUBMIT`].
pub fn sample_lead() -> LeadPayload {
    LeadPayload {
        conversation_id: Some("xxxxxxxx".to_owned()),
        customer_email: Some("jo@acme.io".to_owned()),
        customer_name: Some("Example".to_owned()),
        customer_phone: Some("123".to_owned()),
    }
}

/// A `leads.submit` body for `lead`, compact, in Chatbase's field order.
pub fn lead_body(chatbot_id: &str, lead: &LeadPayload) -> Bytes {
    event_body(Lead::EVENT_TYPE, chatbot_id, lead)
}

/// A body for any event type, for instance one this crate does not know yet.
pub fn event_body(event_type: &str, chatbot_id: &str, payload: &impl Serialize) -> Bytes {
    #[derive(Serialize)]
    struct Envelope<'a, P> {
        #[serde(rename = "eventType")]
        event_type: &'a str,
        #[serde(rename = "chatbotId")]
        chatbot_id: &'a str,
        payload: P,
    }
    let envelope = Envelope {
        event_type,
        chatbot_id,
        payload,
    };
    // Only a payload whose `Serialize` fails, or a map with non-string keys,
    // can fail here: both are bugs in the calling test.
    match serde_json::to_vec(&envelope) {
        Ok(body) => body.into(),
        Err(error) => panic!("test payload does not serialize to JSON: {error}"),
    }
}

/// A verified event for `body`: signs it with a throwaway secret and runs it
/// through a [`Verifier`], exactly as a request would go.
///
/// # Errors
///
/// [`Error::InvalidPayload`] if `body` is not a Chatbase event, and
/// [`Error::BodyTooLarge`] over the default limit.
pub fn event(body: impl Into<Bytes>) -> Result<ChatbaseEvent, Error> {
    let secret = throwaway_secret();
    let signed = sign_body(&secret, body);
    Verifier::new(secret).verify_and_parse(signed.body, Some(signed.signature.as_bytes()))
}

/// The verified event of [`SAMPLE_LEADS_SUBMIT`].
pub fn sample_event() -> ChatbaseEvent {
    match event(SAMPLE_LEADS_SUBMIT) {
        Ok(event) => event,
        Err(error) => panic!("the sample body is a valid event: {error}"),
    }
}

fn throwaway_secret() -> Secret {
    match Secret::new("chatbase-core test-util secret") {
        Ok(secret) => secret,
        Err(error) => panic!("the test secret is valid: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn sample_is_167_bytes_and_parses_to_the_sample_lead() {
        assert_eq!(SAMPLE_LEADS_SUBMIT.len(), 167);
        let event = sample_event();
        assert_eq!(event.chatbot_id(), Some("xxxxxxxx"));
        let Event::LeadsSubmit(lead) = event.event() else {
            panic!("not a lead")
        };
        assert_eq!(lead, sample_lead());
    }

    #[test]
    fn lead_body_is_the_sample_shape() {
        assert_eq!(
            lead_body("xxxxxxxx", &sample_lead()),
            SAMPLE_LEADS_SUBMIT.as_bytes()
        );
    }

    #[test]
    fn signed_body_verifies() {
        let secret = Secret::new("s").unwrap();
        let signed = sign_body(&secret, SAMPLE_LEADS_SUBMIT);
        assert_eq!(
            signed.signature(),
            sign(&secret, SAMPLE_LEADS_SUBMIT.as_bytes())
        );
        let (name, value) = signed.header();
        assert_eq!(name, SIGNATURE_HEADER);
        Verifier::new(secret)
            .verify(signed.body(), Some(value.as_bytes()))
            .unwrap();
    }

    #[test]
    fn event_rejects_what_is_not_an_event() {
        assert_eq!(event("[]").unwrap_err().status(), 400);
        let unknown = event(event_body("x.y", "b", &serde_json::json!({"k": 1}))).unwrap();
        assert_eq!(unknown.event_type(), "x.y");
    }
}
