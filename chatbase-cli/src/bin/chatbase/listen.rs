//! `chatbase listen`: a local receiver that verifies, prints, forwards and
//! captures each request.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chatbase_cli::capture::CaptureDir;
use chatbase_cli::listen::{DevReceiver, Keys, Received};
use chatbase_cli::mask;
use chatbase_cli::send::{self, Sender};
use chatbase_core::{SECRET_ENV_VAR, Verifier};

use crate::keys::{env_secrets, secrets_file, verbatim};
use crate::output::{
    BAD, DIM, Fail, GOOD, HEAD, NOTE, WARN, failed, missing, usage, warn, with_hint,
};

/// Run a local receiver that verifies, prints, forwards and captures events.
///
/// Listens on 127.0.0.1. Verifies each request as a real receiver would and
/// prints the event (customer email and phone masked); can forward the exact
/// bytes and the signature to your app, and capture each request to a file.
///
/// Point Chatbase at it through a tunnel that keeps the bytes intact
/// (ngrok, cloudflared), or send it events with 'chatbase send'. Stops on
/// Ctrl-C.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase listen --port 4000
  chatbase listen --port 4000 --forward-to http://127.0.0.1:3000/webhook
  chatbase listen --port 4000 --secrets-file secrets.json --capture ./captured
  chatbase send --url http://127.0.0.1:4000/webhook      (in another terminal)

Exit status: 0 when stopped with Ctrl-C, 1 if it cannot start, 2 for a usage
error.")]
pub(crate) struct Args {
    /// The port to listen on, on 127.0.0.1 (0: any free port, printed at
    /// start).
    #[arg(long, value_name = "PORT")]
    port: u16,

    /// A secret to verify with (repeat for a current and a previous one)
    /// [default: the environment variables CHATBASE_WEBHOOK_SECRET and
    /// CHATBASE_WEBHOOK_PREVIOUS_SECRET].
    #[arg(long, value_name = "SECRET", conflicts_with = "secrets_file")]
    secret: Vec<String>,

    /// A JSON file of secrets per chatbot: each request is verified with the
    /// secrets of the chatbot its body names.
    #[arg(long, value_name = "PATH")]
    secrets_file: Option<PathBuf>,

    /// Forward each request to your app: the method, the exact body bytes,
    /// the x-chatbase-signature and content-type headers. The app's reply
    /// is printed and returned to the sender.
    #[arg(long, value_name = "URL")]
    forward_to: Option<String>,

    /// Trust only this PEM certificate authority for an https --forward-to.
    #[arg(long, value_name = "PATH", requires = "forward_to")]
    cacert: Option<PathBuf>,

    /// Write each request, exactly as received, to a new file in DIR, for
    /// 'chatbase send --replay DIR'. The files hold customer data.
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,

    /// Print customer emails and phone numbers as they are, instead of
    /// masked.
    #[arg(long)]
    show_pii: bool,
}

pub(crate) async fn run(args: Args) -> Result<(), Fail> {
    let (keys, described) = keys(&args)?;
    let mut receiver = DevReceiver::new(keys);
    let mut forward_url = None;
    if let Some(url) = &args.forward_to {
        let url = send::parse_url(url).map_err(|error| {
            usage(
                "listen",
                with_hint(&format!("--forward-to: {error}"), error.hint()),
            )
        })?;
        let sender = match &args.cacert {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|error| {
                    usage(
                        "listen",
                        format!("cannot read --cacert {}: {error}", path.display()),
                    )
                })?;
                Sender::with_ca_certificate(&pem)
                    .map_err(|error| usage("listen", format!("--cacert: {error}")))?
            }
            None => Sender::new().map_err(|error| failed(&error.to_string(), None))?,
        };
        forward_url = Some(url.clone());
        receiver = receiver.forward_to(sender, url);
    }
    if let Some(path) = &args.capture {
        let dir = CaptureDir::create(path)
            .map_err(|error| usage("listen", format!("--capture {}: {error}", path.display())))?;
        warn(&format!(
            "capturing every request to {}: the files hold customer data (emails, phone \
             numbers) and signatures valid for their bodies; delete them when done",
            path.display()
        ));
        receiver = receiver.capture(dir);
    }
    let show_pii = args.show_pii;
    let count = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&count);
    receiver = receiver.on_request(move |received| {
        counted.fetch_add(1, Ordering::Relaxed);
        anstream::print!("{}", report(&received, show_pii));
    });

    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| {
            let hint = (error.kind() == std::io::ErrorKind::AddrInUse).then(|| {
                format!(
                    "another program listens on port {}: choose another --port",
                    args.port
                )
            });
            failed(&format!("cannot listen on {address}: {error}"), hint)
        })?;
    let bound = listener
        .local_addr()
        .map_err(|error| failed(&format!("cannot listen on {address}: {error}"), None))?;
    let shutdown = shutdown_signal()
        .map_err(|error| failed(&format!("cannot listen for Ctrl-C: {error}"), None))?;

    anstream::println!("verifying with {described}");
    if let Some(url) = &forward_url {
        anstream::println!("forwarding to {url}");
    }
    if !show_pii {
        anstream::println!(
            "{DIM}customer emails and phones are masked (--show-pii shows them){DIM:#}"
        );
    }
    anstream::println!("{HEAD}listening on http://{bound}{HEAD:#} (Ctrl-C to stop)");

    receiver
        .serve(listener, shutdown)
        .await
        .map_err(|error| failed(&format!("the receiver stopped: {error}"), None))?;
    anstream::println!("stopped after {} request(s)", count.load(Ordering::Relaxed));
    Ok(())
}

