//! Why a signature does not verify: the checks behind `chatbase verify`.
//!
//! [`diagnose`] verifies a body and a signature with one or more
//! [`Candidate`] secrets, as a receiver would. When that fails it looks for
//! the usual causes, each a [`Finding`]:
//!
//! - a secret with whitespace around it (it tries the secret trimmed, and
//!   with a newline appended);
//! - HMAC-SHA256 instead of HMAC-SHA1, or base64 instead of hex;
//! - the signature of the same JSON written differently: by a proxy, a
//!   framework's JSON parser, or a relay such as smee.io (see [`Form`]);
//! - a signature made with another chatbot's secret;
//! - when nothing explains it: the wrong secret.
//!
//! It also notes upper-case hex, which verifies (Chatbase sends lower case).
//!
//! Findings name secrets by their [`Candidate::label`], never by value, and
//! never show the signature a secret would make.
//!
//! ```
//! use chatbase_cli::diagnose::{Candidate, Finding, diagnose};
//! use chatbase_core::{Secret, sign};
//!
//! # fn main() -> Result<(), chatbase_core::SecretError> {
//! let body = br#"{"eventType":"leads.submit","chatbotId":"bot","payload":{}}"#;
//! let signature = sign(&Secret::new("the-secret")?, body);
//!
//! // The receiver's secret was pasted with a newline.
//! let given = Candidate::new("--secret", "the-secret\n")?;
//! let diagnosis = diagnose(body, signature.as_bytes(), &[given], &[]);
//! assert!(!diagnosis.verifies());
//! assert!(matches!(
//!     diagnosis.findings(),
//!     [Finding::SecretWhitespace { label, .. }] if label == "--secret"
//! ));
//! # Ok(())
//! # }
//! ```

mod reserialize;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chatbase_core::{Error, Secret, SecretError, Verifier};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

pub use self::reserialize::Form;

/// A secret to try, and how to name it in findings (never by its value).
///
/// Its `Debug` shows the label only.
#[derive(Clone)]
pub struct Candidate {
    label: String,
    /// The secret's bytes: the diagnoses hash them with SHA-256 and try
    /// them trimmed, which a [`Secret`] does not allow.
    key: Vec<u8>,
    secret: Secret,
}

impl Candidate {
    /// The secret `key` (its exact bytes), named `label` in findings:
    /// `--secret #2`, `bot_a's current secret`...
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] for an empty key.
    pub fn new(label: impl Into<String>, key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let key = key.into();
        let secret = Secret::new_verbatim(key.clone())?;
        Ok(Self {
            label: label.into(),
            key,
            secret,
        })
    }

    /// How findings name it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    fn hmac<M: Mac + KeyInit>(&self, body: &[u8]) -> Vec<u8> {
        match <M as KeyInit>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(body);
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC takes keys of any length.
            Err(_) => Vec::new(),
        }
    }
}

