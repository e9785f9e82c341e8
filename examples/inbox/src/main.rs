//! Nothing lost, nothing twice: every verified Chatbase delivery is stored
//! durably before it is answered 200, then processed by a worker that retries.
//!
//! `CHATBASE_WEBHOOK_SECRET=... cargo run -p example-inbox` stores in the SQLite
//! file `chatbase-inbox.db`; with `CHATBASE_INBOX=postgres://user@host/db`,
//! several instances share one PostgreSQL database and the work.

use std::time::Duration;

use axum::{Router, extract::State, routing::post};
use chatbase_axum::inbox::{Delivery, Failure, Inbox, Stored};
use chatbase_axum::{ChatbaseEvent, Event, Verifier, VerifyChatbaseLayer};
use tokio::sync::watch;

/// Answers 200 only once the delivery is on disk; a duplicate (a retry, a
/// replay) gets 200 with `x-chatbase-duplicate: true` and is stored once; a
/// store that cannot write answers 503, so that the sender retries.
async fn webhook(State(inbox): State<Inbox>, ev: ChatbaseEvent) -> Stored {
    inbox.accept(&ev).await.into()
}

/// The slow work, run by the worker for each stored delivery. An `Err` (or a
/// panic) is retried with backoff; after the last attempt the delivery is
/// dead, to list and retry with `chatbase inbox list|retry`.
async fn process(delivery: Delivery) -> Result<(), Failure> {
    let event = delivery.event()?;
    if let Event::LeadsSubmit(lead) = event.event() {
        // Call your CRM here with `lead.customer_email()`... A `?` on its error
        // stores the error's type only, never its message.
        tracing::info!(conversation_id = lead.conversation_id(), "lead processed");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();

    let verifier = Verifier::from_env()?;
    let url =
        std::env::var("CHATBASE_INBOX").unwrap_or_else(|_| "sqlite://chatbase-inbox.db".into());
    let inbox = Inbox::open(&url).await?;

    // Ctrl-C stops the server, then the worker (which finishes or releases
    // what it holds).
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    };
    let worker = inbox
        .worker(process)
        .backoff(Duration::from_secs(1), Duration::from_secs(600));
    let worker = tokio::spawn(worker.run(until_stopped(stopped.clone())));

    let app = Router::new()
        .route("/webhook", post(webhook))
        .layer(VerifyChatbaseLayer::new(verifier))
        .with_state(inbox);
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        "listening on http://{} (inbox: {url})",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(until_stopped(stopped))
        .await?;
    worker.await?;
    Ok(())
}
