//! The load benchmark's axum baseline: the axum receiver's server without
//! verification (`POST /webhook` answers 200 to any body). See `bench/load.sh`.
//! Never deploy it.

use std::process::ExitCode;

use examples::timeouts::Timeouts;
use examples::{axum_receiver, baseline, exit, listen, logging, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    exit::exit_code("bare-axum", run().await)
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
