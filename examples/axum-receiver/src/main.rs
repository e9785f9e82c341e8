//! A hardened Chatbase webhook receiver on axum: copy it, then replace the
//! handler's logging with your own work.
//!
//! - `POST /webhook`: the `ChatbaseEvent` extractor, with the verifier as the
//!   router's state; any other method gets 405 with `Allow: POST`;
//! - `/scoped/webhook`: the same handler behind `VerifyChatbaseLayer`, which
//!   verifies every request under `/scoped`, whatever its method;
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
//! heads of at most 64 KiB (431), bodies of at most 1 MiB (413, the verifier's
//! limit). Ctrl-C or `SIGTERM` stop it gracefully: no new connections, and up
//! to 30 s for the requests in flight.

use std::io::{self, IsTerminal as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use chatbase_axum::inbox::{Delivery, Failure, Inbox, StoreInInbox, Stored};
use chatbase_axum::{ChatbaseEvent, Event, Verifier, VerifyChatbaseLayer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

/// The handler of both routes without an inbox: it only ever sees verified
/// events.
async fn webhook(event: ChatbaseEvent) -> &'static str {
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
    "OK"
}

/// With an inbox: the handler behind the layer stores the verified event.
async fn store(State(inbox): State<Inbox>, event: ChatbaseEvent) -> Stored {
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

/// Both routes: the handlers log each event, or store it in `inbox`.
fn app(verifier: Verifier, inbox: Option<Inbox>) -> Router {
    match inbox {
        None => {
            let scoped = Router::new()
                .route("/webhook", post(webhook))
                .layer(VerifyChatbaseLayer::new(verifier.clone()));
            Router::new()
                .route("/webhook", post(webhook))
                .nest("/scoped", scoped)
                .with_state(verifier)
        }
        Some(inbox) => {
            let scoped = Router::new()
                .route("/webhook", post(store))
                .layer(VerifyChatbaseLayer::new(verifier.clone()))
                .with_state(inbox.clone());
            Router::new()
                .route_service("/webhook", StoreInInbox::new(verifier, inbox))
                .nest("/scoped", scoped)
        }
    }
}

#[tokio::main]
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
            eprintln!("axum-receiver: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // One secret (`CHATBASE_WEBHOOK_SECRET`, and `CHATBASE_WEBHOOK_PREVIOUS_SECRET`
    // while rotating), or secrets per chatbot (`CHATBASE_WEBHOOK_SECRETS(_FILE)`).
    let verifier = Verifier::from_env()?;
    let address = address_from_env()?;
    let stop = shutdown_signal()?;
    if let Some(port) = port_from_env("METRICS_PORT")? {
        serve_metrics(port)?;
    }
    let inbox = match std::env::var("CHATBASE_INBOX") {
        Ok(url) if !url.is_empty() => Some(
            Inbox::open(&url)
                .await
                .map_err(|error| format!("environment variable CHATBASE_INBOX: {error}"))?,
        ),
        _ => None,
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    tracing::info!(
        "listening on http://{} (POST /webhook, /scoped/webhook)",
        listener.local_addr()?
    );
    let worker = inbox.as_ref().map(|inbox| {
        let worker = inbox.worker(process);
        let stop = stop.clone();
        tokio::spawn(worker.run(async move { stop.stopped().await }))
    });
    server::serve(
        listener,
        app(verifier, inbox.clone()),
        server::TIMEOUTS,
        stop.stopped(),
    )
    .await?;
    if let Some(worker) = worker {
        // The worker finishes or releases what it holds.
        let _ = worker.await;
    }
    if let Some(inbox) = inbox {
        inbox.close().await;
    }
    Ok(())
}

/// `127.0.0.1:$PORT`, port 3000 when `PORT` is unset or empty.
fn address_from_env() -> Result<SocketAddr, String> {
    let port = port_from_env("PORT")?.unwrap_or(3000);
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
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

/// Serves Prometheus metrics on `127.0.0.1:$port/metrics`: the webhook
/// requests' (chatbase-core's `observe`) and the inbox's.
#[cfg(feature = "metrics")]
fn serve_metrics(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    use chatbase_axum::chatbase_core::observe;
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
fn shutdown_signal() -> io::Result<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("Ctrl-C received: shutting down gracefully"),
            _ = terminate.recv() => tracing::info!("SIGTERM received: shutting down gracefully"),
        }
        let _ = sender.send(true);
    });
    Ok(Stop(receiver))
}

pub mod server {
    //! The server: axum over hyper's HTTP/1 connections, with keep-alive and a
    //! deadline on every request of a connection.
    //!
    //! `axum::serve` has no timeout at all: a client may hold a connection open
    //! forever, send a head a byte at a time, or stop in the middle of a body.
    //! hyper has a `header_read_timeout`, and tower-http a `TimeoutLayer` for the
    //! rest of a request; but together they cost about a quarter more CPU per
    //! request than `axum::serve` on a small webhook (a fresh timer per head, and
    //! another per request). [`serve`] keeps the same guarantees
    //! with one timer per connection:
    //!
    //! - while the connection waits for a request head (from its opening, then
    //!   from each response, idle time included) it has `header_read`; past it a
    //!   connection that never had a request is dropped, any other is shut down
    //!   gracefully (closed at once if idle or holding part of a head, else given
    //!   `disconnect` to finish writing its response);
    //! - while a request is served (from its head to its response, the body
    //!   included) it has `request`; past it the request is answered 408 with
    //!   `Connection: close`, and the handler is dropped.
    //!
    //! Each phase change is an atomic store; the connection's task reads the clock
    //! once when it next waits and moves the deadline lazily, so a busy connection
    //! touches tokio's timer wheel about once per timeout period, not per request.

    use std::error::Error as StdError;
    use std::future::{Future, poll_fn};
    use std::io;
    use std::pin::{Pin, pin};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use axum::Router;
    use axum::http::{HeaderValue, Request, Response, StatusCode, header};
    use hyper::body::{Body, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::HttpService;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use pin_project_lite::pin_project;
    use tokio::net::TcpListener;
    use tokio::sync::Notify;
    use tokio::time::Instant;

    /// How long a client may take to send a request head, and may sit idle before
    /// one: then the connection is closed.
    const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a request may take once its head has arrived, body included: then
    /// `408 Request Timeout`.
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a connection past its head deadline has to finish writing a
    /// response.
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
        /// For a connection past its head deadline to finish writing a response.
        pub disconnect: Duration,
        /// For the requests in flight, on a graceful shutdown.
        pub shutdown: Duration,
    }

    /// The receiver's timeouts: 10 s for each head and for each request, 1 s to
    /// finish a response past the head deadline, 30 s for a graceful shutdown.
    pub const TIMEOUTS: Timeouts = Timeouts {
        header_read: HEADER_READ_TIMEOUT,
        request: REQUEST_TIMEOUT,
        disconnect: DISCONNECT_TIMEOUT,
        shutdown: SHUTDOWN_TIMEOUT,
    };

    /// The largest request head (request line and headers) [`serve`] reads: 64 KiB
    /// (hyper's read buffer limit); a larger one is answered `431 Request Header
    /// Fields Too Large`, as is one with more than 100 headers. hyper's own default
    /// is about 400 KiB.
    pub const MAX_HEADER_BYTES: usize = 64 * 1024;

    /// Serves `router` on `listener` over HTTP/1.1 with keep-alive until `shutdown`
    /// completes, every connection under its own deadline (see the module docs):
    ///
    /// - [`Timeouts::header_read`] for each request head, counted from the
    ///   connection's opening or the moment the previous response was ready, idle
    ///   time included (then the connection is closed);
    /// - [`Timeouts::request`] from the end of a head to the response, reading the
    ///   body included (then `408`, connection closed);
    /// - [`Timeouts::disconnect`] to finish writing a response once a connection is
    ///   past its head deadline;
    /// - a head over [`MAX_HEADER_BYTES`] is answered `431`.
    ///
    /// On `shutdown` it stops accepting, closes idle connections, lets requests in
    /// flight finish, and waits up to [`Timeouts::shutdown`] for them.
    ///
    /// HTTP/1 only, without upgrades (no WebSocket): what a webhook receiver needs.
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
        let mut http = http1::Builder::new();
        http.max_buf_size(MAX_HEADER_BYTES)
            // The connection's deadline bounds every head instead.
            .header_read_timeout(None);
        let connections = Arc::new(Connections::default());
        let mut shutdown = pin!(shutdown);

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
            let deadline = ConnectionDeadline::new(timeouts);
            let service = DeadlineService {
                inner: TowerToHyperService::new(router.clone()),
                deadline: deadline.clone(),
            };
            let connection = http.serve_connection(TokioIo::new(stream), service);
            connections.opened();
            tokio::spawn(drive(connection, deadline, Arc::clone(&connections)));
        }

        drop(listener);
        tracing::info!("no longer accepting connections; finishing requests in flight");
        match tokio::time::timeout(timeouts.shutdown, connections.shut_down()).await {
            Ok(()) => tracing::info!("shut down"),
            Err(_elapsed) => tracing::warn!(
                timeout = ?timeouts.shutdown,
                "requests still in flight after the shutdown timeout: leaving them"
            ),
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

    // ---------------------------------------------------------------------------
    // The server's connections, for the graceful shutdown
    // ---------------------------------------------------------------------------

    /// The open connections, and whether the server is shutting down.
    #[derive(Debug, Default)]
    struct Connections {
        /// Set once, when the server starts shutting down.
        shutting_down: AtomicBool,
        /// Wakes every connection (each has registered once) when it does.
        shutdown: Notify,
        open: AtomicUsize,
        /// Told when the last connection closes during the shutdown.
        all_closed: Notify,
    }

    impl Connections {
        fn opened(&self) {
            self.open.fetch_add(1, Ordering::Relaxed);
        }

        fn closed(&self) {
            if self.open.fetch_sub(1, Ordering::AcqRel) == 1
                && self.shutting_down.load(Ordering::Acquire)
            {
                self.all_closed.notify_one();
            }
        }

        /// Tells every connection to finish, and waits until they all have.
        async fn shut_down(&self) {
            self.shutting_down.store(true, Ordering::Release);
            self.shutdown.notify_waiters();
            // `notify_one` keeps a permit if the last connection closes between the
            // check and the wait.
            while self.open.load(Ordering::Acquire) > 0 {
                self.all_closed.notified().await;
            }
        }
    }

    // ---------------------------------------------------------------------------
    // The connection's deadline
    // ---------------------------------------------------------------------------

    /// What the service of one connection tells the connection's task
    /// ([`drive`]): they run in one task, so the atomics are only there because
    /// tokio may move the task between threads (`Relaxed` is enough).
    #[derive(Debug, Clone)]
    struct ConnectionDeadline(Arc<Phase>);

    #[derive(Debug)]
    struct Phase {
        timeouts: Timeouts,
        /// A request's service is running: the request deadline applies.
        /// Otherwise the connection waits for a request head.
        serving: AtomicBool,
        /// A phase began since the task last set the deadline: it sets it anew from
        /// the clock when the connection next waits.
        restarted: AtomicBool,
        /// The request deadline passed: the service answers 408.
        expired: AtomicBool,
    }

    impl ConnectionDeadline {
        fn new(timeouts: Timeouts) -> Self {
            Self(Arc::new(Phase {
                timeouts,
                serving: AtomicBool::new(false),
                restarted: AtomicBool::new(false),
                expired: AtomicBool::new(false),
            }))
        }

        fn serving(&self) -> bool {
            self.0.serving.load(Ordering::Relaxed)
        }

        /// A request head was parsed and its service called: the request now has
        /// [`Timeouts::request`].
        fn start_request(&self) {
            self.0.serving.store(true, Ordering::Relaxed);
            self.0.restarted.store(true, Ordering::Relaxed);
        }

        /// The request's response is ready: the connection now has
        /// [`Timeouts::header_read`] to send the next head.
        fn finish_request(&self) {
            self.0.serving.store(false, Ordering::Relaxed);
            self.0.expired.store(false, Ordering::Relaxed);
            self.0.restarted.store(true, Ordering::Relaxed);
        }

        /// Takes the news of a phase change: the timeout that now applies.
        fn take_restart(&self) -> Option<Duration> {
            if !self.0.restarted.load(Ordering::Relaxed) {
                return None;
            }
            self.0.restarted.store(false, Ordering::Relaxed);
            Some(if self.serving() {
                self.0.timeouts.request
            } else {
                self.0.timeouts.header_read
            })
        }
    }

    /// Why [`drive`] let go of a connection early.
    #[derive(Debug, Clone, Copy)]
    enum CutOff {
        /// The service did not answer the 408 it was told to.
        Request,
        /// Past the head deadline and the grace after it.
        Head,
    }

    /// Runs `connection` to its end under its deadline: past a request deadline the
    /// service is told to answer 408; past a head deadline the connection is shut
    /// down gracefully, and dropped [`Timeouts::disconnect`] later if still open.
    async fn drive<S, B>(
        connection: http1::Connection<TokioIo<tokio::net::TcpStream>, S>,
        deadline: ConnectionDeadline,
        connections: Arc<Connections>,
    ) where
        S: HttpService<Incoming, ResBody = B>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let timeouts = deadline.0.timeouts;
        let mut connection = pin!(connection);
        let mut shutdown = pin!(connections.shutdown.notified());
        let mut waiting_for_shutdown = false;
        let mut told_to_shut_down = false;
        // Past the head deadline: the connection was told to shut down, and is
        // dropped at `at` if still open.
        let mut in_grace = false;
        // No request has started on the connection yet.
        let mut first_head = true;
        let mut at = Instant::now() + timeouts.header_read;
        // Never fires after `at`, but may fire before it: it is reset to it then
        // (lazily: a deadline moving later costs nothing until then).
        let mut timer = pin!(tokio::time::sleep_until(at));
        // The timer was polled since its last reset, and holds this task's waker.
        let mut armed = false;

        let outcome = poll_fn(|cx| {
            loop {
                if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                    return Poll::Ready(Ok(result));
                }
                // The connection waits.
                if !told_to_shut_down {
                    // Registered once (polling it takes a lock shared by all
                    // connections); after that, the flag says.
                    let notified = !waiting_for_shutdown && shutdown.as_mut().poll(cx).is_ready();
                    waiting_for_shutdown = true;
                    if notified || connections.shutting_down.load(Ordering::Acquire) {
                        told_to_shut_down = true;
                        connection.as_mut().graceful_shutdown();
                        continue;
                    }
                }
                if let Some(timeout) = deadline.take_restart()
                    && !in_grace
                {
                    first_head = false;
                    at = Instant::now() + timeout;
                    if at < timer.deadline() {
                        timer.as_mut().reset(at);
                        armed = false;
                    }
                }
                if armed && !timer.is_elapsed() {
                    return Poll::Pending;
                }
                let budget = tokio::task::coop::has_budget_remaining();
                if timer.as_mut().poll(cx).is_pending() {
                    // Without budget the timer was not polled (the task is woken to
                    // try again), so not registered.
                    armed = budget;
                    return Poll::Pending;
                }
                armed = false;
                if timer.deadline() < at {
                    // Fired for a deadline that has since moved on.
                    timer.as_mut().reset(at);
                    continue;
                }
                if in_grace {
                    return Poll::Ready(Err(CutOff::Head));
                }
                if deadline.serving() {
                    // Past the request deadline: the service answers 408 when the
                    // connection polls it, on the next turn. If it was told already,
                    // let the connection go.
                    if deadline.0.expired.swap(true, Ordering::Relaxed) {
                        return Poll::Ready(Err(CutOff::Request));
                    }
                    continue;
                }
                // Past the head deadline. Nothing was ever answered on the
                // connection: drop it. Otherwise hyper closes it at once if idle
                // (or holding part of a head), and finishes writing a response
                // first. (It would not close a connection holding part of its first
                // head.)
                if first_head {
                    return Poll::Ready(Err(CutOff::Head));
                }
                connection.as_mut().graceful_shutdown();
                in_grace = true;
                at = Instant::now() + timeouts.disconnect;
                timer.as_mut().reset(at);
            }
        })
        .await;
        connections.closed();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "connection closed with an error"),
            Err(CutOff::Head) => tracing::debug!("no request head in time: connection dropped"),
            Err(CutOff::Request) => {
                tracing::warn!("request not answered after its deadline: connection dropped");
            }
        }
    }

    // ---------------------------------------------------------------------------
    // The service: when a request starts and ends, and its 408
    // ---------------------------------------------------------------------------

    /// A connection's service: marks each request's start (its head was parsed) and
    /// end (its response is ready) on the [`ConnectionDeadline`], and answers 408
    /// when told the request's deadline passed.
    #[derive(Debug)]
    struct DeadlineService<S> {
        inner: S,
        deadline: ConnectionDeadline,
    }

    impl<S, B> hyper::service::Service<Request<Incoming>> for DeadlineService<S>
    where
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
        B: Default,
    {
        type Response = Response<B>;
        type Error = S::Error;
        type Future = DeadlineFuture<S::Future>;

        fn call(&self, request: Request<Incoming>) -> Self::Future {
            self.deadline.start_request();
            DeadlineFuture {
                inner: self.inner.call(request),
                deadline: self.deadline.clone(),
            }
        }
    }

    pin_project! {
        /// The future of [`DeadlineService`].
        #[derive(Debug)]
        struct DeadlineFuture<F> {
            #[pin]
            inner: F,
            deadline: ConnectionDeadline,
        }
    }

    impl<F, B, E> Future for DeadlineFuture<F>
    where
        F: Future<Output = Result<Response<B>, E>>,
        B: Default,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            if let Poll::Ready(result) = this.inner.poll(cx) {
                this.deadline.finish_request();
                return Poll::Ready(result);
            }
            if this.deadline.0.expired.load(Ordering::Relaxed) {
                this.deadline.finish_request();
                tracing::warn!("request not complete in time: answering 408");
                return Poll::Ready(Ok(request_timeout()));
            }
            Poll::Pending
        }
    }

    /// `408 Request Timeout`, closing the connection: what is left of the body is
    /// not awaited.
    fn request_timeout<B: Default>() -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}
