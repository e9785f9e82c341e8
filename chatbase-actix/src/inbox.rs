//! Taking verified deliveries into a durable [`Inbox`] (feature `inbox`): one
//! line in a handler, or a ready-made handler.
//!
//! An answer of 200 means the delivery was committed to disk; a duplicate (the
//! same delivery key again: a retry, a replay, another instance) is answered
//! 200 with `x-chatbase-duplicate: true` and stored once; an inbox that cannot
//! store answers 503 with `Retry-After`, in the shared `{"message"}` shape. A
//! worker ([`Inbox::worker`]) then runs your handler for each stored delivery,
//! with retries.
//!
//! # In a handler
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use chatbase_actix::inbox::{Inbox, Stored};
//! use chatbase_actix::{ChatbaseEvent, Verifier, VerifyChatbase};
//!
//! async fn webhook(inbox: web::Data<Inbox>, event: ChatbaseEvent) -> Stored {
//!     inbox.accept(&event).await.into()
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let inbox = web::Data::new(Inbox::open("sqlite://chatbase-inbox.db").await?);
//! let verifier = Verifier::from_env()?;
//! HttpServer::new(move || {
//!     App::new().app_data(inbox.clone()).service(
//!         web::scope("/chatbase")
//!             .wrap(VerifyChatbase::new(verifier.clone()))
//!             .route("/webhook", web::post().to(webhook)),
//!     )
//! })
//! .bind(("127.0.0.1", 3000))?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! Behind [`VerifyChatbase`](crate::VerifyChatbase) the request is counted
//! with what [`Stored`] answered (`accepted`, `duplicate` or `unavailable`).
//!
//! # A ready-made handler
//!
//! [`store`] verifies with the [`Verifier`](crate::Verifier) and stores in the [`Inbox`]
//! registered as app data, counting each request once with its final outcome:
//!
//! ```no_run
//! use actix_web::{App, web};
//! use chatbase_actix::inbox::{self, Inbox};
//! use chatbase_actix::{Verifier, method_not_allowed};
//!
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! let inbox = web::Data::new(Inbox::open("sqlite://chatbase-inbox.db").await?);
//! let verifier = web::Data::new(Verifier::from_env()?);
//! let app = App::new().app_data(inbox).app_data(verifier).service(
//!     web::resource("/webhook")
//!         .route(web::post().to(inbox::store))
//!         .default_service(web::to(method_not_allowed)),
//! );
//! # let _ = app; Ok(()) }
//! ```

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError, web};
use chatbase_core::observe::{Outcome, Recorder};
pub use chatbase_inbox::{
    self, Accepted, Answer, DUPLICATE_HEADER, Delivery, Failure, Inbox, InboxBuilder, InboxError,
    KeyStrategy, Worker,
};
use tracing::Instrument as _;

use crate::body::{head, read_and_verify, refused, unverifiable};
use crate::extract::verifier_from_app_data;

/// The answer to a delivery taken into an inbox: 200 once it is stored
/// (`x-chatbase-duplicate: true` if it was already), 503 with `Retry-After` if
/// the inbox could not store it. Make it from what [`Inbox::accept`] returned.
#[derive(Debug)]
pub struct Stored(pub Result<Accepted, InboxError>);

impl From<Result<Accepted, InboxError>> for Stored {
    fn from(result: Result<Accepted, InboxError>) -> Self {
        Self(result)
    }
}

impl Responder for Stored {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        Answer::log(&self.0);
        let answer = Answer::of(&self.0);
        let mut response = HttpResponse::build(
            StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        );
        response.content_type(ContentType::json());
        if answer.is_duplicate() {
            response.insert_header((DUPLICATE_HEADER, "true"));
        }
        if let Some(seconds) = answer.retry_after() {
            response.insert_header((RETRY_AFTER, seconds));
        }
        response.extensions_mut().insert(answer.answered());
        response.body(answer.json_body())
    }
}

/// A handler that verifies the request with the [`Verifier`](crate::Verifier) registered as app
/// data (`web::Data<Verifier>` or `Verifier`) and takes it into the [`Inbox`]
/// registered as `web::Data<Inbox>`: route `POST` to it.
///
/// Each request is counted once, with its final outcome: `rejected`,
/// `accepted`, `duplicate` or `unavailable`. Without a verifier or an inbox
/// in app data: 500, and an `ERROR` line saying what to register.
pub async fn store(request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let recorder = Recorder::new();
    let handled = async {
        let Some(verifier) = verifier_from_app_data(&request) else {
            return unverifiable(&recorder).error_response();
        };
        let Some(inbox) = request.app_data::<web::Data<Inbox>>() else {
            return missing_inbox(&recorder);
        };
        let verification = match head(verifier, request.headers()) {
            Ok(verification) => verification,
            Err(error) => return refused(&recorder, error).error_response(),
        };
        let limit = verifier.body_limit();
        let event = match read_and_verify(verification, payload.into_inner(), limit).await {
            Ok(event) => event,
            Err(error) => return refused(&recorder, error).error_response(),
        };
        let stored = inbox.accept(&event).await;
        let answered = Answer::of(&stored).answered();
        recorder.record(answered.outcome, answered.reason, Some(event.event_type()));
        Stored(stored).respond_to(&request)
    };
    handled.instrument(recorder.span().clone()).await
}

/// The answer without an inbox in app data: a misconfiguration, 500, logged
/// once at `ERROR` with the registration to add.
fn missing_inbox(recorder: &Recorder) -> HttpResponse {
    recorder.record(Outcome::Unavailable, "missing_inbox", None);
    tracing::error!(
        target: chatbase_core::REJECTION_LOG_TARGET,
        status = 500,
        reason = "missing_inbox",
        "`chatbase_actix::inbox::store` found no `Inbox` for this route: register \
         `.app_data(web::Data::new(inbox))` on the App, Scope or Resource"
    );
    HttpResponse::InternalServerError()
        .content_type(ContentType::json())
        .body(r#"{"message":"the server is not configured to receive Chatbase webhooks"}"#)
}
