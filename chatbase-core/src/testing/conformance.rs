//! The request matrix every receiver must pass: one table, shared by the axum and
//! actix-web adapters' tests, and usable for your own server or adapter.
//!
//! Each [`Case`] is a request to send — a body, an optional
//! `x-chatbase-signature` value, an optional content type — and what must come of
//! it: delivered to the handler as an event of some type, or rejected with a
//! status before the handler runs. How to send it (and whether to send the body
//! with a `Content-Length` or chunked) is up to the test.
//!
//! ```
//! use bytes::Bytes;
//! use chatbase_core::testing::conformance::{self, Expected};
//! use chatbase_core::{Secret, Verifier};
//!
//! let secret = Secret::new("conformance")?;
//! let verifier = Verifier::new(secret.clone()).with_body_limit(4096);
//! for case in conformance::cases(&secret, verifier.body_limit()) {
//!     // Here: `Verifier` directly. For a server: send the request, check the answer.
//!     let outcome = verifier.verify_and_parse(case.body.clone(), case.signature.as_deref().map(str::as_bytes));
//!     match (&case.expected, outcome) {
//!         (Expected::Delivered { event_type, .. }, Ok(event)) => assert_eq!(event.event_type(), *event_type),
//!         (Expected::Rejected { status }, Err(error)) => assert_eq!(error.status(), *status, "{}", case.name),
//!         (expected, outcome) => panic!("{}: expected {expected:?}, got {outcome:?}", case.name),
//!     }
//! }
//! # Ok::<(), chatbase_core::SecretError>(())
//! ```

use bytes::Bytes;
use serde_json::json;

use super::{SAMPLE_LEADS_SUBMIT, event_body};
use crate::{Lead, Secret, sign};

/// One request of the matrix.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Case {
    /// What the case is about, for assertion messages: `"39 hex digits"`.
    pub name: &'static str,
    /// The `x-chatbase-signature` value to send; `None`: send no such header.
    pub signature: Option<String>,
    /// The `content-type` to send; `None`: send none (Chatbase does not promise one).
    pub content_type: Option<&'static str>,
    /// The body, byte for byte.
    pub body: Bytes,
    /// What must come of it.
    pub expected: Expected,
}

/// What must come of a [`Case`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    /// The handler runs once, with an event of this type from this chatbot, whose
    /// raw body is the case's body.
    Delivered {
        /// The `eventType` the handler sees.
        event_type: &'static str,
        /// The `chatbotId` the handler sees.
        chatbot_id: Option<&'static str>,
    },
    /// The request is answered with this status (and a JSON `{"message"}` body);
    /// the handler never runs.
    Rejected {
        /// 401, 400 or 413.
        status: u16,
    },
}

