//! The load benchmark's baselines: servers that answer `200 OK` to any
//! `POST /webhook` without verifying anything. Never deploy them.
//!
//! - [`axum_like_receiver`] and [`actix_like_receiver`] are served exactly as
//!   the reference receivers are: through the receivers' own `server` modules
//!   (`examples/*-receiver/src/main.rs`, compiled in here), with their
//!   timeouts and limits, and a handler on the raw body. The difference is
//!   what verifying and parsing cost.
//! - [`axum_default`] and [`actix_default`] are what a user writes with each
//!   framework's defaults: the bar the receivers are held to. Next to the
//!   former, they show what the receivers' slow-client guards cost.
//! - [`axum_inbox_per_request`] is the axum receiver's inbox route committing
//!   each delivery alone: what the inbox's group commit is measured against
//!   (it verifies, as the receivers do).

use std::io;
use std::net::TcpListener as StdListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use chatbase_axum::Verifier;
use chatbase_axum::inbox::{Delivery, Failure, Inbox, StoreInInbox};
use tokio::net::TcpListener;

/// The axum receiver (`examples/axum-receiver/src/main.rs`), for its `server`
/// module.
#[path = "../../examples/axum-receiver/src/main.rs"]
#[allow(
    unreachable_pub,
    dead_code,
    missing_docs,
    clippy::all,
    clippy::pedantic
)]
mod axum_receiver;

/// The actix receiver (`examples/actix-receiver/src/main.rs`), for its
/// `server` module.
#[path = "../../examples/actix-receiver/src/main.rs"]
#[allow(
    unreachable_pub,
    dead_code,
    missing_docs,
    clippy::all,
    clippy::pedantic
)]
mod actix_receiver;

use actix_receiver::server as actix_receiver_server;
use axum_receiver::server as axum_receiver_server;

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
///
/// # Errors
///
/// If serving fails.
pub async fn axum_like_receiver(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let app = Router::new().route("/webhook", post(unverified_axum));
    axum_receiver_server::serve(listener, app, axum_receiver_server::TIMEOUTS, shutdown).await
}

/// The axum receiver's inbox route (`POST /webhook`: [`StoreInInbox`]) on its
/// server, storing into `inbox` as it was opened (the benchmark opens it with
/// `batch_size(1)`), with a worker that processes each delivery by doing
/// nothing; serves until `shutdown`, then stops the worker and closes the inbox.
///
/// # Errors
///
/// If serving fails.
pub async fn axum_inbox_per_request(
    listener: TcpListener,
    verifier: Verifier,
    inbox: Inbox,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    async fn nothing(_delivery: Delivery) -> Result<(), Failure> {
        Ok(())
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(inbox.worker(nothing).run(async move {
        let _ = stopped.await;
    }));
    let app = Router::new().route_service("/webhook", StoreInInbox::new(verifier, inbox.clone()));
    let served =
        axum_receiver_server::serve(listener, app, axum_receiver_server::TIMEOUTS, shutdown).await;
    let _ = stop.send(());
    let _ = worker.await;
    inbox.close().await;
    served
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
/// unverified `POST /webhook`; stops when `shutdown` completes.
///
/// # Errors
///
/// If `listener` cannot be used.
pub fn actix_like_receiver(
    listener: StdListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Server> {
    actix_receiver_server::server(listener, actix_receiver_server::TIMEOUTS, shutdown, || {
        App::new().route("/webhook", web::post().to(unverified_actix))
    })
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
