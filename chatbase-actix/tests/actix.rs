//! End-to-end tests of the extractor and the middleware, through
//! `actix_web::test::init_service` and, for early 413s, a real server over TCP.
//!
//! chatbase-core's request matrix (`testing::conformance`) runs against both
//! set-ups, each body sent with a `Content-Length` and streamed without one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, Service, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::test::{self, TestRequest};
use actix_web::web::{self, PayloadConfig};
use actix_web::{App, HttpResponse, HttpServer};
use bytes::Bytes;
use chatbase_actix::{
    ChatbaseEvent, DEFAULT_BODY_LIMIT, Event, Secret, Verifier, VerifyChatbase, method_not_allowed,
};
use chatbase_core::testing;
use chatbase_core::testing::conformance::{self, Case, Expected};
use futures_util::{Stream, stream};
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

const SECRET: &str = "integration-test-secret";
/// The message `chatbase_core::Error::log` writes for each rejection.
const REJECTED: &str = "rejected a Chatbase webhook";

fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

fn other_secret() -> Secret {
    Secret::new("some-other-secret").unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(secret())
}

// ---------------------------------------------------------------------------
// Handlers: each counts its calls, so a test can tell it was not reached.

#[derive(Default)]
struct Hits {
    count: AtomicUsize,
    /// The raw body of the last event `on_event` was handed, until taken.
    raw_body: Mutex<Option<Bytes>>,
}

impl Hits {
    fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    fn hit(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn take_raw_body(&self) -> Option<Bytes> {
        self.raw_body.lock().unwrap().take()
    }
}

/// Answers with what it received, for the tests to check, and keeps the raw body.
async fn on_event(event: ChatbaseEvent, hits: web::Data<Hits>) -> HttpResponse {
    hits.hit();
    *hits.raw_body.lock().unwrap() = Some(event.raw_body().clone());
    let lead = match event.event() {
        Event::LeadsSubmit(lead) => serde_json::to_value(lead).unwrap(),
        _ => Value::Null,
    };
    HttpResponse::Ok().json(json!({
        "eventType": event.event_type(),
        "chatbotId": event.chatbot_id(),
        "lead": lead,
        "rawLen": event.raw_body().len(),
    }))
}

async fn echo_bytes(body: web::Bytes, hits: web::Data<Hits>) -> HttpResponse {
    hits.hit();
    HttpResponse::Ok().body(body)
}

async fn echo_string(body: String, hits: web::Data<Hits>) -> HttpResponse {
    hits.hit();
    HttpResponse::Ok().body(body)
}

async fn echo_json(body: web::Json<Value>, hits: web::Data<Hits>) -> HttpResponse {
    hits.hit();
    HttpResponse::Ok().json(body.into_inner())
}

/// A handler taking the event and the raw body: both must be there.
async fn event_and_bytes(
    event: ChatbaseEvent,
    body: web::Bytes,
    hits: web::Data<Hits>,
) -> HttpResponse {
    hits.hit();
    assert_eq!(event.raw_body(), &body);
    HttpResponse::Ok().body(body)
}

// ---------------------------------------------------------------------------
// The two set-ups. Both serve `on_event`; the middleware one also serves the
// plain body extractors behind `VerifyChatbase`.

const EXTRACTOR_PATH: &str = "/webhook";
const MIDDLEWARE_PATH: &str = "/chatbase/event";

/// `on_event` on a POST resource with `method_not_allowed` as default service,
/// the verifier (if any) in app data as `web::Data<Verifier>`.
fn extractor_app(
    verifier: Option<Verifier>,
    hits: web::Data<Hits>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(hits)
        .configure(|config| {
            if let Some(verifier) = verifier {
                config.app_data(web::Data::new(verifier));
            }
        })
        .service(
            web::resource(EXTRACTOR_PATH)
                .route(web::post().to(on_event))
                .default_service(web::to(method_not_allowed)),
        )
}

/// A `/chatbase` scope behind `VerifyChatbase`, with `app_verifier` (if any) as
/// the app-data verifier the extractor would use if it verified again.
fn middleware_app(
    verifier: Verifier,
    app_verifier: Option<Verifier>,
    hits: web::Data<Hits>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(hits)
        .configure(|config| {
            if let Some(verifier) = app_verifier {
                config.app_data(web::Data::new(verifier));
            }
        })
        .service(
            web::scope("/chatbase")
                .wrap(VerifyChatbase::new(verifier))
                .route("/event", web::post().to(on_event))
                .route("/bytes", web::post().to(echo_bytes))
                .route("/string", web::post().to(echo_string))
                .route("/json", web::post().to(echo_json))
                .route("/both", web::post().to(event_and_bytes)),
        )
}

// ---------------------------------------------------------------------------
// Captured logs.

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's `tracing` output (actix-web's test runtime runs
    /// the app on the test's thread) until the guard is dropped.
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        self.since(0)
    }

    /// Where the logs end now, for [`Logs::since`].
    fn mark(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// What was logged since `mark`.
    fn since(&self, mark: usize) -> String {
        String::from_utf8(self.0.lock().unwrap()[mark..].to_vec()).unwrap()
    }

    fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Logs {
    type Writer = Self;

    fn make_writer(&self) -> Self {
        self.clone()
    }
}

// ---------------------------------------------------------------------------
// The matrix both set-ups must pass: chatbase-core's `testing::conformance`.

/// How a request's body is framed.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Its length announced in `Content-Length`.
    Announced,
    /// No length announced: a stream of chunks (`Transfer-Encoding: chunked`
    /// over TCP).
    Chunked,
}

