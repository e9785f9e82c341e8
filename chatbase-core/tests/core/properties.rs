//! Properties of verification and parsing over arbitrary secrets, bodies and
//! headers.

use bytes::Bytes;
use chatbase_core::{Error, Secret, Verifier, sign};
use proptest::prelude::*;

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

/// Chatbots with distinct ids, each with one or two secrets of its own.
fn chatbot_map() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    proptest::collection::btree_map(
        "[A-Za-z0-9_-]{1,12}",
        proptest::collection::vec("[a-z0-9]{1,16}", 1..=2),
        1..6,
    )
    .prop_map(|map| map.into_iter().collect())
}

/// `id` as a JSON string, plain or with every character escaped.
fn json_string(id: &str, escaped: bool) -> String {
    if escaped {
        let escapes: String = id
            .chars()
            .map(|c| format!("\\u{:04x}", u32::from(c)))
            .collect();
        format!("\"{escapes}\"")
    } else {
        format!("\"{id}\"")
    }
}

proptest! {
    /// Whatever the chatbots, the body and the secret it is signed with, a
    /// delivered event names exactly the chatbot that owns that secret.
    #[test]
    fn a_delivered_event_names_the_chatbot_whose_secret_signed_it(
        chatbots in chatbot_map(),
        claimed in any::<prop::sample::Index>(),
        signer in any::<prop::sample::Index>(),
        signer_secret in any::<prop::sample::Index>(),
        escaped in any::<bool>(),
        chatbot_last in any::<bool>(),
        second_claim in proptest::option::of(any::<prop::sample::Index>()),
        customer in "[a-z]{0,12}",
    ) {
        let mut secrets = chatbase_core::ChatbotSecrets::new();
        for (id, keys) in &chatbots {
            let keys = keys.iter().map(|key| Secret::new(key.as_str()).unwrap());
            // Two chatbots may happen to share a secret: then either may sign.
            secrets.insert(id, keys).unwrap();
        }
        let verifier = Verifier::per_chatbot(secrets);

        let (claimed_id, _) = &chatbots[claimed.index(chatbots.len())];
        let (signer_id, signer_keys) = &chatbots[signer.index(chatbots.len())];
        let key = &signer_keys[signer_secret.index(signer_keys.len())];
        let id_field = format!(r#""chatbotId":{}"#, json_string(claimed_id, escaped));
        let mut fields = vec![
            r#""eventType":"leads.submit""#.to_owned(),
            format!(r#""payload":{{"customerName":"{customer}"}}"#),
        ];
        if chatbot_last { fields.push(id_field) } else { fields.insert(0, id_field) }
        if let Some(second) = second_claim {
            let (other, _) = &chatbots[second.index(chatbots.len())];
            fields.push(format!(r#""chatbotId":{}"#, json_string(other, !escaped)));
        }
        let body = format!("{{{}}}", fields.join(","));
        let signature = sign(&Secret::new(key.as_str()).unwrap(), body.as_bytes());

        match verifier.verify_and_parse(Bytes::from(body), Some(signature.as_bytes())) {
            Ok(event) => {
                let delivered = event.chatbot_id().unwrap();
                prop_assert_eq!(delivered, claimed_id.as_str());
                let owner = chatbots.iter().find(|(id, _)| id == delivered).unwrap();
                prop_assert!(owner.1.contains(key), "{} does not own the signing secret", delivered);
                prop_assert!(second_claim.is_none());
            }
            Err(error) => {
                prop_assert_eq!(error.status(), 401);
                // Refused only when it had to be: a second claim, or another
                // chatbot's secret.
                let owns = chatbots.iter().any(|(id, keys)| id == claimed_id && keys.contains(key));
                prop_assert!(second_claim.is_some() || !owns, "refused {}: {}", signer_id, error);
            }
        }
    }
}
