//! End-to-end tests: real axum `Router`s, driven with `tower::ServiceExt::oneshot`
//! and, for what only a connection shows, over real TCP with `axum::serve`.
//!
//! chatbase-core's request matrix (`testing::conformance`) runs against the
//! extractor route and the layer route, each body sent with a `Content-Length`
//! and streamed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, FromRef, State};
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use chatbase_axum::chatbase_core::sign;
use chatbase_axum::chatbase_core::testing::conformance::{self, Case, Expected};
use chatbase_axum::chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
use chatbase_axum::{
    ChatbaseEvent, ChatbaseLayer, ChatbaseRejection, Event, SIGNATURE_HEADER, Secret, Verifier,
};
use futures_util::stream;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

const SECRET: &str = "integration-test-secret";
/// The body limit of the routers driven with `oneshot`.
const LIMIT: usize = 4096;

fn secret(key: &str) -> Secret {
    Secret::new(key).unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(secret(SECRET)).with_body_limit(LIMIT)
}

// ---------------------------------------------------------------------------
// The applications under test
// ---------------------------------------------------------------------------

/// A state larger than the verifier, as a real application has.
#[derive(Clone)]
struct AppState {
    verifier: Verifier,
    /// How many requests reached a handler.
    hits: Arc<AtomicUsize>,
    /// What the handler stored: the leads' email addresses.
    emails: Arc<Mutex<Vec<String>>>,
    /// The raw body of each event `describe` was handed.
    raw_bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl AppState {
    fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            hits: Arc::default(),
            emails: Arc::default(),
            raw_bodies: Arc::default(),
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn raw_bodies(&self) -> Vec<Bytes> {
        self.raw_bodies.lock().unwrap().clone()
    }
}

/// Answers with what it was handed, and keeps the raw body.
async fn describe(State(state): State<AppState>, event: ChatbaseEvent) -> Json<Value> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    state
        .raw_bodies
        .lock()
        .unwrap()
        .push(event.raw_body().clone());
    let lead = match event.event() {
        Event::LeadsSubmit(lead) => {
            if let Some(email) = &lead.customer_email {
                state.emails.lock().unwrap().push(email.clone());
            }
            serde_json::to_value(lead).unwrap()
        }
        _ => Value::Null,
    };
    Json(json!({
        "eventType": event.event_type(),
        "chatbotId": event.chatbot_id(),
        "lead": lead,
    }))
}

async fn echo_bytes(State(state): State<AppState>, body: Bytes) -> Bytes {
    state.hits.fetch_add(1, Ordering::SeqCst);
    body
}

async fn echo_string(State(state): State<AppState>, body: String) -> String {
    state.hits.fetch_add(1, Ordering::SeqCst);
    body
}

async fn echo_json(State(state): State<AppState>, Json(body): Json<Value>) -> Json<Value> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    Json(body)
}

/// Where the request matrix is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `post(describe)` with the `ChatbaseEvent` extractor.
    Extractor,
    /// The same handler behind `ChatbaseLayer`.
    Layer,
}

const TARGETS: [Target; 2] = [Target::Extractor, Target::Layer];

struct App {
    router: Router,
    state: AppState,
    path: &'static str,
}

