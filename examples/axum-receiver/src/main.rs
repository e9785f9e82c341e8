//! A hardened Chatbase webhook receiver on axum: copy it, then replace the
//! handler's logging with your own work.
//!
//! - `POST /webhook`: the `ChatbaseEvent` extractor, with the verifier as the
//!   router's state; any other method gets 405 with `Allow: POST`;
//! - `/scoped/webhook`: the same handler behind `VerifyChatbaseLayer`, which
//!   verifies every request under `/scoped`, whatever its method;
//! - each delivered event is answered `200 OK` and logged at `info` with its
//!   type, chatbot and conversation (never the customer's details); rejections
//!   are logged at `warn` under the target `chatbase::rejection`.
//!
//! Configuration, from the environment:
//!
//! | variable | |
//! |---|---|
//! | `CHATBASE_WEBHOOK_SECRET` | the secret from the chatbot's webhook settings (required) |
//! | `CHATBASE_WEBHOOK_PREVIOUS_SECRET` | a retiring secret, also accepted during a rotation |
//! | `PORT` | listens on `127.0.0.1:$PORT`, 3000 by default (`0`: any free port) |
//! | `RUST_LOG` | the log filter, `info` by default |
//!
//! Against slow or hostile clients: 10 s to send each request head (the idle
//! time before it included), 10 s for the rest of the request (408 after it),
//! heads of at most 64 KiB (431), bodies of at most 1 MiB (413, the verifier's
//! limit). Ctrl-C or `SIGTERM` stop it gracefully: no new connections, and up
//! to 30 s for the requests in flight.

use std::io::{self, IsTerminal as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chatbase_axum::{ChatbaseEvent, Event, Verifier, VerifyChatbaseLayer};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tracing_subscriber::EnvFilter;

/// How long a client may take to send a request head, and may sit idle before
/// one: then the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take once its head has arrived, body included: then
/// `408 Request Timeout`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head read (431 past it, or past 100 headers).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a graceful shutdown waits for the requests in flight.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The handler of both routes: it only ever sees verified events.
async fn webhook(event: ChatbaseEvent) -> &'static str {
    match event.event() {
        Event::LeadsSubmit(lead) => {
            // Store the lead here: `lead.customer_email()`, `lead.customer_name()`,
            // `lead.customer_phone()`. Never log those.
            tracing::info!(
                event_type = "leads.submit",
                chatbot_id = event.chatbot_id().unwrap_or("-"),
                conversation_id = lead.conversation_id().unwrap_or("-"),
                "Chatbase event received"
            );
        }
        // Chatbase may add event types: acknowledge them rather than fail.
        other => tracing::info!(
            event_type = other.event_type(),
            chatbot_id = event.chatbot_id().unwrap_or("-"),
            conversation_id = "-",
            "Chatbase event received"
        ),
    }
    "OK"
}

fn app(verifier: Verifier) -> Router {
    let scoped = Router::new()
        .route("/webhook", post(webhook))
        .layer(VerifyChatbaseLayer::new(verifier.clone()));
    Router::new()
        .route("/webhook", post(webhook))
        .nest("/scoped", scoped)
        .with_state(verifier)
        // Outermost: bounds the whole request, body reading included.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line naming what to fix, e.g. the missing variable.
            eprintln!("axum-receiver: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `CHATBASE_WEBHOOK_SECRET`, and `CHATBASE_WEBHOOK_PREVIOUS_SECRET` while rotating.
    let verifier = Verifier::from_env()?;
    let address = address_from_env()?;
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    tracing::info!(
        "listening on http://{} (POST /webhook, /scoped/webhook)",
        listener.local_addr()?
    );
    serve(listener, app(verifier), shutdown).await;
    Ok(())
}

/// `127.0.0.1:$PORT`, port 3000 when `PORT` is unset or empty.
fn address_from_env() -> Result<SocketAddr, String> {
    let port = match std::env::var("PORT") {
        Ok(port) if !port.is_empty() => port.trim().parse().map_err(|_| {
            format!("environment variable PORT is {port:?}: expected a port number")
        })?,
        _ => 3000,
    };
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// Completes at the first Ctrl-C or `SIGTERM`. The handlers are installed now,
/// so a signal sent as soon as the server says it is listening is not missed.
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("Ctrl-C received: shutting down gracefully"),
            _ = terminate.recv() => tracing::info!("SIGTERM received: shutting down gracefully"),
        }
    })
}

/// Serves `app` over HTTP/1.1 until `shutdown`, then stops accepting, closes
/// idle connections and waits up to [`SHUTDOWN_TIMEOUT`] for the rest.
///
/// Served with hyper directly rather than `axum::serve`, for the header read
/// timeout and the head size limit that `axum::serve` does not set.
async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: pause rather than spin.
                    tracing::warn!(%error, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("shut down"),
        () = tokio::time::sleep(SHUTDOWN_TIMEOUT) => {
            tracing::warn!("requests still in flight after {SHUTDOWN_TIMEOUT:?}: dropping them");
        }
    }
}
