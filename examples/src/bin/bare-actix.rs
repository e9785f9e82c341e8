//! The load benchmark's actix-web baseline: the actix receiver's server without
//! verification (`POST /webhook` answers 200 to any body). See `bench/load.sh`.
//! Never deploy it.

use std::process::ExitCode;

use examples::timeouts::Timeouts;
use examples::{baseline, exit, listen, logging, shutdown};

#[actix_web::main]
async fn main() -> ExitCode {
    logging::init();
    exit::exit_code("bare-actix", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let address = listen::address()?;
    let shutdown = shutdown::signal()?;
    let listener = std::net::TcpListener::bind(address)?;
    tracing::info!(
        "UNVERIFIED baseline listening on http://{}",
        listener.local_addr()?
    );
    baseline::actix_server(listener, Timeouts::default(), shutdown)?.await?;
    Ok(())
}
