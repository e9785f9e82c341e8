//! The bodies `chatbase send` makes up, and fresh conversation ids.

use bytes::Bytes;
use serde::Serialize;

/// The `chatbotId` of the bodies made up here, unless told otherwise.
pub const DEFAULT_CHATBOT_ID: &str = "bot_example";

/// The event type Chatbase sends today, and the default of `chatbase send`.
pub const LEADS_SUBMIT: &str = "leads.submit";

/// The customer email of the sample lead.
pub const SAMPLE_EMAIL: &str = "ada@example.com";

/// The customer phone of the sample lead.
pub const SAMPLE_PHONE: &str = "+1 555 0100";

/// What [`Outgoing::tampered`](super::Outgoing::tampered) puts in place of the
/// sample lead's email.
pub const TAMPERED_EMAIL: &str = "mallory@example.net";

/// The sample lead's payload, in Chatbase's field order.
#[derive(Serialize)]
struct SampleLead<'a> {
    #[serde(rename = "conversationId")]
    conversation_id: &'a str,
    #[serde(rename = "customerEmail")]
    customer_email: &'a str,
    #[serde(rename = "customerName")]
    customer_name: &'a str,
    #[serde(rename = "customerPhone")]
    customer_phone: &'a str,
}

/// A realistic `leads.submit` body, compact and in Chatbase's field order:
/// `{"eventType":"leads.submit","chatbotId":...,"payload":{"conversationId":...,
/// "customerEmail":"ada@example.com","customerName":"Ada Lovelace",
/// "customerPhone":"+1 555 0100"}}`.
pub fn lead_body(chatbot_id: &str, conversation_id: &str) -> Bytes {
    let lead = SampleLead {
        conversation_id,
        customer_email: SAMPLE_EMAIL,
        customer_name: "Ada Lovelace",
        customer_phone: SAMPLE_PHONE,
    };
    envelope(LEADS_SUBMIT, chatbot_id, &lead)
}

/// A body for `event_type`: [`lead_body`] for `leads.submit`; for any other
/// type, a payload with just the `conversationId`.
pub fn event_body(event_type: &str, chatbot_id: &str, conversation_id: &str) -> Bytes {
    #[derive(Serialize)]
    struct Conversation<'a> {
        #[serde(rename = "conversationId")]
        conversation_id: &'a str,
    }
    if event_type == LEADS_SUBMIT {
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
    // Structs of strings always serialize; an empty body is never reached.
    serde_json::to_vec(&envelope).map_or_else(|_| Bytes::new(), Bytes::from)
}

/// The body changed as a man in the middle would: the sample lead's email
/// becomes [`TAMPERED_EMAIL`]; any other body gets a space appended.
pub(crate) fn tamper(body: &Bytes) -> Bytes {
    let text = String::from_utf8_lossy(body);
    if text.contains(SAMPLE_EMAIL) {
        Bytes::from(text.replacen(SAMPLE_EMAIL, TAMPERED_EMAIL, 1))
    } else {
        let mut body = body.to_vec();
        body.push(b' ');
        Bytes::from(body)
    }
}

/// A fresh conversation id, `conv_` and 16 random hex digits, so that each
/// event sent can be told apart at the receiver.
pub fn new_conversation_id() -> String {
    let mut random = [0; 8];
    let suffix = match rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut random)
    {
        Ok(()) => hex::encode(random),
        // No OS randomness: the time and the process id still tell runs apart.
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            format!("{:x}{:x}", nanos, std::process::id())
        }
    };
    format!("conv_{suffix}")
}

#[cfg(test)]
mod tests {
    use chatbase_core::{Secret, Verifier, sign};

    use super::*;

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
        let secret = Secret::new("body-unit").unwrap();
        let signature = sign(&secret, &body);
        let event = Verifier::new(secret)
            .verify_and_parse(body, Some(signature.as_bytes()))
            .unwrap();
        assert_eq!(event.event_type(), LEADS_SUBMIT);
        assert_eq!(event.chatbot_id(), Some("bot_1"));
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
    fn tampering_changes_the_email_or_appends_a_space() {
        let tampered = tamper(&lead_body("b", "c"));
        assert!(String::from_utf8_lossy(&tampered).contains(TAMPERED_EMAIL));
        assert_eq!(tamper(&Bytes::from_static(b"[1]")), "[1] ");
    }

    #[test]
    fn conversation_ids_are_unique() {
        let one = new_conversation_id();
        assert!(one.starts_with("conv_"));
        assert_eq!(one.len(), "conv_".len() + 16);
        assert_ne!(one, new_conversation_id());
    }
}
