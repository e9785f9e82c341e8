//! Known-answer tests (RFC 2202, and vectors made with Node's `crypto` exactly as
//! Chatbase's documentation does) and property tests of the verifier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chatbase_core::{Error, Event, Secret, Verifier, sign};
use proptest::prelude::*;

/// RFC 2202, section 3: the HMAC-SHA1 test cases (case 5 with its full tag).
#[test]
fn rfc_2202_hmac_sha1() {
    let cases: [(Vec<u8>, Vec<u8>, &str); 7] = [
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b617318655057264e28bc0b6fb378c8ef146be00",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        ),
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
        ),
        (
            (1..=25).collect(),
            vec![0xcd; 50],
            "4c9007f4026250c6bc8414f9bf50c86c2d7235da",
        ),
        (
            vec![0x0c; 20],
            b"Test With Truncation".to_vec(),
            "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04",
        ),
        (
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112",
        ),
        (
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".to_vec(),
            "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
        ),
    ];
    for (i, (key, data, tag)) in cases.into_iter().enumerate() {
        // Case 5's key is form feeds, which `Secret::new` refuses as whitespace.
        let secret = Secret::new_verbatim(key).unwrap();
        assert_eq!(sign(&secret, &data), tag, "RFC 2202 case {}", i + 1);
        Verifier::new(secret)
            .verify(&data, Some(tag.as_bytes()))
            .unwrap_or_else(|e| panic!("RFC 2202 case {}: {e}", i + 1));
    }
}

#[derive(serde::Deserialize)]
struct NodeVectors {
    generator: String,
    vectors: Vec<NodeVector>,
}

#[derive(serde::Deserialize)]
struct NodeVector {
    name: String,
    secret: String,
    body_base64: String,
    signature: String,
}

fn node_vectors() -> NodeVectors {
    serde_json::from_str(include_str!("../../testdata/node-hmac-sha1.json")).unwrap()
}

/// Every vector made with `crypto.createHmac('sha1', secret).update(body).digest('hex')`.
#[test]
fn node_vectors_sign_and_verify() {
    let vectors = node_vectors();
    assert!(vectors.generator.contains("createHmac(\"sha1\""));
    assert_eq!(vectors.vectors.len(), 60);
    for vector in &vectors.vectors {
        let body = BASE64.decode(&vector.body_base64).unwrap();
        let secret = Secret::new(vector.secret.as_str()).unwrap();
        assert_eq!(sign(&secret, &body), vector.signature, "{}", vector.name);

        let verifier = Verifier::new(secret);
        verifier
            .verify(&body, Some(vector.signature.as_bytes()))
            .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        let upper = vector.signature.to_ascii_uppercase();
        verifier
            .verify(&body, Some(upper.as_bytes()))
            .unwrap_or_else(|e| panic!("{} (upper case): {e}", vector.name));
    }
}

/// The vectors' bodies through verify-then-parse: events parse, the rest is a 400.
#[test]
fn node_vectors_verify_then_parse() {
    let mut leads = 0;
    for vector in node_vectors().vectors {
        let body = Bytes::from(BASE64.decode(&vector.body_base64).unwrap());
        let verifier = Verifier::new(Secret::new(vector.secret.as_str()).unwrap());
        let result = verifier.verify_and_parse(body.clone(), Some(vector.signature.as_bytes()));
        let kind = vector.name.split('/').nth(1).unwrap();
        match (kind, result) {
            ("compact-body" | "pretty-body", Ok(event)) => {
                let Event::LeadsSubmit(lead) = event.event() else {
                    panic!("{}: not a lead", vector.name)
                };
                assert!(lead.conversation_id.is_some(), "{}", vector.name);
                assert!(event.chatbot_id().is_some(), "{}", vector.name);
                assert_eq!(event.raw_body(), &body);
                leads += 1;
            }
            ("unknown-body", Ok(event)) => {
                assert!(
                    matches!(event.event(), Event::Unknown(_)),
                    "{}",
                    vector.name
                );
            }
            ("empty-body" | "binary-body", Err(error)) => {
                assert!(
                    matches!(error, Error::InvalidPayload(_)),
                    "{}: {error}",
                    vector.name
                );
                assert_eq!(error.status(), 400);
            }
            ("large-body", result) => {
                // Large bodies are signed events or filler; either way they verify.
                assert!(
                    !matches!(result, Err(Error::SignatureMismatch)),
                    "{}",
                    vector.name
                );
            }
            (kind, result) => panic!("{}: unexpected {kind} outcome {result:?}", vector.name),
        }
    }
    assert_eq!(leads, 20);
}

fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..200)
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..2048)
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(key in secret_bytes(), body in body_bytes()) {
        let secret = Secret::new_verbatim(key).unwrap();
        let signature = sign(&secret, &body);
        prop_assert_eq!(signature.len(), 40);
        prop_assert!(signature.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let verifier = Verifier::new(secret);
        prop_assert!(verifier.verify(&body, Some(signature.as_bytes())).is_ok());
        prop_assert!(verifier.verify(&body, Some(signature.to_ascii_uppercase().as_bytes())).is_ok());
    }

    #[test]
    fn any_changed_body_byte_fails(
        key in secret_bytes(),
        body in proptest::collection::vec(any::<u8>(), 1..2048),
        index in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let secret = Secret::new_verbatim(key).unwrap();
        let signature = sign(&secret, &body);
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= flip;
        let result = Verifier::new(secret).verify(&tampered, Some(signature.as_bytes()));
        prop_assert!(matches!(result, Err(Error::SignatureMismatch)));
    }

    #[test]
    fn appended_or_truncated_body_fails(key in secret_bytes(), body in body_bytes(), extra in 1..64usize) {
        let secret = Secret::new_verbatim(key).unwrap();
        let signature = sign(&secret, &body);
        let verifier = Verifier::new(secret);
        let mut longer = body.clone();
        longer.extend(std::iter::repeat_n(b' ', extra));
        prop_assert!(verifier.verify(&longer, Some(signature.as_bytes())).is_err());
        if !body.is_empty() {
            let shorter = &body[..body.len() - 1];
            prop_assert!(verifier.verify(shorter, Some(signature.as_bytes())).is_err());
        }
    }

    #[test]
    fn any_changed_signature_digit_fails(
        key in secret_bytes(),
        body in body_bytes(),
        index in 0..40usize,
        delta in 1..16u8,
    ) {
        let secret = Secret::new_verbatim(key).unwrap();
        let mut signature = sign(&secret, &body).into_bytes();
        let digit = (signature[index] as char).to_digit(16).unwrap() as u8;
        signature[index] = b"0123456789abcdef"[usize::from((digit + delta) % 16)];
        let result = Verifier::new(secret).verify(&body, Some(&signature));
        prop_assert!(matches!(result, Err(Error::SignatureMismatch)));
    }

    #[test]
    fn any_header_and_body_never_panics(
        header in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100)),
        body in body_bytes(),
    ) {
        let verifier = Verifier::new(Secret::new("k").unwrap());
        let result = verifier.verify_and_parse(Bytes::from(body), header.as_deref());
        // Random headers essentially never match; any outcome is a clean error.
        if let Err(error) = result {
            prop_assert!(error.status() == 401 || error.status() == 400, "{}", error);
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn any_header_string_never_panics(header in ".{0,80}") {
        let verifier = Verifier::new(Secret::new("k").unwrap());
        let result = verifier.verify(b"{}", Some(header.as_bytes()));
        prop_assert!(result.is_err());
        let status = result.unwrap_err().status();
        prop_assert_eq!(status, 401);
    }

    #[test]
    fn any_signed_body_parses_or_is_a_400(body in body_bytes()) {
        let secret = Secret::new("k").unwrap();
        let signature = sign(&secret, &body);
        let result = Verifier::new(secret).verify_and_parse(Bytes::from(body), Some(signature.as_bytes()));
        if let Err(error) = result {
            prop_assert!(matches!(error, Error::InvalidPayload(_)), "{}", error);
        }
    }

    #[test]
    fn any_signed_json_ish_body_parses_or_is_a_400(
        event_type in proptest::option::of("[a-z.]{0,20}"),
        chatbot in proptest::option::of(any::<String>()),
        payload in proptest::option::of(prop_oneof![
            Just(serde_json::json!(null)),
            Just(serde_json::json!([1, 2])),
            any::<String>().prop_map(serde_json::Value::from),
            (any::<Option<String>>(), any::<Option<String>>()).prop_map(|(a, b)| serde_json::json!({
                "conversationId": a, "customerEmail": b, "extra": {"x": [1]}
            })),
        ]),
    ) {
        let mut object = serde_json::Map::new();
        if let Some(t) = &event_type { object.insert("eventType".into(), t.clone().into()); }
        if let Some(c) = &chatbot { object.insert("chatbotId".into(), c.clone().into()); }
        if let Some(p) = &payload { object.insert("payload".into(), p.clone()); }
        let body = serde_json::to_vec(&object).unwrap();
        let secret = Secret::new("k").unwrap();
        let signature = sign(&secret, &body);
        let result = Verifier::new(secret).verify_and_parse(Bytes::from(body), Some(signature.as_bytes()));
        match (&event_type, result) {
            (None, Err(Error::InvalidPayload(e))) => {
                prop_assert_eq!(e.kind(), chatbase_core::PayloadErrorKind::NoEventType);
            }
            (Some(t), Ok(event)) => {
                prop_assert_eq!(event.event_type(), t.as_str());
                prop_assert_eq!(event.chatbot_id(), chatbot.as_deref());
            }
            (Some(t), Err(Error::InvalidPayload(e))) => {
                // Only a lead whose payload is not an object (or null) is refused.
                prop_assert_eq!(t.as_str(), "leads.submit");
                prop_assert!(matches!(payload, Some(serde_json::Value::Array(_) | serde_json::Value::String(_))));
                prop_assert_eq!(e.kind(), chatbase_core::PayloadErrorKind::UnexpectedShape);
            }
            (_, other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
