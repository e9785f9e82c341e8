//! [`ChatbotSecrets`]: each chatbot's own secrets, and reading them from JSON.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::chatbot::is_valid_chatbot_id;
use crate::{Secret, SecretError};

/// Each chatbot's own secrets: for a receiver that serves several chatbots
/// from one endpoint, so that a body signed with one chatbot's secret is never
/// taken for another's.
///
/// Give it to [`Verifier::per_chatbot`](crate::Verifier::per_chatbot). Each
/// chatbot has its current secret first, then any older ones still accepted
/// while it is being rotated. Only the secrets of the chatbot a body names are
/// tried, never another's.
///
/// # Example
///
/// ```
/// use chatbase_core::{ChatbotSecrets, Secret, Verifier, sign};
///
/// let secrets = ChatbotSecrets::new()
///     .with_chatbot("bot_a", [Secret::new("secret-of-a")?])?
///     // During a rotation: the new secret, then the old one.
///     .with_chatbot("bot_b", [Secret::new("new-b")?, Secret::new("old-b")?])?;
/// let verifier = Verifier::per_chatbot(secrets);
///
/// let body = br#"{"eventType":"leads.submit","chatbotId":"bot_b","payload":{}}"#;
/// let signature = sign(&Secret::new("old-b")?, body);
/// assert!(verifier.verify(body, Some(signature.as_bytes())).is_ok());
///
/// // The same body signed with bot A's secret is refused.
/// let signature = sign(&Secret::new("secret-of-a")?, body);
/// assert_eq!(verifier.verify(body, Some(signature.as_bytes())).unwrap_err().status(), 401);
/// # Ok::<(), chatbase_core::SecretError>(())
/// ```
#[derive(Clone, Default)]
pub struct ChatbotSecrets {
    chatbots: HashMap<Box<str>, Arc<[Secret]>>,
}

impl ChatbotSecrets {
    /// No chatbots yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `chatbot_id` with its `secrets`, the current one first.
    ///
    /// # Errors
    ///
    /// [`SecretError::Chatbot`] if the id is not a chatbot id (1 to 128 ASCII
    /// letters, digits, `-` or `_`), if it has no secret, or if it is already
    /// there.
    pub fn with_chatbot(
        mut self,
        chatbot_id: &str,
        secrets: impl IntoIterator<Item = Secret>,
    ) -> Result<Self, SecretError> {
        self.insert(chatbot_id, secrets)?;
        Ok(self)
    }

    /// Adds `chatbot_id` with its `secrets`, the current one first.
    ///
    /// # Errors
    ///
    /// As [`with_chatbot`](ChatbotSecrets::with_chatbot).
    pub fn insert(
        &mut self,
        chatbot_id: &str,
        secrets: impl IntoIterator<Item = Secret>,
    ) -> Result<(), SecretError> {
        let problem = |problem| SecretError::Chatbot {
            chatbot_id: chatbot_id.to_owned(),
            problem,
        };
        if !is_valid_chatbot_id(chatbot_id) {
            return Err(problem(ChatbotSecretProblem::InvalidId));
        }
        let secrets: Arc<[Secret]> = secrets.into_iter().collect();
        if secrets.is_empty() {
            return Err(problem(ChatbotSecretProblem::NoSecret));
        }
        if self.chatbots.contains_key(chatbot_id) {
            return Err(problem(ChatbotSecretProblem::Duplicate));
        }
        self.chatbots.insert(chatbot_id.into(), secrets);
        Ok(())
    }

