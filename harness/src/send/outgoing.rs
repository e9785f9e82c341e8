//! [`Outgoing`] requests and the bodies `send` makes up.

use std::fmt;

use bytes::Bytes;
use chatbase_core::testing::LeadPayload;
use chatbase_core::{Lead, Secret, sign};
use reqwest::Method;
use serde::Serialize;

/// The `chatbotId` of the bodies made up here, unless told otherwise.
pub const DEFAULT_CHATBOT_ID: &str = "bot_example";

/// The customer email of [`sample_lead`].
const SAMPLE_EMAIL: &str = "ada@example.com";

/// What [`Outgoing::tampered`] puts in place of the sample lead's email.
pub const TAMPERED_EMAIL: &str = "mallory@example.net";

/// A webhook request to send: method, body, `x-chatbase-signature` and
/// `content-type`.
///
/// Its `Debug` shows neither the body (customer data) nor the signature (a
/// credential for that body).
#[derive(Clone)]
pub struct Outgoing {
    method: Method,
    body: Bytes,
    signature: Option<String>,
    content_type: Option<&'static str>,
}

impl Outgoing {
    /// `body`, signed with `secret` as Chatbase signs it: the lowercase hex
    /// HMAC-SHA1 of the exact bytes.
    pub fn signed(secret: &Secret, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let signature = sign(secret, &body);
        Self::with_signature(body, Some(signature))
    }

    /// `body` with a wrong signature: well-formed (40 hex digits) but not the
    /// signature of `body` under `secret` — it is that signature with its first
    /// digit changed, so it can never match by chance.
    pub fn badly_signed(secret: &Secret, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let mut signature = sign(secret, &body);
        let first = if signature.starts_with('0') { "1" } else { "0" };
        signature.replace_range(..1, first);
        Self::with_signature(body, Some(signature))
    }

    /// `body` with no `x-chatbase-signature` header at all.
    pub fn unsigned(body: impl Into<Bytes>) -> Self {
        Self::with_signature(body.into(), None)
    }

    /// `body` with exactly this `x-chatbase-signature` value (`None`: no header),
    /// whatever it is: to send a malformed one, or a signature made elsewhere.
    pub fn with_signature(body: impl Into<Bytes>, signature: Option<String>) -> Self {
        let body = body.into();
        Self {
            method: Method::POST,
            body,
            signature,
            content_type: Some("application/json"),
        }
    }

    /// The same signature with a changed body, as a man in the middle would send
    /// it: the sample lead's email becomes [`TAMPERED_EMAIL`]; any other body gets
    /// a space appended (still the same JSON, but not the same bytes).
    #[must_use]
    pub fn tampered(mut self) -> Self {
        let text = String::from_utf8_lossy(&self.body);
        self.body = if text.contains(SAMPLE_EMAIL) {
            Bytes::from(text.replacen(SAMPLE_EMAIL, TAMPERED_EMAIL, 1))
        } else {
            let mut body = self.body.to_vec();
            body.push(b' ');
            Bytes::from(body)
        };
        self
    }

    /// Sends it with `method` instead of `POST` (to see a 405, or a 401 behind a
    /// layer that guards every method).
    #[must_use]
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sends it without a `content-type` (Chatbase does not promise one).
    #[must_use]
    pub fn without_content_type(mut self) -> Self {
        self.content_type = None;
        self
    }

    /// The method: `POST` unless changed.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The body, byte for byte as it is sent.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The `x-chatbase-signature` value, if any. A credential for this body:
    /// don't log it.
    pub fn signature(&self) -> Option<&str> {
        self.signature.as_deref()
    }

    /// The `content-type`, if any: `application/json` unless removed.
    pub fn content_type(&self) -> Option<&'static str> {
        self.content_type
    }
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .field("signed", &self.signature.is_some())
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// A made-up lead, with `conversation_id`: Ada Lovelace, `ada@example.com`,
/// `+1 555 0100`.
pub fn sample_lead(conversation_id: &str) -> LeadPayload {
    LeadPayload {
        conversation_id: Some(conversation_id.to_owned()),
        customer_email: Some(SAMPLE_EMAIL.to_owned()),
        customer_name: Some("Ada Lovelace".to_owned()),
        customer_phone: Some("+1 555 0100".to_owned()),
    }
}

/// A realistic `leads.submit` body, compact and in Chatbase's field order:
/// `{"eventType":"leads.submit","chatbotId":...,"payload":{"conversationId":...,
/// "customerEmail":...,"customerName":...,"customerPhone":...}}`.
pub fn lead_body(chatbot_id: &str, conversation_id: &str) -> Bytes {
    envelope(Lead::EVENT_TYPE, chatbot_id, &sample_lead(conversation_id))
}

/// A body for `event_type`: [`lead_body`] for `leads.submit`; for any other type,
/// a payload with just the `conversationId`.
pub fn event_body(event_type: &str, chatbot_id: &str, conversation_id: &str) -> Bytes {
    #[derive(Serialize)]
    struct Conversation<'a> {
        #[serde(rename = "conversationId")]
        conversation_id: &'a str,
    }
    if event_type == Lead::EVENT_TYPE {
        lead_body(chatbot_id, conversation_id)
    } else {
        envelope(event_type, chatbot_id, &Conversation { conversation_id })
    }
}

