//! The server: actix-web's `App` served through actix-http's `H1Service` on
//! actix-server, with keep-alive and a deadline on every request of a
//! connection.
//!
//! actix-http arms its head timer (`client_request_timeout`) only for a
//! connection's first request: on a kept-alive connection a later head sent a
//! byte at a time would never be cut off, and it has no body timeout at all.
//! Here each connection has one deadline, shared by its stream and its
//! requests:
//!
//! - while no request is being served (from the connection's opening, then
//!   from each response, idle time included) it has `header_read`; past it the
//!   stream reports end-of-file, and actix-http closes the connection;
//! - while a request is served (from its head to its response, the body
//!   included) it has `request`; past it the request is answered 408 with
//!   `Connection: close`, and the handler is dropped.
//!
//! Phase changes only record that a phase began; the clock is read when the
//! connection next waits, and the one timer is moved lazily. actix-http's own
//! keep-alive and head timers are off (one allocated and cancelled per
//! response): this costs less per request than `HttpServer`'s defaults.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, Ready, ready};
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::{BoxBody, MessageBody};
use actix_http::{ConnectionType, HttpService, KeepAlive, Request, Response, StatusCode};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt as _, Transform, apply,
    fn_service, map_config,
};
use actix_web::dev::AppConfig;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How long a client may take to send each request head, and may sit idle
/// before one: then the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take once its head has arrived, body included: then
/// 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to keep reading what a client still sends after an early answer
/// (a 413), so that it receives the answer.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a graceful shutdown waits for the requests in flight.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take, so that a slow or stalled one cannot hold a
/// connection forever.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For each request head, counted from the connection's opening or the
    /// end of the previous response (idle time included): then the connection
    /// is closed.
    pub header_read: Duration,
    /// For the rest of a request, reading the body and the handler included:
    /// then `408 Request Timeout`, connection closed.
    pub request: Duration,
    /// actix-http's `client_disconnect_timeout`: how long it keeps reading
    /// what a client still sends after an early answer (a 413), so that the
    /// client receives it.
    pub disconnect: Duration,
    /// For the requests in flight, on a graceful shutdown.
    pub shutdown: Duration,
}

/// The receiver's timeouts: 10 s for each head and for each request, 1 s to
/// read what a client still sends after an early answer, 30 s for a graceful
/// shutdown.
pub const TIMEOUTS: Timeouts = Timeouts {
    header_read: HEADER_READ_TIMEOUT,
    request: REQUEST_TIMEOUT,
    disconnect: DISCONNECT_TIMEOUT,
    shutdown: SHUTDOWN_TIMEOUT,
};

// ---------------------------------------------------------------------------
// The connection's deadline
// ---------------------------------------------------------------------------

/// The deadline of one connection: shared by its [`DeadlineStream`] and the
/// requests served on it (actix-http hands it to each request as connection
/// data, where [`Deadlines`] finds it).
///
/// Phase changes only record that a phase began; the clock is read, and the
/// deadline set, when the connection next waits (polls the timer).
///
/// A connection runs on one actix worker thread, so this is an `Rc`.
#[derive(Clone)]
pub struct ConnectionDeadline(Rc<Shared>);

struct Shared {
    timeouts: Timeouts,
    /// When the current phase must be over (once set: see `restarted`).
    deadline: Cell<Instant>,
    /// A phase began since `deadline` was last set: it is set anew from the
    /// clock the next time the connection waits.
    restarted: Cell<bool>,
    /// The connection's one timer. It never fires after `deadline`, but may fire
    /// before it: it is re-armed lazily (see [`ConnectionDeadline::poll_expired`]).
    timer: RefCell<Pin<Box<Sleep>>>,
    /// The timer was polled since its last reset, and holds the task's waker:
    /// it need not be polled again before it fires.
    armed: Cell<bool>,
    /// A request's service is running: the request deadline applies, enforced
    /// by [`DeadlineFuture`]. Otherwise the connection waits for a request head,
    /// enforced by [`DeadlineStream`].
    serving: Cell<bool>,
    /// The head deadline passed: reads report end-of-file from now on.
    closed: Cell<bool>,
}