    /// Reads chatbots and secrets from JSON: an object whose keys are chatbot
    /// ids and whose values are a secret, or an array of secrets (the current
    /// one first):
    ///
    /// ```json
    /// {"bot_a": "secret-of-a", "bot_b": ["new-b", "old-b"]}
    /// ```
    ///
    /// # Errors
    ///
    /// [`SecretError::Map`] for JSON that is not such an object (with its line
    /// and column only), an empty object, or a chatbot whose id is not valid,
    /// that has no secret, an empty one or one with whitespace around it. The
    /// error names the chatbot, never the secret.
    pub fn from_json(json: &str) -> Result<Self, SecretError> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let read = deserializer
            .deserialize_map(MapVisitor)
            .and_then(|read| deserializer.end().map(|()| read));
        let entries = match read {
            Ok(entries) => entries,
            Err(error) => {
                // `serde_json`'s message may quote a value: keep its position.
                return Err(SecretError::Map(MapProblem::InvalidJson {
                    line: error.line(),
                    column: error.column(),
                }));
            }
        };
        if entries.is_empty() {
            return Err(SecretError::Map(MapProblem::Empty));
        }
        let mut chatbots = Self::new();
        for (chatbot_id, values) in entries {
            let problem = |problem| SecretError::Chatbot {
                chatbot_id: chatbot_id.clone(),
                problem,
            };
            let mut secrets = Vec::with_capacity(values.len());
            for value in values {
                secrets.push(Secret::new(value).map_err(|error| match error {
                    SecretError::SurroundingWhitespace => {
                        problem(ChatbotSecretProblem::SurroundingWhitespace)
                    }
                    _ => problem(ChatbotSecretProblem::EmptySecret),
                })?);
            }
            chatbots.insert(&chatbot_id, secrets)?;
        }
        Ok(chatbots)
    }

    /// How many chatbots there are.
    pub fn len(&self) -> usize {
        self.chatbots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.chatbots.is_empty()
    }

    /// Whether `chatbot_id` is one of them.
    pub fn contains(&self, chatbot_id: &str) -> bool {
        self.chatbots.contains_key(chatbot_id)
    }

    /// The secrets of `chatbot_id`.
    pub(crate) fn get(&self, chatbot_id: &str) -> Option<&[Secret]> {
        self.chatbots.get(chatbot_id).map(|secrets| &**secrets)
    }
}

/// Shows the chatbot ids and how many secrets each has, never the secrets.
impl fmt::Debug for ChatbotSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.chatbots.iter().collect();
        ids.sort_unstable_by(|a, b| a.0.cmp(b.0));
        f.debug_map()
            .entries(ids.iter().map(|(id, secrets)| (id, secrets.len())))
            .finish()
    }
}

/// What is wrong with one chatbot's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatbotSecretProblem {
    /// The id is not 1 to 128 ASCII letters, digits, `-` or `_`.
    InvalidId,
    /// The chatbot has no secret.
    NoSecret,
    /// One of its secrets is empty.
    EmptySecret,
    /// One of its secrets starts or ends with whitespace.
    SurroundingWhitespace,
    /// The chatbot is given twice.
    Duplicate,
}

impl fmt::Display for ChatbotSecretProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidId => "is not a chatbot id (1 to 128 ASCII letters, digits, `-` or `_`)",
            Self::NoSecret => "has no secret",
            Self::EmptySecret => "has an empty secret",
            Self::SurroundingWhitespace => {
                "has a secret that starts or ends with whitespace (a stray space or newline?)"
            }
            Self::Duplicate => "is given twice",
        })
    }
}

/// What is wrong with a JSON map of secrets as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapProblem {
    /// It is not a JSON object of strings or arrays of strings.
    InvalidJson {
        /// Where the JSON goes wrong: line, from 1.
        line: usize,
        /// Where the JSON goes wrong: column, from 1.
        column: usize,
    },
    /// It has no chatbot.
    Empty,
}

impl fmt::Display for MapProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidJson { line, column } => write!(
                f,
                "is not a JSON object of chatbot ids to a secret or an array of secrets \
                 (error at line {line}, column {column})"
            ),
            Self::Empty => f.write_str("has no chatbot"),
        }
    }
}

