//! Slow and hostile clients, on raw sockets, against the reference receivers'
//! default limits: 10 s for each request head (idle time before it included,
//! on kept-alive connections too), 10 s for the rest of a request, 1 MiB
//! bodies, 64 KiB (axum) or 128 KiB (actix-web) heads.
//!
//! The timeouts are not shortened and not measured: each case only checks
//! that the server answers or disconnects at all (within `PATIENCE`). Every
//! case that waits for a timeout runs at once, in one test, so that they take
//! about one timeout together.

use std::time::Duration;

use chatbase_core::{DEFAULT_BODY_LIMIT, sign};
use harness::send;
use tokio::io::AsyncWriteExt as _;

use crate::support::{Connection, Reference, Server, lead, post_head, secret, signed_post};

/// A signature of the right shape, for requests that never get as far as
/// checking it.
fn some_signature() -> String {
    sign(&secret(), b"whatever")
}

/// Starts both reference receivers.
async fn both() -> (Server, Server) {
    tokio::join!(
        Server::reference(Reference::Axum),
        Server::reference(Reference::Actix)
    )
}

/// Whether what a server sent before closing is nothing, or a 408 (actix-web
/// answers a head that does not come in time with one).
fn nothing_or_408(received: &[u8]) -> bool {
    received.is_empty() || received.starts_with(b"HTTP/1.1 408")
}

/// The head and part of the body, then nothing: 408, and the connection closed.
async fn stalled_body(server: &Server, route: &str) {
    let context = format!("{} {route}", server.name());
    let mut connection = server.connect().await;
    let head = post_head(route, 1000, Some(&some_signature()), "");
    connection.write(head.as_bytes()).await.unwrap();
    connection.write(&[b' '; 100]).await.unwrap();
    let response = connection.response().await;
    assert_eq!(response.status, 408, "{context}: {response:?}");
    connection.until_closed().await;
}

/// A body trickled a byte at a time, steadily: cut off with a 408 long before
/// it ends. (1000 bytes at one per 50 ms would take 50 s; and if it ended, its
/// signature would not match: 401, not 408.)
async fn trickled_body(server: &Server, route: &str) {
    let context = format!("{} {route}", server.name());
    let mut connection = server.connect().await;
    let head = post_head(route, 1000, Some(&some_signature()), "");
    connection.write(head.as_bytes()).await.unwrap();
    let mut writer = connection.take_writer();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            writer.write_all(b" ").await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::io::Result::Ok(())
    });
    let response = connection.response().await;
    assert_eq!(response.status, 408, "{context}: {response:?}");
    trickle.abort();
}

/// Sends `sent` on a new connection, then nothing: the server disconnects. A
/// client that connects and says nothing, or stops in the middle of its head,
/// holds no connection.
async fn disconnected_after(server: &Server, sent: &str) {
    let mut connection = server.connect().await;
    connection.write(sent.as_bytes()).await.unwrap();
    let received = connection.until_closed().await;
    assert!(
        nothing_or_408(&received),
        "{} after {sent:?}: {}",
        server.name(),
        String::from_utf8_lossy(&received)
    );
}

/// A connection that has served one request: the answer kept it alive.
async fn kept_alive(server: &Server, context: &str) -> Connection {
    let mut connection = server.connect().await;
    let request = signed_post("/webhook", &lead(&send::new_conversation_id()));
    connection.write(&request).await.unwrap();
    let response = connection.response().await;
    assert_eq!(response.status, 200, "{context}: {response:?}");
    assert_eq!(response.body, b"OK", "{context}");
    assert_ne!(response.header("connection"), Some("close"), "{context}");
    connection
}

/// A kept-alive connection then left idle, or sent a head that never ends, is
/// closed too: the head deadline runs again for every request.
async fn kept_alive_then(server: &Server, second: &str) {
    let context = format!("{} kept alive, then {second:?}", server.name());
    let mut connection = kept_alive(server, &context).await;
    connection.write(second.as_bytes()).await.unwrap();
    let received = connection.until_closed().await;
    assert!(
        nothing_or_408(&received),
        "{context}: {}",
        String::from_utf8_lossy(&received)
    );
}