/// The matrix for a receiver verifying with `secret` under a body limit of
/// `limit` bytes (at least the sample's 167).
///
/// Delivered: a valid `leads.submit`; the same signed in upper-case hex; an
/// unknown event type; no content type; a lead with missing and null fields; no
/// `payload` and no `chatbotId`; a body exactly at the limit. Rejected with 401: no signature, an empty one, a
/// non-hex one, 39 and 42 hex digits, 64 hex digits (SHA-256), the wrong secret, a
/// tampered body, an unsigned or forged body that is also invalid JSON, an
/// unsigned body over the limit (the signature is checked first). Rejected with
/// 400, correctly signed: invalid JSON, an empty body, a JSON array, an object
/// without `eventType`, non-UTF-8, a non-event holding customer data (whose
/// message must not quote it). Rejected with 413: a signed body one byte over
/// the limit.
pub fn cases(secret: &Secret, limit: usize) -> Vec<Case> {
    let sample = Bytes::from_static(SAMPLE_LEADS_SUBMIT.as_bytes());
    let signature = sign(secret, &sample);
    let other = match Secret::new("not the receiver's secret") {
        Ok(other) => other,
        Err(error) => panic!("the other test secret is valid: {error}"),
    };
    let mut at_limit = SAMPLE_LEADS_SUBMIT.as_bytes().to_vec();
    at_limit.resize(limit.max(at_limit.len()), b' ');
    let mut over_limit = at_limit.clone();
    over_limit.push(b' ');

    let delivered = |event_type, chatbot_id| Expected::Delivered {
        event_type,
        chatbot_id,
    };
    let lead = delivered(Lead::EVENT_TYPE, Some("xxxxxxxx"));
    let rejected = |status| Expected::Rejected { status };
    let case = |name, signature: Option<String>, body: Bytes, expected| Case {
        name,
        signature,
        content_type: Some("application/json"),
        body,
        expected,
    };
    let signed = |name, body: Bytes, expected| {
        let signature = sign(secret, &body);
        case(name, Some(signature), body, expected)
    };
    let unsigned_sample = |name, signature: &str| {
        case(
            name,
            Some(signature.to_owned()),
            sample.clone(),
            rejected(401),
        )
    };

    vec![
        signed("valid", sample.clone(), lead.clone()),
        case(
            "upper-case hex",
            Some(signature.to_ascii_uppercase()),
            sample.clone(),
            lead.clone(),
        ),
        signed(
            "unknown event type",
            event_body("conversations.end", "bot_9", &json!({"conversationId": "c1"})),
            delivered("conversations.end", Some("bot_9")),
        ),
        Case {
            content_type: None,
            ..signed("no content-type", sample.clone(), lead.clone())
        },
        signed(
            "lead with missing and null fields",
            Bytes::from_static(
                br#"{"eventType":"leads.submit","chatbotId":"bot_2","payload":{"conversationId":null,"customerEmail":"ada@example.com"}}"#,
            ),
            delivered(Lead::EVENT_TYPE, Some("bot_2")),
        ),
        signed(
            "no payload and no chatbotId",
            Bytes::from_static(br#"{"eventType":"leads.submit"}"#),
            delivered(Lead::EVENT_TYPE, None),
        ),
        signed("exactly at the limit", Bytes::from(at_limit), lead),
        case("missing signature", None, sample.clone(), rejected(401)),
        unsigned_sample("empty signature", ""),
        unsigned_sample("non-hex signature", &"z".repeat(40)),
        unsigned_sample("39 hex digits", signature.get(..39).unwrap_or_default()),
        unsigned_sample("42 hex digits", &format!("{signature}00")),
        unsigned_sample("64 hex digits (SHA-256)", &format!("{signature}{}", &"0".repeat(24))),
        unsigned_sample("wrong secret", &sign(&other, &sample)),
        case(
            "tampered body",
            Some(signature.clone()),
            Bytes::from(SAMPLE_LEADS_SUBMIT.replace("jo@acme.io", "jo@evil.io")),
            rejected(401),
        ),
        case("unsigned invalid JSON", None, Bytes::from_static(b"not json"), rejected(401)),
        case(
            "forged invalid JSON",
            Some("0".repeat(40)),
            Bytes::from_static(b"not json"),
            rejected(401),
        ),
        case(
            "unsigned and over the limit: 401 first",
            None,
            Bytes::from(over_limit.clone()),
            rejected(401),
        ),
        signed("signed invalid JSON", Bytes::from_static(b"{not json"), rejected(400)),
        signed("signed empty body", Bytes::new(), rejected(400)),
        signed("signed JSON array", Bytes::from_static(b"[1,2]"), rejected(400)),
        signed(
            "signed object without eventType",
            Bytes::from_static(br#"{"chatbotId":"b","payload":{}}"#),
            rejected(400),
        ),
        signed(
            "signed non-UTF-8",
            Bytes::from_static(b"{\"eventType\":\"leads.submit\",\"chatbotId\":\"\xff\"}"),
            rejected(400),
        ),
        // Its error message must not quote the customer's details (check your logs).
        signed(
            "signed, not an event, with customer data",
            Bytes::from_static(
                br#"{"eventType":1,"payload":{"customerEmail":"jo@acme.io","customerPhone":"+1 555 0100"}}"#,
            ),
            rejected(400),
        ),
        signed("one byte over the limit", Bytes::from(over_limit), rejected(413)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Verifier};

    /// The matrix holds against the verifier itself, which every adapter calls.
    #[test]
    fn every_case_holds_against_the_verifier() {
        let secret = Secret::new("conformance-test").unwrap();
        for limit in [SAMPLE_LEADS_SUBMIT.len(), 1000, crate::DEFAULT_BODY_LIMIT] {
            let verifier = Verifier::new(secret.clone()).with_body_limit(limit);
            let cases = cases(&secret, limit);
            assert_eq!(cases.len(), 25);
            for case in cases {
                let signature = case.signature.as_deref().map(str::as_bytes);
                let outcome = verifier.verify_and_parse(case.body.clone(), signature);
                match (&case.expected, outcome) {
                    (
                        Expected::Delivered {
                            event_type,
                            chatbot_id,
                        },
                        Ok(event),
                    ) => {
                        assert_eq!(event.event_type(), *event_type, "{}", case.name);
                        assert_eq!(event.chatbot_id(), *chatbot_id, "{}", case.name);
                        assert_eq!(event.raw_body(), &case.body, "{}", case.name);
                    }
                    (Expected::Rejected { status }, Err(error)) => {
                        assert_eq!(error.status(), *status, "{}: {error}", case.name);
                        if case.name.contains("SHA-256") {
                            assert!(matches!(
                                error,
                                Error::MalformedSignature(m) if m.looks_like_sha256()
                            ));
                        }
                    }
                    (expected, outcome) => {
                        panic!("{}: expected {expected:?}, got {outcome:?}", case.name)
                    }
                }
            }
        }
    }

    #[test]
    fn names_are_unique() {
        let secret = Secret::new("s").unwrap();
        let mut names: Vec<_> = cases(&secret, 1000).iter().map(|c| c.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
