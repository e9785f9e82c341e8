//! The load benchmark's axum baseline: the axum receiver's server without
//! verification (`POST /webhook` answers 200 to any body). See `bench/load.sh`.
//! Never deploy it.

// A command-line program: its one error line goes to standard error.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;

use examples::timeouts::Timeouts;
use examples::{axum_receiver, baseline, listen, logging, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bare-axum: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let address = listen::address()?;
    let shutdown = shutdown::signal()?;
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(
        "UNVERIFIED baseline listening on http://{}",
        listener.local_addr()?
    );
    let timeouts = Timeouts::default();
    axum_receiver::serve(
        listener,
        baseline::axum_router(timeouts),
        timeouts,
        shutdown,
    )
    .await?;
    Ok(())
}
