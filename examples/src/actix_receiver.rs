//! The actix-web receiver: [`app`], [`server`] and [`serve`], which the
//! `actix-receiver` binary and the tests run.
//!
//! - `POST /webhook` takes the [`ChatbaseEvent`] extractor, with the
//!   [`Verifier`] registered as `web::Data`; any other method gets
//!   [`method_not_allowed`]'s 405 with `Allow: POST`;
//! - the `/scoped` scope is wrapped in [`VerifyChatbase`], which verifies every
//!   request to it, whatever its method, before any service inside runs;
//! - a verified event is answered `200 OK` with the body `OK`, logged at `info`
//!   (type, chatbot and conversation: never the customer's details) and recorded
//!   in [`Deliveries`];
//! - rejections are chatbase-actix's: 401, 400 or 413 with a JSON
//!   `{"message": ...}`.
//!
//! actix-web times out only the head of a connection's first request
//! (`client_request_timeout`), not a body, and not the head of a later request on
//! a kept-alive connection. So [`app`] adds a request timeout
//! ([`Timeouts::request`]), for a client trickling its body or never finishing
//! it, and [`server`] serves one request per connection (keep-alive disabled).
//!
//! ```no_run
//! use chatbase_actix::Verifier;
//! use examples::actix_receiver;
//! use examples::deliveries::Deliveries;
//! use examples::timeouts::Timeouts;
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
//! let shutdown = examples::shutdown::signal()?;
//! actix_receiver::serve(listener, Verifier::from_env()?, Deliveries::counter(), Timeouts::default(), shutdown).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{KeepAlive, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, Error, HttpResponse, HttpServer, ResponseError, web};
use chatbase_actix::{ChatbaseEvent, Verifier, VerifyChatbase, method_not_allowed};

use crate::deliveries::Deliveries;
use crate::timeouts::Timeouts;

/// The receiver's application: `POST /webhook` (the extractor) and
/// `/scoped/webhook` (behind the middleware), under a request timeout of
/// [`Timeouts::request`].
pub fn app(
    verifier: Verifier,
    deliveries: Deliveries,
    timeouts: Timeouts,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    timed_app(timeouts).configure(routes(verifier, deliveries))
}

/// The receiver's routes and their app data.
fn routes(verifier: Verifier, deliveries: Deliveries) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::new(verifier.clone()))
            .app_data(web::Data::new(deliveries))
            .service(webhook_resource())
            .service(
                // Every request in the scope is verified first, whatever its method.
                web::scope("/scoped")
                    .wrap(VerifyChatbase::new(verifier))
                    .service(webhook_resource()),
            );
    }
}

/// `POST /webhook` to [`webhook`]; any other method gets a 405 with `Allow: POST`
/// (actix-web's own 405 has no `Allow`).
fn webhook_resource() -> actix_web::Resource {
    web::resource("/webhook")
        .route(web::post().to(webhook))
        .default_service(web::to(method_not_allowed))
}

/// An app with the request timeout, for `routes` to fill in: the receiver's, or
/// the load benchmark's unverified baseline ([`crate::baseline`]).
pub(crate) fn timed_app(
    timeouts: Timeouts,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(RequestTimeout(timeouts.request))
        // Outermost: bounds the whole request, body reading included.
        .wrap(from_fn(cut_off_slow_requests))
}

/// The handler of both routes: a verified event is all it ever sees.
async fn webhook(event: ChatbaseEvent, deliveries: web::Data<Deliveries>) -> HttpResponse {
    // A real receiver matches on `event.event()` here and stores the lead
    // (`Event::LeadsSubmit(lead)`: `lead.customer_email`, ...). Never log those.
    deliveries.receive(&event);
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

/// How long a request may take once its head has arrived (app data for
/// [`cut_off_slow_requests`]).
#[derive(Debug, Clone, Copy)]
struct RequestTimeout(Duration);

/// Answers `408 Request Timeout`, and closes the connection, when the request
/// takes longer than its [`RequestTimeout`] — reading the body included. The
/// services inside are dropped at that point, payload and all.
async fn cut_off_slow_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let timeout = request
        .app_data::<RequestTimeout>()
        .map_or(crate::timeouts::REQUEST_TIMEOUT, |timeout| timeout.0);
    match actix_web::rt::time::timeout(timeout, next.call(request)).await {
        Ok(response) => response,
        // The request went into the services: answer through an error, which
        // actix-web turns into its response.
        Err(_elapsed) => {
            tracing::warn!(?timeout, "request not complete in time: answering 408");
            Err(RequestTimedOut.into())
        }
    }
}

/// A request took longer than its [`RequestTimeout`]: `408`, connection closed.
#[derive(Debug, Clone, Copy)]
struct RequestTimedOut;

