//! The `x-chatbase-signature` header: computing it and reading it.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::Secret;
use crate::error::{Error, MalformedSignature};

/// The header Chatbase puts the signature in: `x-chatbase-signature`.
pub const SIGNATURE_HEADER: &str = "x-chatbase-signature";

/// Bytes in an HMAC-SHA1 tag.
const TAG_LEN: usize = 20;

/// HMAC-SHA1, the MAC Chatbase signs with.
pub(crate) type HmacSha1 = Hmac<Sha1>;

/// Signs `body` as Chatbase does: the lowercase hex HMAC-SHA1 of the raw bytes,
/// keyed with `secret`. This is the value of the `x-chatbase-signature` header.
///
/// Use it to send test events to your own endpoint, or to build requests in your
/// tests (the `test-util` feature has helpers on top of it). Treat the result as a
/// credential for this body: don't log it.
///
/// # Example
///
/// ```
/// use chatbase_core::{Secret, Verifier, sign};
///
/// let secret = Secret::new("my-secret")?;
/// let body = br#"{"eventType":"leads.submit","chatbotId":"bot","payload":{}}"#;
/// let signature = sign(&secret, body);
/// assert_eq!(signature.len(), 40);
///
/// let verifier = Verifier::new(secret);
/// assert!(verifier.verify(body, Some(signature.as_bytes())).is_ok());
/// # Ok::<(), chatbase_core::SecretError>(())
/// ```
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = secret.mac();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A signature read from an `x-chatbase-signature` header: 20 bytes decoded from
/// exactly 40 hex digits, in either case.
///
/// It is only a claim until a body is verified against it. Its `Debug` output
/// does not show the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signature {
    tag: [u8; TAG_LEN],
}

impl Signature {
    /// Reads the values of the request's signature headers: there must be
    /// exactly one.
    ///
    /// Anything but exactly 40 hex digits is malformed and refused here, before any
    /// hashing. Works on a stack buffer: no allocation.
    pub(crate) fn from_headers<'h>(
        values: impl IntoIterator<Item = &'h [u8]>,
    ) -> Result<Self, Error> {
        let mut values = values.into_iter();
        let value = values.next().ok_or(Error::MissingSignature)?;
        // Which one would be checked? A sender that signs never sends two.
        if values.next().is_some() {
            return Err(Error::MultipleSignatures);
        }
        let mut tag = [0; TAG_LEN];
        match hex::decode_to_slice(value, &mut tag) {
            Ok(()) => Ok(Self { tag }),
            Err(_) => Err(Error::MalformedSignature(MalformedSignature::of(value))),
        }
    }

    /// Whether `mac`, fed the body, produces this tag (in constant time).
    pub(crate) fn matches(&self, mac: HmacSha1) -> bool {
        mac.verify_slice(&self.tag).is_ok()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<Signature, Error> {
        Signature::from_headers([value.as_bytes()])
    }

    #[test]
    fn accepts_40_hex_digits_in_any_case() {
        let lower = parse("6adbce953168e65effe7b1da874cc05a25b3fc75").unwrap();
        let upper = parse("6ADBCE953168E65EFFE7B1DA874CC05A25B3FC75").unwrap();
        let mixed = parse("6aDbCe953168E65effe7b1da874cc05a25b3fc75").unwrap();
        assert_eq!(lower, upper);
        assert_eq!(lower, mixed);
        assert_eq!(lower.tag[0], 0x6a);
        assert_eq!(lower.tag[19], 0x75);
    }

    #[test]
    fn absent_is_missing_and_two_are_refused() {
        assert!(matches!(
            Signature::from_headers(None),
            Err(Error::MissingSignature)
        ));
        let value = b"6adbce953168e65effe7b1da874cc05a25b3fc75".as_slice();
        assert!(matches!(
            Signature::from_headers([value, value]),
            Err(Error::MultipleSignatures)
        ));
    }

    #[test]
    fn anything_else_is_malformed() {
        let forty = "6adbce953168e65effe7b1da874cc05a25b3fc75";
        for bad in [
            "",
            &forty[..39],
            &format!("{forty}00"),
            &format!("{forty}0"),
            "zzdbce953168e65effe7b1da874cc05a25b3fc75",
            " 6adbce953168e65effe7b1da874cc05a25b3fc7",
            "sha1=6adbce953168e65effe7b1da874cc05a25b",
            &"ab".repeat(32),
        ] {
            assert!(
                matches!(parse(bad), Err(Error::MalformedSignature(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_the_tag() {
        let signature = parse("6adbce953168e65effe7b1da874cc05a25b3fc75").unwrap();
        assert_eq!(format!("{signature:?}"), "Signature(..)");
    }

    #[test]
    fn sign_is_lowercase_hex_of_hmac_sha1() {
        // RFC 2202 test case 2.
        let secret = Secret::new("Jefe").unwrap();
        assert_eq!(
            sign(&secret, b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
