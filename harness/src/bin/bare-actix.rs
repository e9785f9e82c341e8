//! The load benchmark's actix-web baseline: the actix receiver's server without
//! verification (`POST /webhook` answers 200 to any body). Never deploy it.
//!
//! `BASELINE=default` serves `HttpServer` with actix-web's defaults instead.

use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    harness::exit_code("bare-actix", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let listener = std::net::TcpListener::bind(harness::address_from_env()?)?;
    let default = std::env::var("BASELINE").is_ok_and(|value| value == "default");
    harness::say(&format!(
        "UNVERIFIED baseline ({}) listening on http://{}",
        if default {
            "actix-web defaults"
        } else {
            "the receiver's settings"
        },
        listener.local_addr()?
    ));
    let server = if default {
        harness::baseline::actix_default(listener)?
    } else {
        harness::baseline::actix_like_receiver(listener, harness::shutdown_signal()?)?
    };
    server.await?;
    Ok(())
}
