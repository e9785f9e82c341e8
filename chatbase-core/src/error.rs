//! Why a webhook request was rejected, and the HTTP status policy every adapter shares.

use std::fmt;

use serde::Serialize;

use crate::SIGNATURE_HEADER;
use crate::chatbot::ChatbotIdProblem;

/// The `tracing` target every rejection is logged under: `chatbase::rejection`.
///
/// A client can cause these `WARN` lines at will (an unsigned request is enough),
/// so an operator may want to filter or rate-limit them apart from the rest:
/// `RUST_LOG=info,chatbase::rejection=error` hides them, for instance. The
/// target is stable.
pub const REJECTION_LOG_TARGET: &str = "chatbase::rejection";

/// Why a webhook request was rejected.
///
/// Each reason knows its HTTP status ([`Error::status`]), its response body
/// ([`Error::json_body`]) and a stable code ([`Error::reason`]): the axum and
/// actix-web adapters answer with exactly these, so every framework follows one
/// policy:
///
/// | reason | status | [`reason()`](Error::reason) |
/// |---|---|---|
/// | [`MissingSignature`](Error::MissingSignature) | 401 Unauthorized | `missing_signature` |
/// | [`MalformedSignature`](Error::MalformedSignature) | 401 Unauthorized | `malformed_signature` |
/// | [`MultipleSignatures`](Error::MultipleSignatures) | 401 Unauthorized | `multiple_signatures` |
/// | [`SignatureMismatch`](Error::SignatureMismatch) | 401 Unauthorized | `signature_mismatch` |
/// | [`InvalidChatbotId`](Error::InvalidChatbotId) | 401 Unauthorized | `invalid_chatbot_id` |
/// | [`UnknownChatbot`](Error::UnknownChatbot) | 401 Unauthorized | `unknown_chatbot` |
/// | [`SecretLookup`](Error::SecretLookup) | 503 Service Unavailable, with `Retry-After` | `secret_lookup_failed` |
/// | [`BodyTooLarge`](Error::BodyTooLarge) | 413 Payload Too Large | `body_too_large` |
/// | [`ReadBody`](Error::ReadBody) | 400 Bad Request | `read_body` |
/// | [`InvalidPayload`](Error::InvalidPayload) | 400 Bad Request | `invalid_payload` |
///
/// The client is told briefly what is wrong (`{"message": "signature
/// mismatch"}`); [`Display`](fmt::Display), which the log line carries, also
/// says what the operator should check. Neither ever shows the secret, the
/// expected signature or anything from the body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request has no `x-chatbase-signature` header.
    #[error(
        "missing `{SIGNATURE_HEADER}` header: the request is not signed; check that it \
         comes from Chatbase and that no proxy strips the header"
    )]
    MissingSignature,
    /// The `x-chatbase-signature` header is not 40 hex digits.
    #[error(transparent)]
    MalformedSignature(MalformedSignature),
    /// The request has more than one `x-chatbase-signature` header: no sender
    /// that signs sends two, and checking either one would let the other pass
    /// unexamined by whatever sits in front.
    #[error(
        "more than one `{SIGNATURE_HEADER}` header: Chatbase sends exactly one; check \
         for a proxy or client that adds its own"
    )]
    MultipleSignatures,
    /// The signature does not match the body under any configured secret.
    #[error(
        "signature mismatch: `{SIGNATURE_HEADER}` does not match the body under any \
         configured secret; check that the secret is the one in the chatbot's webhook \
         settings and that nothing re-encodes the body before verification"
    )]
    SignatureMismatch,
    /// With secrets per chatbot: the body names no chatbot whose secrets could
    /// be chosen (no `chatbotId`, not a string, too long, odd characters, or a
    /// body that is not a single JSON object).
    #[error(
        "no usable `chatbotId`: {0}; with secrets per chatbot the body must name its \
         chatbot, so the request is refused unverified"
    )]
    InvalidChatbotId(ChatbotIdProblem),
    /// With secrets per chatbot: the body names a chatbot this receiver has no
    /// secrets for. The client is told "signature mismatch", as for a forgery.
    #[error(
        "unknown chatbot {chatbot_id:?}: no secrets are configured for it; add its secret \
         if it is one of yours, otherwise the request is not from your Chatbase account"
    )]
    UnknownChatbot {
        /// The chatbot the body names (checked to be a valid id).
        chatbot_id: String,
    },
    /// With a secret resolver: the chatbot's secrets could not be looked up
    /// (the resolver failed or took too long). Answered 503 with `Retry-After`,
    /// never 401, which would tell operators to rotate a good secret.
    #[error(
        "could not look up the chatbot's secrets ({0}); answered 503 so that the sender \
         retries later"
    )]
    SecretLookup(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The body is larger than the verifier's limit.
    #[error(
        "request body is larger than the limit of {limit} bytes; if Chatbase sends \
         events this large, raise the limit with `Verifier::with_body_limit`"
    )]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body could not be read: the client aborted, stalled or sent a malformed
    /// stream.
    #[error(
        "could not read the request body: the client aborted, was too slow, or sent a \
         malformed stream"
    )]
    ReadBody(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The body is correctly signed but is not a Chatbase event.
    #[error(transparent)]
    InvalidPayload(InvalidPayload),
}

