//! Where the secrets come from: `--secret`, the environment, or a secrets
//! file; warnings for secrets with whitespace around them. Secrets are used
//! exactly as given and never printed.

use std::path::{Path, PathBuf};

use chatbase_cli::secrets::SecretsFile;
use chatbase_core::{PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR, Secret};

use crate::output::{Fail, missing, usage, warn};

/// The secret flags of `send` and `sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SecretArgs {
    /// The webhook secret, used exactly as given [default: the environment
    /// variable CHATBASE_WEBHOOK_SECRET]. Prefer the variable: a command line
    /// is visible to other users.
    #[arg(long, value_name = "SECRET", conflicts_with = "secrets_file")]
    pub(crate) secret: Option<String>,

    /// A JSON file of secrets per chatbot: {"CHATBOT_ID": "SECRET" or
    /// ["CURRENT", "PREVIOUS", ...]}. Signs with the current secret of
    /// the chatbot named by --chatbot-id, else by the body's chatbotId, else
    /// of the file's only chatbot.
    #[arg(long, value_name = "PATH")]
    pub(crate) secrets_file: Option<PathBuf>,
}

/// The secret to sign with, and how to name it.
pub(crate) struct SigningKey {
    pub(crate) secret: Secret,
    pub(crate) label: String,
    /// The chatbot whose secret it is, when it comes from a secrets file.
    pub(crate) chatbot_id: Option<String>,
}

/// The secret `command` signs with: `--secret`, else the chatbot's current
/// secret in `--secrets-file` (the chatbot is `chatbot_id`, else the one the
/// body claims, else the file's only one), else the environment variable.
/// `None` if there is none.
pub(crate) fn signing_key(
    command: &'static str,
    args: &SecretArgs,
    chatbot_id: Option<&str>,
    claimed: Option<String>,
) -> Result<Option<SigningKey>, Fail> {
    if let Some(secret) = &args.secret {
        return Ok(Some(SigningKey {
            secret: verbatim(command, "--secret", secret.as_bytes().to_vec())?,
            label: "--secret".to_owned(),
            chatbot_id: None,
        }));
    }
    if let Some(path) = &args.secrets_file {
        let file = secrets_file(command, path)?;
        let id = match chatbot_id.map(str::to_owned).or(claimed) {
            Some(id) => id,
            None => only_chatbot(command, &file)?,
        };
        let Some(secret) = file.current(&id) else {
            return Err(usage(
                command,
                format!(
                    "{} has no secret for chatbot {id:?} (it has {})",
                    path.display(),
                    list(file.chatbot_ids())
                ),
            ));
        };
        return Ok(Some(SigningKey {
            secret: secret.clone(),
            label: format!("the current secret of {id}"),
            chatbot_id: Some(id),
        }));
    }
    Ok(
        env_secret(command, SECRET_ENV_VAR)?.map(|secret| SigningKey {
            secret,
            label: SECRET_ENV_VAR.to_owned(),
            chatbot_id: None,
        }),
    )
}

fn only_chatbot(command: &'static str, file: &SecretsFile) -> Result<String, Fail> {
    let mut ids = file.chatbot_ids();
    match (ids.next(), ids.next()) {
        (Some(only), None) => Ok(only.to_owned()),
        _ => Err(missing(
            command,
            format!(
                "{} has secrets for several chatbots ({}): choose one with --chatbot-id",
                file.path().display(),
                list(file.chatbot_ids())
            ),
        )),
    }
}

fn list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.map(|id| format!("{id:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a secrets file, warning about each secret with whitespace around
/// it.
pub(crate) fn secrets_file(command: &'static str, path: &Path) -> Result<SecretsFile, Fail> {
    let file = SecretsFile::read(path).map_err(|error| usage(command, error.to_string()))?;
    for (id, n) in file.with_surrounding_whitespace() {
        let which = if n == 0 {
            format!("the current secret of chatbot {id:?}")
        } else {
            format!("secret #{} of chatbot {id:?}", n + 1)
        };
        warn_whitespace(&format!("{which} in {}", path.display()));
    }
    Ok(file)
}

/// A secret from its bytes, exactly as given, with a warning if it has
/// whitespace around it.
pub(crate) fn verbatim(command: &'static str, label: &str, key: Vec<u8>) -> Result<Secret, Fail> {
    let secret = Secret::new_verbatim(key)
        .map_err(|_| usage(command, format!("{label}: the secret is empty")))?;
    if secret.has_surrounding_whitespace() {
        warn_whitespace(label);
    }
    Ok(secret)
}

fn warn_whitespace(label: &str) {
    warn(&format!(
        "{label} starts or ends with whitespace; it is used exactly as given, as Chatbase \
         would sign with it. If the whitespace came with a copy and paste, remove it."
    ));
}

/// The secret in the environment variable `var`: `None` if it is unset.
pub(crate) fn env_secret(command: &'static str, var: &str) -> Result<Option<Secret>, Fail> {
    match std::env::var_os(var) {
        None => Ok(None),
        Some(value) => {
            let value = value.into_string().map_err(|_| {
                usage(
                    command,
                    format!("the environment variable {var} is not valid Unicode"),
                )
            })?;
            if value.is_empty() {
                return Err(usage(
                    command,
                    format!(
                        "the environment variable {var} is empty: set it to the secret from the \
                         chatbot's webhook settings, or unset it"
                    ),
                ));
            }
            verbatim(command, var, value.into_bytes()).map(Some)
        }
    }
}

/// The secrets a receiver would verify with, from the environment:
/// `CHATBASE_WEBHOOK_SECRET`, and `CHATBASE_WEBHOOK_PREVIOUS_SECRET` when it
/// is set and not empty, with their names.
pub(crate) fn env_secrets(command: &'static str) -> Result<Vec<(String, Secret)>, Fail> {
    let mut secrets = Vec::new();
    if let Some(secret) = env_secret(command, SECRET_ENV_VAR)? {
        secrets.push((SECRET_ENV_VAR.to_owned(), secret));
        let previous = std::env::var_os(PREVIOUS_SECRET_ENV_VAR).is_some_and(|v| !v.is_empty());
        if previous && let Some(secret) = env_secret(command, PREVIOUS_SECRET_ENV_VAR)? {
            secrets.push((PREVIOUS_SECRET_ENV_VAR.to_owned(), secret));
        }
    }
    Ok(secrets)
}

/// The body at `path`, or standard input for `-` or no path (refusing a
/// terminal, which would wait for typing).
pub(crate) fn read_body(command: &'static str, path: Option<&Path>) -> Result<Vec<u8>, Fail> {
    use std::io::{IsTerminal as _, Read as _};
    match path {
        Some(path) if path != Path::new("-") => std::fs::read(path).map_err(|error| {
            usage(
                command,
                format!("cannot read --body-file {}: {error}", path.display()),
            )
        }),
        _ => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(missing(
                    command,
                    "no body: give --body-file PATH, or pipe the body to standard input",
                ));
            }
            let mut body = Vec::new();
            stdin
                .read_to_end(&mut body)
                .map_err(|error| usage(command, format!("cannot read standard input: {error}")))?;
            Ok(body)
        }
    }
}
