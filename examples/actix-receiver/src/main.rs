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
//! the `server` module below: actix-web's own head timer covers only a
//! connection's first request). Ctrl-C or `SIGTERM` stop it gracefully: no new connections, and up
//! to 30 s for the requests in flight.

use std::io::IsTerminal as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;

use actix_web::{App, HttpResponse, web};
use chatbase_actix::inbox::{Delivery, Failure, Inbox, Stored};
use chatbase_actix::{ChatbaseEvent, Event, Verifier, VerifyChatbase, method_not_allowed};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

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
    // Each request then updates its metrics' handles, not the registry.
    observe::cache_metric_handles();
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

pub mod server {
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
}