const FRAMINGS: [Framing; 2] = [Framing::Announced, Framing::Chunked];

/// `request` with `chunks` as its body and no `Content-Length`.
fn streamed(
    request: TestRequest,
    chunks: impl Stream<Item = Result<Bytes, PayloadError>> + 'static,
) -> Request {
    let request = request.to_request();
    assert!(request.head().headers.get("content-length").is_none());
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(chunks);
    request.replace_payload(Payload::from(boxed)).0
}

/// The request a conformance case describes, its body framed as `framing`.
fn request(case: &Case, path: &str, framing: Framing) -> Request {
    let mut request = TestRequest::post().uri(path);
    if let Some(signature) = &case.signature {
        request = request.insert_header((chatbase_actix::SIGNATURE_HEADER, signature.as_str()));
    }
    if let Some(content_type) = case.content_type {
        request = request.insert_header(("content-type", content_type));
    }
    match framing {
        Framing::Announced => request.set_payload(case.body.clone()).to_request(),
        Framing::Chunked => {
            let chunks: Vec<_> = case
                .body
                .chunks(100)
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            streamed(request, stream::iter(chunks))
        }
    }
}

/// Runs every case, in both framings, against `app` and checks the answer, the
/// handler's hits and what it saw, and the logs.
async fn run_matrix<S, B>(app: &S, path: &str, hits: &Hits, logs: &Logs)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    for framing in FRAMINGS {
        for case in conformance::cases(&secret(), DEFAULT_BODY_LIMIT) {
            run(app, path, framing, &case, hits, logs).await;
        }
    }
}

/// Sends `case` to `app` at `path`, framed as `framing`, and checks what came of it.
async fn run<S, B>(app: &S, path: &str, framing: Framing, case: &Case, hits: &Hits, logs: &Logs)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let context = &format!("{path}, {framing:?}, {}", case.name);
    let hits_before = hits.get();
    let mark = logs.mark();
    let response = test::call_service(app, request(case, path, framing)).await;
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").cloned();
    let body = test::read_body(response).await;
    let logged = logs.since(mark);
    let answer: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
        panic!(
            "{context}: {status}, body is not JSON: {}",
            String::from_utf8_lossy(&body)
        )
    });
    assert_eq!(content_type.unwrap(), "application/json", "{context}");
    match &case.expected {
        Expected::Delivered {
            event_type,
            chatbot_id,
        } => {
            assert_eq!(status, 200, "{context}: {answer}");
            assert_eq!(answer["eventType"], *event_type, "{context}");
            assert_eq!(answer["chatbotId"], json!(chatbot_id), "{context}");
            assert_eq!(hits.get(), hits_before + 1, "{context}");
            assert!(
                hits.take_raw_body().as_ref() == Some(&case.body),
                "{context}: the handler saw another raw body"
            );
            assert_eq!(logged.matches(REJECTED).count(), 0, "{context}: {logged}");
        }
        Expected::Rejected { status: expected } => {
            assert_eq!(status, *expected, "{context}: {answer}");
            assert_rejection(&answer);
            assert_eq!(hits.get(), hits_before, "{context}: handler reached");
            assert_eq!(hits.take_raw_body(), None, "{context}: handler reached");
            let lines: Vec<&str> = logged.lines().filter(|l| l.contains(REJECTED)).collect();
            assert_eq!(
                lines.len(),
                1,
                "{context}: not logged exactly once: {logged}"
            );
            assert!(
                lines[0].contains(&format!("status={expected}")),
                "{context}: {}",
                lines[0]
            );
        }
        other => panic!("{context}: an outcome this suite does not know: {other:?}"),
    }
    assert_logs_leak_nothing(&logged, case, context);
}