impl Error {
    /// An [`Error::ReadBody`] from whatever the framework's body stream failed with.
    pub fn read_body(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::ReadBody(source.into())
    }

    /// The HTTP status to answer with: 401 for a missing, malformed, repeated or
    /// mismatched signature, 413 for a body over the limit, 400 for a body that
    /// could not be read or is not a Chatbase event.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingSignature
            | Self::MalformedSignature(_)
            | Self::MultipleSignatures
            | Self::SignatureMismatch
            | Self::InvalidChatbotId(_)
            | Self::UnknownChatbot { .. } => 401,
            Self::BodyTooLarge { .. } => 413,
            Self::ReadBody(_) | Self::InvalidPayload(_) => 400,
            Self::SecretLookup(_) => 503,
        }
    }

    /// How many seconds the sender should wait before retrying, for an answer
    /// that says to retry (503): `Some` for [`Error::SecretLookup`]. Send it
    /// as the `Retry-After` header; the adapters do.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::SecretLookup(_) => Some(RETRY_AFTER_SECONDS),
            _ => None,
        }
    }

    /// A stable code for the kind of rejection, for metrics labels and log
    /// queries: `missing_signature`, `malformed_signature`, `multiple_signatures`,
    /// `signature_mismatch`, `invalid_chatbot_id`, `unknown_chatbot`,
    /// `secret_lookup_failed`, `body_too_large`, `read_body` or
    /// `invalid_payload`.
    ///
    /// The set is small and fixed (a new kind of rejection adds a code; an
    /// existing code never changes), so it is safe as a label value.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature(_) => "malformed_signature",
            Self::MultipleSignatures => "multiple_signatures",
            Self::SignatureMismatch => "signature_mismatch",
            Self::InvalidChatbotId(_) => "invalid_chatbot_id",
            Self::UnknownChatbot { .. } => "unknown_chatbot",
            Self::SecretLookup(_) => "secret_lookup_failed",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::ReadBody(_) => "read_body",
            Self::InvalidPayload(_) => "invalid_payload",
        }
    }

    /// What the client is told: a few words, without the operator's hints
    /// (those are in [`Display`](fmt::Display), which the log line carries).
    pub fn client_message(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing x-chatbase-signature header",
            Self::MalformedSignature(_) => {
                "malformed x-chatbase-signature header: expected 40 hex digits (HMAC-SHA1)"
            }
            Self::MultipleSignatures => "more than one x-chatbase-signature header",
            // An unknown chatbot looks like a forgery: the same answer tells an
            // attacker nothing about which chatbots exist.
            Self::SignatureMismatch | Self::UnknownChatbot { .. } => "signature mismatch",
            Self::InvalidChatbotId(_) => "no usable chatbotId in the body",
            Self::SecretLookup(_) => "temporarily unable to verify the signature: retry later",
            Self::BodyTooLarge { .. } => "request body too large",
            Self::ReadBody(_) => "could not read the request body",
            Self::InvalidPayload(_) => "the body is signed but is not a Chatbase event",
        }
    }

    /// The response body to answer with: `{"message": "..."}` holding
    /// [`client_message`](Error::client_message), to be sent with
    /// `content-type: application/json`.
    ///
    /// ```
    /// # use chatbase_core::Error;
    /// assert_eq!(Error::SignatureMismatch.json_body(), r#"{"message":"signature mismatch"}"#);
    /// ```
    pub fn json_body(&self) -> String {
        #[derive(Serialize)]
        struct Body {
            message: &'static str,
        }
        let body = Body {
            message: self.client_message(),
        };
        // Serializing a struct with one string field cannot fail.
        serde_json::to_string(&body).unwrap_or_else(|_| String::from(r#"{"message":"rejected"}"#))
    }

    /// Logs the rejection at `WARN` through `tracing`, under the target
    /// [`REJECTION_LOG_TARGET`] (`chatbase::rejection`): the status, the
    /// [`reason`](Error::reason) code, and the [`Display`](fmt::Display) message
    /// with what to check; never the secret, the signature or anything from the
    /// body.
    ///
    /// The adapters call this once for every request they reject.
    ///
    /// A failed secret lookup is the server's trouble, not the client's: it is
    /// logged at `ERROR` instead, with the resolver's error.
    pub fn log(&self) {
        match self {
            Self::SecretLookup(source) => tracing::error!(
                target: REJECTION_LOG_TARGET,
                status = self.status(),
                reason = self.reason(),
                error = %source,
                "could not verify a Chatbase webhook: {self}"
            ),
            _ => tracing::warn!(
                target: REJECTION_LOG_TARGET,
                status = self.status(),
                reason = self.reason(),
                "rejected a Chatbase webhook: {self}"
            ),
        }
    }
}

/// The `Retry-After` of a 503: 5 seconds.
const RETRY_AFTER_SECONDS: u32 = 5;

/// The `x-chatbase-signature` header is not exactly 40 hex digits.
///
/// Its `Display` says what it looks like instead, e.g. "looks like SHA-256".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedSignature {
    len: usize,
    all_hex: bool,
}

