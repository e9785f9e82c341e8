//! [`Outgoing`]: a webhook request to send, and how it is signed.

use std::fmt;

use bytes::Bytes;
use chatbase_core::{Secret, sign};
use reqwest::Method;
use reqwest::header::HeaderValue;

/// The `content-type` of the requests made here: `application/json`.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A webhook request to send: method, body, `x-chatbase-signature` and
/// `content-type`.
///
/// Its `Debug` shows neither the body (customer data) nor the signature (a
/// credential for that body).
#[derive(Clone)]
pub struct Outgoing {
    method: Method,
    body: Bytes,
    signature: Option<HeaderValue>,
    second_signature: Option<HeaderValue>,
    content_type: Option<HeaderValue>,
}

impl Outgoing {
    /// `body`, signed with `secret` as Chatbase signs it: the lowercase hex
    /// HMAC-SHA1 of the exact bytes, under the secret's exact bytes.
    pub fn signed(secret: &Secret, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let signature = header_value(sign(secret, &body));
        Self::with_signature(body, Some(signature))
    }

    /// `body` with a wrong signature: well-formed (40 hex digits) but not the
    /// signature of `body` under `secret`: it is that signature with its first
    /// digit changed, so it can never match by chance.
    pub fn badly_signed(secret: &Secret, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let mut signature = sign(secret, &body);
        let first = if signature.starts_with('0') { "1" } else { "0" };
        signature.replace_range(..1, first);
        Self::with_signature(body, Some(header_value(signature)))
    }

    /// `body` with no `x-chatbase-signature` header at all.
    pub fn unsigned(body: impl Into<Bytes>) -> Self {
        Self::with_signature(body, None)
    }

    /// `body` with exactly this `x-chatbase-signature` value (`None`: no
    /// header), whatever it is: a malformed one, a signature made elsewhere, or
    /// one captured from a real delivery.
    pub fn with_signature(body: impl Into<Bytes>, signature: Option<HeaderValue>) -> Self {
        Self {
            method: Method::POST,
            body: body.into(),
            signature,
            second_signature: None,
            content_type: Some(JSON),
        }
    }

    /// Sends a second `x-chatbase-signature` header after the first, as no
    /// sender that signs does: a receiver must refuse the request (401),
    /// whichever of the two is right.
    #[must_use]
    pub fn with_second_signature(mut self, signature: HeaderValue) -> Self {
        self.second_signature = Some(signature);
        self
    }

    /// The same signature with a changed body, as a man in the middle would
    /// send it: the sample lead's email becomes
    /// [`TAMPERED_EMAIL`](super::TAMPERED_EMAIL); any other body gets a space
    /// appended (still the same JSON, but not the same bytes).
    #[must_use]
    pub fn tampered(mut self) -> Self {
        self.body = super::body::tamper(&self.body);
        self
    }

    /// Sends it with `method` instead of `POST` (to see a 405, or a 401 behind
    /// a layer that guards every method).
    #[must_use]
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sends it with this `content-type` (`None`: no header; Chatbase does not
    /// promise one).
    #[must_use]
    pub fn with_content_type(mut self, content_type: Option<HeaderValue>) -> Self {
        self.content_type = content_type;
        self
    }

    /// Sends it without a `content-type`.
    #[must_use]
    pub fn without_content_type(self) -> Self {
        self.with_content_type(None)
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
    pub fn signature(&self) -> Option<&HeaderValue> {
        self.signature.as_ref()
    }

    /// Every `x-chatbase-signature` value sent, in order: none, one, or two.
    pub fn signatures(&self) -> impl Iterator<Item = &HeaderValue> {
        self.signature.iter().chain(&self.second_signature)
    }

    /// The `content-type`, if any: `application/json` unless changed.
    pub fn content_type(&self) -> Option<&HeaderValue> {
        self.content_type.as_ref()
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

/// A signature as a header value: always valid, being hex digits.
fn header_value(hex: String) -> HeaderValue {
    HeaderValue::try_from(hex).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use chatbase_core::Verifier;

    use super::*;
    use crate::send::{TAMPERED_EMAIL, lead_body};

    fn secret() -> Secret {
        Secret::new("outgoing-unit").unwrap()
    }

    fn verify(outgoing: &Outgoing) -> Result<(), chatbase_core::Error> {
        Verifier::new(secret()).verify(
            outgoing.body(),
            outgoing.signature().map(HeaderValue::as_bytes),
        )
    }

    #[test]
    fn signed_verifies_and_the_rest_do_not() {
        let body = lead_body("bot_1", "conv_1");
        let signed = Outgoing::signed(&secret(), body.clone());
        assert_eq!(signed.signature().unwrap(), sign(&secret(), &body).as_str());
        assert_eq!(signed.method(), Method::POST);
        assert_eq!(signed.content_type().unwrap(), "application/json");
        verify(&signed).unwrap();

        let bad = Outgoing::badly_signed(&secret(), body.clone());
        let signature = bad.signature().unwrap().to_str().unwrap();
        let good = signed.signature().unwrap().to_str().unwrap();
        assert_eq!(signature.len(), 40);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(signature, good);
        assert_eq!(&signature[1..], &good[1..]);
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
        let mut seen_zero = false;
        let mut seen_other = false;
        for n in 0..200 {
            let body = Bytes::from(format!("{{\"n\":{n}}}"));
            let real = sign(&secret(), &body);
            let bad = Outgoing::badly_signed(&secret(), body);
            assert_ne!(bad.signature().unwrap(), real.as_str());
            seen_zero |= real.starts_with('0');
            seen_other |= !real.starts_with('0');
        }
        assert!(seen_zero && seen_other);
    }

    #[test]
    fn a_secret_with_whitespace_signs_with_its_exact_bytes() {
        let padded = Secret::new_verbatim(" padded\n").unwrap();
        let trimmed = Secret::new("padded").unwrap();
        let outgoing = Outgoing::signed(&padded, "{}");
        assert_eq!(outgoing.signature().unwrap(), sign(&padded, b"{}").as_str());
        assert_ne!(
            outgoing.signature().unwrap(),
            sign(&trimmed, b"{}").as_str()
        );
    }

    #[test]
    fn method_and_content_type_can_change() {
        let outgoing = Outgoing::unsigned("x")
            .with_method(Method::GET)
            .without_content_type();
        assert_eq!(outgoing.method(), Method::GET);
        assert_eq!(outgoing.content_type(), None);
        let text =
            Outgoing::unsigned("x").with_content_type(Some(HeaderValue::from_static("text/plain")));
        assert_eq!(text.content_type().unwrap(), "text/plain");
    }

    #[test]
    fn debug_hides_body_and_signature() {
        let outgoing = Outgoing::signed(&secret(), lead_body("b", "c"));
        let shown = format!("{outgoing:?}");
        assert!(!shown.contains("ada@"), "{shown}");
        assert!(
            !shown.contains(outgoing.signature().unwrap().to_str().unwrap()),
            "{shown}"
        );
        assert!(shown.contains("signed: true"), "{shown}");
    }
}
