//! The receivers' logging: `tracing` to standard output, filtered by `RUST_LOG`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset or invalid: `info`.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the global `tracing` subscriber: human-readable lines on standard
/// output, filtered by `RUST_LOG` (`info` by default), in colour only on a
/// terminal. Does nothing if a subscriber is already installed.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .try_init();
}
