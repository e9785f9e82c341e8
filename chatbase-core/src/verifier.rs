//! [`Verifier`]: checks signatures and turns verified bodies into events.

use std::env::{self, VarError};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use hmac::Mac;

use crate::secret::{PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR};
use crate::{ChatbaseEvent, Error, Secret, SecretError, Signature, Verification, parse};

/// The default body limit: 1 MiB. A `leads.submit` event is a few hundred bytes.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Verifies Chatbase signatures, then parses the verified body.
///
/// Built from one secret, plus any older ones still accepted while rotating
/// ([`with_secret`](Verifier::with_secret)), and a body limit
/// ([`with_body_limit`](Verifier::with_body_limit), 1 MiB by default). Cloning is
/// cheap (the secrets are shared), so frameworks can hand one to every request.
///
/// Verification decodes the header into a stack buffer, hashes the body once per
/// configured secret (with the key already absorbed) and compares with
/// [`Mac::verify_slice`], in constant time. It does not allocate.
///
/// - [`verify_and_parse`](Verifier::verify_and_parse) (or
///   [`verify`](Verifier::verify), without parsing) takes a whole request whose
///   body is already in memory;
/// - [`head`](Verifier::head) starts a [`Verification`] that takes the body
///   chunk by chunk as a server reads it: what the axum and actix-web adapters
///   use, and what to use from any other framework.
///
/// # Example
///
/// ```
/// use chatbase_core::{Secret, Verifier, sign};
///
/// let current = Secret::new("new-secret")?;
/// let previous = Secret::new("old-secret")?;
/// let verifier = Verifier::new(current)
///     .with_secret(previous.clone()) // accepted until every sender has switched
///     .with_body_limit(256 * 1024);
///
/// let body = br#"{"eventType":"leads.submit","chatbotId":"b","payload":{}}"#;
/// let signed_with_old = sign(&previous, body);
/// assert!(verifier.verify(body, Some(signed_with_old.as_bytes())).is_ok());
/// assert_eq!(
///     verifier.verify(body, Some(b"0000000000000000000000000000000000000000")).unwrap_err().status(),
///     401
/// );
/// # Ok::<(), chatbase_core::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    secrets: Arc<[Secret]>,
    body_limit: usize,
}

