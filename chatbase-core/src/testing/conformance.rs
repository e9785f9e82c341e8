//! The request matrix every receiver must pass, and the check of what came of
//! each request: one table, shared by the axum and actix-web adapters' tests and
//! the reference receivers' end-to-end tests, and usable for your own server or
//! adapter.
//!
//! Each [`Case`] is a request to send — a body, an optional
//! `x-chatbase-signature` value, an optional content type — and what must come of
//! it: delivered to the handler as an event of some type, or rejected with a
//! status before the handler runs. How to send it (and whether to send the body
//! with a `Content-Length` or chunked) is up to the test; [`Case::check`] then
//! checks what was [`Observed`]: the response, and what the handler received.
//!
//! ```
//! use chatbase_core::testing::conformance;
//! use chatbase_core::{Secret, Verifier};
//!
//! let secret = Secret::new("conformance")?;
//! let verifier = Verifier::new(secret.clone()).with_body_limit(4096);
//! for case in conformance::cases(&secret, verifier.body_limit()) {
//!     // Here: `Verifier` directly. For a server: send the request (with each of
//!     // `case.signatures()` as an `x-chatbase-signature` header), then
//!     // `case.check(&observed)` with its answer and what the handler saw.
//!     let signatures: Vec<&[u8]> = case.signatures().map(str::as_bytes).collect();
//!     let outcome = verifier.head(signatures, None).and_then(|mut verification| {
//!         verification.chunk(case.body.clone())?;
//!         futures_executor::block_on(verification.finish())
//!     });
//!     case.check_outcome(&outcome);
//! }
//! # Ok::<(), chatbase_core::SecretError>(())
//! ```

use bytes::Bytes;
use serde_json::json;

use super::{SAMPLE_LEADS_SUBMIT, event_body};
use crate::{ChatbaseEvent, ChatbotSecrets, Error, Lead, Secret, sign};

/// One request of the matrix.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Case {
    /// What the case is about, for assertion messages: `"39 hex digits"`.
    pub name: &'static str,
    /// The `x-chatbase-signature` value to send; `None`: send no such header.
    pub signature: Option<String>,
    /// A second `x-chatbase-signature` header to send after the first, if any.
    pub second_signature: Option<String>,
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

/// What a receiver did with a [`Case`]'s request: its answer, and what its
/// handler received for that request.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The response status.
    pub status: u16,
    /// The response's `content-type`, if any.
    pub content_type: Option<&'a str>,
    /// The response body.
    pub body: &'a [u8],
    /// Every event the handler received for this request, in order.
    pub delivered: &'a [Seen],
    /// The response's `Retry-After`, if any.
    pub retry_after: Option<&'a str>,
}

/// An event a handler received, as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its `eventType`.
    pub event_type: String,
    /// Its `chatbotId`.
    pub chatbot_id: Option<String>,
    /// Its raw body, when the test can see it (an in-process handler can; a
    /// test reading a server's log lines cannot).
    pub raw_body: Option<Bytes>,
}

impl From<&ChatbaseEvent> for Seen {
    fn from(event: &ChatbaseEvent) -> Self {
        Self {
            event_type: event.event_type().to_owned(),
            chatbot_id: event.chatbot_id().map(str::to_owned),
            raw_body: Some(event.raw_body().clone()),
        }
    }
}

/// Customer details the matrix's bodies carry: no response may quote them.
const CUSTOMER_DATA: [&str; 3] = ["jo@acme.io", "+1 555 0100", "ada@example.com"];

impl Case {
    /// The `x-chatbase-signature` values to send, in order: none, one, or two.
    pub fn signatures(&self) -> impl Iterator<Item = &str> {
        self.signature
            .iter()
            .chain(&self.second_signature)
            .map(String::as_str)
    }

