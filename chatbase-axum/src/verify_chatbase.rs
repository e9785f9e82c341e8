//! Middleware that lets only verified Chatbase webhooks through.
//!
//! # Example
//!
//! ```
//! use axum::body::{Body, Bytes};
//! use axum::http::{Request, Response, StatusCode};
//! use chatbase_axum::{ChatbaseEvent, Secret, Verifier, VerifyChatbaseLayer};
//! use chatbase_core::sign;
//! use tower::{ServiceBuilder, ServiceExt as _, service_fn};
//!
//! async fn handle(request: Request<Body>) -> Result<Response<Body>, std::convert::Infallible> {
//!     // Only reached by verified requests: the event is in the extensions.
//!     let event = request.extensions().get::<chatbase_core::ChatbaseEvent>().unwrap();
//!     Ok(Response::new(Body::from(event.event_type().to_owned())))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::new("secret-from-the-chatbase-dashboard")?;
//! let service = ServiceBuilder::new()
//!     .layer(VerifyChatbaseLayer::new(Verifier::new(secret.clone())))
//!     .service_fn(handle);
//!
//! let body = r#"{"eventType":"leads.submit","chatbotId":"bot_1","payload":{}}"#;
//! let signed = Request::post("/")
//!     .header("x-chatbase-signature", sign(&secret, body.as_bytes()))
//!     .body(Body::from(body))?;
//! let response = service.clone().oneshot(signed).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let forged = Request::post("/")
//!     .header("x-chatbase-signature", "0".repeat(40))
//!     .body(Body::from(body))?;
//! let response = service.oneshot(forged).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```
//!
//! The layer verifies each request exactly as the
//! [`ChatbaseEvent`](crate::ChatbaseEvent) extractor does, with the
//! [`Verifier`] it was given: the signature header and the announced length
//! first, then the body, read up to the verifier's limit, then the signature,
//! then the event. A request that fails is answered with a
//! [`ChatbaseRejection`] (401, 413 or 400) and the wrapped service never sees
//! it.
//!
//! A request that passes goes on with:
//!
//! - the verified [`chatbase_core::ChatbaseEvent`] in its extensions: the
//!   [`ChatbaseEvent`](crate::ChatbaseEvent) extractor takes it from there
//!   without reading, hashing or parsing again, whatever the router's state,
//!   and `Extension<chatbase_core::ChatbaseEvent>` works too;
//! - its body replaced by the verified bytes, so a handler can take
//!   [`Bytes`], `String`, `Json<T>` or anything else that reads
//!   the body (and `content-type: application/json` if it had no content type:
//!   Chatbase does not promise one, and `Json<T>` requires it).
//!
//! It guards every request to what it wraps, whatever the method: with
//! `Router::layer` that includes the router's fallback, so an unsigned request
//! to an unknown path gets a 401 rather than a 404. Wrap only your webhook
//! routes, or use `Router::route_layer` if unknown paths should keep their 404.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum_core::BoxError;
use axum_core::body::Body;
use axum_core::extract::Request;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use chatbase_core::Verifier;
use chatbase_core::observe::{self, Answered, Recorder};
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use tracing::instrument::{Instrument as _, Instrumented};

use crate::ChatbaseRejection;
use crate::body::verify;

/// Layer that applies [`VerifyChatbase`], which lets only verified Chatbase
/// webhooks through to the service it wraps.
///
/// See the [module docs](crate::verify_chatbase) for an example.
#[derive(Debug, Clone)]
pub struct VerifyChatbaseLayer {
    verifier: Verifier,
}

impl VerifyChatbaseLayer {
    /// A layer verifying requests with `verifier`: its secrets and its body
    /// limit.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// The verifier requests are checked with.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl<S> Layer<S> for VerifyChatbaseLayer {
    type Service = VerifyChatbase<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyChatbase::new(inner, self.verifier.clone())
    }
}

/// Middleware that lets only verified Chatbase webhooks through to `S`.
///
/// See the [module docs](crate::verify_chatbase) for an example.
#[derive(Debug, Clone)]
pub struct VerifyChatbase<S> {
    inner: S,
    verifier: Verifier,
}

impl VerifyChatbase<()> {
    /// A [`VerifyChatbaseLayer`] verifying requests with `verifier`:
    /// `VerifyChatbase::layer(verifier)`.
    pub fn layer(verifier: Verifier) -> VerifyChatbaseLayer {
        VerifyChatbaseLayer::new(verifier)
    }
}

impl<S> VerifyChatbase<S> {
    /// Wraps `inner`, verifying requests with `verifier`.
    pub fn new(inner: S, verifier: Verifier) -> Self {
        Self { inner, verifier }
    }

    /// The verifier requests are checked with.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<http::Request<B>> for VerifyChatbase<S>
where
    S: Service<Request, Response = Response> + Clone,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // `self.inner` is the service that was polled ready: call that one, and
        // keep a fresh clone for the next request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let request = request.map(Body::new);
        let recorder = Recorder::new();
        let verifying = {
            let recorder = recorder.clone();
            async move { verified_request(&verifier, request, &recorder).await }
        };
        ResponseFuture {
            state: State::Verifying {
                verifying: Box::pin(verifying.instrument(recorder.span().clone())),
            },
            service: inner,
            recorder,
        }
    }
}

