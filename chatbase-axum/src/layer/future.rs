//! [`ResponseFuture`], the future [`Chatbase`](super::Chatbase) returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum_core::response::Response;
use pin_project_lite::pin_project;

/// Verifies the request, then resolves to the inner service's future (or to the
/// rejection).
type Verifying<F> = Pin<Box<dyn Future<Output = Result<F, Response>> + Send>>;

pin_project! {
    /// The response future of [`Chatbase`](super::Chatbase): first verifies the
    /// request, then runs the wrapped service on it, or answers with the rejection.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Verifying { verifying: Verifying<F> },
        Calling { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn verifying(verifying: Verifying<F>) -> Self {
        Self {
            state: State::Verifying { verifying },
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Verifying { verifying } => match ready!(verifying.as_mut().poll(cx)) {
                    Ok(future) => this.state.set(State::Calling { future }),
                    Err(rejection) => return Poll::Ready(Ok(rejection)),
                },
                StateProj::Calling { future } => return future.poll(cx),
            }
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Verifying { .. } => "verifying",
            State::Calling { .. } => "calling",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
