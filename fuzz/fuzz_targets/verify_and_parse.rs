//! Verify-then-parse over arbitrary header and body bytes.
//!
//! The first byte picks the mode: with its top bit set the body is signed with
//! the right secret, so the fuzzer explores the parser behind a valid signature
//! (random headers would never get past verification); otherwise its low bits
//! give the length of an arbitrary header taken from the input.
#![no_main]

use bytes::Bytes;
use chatbase_core::{Error, Secret, Verifier, sign};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(secret) = Secret::new("fuzz-secret") else {
        return;
    };
    let verifier = Verifier::new(secret.clone()).with_body_limit(64 * 1024);

    if mode & 0x80 != 0 {
        let signature = sign(&secret, rest);
        match verifier.verify_and_parse(Bytes::copy_from_slice(rest), Some(signature.as_bytes())) {
            Ok(event) => {
                assert_eq!(event.raw_body().as_ref(), rest);
                // A verified event serializes, and the serialization parses back to
                // the same event.
                let json = serde_json::to_vec(&event).expect("an event serializes");
                let resigned = sign(&secret, &json);
                let again = verifier
                    .verify_and_parse(Bytes::from(json), Some(resigned.as_bytes()))
                    .expect("a serialized event parses");
                assert_eq!(again.event(), event.event());
                assert_eq!(again.chatbot_id(), event.chatbot_id());
            }
            Err(Error::InvalidPayload(invalid)) => {
                let _ = invalid.to_string();
            }
            Err(Error::BodyTooLarge { .. }) => assert!(rest.len() > verifier.body_limit()),
            Err(other) => panic!("a signed body failed with {other:?}"),
        }
    } else {
        let header_len = usize::from(mode & 0x7f).min(rest.len());
        let (header, body) = rest.split_at(header_len);
        let header = (mode & 0x40 == 0).then_some(header);
        if let Err(error) = verifier.verify_and_parse(Bytes::copy_from_slice(body), header) {
            assert!(matches!(error.status(), 400 | 401 | 413));
            let _ = error.json_body();
        }
    }
});