impl fmt::Display for RequestTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request was not complete in time")
    }
}

impl ResponseError for RequestTimedOut {
    fn status_code(&self) -> StatusCode {
        StatusCode::REQUEST_TIMEOUT
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::RequestTimeout().force_close().finish()
    }
}

/// An [`HttpServer`] running [`app`] on `listener`, with the [`Timeouts`] and
/// one request per connection (keep-alive disabled: see the module docs),
/// stopping gracefully when `shutdown` completes (it then waits up to
/// [`Timeouts::shutdown`] for requests in flight). It installs no signal
/// handler of its own: pass [`shutdown::signal`](crate::shutdown::signal) for
/// Ctrl-C and `SIGTERM`.
///
/// Await the returned [`Server`] to run it; [`Server::handle`] stops it too.
///
/// # Errors
///
/// If `listener` cannot be used.
pub fn server(
    listener: TcpListener,
    verifier: Verifier,
    deliveries: Deliveries,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Server> {
    server_with(listener, timeouts, shutdown, move || {
        routes(verifier.clone(), deliveries.clone())
    })
}

/// [`server`] with other routes (in [`timed_app`]): the load benchmark's
/// baseline runs under exactly the receiver's server settings.
pub(crate) fn server_with<R>(
    listener: TcpListener,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
    routes: impl Fn() -> R + Send + Clone + 'static,
) -> io::Result<Server>
where
    R: FnOnce(&mut web::ServiceConfig),
{
    let server = HttpServer::new(move || timed_app(timeouts).configure(routes()))
        // The head of the first request on a connection (then 408).
        .client_request_timeout(timeouts.header_read)
        // actix-web times out only the first request's head: on a kept-alive
        // connection, a second head sent a byte at a time would never be cut off.
        // One request per connection closes that hole.
        .keep_alive(KeepAlive::Disabled)
        // Reading what a client still sends after an early answer (a 413).
        .client_disconnect_timeout(timeouts.disconnect)
        .shutdown_timeout(timeouts.shutdown.as_secs())
        .shutdown_signal(shutdown)
        .listen(listener)?
        .run();
    Ok(server)
}

/// Runs [`server`] to its end: until `shutdown` completes and requests in flight
/// are done.
///
/// # Errors
///
/// If `listener` cannot be used, or the server fails.
pub async fn serve(
    listener: TcpListener,
    verifier: Verifier,
    deliveries: Deliveries,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    server(listener, verifier, deliveries, timeouts, shutdown)?.await
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;
    use actix_web::test;
    use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
    use chatbase_core::{SIGNATURE_HEADER, Secret};

    use super::*;

    #[actix_web::test]
    async fn both_routes_deliver_a_signed_event() {
        let secret = Secret::new("actix-receiver-unit").unwrap();
        let (deliveries, mut delivered) = Deliveries::channel();
        let service = test::init_service(app(
            Verifier::new(secret.clone()),
            deliveries,
            Timeouts::default(),
        ))
        .await;
        let signed = testing::sign_body(&secret, SAMPLE_LEADS_SUBMIT);
        for path in ["/webhook", "/scoped/webhook"] {
            let request = test::TestRequest::post()
                .uri(path)
                .insert_header((SIGNATURE_HEADER, signed.signature()))
                .set_payload(signed.body().clone())
                .to_request();
            let response = test::call_service(&service, request).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(test::read_body(response).await, "OK");
        }
        assert_eq!(delivered.drain().len(), 2);
    }

    #[actix_web::test]
    async fn other_methods_get_405_on_webhook_and_401_when_scoped() {
        let (deliveries, mut delivered) = Deliveries::channel();
        let service = test::init_service(app(
            Verifier::new(Secret::new("actix-receiver-unit").unwrap()),
            deliveries,
            Timeouts::default(),
        ))
        .await;
        let get = |path| test::TestRequest::get().uri(path).to_request();
        let response = test::call_service(&service, get("/webhook")).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get(header::ALLOW).unwrap(), "POST");
        let response = test::call_service(&service, get("/scoped/webhook")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(delivered.drain().is_empty());
    }

    #[actix_web::test]
    async fn a_request_over_its_timeout_gets_408() {
        async fn slow() -> HttpResponse {
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        let service = test::init_service(
            App::new()
                .app_data(RequestTimeout(Duration::from_millis(1)))
                .wrap(from_fn(cut_off_slow_requests))
                .route("/", web::post().to(slow)),
        )
        .await;
        let request = test::TestRequest::post().uri("/").to_request();
        let Err(error) = test::try_call_service(&service, request).await else {
            panic!("the slow handler answered");
        };
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        // The connection is closed after it: the rest of the body is not awaited.
        assert!(!response.head().keep_alive());
    }
}
