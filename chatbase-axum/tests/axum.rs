//! End-to-end tests: real axum `Router`s, driven with `tower::ServiceExt::oneshot`
//! and, for what only a connection shows, over real TCP with `axum::serve`.
//!
//! The same request matrix runs against the extractor route and the layer route.
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
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Answers with what it was handed.
async fn describe(State(state): State<AppState>, event: ChatbaseEvent) -> Json<Value> {
    state.hits.fetch_add(1, Ordering::SeqCst);
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
        "rawBody": String::from_utf8_lossy(event.raw_body()),
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

// ---------------------------------------------------------------------------
// The request matrix
// ---------------------------------------------------------------------------

/// The `x-chatbase-signature` header a case sends.
enum Signature {
    /// The right one, lowercase as Chatbase sends it.
    Valid,
    /// The right one, in upper case.
    UpperCase,
    /// No header.
    Missing,
    /// This exact value.
    Raw(String),
    /// The HMAC of the body under another secret.
    SignedWith(&'static str),
    /// The right HMAC, of other bytes than the body sent.
    SignedOver(Bytes),
}

enum Expect {
    /// Reaches the handler, which sees this event type.
    Event(&'static str),
    /// Is refused with this status; the handler never runs.
    Rejected(StatusCode),
}

struct Case {
    name: &'static str,
    signature: Signature,
    body: Bytes,
    content_type: bool,
    /// Streamed in chunks, with no announced length, rather than in one piece
    /// with a `Content-Length`.
    streamed: bool,
    expect: Expect,
}

impl Case {
    fn new(
        name: &'static str,
        signature: Signature,
        body: impl Into<Bytes>,
        expect: Expect,
    ) -> Self {
        Self {
            name,
            signature,
            body: body.into(),
            content_type: true,
            streamed: false,
            expect,
        }
    }

    fn without_content_type(mut self) -> Self {
        self.content_type = false;
        self
    }

    fn streamed(mut self) -> Self {
        self.streamed = true;
        self
    }

    fn request(&self, path: &str) -> Request<Body> {
        let mut builder = Request::post(path);
        let signature = match &self.signature {
            Signature::Valid => Some(sign(&secret(SECRET), &self.body)),
            Signature::UpperCase => Some(sign(&secret(SECRET), &self.body).to_ascii_uppercase()),
            Signature::Missing => None,
            Signature::Raw(value) => Some(value.clone()),
            Signature::SignedWith(key) => Some(sign(&secret(key), &self.body)),
            Signature::SignedOver(other) => Some(sign(&secret(SECRET), other)),
        };
        if let Some(signature) = signature {
            builder = builder.header(SIGNATURE_HEADER, signature);
        }
        if self.content_type {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let body = if self.streamed {
            streamed(&self.body)
        } else {
            builder = builder.header(header::CONTENT_LENGTH, self.body.len());
            Body::from(self.body.clone())
        };
        builder.body(body).unwrap()
    }
}

fn matrix() -> Vec<Case> {
    use Expect::{Event as Ok, Rejected};
    use Signature::*;
    const UNAUTHORIZED: Expect = Rejected(StatusCode::UNAUTHORIZED);
    const BAD_REQUEST: Expect = Rejected(StatusCode::BAD_REQUEST);
    const TOO_LARGE: Expect = Rejected(StatusCode::PAYLOAD_TOO_LARGE);

    let sample = Bytes::from_static(SAMPLE_LEADS_SUBMIT.as_bytes());
    let mut tampered = SAMPLE_LEADS_SUBMIT.as_bytes().to_vec();
    // `jo@acme.io` becomes `jp@acme.io`.
    let at = SAMPLE_LEADS_SUBMIT.find("jo@").unwrap();
    tampered[at + 1] = b'p';
    let forty = sign(&secret(SECRET), SAMPLE_LEADS_SUBMIT.as_bytes());
    let unknown = testing::event_body("conversations.end", "bot_9", &json!({"id": "c1"}));
    let sparse_lead = r#"{"eventType":"leads.submit","chatbotId":"bot_2","payload":{"conversationId":null,"customerEmail":"ada@example.com"}}"#;
    let mut at_limit = SAMPLE_LEADS_SUBMIT.as_bytes().to_vec();
    at_limit.resize(LIMIT, b' ');
    let mut over_limit = at_limit.clone();
    over_limit.push(b' ');

    vec![
        Case::new("valid", Valid, sample.clone(), Ok("leads.submit")),
        Case::new(
            "upper-case hex",
            UpperCase,
            sample.clone(),
            Ok("leads.submit"),
        ),
        Case::new(
            "unknown event type",
            Valid,
            unknown,
            Ok("conversations.end"),
        ),
        Case::new("no content-type", Valid, sample.clone(), Ok("leads.submit"))
            .without_content_type(),
        Case::new(
            "lead with missing and null fields",
            Valid,
            sparse_lead,
            Ok("leads.submit"),
        ),
        Case::new("valid, streamed", Valid, sample.clone(), Ok("leads.submit")).streamed(),
        Case::new(
            "exactly at the limit",
            Valid,
            at_limit.clone(),
            Ok("leads.submit"),
        ),
        Case::new(
            "exactly at the limit, streamed",
            Valid,
            at_limit,
            Ok("leads.submit"),
        )
        .streamed(),
        Case::new("missing signature", Missing, sample.clone(), UNAUTHORIZED),
        Case::new(
            "empty signature",
            Raw(String::new()),
            sample.clone(),
            UNAUTHORIZED,
        ),
        Case::new(
            "non-hex signature",
            Raw("z".repeat(40)),
            sample.clone(),
            UNAUTHORIZED,
        ),
        Case::new(
            "39 hex digits",
            Raw(forty[..39].to_owned()),
            sample.clone(),
            UNAUTHORIZED,
        ),
        Case::new(
            "42 hex digits",
            Raw(format!("{forty}00")),
            sample.clone(),
            UNAUTHORIZED,
        ),
        Case::new(
            "wrong secret",
            SignedWith("another-secret"),
            sample.clone(),
            UNAUTHORIZED,
        ),
        Case::new("tampered body", SignedOver(sample), tampered, UNAUTHORIZED),
        Case::new("unsigned invalid JSON", Missing, "not json", UNAUTHORIZED),
        Case::new(
            "forged invalid JSON",
            Raw("0".repeat(40)),
            "not json",
            UNAUTHORIZED,
        ),
        Case::new("signed invalid JSON", Valid, "{not json", BAD_REQUEST),
        Case::new("signed empty body", Valid, "", BAD_REQUEST),
        Case::new("signed JSON array", Valid, "[1,2]", BAD_REQUEST),
        Case::new(
            "signed object without eventType",
            Valid,
            r#"{"chatbotId":"b"}"#,
            BAD_REQUEST,
        ),
        Case::new("signed non-UTF-8", Valid, &b"\xff\xfe{}"[..], BAD_REQUEST),
        Case::new(
            "over the limit, Content-Length",
            Valid,
            over_limit.clone(),
            TOO_LARGE,
        ),
        Case::new(
            "over the limit, streamed",
            Valid,
            over_limit.clone(),
            TOO_LARGE,
        )
        .streamed(),
        Case::new(
            "unsigned and over the limit: 401 first",
            Missing,
            over_limit,
            UNAUTHORIZED,
        ),
    ]
}

#[tokio::test]
async fn request_matrix() {
    for target in TARGETS {
        for case in matrix() {
            let app = app(target, verifier());
            let context = format!("{target:?}, {}", case.name);
            let answer = send(&app.router, case.request(app.path)).await;
            match case.expect {
                Expect::Event(event_type) => {
                    assert_eq!(
                        answer.status,
                        StatusCode::OK,
                        "{context}: {:?}",
                        answer.body
                    );
                    let seen = answer.json();
                    assert_eq!(seen["eventType"], event_type, "{context}");
                    assert_eq!(
                        seen["rawBody"],
                        *String::from_utf8_lossy(&case.body),
                        "{context}"
                    );
                    assert_eq!(app.state.hits(), 1, "{context}");
                }
                Expect::Rejected(status) => {
                    answer.assert_rejected(status, &context);
                    assert_eq!(app.state.hits(), 0, "{context}: the handler ran");
                }
            }
        }
    }
}

#[tokio::test]
async fn the_handler_gets_the_typed_event() {
    for target in TARGETS {
        let app = app(target, verifier());
        let body = r#"{"eventType":"leads.submit","chatbotId":"bot_2","payload":{"conversationId":null,"customerEmail":"ada@example.com"}}"#;
        let seen = send(&app.router, signed_request(app.path, body))
            .await
            .json();
        assert_eq!(seen["chatbotId"], "bot_2", "{target:?}");
        assert_eq!(
            seen["lead"],
            json!({"customerEmail": "ada@example.com"}),
            "{target:?}"
        );
        assert_eq!(seen["rawBody"], body, "{target:?}");
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

#[tokio::test(flavor = "current_thread")]
async fn each_rejection_is_logged_once_without_secrets_or_customer_data() {
    init_logging();
    let captured = Arc::new(Mutex::new(Vec::new()));
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(Arc::clone(&captured)));

    let good_signature = sign(&secret(SECRET), SAMPLE_LEADS_SUBMIT.as_bytes());
    let mut tampered = SAMPLE_LEADS_SUBMIT.as_bytes().to_vec();
    tampered[0] = b' ';
    let mut rejected = 0;
    for target in TARGETS {
        let app = app(target, verifier());
        let requests = [
            Request::post(app.path)
                .body(Body::from(SAMPLE_LEADS_SUBMIT))
                .unwrap(),
            Request::post(app.path)
                .header(SIGNATURE_HEADER, good_signature.as_str())
                .body(Body::from(tampered.clone()))
                .unwrap(),
            Request::post(app.path)
                .header(SIGNATURE_HEADER, "f".repeat(39))
                .body(Body::from(SAMPLE_LEADS_SUBMIT))
                .unwrap(),
            signed_request(
                app.path,
                r#"{"eventType":1,"payload":{"customerEmail":"jo@acme.io"}}"#,
            ),
            signed_request(app.path, vec![b' '; LIMIT + 1]),
        ];
        for request in requests {
            assert!(send(&app.router, request).await.status.is_client_error());
            rejected += 1;
        }
        // Accepted requests are not logged at WARN.
        let answer = send(&app.router, signed_request(app.path, SAMPLE_LEADS_SUBMIT)).await;
        assert_eq!(answer.status, StatusCode::OK);
    }

    let logs = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), rejected, "{logs}");
    for line in &lines {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("rejected a Chatbase webhook"), "{line}");
        assert!(line.contains("status=4"), "{line}");
    }
    for secret_or_private in [SECRET, good_signature.as_str(), "jo@acme.io", "acme"] {
        assert!(
            !logs.contains(secret_or_private),
            "{secret_or_private} in {logs}"
        );
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

/// How the client frames its body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    ContentLength,
    Chunked,
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
