//! The axum receiver: `POST /webhook` (extractor) and `/scoped/webhook` (layer)
//! on `127.0.0.1:$PORT`, verifying with `CHATBASE_WEBHOOK_SECRET`.
//!
//! See the examples README for the contract; the code is in
//! `examples::axum_receiver`.

use std::process::ExitCode;

use chatbase_axum::Verifier;
use examples::deliveries::Deliveries;
use examples::timeouts::Timeouts;
use examples::{axum_receiver, exit, listen, logging, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    exit::exit_code("axum-receiver", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `CHATBASE_WEBHOOK_SECRET`, and `CHATBASE_WEBHOOK_PREVIOUS_SECRET` while rotating.
    let verifier = Verifier::from_env()?;
    let address = listen::address()?;
    let shutdown = shutdown::signal()?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let address = listener.local_addr()?;
    tracing::info!("listening on http://{address} (POST /webhook, /scoped/webhook)");

    let timeouts = Timeouts::default();
    // Counts only: nothing grows however long the server runs.
    let app = axum_receiver::router(verifier, Deliveries::counter(), timeouts);
    axum_receiver::serve(listener, app, timeouts, shutdown).await?;
    Ok(())
}
