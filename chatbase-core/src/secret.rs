//! The webhook signing secret.

use std::env::{self, VarError};
use std::fmt;
use std::io;
use std::path::PathBuf;

use hmac::KeyInit;

use crate::chatbot_secrets::{ChatbotSecretProblem, MapProblem};
use crate::signature::HmacSha1;

/// The environment variable [`Secret::from_env`] reads: `CHATBASE_WEBHOOK_SECRET`.
pub const SECRET_ENV_VAR: &str = "CHATBASE_WEBHOOK_SECRET";

/// The environment variable [`Verifier::from_env`](crate::Verifier::from_env) reads
/// for a second, retiring secret during a rotation: `CHATBASE_WEBHOOK_PREVIOUS_SECRET`.
pub const PREVIOUS_SECRET_ENV_VAR: &str = "CHATBASE_WEBHOOK_PREVIOUS_SECRET";

/// The environment variable [`Verifier::from_env`](crate::Verifier::from_env) reads
/// for secrets per chatbot, as JSON: `CHATBASE_WEBHOOK_SECRETS`.
pub const SECRETS_ENV_VAR: &str = "CHATBASE_WEBHOOK_SECRETS";

/// The environment variable [`Verifier::from_env`](crate::Verifier::from_env) reads
/// for the path of a file holding secrets per chatbot, as JSON (a mounted
/// secret): `CHATBASE_WEBHOOK_SECRETS_FILE`.
pub const SECRETS_FILE_ENV_VAR: &str = "CHATBASE_WEBHOOK_SECRETS_FILE";

/// The secret Chatbase signs webhooks with, as set in the chatbot's webhook settings.
///
/// Chatbase computes `HMAC-SHA1(key = secret, message = raw body)`, keyed with the
/// secret's UTF-8 bytes exactly as Node's `crypto.createHmac('sha1', secret)` does,
/// so a `Secret` is those bytes and nothing else: no trimming, no decoding.
///
/// A `Secret` never shows its bytes: both [`Debug`](fmt::Debug) and
/// [`Display`](fmt::Display) print `[redacted]`, so it is safe to log a
/// configuration struct that holds one.
///
/// # Example
///
/// ```
/// use chatbase_core::Secret;
///
/// let secret = Secret::new("whsec-from-the-chatbase-dashboard")?;
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// assert_eq!(secret.to_string(), "[redacted]");
///
/// // An empty secret, or one with a stray space or newline around it, is refused.
/// assert!(Secret::new("").is_err());
/// assert!(Secret::new("pasted-with-a-newline\n").is_err());
/// # Ok::<(), chatbase_core::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    key: Box<[u8]>,
    /// The HMAC with the key already absorbed (the inner and outer padded key
    /// blocks hashed once), so each signature costs only the body's blocks.
    mac: HmacSha1,
}

