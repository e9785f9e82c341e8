//! What the tests share: the secrets, the handlers, the two set-ups (the
//! extractor on a resource, the middleware on a scope), and request builders.

use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::test::{self, TestRequest};
use actix_web::{App, HttpResponse, web};
use bytes::Bytes;
use chatbase_actix::{ChatbaseEvent, Event, SIGNATURE_HEADER, Secret, Verifier, VerifyChatbase};
use chatbase_core::testing::{self, conformance::Case, conformance::Seen};
use futures_util::{Stream, stream};
use serde_json::{Value, json};

pub const SECRET: &str = "integration-test-secret";

pub fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

pub fn other_secret() -> Secret {
    Secret::new("some-other-secret").unwrap()
}

pub fn verifier() -> Verifier {
    Verifier::new(secret())
}

/// Customer details the tests' bodies carry: never logged, never answered.
pub const CUSTOMER_DATA: [&str; 4] = ["jo@acme.io", "jo@evil.io", "ada@example.com", "+1 555 0100"];

// ---------------------------------------------------------------------------
// Handlers: each counts its calls, so a test can tell it was not reached, and
// the event handlers keep what they were handed.

#[derive(Default)]
pub struct Hits {
    count: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

impl Hits {
    /// How many times a handler ran.
    pub fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    fn hit(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    pub fn saw(&self, event: &chatbase_core::ChatbaseEvent) {
        self.hit();
        self.seen.lock().unwrap().push(Seen::from(event));
    }

    /// The events the handlers were handed since the last call.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// What a handler tells the test about the event it was handed.
fn describe(event: &chatbase_core::ChatbaseEvent) -> Value {
    let (lead, payload) = match event.event() {
        Event::LeadsSubmit(lead) => (serde_json::to_value(lead).unwrap(), Value::Null),
        Event::Unknown(unknown) => (Value::Null, json!(unknown.payload_json())),
        other => panic!("an event this suite does not know: {other:?}"),
    };
    json!({
        "eventType": event.event_type(),
        "chatbotId": event.chatbot_id(),
        "lead": lead,
        "payloadJson": payload,
        "rawLen": event.raw_body().len(),
    })
}

/// Takes the event through the extractor.
pub async fn on_event(event: ChatbaseEvent, hits: web::Data<Hits>) -> HttpResponse {
    hits.saw(&event);
    HttpResponse::Ok().json(describe(&event))
}

/// Takes the event the middleware put in the request extensions, with
/// actix-web's own `ReqData`.
pub async fn on_req_data(
    event: web::ReqData<chatbase_core::ChatbaseEvent>,
    hits: web::Data<Hits>,
) -> HttpResponse {
    hits.saw(&event);
    HttpResponse::Ok().json(describe(&event))
}

pub async fn echo_bytes(body: web::Bytes, hits: web::Data<Hits>) -> HttpResponse {
    hits.hit();
    HttpResponse::Ok().body(body)
}

pub async fn echo_string(body: String, hits: web::Data<Hits>) -> HttpResponse {
    hits.hit();
    HttpResponse::Ok().body(body)
}

pub async fn echo_json(body: web::Json<Value>, hits: web::Data<Hits>) -> HttpResponse {
    hits.hit();
    HttpResponse::Ok().json(body.into_inner())
}

/// Takes the event twice (extractor and `ReqData`) and the body: answers the
/// body if all three agree, 500 if not.
pub async fn event_and_bytes(
    event: ChatbaseEvent,
    req_data: web::ReqData<chatbase_core::ChatbaseEvent>,
    body: web::Bytes,
    hits: web::Data<Hits>,
) -> HttpResponse {
    hits.hit();
    if *event == *req_data && event.raw_body() == &body {
        HttpResponse::Ok().body(body)
    } else {
        HttpResponse::InternalServerError().body("the event, ReqData and the body disagree")
    }
}

// ---------------------------------------------------------------------------
// The two set-ups.

pub const EXTRACTOR_PATH: &str = "/webhook";
/// `on_event` behind the middleware.
pub const MIDDLEWARE_PATH: &str = "/chatbase/event";
/// `on_req_data` behind the middleware.
pub const REQ_DATA_PATH: &str = "/chatbase/req-data";

/// `on_event` on a POST resource with `method_not_allowed` as its default
/// service, the verifier (if any) in app data as `web::Data<Verifier>`.
pub fn extractor_app(
    verifier: Option<Verifier>,
    hits: web::Data<Hits>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
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
                .default_service(web::to(chatbase_actix::method_not_allowed)),
        )
}

/// A `/chatbase` scope behind `VerifyChatbase` serving the event handlers and
/// the plain body extractors, with `app_verifier` (if any) as the app-data
/// verifier the extractor would use if it verified again.
pub fn middleware_app(
    verifier: Verifier,
    app_verifier: Option<Verifier>,
    hits: web::Data<Hits>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
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
                .route("/req-data", web::post().to(on_req_data))
                .route("/bytes", web::post().to(echo_bytes))
                .route("/string", web::post().to(echo_string))
                .route("/json", web::post().to(echo_json))
                .route("/both", web::post().to(event_and_bytes)),
        )
}

// ---------------------------------------------------------------------------
// Requests.

/// How a request's body is framed.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// Its length announced in `Content-Length`.
    Announced,
    /// No length announced: a stream of chunks (`Transfer-Encoding: chunked`
    /// over TCP).
    Chunked,
}

