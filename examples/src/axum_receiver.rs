//! The axum receiver: [`router`] and [`serve`], which the `axum-receiver` binary,
//! the demo and the tests all run.
//!
//! - `POST /webhook` takes the [`ChatbaseEvent`] extractor, which reads its
//!   [`Verifier`] from the state;
//! - the routes nested under `/scoped` sit behind a [`ChatbaseLayer`], which
//!   verifies every request to them, whatever its method, before any handler
//!   runs: the `POST /scoped/webhook` handler takes the event the layer verified;
//! - a verified event is answered `200 OK` with the body `OK`, logged at `info`
//!   (type, chatbot and conversation: never the customer's details) and recorded
//!   in [`Deliveries`];
//! - rejections are chatbase-axum's: 401, 400 or 413 with a JSON
//!   `{"message": ...}`; another method on `/webhook` gets axum's 405 with
//!   `Allow: POST`.
//!
//! [`serve`] adds what `axum::serve` does not have: a header read timeout and a
//! cap on the request head, besides the request timeout [`router`] sets (see
//! [`Timeouts`]).
//!
//! ```no_run
//! use chatbase_axum::Verifier;
//! use examples::axum_receiver;
//! use examples::deliveries::Deliveries;
//! use examples::timeouts::Timeouts;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = axum_receiver::router(Verifier::from_env()?, Deliveries::counter(), Timeouts::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum_receiver::serve(listener, app, Timeouts::default(), examples::shutdown::signal()?).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::post;
use chatbase_axum::{ChatbaseEvent, ChatbaseLayer, Verifier};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::deliveries::Deliveries;
use crate::timeouts::{AXUM_MAX_HEADER_BYTES, Timeouts};

/// The router's state: the verifier the extractor uses, and where handlers
/// record deliveries.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The verifier of `POST /webhook` (the layer on `/scoped` has its own copy).
    pub verifier: Verifier,
    /// Where handlers record what they received.
    pub deliveries: Deliveries,
}

// The extractor takes the `Verifier` from the state, as chatbase-axum's docs show.
impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The receiver's routes: `POST /webhook` (the extractor) and `/scoped/webhook`
/// (behind the layer), with [`Timeouts::request`] as the request timeout.
pub fn router(verifier: Verifier, deliveries: Deliveries, timeouts: Timeouts) -> Router {
    // The layer guards every route nested under `/scoped`, whatever the method:
    // an unsigned GET there gets a 401, not a 405. (An unknown path under
    // `/scoped` falls through to the outer router's 404.)
    let scoped = Router::new()
        .route("/webhook", post(webhook))
        .layer(ChatbaseLayer::new(verifier.clone()));
    let routes = Router::new()
        .route("/webhook", post(webhook))
        .nest("/scoped", scoped)
        .with_state(AppState {
            verifier,
            deliveries,
        });
    with_request_timeout(routes, timeouts)
}

/// Wraps `routes` in the request timeout: outermost, it bounds the whole request,
/// body reading included, so a client that trickles its body or stops sending it
/// gets a 408. Shared with the load benchmark's baseline ([`crate::baseline`]).
pub(crate) fn with_request_timeout(routes: Router, timeouts: Timeouts) -> Router {
    routes.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        timeouts.request,
    ))
}

/// The handler of both routes: a verified event is all it ever sees.
async fn webhook(State(state): State<AppState>, event: ChatbaseEvent) -> &'static str {
    // A real receiver matches on `event.event()` here and stores the lead
    // (`Event::LeadsSubmit(lead)`: `lead.customer_email`, ...). Never log those.
    state.deliveries.receive(&event);
    "OK"
}

/// Serves `router` on `listener` over HTTP/1.1 until `shutdown` completes, then
/// shuts down gracefully: stops accepting, closes idle connections, and waits up
/// to [`Timeouts::shutdown`] for requests in flight.
///
/// Each connection has [`Timeouts::header_read`] to send each request head (and
/// no longer to sit idle between requests), and a head over
/// [`AXUM_MAX_HEADER_BYTES`] is answered 431.
///
/// # Errors
///
/// Never, as of now: accept errors (too many open files...) are logged and
/// retried. The `Result` leaves room for set-up errors.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_buf_size(AXUM_MAX_HEADER_BYTES);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_error(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses: don't wait to coalesce them.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }

    drop(listener);
    tracing::info!("no longer accepting connections; finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("shut down"),
        () = tokio::time::sleep(timeouts.shutdown) => {
            tracing::warn!(timeout = ?timeouts.shutdown, "requests still in flight after the shutdown timeout: dropping them");
        }
    }
    Ok(())
}

/// Logs an accept error and, unless it only concerns one connection, pauses a
/// little before accepting again (e.g. out of file descriptors).
async fn accept_error(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, header};
    use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
    use chatbase_core::{SIGNATURE_HEADER, Secret};
    use tower::ServiceExt as _;

    use super::*;

    fn app() -> (Router, Secret, crate::deliveries::Delivered) {
        let secret = Secret::new("axum-receiver-unit").unwrap();
        let (deliveries, delivered) = Deliveries::channel();
        let app = router(
            Verifier::new(secret.clone()),
            deliveries,
            Timeouts::default(),
        );
        (app, secret, delivered)
    }

    #[tokio::test]
    async fn both_routes_deliver_a_signed_event() {
        let (app, secret, mut delivered) = app();
        let signed = testing::sign_body(&secret, SAMPLE_LEADS_SUBMIT);
        for path in ["/webhook", "/scoped/webhook"] {
            let request = Request::post(path)
                .header(SIGNATURE_HEADER, signed.signature())
                .body(Body::from(signed.body().clone()))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body = axum::body::to_bytes(response.into_body(), 64)
                .await
                .unwrap();
            assert_eq!(body, "OK");
        }
        assert_eq!(delivered.drain().len(), 2);
    }

    #[tokio::test]
    async fn other_methods_get_405_on_webhook_and_401_when_scoped() {
        let (app, _, mut delivered) = app();
        let get = |path| Request::get(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(get("/webhook")).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        let response = app.clone().oneshot(get("/scoped/webhook")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = app.oneshot(get("/scoped/elsewhere")).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(delivered.drain().is_empty());
    }
}