fn envelope(event_type: &str, chatbot_id: &str, payload: &impl Serialize) -> Bytes {
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
    match serde_json::to_vec(&envelope) {
        Ok(body) => Bytes::from(body),
        // Strings and a `Lead` always serialize.
        Err(error) => unreachable!("a webhook body always serializes: {error}"),
    }
}

/// A fresh conversation id, `conv_` and 16 random hex digits, so that each
/// event sent can be told apart at the receiver.
pub fn new_conversation_id() -> String {
    let suffix = crate::random::hex(8).unwrap_or_else(|_| {
        // No OS randomness: the time and the process id still make it unique
        // enough to tell runs apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        format!("{:x}{:x}", nanos, std::process::id())
    });
    format!("conv_{suffix}")
}

#[cfg(test)]
mod tests {
    use chatbase_core::{Event, Verifier};

    use super::*;

    fn secret() -> Secret {
        Secret::new("outgoing-unit").unwrap()
    }

    fn verify(outgoing: &Outgoing) -> Result<chatbase_core::ChatbaseEvent, chatbase_core::Error> {
        Verifier::new(secret()).verify_and_parse(
            outgoing.body().clone(),
            outgoing.signature().map(str::as_bytes),
        )
    }

    #[test]
    fn lead_body_is_a_realistic_leads_submit_in_chatbase_order() {
        let body = lead_body("bot_1", "conv_1");
        assert_eq!(
            body,
            concat!(
                r#"{"eventType":"leads.submit","chatbotId":"bot_1","payload":{"#,
                r#""conversationId":"conv_1","customerEmail":"ada@example.com","#,
                r#""customerName":"Ada Lovelace","customerPhone":"+1 555 0100"}}"#
            )
        );
        let event = verify(&Outgoing::signed(&secret(), body)).unwrap();
        let Event::LeadsSubmit(lead) = event.event() else {
            panic!("not a lead")
        };
        assert_eq!(lead, sample_lead("conv_1"));
    }

    #[test]
    fn other_event_types_carry_the_conversation_id() {
        let body = event_body("conversations.end", "bot_2", "conv_2");
        assert_eq!(
            body,
            r#"{"eventType":"conversations.end","chatbotId":"bot_2","payload":{"conversationId":"conv_2"}}"#
        );
        assert_eq!(event_body("leads.submit", "b", "c"), lead_body("b", "c"));
    }

    #[test]
    fn signed_verifies_and_the_rest_do_not() {
        let body = lead_body("bot_1", "conv_1");
        let signed = Outgoing::signed(&secret(), body.clone());
        assert_eq!(signed.signature(), Some(sign(&secret(), &body).as_str()));
        assert_eq!(signed.method(), Method::POST);
        assert_eq!(signed.content_type(), Some("application/json"));
        verify(&signed).unwrap();

        let bad = Outgoing::badly_signed(&secret(), body.clone());
        let signature = bad.signature().unwrap();
        assert_eq!(signature.len(), 40);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(signature, signed.signature().unwrap());
        assert_eq!(&signature[1..], &signed.signature().unwrap()[1..]);
        assert!(matches!(
            verify(&bad),
            Err(chatbase_core::Error::SignatureMismatch)
        ));

        assert!(matches!(
            verify(&Outgoing::unsigned(body)),
            Err(chatbase_core::Error::MissingSignature)
        ));

        let tampered = signed.clone().tampered();
        assert_eq!(tampered.signature(), signed.signature());
        assert!(String::from_utf8_lossy(tampered.body()).contains(TAMPERED_EMAIL));
        assert!(matches!(
            verify(&tampered),
            Err(chatbase_core::Error::SignatureMismatch)
        ));
    }

    #[test]
    fn bad_signature_never_matches_whatever_its_first_digit() {
        // Find bodies whose real signature starts with '0' and with something else.
        let mut seen_zero = false;
        let mut seen_other = false;
        for n in 0..200 {
            let body = Bytes::from(format!("{{\"n\":{n}}}"));
            let real = sign(&secret(), &body);
            let bad = Outgoing::badly_signed(&secret(), body);
            assert_ne!(bad.signature(), Some(real.as_str()));
            seen_zero |= real.starts_with('0');
            seen_other |= !real.starts_with('0');
        }
        assert!(seen_zero && seen_other);
    }

    #[test]
    fn tampering_another_body_appends_a_space() {
        let tampered = Outgoing::signed(&secret(), "[1]").tampered();
        assert_eq!(tampered.body(), "[1] ");
        assert!(verify(&tampered).is_err());
    }

    #[test]
    fn method_and_content_type_can_change() {
        let outgoing = Outgoing::unsigned("x")
            .with_method(Method::GET)
            .without_content_type();
        assert_eq!(outgoing.method(), Method::GET);
        assert_eq!(outgoing.content_type(), None);
    }

    #[test]
    fn debug_hides_body_and_signature() {
        let outgoing = Outgoing::signed(&secret(), lead_body("b", "c"));
        let shown = format!("{outgoing:?}");
        assert!(!shown.contains("ada@"), "{shown}");
        assert!(!shown.contains(outgoing.signature().unwrap()), "{shown}");
        assert!(shown.contains("signed: true"), "{shown}");
    }

    #[test]
    fn conversation_ids_are_unique() {
        let one = new_conversation_id();
        assert!(one.starts_with("conv_"));
        assert_eq!(one.len(), "conv_".len() + 16);
        assert_ne!(one, new_conversation_id());
    }
}