impl fmt::Debug for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidate")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A cause found for a signature that does not verify, or a note on one that
/// does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The signature verifies, and is upper-case hex: accepted, though
    /// Chatbase sends lower case.
    UpperCaseHex,
    /// The signature has whitespace around it; without it, it verifies if
    /// `verifies`.
    SignatureWhitespace {
        /// Whether it verifies once trimmed.
        verifies: bool,
    },
    /// The signature starts with a scheme prefix such as `sha1=`: Chatbase
    /// sends the bare hex digits.
    Prefixed {
        /// The prefix, e.g. `sha256=`.
        prefix: String,
        /// Whether the rest verifies.
        verifies: bool,
    },
    /// The signature is HMAC-SHA256 of the body with this secret: the sender
    /// uses SHA-256 where Chatbase uses SHA-1.
    Sha256 {
        /// The secret's label.
        label: String,
    },
    /// The signature is 64 hex digits, the length of SHA-256, but no secret
    /// given makes it.
    Sha256Length,
    /// The signature is the HMAC in base64 instead of hex.
    Base64 {
        /// The secret's label.
        label: String,
        /// `SHA-1` or `SHA-256`.
        algorithm: &'static str,
    },
    /// The signature verifies with this secret trimmed (or with a newline
    /// appended, if `newline_appended`): the secret given or the signer's has
    /// stray whitespace.
    SecretWhitespace {
        /// The secret's label.
        label: String,
        /// Whether it is the secret with a newline appended that verifies
        /// (otherwise: the secret trimmed).
        newline_appended: bool,
    },
    /// The signature verifies the same JSON written in another form, with
    /// this secret: something re-serialized the body between the signer and
    /// here.
    Reserialized {
        /// The form of the body the signature is for.
        form: Form,
        /// The secret's label.
        label: String,
    },
    /// The signature verifies with a secret that is not one this body should
    /// be verified with (another chatbot's).
    OtherSecret {
        /// The secret's label.
        label: String,
    },
    /// Nothing above explains it: most likely the wrong secret, or a body
    /// changed in a way not tried here.
    WrongSecret,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UpperCaseHex => f.write_str(
                "the signature is upper-case hex: Chatbase sends lower case, and chatbase-core \
                 accepts either, but a receiver comparing strings would not",
            ),
            Self::SignatureWhitespace { verifies } => {
                f.write_str("the signature has whitespace around it")?;
                if *verifies {
                    f.write_str("; it verifies once trimmed (HTTP servers trim header values)")
                } else {
                    f.write_str("; it does not verify once trimmed either")
                }
            }
            Self::Prefixed { prefix, verifies } => {
                write!(
                    f,
                    "the signature starts with {prefix:?}: Chatbase sends the bare hex digits"
                )?;
                if *verifies {
                    f.write_str("; without the prefix it verifies")
                } else {
                    Ok(())
                }
            }
            Self::Sha256 { label } => write!(
                f,
                "the signature is HMAC-SHA256 of the body with {label}: the signer uses SHA-256, \
                 but Chatbase signs with HMAC-SHA1 (40 hex digits)"
            ),
            Self::Sha256Length => f.write_str(
                "the signature has 64 hex digits, the length of SHA-256, but none of the \
                 secrets makes it: Chatbase signs with HMAC-SHA1 (40 hex digits)",
            ),
            Self::Base64 { label, algorithm } => write!(
                f,
                "the signature is the HMAC-{algorithm} of the body with {label}, in base64: \
                 Chatbase sends HMAC-SHA1 in lower-case hex"
            ),
            Self::SecretWhitespace {
                label,
                newline_appended: false,
            } => write!(
                f,
                "it matches with {label} trimmed: the secret given has whitespace around it, \
                 most likely picked up while copying it; remove it"
            ),
            Self::SecretWhitespace {
                label,
                newline_appended: true,
            } => write!(
                f,
                "it matches with {label} followed by a newline: the signer's secret ends with \
                 a newline (read from a file?)"
            ),
            Self::Reserialized { form, label } => write!(
                f,
                "it matches the same JSON {form}, with {label}: something between the signer \
                 and here re-serialized the body (a proxy, a framework's JSON parser, a relay \
                 such as smee.io); verify the raw bytes exactly as they arrive"
            ),
            Self::OtherSecret { label } => write!(
                f,
                "it matches {label}, which is not a secret for this body: it is signed with \
                 another chatbot's secret, or the body names the wrong chatbotId"
            ),
            Self::WrongSecret => f.write_str(
                "none of the usual causes explains it: most likely the wrong secret (each \
                 chatbot has its own, in its webhook settings in Chatbase), or a body that is \
                 not the exact bytes that were signed",
            ),
        }
    }
}

/// The outcome of [`diagnose`]: whether it verifies, with which secret, and
/// the findings.
#[derive(Debug)]
pub struct Diagnosis {
    verified_by: Option<String>,
    error: Option<Error>,
    findings: Vec<Finding>,
}

impl Diagnosis {
    /// Whether the signature verifies the body with one of the secrets.
    pub fn verifies(&self) -> bool {
        self.verified_by.is_some()
    }

    /// The label of the secret it verifies with.
    pub fn verified_by(&self) -> Option<&str> {
        self.verified_by.as_deref()
    }

    /// Why a receiver would reject it, when it does not verify.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// What was found: the causes of a failure, or notes on a success.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }
}

