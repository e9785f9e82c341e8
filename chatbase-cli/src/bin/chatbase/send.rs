//! `chatbase send`: sign a test event and send it, once or many times, or
//! replay captured requests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chatbase_cli::capture;
use chatbase_cli::secrets::claimed_chatbot_id;
use chatbase_cli::send::{
    self, DEFAULT_CHATBOT_ID, Expect, LEADS_SUBMIT, MAX_REPLY_BYTES, Outgoing, Reply, SendError,
    Sender, StatusPattern, Tally,
};
use chatbase_core::{SECRET_ENV_VAR, Secret};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, Url};

use crate::keys::{SecretArgs, read_body, signing_key};
use crate::output::{BAD, DIM, Fail, GOOD, HEAD, error, failed, missing, usage, with_hint};

/// Send a signed test event to a webhook endpoint, or replay captured
/// requests.
///
/// Signs as Chatbase would, or as a forger would; once or many times. By
/// default a realistic leads.submit event with a new conversation id,
/// signed with the secret exactly as given (HMAC-SHA1 of the raw body, in
/// x-chatbase-signature). Prints the status and the reply. Succeeds when
/// every reply has the expected status: 2xx, or 401 for --bad-signature,
/// --unsigned and --tampered (change it with --expect).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase send --url http://127.0.0.1:3000/webhook
  chatbase send --url http://127.0.0.1:3000/webhook --bad-signature
  chatbase send --url https://hooks.example.com/chatbase --body-file event.json
  chatbase send --url http://127.0.0.1:3000/webhook --repeat 1000 --concurrency 16
  chatbase send --url http://127.0.0.1:3000/webhook --secrets-file secrets.json --chatbot-id bot_sales
  chatbase send --url http://127.0.0.1:3000/webhook --replay ./captured

Exit status: 0 if every reply has the expected status, 1 otherwise (or no
reply), 2 for a usage error.")]
pub(crate) struct Args {
    /// The endpoint: an http or https URL.
    #[arg(long, value_name = "URL")]
    url: String,

    #[command(flatten)]
    secrets: SecretArgs,

    /// The chatbotId of the body made up; with --secrets-file, also the
    /// chatbot whose current secret signs [default: bot_example, or the
    /// secrets file's only chatbot].
    #[arg(long, value_name = "ID")]
    chatbot_id: Option<String>,

    /// The eventType of the body made up.
    #[arg(long, value_name = "TYPE", default_value = LEADS_SUBMIT, conflicts_with = "body_file")]
    event: String,

    /// Send this file's bytes instead, signed ('-': standard input).
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,

    /// Send a wrong signature (well-formed, not matching): the endpoint
    /// must answer 401.
    #[arg(long, group = "forgery")]
    bad_signature: bool,

    /// Send no signature header: the endpoint must answer 401.
    #[arg(long, group = "forgery")]
    unsigned: bool,

    /// Sign the body, then change it (as a man in the middle would): the
    /// endpoint must answer 401.
    #[arg(long, group = "forgery")]
    tampered: bool,

    /// Send the requests captured by `chatbase listen --capture` (a
    /// directory of .http files, or one file) again, byte for byte, with
    /// their original signature headers.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["body_file", "event", "forgery", "secret", "secrets_file", "chatbot_id", "repeat", "method"]
    )]
    replay: Option<PathBuf>,

    /// The HTTP method.
    #[arg(short = 'X', long, value_name = "METHOD", default_value = "POST", value_parser = parse_method)]
    method: Method,

    /// The status that counts as success: a status (401) or a class (2xx);
    /// repeat for several [default: 2xx; 401 with --bad-signature,
    /// --unsigned or --tampered].
    #[arg(long, value_name = "STATUS")]
    expect: Vec<StatusPattern>,

    /// Send this many requests (made-up bodies get a new conversation id
    /// each; a --body-file is sent as it is each time, as a redelivery
    /// would be). Shows a progress bar on a terminal and a histogram of the
    /// statuses at the end.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,

    /// With --repeat: how many requests to have under way at once.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,

    /// Trust only this PEM certificate authority for https (like curl's
    /// --cacert).
    #[arg(long, value_name = "PATH")]
    cacert: Option<PathBuf>,
}

