//! Taking verified deliveries into a durable [`Inbox`] (feature `inbox`): one
//! line in a handler, or a ready-made service.
//!
//! An answer of 200 means the delivery was committed to disk; a duplicate (the
//! same delivery key again: a retry, a replay, another instance) is answered
//! 200 with `x-chatbase-duplicate: true` and stored once; an inbox that cannot
//! store answers 503 with `Retry-After`, in the shared `{"message"}` shape. A
//! worker ([`Inbox::worker`]) then runs your handler for each stored delivery,
//! with retries.
//!
//! # In a handler
//!
//! ```no_run
//! use axum::{Router, extract::State, routing::post};
//! use chatbase_axum::inbox::{Inbox, Stored};
//! use chatbase_axum::{ChatbaseEvent, Verifier, VerifyChatbaseLayer};
//!
//! async fn webhook(State(inbox): State<Inbox>, event: ChatbaseEvent) -> Stored {
//!     inbox.accept(&event).await.into()
//! }
//!
//! # async fn app() -> Result<Router, Box<dyn std::error::Error>> {
//! let inbox = Inbox::open("sqlite://chatbase-inbox.db").await?;
//! let app = Router::new()
//!     .route("/webhook", post(webhook))
//!     .layer(VerifyChatbaseLayer::new(Verifier::from_env()?))
//!     .with_state(inbox);
//! # Ok(app) }
//! ```
//!
//! Behind [`VerifyChatbaseLayer`](crate::VerifyChatbaseLayer) the request is
//! counted with what [`Stored`] answered (`accepted`, `duplicate` or
//! `unavailable`).
//!
//! # A ready-made service
//!
//! ```no_run
//! use axum::Router;
//! use chatbase_axum::Verifier;
//! use chatbase_axum::inbox::{Inbox, StoreInInbox};
//!
//! # async fn app() -> Result<Router, Box<dyn std::error::Error>> {
//! let inbox = Inbox::open("sqlite://chatbase-inbox.db").await?;
//! let app: Router = Router::new().route_service("/webhook", StoreInInbox::new(Verifier::from_env()?, inbox));
//! # Ok(app) }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_core::BoxError;
use axum_core::body::Body;
use axum_core::extract::Request;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use chatbase_core::Verifier;
use chatbase_core::observe::Recorder;
pub use chatbase_inbox::{
    self, Accepted, Answer, DUPLICATE_HEADER, Delivery, Failure, Inbox, InboxBuilder, InboxError,
    KeyStrategy, Worker,
};
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tower_service::Service;
use tracing::Instrument as _;

use crate::body::verify;

/// The answer to a delivery taken into an inbox: 200 once it is stored
/// (`x-chatbase-duplicate: true` if it was already), 503 with `Retry-After` if
/// the inbox could not store it. Make it from what [`Inbox::accept`] returned.
#[derive(Debug)]
pub struct Stored(pub Result<Accepted, InboxError>);

impl From<Result<Accepted, InboxError>> for Stored {
    fn from(result: Result<Accepted, InboxError>) -> Self {
        Self(result)
    }
}

impl IntoResponse for Stored {
    fn into_response(self) -> Response {
        Answer::log(&self.0);
        let answer = Answer::of(&self.0);
        let mut response = Response::new(Body::from(answer.json_body()));
        *response.status_mut() =
            StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if answer.is_duplicate() {
            headers.insert(
                HeaderName::from_static(DUPLICATE_HEADER),
                HeaderValue::from_static("true"),
            );
        }
        if let Some(seconds) = answer.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(answer.answered());
        response
    }
}

/// A service that verifies each request and takes it into an inbox: mount it
/// with `Router::route_service`. Other methods than `POST` get 405 with
/// `Allow: POST`.
///
/// Each request is counted once, with its final outcome: `rejected`,
/// `accepted`, `duplicate` or `unavailable`.
#[derive(Debug, Clone)]
pub struct StoreInInbox {
    verifier: Verifier,
    inbox: Inbox,
}

impl StoreInInbox {
    /// Verifies with `verifier`, stores in `inbox`.
    pub fn new(verifier: Verifier, inbox: Inbox) -> Self {
        Self { verifier, inbox }
    }
}

impl<B> Service<http::Request<B>> for StoreInInbox
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let this = self.clone();
        let request: Request = request.map(Body::new);
        Box::pin(async move { Ok(this.store(request).await) })
    }
}

impl StoreInInbox {
    async fn store(self, request: Request) -> Response {
        if request.method() != Method::POST {
            let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let recorder = Recorder::new();
        let (parts, body) = request.into_parts();
        let handled = async {
            let event = match verify(&self.verifier, &parts, body, &recorder).await {
                Ok(event) => event,
                Err(rejection) => return rejection.into_response(),
            };
            let stored = self.inbox.accept(&event).await;
            let answered = Answer::of(&stored).answered();
            recorder.record(answered.outcome, answered.reason, Some(event.event_type()));
            Stored(stored).into_response()
        };
        handled.instrument(recorder.span().clone()).await
    }
}