impl Secret {
    /// A secret from its text or bytes.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] if it is empty, and
    /// [`SecretError::SurroundingWhitespace`] if it starts or ends with whitespace
    /// (a space or newline picked up while copying it is the most common reason
    /// every signature fails). Use [`Secret::new_verbatim`] for a secret that really
    /// does start or end with whitespace.
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let secret = Self::new_verbatim(key)?;
        if secret.has_surrounding_whitespace() {
            return Err(SecretError::SurroundingWhitespace);
        }
        Ok(secret)
    }

    /// A secret from its bytes exactly as given, whitespace included.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] if it is empty.
    pub fn new_verbatim(key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let key = key.into();
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        // HMAC takes keys of any length (longer ones are hashed first): this
        // constructor has no error case for it.
        let Ok(mac) = HmacSha1::new_from_slice(&key) else {
            unreachable!("HMAC-SHA1 accepts keys of any length")
        };
        Ok(Self {
            key: key.into_boxed_slice(),
            mac,
        })
    }

    /// The secret in the environment variable `CHATBASE_WEBHOOK_SECRET`
    /// ([`SECRET_ENV_VAR`]).
    ///
    /// # Errors
    ///
    /// A [`SecretError::Env`] naming the variable when it is unset, not valid
    /// Unicode, empty, or has whitespace around it.
    pub fn from_env() -> Result<Self, SecretError> {
        Self::from_env_var(SECRET_ENV_VAR)
    }

    /// The secret in the environment variable `name`.
    ///
    /// # Errors
    ///
    /// As [`Secret::from_env`], naming `name`.
    pub fn from_env_var(name: &str) -> Result<Self, SecretError> {
        Self::from_var(name, env::var(name))
    }

    /// [`Secret::from_env_var`] on a value already looked up.
    pub(crate) fn from_var(
        name: &str,
        value: Result<String, VarError>,
    ) -> Result<Self, SecretError> {
        let env_error = |problem| SecretError::Env {
            var: name.to_owned(),
            problem,
        };
        match value {
            Ok(value) => Self::new(value).map_err(|error| error.in_env(name)),
            Err(VarError::NotPresent) => Err(env_error(EnvProblem::NotSet)),
            Err(VarError::NotUnicode(_)) => Err(env_error(EnvProblem::NotUnicode)),
        }
    }

    /// Whether the secret starts or ends with ASCII whitespace.
    ///
    /// Always `false` for a secret made with [`Secret::new`] or
    /// [`Secret::from_env`], which refuse such secrets.
    pub fn has_surrounding_whitespace(&self) -> bool {
        let ws = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
        ws(self.key.first()) || ws(self.key.last())
    }

    /// A fresh HMAC-SHA1 keyed with this secret, ready to take a body.
    pub(crate) fn mac(&self) -> HmacSha1 {
        self.mac.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a [`Secret`], [`ChatbotSecrets`](crate::ChatbotSecrets) or
/// [`Verifier`](crate::Verifier) could not be made.
///
/// Messages name the environment variable and the chatbot involved but never
/// show a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret is empty.
    #[error("the Chatbase webhook secret is empty")]
    Empty,
    /// The secret starts or ends with whitespace.
    #[error(
        "the Chatbase webhook secret starts or ends with whitespace, most likely picked up \
         while copying it; remove it (or use `Secret::new_verbatim` if it is really part \
         of the secret)"
    )]
    SurroundingWhitespace,
    /// The environment variable `var` does not hold usable secrets.
    #[error("environment variable {var} {problem}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong with it.
        problem: EnvProblem,
    },
    /// More than one of the variables that each say where the secrets are is
    /// set: which one should win?
    #[error("{} are all set: set only one (CHATBASE_WEBHOOK_SECRET with CHATBASE_WEBHOOK_PREVIOUS_SECRET for one chatbot, CHATBASE_WEBHOOK_SECRETS or CHATBASE_WEBHOOK_SECRETS_FILE for secrets per chatbot)", vars.join(", "))]
    ConflictingEnv {
        /// The variables set.
        vars: Vec<String>,
    },
    /// A chatbot's entry is unusable.
    #[error("chatbot {chatbot_id:?} {problem}")]
    Chatbot {
        /// The chatbot's id, as given.
        chatbot_id: String,
        /// What is wrong with it.
        problem: ChatbotSecretProblem,
    },
    /// A JSON map of secrets is unusable as a whole.
    #[error("the map of secrets {0}")]
    Map(MapProblem),
}

/// What is wrong with an environment variable that should hold secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvProblem {
    /// The variable is not set.
    NotSet,
    /// The variable is set but not valid Unicode.
    NotUnicode,
    /// The variable is set but empty.
    Empty,
    /// The value starts or ends with whitespace.
    SurroundingWhitespace,
    /// Its JSON map of secrets is unusable as a whole.
    Map(MapProblem),
    /// One chatbot's entry in its map is unusable.
    Chatbot {
        /// The chatbot's id, as given.
        chatbot_id: String,
        /// What is wrong with it.
        problem: ChatbotSecretProblem,
    },
    /// The file it names cannot be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        kind: io::ErrorKind,
    },
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSet => f.write_str(
                "is not set: set it to the secret from the chatbot's webhook settings in Chatbase",
            ),
            Self::NotUnicode => f.write_str("is not valid Unicode"),
            Self::Empty => {
                f.write_str("is empty: set it to the secret from the chatbot's webhook settings")
            }
            Self::SurroundingWhitespace => {
                f.write_str("starts or ends with whitespace (a stray space or newline?): remove it")
            }
            Self::Map(problem) => write!(f, "holds a map of secrets that {problem}"),
            Self::Chatbot {
                chatbot_id,
                problem,
            } => write!(f, "has chatbot {chatbot_id:?}, which {problem}"),
            Self::Unreadable { path, kind } => {
                write!(f, "names {}, which cannot be read: {kind}", path.display())
            }
        }
    }
}