impl Verifier {
    /// A verifier accepting bodies signed with `secret`, up to
    /// [`DEFAULT_BODY_LIMIT`].
    pub fn new(secret: Secret) -> Self {
        Self {
            secrets: Arc::new([secret]),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// A verifier for the secret in `CHATBASE_WEBHOOK_SECRET`, also accepting the one
    /// in `CHATBASE_WEBHOOK_PREVIOUS_SECRET` when that is set and not empty (for a
    /// rotation without downtime).
    ///
    /// # Errors
    ///
    /// A [`SecretError::Env`] naming the variable that is unset, empty or unusable.
    pub fn from_env() -> Result<Self, SecretError> {
        Self::from_lookup(|name| env::var(name))
    }

    fn from_lookup(lookup: impl Fn(&str) -> Result<String, VarError>) -> Result<Self, SecretError> {
        let verifier = Self::new(Secret::from_var(SECRET_ENV_VAR, lookup(SECRET_ENV_VAR))?);
        match lookup(PREVIOUS_SECRET_ENV_VAR) {
            Err(VarError::NotPresent) => Ok(verifier),
            Ok(value) if value.is_empty() => Ok(verifier),
            value => Ok(verifier.with_secret(Secret::from_var(PREVIOUS_SECRET_ENV_VAR, value)?)),
        }
    }

    /// Also accepts bodies signed with `secret`.
    ///
    /// To rotate the secret without downtime: deploy with the new secret added,
    /// switch Chatbase to it, then deploy again without the old one. Each extra
    /// secret costs one more HMAC for requests that match none or a later one.
    pub fn with_secret(mut self, secret: Secret) -> Self {
        let mut secrets = self.secrets.to_vec();
        secrets.push(secret);
        self.secrets = secrets.into();
        self
    }

    /// Sets the largest body accepted, in bytes (1 MiB by default). Larger bodies
    /// are rejected with [`Error::BodyTooLarge`] (413) before any hashing; the
    /// adapters stop reading as soon as the limit is passed.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The largest body accepted, in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Starts verifying a request from its head, before any of the body is read:
    /// `signatures` are the values of its `x-chatbase-signature` headers (there
    /// must be exactly one), `content_length` the length the body announces, if
    /// it does. Feed the body to the [`Verification`] it returns.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSignature`], [`Error::MultipleSignatures`] or
    /// [`Error::MalformedSignature`] (401) first, then [`Error::BodyTooLarge`]
    /// (413): an unsigned request is refused without looking at its size.
    pub fn head<'h>(
        &self,
        signatures: impl IntoIterator<Item = &'h [u8]>,
        content_length: Option<u64>,
    ) -> Result<Verification, Error> {
        let signature = Signature::from_headers(signatures)?;
        match content_length {
            Some(len) if len > u64::try_from(self.body_limit).unwrap_or(u64::MAX) => {
                Err(self.too_large())
            }
            _ => Ok(Verification::new(self.clone(), signature)),
        }
    }

    /// Verifies a whole request at once: `signature` is the header's value, `None`
    /// if the header is absent.
    ///
    /// # Errors
    ///
    /// As [`head`](Verifier::head), then [`Error::SignatureMismatch`] (401) if no
    /// secret matches.
    pub fn verify(&self, body: &[u8], signature: Option<&[u8]>) -> Result<(), Error> {
        let signature = Signature::from_headers(signature)?;
        self.check(&signature, body)
    }

    /// Verifies a whole request, and only then parses it: the one call to make
    /// when the body is already in memory.
    ///
    /// # Errors
    ///
    /// As [`verify`](Verifier::verify), then [`Error::InvalidPayload`] (400) for
    /// a correctly signed body that is not a Chatbase event.
    pub fn verify_and_parse(
        &self,
        body: Bytes,
        signature: Option<&[u8]>,
    ) -> Result<ChatbaseEvent, Error> {
        let signature = Signature::from_headers(signature)?;
        self.verify_signed(&signature, body)
    }

    /// Checks the signature of a whole body, then parses it.
    pub(crate) fn verify_signed(
        &self,
        signature: &Signature,
        body: Bytes,
    ) -> Result<ChatbaseEvent, Error> {
        self.check(signature, &body)?;
        parse::parse(body).map_err(Error::InvalidPayload)
    }

    /// Checks that `signature` is the HMAC-SHA1 of `body` under one of the
    /// secrets; a body over the limit is not hashed.
    fn check(&self, signature: &Signature, body: &[u8]) -> Result<(), Error> {
        if body.len() > self.body_limit {
            return Err(self.too_large());
        }
        for secret in self.secrets.iter() {
            let mut mac = secret.mac();
            mac.update(body);
            if signature.matches(mac) {
                return Ok(());
            }
        }
        Err(Error::SignatureMismatch)
    }

    pub(crate) fn too_large(&self) -> Error {
        Error::BodyTooLarge {
            limit: self.body_limit,
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets.len())
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign;

    const BODY: &[u8] =
        br#"{"eventType":"leads.submit","chatbotId":"b","payload":{"conversationId":"c"}}"#;

    fn secret(key: &str) -> Secret {
        Secret::new(key).unwrap()
    }

    #[test]
    fn accepts_a_valid_signature() {
        let verifier = Verifier::new(secret("k"));
        let signature = sign(&secret("k"), BODY);
        verifier.verify(BODY, Some(signature.as_bytes())).unwrap();
        let event = verifier
            .verify_and_parse(Bytes::from_static(BODY), Some(signature.as_bytes()))
            .unwrap();
        assert_eq!(event.chatbot_id(), Some("b"));
    }

    #[test]
    fn accepts_upper_case_hex() {
        let verifier = Verifier::new(secret("k"));
        let signature = sign(&secret("k"), BODY).to_ascii_uppercase();
        verifier.verify(BODY, Some(signature.as_bytes())).unwrap();
    }

    #[test]
    fn rejects_wrong_secret_and_tampered_body() {
        let verifier = Verifier::new(secret("k"));
        let wrong = sign(&secret("other"), BODY);
        assert!(matches!(
            verifier.verify(BODY, Some(wrong.as_bytes())),
            Err(Error::SignatureMismatch)
        ));
        let signature = sign(&secret("k"), BODY);
        let mut tampered = BODY.to_vec();
        tampered[20] ^= 1;
        assert!(matches!(
            verifier.verify(&tampered, Some(signature.as_bytes())),
            Err(Error::SignatureMismatch)
        ));
    }

    #[test]
    fn missing_and_malformed_headers() {
        let verifier = Verifier::new(secret("k"));
        assert!(matches!(
            verifier.verify(BODY, None),
            Err(Error::MissingSignature)
        ));
        assert!(matches!(
            verifier.verify(BODY, Some(b"")),
            Err(Error::MalformedSignature(_))
        ));
    }

    #[test]
    fn rotation_accepts_every_configured_secret() {
        let verifier = Verifier::new(secret("new")).with_secret(secret("old"));
        for key in ["new", "old"] {
            let signature = sign(&secret(key), BODY);
            verifier.verify(BODY, Some(signature.as_bytes())).unwrap();
        }
        let retired = sign(&secret("older"), BODY);
        assert!(verifier.verify(BODY, Some(retired.as_bytes())).is_err());
    }

    #[test]
    fn body_limit_is_checked_before_hashing() {
        let verifier = Verifier::new(secret("k")).with_body_limit(BODY.len() - 1);
        let signature = sign(&secret("k"), BODY);
        let error = verifier
            .verify(BODY, Some(signature.as_bytes()))
            .unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge { limit } if limit == BODY.len() - 1));
        assert_eq!(error.status(), 413);

        let exact = Verifier::new(secret("k")).with_body_limit(BODY.len());
        exact.verify(BODY, Some(signature.as_bytes())).unwrap();
    }