    /// Checks what came of this case's request.
    ///
    /// - Delivered: a 2xx answer, and the handler received exactly one event of
    ///   the expected type and chatbot (with the case's body, when it is seen).
    /// - Rejected: exactly the expected status, the handler received nothing,
    ///   and the answer is `application/json` `{"message": "..."}` quoting no
    ///   customer data; a 503 also carries a `Retry-After` in seconds.
    ///
    /// # Panics
    ///
    /// With the case's name and what differs, as an assertion does, when the
    /// observation does not match.
    pub fn check(&self, observed: &Observed<'_>) {
        let name = self.name;
        match &self.expected {
            Expected::Delivered {
                event_type,
                chatbot_id,
            } => {
                assert!(
                    (200..300).contains(&observed.status),
                    "{name}: expected delivery, got status {} ({})",
                    observed.status,
                    String::from_utf8_lossy(observed.body)
                );
                let [seen] = observed.delivered else {
                    panic!(
                        "{name}: expected the handler to run once, it ran {} times",
                        observed.delivered.len()
                    );
                };
                assert_eq!(seen.event_type, *event_type, "{name}: event type");
                assert_eq!(
                    seen.chatbot_id.as_deref(),
                    *chatbot_id,
                    "{name}: chatbot id"
                );
                if let Some(raw) = &seen.raw_body {
                    assert_eq!(raw, &self.body, "{name}: the raw body is not the one sent");
                }
            }
            Expected::Rejected { status } => {
                assert_eq!(
                    observed.status,
                    *status,
                    "{name}: status ({})",
                    String::from_utf8_lossy(observed.body)
                );
                assert!(
                    observed.delivered.is_empty(),
                    "{name}: a rejected request reached the handler: {:?}",
                    observed.delivered
                );
                let content_type = observed.content_type.unwrap_or_default();
                assert!(
                    content_type.starts_with("application/json"),
                    "{name}: content type {content_type:?}"
                );
                let message = serde_json::from_slice::<serde_json::Value>(observed.body)
                    .ok()
                    .and_then(|body| body.get("message")?.as_str().map(str::to_owned));
                let Some(message) = message else {
                    panic!(
                        "{name}: the body is not {{\"message\": \"...\"}}: {}",
                        String::from_utf8_lossy(observed.body)
                    );
                };
                assert!(!message.is_empty(), "{name}: empty message");
                let shown = String::from_utf8_lossy(observed.body);
                for data in CUSTOMER_DATA {
                    assert!(!shown.contains(data), "{name}: the answer quotes {data:?}");
                }
                if *status == 503 {
                    let seconds = observed
                        .retry_after
                        .and_then(|value| value.parse::<u32>().ok());
                    assert!(
                        seconds.is_some(),
                        "{name}: a 503 without a Retry-After in seconds ({:?})",
                        observed.retry_after
                    );
                }
            }
        }
    }

    /// [`check`](Case::check) for a [`Verifier`](crate::Verifier)'s outcome, as
    /// an adapter would turn it into a response (a delivery answered 200, a
    /// rejection with its status and JSON body).
    ///
    /// # Panics
    ///
    /// As [`check`](Case::check).
    pub fn check_outcome(&self, outcome: &Result<ChatbaseEvent, Error>) {
        match outcome {
            Ok(event) => self.check(&Observed {
                status: 200,
                content_type: None,
                body: b"",
                delivered: &[Seen::from(event)],
                retry_after: None,
            }),
            Err(error) => self.check(&Observed {
                status: error.status(),
                content_type: Some("application/json"),
                body: error.json_body().as_bytes(),
                delivered: &[],
                retry_after: error.retry_after().map(|s| s.to_string()).as_deref(),
            }),
        }
    }
}

/// The matrix for a receiver verifying with `secret` under a body limit of
/// `limit` bytes (at least the sample's 167).
///
/// Delivered: a valid `leads.submit`; the same signed in upper-case hex; an
/// unknown event type; no content type; a lead with missing and null fields; no
/// `payload` and no `chatbotId`; a body exactly at the limit. Rejected with 401: no signature, an empty one, a
/// non-hex one, 39 and 42 hex digits, 64 hex digits (SHA-256), two signature
/// headers (even both right), the wrong secret, a
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
        second_signature: None,
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
        Case {
            second_signature: Some(signature.clone()),
            ..case(
                "two signature headers",
                Some(signature.clone()),
                sample.clone(),
                rejected(401),
            )
        },
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

/// The secrets of the chatbots [`chatbot_cases`] is made for, as the JSON of
/// `CHATBASE_WEBHOOK_SECRETS`: `bot_a` with one secret, `bot_b` in the middle
/// of a rotation (its current secret, then its previous one).
pub const CHATBOT_SECRETS_JSON: &str = r#"{"bot_a":"conformance-secret-a","bot_b":["conformance-secret-b-new","conformance-secret-b-old"]}"#;

/// The chatbot a receiver with a secret resolver must fail to look up for
/// [`resolver_failure_case`]: its resolver errs, or takes too long, for this
/// id.
pub const UNAVAILABLE_CHATBOT: &str = "bot_unavailable";

/// [`CHATBOT_SECRETS_JSON`] as a map, for
/// [`Verifier::per_chatbot`](crate::Verifier::per_chatbot) (or for a resolver
/// to answer from).
pub fn chatbot_secrets() -> ChatbotSecrets {
    match ChatbotSecrets::from_json(CHATBOT_SECRETS_JSON) {
        Ok(secrets) => secrets,
        Err(error) => panic!("the conformance secrets are valid: {error}"),
    }
}

