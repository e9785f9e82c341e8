//! [`SecretsFile`]: a secret per chatbot, from the JSON file that the
//! receivers read through `CHATBASE_WEBHOOK_SECRETS_FILE`.
//!
//! The file holds one JSON object mapping each chatbot id to its secret, or to
//! its secrets during a rotation, the current one first:
//!
//! ```json
//! {
//!   "bot_sales": "the-secret-of-bot_sales",
//!   "bot_support": ["its-current-secret", "its-previous-secret"]
//! }
//! ```
//!
//! Secrets are taken exactly as written, whitespace included (as Chatbase
//! signs with them); [`SecretsFile::with_surrounding_whitespace`] says which
//! ones have some, so that a tool can warn. Errors name the file and the
//! chatbot, never a secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chatbase_core::Secret;
use serde::Deserialize;
use serde_json::Value;

use crate::diagnose::Candidate;

/// A secret per chatbot: each chatbot id with its secrets, current first.
///
/// Its `Debug` shows the path and the chatbot ids, never a secret.
#[derive(Clone)]
pub struct SecretsFile {
    path: PathBuf,
    chatbots: BTreeMap<String, Vec<Secret>>,
    /// The same secrets' bytes, for [`SecretsFile::candidates`].
    keys: BTreeMap<String, Vec<Vec<u8>>>,
}

impl SecretsFile {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    ///
    /// [`SecretsFileError`] if it cannot be read, is not a JSON object, is
    /// empty, or maps a chatbot to anything but a non-empty secret or a
    /// non-empty list of them.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, SecretsFileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| SecretsFileError {
            path: path.to_owned(),
            problem: format!("cannot read it: {error}"),
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses `json`, the contents of the file at `path` (named in errors).
    ///
    /// # Errors
    ///
    /// As [`SecretsFile::read`].
    pub fn parse(path: impl AsRef<Path>, json: &[u8]) -> Result<Self, SecretsFileError> {
        let path = path.as_ref();
        let invalid = |problem: String| SecretsFileError {
            path: path.to_owned(),
            problem,
        };
        // serde_json's syntax errors give a position, never the text: no
        // secret can leak through them.
        let map: BTreeMap<String, Value> = serde_json::from_slice(json).map_err(|error| {
            invalid(format!(
                "expected a JSON object {{\"<chatbotId>\": \"<secret>\" or [\"<current>\", \"<previous>\"]}}: \
                 {} at line {}, column {}",
                error_category(&error),
                error.line(),
                error.column()
            ))
        })?;
        if map.is_empty() {
            return Err(invalid("it names no chatbot".to_owned()));
        }
        let mut chatbots = BTreeMap::new();
        let mut keys = BTreeMap::new();
        for (chatbot_id, value) in map {
            let texts = match value {
                Value::String(secret) => vec![secret],
                Value::Array(values) if !values.is_empty() => values
                    .into_iter()
                    .map(|value| match value {
                        Value::String(secret) => Ok(secret),
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, ()>>()
                    .map_err(|()| {
                        invalid(format!(
                            "chatbot {chatbot_id:?}: every secret in its list must be a string"
                        ))
                    })?,
                Value::Array(_) => {
                    return Err(invalid(format!(
                        "chatbot {chatbot_id:?}: its list of secrets is empty"
                    )));
                }
                _ => {
                    return Err(invalid(format!(
                        "chatbot {chatbot_id:?}: expected a secret (a string) or a list of them"
                    )));
                }
            };
            let secrets = texts
                .iter()
                .map(|text| Secret::new_verbatim(text.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| invalid(format!("chatbot {chatbot_id:?}: a secret is empty")))?;
            keys.insert(
                chatbot_id.clone(),
                texts.into_iter().map(String::into_bytes).collect(),
            );
            chatbots.insert(chatbot_id, secrets);
        }
        Ok(Self {
            path: path.to_owned(),
            chatbots,
            keys,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secrets of `chatbot_id`, current first; `None` for a chatbot the
    /// file does not name.
    pub fn secrets(&self, chatbot_id: &str) -> Option<&[Secret]> {
        self.chatbots.get(chatbot_id).map(Vec::as_slice)
    }

    /// The current secret of `chatbot_id`: the one Chatbase signs with now.
    pub fn current(&self, chatbot_id: &str) -> Option<&Secret> {
        self.secrets(chatbot_id).and_then(<[Secret]>::first)
    }

    /// The chatbot ids, in order.
    pub fn chatbot_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.chatbots.keys().map(String::as_str)
    }

    /// Each chatbot id with its secrets, current first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Secret])> + '_ {
        self.chatbots
            .iter()
            .map(|(id, secrets)| (id.as_str(), secrets.as_slice()))
    }

    /// The secrets of `chatbot_id` as [`Candidate`]s for
    /// [`diagnose`](crate::diagnose::diagnose), named `the current secret
    /// of <id>`, `secret #2 of <id>`...: empty for a chatbot the file does
    /// not name.
    pub fn candidates(&self, chatbot_id: &str) -> Vec<Candidate> {
        self.keys
            .get(chatbot_id)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(n, key)| {
                let label = if n == 0 {
                    format!("the current secret of {chatbot_id}")
                } else {
                    format!("secret #{} of {chatbot_id}", n + 1)
                };
                Candidate::new(label, key.clone()).ok()
            })
            .collect()
    }

    /// The secrets that start or end with whitespace: the chatbot id and the
    /// secret's position in its list (0 for the current one).
    pub fn with_surrounding_whitespace(&self) -> Vec<(&str, usize)> {
        self.iter()
            .flat_map(|(id, secrets)| {
                secrets
                    .iter()
                    .enumerate()
                    .filter(|(_, secret)| secret.has_surrounding_whitespace())
                    .map(move |(n, _)| (id, n))
            })
            .collect()
    }
}

impl std::fmt::Debug for SecretsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsFile")
            .field("path", &self.path)
            .field("chatbot_ids", &self.chatbots.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn error_category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Eof => "the JSON ends too early",
        serde_json::error::Category::Data => "not a JSON object",
        serde_json::error::Category::Io => "cannot read it",
    }
}

/// A secrets file that cannot be used. Its message names the file and the
/// chatbot, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secrets file {}: {problem}", path.display())]
pub struct SecretsFileError {
    path: PathBuf,
    problem: String,
}

/// The `chatbotId` a body claims, read without verifying it: a string
/// `chatbotId` at the top of a JSON object. `None` if there is none.
///
/// Only use it to choose which chatbot's secret to verify the body with.
pub fn claimed_chatbot_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Claim {
        #[serde(rename = "chatbotId")]
        chatbot_id: String,
    }
    serde_json::from_slice::<Claim>(body)
        .ok()
        .map(|claim| claim.chatbot_id)
}

#[cfg(test)]
mod tests {
    use chatbase_core::sign;