/// A request head sent a byte every 50 ms, for ever (a header that never
/// ends: 200 bytes per 10 s is far below the head size limit): the server
/// closes the connection at its head deadline although bytes keep coming. On
/// a new connection (the first head), or on one kept alive after a request
/// (a later head: actix-web's own timer would miss it).
async fn trickled_head(server: &Server, after_a_request: bool) {
    let context = format!(
        "{} trickled {} head",
        server.name(),
        if after_a_request { "second" } else { "first" }
    );
    let mut connection = if after_a_request {
        kept_alive(server, &context).await
    } else {
        server.connect().await
    };
    let mut writer = connection.take_writer();
    let trickle = tokio::spawn(async move {
        let head = "POST /webhook HTTP/1.1\r\nhost: localhost\r\nx-trickle: ";
        for byte in head.bytes().chain(std::iter::repeat(b'a')) {
            writer.write_all(&[byte]).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::io::Result::Ok(())
    });
    let received = connection.until_closed().await;
    assert!(
        nothing_or_408(&received),
        "{context}: {}",
        String::from_utf8_lossy(&received)
    );
    trickle.abort();
}

/// Stalled and trickled bodies get 408 on both routes; a silent connection, a
/// slow head and a head trickled a byte at a time are disconnected, on a new
/// connection or on one kept alive after a request, by both receivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_by_the_default_timeouts() {
    let (axum, actix) = both().await;
    let partial_head = "POST /webhook HTTP/1.1\r\nhost: localhost\r\n";
    tokio::join!(
        stalled_body(&axum, "/webhook"),
        stalled_body(&axum, "/scoped/webhook"),
        stalled_body(&actix, "/webhook"),
        stalled_body(&actix, "/scoped/webhook"),
        trickled_body(&axum, "/webhook"),
        trickled_body(&axum, "/scoped/webhook"),
        trickled_body(&actix, "/webhook"),
        trickled_body(&actix, "/scoped/webhook"),
        disconnected_after(&axum, ""),
        disconnected_after(&axum, partial_head),
        disconnected_after(&actix, ""),
        disconnected_after(&actix, partial_head),
        kept_alive_then(&axum, ""),
        kept_alive_then(&axum, partial_head),
        kept_alive_then(&actix, ""),
        kept_alive_then(&actix, partial_head),
        trickled_head(&axum, false),
        trickled_head(&axum, true),
        trickled_head(&actix, false),
        trickled_head(&actix, true),
    );
}

/// Both receivers keep connections alive: requests sent one after another on
/// one connection are all served, and each is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_kept_alive() {
    for reference in Reference::BOTH {
        let mut server = Server::reference(reference).await;
        let mut connection = server.connect().await;
        for route in crate::support::ROUTES.iter().cycle().take(4) {
            let context = format!("{} {route}", reference.binary());
            let conversation_id = send::new_conversation_id();
            connection
                .write(&signed_post(route, &lead(&conversation_id)))
                .await
                .unwrap();
            let response = connection.response().await;
            assert_eq!(response.status, 200, "{context}: {response:?}");
            assert_ne!(response.header("connection"), Some("close"), "{context}");
            let delivery = server.next_delivery(&context).await;
            assert_eq!(
                delivery.conversation_id.as_deref(),
                Some(conversation_id.as_str()),
                "{context}"
            );
        }
    }
}

/// A request head over the limit is answered 431; a large one under it is
/// served.
async fn oversized_head(reference: Reference) {
    let context = reference.binary();
    let mut server = Server::reference(reference).await;

    // Exactly the limit's worth of an unfinished head: the server reads all of
    // it before it can tell that the head is too large, so its answer is not
    // lost to a reset.
    let start = "POST /webhook HTTP/1.1\r\nhost: localhost\r\nx-padding: ";
    let mut head = start.as_bytes().to_vec();
    head.resize(reference.max_head_bytes(), b'a');
    let mut connection = server.connect().await;
    connection.write(&head).await.unwrap();
    let response = connection.response().await;
    assert_eq!(response.status, 431, "{context}: {response:?}");
    connection.until_closed().await;

    // A large but acceptable head: a signed event with 16 KiB of headers.
    let conversation_id = send::new_conversation_id();
    let body = lead(&conversation_id);
    let padding = format!("x-padding: {}\r\n", "a".repeat(16 * 1024));
    let mut request = post_head(
        "/webhook",
        body.len(),
        Some(&sign(&secret(), &body)),
        &padding,
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let mut connection = server.connect().await;
    connection.write(&request).await.unwrap();
    let response = connection.response().await;
    assert_eq!(response.status, 200, "{context}: {response:?}");
    let delivery = server.next_delivery(context).await;
    assert_eq!(
        delivery.conversation_id.as_deref(),
        Some(conversation_id.as_str()),
        "{context}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_gets_431() {
    tokio::join!(
        oversized_head(Reference::Axum),
        oversized_head(Reference::Actix)
    );
}

/// A `Content-Length` over the limit is refused from the head alone: the 413
/// comes without the client sending any of the body (a server waiting for the
/// body would answer 408 after its request timeout instead). Unsigned, the
/// signature is checked first: 401.
async fn content_length_over_the_limit(reference: Reference) {
    let mut server = Server::reference(reference).await;
    for route in crate::support::ROUTES {
        let context = format!("{} {route}", reference.binary());
        let mut connection = server.connect().await;
        let head = post_head(route, DEFAULT_BODY_LIMIT + 1, Some(&some_signature()), "");
        connection.write(head.as_bytes()).await.unwrap();
        let response = connection.response().await;
        assert_eq!(response.status, 413, "{context}: {response:?}");
        server.next_rejection(413, &context).await;

        let mut connection = server.connect().await;
        let head = post_head(route, 100 * DEFAULT_BODY_LIMIT, None, "");
        connection.write(head.as_bytes()).await.unwrap();
        let response = connection.response().await;
        assert_eq!(response.status, 401, "{context} unsigned: {response:?}");
        server.next_rejection(401, &context).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_limit_is_refused_before_the_body() {
    tokio::join!(
        content_length_over_the_limit(Reference::Axum),
        content_length_over_the_limit(Reference::Actix)
    );
}
