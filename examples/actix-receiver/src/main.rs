//! A hardened Chatbase webhook receiver on actix-web: copy it, then replace the
//! handler's logging with your own work.
//!
//! - `POST /webhook`: the `ChatbaseEvent` extractor, with the verifier as app
//!   data; any other method gets 405 with `Allow: POST`;
//! - `/scoped/webhook`: the same handler in a scope wrapped in
//!   `VerifyChatbase`, which verifies every request in it, whatever its method;
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
//! Against slow or hostile clients: 10 s to send the request head (408), 10 s
//! for the rest of the request (408), heads of at most 128 KiB (431, actix-http's
//! fixed limit), bodies of at most 1 MiB (413, the verifier's limit). actix-web times out only the head of a connection's first
//! request, so this receiver serves one request per connection. Ctrl-C or
//! `SIGTERM` stop it gracefully: no new connections, and up to 30 s for the
//! requests in flight.

use std::fmt;
use std::io::IsTerminal as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{KeepAlive, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};
use chatbase_actix::{ChatbaseEvent, Event, Verifier, VerifyChatbase, method_not_allowed};
use tracing_subscriber::EnvFilter;

/// How long a client may take to send the request head: then 408.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take once its head has arrived, body included: then
/// 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to keep reading what a client still sends after an early answer
/// (a 413), so that it receives the answer.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a graceful shutdown waits for the requests in flight.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The handler of both routes: it only ever sees verified events.
async fn webhook(event: ChatbaseEvent) -> HttpResponse {
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
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

/// `POST /webhook` to [`webhook`], and a 405 with `Allow: POST` for any other
/// method (actix-web's own 405 has no `Allow`).
fn webhook_resource() -> actix_web::Resource {
    web::resource("/webhook")
        .route(web::post().to(webhook))
        .default_service(web::to(method_not_allowed))
}

/// Answers 408 and closes the connection when a request takes longer than
/// [`REQUEST_TIMEOUT`], reading the body included: actix-web has no body
/// timeout of its own.
async fn request_timeout(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match actix_web::rt::time::timeout(REQUEST_TIMEOUT, next.call(request)).await {
        Ok(response) => response,
        Err(_elapsed) => Err(RequestTimedOut.into()),
    }
}

/// A request took longer than [`REQUEST_TIMEOUT`].
#[derive(Debug)]
struct RequestTimedOut;

impl fmt::Display for RequestTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request was not complete in time")
    }
}

impl ResponseError for RequestTimedOut {
    fn status_code(&self) -> StatusCode {
        StatusCode::REQUEST_TIMEOUT
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::RequestTimeout().force_close().finish()
    }
}

#[actix_web::main]
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
            eprintln!("actix-receiver: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `CHATBASE_WEBHOOK_SECRET`, and `CHATBASE_WEBHOOK_PREVIOUS_SECRET` while rotating.
    let verifier = Verifier::from_env()?;
    let address = address_from_env()?;
    // Before saying it listens: a signal sent right after is then not missed.
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(address)
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    tracing::info!(
        "listening on http://{} (POST /webhook, /scoped/webhook)",
        listener.local_addr()?
    );
    let data = web::Data::new(verifier.clone());
    HttpServer::new(move || {
        App::new()
            // Outermost: bounds the whole request, body reading included.
            .wrap(from_fn(request_timeout))
            .app_data(data.clone())
            .service(webhook_resource())
            .service(
                web::scope("/scoped")
                    .wrap(VerifyChatbase::new(verifier.clone()))
                    .service(webhook_resource()),
            )
    })
    // actix-web times out only the head of a connection's first request: a
    // kept-alive connection could be held by a second head sent a byte at a
    // time. One request per connection closes that hole.
    .keep_alive(KeepAlive::Disabled)
    .client_request_timeout(HEADER_READ_TIMEOUT)
    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
    // On Ctrl-C or SIGTERM: stop accepting, then wait this long for the
    // requests in flight (actix-web's own Ctrl-C handling would not wait).
    .shutdown_signal(shutdown)
    .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
    .listen(listener)?
    .run()
    .await?;
    tracing::info!("shut down");
    Ok(())
}

/// Completes at the first Ctrl-C or `SIGTERM`. The handlers are installed now,
/// so a signal sent as soon as the server says it is listening is not missed.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
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
