//! [`VerifyChatbase`]: a middleware that lets only verified Chatbase webhooks
//! through to the App, Scope or Resource it wraps.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{
    Extensions, Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready,
};
use actix_web::web::{Data, JsonConfig, PayloadConfig};
use actix_web::{Error, HttpMessage};
use chatbase_core::Verifier;
use futures_util::future::LocalBoxFuture;

use tracing::Instrument as _;

use chatbase_core::observe::{self, Answered, Recorder};

use crate::body::{head, read_and_verify, refused};

/// Middleware that lets only verified Chatbase webhooks through: wrap an `App`,
/// a `Scope` or a `Resource` with it.
///
/// For every request in its scope, whatever the method, it checks the
/// `x-chatbase-signature` header, reads the body up to the [`Verifier`]'s limit,
/// verifies it and parses it, all through [`chatbase_core`]. A request that fails
/// is answered with the [`ChatbaseRejection`](crate::ChatbaseRejection) (401, 413 or 400, JSON body),
/// logged once, and never reaches the services inside. A request that passes
/// goes on with:
///
/// - its body given back, byte for byte, so `web::Bytes`, `String`, `web::Json<T>`
///   and `web::Payload` read it as if nothing had happened;
/// - the verified [`chatbase_core::ChatbaseEvent`] in the request extensions,
///   so a [`ChatbaseEvent`](crate::ChatbaseEvent) argument takes it as is,
///   without hashing or parsing again and without a verifier in app data, and
///   `web::ReqData<chatbase_core::ChatbaseEvent>` works too;
/// - actix-web's body limits raised to the verifier's: if no [`PayloadConfig`] or
///   [`JsonConfig`] is registered for the request, it registers one whose limit is
///   [`Verifier::body_limit`], so a signed body the verifier accepted is not
///   refused with a 413 by `web::Bytes` (256 KiB by default) or `web::Json`
///   (2 MiB by default). One you register yourself is left as it is.
///
/// # Example
///
/// ```
/// use actix_web::{App, HttpResponse, test, web};
/// use chatbase_actix::{Secret, VerifyChatbase, Verifier};
///
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Envelope {
///     event_type: String,
/// }
///
/// async fn handler(body: web::Json<Envelope>) -> HttpResponse {
///     // Only reached by correctly signed requests.
///     HttpResponse::Ok().body(body.event_type.clone())
/// }
///
/// # actix_web::rt::System::new().block_on(async {
/// let verifier = Verifier::new(Secret::new("secret-from-the-chatbase-dashboard")?);
/// let app = test::init_service(
///     App::new().service(
///         web::scope("/chatbase")
///             .wrap(VerifyChatbase::new(verifier))
///             .route("/webhook", web::post().to(handler)),
///     ),
/// )
/// .await;
///
/// let request = test::TestRequest::post()
///     .uri("/chatbase/webhook")
///     .insert_header(("x-chatbase-signature", "0".repeat(40)))
///     .set_json(serde_json::json!({ "eventType": "leads.submit" }))
///     .to_request();
/// assert_eq!(test::call_service(&app, request).await.status(), 401);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct VerifyChatbase {
    verifier: Verifier,
}

impl VerifyChatbase {
    /// A middleware verifying with `verifier`: its secrets and its body limit.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// The verifier it checks requests with.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl<S, B> Transform<S, ServiceRequest> for VerifyChatbase
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = VerifyChatbaseMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(VerifyChatbaseMiddleware {
            service: Rc::new(service),
            verifier: self.verifier.clone(),
            limits: Rc::new(Limits::new(self.verifier.body_limit())),
        }))
    }
}

/// The service [`VerifyChatbase`] wraps around the inner one. Built by actix-web.
pub struct VerifyChatbaseMiddleware<S> {
    service: Rc<S>,
    verifier: Verifier,
    limits: Rc<Limits>,
}