fn assert_rejection(answer: &Value) {
    let message = answer["message"].as_str().unwrap();
    assert!(!message.is_empty());
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
}

/// `logged` shows neither the secret, nor the signature `case`'s body would
/// need, nor the one sent, nor a customer's email address.
fn assert_logs_leak_nothing(logged: &str, case: &Case, context: &str) {
    let expected = testing::sign_body(&secret(), case.body.clone());
    let sent = case.signature.as_deref().filter(|sent| sent.len() >= 8);
    let private = [
        SECRET,
        expected.signature(),
        "jo@acme.io",
        "jo@evil.io",
        "ada@example.com",
    ];
    for private in private.into_iter().chain(sent) {
        assert!(
            !logged.contains(private),
            "{context}: the logs show {private:?}"
        );
    }
}

#[actix_web::test]
async fn extractor_matrix() {
    let (logs, _guard) = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    run_matrix(&app, EXTRACTOR_PATH, &hits, &logs).await;
}

#[actix_web::test]
async fn middleware_matrix() {
    let (logs, _guard) = Logs::capture();
    let hits = web::Data::new(Hits::default());
    // No verifier in app data: the extractor behind the middleware must not need one.
    let app = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    run_matrix(&app, MIDDLEWARE_PATH, &hits, &logs).await;
}

/// What the matrix does not look at: the typed event the handler matches on.
#[actix_web::test]
async fn the_handler_gets_the_typed_event() {
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    let cases = [
        (
            testing::SAMPLE_LEADS_SUBMIT,
            json!("xxxxxxxx"),
            serde_json::to_value(testing::sample_lead()).unwrap(),
        ),
        (
            r#"{"eventType":"leads.submit","chatbotId":"b","payload":{"conversationId":"c","customerEmail":null,"customerPhone":null}}"#,
            json!("b"),
            json!({ "conversationId": "c" }),
        ),
        // Neither `payload` nor `chatbotId` is required: an empty lead.
        (r#"{"eventType":"leads.submit"}"#, Value::Null, json!({})),
        // An event type this crate does not know is no lead.
        (
            r#"{"eventType":"conversations.end","chatbotId":"bot","payload":{"conversationId":"c"}}"#,
            json!("bot"),
            Value::Null,
        ),
    ];
    for (body, chatbot_id, lead) in cases {
        let body = Bytes::from_static(body.as_bytes());
        for (status, answer) in [
            post_signed(&extractor, EXTRACTOR_PATH, &body, true).await,
            post_signed(&middleware, MIDDLEWARE_PATH, &body, true).await,
        ] {
            let context = String::from_utf8_lossy(&body);
            assert_eq!(status, 200, "{context}");
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(answer["chatbotId"], chatbot_id, "{context}");
            assert_eq!(answer["lead"], lead, "{context}");
            assert_eq!(answer["rawLen"], body.len(), "{context}");
        }
    }
    assert_eq!(hits.get(), 2 * 4);
}

/// Not in the matrix: a signed body that is no event (400) and carries a
/// customer's email address, which serde's message could quote.
#[actix_web::test]
async fn a_rejected_body_with_customer_data_is_logged_without_it() {
    let (logs, _guard) = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    let body = Bytes::from_static(br#"{"eventType":1,"payload":{"customerEmail":"jo@acme.io"}}"#);
    assert_eq!(
        post_signed(&extractor, EXTRACTOR_PATH, &body, true).await.0,
        400
    );
    assert_eq!(
        post_signed(&middleware, MIDDLEWARE_PATH, &body, true)
            .await
            .0,
        400
    );
    assert_eq!(hits.get(), 0);
    assert_eq!(logs.count(REJECTED), 2);
    let text = logs.text();
    assert!(!text.contains("jo@acme.io"), "{text}");
    assert!(!text.contains("acme"), "{text}");
}

// ---------------------------------------------------------------------------
// Bodies without Content-Length that never end.

/// A body that never ends, in chunks of `size` spaces, counting the bytes pulled.
fn endless(
    size: usize,
    pulled: Rc<Cell<usize>>,
) -> impl Stream<Item = Result<Bytes, PayloadError>> {
    stream::repeat_with(move || {
        pulled.set(pulled.get() + size);
        Ok(Bytes::from(vec![b' '; size]))
    })
}

/// Refused as soon as the limit is passed, though it never ends.
async fn check_endless<S, B>(app: &S, path: &str, hits: &Hits)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let pulled = Rc::new(Cell::new(0));
    let chunk = 8 * 1024;
    let request = TestRequest::post()
        .uri(path)
        .insert_header((chatbase_actix::SIGNATURE_HEADER, "0".repeat(40)));
    let response =
        test::call_service(app, streamed(request, endless(chunk, Rc::clone(&pulled)))).await;
    assert_eq!(response.status(), 413, "{path}");
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json"
    );
    let answer: Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
    assert_rejection(&answer);
    assert!(
        pulled.get() > DEFAULT_BODY_LIMIT && pulled.get() <= DEFAULT_BODY_LIMIT + chunk,
        "{path}: pulled {} bytes",
        pulled.get()
    );
    assert_eq!(hits.get(), 0, "{path}: handler reached");
}