    #[test]
    fn head_checks_the_signature_then_the_length() {
        let verifier = Verifier::new(secret("k")).with_body_limit(10);
        let signature = sign(&secret("k"), BODY);
        let signature = signature.as_bytes();
        assert!(matches!(
            verifier.head(None, Some(11)),
            Err(Error::MissingSignature)
        ));
        assert!(matches!(
            verifier.head([signature, signature], Some(11)),
            Err(Error::MultipleSignatures)
        ));
        assert!(matches!(
            verifier.head([signature], Some(11)),
            Err(Error::BodyTooLarge { limit: 10 })
        ));
        assert!(verifier.head([signature], Some(10)).is_ok());
        assert!(verifier.head([signature], None).is_ok());
        assert!(verifier.head([signature], Some(u64::MAX)).is_err());
    }

    #[test]
    fn unsigned_invalid_json_is_401_not_400() {
        let verifier = Verifier::new(secret("k"));
        let error = verifier
            .verify_and_parse(Bytes::from_static(b"not json"), None)
            .unwrap_err();
        assert_eq!(error.status(), 401);
        let forged = verifier
            .verify_and_parse(
                Bytes::from_static(b"not json"),
                Some(b"0000000000000000000000000000000000000000"),
            )
            .unwrap_err();
        assert!(matches!(forged, Error::SignatureMismatch));
    }

    #[test]
    fn signed_garbage_is_400() {
        let verifier = Verifier::new(secret("k"));
        let signature = sign(&secret("k"), b"[1]");
        let error = verifier
            .verify_and_parse(Bytes::from_static(b"[1]"), Some(signature.as_bytes()))
            .unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(matches!(error, Error::InvalidPayload(_)));
    }

    #[test]
    fn from_env_reads_current_and_previous() {
        let lookup = |current: Option<&'static str>, previous: Option<&'static str>| {
            move |name: &str| match name {
                SECRET_ENV_VAR => current.map(str::to_owned).ok_or(VarError::NotPresent),
                PREVIOUS_SECRET_ENV_VAR => previous.map(str::to_owned).ok_or(VarError::NotPresent),
                _ => Err(VarError::NotPresent),
            }
        };
        let one = Verifier::from_lookup(lookup(Some("new"), None)).unwrap();
        assert_eq!(one.secrets.len(), 1);
        let empty_previous = Verifier::from_lookup(lookup(Some("new"), Some(""))).unwrap();
        assert_eq!(empty_previous.secrets.len(), 1);
        let two = Verifier::from_lookup(lookup(Some("new"), Some("old"))).unwrap();
        let signature = sign(&secret("old"), BODY);
        two.verify(BODY, Some(signature.as_bytes())).unwrap();

        let missing = Verifier::from_lookup(lookup(None, Some("old"))).unwrap_err();
        assert!(missing.to_string().contains(SECRET_ENV_VAR), "{missing}");
        let bad_previous = Verifier::from_lookup(lookup(Some("new"), Some("old\n"))).unwrap_err();
        assert!(
            bad_previous.to_string().contains(PREVIOUS_SECRET_ENV_VAR),
            "{bad_previous}"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let verifier = Verifier::new(secret("hunter2")).with_secret(secret("hunter3"));
        let shown = format!("{verifier:?}");
        assert_eq!(shown, "Verifier { secrets: 2, body_limit: 1048576 }");
    }
}