impl<S> std::fmt::Debug for VerifyChatbaseMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyChatbaseMiddleware")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for VerifyChatbaseMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let recorder = Recorder::new();
        let verification = match head(&self.verifier, req.headers()) {
            Ok(verification) => verification,
            Err(error) => return Box::pin(ready(Ok(reject(req, error, &recorder)))),
        };
        let service = Rc::clone(&self.service);
        let limit = self.verifier.body_limit();
        let limits = Rc::clone(&self.limits);
        let payload = req.take_payload();
        let handling = {
            let recorder = recorder.clone();
            async move {
                let event = match read_and_verify(verification, payload, limit).await {
                    Ok(event) => event,
                    Err(error) => return Ok(reject(req, error, &recorder)),
                };
                let event_type = observe::event_type_label(event.event_type());
                let body = event.raw_body().clone();
                req.extensions_mut().insert(event);
                req.set_payload(Payload::from(body));
                limits.register_missing(&mut req);
                let response = service.call(req).await?;
                // Counted with what the answer says came of it (the inbox glue
                // says so); a verified request handed on is accepted.
                let answered = response
                    .response()
                    .extensions()
                    .get::<Answered>()
                    .copied()
                    .unwrap_or(Answered::ACCEPTED);
                recorder.record(answered.outcome, answered.reason, Some(event_type));
                Ok(response.map_into_left_body())
            }
        };
        // The services inside run in the request's span too.
        let span = recorder.span().clone();
        Box::pin(handling.instrument(span))
    }
}

/// Answers a rejection, recorded and logged once, without calling the inner
/// service.
fn reject<B>(
    req: ServiceRequest,
    error: chatbase_core::Error,
    recorder: &Recorder,
) -> ServiceResponse<EitherBody<B>> {
    req.error_response(refused(recorder, error))
        .map_into_right_body()
}

/// actix-web's body-extractor configurations sized to the verifier's limit, ready
/// to be added to a request that has none of its own.
struct Limits {
    payload_and_json: Rc<Extensions>,
    payload: Rc<Extensions>,
    json: Rc<Extensions>,
}

impl Limits {
    fn new(limit: usize) -> Self {
        let container = |payload: bool, json: bool| {
            let mut extensions = Extensions::new();
            if payload {
                extensions.insert(PayloadConfig::new(limit));
            }
            if json {
                extensions.insert(JsonConfig::default().limit(limit));
            }
            Rc::new(extensions)
        };
        Self {
            payload_and_json: container(true, true),
            payload: container(true, false),
            json: container(false, true),
        }
    }

    /// Adds the configurations the request does not have yet, looked up as the
    /// `web::Bytes` and `web::Json` extractors look them up. App data registered
    /// further in (on a Scope or Resource inside this middleware) is added after
    /// this and still takes precedence.
    fn register_missing(&self, req: &mut ServiceRequest) {
        let has_payload = req.app_data::<PayloadConfig>().is_some()
            || req.app_data::<Data<PayloadConfig>>().is_some();
        let has_json =
            req.app_data::<JsonConfig>().is_some() || req.app_data::<Data<JsonConfig>>().is_some();
        let container = match (has_payload, has_json) {
            (false, false) => &self.payload_and_json,
            (false, true) => &self.payload,
            (true, false) => &self.json,
            (true, true) => return,
        };
        req.add_data_container(Rc::clone(container));
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const LIMIT: usize = 3 * 1024 * 1024;

    #[test]
    fn registers_both_limits_when_the_request_has_none() {
        let mut req = TestRequest::post().to_srv_request();
        Limits::new(LIMIT).register_missing(&mut req);
        assert!(req.app_data::<PayloadConfig>().is_some());
        assert!(req.app_data::<JsonConfig>().is_some());
    }

    #[test]
    fn leaves_the_configurations_a_request_has() {
        let limits = Limits::new(LIMIT);
        let mut req = TestRequest::post()
            .app_data(JsonConfig::default().limit(10))
            .to_srv_request();
        let own = std::ptr::from_ref(req.app_data::<JsonConfig>().unwrap());
        limits.register_missing(&mut req);
        assert!(std::ptr::eq(req.app_data::<JsonConfig>().unwrap(), own));
        assert!(req.app_data::<PayloadConfig>().is_some());

        // Registered as `web::Data` counts too, as it does for actix-web.
        let mut req = TestRequest::post()
            .app_data(Data::new(PayloadConfig::new(10)))
            .to_srv_request();
        limits.register_missing(&mut req);
        assert!(req.app_data::<PayloadConfig>().is_none());
        assert!(req.app_data::<JsonConfig>().is_some());
    }
}