fn conformance_secret(key: &str) -> Secret {
    match Secret::new(key) {
        Ok(secret) => secret,
        Err(error) => panic!("the conformance secrets are valid: {error}"),
    }
}

/// The matrix for a receiver with secrets per chatbot, serving exactly the
/// chatbots of [`chatbot_secrets`] ([`CHATBOT_SECRETS_JSON`]).
///
/// Delivered, to the chatbot whose secret signed it: `bot_a` with its secret,
/// `bot_b` with its current and with its previous secret, and a body whose
/// `chatbotId` key and value are written with escapes. Rejected with 401, the
/// handler never running: a body naming one chatbot signed with the other's
/// secret (both ways), an unknown chatbot, no `chatbotId`, a `null`, a number,
/// one of 129 characters, one with other characters than letters, digits, `-`
/// and `_`, two `chatbotId` keys (also through an escaped key), two
/// `eventType` or `payload` keys, two signature headers, no signature, and a
/// signed body that is not JSON.
pub fn chatbot_cases() -> Vec<Case> {
    let a = conformance_secret("conformance-secret-a");
    let b_new = conformance_secret("conformance-secret-b-new");
    let b_old = conformance_secret("conformance-secret-b-old");
    let lead = |chatbot: &str| {
        Bytes::from(format!(
            r#"{{"eventType":"leads.submit","chatbotId":"{chatbot}","payload":{{"conversationId":"c_{chatbot}","customerEmail":"jo@acme.io"}}}}"#
        ))
    };
    let case = |name, secret: Option<&Secret>, body: Bytes, expected| Case {
        name,
        signature: secret.map(|secret| sign(secret, &body)),
        second_signature: None,
        content_type: Some("application/json"),
        body,
        expected,
    };
    let delivered = |chatbot_id| Expected::Delivered {
        event_type: Lead::EVENT_TYPE,
        chatbot_id: Some(chatbot_id),
    };
    let refused = Expected::Rejected { status: 401 };
    let raw = |text: &str| Bytes::from(text.to_owned());
    let two_headers = {
        let mut twice = case(
            "two signature headers",
            Some(&a),
            lead("bot_a"),
            refused.clone(),
        );
        twice.second_signature = twice.signature.clone();
        twice
    };
    vec![
        case(
            "bot_a with its secret",
            Some(&a),
            lead("bot_a"),
            delivered("bot_a"),
        ),
        case(
            "bot_b with its current secret",
            Some(&b_new),
            lead("bot_b"),
            delivered("bot_b"),
        ),
        case(
            "bot_b with its previous secret",
            Some(&b_old),
            lead("bot_b"),
            delivered("bot_b"),
        ),
        case(
            "escaped chatbotId key and value",
            Some(&a),
            raw(r#"{"eventType":"leads.submit","chatbot\u0049d":"bot_\u0061","payload":{}}"#),
            delivered("bot_a"),
        ),
        case(
            "bot_b's body signed with bot_a's secret",
            Some(&a),
            lead("bot_b"),
            refused.clone(),
        ),
        case(
            "bot_a's body signed with bot_b's secret",
            Some(&b_new),
            lead("bot_a"),
            refused.clone(),
        ),
        case("unknown chatbot", Some(&a), lead("bot_c"), refused.clone()),
        case(
            "no chatbotId",
            Some(&a),
            raw(r#"{"eventType":"leads.submit","payload":{}}"#),
            refused.clone(),
        ),
        case(
            "null chatbotId",
            Some(&a),
            raw(r#"{"eventType":"leads.submit","chatbotId":null,"payload":{}}"#),
            refused.clone(),
        ),
        case(
            "numeric chatbotId",
            Some(&a),
            raw(r#"{"eventType":"leads.submit","chatbotId":7,"payload":{}}"#),
            refused.clone(),
        ),
        case(
            "overlong chatbotId",
            Some(&a),
            lead(&"a".repeat(129)),
            refused.clone(),
        ),
        case(
            "chatbotId with other characters",
            Some(&a),
            lead("../bot_a"),
            refused.clone(),
        ),
        case(
            "two chatbotId keys",
            Some(&a),
            raw(
                r#"{"eventType":"leads.submit","chatbotId":"bot_b","chatbotId":"bot_a","payload":{}}"#,
            ),
            refused.clone(),
        ),
        case(
            "two chatbotId keys, one escaped",
            Some(&a),
            raw(
                r#"{"eventType":"leads.submit","chatbotId":"bot_a","chatbot\u0049d":"bot_b","payload":{}}"#,
            ),
            refused.clone(),
        ),
        case(
            "two eventType keys",
            Some(&a),
            raw(r#"{"eventType":"leads.submit","eventType":"x","chatbotId":"bot_a","payload":{}}"#),
            refused.clone(),
        ),
        case(
            "two payload keys",
            Some(&a),
            raw(r#"{"eventType":"leads.submit","chatbotId":"bot_a","payload":{},"payload":{}}"#),
            refused.clone(),
        ),
        two_headers,
        case("no signature", None, lead("bot_a"), refused.clone()),
        case(
            "signed, not JSON",
            Some(&a),
            raw("chatbotId=bot_a"),
            refused,
        ),
    ]
}

/// The case for a receiver whose secret resolver fails for
/// [`UNAVAILABLE_CHATBOT`]: answered 503 with a `Retry-After`, never 401.
pub fn resolver_failure_case() -> Case {
    let body = Bytes::from(format!(
        r#"{{"eventType":"leads.submit","chatbotId":"{UNAVAILABLE_CHATBOT}","payload":{{}}}}"#
    ));
    Case {
        name: "the resolver fails",
        signature: Some(sign(&conformance_secret("conformance-secret-a"), &body)),
        second_signature: None,
        content_type: Some("application/json"),
        body,
        expected: Expected::Rejected { status: 503 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verifier;

    /// The matrix holds against the verifier itself, which every adapter calls.
    #[test]
    fn every_case_holds_against_the_verifier() {
        let secret = Secret::new("conformance-test").unwrap();
        for limit in [SAMPLE_LEADS_SUBMIT.len(), 1000, crate::DEFAULT_BODY_LIMIT] {
            let verifier = Verifier::new(secret.clone()).with_body_limit(limit);
            let cases = cases(&secret, limit);
            assert_eq!(cases.len(), 26);
            for case in cases {
                let signatures: Vec<&[u8]> = case.signatures().map(str::as_bytes).collect();
                let outcome = verifier
                    .head(signatures, None)
                    .and_then(|mut verification| {
                        verification.chunk(case.body.clone())?;
                        futures_executor::block_on(verification.finish())
                    });
                if case.name.contains("SHA-256") {
                    assert!(matches!(
                        &outcome,
                        Err(Error::MalformedSignature(m)) if m.looks_like_sha256()
                    ));
                }
                case.check_outcome(&outcome);
            }
        }
    }

    /// The chatbot matrix holds against a verifier with secrets per chatbot.
    #[test]
    fn every_chatbot_case_holds_against_the_verifier() {
        let verifier = Verifier::per_chatbot(chatbot_secrets());
        let cases = chatbot_cases();
        assert_eq!(cases.len(), 19);
        for case in cases {
            let signatures: Vec<&[u8]> = case.signatures().map(str::as_bytes).collect();
            let outcome = verifier
                .head(signatures, None)
                .and_then(|mut verification| {
                    verification.chunk(case.body.clone())?;
                    futures_executor::block_on(verification.finish())
                });
            case.check_outcome(&outcome);
        }
    }

    /// The check fails when it should: a wrong status, a delivery that should
    /// not have happened, a missing one, customer data in the answer.
    #[test]
    fn check_catches_what_is_wrong() {
        let secret = Secret::new("conformance-test").unwrap();
        let cases = cases(&secret, 1000);
        let valid = cases.iter().find(|c| c.name == "valid").unwrap();
        let unsigned = cases
            .iter()
            .find(|c| c.name == "missing signature")
            .unwrap();
        let seen = Seen::from(&crate::testing::sample_event());
        let json = br#"{"message":"missing signature"}"#;
        let fails = |case: &Case, observed: Observed<'_>| {
            std::panic::catch_unwind(|| case.check(&observed)).is_err()
        };
        let ok = |status, body: &'static [u8], delivered| Observed {
            status,
            content_type: Some("application/json"),
            body,
            delivered,
            retry_after: None,
        };
        assert!(!fails(valid, ok(200, b"OK", std::slice::from_ref(&seen))));
        assert!(fails(valid, ok(200, b"OK", &[])));
        assert!(fails(valid, ok(401, json, std::slice::from_ref(&seen))));
        assert!(!fails(unsigned, ok(401, json, &[])));
        assert!(fails(unsigned, ok(400, json, &[])));
        assert!(fails(unsigned, ok(401, json, std::slice::from_ref(&seen))));
        assert!(fails(unsigned, ok(401, b"unauthorized", &[])));
        assert!(fails(
            unsigned,
            ok(401, br#"{"message":"bad jo@acme.io"}"#, &[])
        ));
        let other = Seen {
            raw_body: Some(Bytes::from_static(b"{}")),
            ..Seen::from(&crate::testing::sample_event())
        };
        assert!(fails(valid, ok(200, b"OK", std::slice::from_ref(&other))));
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
