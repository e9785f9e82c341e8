//! [`Chatbase`], the service [`ChatbaseLayer`](super::ChatbaseLayer) makes.

use std::task::{Context, Poll};

use axum_core::BoxError;
use axum_core::body::Body;
use axum_core::extract::Request;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use chatbase_core::Verifier;
use tower_service::Service;

use super::{ChatbaseLayer, ResponseFuture};
use crate::verify::verified_request;

/// Verifies every request as a Chatbase webhook before `S` sees it.
///
/// Made by [`ChatbaseLayer`]; see the [module docs](crate::layer).
#[derive(Debug, Clone)]
pub struct Chatbase<S> {
    inner: S,
    verifier: Verifier,
}

impl<S> Chatbase<S> {
    /// Wraps `inner`, verifying requests with `verifier`.
    pub fn new(inner: S, verifier: Verifier) -> Self {
        Self { inner, verifier }
    }

    /// A [`ChatbaseLayer`] verifying requests with `verifier`.
    pub fn layer(verifier: Verifier) -> ChatbaseLayer {
        ChatbaseLayer::new(verifier)
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

impl<S, B> Service<http::Request<B>> for Chatbase<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // `self.inner` is the service that was polled ready: call that one, and
        // keep a fresh clone for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let request = request.map(Body::new);
        ResponseFuture::verifying(Box::pin(async move {
            match verified_request(&verifier, request).await {
                Ok(request) => Ok(inner.call(request)),
                Err(rejection) => Err(rejection.into_response()),
            }
        }))
    }
}
