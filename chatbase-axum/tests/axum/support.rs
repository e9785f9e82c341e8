//! What the tests share: the applications under test, the requests sent to
//! them, and the answers read back.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use chatbase_axum::{
    ChatbaseEvent, Event, SIGNATURE_HEADER, Secret, Verifier, VerifyChatbaseLayer,
};
use chatbase_core::sign;
use chatbase_core::testing::conformance::{Case, Observed, Seen};
use chatbase_core::testing::logs::Logs;
use futures_util::stream;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The secret of the applications under test.
pub(crate) const SECRET: &str = "integration-test-secret";
/// The body limit of the applications driven with `oneshot`.
pub(crate) const LIMIT: usize = 4096;

pub(crate) fn secret(key: &str) -> Secret {
    Secret::new(key).unwrap()
}

/// A verifier for [`SECRET`] with a limit of [`LIMIT`].
pub(crate) fn verifier() -> Verifier {
    Verifier::new(secret(SECRET)).with_body_limit(LIMIT)
}

// ---------------------------------------------------------------------------
// The applications under test
// ---------------------------------------------------------------------------

/// An application's own state, as a real one has: what its handlers were
/// handed. There is no verifier in it.
#[derive(Clone, Default)]
pub(crate) struct AppState {
    /// How many requests reached a handler.
    hits: Arc<AtomicUsize>,
    /// The events the handlers received, as the conformance check sees them.
    delivered: Arc<Mutex<Vec<Seen>>>,
    /// What the handlers stored: the leads' email addresses.
    emails: Arc<Mutex<Vec<String>>>,
}

impl AppState {
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn delivered(&self) -> Vec<Seen> {
        self.delivered.lock().unwrap().clone()
    }