impl MalformedSignature {
    pub(crate) fn of(value: &[u8]) -> Self {
        Self {
            len: value.len(),
            all_hex: value.iter().all(u8::is_ascii_hexdigit),
        }
    }

    /// The header value's length in bytes.
    pub fn header_len(&self) -> usize {
        self.len
    }

    /// Whether the value is 64 hex digits: a SHA-256 signature, not Chatbase's.
    pub fn looks_like_sha256(&self) -> bool {
        self.all_hex && self.len == 64
    }
}

impl fmt::Display for MalformedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed `{SIGNATURE_HEADER}` header: ")?;
        if self.len == 0 {
            f.write_str("it is empty")?;
        } else if self.looks_like_sha256() {
            f.write_str(
                "it is 64 hex digits, which looks like SHA-256; Chatbase signs with HMAC-SHA1",
            )?;
        } else if self.all_hex {
            write!(f, "it is {} hex digits", self.len)?;
        } else {
            f.write_str("it is not hex")?;
        }
        f.write_str(" (expected exactly 40 hex digits, the HMAC-SHA1 of the raw body)")
    }
}

impl std::error::Error for MalformedSignature {}

/// A correctly signed body that is not a Chatbase event.
///
/// `Display` and `Debug` say what is wrong and where (line and column) but never
/// quote the body; [`source`](std::error::Error::source) keeps `serde_json`'s
/// error, whose message may quote values from the body (customer data): don't
/// log it.
pub struct InvalidPayload {
    kind: PayloadErrorKind,
    source: Option<serde_json::Error>,
}

/// What is wrong with a signed body that is not a Chatbase event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadErrorKind {
    /// The body is empty or only whitespace.
    Empty,
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not JSON.
    NotJson,
    /// The body is JSON but not an object.
    NotAnObject,
    /// The object has no `eventType` string.
    NoEventType,
    /// A field has a type Chatbase events do not have (a number where a string
    /// belongs, a `payload` that is not an object, a duplicated key...).
    UnexpectedShape,
}

impl InvalidPayload {
    pub(crate) fn new(kind: PayloadErrorKind, source: Option<serde_json::Error>) -> Self {
        Self { kind, source }
    }

    /// What is wrong.
    pub fn kind(&self) -> PayloadErrorKind {
        self.kind
    }
}

impl fmt::Display for InvalidPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the body is signed but is not a Chatbase event: ")?;
        f.write_str(match self.kind {
            PayloadErrorKind::Empty => "it is empty",
            PayloadErrorKind::NotUtf8 => "it is not UTF-8",
            PayloadErrorKind::NotJson => "it is not valid JSON",
            PayloadErrorKind::NotAnObject => "it is JSON but not an object",
            PayloadErrorKind::NoEventType => "the object has no `eventType` string",
            PayloadErrorKind::UnexpectedShape => {
                "a field has an unexpected type (`eventType` and `chatbotId` are strings, \
                 `payload` an object whose `leads.submit` fields are strings or null)"
            }
        })?;
        match &self.source {
            Some(source) if source.line() > 0 => {
                write!(f, " at line {}, column {}", source.line(), source.column())
            }
            _ => Ok(()),
        }
    }
}