/// The keys to verify with, and how to describe them (never the secrets).
fn keys(args: &Args) -> Result<(Keys, String), Fail> {
    if let Some(path) = &args.secrets_file {
        let file = secrets_file("listen", path)?;
        let ids: Vec<_> = file.chatbot_ids().collect();
        let described = format!(
            "a secret per chatbot from {} ({})",
            path.display(),
            ids.join(", ")
        );
        return Ok((Keys::from_secrets_file(&file), described));
    }
    let mut secrets = Vec::new();
    if args.secret.is_empty() {
        secrets = env_secrets("listen")?;
    } else {
        let several = args.secret.len() > 1;
        for (n, secret) in args.secret.iter().enumerate() {
            let label = if several {
                format!("--secret #{}", n + 1)
            } else {
                "--secret".to_owned()
            };
            let secret = verbatim("listen", &label, secret.as_bytes().to_vec())?;
            secrets.push((label, secret));
        }
    }
    let mut labels = Vec::new();
    let mut verifier: Option<Verifier> = None;
    for (label, secret) in secrets {
        labels.push(label);
        verifier = Some(match verifier {
            None => Verifier::new(secret),
            Some(verifier) => verifier.with_secret(secret),
        });
    }
    let verifier = verifier.ok_or_else(|| {
        missing(
            "listen",
            format!("no secret: set {SECRET_ENV_VAR}, or pass --secret or --secrets-file"),
        )
    })?;
    Ok((Keys::Shared(verifier), labels.join(" and ")))
}

/// What is printed of one request.
fn report(received: &Received, show_pii: bool) -> String {
    let mut out = String::new();
    let head = format!(
        "#{} {} {}",
        received.number(),
        received.method(),
        received.target()
    );
    match received.verdict() {
        Ok(event) => {
            let _ = writeln!(
                out,
                "{HEAD}{head}{HEAD:#}  {GOOD}verified{GOOD:#}  {}  chatbot {}",
                event.event_type(),
                event.chatbot_id().unwrap_or("(none)")
            );
            match mask::pretty(event.raw_body(), !show_pii) {
                Some(json) => {
                    for line in json.lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                }
                None => {
                    let _ = writeln!(out, "  ({} bytes)", event.raw_body().len());
                }
            }
        }
        Err(rejection) => {
            let _ = writeln!(
                out,
                "{HEAD}{head}{HEAD:#}  {BAD}rejected {}{BAD:#}: {rejection}",
                rejection.status().as_u16()
            );
        }
    }
    match received.forwarded() {
        Some(Ok(reply)) => {
            let status = reply.status();
            let style = if status.is_success() { GOOD } else { BAD };
            let _ = writeln!(out, "  {NOTE}app{NOTE:#}: {style}{status}{style:#}");
            let text = reply.text();
            if !text.is_empty() {
                let _ = writeln!(out, "  {text}");
            }
            let verified = received.verdict().is_ok();
            if verified && !status.is_success() {
                let _ = writeln!(
                    out,
                    "  {WARN}warning{WARN:#}: your app refused a request that verifies: does it \
                     use the same secret, and verify the raw body bytes?"
                );
            } else if !verified && status.is_success() {
                let _ = writeln!(
                    out,
                    "  {WARN}warning{WARN:#}: your app accepted a request that does not verify: \
                     does it check the signature?"
                );
            }
        }
        Some(Err(error)) => {
            let _ = writeln!(out, "  {BAD}app unreachable{BAD:#}: {error}");
            if let Some(hint) = error.hint() {
                let _ = writeln!(out, "  {NOTE}hint{NOTE:#}: {hint}");
            }
        }
        None => {}
    }
    match received.captured() {
        Some(Ok(path)) => {
            let _ = writeln!(out, "  {DIM}captured: {}{DIM:#}", path.display());
        }
        Some(Err(error)) => {
            let _ = writeln!(out, "  {BAD}not captured{BAD:#}: {error}");
        }
        None => {}
    }
    out
}

/// Completes on Ctrl-C, or SIGTERM on Unix. The handlers are installed now,
/// so that a signal sent right after start-up is not missed.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