#[actix_web::test]
async fn an_endless_body_without_content_length_is_refused_past_the_limit() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    check_endless(&app, EXTRACTOR_PATH, &hits).await;
    let app = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    check_endless(&app, MIDDLEWARE_PATH, &hits).await;
}

// ---------------------------------------------------------------------------
// Methods.

#[actix_web::test]
async fn other_methods_get_405_with_allow_post_on_the_extractor_route() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    for request in [
        TestRequest::get(),
        TestRequest::put(),
        TestRequest::delete(),
    ] {
        let response = test::call_service(&app, request.uri(EXTRACTOR_PATH).to_request()).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers().get("allow").unwrap(), "POST");
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        let answer: Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
        assert_rejection(&answer);
    }
    assert_eq!(hits.get(), 0);
}

#[actix_web::test]
async fn the_middleware_guards_every_method() {
    let (logs, _guard) = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new().app_data(hits.clone()).service(
            web::scope("/chatbase")
                .wrap(VerifyChatbase::new(verifier()))
                .default_service(web::to(|hits: web::Data<Hits>| async move {
                    hits.hit();
                    HttpResponse::Ok().finish()
                })),
        ),
    )
    .await;
    for request in [
        TestRequest::get(),
        TestRequest::put(),
        TestRequest::default(),
    ] {
        let response =
            test::call_service(&app, request.uri("/chatbase/anything").to_request()).await;
        assert_eq!(response.status(), 401);
    }
    assert_eq!(hits.get(), 0);
    assert_eq!(logs.count(REJECTED), 3);

    // A signed request of any method gets through.
    let signed = testing::sign_body(&secret(), testing::SAMPLE_LEADS_SUBMIT);
    let request = TestRequest::put()
        .uri("/chatbase/anything")
        .insert_header(signed.header())
        .set_payload(signed.body().clone())
        .to_request();
    assert_eq!(test::call_service(&app, request).await.status(), 200);
    assert_eq!(hits.get(), 1);
}

// ---------------------------------------------------------------------------
// What reaches the handlers behind the middleware.

/// A signed event of exactly `size` bytes, padded in an unknown event's payload.
fn event_of_size(size: usize) -> Bytes {
    let empty = testing::event_body("padded.event", "bot", &json!({ "pad": "" }));
    let pad = "x".repeat(size - empty.len());
    let body = testing::event_body("padded.event", "bot", &json!({ "pad": pad }));
    assert_eq!(body.len(), size);
    body
}

