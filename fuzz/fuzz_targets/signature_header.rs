//! The `x-chatbase-signature` header parser: any bytes are accepted exactly when
//! they are 40 hex digits, and nothing panics.
#![no_main]

use chatbase_core::{Error, Secret, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &[u8]| {
    let Ok(secret) = Secret::new("fuzz-secret") else {
        return;
    };
    let verifier = Verifier::new(secret);
    let well_formed = header.len() == 40 && header.iter().all(u8::is_ascii_hexdigit);
    match verifier.check_head(Some(header), None) {
        Ok(_) => assert!(well_formed),
        Err(Error::MalformedSignature(malformed)) => {
            assert!(!well_formed);
            assert_eq!(malformed.header_len(), header.len());
            let message = malformed.to_string();
            assert!(message.contains("x-chatbase-signature"));
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
    // A well-formed header that does not match is a mismatch, never a panic.
    if well_formed {
        assert!(matches!(
            verifier.verify(b"{}", Some(header)),
            Err(Error::SignatureMismatch) | Ok(())
        ));
    }
});
