//! `chatbase verify`: whether a signature verifies a body, and why not.

use std::path::PathBuf;

use chatbase_cli::diagnose::{Candidate, diagnose};
use chatbase_cli::secrets::claimed_chatbot_id;
use chatbase_core::{PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR};

use crate::keys::{read_body, secrets_file};
use crate::output::{BAD, Fail, GOOD, NOTE, missing, usage};

/// Check a signature against a body, and diagnose why it does not verify.
///
/// Verifies with one or more secrets, as a receiver would. When that fails,
/// finds the usual cause: a secret with whitespace around it, SHA-256
/// instead of SHA-1, a re-serialized body, another chatbot's secret, or the
/// wrong secret.
///
/// Never prints a secret or the signature a secret would make.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase verify --body-file event.json --signature 6adbce953168e65effe7b1da874cc05a25b3fc75
  chatbase verify --secret \"$OLD\" --secret \"$NEW\" --signature \"$SIG\" < event.json
  chatbase verify --secrets-file secrets.json --body-file event.json --signature \"$SIG\"

Exit status: 0 if it verifies, 1 if it does not, 2 for a usage error.")]
pub(crate) struct Args {
    /// The body, byte for byte as received ('-': standard input, the
    /// default).
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,

    /// The x-chatbase-signature header's value.
    #[arg(long, value_name = "SIGNATURE")]
    signature: String,

    /// A secret to verify with (repeat for several) [default: the
    /// environment variables CHATBASE_WEBHOOK_SECRET and
    /// CHATBASE_WEBHOOK_PREVIOUS_SECRET].
    #[arg(long, value_name = "SECRET", conflicts_with = "secrets_file")]
    secret: Vec<String>,

    /// A JSON file of secrets per chatbot: verifies with the secrets of the
    /// chatbot named by --chatbot-id, else by the body's chatbotId.
    #[arg(long, value_name = "PATH")]
    secrets_file: Option<PathBuf>,

    /// With --secrets-file: the chatbot whose secrets verify [default: the
    /// body's chatbotId].
    #[arg(
        long,
        value_name = "ID",
        requires = "secrets_file",
        conflicts_with = "secret"
    )]
    chatbot_id: Option<String>,
}

pub(crate) fn run(args: &Args) -> Result<(), Fail> {
    let body = read_body("verify", args.body_file.as_deref())?;
    let (secrets, others, context) = candidates(args, &body)?;
    let diagnosis = diagnose(&body, args.signature.as_bytes(), &secrets, &others);
    if let Some(label) = diagnosis.verified_by() {
        anstream::println!("{GOOD}verified{GOOD:#}: the signature matches the body with {label}");
        for finding in diagnosis.findings() {
            anstream::println!("  {NOTE}note{NOTE:#}: {finding}");
        }
        return Ok(());
    }
    match (diagnosis.error(), context) {
        (Some(error), _) => anstream::println!("{BAD}does not verify{BAD:#}: {error}"),
        (None, Some(context)) => anstream::println!("{BAD}does not verify{BAD:#}: {context}"),
        (None, None) => anstream::println!("{BAD}does not verify{BAD:#}"),
    }
    for finding in diagnosis.findings() {
        anstream::println!("  {NOTE}diagnosis{NOTE:#}: {finding}");
    }
    Err(Fail::Failed)
}

/// The secrets to verify with, the others to try in a diagnosis, and why
/// there are none to verify with (a chatbot the secrets file lacks).
type Candidates = (Vec<Candidate>, Vec<Candidate>, Option<String>);

fn candidates(args: &Args, body: &[u8]) -> Result<Candidates, Fail> {
    let candidate = |label: String, key: Vec<u8>| {
        Candidate::new(label.clone(), key)
            .map_err(|_| usage("verify", format!("{label}: the secret is empty")))
    };
    if !args.secret.is_empty() {
        let several = args.secret.len() > 1;
        let secrets = args
            .secret
            .iter()
            .enumerate()
            .map(|(n, secret)| {
                let label = if several {
                    format!("--secret #{}", n + 1)
                } else {
                    "--secret".to_owned()
                };
                candidate(label, secret.as_bytes().to_vec())
            })
            .collect::<Result<_, _>>()?;
        return Ok((secrets, Vec::new(), None));
    }
    if let Some(path) = &args.secrets_file {
        let file = secrets_file("verify", path)?;
        let chatbot = args.chatbot_id.clone().or_else(|| claimed_chatbot_id(body));
        let secrets = chatbot
            .as_deref()
            .map(|id| file.candidates(id))
            .unwrap_or_default();
        let others = file
            .chatbot_ids()
            .filter(|id| Some(*id) != chatbot.as_deref())
            .flat_map(|id| file.candidates(id))
            .collect();
        let context = match &chatbot {
            None => Some(
                "the body names no chatbotId, and no --chatbot-id was given: no secret to \
                 verify with"
                    .to_owned(),
            ),
            Some(id) if secrets.is_empty() => Some(format!(
                "{} has no secret for chatbot {id:?}",
                path.display()
            )),
            Some(_) => None,
        };
        return Ok((secrets, others, context));
    }
    let mut secrets = Vec::new();
    for var in [SECRET_ENV_VAR, PREVIOUS_SECRET_ENV_VAR] {
        match std::env::var_os(var) {
            Some(value) if !value.is_empty() => {
                let value = value.into_string().map_err(|_| {
                    usage(
                        "verify",
                        format!("the environment variable {var} is not valid Unicode"),
                    )
                })?;
                secrets.push(candidate(var.to_owned(), value.into_bytes())?);
            }
            _ => {}
        }
    }
    if secrets.is_empty() {
        return Err(missing(
            "verify",
            format!(
                "no secret: pass --secret (once or more) or --secrets-file, or set {SECRET_ENV_VAR}"
            ),
        ));
    }
    Ok((secrets, Vec::new(), None))
}