/// Verifies `body` against `signature` (the `x-chatbase-signature` value)
/// with the `secrets` a receiver would use; when it fails, looks for the
/// usual causes, also trying the `others` (secrets a receiver must not use
/// for this body, such as other chatbots').
pub fn diagnose(
    body: &[u8],
    signature: &[u8],
    secrets: &[Candidate],
    others: &[Candidate],
) -> Diagnosis {
    let verified_by = matching(body, signature, secrets);
    if let Some(label) = verified_by {
        let upper = signature.iter().any(u8::is_ascii_uppercase);
        return Diagnosis {
            verified_by: Some(label.to_owned()),
            error: None,
            findings: if upper {
                vec![Finding::UpperCaseHex]
            } else {
                Vec::new()
            },
        };
    }
    let error = secrets.first().map(|first| {
        let verifier = secrets
            .iter()
            .skip(1)
            .fold(Verifier::new(first.secret.clone()), |verifier, other| {
                verifier.with_secret(other.secret.clone())
            });
        match verifier.verify(body, Some(signature)) {
            Err(error) => error,
            // `matching` said no secret verifies it.
            Ok(()) => Error::SignatureMismatch,
        }
    });
    let mut findings = Vec::new();
    let all: Vec<&Candidate> = secrets.iter().chain(others).collect();

    let mut value = signature;
    let trimmed = signature.trim_ascii();
    if trimmed.len() != signature.len() {
        let verifies = matching(body, trimmed, secrets).is_some();
        findings.push(Finding::SignatureWhitespace { verifies });
        value = trimmed;
    }
    if let Some(at) = value.iter().position(|&b| b == b'=')
        && let (Some(prefix), Some(rest)) = (value.get(..=at), value.get(at + 1..))
        && prefix.iter().take(at).all(u8::is_ascii_alphanumeric)
        && !rest.is_empty()
    {
        let verifies = matching(body, rest, secrets).is_some();
        findings.push(Finding::Prefixed {
            prefix: String::from_utf8_lossy(prefix).into_owned(),
            verifies,
        });
        value = rest;
    }
    if findings.iter().any(|finding| {
        matches!(
            finding,
            Finding::SignatureWhitespace { verifies: true }
                | Finding::Prefixed { verifies: true, .. }
        )
    }) {
        return Diagnosis {
            verified_by: None,
            error,
            findings,
        };
    }

    if value.len() == 64 && value.iter().all(u8::is_ascii_hexdigit) {
        let tag = hex::decode(value).unwrap_or_default();
        match all.iter().find(|c| hmac_sha256(c, body) == tag) {
            Some(candidate) => findings.push(Finding::Sha256 {
                label: candidate.label.clone(),
            }),
            None => findings.push(Finding::Sha256Length),
        }
    } else if let Some(found) = base64_finding(body, value, &all) {
        findings.push(found);
    } else if value.len() == 40 && value.iter().all(u8::is_ascii_hexdigit) {
        findings.extend(hex_findings(body, value, secrets, others));
    }
    if !findings.iter().any(is_cause) {
        findings.push(Finding::WrongSecret);
    }
    Diagnosis {
        verified_by: None,
        error,
        findings,
    }
}

/// Whether a finding explains the failure (rather than noting something).
fn is_cause(finding: &Finding) -> bool {
    !matches!(
        finding,
        Finding::UpperCaseHex
            | Finding::SignatureWhitespace { verifies: false }
            | Finding::Prefixed {
                verifies: false,
                ..
            }
            | Finding::Sha256Length
    )
}

/// The causes of a well-formed (40 hex digits) signature that does not
/// verify.
fn hex_findings(
    body: &[u8],
    signature: &[u8],
    secrets: &[Candidate],
    others: &[Candidate],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for candidate in secrets {
        let key = &candidate.key;
        let mut variants = Vec::new();
        let trimmed = key.trim_ascii();
        if trimmed.len() != key.len() && !trimmed.is_empty() {
            variants.push((trimmed.to_vec(), false));
        }
        if !key.ends_with(b"\n") {
            let mut newline = key.clone();
            newline.push(b'\n');
            variants.push((newline, true));
        }
        for (bytes, newline_appended) in variants {
            if let Ok(secret) = Secret::new_verbatim(bytes)
                && verifies(&secret, body, signature)
            {
                findings.push(Finding::SecretWhitespace {
                    label: candidate.label.clone(),
                    newline_appended,
                });
            }
        }
    }
    if let Some(other) = others.iter().find(|c| verifies(&c.secret, body, signature)) {
        findings.push(Finding::OtherSecret {
            label: other.label.clone(),
        });
    }
    if findings.is_empty() {
        for form in Form::ALL {
            let Some(changed) = form.apply(body) else {
                continue;
            };
            if changed == body {
                continue;
            }
            let all = secrets.iter().chain(others);
            if let Some(candidate) = all
                .clone()
                .find(|c| verifies(&c.secret, &changed, signature))
            {
                findings.push(Finding::Reserialized {
                    form,
                    label: candidate.label.clone(),
                });
                break;
            }
        }
    }
    findings
}