/// Parses a method name, in any case (`get` is `GET`).
fn parse_method(name: &str) -> Result<Method, String> {
    Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{name:?} is not an HTTP method"))
}

/// A secret for `--bad-signature` when none is given: the signature it
/// makes is well-formed, and wrong for any other secret.
const DECOY_SECRET: &str = "chatbase send --bad-signature: not your secret";

/// How the requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    Signed,
    Bad,
    Unsigned,
    Tampered,
}

pub(crate) async fn run(args: Args) -> Result<(), Fail> {
    let url = send::parse_url(&args.url)
        .map_err(|error| usage("send", with_hint(&error.to_string(), error.hint())))?;
    let sender = sender(args.cacert.as_deref())?;
    if let Some(path) = &args.replay {
        let expect = Expect::any_of(args.expect.iter().copied());
        return replay(&sender, &url, path, &expect).await;
    }

    let signing = if args.unsigned {
        Signing::Unsigned
    } else if args.bad_signature {
        Signing::Bad
    } else if args.tampered {
        Signing::Tampered
    } else {
        Signing::Signed
    };
    let expect = if args.expect.is_empty() && signing != Signing::Signed {
        Expect::unauthorized()
    } else {
        Expect::any_of(args.expect.iter().copied())
    };

    let fixed = match &args.body_file {
        Some(path) => Some(Bytes::from(read_body("send", Some(path))?)),
        None => None,
    };
    let claimed = fixed.as_deref().and_then(claimed_chatbot_id);
    let key = if signing == Signing::Unsigned {
        None
    } else {
        signing_key("send", &args.secrets, args.chatbot_id.as_deref(), claimed)?
    };
    let (secret, signed_with) = match (key, signing) {
        (Some(key), _) => (Some(key.secret), Some((key.label, key.chatbot_id))),
        (None, Signing::Unsigned) => (None, None),
        (None, Signing::Bad) => (
            Some(Secret::new(DECOY_SECRET).map_err(|e| usage("send", e.to_string()))?),
            None,
        ),
        (None, Signing::Signed | Signing::Tampered) => {
            return Err(missing(
                "send",
                format!(
                    "no secret: set {SECRET_ENV_VAR}, or pass --secret or --secrets-file (or \
                     send --unsigned / --bad-signature)"
                ),
            ));
        }
    };
    let chatbot_id = args
        .chatbot_id
        .clone()
        .or_else(|| signed_with.as_ref().and_then(|(_, id)| id.clone()))
        .unwrap_or_else(|| DEFAULT_CHATBOT_ID.to_owned());
    let label = signed_with.map(|(label, _)| label);

    let make = |body: Bytes| {
        let outgoing = match (&secret, signing) {
            (Some(secret), Signing::Signed) => Outgoing::signed(secret, body),
            (Some(secret), Signing::Bad) => Outgoing::badly_signed(secret, body),
            (Some(secret), Signing::Tampered) => Outgoing::signed(secret, body).tampered(),
            _ => Outgoing::unsigned(body),
        };
        outgoing.with_method(args.method.clone())
    };
    let how = match (signing, &label) {
        (Signing::Signed, Some(label)) => format!("signed with {label}"),
        (Signing::Tampered, Some(label)) => format!("signed with {label}, then tampered with"),
        (Signing::Bad, _) => "a wrong signature".to_owned(),
        _ => "no signature".to_owned(),
    };

    let count = usize::try_from(args.repeat).unwrap_or(usize::MAX);
    let concurrency = usize::try_from(args.concurrency).unwrap_or(1);
    match &fixed {
        Some(body) => {
            let what = args
                .body_file
                .as_deref()
                .map_or_else(|| "stdin".to_owned(), |path| path.display().to_string());
            let description = format!("{what}, {} bytes, {how}", body.len());
            let outgoing = make(body.clone());
            if count == 1 {
                once(&sender, &url, &outgoing, &description, signing, &expect).await
            } else {
                many(
                    &sender,
                    &url,
                    &description,
                    count,
                    concurrency,
                    &expect,
                    |_| outgoing.clone(),
                )
                .await
            }
        }
        None => {
            let body_for =
                |conversation: &str| send::event_body(&args.event, &chatbot_id, conversation);
            if count == 1 {
                let conversation = send::new_conversation_id();
                let body = body_for(&conversation);
                let description = format!(
                    "{}, conversation {conversation}, {} bytes, {how}",
                    args.event,
                    body.len()
                );
                once(&sender, &url, &make(body), &description, signing, &expect).await
            } else {
                let description = format!("{}, a new conversation each, {how}", args.event);
                many(
                    &sender,
                    &url,
                    &description,
                    count,
                    concurrency,
                    &expect,
                    |_| make(body_for(&send::new_conversation_id())),
                )
                .await
            }
        }
    }
}