pub const FRAMINGS: [Framing; 2] = [Framing::Announced, Framing::Chunked];

/// `request` with `chunks` as its body and no `Content-Length`.
pub fn streamed(
    request: TestRequest,
    chunks: impl Stream<Item = Result<Bytes, PayloadError>> + 'static,
) -> Request {
    let request = request.to_request();
    assert!(request.head().headers.get("content-length").is_none());
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(chunks);
    request.replace_payload(Payload::from(boxed)).0
}

/// The request a conformance case describes, its body framed as `framing`.
pub fn case_request(case: &Case, path: &str, framing: Framing) -> Request {
    let mut request = TestRequest::post().uri(path);
    for signature in case.signatures() {
        request = request.append_header((SIGNATURE_HEADER, signature));
    }
    if let Some(content_type) = case.content_type {
        request = request.insert_header((CONTENT_TYPE, content_type));
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

/// A POST of `body` to `path`, signed with `key`, with a `Content-Length`.
pub fn signed_request(key: &Secret, path: &str, body: &Bytes, json: bool) -> Request {
    let signed = testing::sign_body(key, body.clone());
    let mut request = TestRequest::post()
        .uri(path)
        .insert_header(signed.header())
        .set_payload(body.clone());
    if json {
        request = request.insert_header((CONTENT_TYPE, "application/json"));
    }
    request.to_request()
}

/// The status and body of `request`'s answer.
pub async fn send<S, B>(app: &S, request: Request) -> (u16, Bytes)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, request).await;
    let status = response.status().as_u16();
    (status, test::read_body(response).await)
}

/// POSTs `body` to `path`, signed with the test secret; `json` adds a JSON
/// content type.
pub async fn post_signed<S, B>(app: &S, path: &str, body: &Bytes, json: bool) -> (u16, Bytes)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    send(app, signed_request(&secret(), path, body, json)).await
}

/// The sample `leads.submit` body.
pub fn sample() -> Bytes {
    Bytes::from_static(testing::SAMPLE_LEADS_SUBMIT.as_bytes())
}

/// An event body of exactly `size` bytes, padded in an unknown event's
/// payload.
pub fn event_of_size(size: usize) -> Bytes {
    let empty = testing::event_body("padded.event", "bot", &json!({ "pad": "" }));
    let pad = "x".repeat(size - empty.len());
    let body = testing::event_body("padded.event", "bot", &json!({ "pad": pad }));
    assert_eq!(body.len(), size);
    body
}

/// The `message` of a JSON rejection body, which must hold nothing else.
pub fn rejection_message(body: &[u8]) -> String {
    let answer: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        panic!(
            "the rejection is not JSON: {}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    let message = answer["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty());
    message
}

/// Says what was being run when the test panics, for loops whose assertions
/// cannot name it themselves.
pub struct Context(pub String);

impl Drop for Context {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("while running: {}", self.0);
        }
    }
}