/// A base64 signature of the body, with SHA-1 or SHA-256, if it is one.
fn base64_finding(body: &[u8], signature: &[u8], all: &[&Candidate]) -> Option<Finding> {
    let decoded = [STANDARD.decode(signature), URL_SAFE.decode(signature)]
        .into_iter()
        .chain([URL_SAFE_NO_PAD.decode(signature)])
        .find_map(Result::ok)?;
    all.iter().find_map(|candidate| {
        let algorithm = match decoded.len() {
            20 if hmac_sha1(candidate, body) == decoded => "SHA-1",
            32 if hmac_sha256(candidate, body) == decoded => "SHA-256",
            _ => return None,
        };
        Some(Finding::Base64 {
            label: candidate.label.clone(),
            algorithm,
        })
    })
}

/// The label of the first secret that verifies `body` and `signature`.
fn matching<'a>(body: &[u8], signature: &[u8], secrets: &'a [Candidate]) -> Option<&'a str> {
    secrets
        .iter()
        .find(|c| verifies(&c.secret, body, signature))
        .map(Candidate::label)
}

fn verifies(secret: &Secret, body: &[u8], signature: &[u8]) -> bool {
    Verifier::new(secret.clone())
        .with_body_limit(usize::MAX)
        .verify(body, Some(signature))
        .is_ok()
}

fn hmac_sha1(candidate: &Candidate, body: &[u8]) -> Vec<u8> {
    candidate.hmac::<Hmac<Sha1>>(body)
}