/// Verifies `request` and hands it on: the verified event in its extensions,
/// its body replaced by the verified bytes, and `content-type:
/// application/json` if it had no content type (the body is a JSON object now;
/// Chatbase does not promise the header, and axum's `Json` requires it).
async fn verified_request(
    verifier: &Verifier,
    request: Request,
    recorder: &Recorder,
) -> Result<Request, Response> {
    let (mut parts, body) = request.into_parts();
    let event = verify(verifier, &parts, body, recorder)
        .await
        .map_err(ChatbaseRejection::into_response)?;
    let body = Body::from(event.raw_body().clone());
    parts.extensions.insert(event);
    parts
        .headers
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    Ok(Request::from_parts(parts, body))
}

/// Verifies the request, then resolves to the wrapped service's future (or to
/// the rejection).
type Verifying = Pin<Box<dyn Future<Output = Result<Request, Response>> + Send>>;

pin_project! {
    /// Response future for [`VerifyChatbase`]: first verifies the request, then
    /// runs the wrapped service on it, or answers with the rejection.
    pub struct ResponseFuture<S>
    where
        S: Service<Request>,
    {
        #[pin]
        state: State<S::Future>,
        service: S,
        recorder: Recorder,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Verifying { verifying: Verifying },
        Calling { #[pin] future: Instrumented<F>, event_type: &'static str },
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<Request, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Verifying { verifying } => match ready!(verifying.as_mut().poll(cx)) {
                    Ok(request) => {
                        let event_type = request
                            .extensions()
                            .get::<chatbase_core::ChatbaseEvent>()
                            .map_or("other", |event| {
                                observe::event_type_label(event.event_type())
                            });
                        // The wrapped service runs in the request's span too.
                        let span = this.recorder.span();
                        let future = span.in_scope(|| this.service.call(request));
                        let future = future.instrument(span.clone());
                        this.state.set(State::Calling { future, event_type });
                    }
                    Err(rejection) => return Poll::Ready(Ok(rejection)),
                },
                StateProj::Calling { future, event_type } => {
                    let response = ready!(future.poll(cx));
                    // Counted with what the answer says came of it (the inbox
                    // glue says so); a verified request handed on is accepted.
                    if let Ok(response) = &response {
                        let answered = response
                            .extensions()
                            .get::<Answered>()
                            .copied()
                            .unwrap_or(Answered::ACCEPTED);
                        this.recorder
                            .record(answered.outcome, answered.reason, Some(event_type));
                    }
                    return Poll::Ready(response);
                }
            }
        }
    }
}

impl<S: Service<Request>> fmt::Debug for ResponseFuture<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Verifying { .. } => "verifying",
            State::Calling { .. } => "calling",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, poll_fn, ready};

    use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
    use chatbase_core::{SIGNATURE_HEADER, Secret};
    use http::StatusCode;
    use http_body_util::Full;

    use super::*;

    /// A service that must be polled ready before each call, as a buffered or
    /// rate-limited one must; a clone starts out not ready.
    #[derive(Debug)]
    struct ReadyOnce {
        ready: bool,
    }

    impl Clone for ReadyOnce {
        fn clone(&self) -> Self {
            Self { ready: false }
        }
    }

    impl Service<Request> for ReadyOnce {
        type Response = Response;
        type Error = Infallible;
        type Future = Ready<Result<Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request) -> Self::Future {
            let status = if std::mem::take(&mut self.ready) {
                assert!(
                    request
                        .extensions()
                        .get::<chatbase_core::ChatbaseEvent>()
                        .is_some()
                );
                StatusCode::OK
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let mut response = Response::default();
            *response.status_mut() = status;
            ready(Ok(response))
        }
    }

    /// A request whose body is not axum's `Body`: the layer takes any body.
    type FullRequest = http::Request<Full<Bytes>>;

    fn service() -> (VerifyChatbase<ReadyOnce>, Secret) {
        let secret = Secret::new("service-secret").unwrap();
        let layer = VerifyChatbase::layer(Verifier::new(secret.clone()));
        (layer.layer(ReadyOnce { ready: false }), secret)
    }

    #[tokio::test]
    async fn calls_the_service_that_was_polled_ready() {
        let (mut service, secret) = service();
        let signed = testing::sign_body(&secret, SAMPLE_LEADS_SUBMIT);
        let request = http::Request::post("/")
            .header(SIGNATURE_HEADER, signed.signature())
            .body(Full::new(signed.body().clone()))
            .unwrap();

        poll_fn(|cx| Service::<FullRequest>::poll_ready(&mut service, cx))
            .await
            .unwrap();
        let future = service.call(request);
        // The ready service went into the future; a fresh clone stays behind.
        assert!(!service.get_ref().ready);
        let response = future.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn rejects_without_calling_the_service() {
        let (mut service, _) = service();
        poll_fn(|cx| Service::<FullRequest>::poll_ready(&mut service, cx))
            .await
            .unwrap();
        let future = service.call(
            http::Request::post("/")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        );
        assert!(format!("{future:?}").contains("verifying"));
        let response = future.await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            service.verifier().body_limit(),
            chatbase_core::DEFAULT_BODY_LIMIT
        );
        assert!(!service.into_inner().ready);
    }
}