async fn post_signed<S, B>(app: &S, path: &str, body: &Bytes, content_type: bool) -> (u16, Bytes)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let signed = testing::sign_body(&secret(), body.clone());
    let mut request = TestRequest::post()
        .uri(path)
        .insert_header(signed.header())
        .set_payload(body.clone());
    if content_type {
        request = request.insert_header(("content-type", "application/json"));
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status().as_u16();
    (status, test::read_body(response).await)
}

#[actix_web::test]
async fn the_body_is_given_back_to_bytes_string_and_json() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    // 167 bytes, and 900 KiB: over actix-web's 256 KiB `PayloadConfig` default,
    // under the verifier's 1 MiB.
    for body in [
        Bytes::from_static(testing::SAMPLE_LEADS_SUBMIT.as_bytes()),
        event_of_size(900 * 1024),
    ] {
        for path in ["/chatbase/bytes", "/chatbase/string", "/chatbase/both"] {
            let (status, echoed) = post_signed(&app, path, &body, false).await;
            assert_eq!(status, 200, "{path}, {} bytes", body.len());
            assert!(echoed == body, "{path}: the body changed");
        }
        let (status, echoed) = post_signed(&app, "/chatbase/json", &body, true).await;
        assert_eq!(status, 200, "json, {} bytes", body.len());
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&echoed).unwrap(), sent);
        let (status, answer) = post_signed(&app, "/chatbase/event", &body, false).await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["rawLen"], body.len());
    }
    assert_eq!(hits.get(), 2 * 5);
}

#[actix_web::test]
async fn a_larger_verifier_limit_also_raises_the_json_limit() {
    // 2.5 MiB: over actix-web's 2 MiB `JsonConfig` default.
    let size = 5 * 1024 * 1024 / 2;
    let hits = web::Data::new(Hits::default());
    let verifier = verifier().with_body_limit(3 * 1024 * 1024);
    let app = test::init_service(middleware_app(verifier, None, hits.clone())).await;
    let body = event_of_size(size);
    for path in ["/chatbase/json", "/chatbase/bytes"] {
        let (status, echoed) = post_signed(&app, path, &body, true).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(echoed.len(), size);
    }
    // And just over the verifier's own limit, the middleware refuses it.
    let (status, _) = post_signed(
        &app,
        "/chatbase/json",
        &event_of_size(3 * 1024 * 1024 + 1),
        true,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(hits.get(), 2);
}

#[actix_web::test]
async fn a_body_config_of_your_own_is_left_as_it_is() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new()
            .app_data(hits.clone())
            .app_data(PayloadConfig::new(100))
            .service(
                web::scope("/chatbase")
                    .wrap(VerifyChatbase::new(verifier()))
                    .route("/bytes", web::post().to(echo_bytes))
                    .route("/json", web::post().to(echo_json)),
            ),
    )
    .await;
    let body = Bytes::from_static(testing::SAMPLE_LEADS_SUBMIT.as_bytes());
    // Verified, then refused by the 100-byte limit the app set for `web::Bytes`...
    let (status, _) = post_signed(&app, "/chatbase/bytes", &body, false).await;
    assert_eq!(status, 413);
    // ...while `web::Json`, which the app did not configure, gets the verifier's.
    let (status, _) = post_signed(&app, "/chatbase/json", &body, true).await;
    assert_eq!(status, 200);
    assert_eq!(hits.get(), 1);
}

