//! [`Chatbase`], the service [`ChatbaseLayer`](super::ChatbaseLayer) makes.

use std::task::{Context, Poll};

use axum_core::BoxError;
use axum_core::body::Body;
use axum_core::extract::Request;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use chatbase_core::Verifier;
use tower_service::Service;

use super::ResponseFuture;
use crate::verify::verified_request;

/// Verifies every request as a Chatbase webhook before `S` sees it.
///
/// Made by [`ChatbaseLayer`](super::ChatbaseLayer); see the
/// [module docs](crate::layer).
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, poll_fn, ready};

    use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
    use chatbase_core::{SIGNATURE_HEADER, Secret};
    use http::StatusCode;
    use http_body_util::Full;

    use super::*;
    use crate::ChatbaseLayer;

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

    fn service() -> (Chatbase<ReadyOnce>, Secret) {
        let secret = Secret::new("service-secret").unwrap();
        let layer = ChatbaseLayer::new(Verifier::new(secret.clone()));
        (
            tower_layer::Layer::layer(&layer, ReadyOnce { ready: false }),
            secret,
        )
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
