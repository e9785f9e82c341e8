//! The test harness of chatbase-webhooks for Rust (not published): the demo,
//! the end-to-end tests that drive the example binaries over real TCP, the soak
//! driver and the load benchmark's baselines.
//!
//! - [`examples`]: builds the example crates and runs their binaries;
//! - [`send`]: signing and sending webhook requests, as Chatbase does or as a
//!   forger would: `chatbase send`'s own code, from the `chatbase-cli` crate;
//! - [`baseline`]: unverified servers, for `bench/load.sh` only;
//! - [`deliveries`]: what a handler saw, without customer data (the demo);
//! - [`random`]: random hex from the operating system.

// A harness: its programs print what they do.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

pub mod baseline;
pub mod deliveries;
pub mod examples;
mod observability;
pub mod random;
mod readme;
pub use chatbase_cli::send;

/// `127.0.0.1:$PORT`, port 3000 when `PORT` is unset or empty.
///
/// # Errors
///
/// If `PORT` is not a port number.
pub fn address_from_env() -> Result<SocketAddr, String> {
    let port = match std::env::var("PORT") {
        Ok(port) if !port.is_empty() => port.trim().parse().map_err(|_| {
            format!("environment variable PORT is {port:?}: expected a port number")
        })?,
        _ => 3000,
    };
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// Completes at the first Ctrl-C or `SIGTERM`.
///
/// # Errors
///
/// If a signal handler cannot be installed.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Prints one line on standard output.
pub fn say(line: &str) {
    println!("{line}");
}

/// `ExitCode::SUCCESS` for `Ok`; for `Err`, `program: error` on standard error
/// and `ExitCode::FAILURE`.
pub fn exit_code(program: &str, outcome: Result<(), Box<dyn Error>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: {error}");
            ExitCode::FAILURE
        }
    }
}
