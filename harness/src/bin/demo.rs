//! `demo`: the whole story in one command.
//!
//! Starts an axum receiver in-process on a free port (chatbase-axum's layer and
//! extractor, as in `examples/inbox`), with a secret generated for the run and a
//! durable inbox in a fresh SQLite file, and a worker processing what the inbox
//! stores. Then, over real TCP: a correctly signed lead, the very same delivery
//! again, the lead tampered with after signing, an unsigned one, and a second
//! lead whose processing fails the first time. Prints what each request got and
//! what the worker did; exits 0 only if the signed lead was stored and processed
//! once, its duplicate answered 200 and not processed again, the tampered and
//! unsigned ones refused with a 401 before anything, and the failing lead
//! retried and processed on its second attempt.

// A command-line program: printing is what it is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use chatbase_axum::inbox::{DUPLICATE_HEADER, Delivery, Failure, Inbox, Stored};
use chatbase_axum::{ChatbaseEvent, Event, Secret, Verifier, VerifyChatbaseLayer};
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

/// How long the worker may take to process what was stored before the demo
/// gives up: far longer than it should take.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the worker did with each conversation: its attempts, in order.
#[derive(Clone, Default)]
struct Work(Arc<Mutex<BTreeMap<String, Vec<Attempt>>>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Failed,
    Processed,
}

impl Work {
    fn record(&self, conversation_id: &str, attempt: Attempt) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(conversation_id.to_owned())
            .or_default()
            .push(attempt);
    }

    fn of(&self, conversation_id: &str) -> Vec<Attempt> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(conversation_id)
            .cloned()
            .unwrap_or_default()
    }
}

/// One request of the demo and what must come of it.
struct Case {
    label: &'static str,
    outgoing: Outgoing,
    expected_status: StatusCode,
    expected_duplicate: bool,
    /// The conversation and what the worker must end up having done with it.
    expected_work: Option<(String, Vec<Attempt>)>,
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    // A secret for this run only, from the operating system's random generator.
    let secret = Secret::new(format!("demo-{}", random::hex(24)?))?;
    let directory = std::env::temp_dir().join(format!("chatbase-demo-{}", random::hex(8)?));
    std::fs::create_dir_all(&directory)?;
    let database = directory.join("inbox.db");
    let inbox = Inbox::open(&format!("sqlite://{}", database.display())).await?;

    let stored = send::new_conversation_id();
    let flaky = send::new_conversation_id();
    let work = Work::default();
    let worker = {
        let work = work.clone();
        let flaky = flaky.clone();
        inbox
            .worker(move |delivery: Delivery| {
                let work = work.clone();
                let flaky = flaky.clone();
                async move { process(&delivery, &work, &flaky) }
            })
            .backoff(Duration::from_millis(200), Duration::from_secs(1))
            .poll_interval(Duration::from_millis(100))
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));

    let app = Router::new()
        .route("/webhook", post(webhook))
        .layer(VerifyChatbaseLayer::new(Verifier::new(secret.clone())))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let server = tokio::spawn(axum::serve(listener, app).into_future());

    let body = send::lead_body(send::DEFAULT_CHATBOT_ID, &stored);
    let signed = Outgoing::signed(&secret, body.clone());
    let cases = [
        Case {
            label: "signed with the secret",
            outgoing: signed.clone(),
            expected_status: StatusCode::OK,
            expected_duplicate: false,
            expected_work: Some((stored.clone(), vec![Attempt::Processed])),
        },
        Case {
            label: "the same delivery again",
            outgoing: signed.clone(),
            expected_status: StatusCode::OK,
            expected_duplicate: true,
            expected_work: Some((stored.clone(), vec![Attempt::Processed])),
        },
        Case {
            label: "tampered after signing",
            outgoing: signed.tampered(),
            expected_status: StatusCode::UNAUTHORIZED,
            expected_duplicate: false,
            expected_work: None,
        },
        Case {
            label: "no signature",
            outgoing: Outgoing::unsigned(body),
            expected_status: StatusCode::UNAUTHORIZED,
            expected_duplicate: false,
            expected_work: None,
        },
        Case {
            label: "a lead whose CRM call fails once",
            outgoing: Outgoing::signed(&secret, send::lead_body(send::DEFAULT_CHATBOT_ID, &flaky)),
            expected_status: StatusCode::OK,
            expected_duplicate: false,
            expected_work: Some((flaky.clone(), vec![Attempt::Failed, Attempt::Processed])),
        },
    ];

    println!("Chatbase webhooks demo");
    println!();
    println!("An axum receiver (chatbase-axum) is listening on {url}, verifying");
    println!("signatures with a secret generated for this run and storing each verified");
    println!(
        "delivery in a durable inbox (SQLite, {}) before",
        database.display()
    );
    println!("answering 200; a worker then processes what the inbox holds, retrying what fails.");
    println!();

    let sender = Sender::new()?;
    let mut replies = Vec::new();
    for case in &cases {
        replies.push(sender.send(&url, &case.outgoing).await?);
    }
    // Wait (bounded) for the worker to have done what it should.
    let done = || {
        cases.iter().all(|case| match &case.expected_work {
            Some((conversation, attempts)) => work.of(conversation).len() >= attempts.len(),
            None => true,
        })
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer, so that a second processing, which must not happen,
    // would show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(());
    worker.await?;
    server.abort();
    inbox.close().await;
    let _ = std::fs::remove_dir_all(&directory);

    let rows: Vec<_> = cases
        .iter()
        .zip(&replies)
        .map(|(case, reply)| outcome(case, reply, &work))
        .collect();
    print_table(&rows);
    println!();
    let all_expected = rows.iter().all(|row| row.as_expected);
    if all_expected {
        println!("As expected: the signed lead was stored, then processed once; the same");
        println!("delivery again was answered 200 as a duplicate and not processed twice. The");
        println!(
            "tampered one (customer email changed to {} after signing) and the",
            send::TAMPERED_EMAIL
        );
        println!("unsigned one were refused with a 401 before anything. The lead whose CRM");
        println!("call failed was retried, and processed on its second attempt.");
        println!();
        println!("Next: run a receiver and send it events yourself, see examples/README.md.");
    } else {
        println!("UNEXPECTED: see the rows marked above.");
    }
    Ok(all_expected)
}

