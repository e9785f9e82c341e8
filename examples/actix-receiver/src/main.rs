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
//! | `CHATBASE_WEBHOOK_SECRETS` or `CHATBASE_WEBHOOK_SECRETS_FILE` | instead of the above, secrets per chatbot, as JSON: `{"<chatbotId>": "<secret>" \| ["<current>", "<previous>"]}` |
//! | `CHATBASE_INBOX` | `sqlite://<path>` or `postgres://...`: store each delivery durably before answering 200, and process it in a worker (see below) |
//! | `METRICS_PORT` | serve Prometheus metrics on `127.0.0.1:$METRICS_PORT/metrics` |
//! | `PORT` | listens on `127.0.0.1:$PORT`, 3000 by default (`0`: any free port) |
//! | `RUST_LOG` | the log filter, `info` by default |
//!
//! With `CHATBASE_INBOX`, both routes answer 200 only once the delivery is
//! committed (a duplicate is answered 200 with `x-chatbase-duplicate: true`,
//! an inbox that cannot store answers 503), and a worker in this process runs
//! [`process`] for each stored delivery, retrying it on failure: put your work
//! there.
//!
//! Against slow or hostile clients: 10 s to send each request head (the idle
//! time before it included), 10 s for the rest of the request (408 after it),
//! heads of at most 128 KiB (431, actix-http's fixed limit), bodies of at most
//! 1 MiB (413, the verifier's limit), on kept-alive connections (see
//! `server.rs`: actix-web's own head timer covers only a connection's first
//! request). Ctrl-C or `SIGTERM` stop it gracefully: no new connections, and up
//! to 30 s for the requests in flight.

use std::io::IsTerminal as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;

use actix_web::{App, HttpResponse, web};
use chatbase_actix::inbox::{Delivery, Failure, Inbox, Stored};
use chatbase_actix::{ChatbaseEvent, Event, Verifier, VerifyChatbase, method_not_allowed};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

mod server;

