//! The load benchmark's baselines: servers that answer `200 OK` to any
//! `POST /webhook` without verifying anything. Never deploy them.
//!
//! - [`axum_like_receiver`] and [`actix_like_receiver`] are served exactly as
//!   the reference receivers are (same server settings, timeouts and route),
//!   with a handler on the raw body: the difference is what verifying and
//!   parsing cost.
//! - [`axum_default`] and [`actix_default`] are what a user writes with each
//!   framework's defaults: the bar the receivers are held to.

use std::io;
use std::net::TcpListener as StdListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::KeepAlive;
use actix_web::{App, HttpResponse, HttpServer, web};
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

/// The reference receivers' timeouts and limits (see their `main.rs`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADER_BYTES: usize = 64 * 1024;
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

async fn unverified_axum(_body: Bytes) -> &'static str {
    "OK"
}

async fn unverified_actix(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

/// The axum receiver's server, settings and timeouts included, with an
/// unverified `POST /webhook`; serves until `shutdown`.
pub async fn axum_like_receiver(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let app = Router::new()
        .route("/webhook", post(unverified_axum))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    graceful.shutdown().await;
}

/// `axum::serve` with its defaults and an unverified `POST /webhook`.
///
/// # Errors
///
/// If serving fails.
pub async fn axum_default(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = Router::new().route("/webhook", post(unverified_axum));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The actix receiver's server, settings and timeouts included, with an
/// unverified `POST /webhook`.
///
/// # Errors
///
/// If `listener` cannot be used.
pub fn actix_like_receiver(listener: StdListener) -> io::Result<Server> {
    Ok(HttpServer::new(|| {
        App::new()
            .wrap(actix_web::middleware::from_fn(request_timeout))
            .route("/webhook", web::post().to(unverified_actix))
    })
    .keep_alive(KeepAlive::Disabled)
    .client_request_timeout(HEADER_READ_TIMEOUT)
    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
    .listen(listener)?
    .run())
}

/// `HttpServer` with actix-web's defaults (keep-alive included) and an
/// unverified `POST /webhook`.
///
/// # Errors
///
/// If `listener` cannot be used.
pub fn actix_default(listener: StdListener) -> io::Result<Server> {
    Ok(
        HttpServer::new(|| App::new().route("/webhook", web::post().to(unverified_actix)))
            .listen(listener)?
            .run(),
    )
}

/// The receiver's request timeout: 408 past [`REQUEST_TIMEOUT`].
async fn request_timeout(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    match actix_web::rt::time::timeout(REQUEST_TIMEOUT, next.call(request)).await {
        Ok(response) => response,
        Err(_) => Err(actix_web::error::ErrorRequestTimeout("request timeout")),
    }
}