fn sender(cacert: Option<&Path>) -> Result<Sender, Fail> {
    let built = match cacert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|error| {
                usage(
                    "send",
                    format!("cannot read --cacert {}: {error}", path.display()),
                )
            })?;
            Sender::with_ca_certificate(&pem)
                .map_err(|error| usage("send", format!("--cacert {}: {error}", path.display())))?
        }
        None => Sender::new().map_err(|error| failed(&error.to_string(), None))?,
    };
    Ok(built)
}

/// Sends one request and prints the reply.
async fn once(
    sender: &Sender,
    url: &Url,
    outgoing: &Outgoing,
    description: &str,
    signing: Signing,
    expect: &Expect,
) -> Result<(), Fail> {
    anstream::println!(
        "{HEAD}{} {url}{HEAD:#} {DIM}({description}){DIM:#}",
        outgoing.method()
    );
    let reply = sender
        .send_to(url, outgoing)
        .await
        .map_err(|error| failed(&error.to_string(), error.hint()))?;
    print_reply(&reply, expect, "");
    if expect.matches(reply.status()) {
        return Ok(());
    }
    error(&unexpected(&reply, signing, expect), None);
    Err(Fail::Failed)
}

/// The status line (green when expected, red otherwise) and the body.
fn print_reply(reply: &Reply, expect: &Expect, indent: &str) {
    let status = reply.status();
    if expect.matches(status) {
        let note = if status.is_success() {
            ""
        } else {
            " (as expected)"
        };
        anstream::println!("{indent}{GOOD}{status}{GOOD:#}{note}");
    } else {
        anstream::println!("{indent}{BAD}{status}{BAD:#}");
    }
    let text = reply.text();
    if !text.is_empty() {
        anstream::println!("{indent}{text}");
    }
    if reply.is_truncated() {
        anstream::println!("{indent}{DIM}[reply cut at {MAX_REPLY_BYTES} bytes]{DIM:#}");
    }
}

/// Why an unexpected status is a problem, for the usual cases.
fn unexpected(reply: &Reply, signing: Signing, expect: &Expect) -> String {
    let status = reply.status();
    let got = format!("expected {expect}, got {status}");
    if status.is_success() {
        let what = match signing {
            Signing::Bad => "a wrong signature",
            Signing::Unsigned => "no signature",
            Signing::Tampered => "a body changed after signing",
            Signing::Signed => return got,
        };
        return format!(
            "{got}: the endpoint accepted a request with {what}; does it verify signatures?"
        );
    }
    if signing == Signing::Signed && status == 401 {
        return format!(
            "{got}: the endpoint refused a correctly signed request; does it use the same secret, \
             and verify the raw body? ('chatbase verify' diagnoses a captured request)"
        );
    }
    got
}

