//! `demo`: the whole story in one command.
//!
//! Starts an axum receiver in-process on a free port (chatbase-axum's layer and
//! extractor, as in `examples/axum`), with a secret generated for the run, sends
//! it a correctly signed event, the same event tampered with after signing, and
//! an unsigned one, over real TCP, and prints what each request got and what the
//! handler saw. Exits 0 only if the signed event was delivered (once) and the
//! two others were refused with a 401 before reaching the handler.

// A command-line program: printing is what it is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use chatbase_axum::{ChatbaseEvent, Secret, Verifier, VerifyChatbaseLayer};
use harness::deliveries::{Delivered, Deliveries, Delivery};
use harness::random;
use harness::send::{self, Outgoing, Reply, Sender};
use reqwest::StatusCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Quiet unless asked: the table is the output. `RUST_LOG=info` shows the
    // receiver's log lines too.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One request of the demo and what must come of it.
struct Case {
    label: &'static str,
    outgoing: Outgoing,
    expected_status: StatusCode,
    /// The conversation id the handler must see, or `None`: it must see nothing.
    expected_delivery: Option<String>,
}

/// What came of a [`Case`].
struct Outcome {
    answer: String,
    saw: String,
    as_expected: bool,
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    // A secret for this run only, from the operating system's random generator.
    let secret = Secret::new(format!("demo-{}", random::hex(24)?))?;
    let (deliveries, mut delivered) = Deliveries::channel();
    let app = Router::new()
        .route("/webhook", post(webhook))
        .layer(VerifyChatbaseLayer::new(Verifier::new(secret.clone())))
        .with_state(deliveries);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );

    let conversation_id = send::new_conversation_id();
    let body = send::lead_body(send::DEFAULT_CHATBOT_ID, &conversation_id);
    let signed = Outgoing::signed(&secret, body.clone());
    let cases = [
        Case {
            label: "signed with the secret",
            outgoing: signed.clone(),
            expected_status: StatusCode::OK,
            expected_delivery: Some(conversation_id),
        },
        Case {
            label: "tampered after signing",
            outgoing: signed.tampered(),
            expected_status: StatusCode::UNAUTHORIZED,
            expected_delivery: None,
        },
        Case {
            label: "no signature",
            outgoing: Outgoing::unsigned(body),
            expected_status: StatusCode::UNAUTHORIZED,
            expected_delivery: None,
        },
    ];

    println!("Chatbase webhooks demo");
    println!();
    println!("An axum receiver (chatbase-axum) is listening on {url},");
    println!("verifying signatures with a secret generated for this run. Three requests");
    println!("carry the same new lead:");
    println!();

    let sender = Sender::new()?;
    let mut rows = Vec::new();
    for case in &cases {
        let reply = sender.send(&url, &case.outgoing).await?;
        rows.push((case.label, outcome(case, &reply, &mut delivered)));
    }
    let _ = stop.send(());
    server.await??;

    print_table(&rows);
    println!();
    let all_expected = rows.iter().all(|(_, outcome)| outcome.as_expected);
    if all_expected {
        println!("As expected: only the correctly signed request reached the handler. The");
        println!(
            "tampered one (customer email changed to {} after signing) and the",
            send::TAMPERED_EMAIL
        );
        println!("unsigned one were refused with a 401 before it ran.");
        println!();
        println!("Next: run a receiver and send it events yourself, see examples/README.md.");
    } else {
        println!("UNEXPECTED: see the rows marked above.");
    }
    Ok(all_expected)
}

/// The receiver's handler: records what it saw (no customer data) and answers
/// `OK`. It only ever runs for verified events.
async fn webhook(State(deliveries): State<Deliveries>, event: ChatbaseEvent) -> &'static str {
    deliveries.receive(&event);
    "OK"
}

/// What `reply` and the handler's deliveries say about `case`.
fn outcome(case: &Case, reply: &Reply, delivered: &mut Delivered) -> Outcome {
    // The handler records before it answers: what it saw is already there.
    let seen = delivered.drain();
    let status = reply.status();
    let answer = match reply.message() {
        // The rejection's message up to its first colon: "signature mismatch".
        Some(message) => format!(
            "{} {}",
            status.as_u16(),
            message.split(':').next().unwrap_or_default()
        ),
        None => format!("{} {}", status.as_u16(), reply.text().trim()),
    };
    let saw = match seen.as_slice() {
        [] => "nothing".to_owned(),
        [
            Delivery {
                event_type,
                conversation_id,
                ..
            },
        ] => format!(
            "{event_type}, conversation {}",
            conversation_id.as_deref().unwrap_or("-")
        ),
        more => format!("{} events", more.len()),
    };
    let delivered_as_expected = match (&case.expected_delivery, seen.as_slice()) {
        (None, []) => true,
        (Some(expected), [delivery]) => {
            delivery.event_type == "leads.submit"
                && delivery.conversation_id.as_deref() == Some(expected.as_str())
        }
        _ => false,
    };
    Outcome {
        answer,
        saw,
        as_expected: status == case.expected_status && delivered_as_expected,
    }
}

fn print_table(rows: &[(&str, Outcome)]) {
    let headers = ("request", "answer", "the handler saw");
    let width = |column: fn(&(&str, Outcome)) -> usize, header: &str| {
        rows.iter().map(column).max().unwrap_or(0).max(header.len())
    };
    let w1 = width(|(label, _)| label.len(), headers.0);
    let w2 = width(|(_, outcome)| outcome.answer.len(), headers.1);
    let w3 = width(|(_, outcome)| outcome.saw.len(), headers.2);
    println!("  {:<w1$}  {:<w2$}  {}", headers.0, headers.1, headers.2);
    println!(
        "  {}  {}  {}",
        "-".repeat(w1),
        "-".repeat(w2),
        "-".repeat(w3)
    );
    for (label, outcome) in rows {
        let mark = if outcome.as_expected {
            ""
        } else {
            "  <- UNEXPECTED"
        };
        println!(
            "  {label:<w1$}  {:<w2$}  {}{mark}",
            outcome.answer, outcome.saw
        );
    }
}
