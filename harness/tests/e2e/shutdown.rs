//! Graceful shutdown of the reference receivers on `SIGTERM` and on Ctrl-C
//! (`SIGINT`): the request in flight is finished, then the process exits 0.

use chatbase_core::sign;
use harness::send::{self, Outgoing};

use crate::support::{Reference, Server, assert_no_private_data, lead, post_head, secret};

/// Sends `signal` to `reference` while a request is in flight, and checks that
/// the request still gets its answer and its delivery, and that the process
/// then exits with status 0.
async fn finishes_the_request_in_flight(reference: Reference, signal: &str, announced: &str) {
    let context = format!("{} on SIG{signal}", reference.binary());
    let mut server = Server::reference(reference).await;

    // One request served first: the server is up, its signal handlers set.
    let reply = server
        .send("/webhook", &Outgoing::signed(&secret(), lead("conv_first")))
        .await;
    assert_eq!(reply.status(), 200, "{context}: {}", reply.text());
    server.next_delivery(&context).await;

    // A request in flight: its head, answered `100 Continue` once the server is
    // reading the body (so it was accepted, and is being served), then half of
    // the body.
    let in_flight = send::new_conversation_id();
    let body = lead(&in_flight);
    let (first, second) = body.split_at(body.len() / 2);
    let mut connection = server.connect().await;
    let head = post_head(
        "/scoped/webhook",
        body.len(),
        Some(&sign(&secret(), &body)),
        "expect: 100-continue\r\n",
    );
    connection.write(head.as_bytes()).await.unwrap();
    let interim = connection.response().await;
    assert_eq!(interim.status, 100, "{context}: {interim:?}");
    connection.write(first).await.unwrap();

    server.signal(signal);
    server.wait_for(announced).await;
    // Shutting down: the rest of the body still gets its answer.
    connection.write(second).await.unwrap();
    let response = connection.response().await;
    assert_eq!(response.status, 200, "{context}: {response:?}");
    assert_eq!(response.body, b"OK", "{context}");
    let delivery = server.next_delivery(&context).await;
    assert_eq!(
        delivery.conversation_id.as_deref(),
        Some(in_flight.as_str()),
        "{context}"
    );

    let status = server.exit_status().await;
    let log = server.log();
    assert!(status.success(), "{context}: {status:?}\n{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.ends_with("shut down"), "{context}: {log}");
    assert!(server.refuses_connections().await, "{context}");
    assert_no_private_data(&log, &context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    let announced = "SIGTERM received: shutting down gracefully";
    tokio::join!(
        finishes_the_request_in_flight(Reference::Axum, "TERM", announced),
        finishes_the_request_in_flight(Reference::Actix, "TERM", announced),
    );
}

/// actix-web's own handler would stop at once on `SIGINT`: the receiver
/// installs its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_request_in_flight_then_exits_0() {
    let announced = "Ctrl-C received: shutting down gracefully";
    tokio::join!(
        finishes_the_request_in_flight(Reference::Axum, "INT", announced),
        finishes_the_request_in_flight(Reference::Actix, "INT", announced),
    );
}