#[actix_web::test]
async fn behind_the_middleware_the_event_is_not_verified_again() {
    let hits = web::Data::new(Hits::default());
    // The app-data verifier knows another secret only: verifying again would fail.
    let app = test::init_service(middleware_app(
        verifier(),
        Some(Verifier::new(other_secret())),
        hits.clone(),
    ))
    .await;
    let body = Bytes::from_static(testing::SAMPLE_LEADS_SUBMIT.as_bytes());
    let (status, answer) = post_signed(&app, MIDDLEWARE_PATH, &body, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    // And the middleware's verifier is the one that decides.
    let signed = testing::sign_body(&other_secret(), body.clone());
    let request = TestRequest::post()
        .uri(MIDDLEWARE_PATH)
        .insert_header(signed.header())
        .set_payload(body)
        .to_request();
    assert_eq!(test::call_service(&app, request).await.status(), 401);
    assert_eq!(hits.get(), 1);
}

// ---------------------------------------------------------------------------
// Configuration.

#[actix_web::test]
async fn rotation_accepts_the_previous_secret_in_both_set_ups() {
    let previous = Secret::new("previous-secret").unwrap();
    let rotating = Verifier::new(secret()).with_secret(previous.clone());
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(rotating.clone()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(rotating, None, hits.clone())).await;
    let retired = Secret::new("retired-secret").unwrap();
    for (key, status) in [(secret(), 200), (previous, 200), (retired, 401)] {
        let signed = testing::sign_body(&key, testing::SAMPLE_LEADS_SUBMIT);
        let request = |path| {
            TestRequest::post()
                .uri(path)
                .insert_header(signed.header())
                .set_payload(signed.body().clone())
                .to_request()
        };
        assert_eq!(
            test::call_service(&extractor, request(EXTRACTOR_PATH))
                .await
                .status(),
            status
        );
        assert_eq!(
            test::call_service(&middleware, request(MIDDLEWARE_PATH))
                .await
                .status(),
            status
        );
    }
    assert_eq!(hits.get(), 4);
}

#[actix_web::test]
async fn a_smaller_verifier_limit_applies_to_both_set_ups() {
    let hits = web::Data::new(Hits::default());
    let small = verifier().with_body_limit(testing::SAMPLE_LEADS_SUBMIT.len());
    let extractor = test::init_service(extractor_app(Some(small.clone()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(small, None, hits.clone())).await;
    let exact = Bytes::from_static(testing::SAMPLE_LEADS_SUBMIT.as_bytes());
    let over = Bytes::from(format!("{} ", testing::SAMPLE_LEADS_SUBMIT));
    assert_eq!(
        post_signed(&extractor, EXTRACTOR_PATH, &exact, false)
            .await
            .0,
        200
    );
    assert_eq!(
        post_signed(&middleware, MIDDLEWARE_PATH, &exact, false)
            .await
            .0,
        200
    );
    assert_eq!(
        post_signed(&extractor, EXTRACTOR_PATH, &over, false)
            .await
            .0,
        413
    );
    assert_eq!(
        post_signed(&middleware, MIDDLEWARE_PATH, &over, false)
            .await
            .0,
        413
    );
    assert_eq!(hits.get(), 2);
}

#[actix_web::test]
async fn a_plain_verifier_in_app_data_is_found() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new()
            .app_data(hits.clone())
            .app_data(verifier())
            .route(EXTRACTOR_PATH, web::post().to(on_event)),
    )
    .await;
    let body = Bytes::from_static(testing::SAMPLE_LEADS_SUBMIT.as_bytes());
    assert_eq!(post_signed(&app, EXTRACTOR_PATH, &body, false).await.0, 200);
}

#[actix_web::test]
async fn without_a_verifier_it_is_a_logged_500_not_a_panic() {
    let (logs, _guard) = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(extractor_app(None, hits.clone())).await;
    let body = Bytes::from_static(testing::SAMPLE_LEADS_SUBMIT.as_bytes());
    let signed = testing::sign_body(&secret(), body.clone());
    let request = TestRequest::post()
        .uri(EXTRACTOR_PATH)
        .insert_header(signed.header())
        .set_payload(body)
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json"
    );
    let answer: Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
    assert_rejection(&answer);
    assert_eq!(hits.get(), 0);
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("ERROR"))
        .unwrap_or_else(|| panic!("no ERROR line in {text:?}"));
    assert!(
        line.contains(".app_data(web::Data::new(verifier))"),
        "{line}"
    );
    assert!(line.contains("VerifyChatbase::new(verifier)"), "{line}");
    assert_eq!(logs.count(REJECTED), 0);
}

// ---------------------------------------------------------------------------
// Over TCP: a client still sending a large body gets the 413.