/// Written by hand: `serde_json::Error`'s `Debug` quotes values from the body.
impl fmt::Debug for InvalidPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("InvalidPayload");
        debug.field("kind", &self.kind);
        if let Some(source) = &self.source {
            debug
                .field("line", &source.line())
                .field("column", &source.column());
        }
        debug.finish()
    }
}

impl std::error::Error for InvalidPayload {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_policy() {
        assert_eq!(Error::MissingSignature.status(), 401);
        assert_eq!(
            Error::MalformedSignature(MalformedSignature::of(b"xyz")).status(),
            401
        );
        assert_eq!(Error::SignatureMismatch.status(), 401);
        assert_eq!(Error::MultipleSignatures.status(), 401);
        assert_eq!(Error::BodyTooLarge { limit: 10 }.status(), 413);
        assert_eq!(Error::read_body("connection reset").status(), 400);
        let invalid = InvalidPayload::new(PayloadErrorKind::NotJson, None);
        assert_eq!(Error::InvalidPayload(invalid).status(), 400);
    }

    #[test]
    fn malformed_messages_say_what_the_header_looks_like() {
        let sha256 = MalformedSignature::of("ab".repeat(32).as_bytes());
        assert!(sha256.looks_like_sha256());
        let message = sha256.to_string();
        assert!(message.contains("looks like SHA-256"), "{message}");
        assert!(message.contains("HMAC-SHA1"), "{message}");

        let short = MalformedSignature::of(&[b'a'; 39]);
        assert!(!short.looks_like_sha256());
        assert_eq!(short.header_len(), 39);
        assert!(short.to_string().contains("39 hex digits"));

        assert!(MalformedSignature::of(b"").to_string().contains("empty"));
        assert!(
            MalformedSignature::of(b"sha1=zz")
                .to_string()
                .contains("not hex")
        );
    }

    #[test]
    fn malformed_message_does_not_echo_the_header() {
        let message = MalformedSignature::of(b"<script>").to_string();
        assert!(!message.contains("<script>"), "{message}");
    }

    #[test]
    fn json_body_is_the_short_message_and_display_the_hint() {
        let error = Error::BodyTooLarge { limit: 1024 };
        let body: serde_json::Value = serde_json::from_str(&error.json_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "message": "request body too large" })
        );
        assert!(error.to_string().contains("with_body_limit"), "{error}");
    }

    #[test]
    fn reasons_are_distinct_snake_case_codes() {
        let invalid = InvalidPayload::new(PayloadErrorKind::NotJson, None);
        let errors = [
            Error::MissingSignature,
            Error::MalformedSignature(MalformedSignature::of(b"x")),
            Error::MultipleSignatures,
            Error::SignatureMismatch,
            Error::InvalidChatbotId(ChatbotIdProblem::Missing),
            Error::UnknownChatbot {
                chatbot_id: "b".to_owned(),
            },
            Error::SecretLookup("down".into()),
            Error::BodyTooLarge { limit: 1 },
            Error::read_body("reset"),
            Error::InvalidPayload(invalid),
        ];
        let mut reasons: Vec<_> = errors.iter().map(Error::reason).collect();
        for reason in &reasons {
            assert!(
                reason.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{reason}"
            );
        }
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), errors.len());
    }

    #[test]
    fn invalid_payload_keeps_serde_detail_as_source_only() {
        let serde_error = serde_json::from_str::<String>(r#"5551234"#).unwrap_err();
        let detail = serde_error.to_string();
        assert!(detail.contains("5551234"), "{detail}");
        let error = Error::InvalidPayload(InvalidPayload::new(
            PayloadErrorKind::UnexpectedShape,
            Some(serde_error),
        ));
        assert!(!error.to_string().contains("5551234"), "{error}");
        let debug = format!("{error:?}");
        assert!(!debug.contains("5551234"), "{debug}");
        assert!(debug.contains("UnexpectedShape"), "{debug}");
        assert!(error.to_string().contains("line 1, column 7"), "{error}");
        let source = std::error::Error::source(&error).unwrap();
        assert!(source.to_string().contains("5551234"));
    }
}
