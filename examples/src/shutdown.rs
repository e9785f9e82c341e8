//! Graceful shutdown on Ctrl-C (`SIGINT`) or `SIGTERM`.

use std::future::Future;
use std::io;

/// Starts listening for Ctrl-C and, on Unix, `SIGTERM`, and returns a future
/// that completes at the first of them.
///
/// The handlers are installed by this call, not when the future is first polled,
/// so a signal sent as soon as the server says it is listening is not missed.
/// Must be called inside a Tokio runtime (actix-web's is one).
///
/// # Errors
///
/// If a signal handler cannot be installed.
pub fn signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};

        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "Ctrl-C",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!("{name} received: shutting down gracefully");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => tracing::info!("Ctrl-C received: shutting down gracefully"),
                Err(error) => {
                    tracing::error!(%error, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