/// The application for `target`, verifying with `verifier`.
///
/// Behind the layer, the routes' own state holds a verifier with another secret
/// and a one-byte limit: a request verified a second time there would fail.
fn app(target: Target, verifier: Verifier) -> App {
    match target {
        Target::Extractor => {
            let state = AppState::new(verifier);
            let router = Router::new()
                .route("/webhook", post(describe))
                .with_state(state.clone());
            App {
                router,
                state,
                path: "/webhook",
            }
        }
        Target::Layer => {
            let unused = Verifier::new(secret("not-the-layer-secret")).with_body_limit(1);
            let state = AppState::new(unused);
            let routes = Router::new()
                .route("/webhook", post(describe))
                .route("/bytes", post(echo_bytes))
                .route("/string", post(echo_string))
                .route("/json", post(echo_json))
                .with_state(state.clone());
            let router = Router::new()
                .nest("/chatbase", routes)
                .layer(ChatbaseLayer::new(verifier));
            App {
                router,
                state,
                path: "/chatbase/webhook",
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------

fn signed_request(path: &str, body: impl Into<Bytes>) -> Request<Body> {
    let body = body.into();
    let signature = sign(&secret(SECRET), &body);
    Request::post(path)
        .header(SIGNATURE_HEADER, signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Bytes,
}

impl Answer {
    async fn of(response: Response) -> Self {
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Self {
            status,
            content_type,
            body,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts a rejection as every client sees it: `status`, JSON with a
    /// `message`, `content-type: application/json`; returns the message.
    fn assert_rejected(&self, status: StatusCode, context: &str) -> String {
        assert_eq!(self.status, status, "{context}: {:?}", self.body);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "{context}"
        );
        let body = self.json();
        let message = body["message"].as_str().unwrap_or_else(|| {
            panic!("{context}: no message in {body}");
        });
        assert!(!message.is_empty(), "{context}");
        assert_eq!(body.as_object().unwrap().len(), 1, "{context}: {body}");
        message.to_owned()
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    init_logging();
    Answer::of(router.clone().oneshot(request).await.unwrap()).await
}

/// A body streamed in 512-byte chunks, with no length announced (as a chunked
/// request arrives).
fn streamed(body: &Bytes) -> Body {
    let chunks: Vec<Result<Bytes, Infallible>> = body
        .chunks(512)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    Body::from_stream(stream::iter(chunks))
}

/// How a client frames its body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// In one piece, its length announced in `Content-Length`.
    ContentLength,
    /// In chunks, no length announced (`Transfer-Encoding: chunked` on the wire).
    Chunked,
}

const FRAMINGS: [Framing; 2] = [Framing::ContentLength, Framing::Chunked];

/// The request a conformance case describes, its body framed as `framing`.
fn request(case: &Case, path: &str, framing: Framing) -> Request<Body> {
    let mut builder = Request::post(path);
    if let Some(signature) = &case.signature {
        builder = builder.header(SIGNATURE_HEADER, signature.as_str());
    }
    if let Some(content_type) = case.content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    let body = match framing {
        Framing::ContentLength => {
            builder = builder.header(header::CONTENT_LENGTH, case.body.len());
            Body::from(case.body.clone())
        }
        Framing::Chunked => streamed(&case.body),
    };
    builder.body(body).unwrap()
}

// ---------------------------------------------------------------------------
// The request matrix: chatbase-core's `testing::conformance`
// ---------------------------------------------------------------------------

/// Every case of the shared matrix, against both targets, in both framings: a
/// fresh application each time, so the hit count and the logs are the case's.
#[tokio::test(flavor = "current_thread")]
async fn request_matrix() {
    let logs = Logs::capture();
    let key = secret(SECRET);
    for target in TARGETS {
        for framing in FRAMINGS {
            for case in conformance::cases(&key, LIMIT) {
                let app = app(target, verifier());
                let context = format!("{target:?}, {framing:?}, {}", case.name);
                let mark = logs.mark();
                let answer = send(&app.router, request(&case, app.path, framing)).await;
                let logged = logs.since(mark);
                match &case.expected {
                    Expected::Delivered {
                        event_type,
                        chatbot_id,
                    } => {
                        assert_eq!(
                            answer.status,
                            StatusCode::OK,
                            "{context}: {:?}",
                            answer.body
                        );
                        let seen = answer.json();
                        assert_eq!(seen["eventType"], *event_type, "{context}");
                        assert_eq!(seen["chatbotId"], json!(chatbot_id), "{context}");
                        assert_eq!(app.state.hits(), 1, "{context}");
                        assert_eq!(
                            app.state.raw_bodies(),
                            std::slice::from_ref(&case.body),
                            "{context}"
                        );
                        assert_eq!(logged, "", "{context}: an accepted request was logged");
                    }
                    Expected::Rejected { status } => {
                        let status = StatusCode::from_u16(*status).unwrap();
                        answer.assert_rejected(status, &context);
                        assert_eq!(app.state.hits(), 0, "{context}: the handler ran");
                        assert_logged_once(&logged, status, &context);
                    }
                    other => panic!("{context}: an outcome this suite does not know: {other:?}"),
                }
                assert_logs_leak_nothing(&logged, &case, &context);
            }
        }
    }
}

/// What the matrix does not look at: the typed event the handler matches on.
#[tokio::test]
async fn the_handler_gets_the_typed_event() {
    let cases = [
        (
            SAMPLE_LEADS_SUBMIT,
            json!("xxxxxxxx"),
            serde_json::to_value(testing::sample_lead()).unwrap(),
        ),
        (
            r#"{"eventType":"leads.submit","chatbotId":"bot_2","payload":{"conversationId":null,"customerEmail":"ada@example.com"}}"#,
            json!("bot_2"),
            json!({"customerEmail": "ada@example.com"}),
        ),
        // Neither `payload` nor `chatbotId` is required: an empty lead.
        (r#"{"eventType":"leads.submit"}"#, Value::Null, json!({})),
        // An event type this crate does not know is no lead.
        (
            r#"{"eventType":"conversations.end","chatbotId":"bot_9","payload":{}}"#,
            json!("bot_9"),
            Value::Null,
        ),
    ];
    for target in TARGETS {
        for (body, chatbot_id, lead) in &cases {
            let app = app(target, verifier());
            let context = format!("{target:?}, {body}");
            let answer = send(&app.router, signed_request(app.path, *body)).await;
            assert_eq!(answer.status, StatusCode::OK, "{context}");
            let seen = answer.json();
            assert_eq!(seen["chatbotId"], *chatbot_id, "{context}");
            assert_eq!(seen["lead"], *lead, "{context}");
            assert_eq!(app.state.raw_bodies(), [Bytes::from(*body)], "{context}");
        }
    }
}

#[tokio::test]
async fn get_on_the_post_route_is_405_with_allow() {
    let app = app(Target::Extractor, verifier());
    let request = Request::get(app.path).body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("POST"), "{allow}");
    assert_eq!(app.state.hits(), 0);
}

#[tokio::test]
async fn rotation_accepts_the_old_and_the_new_secret() {
    let rotating = Verifier::new(secret("new-secret"))
        .with_secret(secret("old-secret"))
        .with_body_limit(LIMIT);
    for target in TARGETS {
        let app = app(target, rotating.clone());
        for (key, status) in [
            ("new-secret", StatusCode::OK),
            ("old-secret", StatusCode::OK),
            ("retired-secret", StatusCode::UNAUTHORIZED),
        ] {
            let request = Request::post(app.path)
                .header(
                    SIGNATURE_HEADER,
                    sign(&secret(key), SAMPLE_LEADS_SUBMIT.as_bytes()),
                )
                .body(Body::from(SAMPLE_LEADS_SUBMIT))
                .unwrap();
            let answer = send(&app.router, request).await;
            assert_eq!(answer.status, status, "{target:?}, {key}");
        }
        assert_eq!(app.state.hits(), 2, "{target:?}");
    }
}

#[tokio::test]
async fn the_verifier_comes_from_a_larger_state() {
    let app = app(Target::Extractor, verifier());
    let answer = send(&app.router, signed_request(app.path, SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.status, StatusCode::OK);
    // The handler used the rest of the state.
    assert_eq!(*app.state.emails.lock().unwrap(), ["jo@acme.io"]);

    // The `Verifier` alone is a state too.
    let router = Router::new()
        .route(
            "/",
            post(|event: ChatbaseEvent| async move { event.event_type().to_owned() }),
        )
        .with_state(verifier());
    let answer = send(&router, signed_request("/", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.body, "leads.submit");
}

#[tokio::test]
async fn a_rejection_can_be_handled_by_the_handler() {
    async fn lenient(event: Result<ChatbaseEvent, ChatbaseRejection>) -> String {
        match event {
            Ok(event) => event.event_type().to_owned(),
            Err(rejection) => format!("refused: {}", rejection.status().as_u16()),
        }
    }
    let router = Router::new()
        .route("/", post(lenient))
        .with_state(verifier());
    let unsigned = Request::post("/")
        .body(Body::from(SAMPLE_LEADS_SUBMIT))
        .unwrap();
    let answer = send(&router, unsigned).await;
    assert_eq!(answer.body, "refused: 401");
}

// ---------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_layer_hands_the_verified_body_on_intact() {
    let body = testing::event_body("x.y", "bot", &json!({"k": [1, "two", null]}));
    let cases = [
        ("/chatbase/bytes", true),
        ("/chatbase/string", true),
        ("/chatbase/json", true),
        // axum's `Json` requires a JSON content type: the layer adds it.
        ("/chatbase/json", false),
    ];
    for (path, content_type) in cases {
        let app = app(Target::Layer, verifier());
        // Streamed, so that the layer really reads it off a stream and puts it back.
        let mut request = signed_request(path, body.clone()).map(|_| streamed(&body));
        if !content_type {
            request.headers_mut().remove(header::CONTENT_TYPE);
        }
        let answer = send(&app.router, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
        if path.ends_with("json") {
            let sent: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(answer.json(), sent, "{path}");
        } else {
            assert_eq!(answer.body, body, "{path}");
        }
        assert_eq!(app.state.hits(), 1, "{path}");
    }
}

#[tokio::test]
async fn the_layer_rejects_before_the_body_handlers() {
    for path in ["/chatbase/bytes", "/chatbase/string", "/chatbase/json"] {
        let app = app(Target::Layer, verifier());
        let forged = Request::post(path)
            .header(SIGNATURE_HEADER, sign(&secret("forger"), b"{}"))
            .body(Body::from("{}"))
            .unwrap();
        send(&app.router, forged)
            .await
            .assert_rejected(StatusCode::UNAUTHORIZED, path);
        assert_eq!(app.state.hits(), 0, "{path}");
    }
}

#[tokio::test]
async fn behind_the_layer_the_extractor_does_not_verify_again() {
    // The layer verifies with SECRET; the route's own verifier would refuse
    // everything (another secret, a one-byte limit): the event comes from the
    // layer, not from a second verification.
    let app = app(Target::Layer, verifier());
    let answer = send(&app.router, signed_request(app.path, SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.json()["eventType"], "leads.submit");

    // Without the layer, that route's verifier does refuse the same request.
    let state = AppState::new(Verifier::new(secret("not-the-layer-secret")));
    let bare = Router::new()
        .route("/webhook", post(describe))
        .with_state(state);
    let answer = send(&bare, signed_request("/webhook", SAMPLE_LEADS_SUBMIT)).await;
    answer.assert_rejected(StatusCode::UNAUTHORIZED, "without the layer");
}

#[tokio::test]
async fn behind_the_layer_the_event_is_an_extension_with_any_state() {
    async fn handler(
        Extension(event): Extension<chatbase_axum::chatbase_core::ChatbaseEvent>,
        body: Bytes,
    ) -> String {
        assert_eq!(event.raw_body(), &body);
        format!(
            "{} from {}",
            event.event_type(),
            event.chatbot_id().unwrap_or("?")
        )
    }
    let router: Router = Router::new()
        .route("/hook", post(handler))
        .layer(ChatbaseLayer::new(verifier()));
    let answer = send(&router, signed_request("/hook", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.body, "leads.submit from xxxxxxxx");
}

#[tokio::test]
async fn the_layer_guards_every_method_and_path_it_wraps() {
    let app = app(Target::Layer, verifier());
    for (method, path) in [
        ("GET", "/chatbase/webhook"),
        ("PUT", "/chatbase/bytes"),
        ("POST", "/chatbase/nowhere"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        send(&app.router, request)
            .await
            .assert_rejected(StatusCode::UNAUTHORIZED, &format!("{method} {path}"));
    }
    // Signed, they reach the router, which answers as it would without the layer.
    let signed_get = Request::get("/chatbase/webhook")
        .header(SIGNATURE_HEADER, sign(&secret(SECRET), b""))
        .body(Body::empty())
        .unwrap();
    // An empty body is signed but is not an event.
    send(&app.router, signed_get)
        .await
        .assert_rejected(StatusCode::BAD_REQUEST, "signed GET");
    assert_eq!(app.state.hits(), 0);
}

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

thread_local! {
    /// Where `tracing` output emitted on this thread goes, if anywhere.
    static CAPTURE: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Writes to the current thread's [`CAPTURE`] buffer, or nowhere.
struct ThreadCapture;

impl io::Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(buffer) = &*capture.borrow() {
                buffer.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs one global `WARN` subscriber writing to [`ThreadCapture`], before
/// any request is sent.
///
/// A global one, installed before anything logs, rather than a scoped one per
/// test: `tracing` caches each call site's interest, and a call site first hit
/// on another test's thread while a scoped subscriber is being registered can
/// be cached as uninterested, losing the events.
fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(|| ThreadCapture)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// This thread's `tracing` output, captured from [`Logs::capture`] on.
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> Self {
        init_logging();
        let captured = Arc::new(Mutex::new(Vec::new()));
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(Arc::clone(&captured)));
        Self(captured)
    }

    /// Where the logs end now, for [`Logs::since`].
    fn mark(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// What was logged since `mark`.
    fn since(&self, mark: usize) -> String {
        String::from_utf8(self.0.lock().unwrap()[mark..].to_vec()).unwrap()
    }
}

/// `logged` is one WARN line for one rejection with `status`.
fn assert_logged_once(logged: &str, status: StatusCode, context: &str) {
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{context}: not logged exactly once: {logged}"
    );
    let line = lines[0];
    assert!(line.contains("WARN"), "{context}: {line}");
    assert!(
        line.contains("rejected a Chatbase webhook"),
        "{context}: {line}"
    );
    assert!(
        line.contains(&format!("status={}", status.as_u16())),
        "{context}: {line}"
    );
}

/// The logs of `case` show neither the secret, nor the signature the body
/// would need, nor the one sent, nor a customer's email address.
fn assert_logs_leak_nothing(logged: &str, case: &Case, context: &str) {
    let expected = sign(&secret(SECRET), &case.body);
    let sent = case.signature.as_deref().filter(|sent| sent.len() >= 8);
    let private = [
        SECRET,
        &expected,
        "jo@acme.io",
        "jo@evil.io",
        "ada@example.com",
        "acme",
    ];
    for private in private.into_iter().chain(sent) {
        assert!(
            !logged.contains(private),
            "{context}: {private:?} in {logged}"
        );
    }
}

/// Not in the matrix: a signed body that is no event (400) and carries a
/// customer's email address, which serde's message could quote.
#[tokio::test(flavor = "current_thread")]
async fn a_rejected_body_with_customer_data_is_logged_without_it() {
    let logs = Logs::capture();
    let body = r#"{"eventType":1,"payload":{"customerEmail":"jo@acme.io"}}"#;
    for target in TARGETS {
        let app = app(target, verifier());
        let mark = logs.mark();
        send(&app.router, signed_request(app.path, body))
            .await
            .assert_rejected(StatusCode::BAD_REQUEST, &format!("{target:?}"));
        let logged = logs.since(mark);
        assert_logged_once(&logged, StatusCode::BAD_REQUEST, &format!("{target:?}"));
        assert!(!logged.contains("jo@acme.io"), "{logged}");
        assert!(!logged.contains("acme"), "{logged}");
        assert_eq!(app.state.hits(), 0);
    }
}

// ---------------------------------------------------------------------------
// Over real TCP: the client receives the rejection
// ---------------------------------------------------------------------------

/// The limit of the servers below: the default, 1 MiB. The drain budget is four
/// times that; the bodies sent are larger than what the kernel's socket buffers
/// would absorb without the server reading.
const SERVED_LIMIT: usize = chatbase_axum::DEFAULT_BODY_LIMIT;
/// What the clients send when over the limit: 3 MiB, within the drain budget.
const OVERSIZED: usize = 3 * 1024 * 1024;
/// How long a whole exchange may take before the test is failed rather than
/// left hanging. Not a performance bound: it takes milliseconds.
const GUARD: Duration = Duration::from_secs(60);

/// Serves `target`'s application on a loopback port.
async fn serve(target: Target) -> (SocketAddr, AppState) {
    init_logging();
    let app = app(
        target,
        Verifier::new(secret(SECRET)).with_body_limit(SERVED_LIMIT),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.router).await.unwrap() });
    (addr, app.state)
}

/// An HTTP/1.1 response as read off the socket.
#[derive(Debug)]
struct RawResponse {
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn status_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    fn assert_rejected(&self, status: &str) {
        assert!(
            self.status_line()
                .starts_with(&format!("HTTP/1.1 {status}")),
            "{}",
            self.head
        );
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            self.head
        );
        let body: Value = serde_json::from_slice(&self.body).unwrap();
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
}

/// Reads one response with a `Content-Length` body.
async fn read_response(reader: &mut (impl AsyncRead + Unpin)) -> io::Result<RawResponse> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("the response has a Content-Length");
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(RawResponse { head, body })
}

/// Sends a POST whose head is `signature` and whose body is `len` bytes framed
/// as `framing`, writing the body in 16 KiB pieces while it reads the response
/// at the same time. Returns whether the whole request could be written, the
/// response read, and the connection if it is still whole.
async fn send_while_reading(
    stream: TcpStream,
    path: &str,
    signature: Option<&str>,
    framing: Framing,
    len: usize,
) -> (io::Result<()>, io::Result<RawResponse>, Option<TcpStream>) {
    let (mut reader, mut writer) = stream.into_split();
    let mut head =
        format!("POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n");
    if let Some(signature) = signature {
        head.push_str(&format!("{SIGNATURE_HEADER}: {signature}\r\n"));
    }
    match framing {
        Framing::ContentLength => head.push_str(&format!("content-length: {len}\r\n\r\n")),
        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n\r\n"),
    }
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let piece = vec![b' '; 16 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(piece.len());
            match framing {
                Framing::ContentLength => writer.write_all(&piece[..n]).await?,
                Framing::Chunked => {
                    writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                    writer.write_all(&piece[..n]).await?;
                    writer.write_all(b"\r\n").await?;
                }
            }
            left -= n;
        }
        if let Framing::Chunked = framing {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        writer.flush().await?;
        Ok::<_, io::Error>(writer)
    });
    let response = read_response(&mut reader).await;
    match writing.await.unwrap() {
        Ok(writer) => (Ok(()), response, Some(reader.reunite(writer).unwrap())),
        Err(error) => (Err(error), response, None),
    }
}

/// After a rejection, the same connection serves a valid webhook: the rejected
/// body was drained, not left to break the connection.
async fn assert_connection_still_serves(stream: TcpStream, path: &str) {
    let (mut reader, mut writer) = stream.into_split();
    let signature = sign(&secret(SECRET), SAMPLE_LEADS_SUBMIT.as_bytes());
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {signature}\r\n\
         content-length: {}\r\n\r\n{SAMPLE_LEADS_SUBMIT}",
        SAMPLE_LEADS_SUBMIT.len()
    );
    writer.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut reader).await.unwrap();
    assert!(
        response.status_line().starts_with("HTTP/1.1 200"),
        "{}",
        response.head
    );
}

async fn over_limit_reaches_a_client_still_sending(target: Target, framing: Framing) {
    let (addr, state) = serve(target).await;
    let path = match target {
        Target::Extractor => "/webhook",
        Target::Layer => "/chatbase/webhook",
    };
    let stream = TcpStream::connect(addr).await.unwrap();
    let signature = "0".repeat(40);
    let exchange = send_while_reading(stream, path, Some(&signature), framing, OVERSIZED);
    let (written, response, stream) = tokio::time::timeout(GUARD, exchange).await.unwrap();
    let context = format!("{target:?}, {framing:?}");
    let response = response.unwrap_or_else(|e| panic!("{context}: no response: {e}"));
    response.assert_rejected("413");
    written.unwrap_or_else(|e| panic!("{context}: the client could not send its body: {e}"));
    let stream = stream.unwrap();
    tokio::time::timeout(GUARD, assert_connection_still_serves(stream, path))
        .await
        .unwrap();
    assert_eq!(
        state.hits(),
        1,
        "{context}: only the valid request is handled"
    );
}

#[tokio::test]
async fn over_limit_content_length_reaches_the_client_extractor() {
    over_limit_reaches_a_client_still_sending(Target::Extractor, Framing::ContentLength).await;
}

#[tokio::test]
async fn over_limit_content_length_reaches_the_client_layer() {
    over_limit_reaches_a_client_still_sending(Target::Layer, Framing::ContentLength).await;
}

#[tokio::test]
async fn chunked_body_past_the_limit_reaches_the_client_extractor() {
    over_limit_reaches_a_client_still_sending(Target::Extractor, Framing::Chunked).await;
}

#[tokio::test]
async fn chunked_body_past_the_limit_reaches_the_client_layer() {
    over_limit_reaches_a_client_still_sending(Target::Layer, Framing::Chunked).await;
}

#[tokio::test]
async fn missing_signature_reaches_a_client_still_sending() {
    for target in TARGETS {
        let (addr, state) = serve(target).await;
        let path = if target == Target::Extractor {
            "/webhook"
        } else {
            "/chatbase/webhook"
        };
        for framing in [Framing::ContentLength, Framing::Chunked] {
            let stream = TcpStream::connect(addr).await.unwrap();
            // Within the limit: a 401 that comes before any of it is read.
            let exchange = send_while_reading(stream, path, None, framing, 768 * 1024);
            let (written, response, _) = tokio::time::timeout(GUARD, exchange).await.unwrap();
            let context = format!("{target:?}, {framing:?}");
            response
                .unwrap_or_else(|e| panic!("{context}: no response: {e}"))
                .assert_rejected("401");
            written
                .unwrap_or_else(|e| panic!("{context}: the client could not send its body: {e}"));
        }
        assert_eq!(state.hits(), 0);
    }
}

#[tokio::test]
async fn a_client_waiting_for_100_continue_gets_the_413_without_sending() {
    let (addr, state) = serve(Target::Extractor).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {}\r\n\
         expect: 100-continue\r\ncontent-length: {OVERSIZED}\r\n\r\n",
        "0".repeat(40)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = tokio::time::timeout(GUARD, read_response(&mut stream))
        .await
        .unwrap()
        .unwrap();
    // The final status straight away, not `100 Continue` inviting the body.
    response.assert_rejected("413");
    assert_eq!(state.hits(), 0);
}

#[tokio::test]
async fn an_endless_body_is_cut_off() {
    // The drain is bounded: a client that never stops sending is disconnected
    // after at most four times the limit (plus what the socket buffers hold).
    let (addr, _) = serve(Target::Extractor).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (_reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {}\r\n\
         transfer-encoding: chunked\r\n\r\n",
        "0".repeat(40)
    );
    let sending = async move {
        writer.write_all(head.as_bytes()).await?;
        let piece = vec![b' '; 64 * 1024];
        let mut sent = 0_usize;
        // 256 MiB: far more than the budget and any socket buffer.
        while sent < 256 * 1024 * 1024 {
            writer
                .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await?;
            writer.write_all(&piece).await?;
            writer.write_all(b"\r\n").await?;
            sent += piece.len();
        }
        Ok::<usize, io::Error>(sent)
    };
    let result = tokio::time::timeout(GUARD, sending).await.unwrap();
    assert!(
        result.is_err(),
        "the server read {result:?} bytes of a rejected body"
    );
}