impl SecretError {
    /// This error, found in what the environment variable `var` holds.
    pub(crate) fn in_env(self, var: &str) -> Self {
        let problem = match self {
            Self::Empty => EnvProblem::Empty,
            Self::SurroundingWhitespace => EnvProblem::SurroundingWhitespace,
            Self::Map(problem) => EnvProblem::Map(problem),
            Self::Chatbot {
                chatbot_id,
                problem,
            } => EnvProblem::Chatbot {
                chatbot_id,
                problem,
            },
            other => return other,
        };
        Self::Env {
            var: var.to_owned(),
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new("super-secret-value").unwrap();
        let shown = format!("{secret:?} {secret} {secret:#?}");
        assert!(!shown.contains("super"), "{shown}");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(secret.to_string(), "[redacted]");
    }

    #[test]
    fn empty_is_refused() {
        assert!(matches!(Secret::new(""), Err(SecretError::Empty)));
        assert!(matches!(
            Secret::new_verbatim(Vec::new()),
            Err(SecretError::Empty)
        ));
    }

    #[test]
    fn surrounding_whitespace_is_refused_unless_verbatim() {
        for key in [" k", "k ", "k\n", "\tk", "k\r\n"] {
            assert!(
                matches!(Secret::new(key), Err(SecretError::SurroundingWhitespace)),
                "{key:?}"
            );
            let verbatim = Secret::new_verbatim(key).unwrap();
            assert!(verbatim.has_surrounding_whitespace());
            assert_eq!(&*verbatim.key, key.as_bytes());
        }
        let inner = Secret::new("a b").unwrap();
        assert!(!inner.has_surrounding_whitespace());
    }

    #[test]
    fn keeps_the_exact_utf8_bytes() {
        let secret = Secret::new("Zoë 🚀 \u{0}nul").unwrap();
        assert_eq!(&*secret.key, "Zoë 🚀 \u{0}nul".as_bytes());
    }

    fn env_problem(value: Result<String, VarError>) -> EnvProblem {
        match Secret::from_var("MY_SECRET_VAR", value) {
            Err(error @ SecretError::Env { .. }) => {
                let message = error.to_string();
                assert!(message.contains("MY_SECRET_VAR"), "{message}");
                let SecretError::Env { var, problem } = error else {
                    unreachable!()
                };
                assert_eq!(var, "MY_SECRET_VAR");
                problem
            }
            other => panic!("expected an Env error, got {other:?}"),
        }
    }

    #[test]
    fn env_errors_name_the_variable() {
        assert_eq!(env_problem(Err(VarError::NotPresent)), EnvProblem::NotSet);
        let not_unicode = VarError::NotUnicode(std::ffi::OsString::from("x"));
        assert_eq!(env_problem(Err(not_unicode)), EnvProblem::NotUnicode);
        assert_eq!(env_problem(Ok(String::new())), EnvProblem::Empty);
        assert_eq!(
            env_problem(Ok("whsec\n".to_owned())),
            EnvProblem::SurroundingWhitespace
        );
    }

    #[test]
    fn env_value_is_used_as_is() {
        let secret = Secret::from_var("V", Ok("abc".to_owned())).unwrap();
        assert_eq!(&*secret.key, b"abc");
    }

    #[test]
    fn env_error_never_shows_the_value() {
        let error = Secret::from_var("V", Ok(" hunter2".to_owned())).unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
        assert!(!format!("{error:?}").contains("hunter2"));
    }
}