impl ConnectionDeadline {
    /// A connection opened now: it has [`Timeouts::header_read`] to send its
    /// first request head.
    fn new(timeouts: Timeouts) -> Self {
        let deadline = Instant::now() + timeouts.header_read;
        Self(Rc::new(Shared {
            timeouts,
            deadline: Cell::new(deadline),
            restarted: Cell::new(false),
            timer: RefCell::new(Box::pin(tokio::time::sleep_until(deadline))),
            armed: Cell::new(false),
            serving: Cell::new(false),
            closed: Cell::new(false),
        }))
    }

    /// A request head was parsed and its service called: the request now has
    /// [`Timeouts::request`].
    fn start_request(&self) {
        self.0.serving.set(true);
        self.0.restarted.set(true);
    }

    /// The request's response is ready: the connection now has
    /// [`Timeouts::header_read`] to send the next head.
    fn finish_request(&self) {
        self.0.serving.set(false);
        self.0.restarted.set(true);
    }

    /// Whether the current phase's deadline has passed; if not, the task is
    /// woken when it may have.
    fn poll_expired(&self, cx: &mut Context<'_>) -> bool {
        let shared = &self.0;
        let mut timer = shared.timer.borrow_mut();
        if shared.restarted.replace(false) {
            let timeout = if shared.serving.get() {
                shared.timeouts.request
            } else {
                shared.timeouts.header_read
            };
            let deadline = Instant::now() + timeout;
            shared.deadline.set(deadline);
            // The timer must not fire late: move it earlier now if need be.
            // Moving it later waits until it fires.
            if deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
                shared.armed.set(false);
            }
        }
        if shared.armed.get() && !timer.is_elapsed() {
            return false;
        }
        let deadline = shared.deadline.get();
        loop {
            let budget = tokio::task::coop::has_budget_remaining();
            if timer.as_mut().poll(cx).is_pending() {
                // Without budget the timer was not polled (the task is woken to
                // try again), so not registered.
                shared.armed.set(budget);
                return false;
            }
            shared.armed.set(false);
            if timer.deadline() >= deadline {
                return true;
            }
            // Fired for a deadline that has since moved on: wait for the new one.
            timer.as_mut().reset(deadline);
        }
    }
}

impl fmt::Debug for ConnectionDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionDeadline")
            .field("deadline", &self.0.deadline.get())
            .field("serving", &self.0.serving.get())
            .field("closed", &self.0.closed.get())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// The stream: the head deadline
// ---------------------------------------------------------------------------

/// A connection's stream under its [`ConnectionDeadline`]: while no request is
/// being served and the deadline passes, reads report end-of-file, so
/// actix-http closes the connection. Writes pass through.
#[derive(Debug)]
pub struct DeadlineStream<IO> {
    io: IO,
    deadline: ConnectionDeadline,
}

impl<IO> DeadlineStream<IO> {
    /// Wraps a connection that opened now.
    pub fn new(io: IO, timeouts: Timeouts) -> Self {
        Self {
            io,
            deadline: ConnectionDeadline::new(timeouts),
        }
    }

    /// The connection's deadline, for actix-http's connection data.
    pub fn deadline(&self) -> &ConnectionDeadline {
        &self.deadline
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for DeadlineStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shared = &this.deadline.0;
        if shared.closed.get() {
            return Poll::Ready(Ok(()));
        }
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if read.is_pending() && !shared.serving.get() && this.deadline.poll_expired(cx) {
            shared.closed.set(true);
            tracing::debug!("no request head in time: closing the connection");
            // End of file: actix-http finishes what it has in hand and closes.
            return Poll::Ready(Ok(()));
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for DeadlineStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------
// The service: the request deadline
// ---------------------------------------------------------------------------

/// The [`Transform`] that puts a request deadline on an actix-http service and
/// tells the connection's [`DeadlineStream`] when a request is being served.
/// Requests on a connection without a [`ConnectionDeadline`] pass through
/// untimed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadlines;

impl<S> Transform<S, Request> for Deadlines
where
    S: Service<Request>,
    S::Error: Into<Response<BoxBody>>,
{
    type Response = S::Response;
    type Error = Response<BoxBody>;
    type Transform = DeadlineService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DeadlineService { service }))
    }
}

/// The service [`Deadlines`] makes.
#[derive(Debug)]
pub struct DeadlineService<S> {
    service: S,
}

