//! `chatbase sign`: the `x-chatbase-signature` value for a body, for curl.

use std::path::PathBuf;

use chatbase_cli::secrets::claimed_chatbot_id;
use chatbase_core::{SECRET_ENV_VAR, SIGNATURE_HEADER, sign};

use crate::keys::{SecretArgs, read_body, signing_key};
use crate::output::{Fail, missing};

/// Print the x-chatbase-signature value of a body, for curl.
///
/// The lowercase hex HMAC-SHA1 of the body's exact bytes, keyed with the
/// secret's exact bytes, as Chatbase computes it.
#[derive(Debug, clap::Args)]
#[command(after_help = r#"Examples:
  chatbase sign --body-file event.json
  chatbase sign --secrets-file secrets.json < event.json
  curl http://127.0.0.1:3000/webhook --data-binary @event.json \
    -H 'content-type: application/json' \
    -H "$(chatbase sign --header --body-file event.json)""#)]
pub(crate) struct Args {
    /// The body to sign, byte for byte ('-': standard input, the default).
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,

    #[command(flatten)]
    secrets: SecretArgs,

    /// With --secrets-file: the chatbot whose current secret signs [default:
    /// the body's chatbotId].
    #[arg(
        long,
        value_name = "ID",
        requires = "secrets_file",
        conflicts_with = "secret"
    )]
    chatbot_id: Option<String>,

    /// Print the whole header line, `x-chatbase-signature: <hex>`, for
    /// `curl -H`.
    #[arg(long)]
    header: bool,
}

pub(crate) fn run(args: &Args) -> Result<(), Fail> {
    let body = read_body("sign", args.body_file.as_deref())?;
    let claimed = claimed_chatbot_id(&body);
    let key = signing_key("sign", &args.secrets, args.chatbot_id.as_deref(), claimed)?.ok_or_else(
        || {
            missing(
                "sign",
                format!("no secret: set {SECRET_ENV_VAR}, or pass --secret or --secrets-file"),
            )
        },
    )?;
    let signature = sign(&key.secret, &body);
    if args.header {
        anstream::println!("{SIGNATURE_HEADER}: {signature}");
    } else {
        anstream::println!("{signature}");
    }
    Ok(())
}