/// Sends a body far over the limit, and reads the response while still sending:
/// `Announced`, a `Content-Length` of 1 GiB, refused from the head; `Chunked`,
/// never ending, refused once past the limit.
/// Returns the response and how many body bytes were sent when it arrived.
fn send_while_reading(addr: SocketAddr, path: &str, framing: Framing) -> (String, usize) {
    let mut stream = TcpStream::connect(addr).unwrap();
    // A guard against a hang if no response ever comes, not a timing assertion.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let framing_header = match framing {
        Framing::Announced => "content-length: 1073741824",
        Framing::Chunked => "transfer-encoding: chunked",
    };
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nx-chatbase-signature: {}\r\n\
         content-type: application/json\r\n{framing_header}\r\n\r\n",
        "0".repeat(40)
    )
    .unwrap();

    let answered = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let reader = {
        let mut stream = stream.try_clone().unwrap();
        let answered = Arc::clone(&answered);
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || {
            let response = read_response(&mut stream);
            let sent_then = sent.load(Ordering::SeqCst);
            answered.store(true, Ordering::SeqCst);
            (response, sent_then)
        })
    };

    let chunk = vec![b'x'; 64 * 1024];
    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
    frame.extend_from_slice(&chunk);
    frame.extend_from_slice(b"\r\n");
    let max = 1024 * 1024 * 1024;
    while !answered.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < max {
        let written = match framing {
            Framing::Announced => stream.write_all(&chunk),
            Framing::Chunked => stream.write_all(&frame),
        };
        if written.is_err() {
            break;
        }
        sent.fetch_add(chunk.len(), Ordering::SeqCst);
    }
    reader.join().unwrap()
}

/// Sends the whole of a 64 MiB body (more than loopback socket buffers hold), then reads the response, as a simple client
/// does: it only gets the 413 if the server keeps reading what it sends after
/// answering, instead of resetting the connection.
fn send_then_read(addr: SocketAddr, path: &str, framing: Framing) -> io::Result<String> {
    const TOTAL: usize = 64 * 1024 * 1024;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let framing_header = match framing {
        Framing::Announced => format!("content-length: {TOTAL}"),
        Framing::Chunked => "transfer-encoding: chunked".to_owned(),
    };
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nx-chatbase-signature: {}\r\n\
         connection: close\r\n{framing_header}\r\n\r\n",
        "0".repeat(40)
    )
    .into_bytes();
    match framing {
        Framing::Announced => request.resize(request.len() + TOTAL, b'x'),
        Framing::Chunked => {
            let chunk = 64 * 1024;
            for _ in 0..TOTAL / chunk {
                request.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
                request.resize(request.len() + chunk, b'x');
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
        }
    }
    stream.write_all(&request)?;
    Ok(read_response(&mut stream))
}

/// Reads one response: the head, then a body of its `Content-Length`.
fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |value| value.trim().parse().unwrap());
            if received.len() >= end + 4 + length {
                return String::from_utf8_lossy(&received).into_owned();
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) => panic!(
                "reading the response failed after {:?}: {error}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

#[actix_web::test]
async fn a_413_reaches_a_client_still_sending_over_tcp() {
    let server = HttpServer::new(|| {
        App::new()
            .app_data(web::Data::new(Hits::default()))
            .configure(|config| {
                config.app_data(web::Data::new(verifier()));
            })
            .service(
                web::resource(EXTRACTOR_PATH)
                    .route(web::post().to(on_event))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::scope("/chatbase")
                    .wrap(VerifyChatbase::new(verifier()))
                    .route("/event", web::post().to(on_event)),
            )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    for path in [EXTRACTOR_PATH, MIDDLEWARE_PATH] {
        for framing in [Framing::Announced, Framing::Chunked] {
            let (response, sent) = actix_web::rt::task::spawn_blocking(move || {
                send_while_reading(addr, path, framing)
            })
            .await
            .unwrap();
            assert!(
                response.starts_with("HTTP/1.1 413"),
                "{path}, {framing:?}: {response:?}"
            );
            let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
            let answer: Value = serde_json::from_str(body).unwrap();
            assert_rejection(&answer);
            // The client had not finished: the 1 GiB body was still being sent.
            assert!(
                sent < 1024 * 1024 * 1024,
                "{path}, {framing:?}: sent {sent}"
            );

            let response =
                actix_web::rt::task::spawn_blocking(move || send_then_read(addr, path, framing))
                    .await
                    .unwrap()
                    .unwrap_or_else(|error| panic!("{path}, {framing:?}, sent then read: {error}"));
            assert!(
                response.starts_with("HTTP/1.1 413"),
                "{path}, {framing:?}, sent then read: {response:?}"
            );
        }
    }
    handle.stop(true).await;
}
