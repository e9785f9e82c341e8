//! The load benchmark's baseline: the receivers without verification.
//!
//! `bench/load.sh` compares each receiver with a server that is the same in every
//! respect — server settings, timeouts, the route — but whose `POST /webhook`
//! takes the body as `Bytes` and answers `200 OK` without checking anything. The
//! difference is what verifying and parsing cost. Never deploy these.

use std::future::Future;
use std::io;

use actix_web::dev::Server;
use actix_web::{HttpResponse, web};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

use crate::timeouts::Timeouts;
use crate::{actix_receiver, axum_receiver};

/// The axum receiver's router with an unverified `POST /webhook`; serve it with
/// [`axum_receiver::serve`].
pub fn axum_router(timeouts: Timeouts) -> Router {
    let routes = Router::new().route("/webhook", post(|_body: Bytes| async { "OK" }));
    axum_receiver::with_request_timeout(routes, timeouts)
}

/// The actix receiver's server, settings and timeouts included, with an
/// unverified `POST /webhook`.
///
/// # Errors
///
/// If `listener` cannot be used.
pub fn actix_server(
    listener: std::net::TcpListener,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Server> {
    actix_receiver::server_with(listener, timeouts, shutdown, || {
        |config: &mut web::ServiceConfig| {
            config.route("/webhook", web::post().to(unverified));
        }
    })
}

async fn unverified(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn the_axum_baseline_answers_any_body_unverified() {
        let request = Request::post("/webhook")
            .body(axum::body::Body::from("not even signed"))
            .unwrap();
        let response = axum_router(Timeouts::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[actix_web::test]
    async fn the_actix_baseline_answers_any_body_unverified() {
        let app = actix_web::test::init_service(
            actix_receiver::timed_app(Timeouts::default()).configure(
                |config: &mut web::ServiceConfig| {
                    config.route("/webhook", web::post().to(unverified));
                },
            ),
        )
        .await;
        let request = actix_web::test::TestRequest::post()
            .uri("/webhook")
            .set_payload("not even signed")
            .to_request();
        let response = actix_web::test::call_service(&app, request).await;
        assert_eq!(response.status(), 200);
    }
}