/// The handler of both routes: it only ever sees verified events.
async fn webhook(event: ChatbaseEvent) -> HttpResponse {
    let conversation_id = match event.event() {
        Event::LeadsSubmit(lead) => {
            // Store the lead here: `lead.customer_email()`, `lead.customer_name()`,
            // `lead.customer_phone()`. Never log those.
            lead.conversation_id()
        }
        // Chatbase may add event types: acknowledge them rather than fail.
        _ => None,
    };
    tracing::info!(
        event_type = %event.event_type(),
        chatbot_id = %event.chatbot_id().unwrap_or("-"),
        conversation_id = %conversation_id.unwrap_or("-"),
        "Chatbase event received"
    );
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

/// With an inbox: the handler behind the middleware stores the verified event.
async fn store_event(inbox: web::Data<Inbox>, event: ChatbaseEvent) -> Stored {
    inbox.accept(&event).await.into()
}

/// With an inbox: what the worker runs for each stored delivery, retrying it
/// (with backoff) when it fails or panics. Do your work here: a CRM call, an
/// email... Never log the customer's email, name or phone.
async fn process(delivery: Delivery) -> Result<(), Failure> {
    let event = delivery.event()?;
    let conversation_id = match event.event() {
        Event::LeadsSubmit(lead) => lead.conversation_id().unwrap_or("-"),
        _ => "-",
    };
    tracing::info!(
        event_type = %event.event_type(),
        chatbot_id = %event.chatbot_id().unwrap_or("-"),
        conversation_id = %conversation_id,
        attempt = delivery.attempt(),
        "event processed"
    );
    Ok(())
}

/// `POST /webhook` to `handler`, and a 405 with `Allow: POST` for any other
/// method (actix-web's own 405 has no `Allow`).
fn webhook_resource<F, Args>(handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource("/webhook")
        .route(web::post().to(handler))
        .default_service(web::to(method_not_allowed))
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
    if let Some(port) = port_from_env("METRICS_PORT")? {
        serve_metrics(port)?;
    }
    let inbox = match std::env::var("CHATBASE_INBOX") {
        Ok(url) if !url.is_empty() => {
            Some(web::Data::new(Inbox::open(&url).await.map_err(
                |error| format!("environment variable CHATBASE_INBOX: {error}"),
            )?))
        }
        _ => None,
    };
    let worker = inbox.as_ref().map(|inbox| {
        let stop = shutdown.clone();
        actix_web::rt::spawn(
            inbox
                .worker(process)
                .run(async move { stop.stopped().await }),
        )
    });
    let data = web::Data::new(verifier.clone());
    let app_inbox = inbox.clone();
    server::server(listener, server::TIMEOUTS, shutdown.stopped(), move || {
        let app = App::new().app_data(data.clone());
        let scoped = web::scope("/scoped").wrap(VerifyChatbase::new(verifier.clone()));
        match &app_inbox {
            None => app
                .service(webhook_resource(webhook))
                .service(scoped.service(webhook_resource(webhook))),
            Some(inbox) => app
                .app_data(inbox.clone())
                .service(webhook_resource(chatbase_actix::inbox::store))
                .service(scoped.service(webhook_resource(store_event))),
        }
    })?
    .await?;
    if let Some(worker) = worker {
        // The worker finishes or releases what it holds.
        let _ = worker.await;
    }
    if let Some(inbox) = inbox {
        inbox.close().await;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Serves Prometheus metrics on `127.0.0.1:$port/metrics`: the webhook
/// requests' (chatbase-core's `observe`) and the inbox's.
#[cfg(feature = "metrics")]
fn serve_metrics(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    use chatbase_actix::chatbase_core::observe;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    /// The buckets of the verification-time histogram, in seconds.
    const VERIFICATION_BUCKETS: [f64; 11] = [
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
        0.05,
    ];

    // The verification time as a histogram (buckets from 10 µs to 50 ms),
    // so that dashboards can take quantiles over instances.
    let verification = Matcher::Full(observe::VERIFICATION_SECONDS.to_owned());
    PrometheusBuilder::new()
        .with_http_listener((Ipv4Addr::LOCALHOST, port))
        .set_buckets_for_metric(verification, &VERIFICATION_BUCKETS)?
        .install()
        .map_err(|error| format!("cannot serve metrics on port {port} (METRICS_PORT): {error}"))?;
    Ok(())
}

/// Built without the `metrics` feature (only the load benchmark's metrics-off
/// build is): nothing to serve.
#[cfg(not(feature = "metrics"))]
fn serve_metrics(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    Err(
        format!("METRICS_PORT is {port}, but this build has no metrics (cargo feature `metrics`)")
            .into(),
    )
}

/// Ctrl-C or `SIGTERM`, seen by every part that stops on it (the server and
/// the inbox's worker).
#[derive(Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Completes once a stop signal has arrived.
    async fn stopped(mut self) {
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

/// Listens for Ctrl-C and `SIGTERM`. The handlers are installed now, so a
/// signal sent as soon as the server says it is listening is not missed.
fn shutdown_signal() -> std::io::Result<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (sender, receiver) = watch::channel(false);
    actix_web::rt::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("Ctrl-C received: shutting down gracefully"),
            _ = terminate.recv() => tracing::info!("SIGTERM received: shutting down gracefully"),
        }
        let _ = sender.send(true);
    });
    Ok(Stop(receiver))
}

/// The port in the environment variable `name`, if it is set and not empty.
fn port_from_env(name: &str) -> Result<Option<u16>, String> {
    match std::env::var(name) {
        Ok(port) if !port.is_empty() => port.trim().parse().map(Some).map_err(|_| {
            format!("environment variable {name} is {port:?}: expected a port number")
        }),
        _ => Ok(None),
    }
}

/// `127.0.0.1:$PORT`, port 3000 when `PORT` is unset or empty.
fn address_from_env() -> Result<SocketAddr, String> {
    let port = port_from_env("PORT")?.unwrap_or(3000);
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}
