//! [`method_not_allowed`]: the 405 answer, with the `Allow` header actix-web leaves out.

use actix_web::HttpResponse;
use actix_web::http::header::{self, ContentType};

/// The JSON body of the 405.
const BODY: &str = r#"{"message":"method not allowed: Chatbase webhooks are POST requests"}"#;

/// A handler answering `405 Method Not Allowed` with `Allow: POST` and a JSON body
/// `{"message": "..."}`: use it as the default service of the webhook's resource.
///
/// actix-web answers a method no route matches with a bare 405 without the
/// `Allow` header HTTP requires. Declare the webhook as a `web::resource` with this
/// as its default service, and every other method gets a proper 405:
///
/// ```
/// use actix_web::{App, HttpResponse, test, web};
/// use chatbase_actix::{ChatbaseEvent, Secret, Verifier, method_not_allowed};
///
/// async fn on_event(_event: ChatbaseEvent) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
///
/// # actix_web::rt::System::new().block_on(async {
/// let verifier = Verifier::new(Secret::new("secret-from-the-chatbase-dashboard")?);
/// let app = test::init_service(
///     App::new().app_data(web::Data::new(verifier)).service(
///         web::resource("/webhook")
///             .route(web::post().to(on_event))
///             .default_service(web::to(method_not_allowed)),
///     ),
/// )
/// .await;
///
/// let response = test::call_service(&app, test::TestRequest::get().uri("/webhook").to_request()).await;
/// assert_eq!(response.status(), 405);
/// assert_eq!(response.headers().get("allow").unwrap(), "POST");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .content_type(ContentType::json())
        .body(BODY)
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    #[actix_web::test]
    async fn answers_405_with_allow_post_and_json() {
        let response = method_not_allowed().await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers().get(header::ALLOW).unwrap(), "POST");
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let body = response.into_body().try_into_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["message"].as_str().unwrap().contains("POST"));
    }
}