/// The entries of a JSON map, in order, with each value as a list.
type Entries = Vec<(String, Vec<String>)>;

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of chatbot ids to a secret or an array of secrets")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = Vec::new();
        while let Some(chatbot_id) = map.next_key::<String>()? {
            let secrets = map.next_value::<OneOrMany>()?.0;
            entries.push((chatbot_id, secrets));
        }
        Ok(entries)
    }
}

/// A secret, or an array of secrets.
struct OneOrMany(Vec<String>);

impl<'de> de::Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

struct OneOrManyVisitor;

impl<'de> Visitor<'de> for OneOrManyVisitor {
    type Value = OneOrMany;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret or an array of secrets")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
        Ok(OneOrMany(vec![v.to_owned()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
        let mut secrets = Vec::new();
        while let Some(secret) = seq.next_element::<String>()? {
            secrets.push(secret);
        }
        Ok(OneOrMany(secrets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_or_many_secrets_per_chatbot() {
        let secrets = ChatbotSecrets::from_json(r#"{"a":"s1","b":["s2","s3"]}"#).unwrap();
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets.get("a").unwrap().len(), 1);
        assert_eq!(secrets.get("b").unwrap().len(), 2);
        assert!(secrets.get("c").is_none());
        assert_eq!(format!("{secrets:?}"), r#"{"a": 1, "b": 2}"#);
    }

    fn problem(json: &str) -> SecretError {
        let error = ChatbotSecrets::from_json(json).unwrap_err();
        let shown = format!("{error} {error:?}");
        for secret in ["hunter2", "tops3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        error
    }

    #[test]
    fn bad_json_gives_a_position_and_never_a_value() {
        for json in [
            "",
            "not json",
            r#"["hunter2"]"#,
            r#"{"a":5}"#,
            r#"{"a":["hunter2",7]}"#,
            r#"{"a":"hunter2""#,
            r#"{"a":{"x":"hunter2"}}"#,
        ] {
            assert!(
                matches!(
                    problem(json),
                    SecretError::Map(MapProblem::InvalidJson { .. })
                ),
                "{json}"
            );
        }
        assert_eq!(problem("{}"), SecretError::Map(MapProblem::Empty));
    }

    #[test]
    fn bad_entries_name_the_chatbot_never_the_secret() {
        let cases = [
            (r#"{"a":""}"#, "a", ChatbotSecretProblem::EmptySecret),
            (r#"{"a":["ok",""]}"#, "a", ChatbotSecretProblem::EmptySecret),
            (
                r#"{"b":" hunter2"}"#,
                "b",
                ChatbotSecretProblem::SurroundingWhitespace,
            ),
            (
                r#"{"b":["tops3cret\n"]}"#,
                "b",
                ChatbotSecretProblem::SurroundingWhitespace,
            ),
            (r#"{"c":[]}"#, "c", ChatbotSecretProblem::NoSecret),
            (
                r#"{"a b":"hunter2"}"#,
                "a b",
                ChatbotSecretProblem::InvalidId,
            ),
            (r#"{"d":"x","d":"y"}"#, "d", ChatbotSecretProblem::Duplicate),
        ];
        for (json, id, expected) in cases {
            let error = problem(json);
            assert_eq!(
                error,
                SecretError::Chatbot {
                    chatbot_id: id.to_owned(),
                    problem: expected
                },
                "{json}"
            );
            assert!(error.to_string().contains(id), "{error}");
        }
    }

    #[test]
    fn built_in_code_with_the_same_rules() {
        let secret = || Secret::new("s").unwrap();
        let secrets = ChatbotSecrets::new().with_chatbot("a", [secret()]).unwrap();
        assert!(secrets.contains("a"));
        assert!(matches!(
            secrets.clone().with_chatbot("a", [secret()]),
            Err(SecretError::Chatbot {
                problem: ChatbotSecretProblem::Duplicate,
                ..
            })
        ));
        assert!(matches!(
            secrets.with_chatbot("b", []),
            Err(SecretError::Chatbot {
                problem: ChatbotSecretProblem::NoSecret,
                ..
            })
        ));
    }
}
