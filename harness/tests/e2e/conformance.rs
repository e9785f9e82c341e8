//! chatbase-core's request matrices, over TCP, through both routes of each
//! reference receiver, checked with `Case::check`: the matrix of one secret,
//! and the chatbot matrix with secrets per chatbot from
//! `CHATBASE_WEBHOOK_SECRETS`.
//!
//! What the handler received is read from the receiver's log: the cases are
//! sent one at a time, and each is logged (delivered or rejected, before it is
//! answered) before the next is sent, so the next such line is the case's own.

use chatbase_core::testing::conformance::{self, Case, Observed};
use chatbase_core::{DEFAULT_BODY_LIMIT, SECRETS_ENV_VAR};
use harness::send::Outgoing;
use reqwest::header::HeaderValue;

use crate::support::{
    DELIVERY_LINE, Logged, ROUTES, Reference, Server, assert_no_private_data, secret,
};

/// Sends every case to both routes of `server`, and checks each.
async fn passes(server: &mut Server, cases: impl Fn() -> Vec<Case>) {
    let mut deliveries = 0;
    for route in ROUTES {
        for case in cases() {
            let context = format!("{} {route} {}", server.name(), case.name);
            let header = |value: &String| HeaderValue::from_str(value).unwrap();
            let mut outgoing =
                Outgoing::with_signature(case.body.clone(), case.signature.as_ref().map(header));
            if let Some(second) = &case.second_signature {
                outgoing = outgoing.with_second_signature(header(second));
            }
            if case.content_type.is_none() {
                outgoing = outgoing.without_content_type();
            }
            let reply = server.send(route, &outgoing).await;
            let status = reply.status().as_u16();
            let delivered = match server.next_outcome().await {
                Logged::Delivered(delivery) => {
                    deliveries += 1;
                    vec![delivery.seen()]
                }
                Logged::Rejected {
                    status: logged,
                    line,
                } => {
                    assert_eq!(logged, status, "{context}: {line}");
                    Vec::new()
                }
            };
            let header = |name| {
                reply
                    .headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
            };
            case.check(&Observed {
                status,
                content_type: header("content-type"),
                body: reply.body(),
                delivered: &delivered,
                retry_after: header("retry-after"),
            });
        }
    }
    // A sentinel: once its line is read, every line of the matrix has been.
    let reply = server
        .send("/webhook", &Outgoing::unsigned("sentinel"))
        .await;
    assert_eq!(reply.status(), 401);
    server.next_rejection(401, "sentinel").await;
    let log = server.log();
    let logged = log.lines().filter(|l| l.contains(DELIVERY_LINE)).count();
    assert_eq!(logged, deliveries, "each delivery is logged once: {log}");
    assert_no_private_data(&log, server.name());
}

async fn passes_the_matrix(reference: Reference) {
    let mut server = Server::reference(reference).await;
    passes(&mut server, || {
        conformance::cases(&secret(), DEFAULT_BODY_LIMIT)
    })
    .await;
}

async fn passes_the_chatbot_matrix(reference: Reference) {
    let mut server = Server::start(
        reference.binary(),
        &[(SECRETS_ENV_VAR, conformance::CHATBOT_SECRETS_JSON)],
        DELIVERY_LINE,
    )
    .await;
    passes(&mut server, conformance::chatbot_cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_receiver_passes_the_conformance_matrix_over_tcp() {
    passes_the_matrix(Reference::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_receiver_passes_the_conformance_matrix_over_tcp() {
    passes_the_matrix(Reference::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_receiver_passes_the_chatbot_matrix_over_tcp() {
    passes_the_chatbot_matrix(Reference::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_receiver_passes_the_chatbot_matrix_over_tcp() {
    passes_the_chatbot_matrix(Reference::Actix).await;
}
