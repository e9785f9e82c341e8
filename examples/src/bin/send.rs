//! `send`: signs a test event and sends it to a Chatbase webhook endpoint, as
//! `stripe trigger` does for Stripe.
//!
//! Exit status: 0 for a 2xx reply, 1 for any other reply or a failed request, 2
//! for a usage error (a missing secret among them).

// A command-line program: printing is what it is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use chatbase_core::{Lead, SECRET_ENV_VAR, Secret};
use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser};
use examples::send::{self, Outgoing, Sender};
use reqwest::Method;

/// Sign a test event and send it to a Chatbase webhook endpoint.
///
/// By default a realistic `leads.submit` event with a new conversation id,
/// signed with the secret as Chatbase signs it (HMAC-SHA1 of the raw body, in
/// `x-chatbase-signature`). Prints the status and the response body; exits with
/// 0 for a 2xx status, 1 otherwise, 2 for a usage error.
#[derive(Debug, Parser)]
#[command(name = "send", version)]
struct Cli {
    /// The endpoint: an http or https URL.
    #[arg(long, value_name = "URL")]
    url: String,

    /// The webhook secret (prefer the environment variable: a command line is
    /// visible to other users).
    #[arg(long, value_name = "SECRET", env = SECRET_ENV_VAR, hide_env_values = true)]
    secret: Option<String>,

    /// The event type of the body made up.
    #[arg(long, value_name = "TYPE", default_value = Lead::EVENT_TYPE, conflicts_with = "body_file")]
    event: String,

    /// The chatbotId of the body made up.
    #[arg(long, value_name = "ID", default_value = send::DEFAULT_CHATBOT_ID, conflicts_with = "body_file")]
    chatbot_id: String,

    /// Send this file's bytes verbatim instead, signed.
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,

    /// Send a wrong signature (well-formed, not matching): the endpoint must answer 401.
    #[arg(long, conflicts_with = "unsigned")]
    bad_signature: bool,

    /// Send no signature header at all: the endpoint must answer 401.
    #[arg(long)]
    unsigned: bool,

    /// The HTTP method.
    #[arg(short = 'X', long, value_name = "METHOD", default_value = "POST", value_parser = parse_method)]
    method: Method,

    /// Trust only this PEM certificate authority for https (like curl's --cacert).
    #[arg(long, value_name = "PATH")]
    cacert: Option<PathBuf>,
}

/// Parses a method name, in any case (`get` is `GET`).
fn parse_method(name: &str) -> Result<Method, String> {
    Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{name:?} is not an HTTP method"))
}

/// A secret for `--bad-signature` when none is given: the signature it makes
/// is well-formed, and wrong for any other secret.
const DECOY_SECRET: &str = "send --bad-signature: not your secret";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let prepared = match prepare(&cli) {
        Ok(prepared) => prepared,
        // Usage errors: clap's format and exit status 2.
        Err(usage) => Cli::command().error(usage.kind, usage.message).exit(),
    };
    match run(&cli, prepared).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A usage error, reported by clap.
struct Usage {
    kind: ErrorKind,
    message: String,
}

/// What to send and how, from the command line.
struct Prepared {
    outgoing: Outgoing,
    description: String,
    sender: Sender,
}

fn prepare(cli: &Cli) -> Result<Prepared, Usage> {
    let usage = |kind, message: String| Usage { kind, message };
    if let Err(error) = send::parse_url(&cli.url) {
        return Err(usage(ErrorKind::ValueValidation, error.to_string()));
    }
    let secret = match cli.secret.as_deref() {
        // The secret itself is never shown, only what is wrong with it.
        Some(secret) => Some(Secret::new(secret).map_err(|error| {
            usage(
                ErrorKind::ValueValidation,
                format!("--secret / {SECRET_ENV_VAR}: {error}"),
            )
        })?),
        None if cli.unsigned || cli.bad_signature => None,
        None => {
            return Err(usage(
                ErrorKind::MissingRequiredArgument,
                format!(
                    "no secret: set {SECRET_ENV_VAR} or pass --secret (or send --unsigned / --bad-signature)"
                ),
            ));
        }
    };

    let (body, what) = match &cli.body_file {
        Some(path) => {
            let body = std::fs::read(path).map_err(|error| {
                usage(
                    ErrorKind::Io,
                    format!("cannot read --body-file {}: {error}", path.display()),
                )
            })?;
            (Bytes::from(body), format!("{}", path.display()))
        }
        None => {
            let conversation_id = send::new_conversation_id();
            let body = send::event_body(&cli.event, &cli.chatbot_id, &conversation_id);
            (
                body,
                format!("{}, conversation {conversation_id}", cli.event),
            )
        }
    };
    let size = body.len();
    let (outgoing, signing) = if cli.unsigned {
        (Outgoing::unsigned(body), "no signature")
    } else if cli.bad_signature {
        let decoy;
        let key = match &secret {
            Some(secret) => secret,
            None => {
                decoy = Secret::new(DECOY_SECRET)
                    .map_err(|error| usage(ErrorKind::ValueValidation, error.to_string()))?;
                &decoy
            }
        };
        (Outgoing::badly_signed(key, body), "a wrong signature")
    } else {
        match &secret {
            Some(secret) => (Outgoing::signed(secret, body), "signed"),
            None => (Outgoing::unsigned(body), "no signature"),
        }
    };
    let outgoing = outgoing.with_method(cli.method.clone());

    let sender = match &cli.cacert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|error| {
                usage(
                    ErrorKind::Io,
                    format!("cannot read --cacert {}: {error}", path.display()),
                )
            })?;
            Sender::with_ca_certificate(&pem).map_err(|error| {
                usage(
                    ErrorKind::ValueValidation,
                    format!("--cacert {}: {error}", path.display()),
                )
            })?
        }
        None => Sender::new().map_err(|error| usage(ErrorKind::Io, error.to_string()))?,
    };
    Ok(Prepared {
        outgoing,
        description: format!("{what}, {size} bytes, {signing}"),
        sender,
    })
}

/// Sends the request and prints the reply; `Ok(true)` for a 2xx status.
async fn run(cli: &Cli, prepared: Prepared) -> Result<bool, send::SendError> {
    let Prepared {
        outgoing,
        description,
        sender,
    } = prepared;
    println!("{} {} ({description})", outgoing.method(), cli.url);
    let reply = sender.send(&cli.url, &outgoing).await?;
    println!("{}", reply.status());
    let text = reply.text();
    if !text.is_empty() {
        println!("{text}");
    }
    if reply.is_truncated() {
        println!("[response body cut at {} bytes]", send::MAX_REPLY_BYTES);
    }
    Ok(reply.status().is_success())
}