    pub(crate) fn emails(&self) -> Vec<String> {
        self.emails.lock().unwrap().clone()
    }

    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::SeqCst);
    }

    /// Keeps what a handler was handed, and describes it: `eventType`,
    /// `chatbotId`, and the lead (or `null` for another event type).
    pub(crate) fn record(&self, event: &ChatbaseEvent) -> Json<Value> {
        self.hit();
        self.delivered.lock().unwrap().push(Seen::from(&event.0));
        let lead = match event.event() {
            Event::LeadsSubmit(lead) => {
                if let Some(email) = lead.customer_email() {
                    self.emails.lock().unwrap().push(email.to_owned());
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
}

/// The webhook handler: records and describes the event.
pub(crate) async fn describe(State(state): State<AppState>, event: ChatbaseEvent) -> Json<Value> {
    state.record(&event)
}

pub(crate) async fn echo_bytes(State(state): State<AppState>, body: Bytes) -> Bytes {
    state.hit();
    body
}

pub(crate) async fn echo_string(State(state): State<AppState>, body: String) -> String {
    state.hit();
    body
}

pub(crate) async fn echo_json(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Json<Value> {
    state.hit();
    Json(body)
}

/// How a route gets its verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The `ChatbaseEvent` extractor, the `Verifier` being the router's state.
    VerifierState,
    /// The extractor with the application's own state, the `Verifier` in an
    /// `Extension`.
    VerifierExtension,
    /// The same handler behind `VerifyChatbaseLayer`, with a state holding no
    /// verifier.
    Layer,
}

pub(crate) const TARGETS: [Target; 3] = [
    Target::VerifierState,
    Target::VerifierExtension,
    Target::Layer,
];

/// An application under test: its router, its state, and where its webhook is.
pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) state: AppState,
    pub(crate) path: &'static str,
}

/// The application for `target`, verifying with `verifier`. Behind the layer,
/// the body handlers `/chatbase/{bytes,string,json}` sit next to the webhook.
pub(crate) fn app(target: Target, verifier: Verifier) -> App {
    let state = AppState::default();
    let (router, path) = match target {
        Target::VerifierState => {
            let recorder = state.clone();
            let handler = move |event: ChatbaseEvent| async move { recorder.record(&event) };
            let router = Router::new()
                .route("/webhook", post(handler))
                .with_state(verifier);
            (router, "/webhook")
        }
        Target::VerifierExtension => {
            let router = Router::new()
                .route("/webhook", post(describe))
                .layer(Extension(verifier))
                .with_state(state.clone());
            (router, "/webhook")
        }
        Target::Layer => {
            let routes = Router::new()
                .route("/webhook", post(describe))
                .route("/bytes", post(echo_bytes))
                .route("/string", post(echo_string))
                .route("/json", post(echo_json))
                .with_state(state.clone());
            let router = Router::new()
                .nest("/chatbase", routes)
                .layer(VerifyChatbaseLayer::new(verifier));
            (router, "/chatbase/webhook")
        }
    };
    App {
        router,
        state,
        path,
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// A POST of `body` to `path`, signed with [`SECRET`], as JSON.
pub(crate) fn signed_request(path: &str, body: impl Into<Bytes>) -> Request<Body> {
    let body = body.into();
    let signature = sign(&secret(SECRET), &body);
    Request::post(path)
        .header(SIGNATURE_HEADER, signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// A POST of `body` to `path` with each of `signatures` as an
/// `x-chatbase-signature` header.
pub(crate) fn request_signed_as(
    path: &str,
    signatures: &[&str],
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::post(path);
    for signature in signatures {
        builder = builder.header(SIGNATURE_HEADER, *signature);
    }
    builder.body(body.into()).unwrap()
}

/// How a client frames its body.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Framing {
    /// In one piece, its length announced in `Content-Length`.
    ContentLength,
    /// In chunks, no length announced (`Transfer-Encoding: chunked` on the wire).
    Chunked,
}

pub(crate) const FRAMINGS: [Framing; 2] = [Framing::ContentLength, Framing::Chunked];

/// A body streamed in 512-byte chunks, with no length announced (as a chunked
/// request arrives).
pub(crate) fn streamed(body: &Bytes) -> Body {
    let chunks: Vec<Result<Bytes, Infallible>> = body
        .chunks(512)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    Body::from_stream(stream::iter(chunks))
}

/// The request a conformance case describes, its body framed as `framing`.
pub(crate) fn case_request(case: &Case, path: &str, framing: Framing) -> Request<Body> {
    let mut builder = Request::post(path);
    for signature in case.signatures() {
        builder = builder.header(SIGNATURE_HEADER, signature);
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
// Answers
// ---------------------------------------------------------------------------

/// A response, read whole.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) async fn of(response: Response) -> Self {
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &axum::http::HeaderValue| value.to_str().unwrap().to_owned())
        };
        let content_type = header(header::CONTENT_TYPE);
        let retry_after = header(header::RETRY_AFTER);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Self {
            status,
            content_type,
            retry_after,
            body,
        }
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// What the conformance check looks at: this answer, and what the handler
    /// was handed.
    pub(crate) fn observed<'a>(&'a self, delivered: &'a [Seen]) -> Observed<'a> {
        Observed {
            status: self.status.as_u16(),
            content_type: self.content_type.as_deref(),
            body: &self.body,
            delivered,
            retry_after: self.retry_after.as_deref(),
        }
    }

    /// Asserts a rejection as every client sees it: `status`, `content-type:
    /// application/json`, and `{"message": "..."}` and nothing else; returns
    /// the message.
    pub(crate) fn assert_rejected(&self, status: StatusCode, context: &str) -> String {
        assert_eq!(self.status, status, "{context}: {:?}", self.body);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "{context}"
        );
        let body = self.json();
        let message = body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{context}: no message in {body}"));
        assert!(!message.is_empty(), "{context}");
        assert_eq!(body.as_object().unwrap().len(), 1, "{context}: {body}");
        message.to_owned()
    }
}

/// Sends `request` through `router`, on this thread.
pub(crate) async fn send(router: &Router, request: Request<Body>) -> Answer {
    init_logging();
    Answer::of(router.clone().oneshot(request).await.unwrap()).await
}

/// Installs the global subscriber of `testing::logs` before anything logs, so
/// that no call site's interest is cached while there is none.
///
/// On a thread of its own: `Logs::capture` here would replace a capture the
/// calling test may hold.
pub(crate) fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| std::thread::spawn(|| drop(Logs::capture())).join().unwrap());
}

/// Says what was being tested when an assertion in its scope fails, for the
/// checks (`Case::check`, `testing::logs`) whose messages cannot say it.
pub(crate) struct Context(pub(crate) String);

impl Drop for Context {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failed while testing: {}", self.0);
        }
    }
}