    use super::*;

    fn parse(json: &str) -> Result<SecretsFile, SecretsFileError> {
        SecretsFile::parse("secrets.json", json.as_bytes())
    }

    #[test]
    fn a_secret_or_a_list_current_first() {
        let file = parse(r#"{"bot_a": "sa", "bot_b": ["sb-new", "sb-old"]}"#).unwrap();
        assert_eq!(file.chatbot_ids().collect::<Vec<_>>(), ["bot_a", "bot_b"]);
        let signed = |secret: &Secret| sign(secret, b"x");
        let expect = |text: &str| sign(&Secret::new(text).unwrap(), b"x");
        assert_eq!(signed(file.current("bot_a").unwrap()), expect("sa"));
        assert_eq!(signed(file.current("bot_b").unwrap()), expect("sb-new"));
        assert_eq!(file.secrets("bot_b").unwrap().len(), 2);
        assert_eq!(signed(&file.secrets("bot_b").unwrap()[1]), expect("sb-old"));
        assert!(file.secrets("bot_c").is_none());
        assert!(file.with_surrounding_whitespace().is_empty());
        let shown = format!("{file:?}");
        assert!(
            shown.contains("bot_b") && !shown.contains("sb-new"),
            "{shown}"
        );
        let labels: Vec<_> = file
            .candidates("bot_b")
            .iter()
            .map(|c| c.label().to_owned())
            .collect();
        assert_eq!(
            labels,
            ["the current secret of bot_b", "secret #2 of bot_b"]
        );
        assert_eq!(
            signed(file.candidates("bot_b")[1].secret()),
            expect("sb-old")
        );
        assert!(file.candidates("bot_c").is_empty());
    }

    #[test]
    fn secrets_are_verbatim_and_whitespace_is_reported() {
        let file = parse(r#"{"bot": ["ok", " padded\n"]}"#).unwrap();
        assert_eq!(file.with_surrounding_whitespace(), [("bot", 1)]);
        let padded = Secret::new_verbatim(" padded\n").unwrap();
        assert_eq!(
            sign(&file.secrets("bot").unwrap()[1], b"x"),
            sign(&padded, b"x")
        );
    }

    #[test]
    fn errors_name_the_file_and_chatbot_never_the_secret() {
        for (json, says) in [
            ("", "ends too early"),
            ("{", "ends too early"),
            ("[\"hunter2\"]", "not a JSON object"),
            ("{\"bot\": hunter2}", "invalid JSON"),
            ("{}", "names no chatbot"),
            ("{\"bot\": []}", "\"bot\": its list of secrets is empty"),
            ("{\"bot\": [\"hunter2\", 5]}", "\"bot\": every secret"),
            ("{\"bot\": 5}", "\"bot\": expected a secret"),
            ("{\"bot\": \"\"}", "\"bot\": a secret is empty"),
            (
                "{\"bot\": [\"hunter2\", \"\"]}",
                "\"bot\": a secret is empty",
            ),
        ] {
            let error = parse(json).unwrap_err().to_string();
            assert!(error.starts_with("secrets file secrets.json: "), "{error}");
            assert!(error.contains(says), "{json}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn reads_a_file() {
        let path = std::env::temp_dir().join(format!(
            "chatbase-cli-secrets-{}.json",
            crate::send::new_conversation_id()
        ));
        std::fs::write(&path, r#"{"bot": "s"}"#).unwrap();
        let file = SecretsFile::read(&path).unwrap();
        assert_eq!(file.path(), path);
        std::fs::remove_file(&path).unwrap();
        let error = SecretsFile::read(&path).unwrap_err().to_string();
        assert!(error.contains("cannot read it"), "{error}");
    }

    #[test]
    fn the_claimed_chatbot_id() {
        assert_eq!(
            claimed_chatbot_id(br#"{"eventType":"x","chatbotId":"bot_1","payload":{}}"#),
            Some("bot_1".to_owned())
        );
        assert_eq!(claimed_chatbot_id(br#"{"chatbotId":5}"#), None);
        assert_eq!(claimed_chatbot_id(b"not json"), None);
        assert_eq!(claimed_chatbot_id(br#"{"payload":{}}"#), None);
    }
}