impl<S> Service<Request> for DeadlineService<S>
where
    S: Service<Request>,
    S::Error: Into<Response<BoxBody>>,
{
    type Response = S::Response;
    type Error = Response<BoxBody>;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx).map_err(Into::into)
    }

    fn call(&self, request: Request) -> Self::Future {
        let deadline = request.conn_data::<ConnectionDeadline>().cloned();
        if let Some(deadline) = &deadline {
            deadline.start_request();
        }
        DeadlineFuture {
            inner: self.service.call(request),
            deadline,
        }
    }
}

pin_project! {
    /// The future of [`DeadlineService`]: the inner service's, cut off with a
    /// 408 at the request deadline.
    #[derive(Debug)]
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        deadline: Option<ConnectionDeadline>,
    }
}

impl<F, T, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Response<BoxBody>>,
{
    type Output = Result<T, Response<BoxBody>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.poll(cx) {
            Poll::Ready(result) => {
                if let Some(deadline) = this.deadline {
                    deadline.finish_request();
                }
                Poll::Ready(result.map_err(Into::into))
            }
            Poll::Pending => match this.deadline {
                Some(deadline) if deadline.poll_expired(cx) => {
                    deadline.finish_request();
                    tracing::warn!("request not complete in time: answering 408");
                    Poll::Ready(Err(request_timeout()))
                }
                _ => Poll::Pending,
            },
        }
    }
}

/// `408 Request Timeout`, closing the connection: what is left of the body is
/// not awaited.
fn request_timeout() -> Response<BoxBody> {
    let mut response = Response::new(StatusCode::REQUEST_TIMEOUT);
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// An actix-server [`Server`] serving the [`App`](actix_web::App)s `app` makes
/// (one per worker, as with `HttpServer::new`) on `listener`, over HTTP/1.1 with
/// keep-alive, every connection under its [`ConnectionDeadline`]:
///
/// - [`Timeouts::header_read`] for each request head, counted from the
///   connection's opening or the end of the previous response (so an idle
///   connection is closed after it too);
/// - [`Timeouts::request`] from the end of a head to the response, reading the
///   body included (then `408`, connection closed);
/// - [`Timeouts::disconnect`]: actix-http's `client_disconnect_timeout`;
/// - request heads over actix-http's fixed limit (128 KiB, or more than 96
///   headers) are answered `431` by actix-http.
///
/// It stops gracefully when `shutdown` completes: it stops accepting, closes idle
/// connections, and gives requests in flight up to [`Timeouts::shutdown`]
/// (rounded down to whole seconds, as actix-server counts them). It installs no
/// signal handler of its own. Await the returned [`Server`] to run it;
/// [`Server::handle`] stops it too.
///
/// The apps see actix-web's default [`AppConfig`] (host `localhost:8080`): it
/// only matters to URL generation and to requests without a `Host` header.
///
/// # Errors
///
/// If `listener` cannot be used.
pub fn server<F, I, S, B>(
    listener: TcpListener,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
    app: F,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let local_addr = listener.local_addr()?;
    let builder = Server::build()
        .shutdown_timeout(timeouts.shutdown.as_secs())
        .shutdown_signal(shutdown);
    let draining = builder.graceful_shutdown_signal();
    let server = builder
        .listen("actix-web-deadlines", listener, move || {
            let draining = draining.clone();
            // As `HttpServer` does: the app's errors become responses, and it is
            // given an `AppConfig`.
            let app = app()
                .into_factory()
                .map_err(|error| error.into().error_response())
                .map_init_err(|error| tracing::error!(?error, "the app failed to start"));
            let app = map_config(app, |()| AppConfig::default());
            let http = HttpService::build()
                // Keep-alive on, without actix-http's timers: the connection's
                // deadline bounds idle time and every head.
                .keep_alive(KeepAlive::Os)
                .client_request_timeout(Duration::ZERO)
                .client_disconnect_timeout(timeouts.disconnect)
                .local_addr(local_addr)
                // On shutdown, idle connections close and busy ones finish.
                .graceful_shutdown_signal(move || {
                    let draining = draining.clone();
                    async move { draining.notified().await }
                })
                .on_connect_ext(|io: &DeadlineStream<TcpStream>, data| {
                    data.insert(io.deadline().clone());
                })
                .h1(apply(Deadlines, app));
            fn_service(move |io: TcpStream| {
                let peer = io.peer_addr().ok();
                ready(Ok((DeadlineStream::new(io, timeouts), peer)))
            })
            .and_then(http)
        })?
        .run();
    Ok(server)
}
