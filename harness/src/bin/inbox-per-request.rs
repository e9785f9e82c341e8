//! The inbox benchmark's per-request-commit baseline: the axum receiver's
//! inbox route with an inbox that commits every delivery in a transaction of
//! its own (`batch_size(1)`: one fsync per request), and a worker that does
//! nothing with what it processes. What group commit is measured against.
//!
//! Environment as the receivers': `PORT`, `CHATBASE_WEBHOOK_SECRET`,
//! `CHATBASE_INBOX` (required).

use std::process::ExitCode;

use chatbase_axum::Verifier;
use chatbase_axum::inbox::Inbox;

#[tokio::main]
async fn main() -> ExitCode {
    harness::exit_code("inbox-per-request", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = Verifier::from_env()?;
    let url = std::env::var("CHATBASE_INBOX")
        .map_err(|_| "environment variable CHATBASE_INBOX: required")?;
    let inbox = Inbox::builder(url).batch_size(1).open().await?;
    let listener = tokio::net::TcpListener::bind(harness::address_from_env()?).await?;
    harness::say(&format!(
        "per-request-commit inbox listening on http://{}",
        listener.local_addr()?
    ));
    let shutdown = harness::shutdown_signal()?;
    harness::baseline::axum_inbox_per_request(listener, verifier, inbox, shutdown).await?;
    Ok(())
}
