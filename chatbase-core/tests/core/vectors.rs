//! Known answers: RFC 2202, and the vectors made with Node's `crypto` exactly as
//! Chatbase's documentation does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chatbase_core::{Error, Event, Secret, Verifier, sign};

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

use crate::support::node_vectors;

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
                assert!(lead.conversation_id().is_some(), "{}", vector.name);
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