/// The receiver's handler: stores the verified event, and answers once it is
/// on disk (or is a duplicate).
async fn webhook(State(inbox): State<Inbox>, event: ChatbaseEvent) -> Stored {
    inbox.accept(&event).await.into()
}

/// The worker's handler: "calls the CRM", which fails on the first attempt of
/// the `flaky` conversation.
fn process(delivery: &Delivery, work: &Work, flaky: &str) -> Result<(), Failure> {
    let event = delivery.event()?;
    let Event::LeadsSubmit(lead) = event.event() else {
        return Ok(());
    };
    let conversation = lead.conversation_id().unwrap_or_default();
    if conversation == flaky && delivery.attempt() == 1 {
        work.record(conversation, Attempt::Failed);
        return Err(Failure::new("crm_unavailable"));
    }
    work.record(conversation, Attempt::Processed);
    Ok(())
}

/// A row of the table: what a request got, what the worker did, and whether
/// it is what must come of it.
struct Row {
    label: &'static str,
    answer: String,
    worker: String,
    as_expected: bool,
}

fn outcome(case: &Case, reply: &Reply, work: &Work) -> Row {
    let status = reply.status();
    let duplicate = reply.headers().contains_key(DUPLICATE_HEADER);
    let answer = match reply.message() {
        // The message up to its first colon: "signature mismatch", "stored".
        Some(message) => format!(
            "{} {}",
            status.as_u16(),
            message.split(':').next().unwrap_or_default()
        ),
        None => format!("{} {}", status.as_u16(), reply.text().trim()),
    };
    let attempts = case
        .expected_work
        .as_ref()
        .map(|(conversation, _)| work.of(conversation))
        .unwrap_or_default();
    let worker = match attempts.as_slice() {
        [] => "nothing".to_owned(),
        attempts => attempts
            .iter()
            .enumerate()
            .map(|(n, attempt)| match attempt {
                Attempt::Failed => format!("attempt {} failed", n + 1),
                Attempt::Processed => format!("processed (attempt {})", n + 1),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let work_as_expected = match &case.expected_work {
        Some((_, expected)) => attempts == *expected,
        None => attempts.is_empty(),
    };
    Row {
        label: case.label,
        answer: if duplicate {
            format!("{answer} ({DUPLICATE_HEADER})")
        } else {
            answer
        },
        worker,
        as_expected: status == case.expected_status
            && duplicate == case.expected_duplicate
            && work_as_expected,
    }
}

fn print_table(rows: &[Row]) {
    let headers = ("request", "answer", "the worker, in the end");
    let width = |column: fn(&Row) -> usize, header: &str| {
        rows.iter().map(column).max().unwrap_or(0).max(header.len())
    };
    let w1 = width(|row| row.label.len(), headers.0);
    let w2 = width(|row| row.answer.len(), headers.1);
    let w3 = width(|row| row.worker.len(), headers.2);
    println!("  {:<w1$}  {:<w2$}  {}", headers.0, headers.1, headers.2);
    println!(
        "  {}  {}  {}",
        "-".repeat(w1),
        "-".repeat(w2),
        "-".repeat(w3)
    );
    for row in rows {
        let mark = if row.as_expected {
            ""
        } else {
            "  <- UNEXPECTED"
        };
        println!(
            "  {:<w1$}  {:<w2$}  {}{mark}",
            row.label, row.answer, row.worker
        );
    }
}