/// Sends `count` requests, `concurrency` at a time, with a progress bar,
/// then prints the histogram of statuses.
async fn many(
    sender: &Sender,
    url: &Url,
    description: &str,
    count: usize,
    concurrency: usize,
    expect: &Expect,
    make: impl Fn(usize) -> Outgoing,
) -> Result<(), Fail> {
    anstream::println!(
        "{HEAD}{url}{HEAD:#} {DIM}({description}) x {count}, {concurrency} at a time{DIM:#}"
    );
    // Hidden when standard error is not a terminal.
    let bar = ProgressBar::new(u64::try_from(count).unwrap_or(u64::MAX));
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
    {
        bar.set_style(style);
    }
    let tally = send::send_many(sender, url, count, concurrency, make, |outcome| {
        bar.inc(1);
        if let Ok(reply) = outcome
            && !expect.matches(reply.status())
        {
            bar.set_message(format!("{} unexpected", reply.status()));
        }
    })
    .await;
    bar.finish_and_clear();
    print_tally(&tally, expect);
    if tally.matching(expect) == tally.total() {
        Ok(())
    } else {
        Err(Fail::Failed)
    }
}

/// The histogram of statuses, the failures, and the summary line.
fn print_tally(tally: &Tally, expect: &Expect) {
    let most = tally
        .statuses()
        .map(|(_, n)| n)
        .chain(tally.failures().map(|(_, n)| n))
        .max()
        .unwrap_or(1)
        .max(1);
    let bar = |n: usize| "#".repeat((n * 40).div_ceil(most));
    for (status, n) in tally.statuses() {
        let style = if expect.matches(status) { GOOD } else { BAD };
        anstream::println!(
            "  {style}{:<28}{style:#} {n:>7}  {}",
            status.to_string(),
            bar(n)
        );
    }
    for (error, n) in tally.failures() {
        let what = match error.failure() {
            Some(send::Failure::Other) | None => "no reply".to_owned(),
            Some(failure) => format!("no reply: {}", failure_name(failure)),
        };
        anstream::println!("  {BAD}{what:<28}{BAD:#} {n:>7}  {}", bar(n));
    }
    let total = tally.total();
    let matching = tally.matching(expect);
    let seconds = tally.elapsed().as_secs_f64();
    let mut summary = format!("{total} requests in {seconds:.2} s");
    if seconds > 0.0 {
        #[allow(clippy::cast_precision_loss, reason = "a rate, to show")]
        let rate = total as f64 / seconds;
        let _ = write!(summary, " ({rate:.0} per second)");
    }
    let _ = write!(summary, ": {matching} with the expected status ({expect})");
    if matching < total {
        let _ = write!(summary, ", {} without", total - matching);
    }
    anstream::println!("{summary}");
    for (error, _) in tally.failures() {
        self::error(&error.to_string(), error.hint());
    }
}

fn failure_name(failure: send::Failure) -> &'static str {
    match failure {
        send::Failure::ConnectionRefused => "connection refused",
        send::Failure::UnknownHost => "unknown host",
        send::Failure::NotTls => "not TLS",
        send::Failure::NotHttp => "not HTTP",
        send::Failure::Certificate => "untrusted certificate",
        send::Failure::Timeout => "timeout",
        _ => "other",
    }
}

/// Sends the captured requests at `path` again, in order.
async fn replay(sender: &Sender, url: &Url, path: &Path, expect: &Expect) -> Result<(), Fail> {
    let requests = capture::read(path).map_err(|error| usage("send", error.to_string()))?;
    anstream::println!(
        "{HEAD}replaying {} captured request(s) to {url}{HEAD:#}",
        requests.len()
    );
    let mut tally = Tally::default();
    for (file, request) in &requests {
        let outgoing = request.to_outgoing();
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let signed = if outgoing.signature().is_some() {
            "its original signature"
        } else {
            "no signature"
        };
        anstream::println!(
            "{name} {DIM}({} {}, {} bytes, {signed}){DIM:#}",
            outgoing.method(),
            request.target(),
            outgoing.body().len()
        );
        let outcome: Result<Reply, SendError> = sender.send_to(url, &outgoing).await;
        match &outcome {
            Ok(reply) => print_reply(reply, expect, "  "),
            Err(error) => self::error(&error.to_string(), error.hint()),
        }
        tally.record(&outcome);
    }
    let matching = tally.matching(expect);
    let total = tally.total();
    anstream::println!(
        "{total} replayed: {matching} with the expected status ({expect}){}",
        if matching < total {
            format!(", {} without", total - matching)
        } else {
            String::new()
        }
    );
    if matching == total {
        Ok(())
    } else {
        Err(Fail::Failed)
    }
}
