//! The load benchmark's axum baseline: the axum receiver's server without
//! verification (`POST /webhook` answers 200 to any body). Never deploy it.
//!
//! `BASELINE=default` serves `axum::serve` with its defaults instead.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    harness::exit_code("bare-axum", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(harness::address_from_env()?).await?;
    let default = std::env::var("BASELINE").is_ok_and(|value| value == "default");
    harness::say(&format!(
        "UNVERIFIED baseline ({}) listening on http://{}",
        if default {
            "axum::serve defaults"
        } else {
            "the receiver's settings"
        },
        listener.local_addr()?
    ));
    let shutdown = harness::shutdown_signal()?;
    if default {
        harness::baseline::axum_default(listener, shutdown).await?;
    } else {
        harness::baseline::axum_like_receiver(listener, shutdown).await?;
    }
    Ok(())
}