fn hmac_sha256(candidate: &Candidate, body: &[u8]) -> Vec<u8> {
    candidate.hmac::<Hmac<Sha256>>(body)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use chatbase_core::sign;

    use super::*;

    const BODY: &[u8] = br#"{"eventType":"leads.submit","chatbotId":"bot_a","payload":{"conversationId":"c","customerEmail":"ada@example.com"}}"#;
    const SECRET: &str = "the-real-secret";

    fn candidate(label: &str, key: &str) -> Candidate {
        Candidate::new(label, key).unwrap()
    }

    fn real() -> Candidate {
        candidate("--secret", SECRET)
    }

    fn signature_of(key: &str, body: &[u8]) -> String {
        sign(&Secret::new_verbatim(key).unwrap(), body)
    }

    fn findings(signature: &str, secrets: &[Candidate], others: &[Candidate]) -> Vec<Finding> {
        let diagnosis = diagnose(BODY, signature.as_bytes(), secrets, others);
        assert!(!diagnosis.verifies(), "{signature}");
        assert!(diagnosis.error().is_some() || secrets.is_empty());
        diagnosis.findings().to_vec()
    }

    #[test]
    fn verifies_and_names_the_secret() {
        let signature = signature_of(SECRET, BODY);
        let secrets = [candidate("old", "old-secret"), real()];
        let diagnosis = diagnose(BODY, signature.as_bytes(), &secrets, &[]);
        assert!(diagnosis.verifies());
        assert_eq!(diagnosis.verified_by(), Some("--secret"));
        assert!(diagnosis.findings().is_empty());
        assert!(diagnosis.error().is_none());
    }

    #[test]
    fn upper_case_hex_verifies_with_a_note() {
        let signature = signature_of(SECRET, BODY).to_ascii_uppercase();
        let diagnosis = diagnose(BODY, signature.as_bytes(), &[real()], &[]);
        assert!(diagnosis.verifies());
        assert_eq!(diagnosis.findings(), [Finding::UpperCaseHex]);
        assert!(Finding::UpperCaseHex.to_string().contains("accepts either"));
    }

    #[test]
    fn a_secret_with_whitespace_matches_trimmed() {
        let signature = signature_of(SECRET, BODY);
        let padded = candidate("--secret", &format!(" {SECRET}\n"));
        assert_eq!(
            findings(&signature, &[padded], &[]),
            [Finding::SecretWhitespace {
                label: "--secret".to_owned(),
                newline_appended: false
            }]
        );
    }

    #[test]
    fn a_signer_secret_with_a_newline_is_found() {
        let signature = signature_of(&format!("{SECRET}\n"), BODY);
        assert_eq!(
            findings(&signature, &[real()], &[]),
            [Finding::SecretWhitespace {
                label: "--secret".to_owned(),
                newline_appended: true
            }]
        );
    }

    #[test]
    fn sha256_is_recognised() {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(BODY);
        let signature = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            findings(&signature, &[real()], &[]),
            [Finding::Sha256 {
                label: "--secret".to_owned()
            }]
        );
        let other = "ab".repeat(32);
        assert_eq!(
            findings(&other, &[real()], &[]),
            [Finding::Sha256Length, Finding::WrongSecret]
        );
    }

    #[test]
    fn base64_is_recognised() {
        let tag = hex::decode(signature_of(SECRET, BODY)).unwrap();
        let signature = STANDARD.encode(tag);
        assert_eq!(
            findings(&signature, &[real()], &[]),
            [Finding::Base64 {
                label: "--secret".to_owned(),
                algorithm: "SHA-1"
            }]
        );
    }

    #[test]
    fn prefixes_and_whitespace_around_the_signature() {
        let signature = signature_of(SECRET, BODY);
        assert_eq!(
            findings(&format!("sha1={signature}"), &[real()], &[]),
            [Finding::Prefixed {
                prefix: "sha1=".to_owned(),
                verifies: true
            }]
        );
        assert_eq!(
            findings(&format!(" {signature}\n"), &[real()], &[]),
            [Finding::SignatureWhitespace { verifies: true }]
        );
    }

    #[test]
    fn a_re_serialized_body_is_found_with_its_form() {
        // The body arrived pretty-printed; the signature is of the compact
        // original.
        let original = Form::Compact.apply(BODY).unwrap();
        let signature = signature_of(SECRET, &original);
        let pretty = Form::Pretty2.apply(BODY).unwrap();
        let diagnosis = diagnose(&pretty, signature.as_bytes(), &[real()], &[]);
        assert!(!diagnosis.verifies());
        assert_eq!(
            diagnosis.findings(),
            [Finding::Reserialized {
                form: Form::Compact,
                label: "--secret".to_owned()
            }]
        );
        // The signer signed the body with its keys sorted.
        let sorted = Form::SortedKeys.apply(BODY).unwrap();
        let signature = signature_of(SECRET, &sorted);
        assert_eq!(
            findings(&signature, &[real()], &[]),
            [Finding::Reserialized {
                form: Form::SortedKeys,
                label: "--secret".to_owned()
            }]
        );
    }

    #[test]
    fn another_chatbots_secret_is_named() {
        let signature = signature_of("bot_b-secret", BODY);
        let others = [candidate("the current secret of bot_b", "bot_b-secret")];
        assert_eq!(
            findings(&signature, &[real()], &others),
            [Finding::OtherSecret {
                label: "the current secret of bot_b".to_owned()
            }]
        );
        // With no secret for the body's chatbot at all.
        assert_eq!(
            findings(&signature, &[], &others),
            [Finding::OtherSecret {
                label: "the current secret of bot_b".to_owned()
            }]
        );
    }

    #[test]
    fn otherwise_the_wrong_secret() {
        let signature = signature_of("something-else", BODY);
        assert_eq!(findings(&signature, &[real()], &[]), [Finding::WrongSecret]);
        assert_eq!(findings("nonsense", &[real()], &[]), [Finding::WrongSecret]);
    }

    #[test]
    fn findings_never_show_a_secret_or_a_signature() {
        let expected = signature_of(SECRET, BODY);
        let padded = candidate("--secret", &format!(" {SECRET}"));
        for signature in [expected.clone(), signature_of("x", BODY), "ab".repeat(32)] {
            let diagnosis = diagnose(
                BODY,
                signature.as_bytes(),
                std::slice::from_ref(&padded),
                &[],
            );
            let shown = format!(
                "{diagnosis:?} {}",
                diagnosis
                    .findings()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<String>()
            );
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains(&expected), "{shown}");
        }
        assert!(!format!("{padded:?}").contains(SECRET));
    }
}
