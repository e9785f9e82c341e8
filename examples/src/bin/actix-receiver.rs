//! The actix-web receiver: `POST /webhook` (extractor) and `/scoped/webhook`
//! (middleware) on `127.0.0.1:$PORT`, verifying with `CHATBASE_WEBHOOK_SECRET`.
//!
//! See the examples README for the contract; the code is in
//! `examples::actix_receiver`.

use std::process::ExitCode;

use chatbase_actix::Verifier;
use examples::deliveries::Deliveries;
use examples::timeouts::Timeouts;
use examples::{actix_receiver, exit, listen, logging, shutdown};

#[actix_web::main]
async fn main() -> ExitCode {
    logging::init();
    exit::exit_code("actix-receiver", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `CHATBASE_WEBHOOK_SECRET`, and `CHATBASE_WEBHOOK_PREVIOUS_SECRET` while rotating.
    let verifier = Verifier::from_env()?;
    let address = listen::address()?;
    let shutdown = shutdown::signal()?;
    let listener = std::net::TcpListener::bind(address)
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let address = listener.local_addr()?;
    tracing::info!("listening on http://{address} (POST /webhook, /scoped/webhook)");

    // Counts only: nothing grows however long the server runs.
    let server = actix_receiver::server(
        listener,
        verifier,
        Deliveries::counter(),
        Timeouts::default(),
        shutdown,
    )?;
    server.await?;
    Ok(())
}
