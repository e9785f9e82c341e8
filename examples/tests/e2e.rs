//! End to end: the receivers (in-process on an ephemeral port, and as binaries),
//! driven over real TCP by the `send` code and by raw sockets for the hostile
//! clients; the `send` and `demo` binaries.
//!
//! No timing assertions: timeouts under test are shortened through `Timeouts`,
//! and every wait is bounded by a generous [`PATIENCE`] only so that a broken
//! server fails the test instead of hanging it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chatbase_core::testing::conformance::{self, Expected};
use chatbase_core::{SECRET_ENV_VAR, SIGNATURE_HEADER, Secret, Verifier, sign};
use examples::deliveries::{Delivered, Deliveries, Delivery};
use examples::send::{self, Outgoing, Reply, Sender};
use examples::timeouts::{ACTIX_MAX_HEADER_BYTES, AXUM_MAX_HEADER_BYTES, Timeouts};
use examples::{actix_receiver, axum_receiver};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// The longest any step may take before the test gives up: far longer than
/// anything should take, even on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

const SECRET: &str = "e2e-test-secret";

/// The retiring secret the binaries also accept, as during a rotation.
const PREVIOUS_SECRET: &str = "e2e-previous-secret";

fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

/// A short timeout for the one being tested; the others stay long.
const SHORT: Duration = Duration::from_millis(400);

async fn patiently<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {PATIENCE:?}"))
}

// ---------------------------------------------------------------------------
// In-process receivers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framework {
    Axum,
    Actix,
}

const FRAMEWORKS: [Framework; 2] = [Framework::Axum, Framework::Actix];

impl Framework {
    fn max_header_bytes(self) -> usize {
        match self {
            Self::Axum => AXUM_MAX_HEADER_BYTES,
            Self::Actix => ACTIX_MAX_HEADER_BYTES,
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Self::Axum => env!("CARGO_BIN_EXE_axum-receiver"),
            Self::Actix => env!("CARGO_BIN_EXE_actix-receiver"),
        }
    }
}

/// A receiver running in-process on an ephemeral port: the same router / app
/// the binaries serve.
struct Receiver {
    framework: Framework,
    address: SocketAddr,
    deliveries: Deliveries,
    delivered: Delivered,
    stop: oneshot::Sender<()>,
    stopped: oneshot::Receiver<io::Result<()>>,
}

impl Receiver {
    async fn start(framework: Framework, verifier: Verifier, timeouts: Timeouts) -> Self {
        let (deliveries, delivered) = Deliveries::channel();
        let (stop, stop_signal) = oneshot::channel::<()>();
        let (done, stopped) = oneshot::channel();
        let shutdown = async {
            let _ = stop_signal.await;
        };
        let address = match framework {
            Framework::Axum => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let address = listener.local_addr().unwrap();
                let app = axum_receiver::router(verifier, deliveries.clone(), timeouts);
                tokio::spawn(async move {
                    let _ =
                        done.send(axum_receiver::serve(listener, app, timeouts, shutdown).await);
                });
                address
            }
            Framework::Actix => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let address = listener.local_addr().unwrap();
                let deliveries = deliveries.clone();
                std::thread::spawn(move || {
                    let result = actix_web::rt::System::new().block_on(actix_receiver::serve(
                        listener, verifier, deliveries, timeouts, shutdown,
                    ));
                    let _ = done.send(result);
                });
                address
            }
        };
        Self {
            framework,
            address,
            deliveries,
            delivered,
            stop,
            stopped,
        }
    }

    async fn with_secret(framework: Framework) -> Self {
        Self::start(framework, Verifier::new(secret()), Timeouts::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Shuts the receiver down and checks that `serve` returned `Ok`.
    async fn stop(self) {
        let _ = self.stop.send(());
        patiently("graceful shutdown", self.stopped)
            .await
            .expect("the server task ended without a result")
            .unwrap_or_else(|error| panic!("{:?} serve failed: {error}", self.framework));
    }
}

async fn send(url: &str, outgoing: &Outgoing) -> Reply {
    let sender = Sender::new().unwrap();
    patiently(url, sender.send(url, outgoing)).await.unwrap()
}

fn assert_json_rejection(reply: &Reply, status: u16, context: &str) {
    assert_eq!(reply.status(), status, "{context}: {}", reply.text());
    assert_eq!(
        reply.headers()["content-type"],
        "application/json",
        "{context}"
    );
    assert!(
        reply.message().is_some_and(|message| !message.is_empty()),
        "{context}: {}",
        reply.text()
    );
}

fn lead(conversation_id: &str) -> Bytes {
    send::lead_body("bot_e2e", conversation_id)
}

// ---------------------------------------------------------------------------
// The contract, over TCP
// ---------------------------------------------------------------------------

/// Valid, tampered, unsigned, wrong signature, oversized and wrong method, on
/// both routes of both receivers; the handler counts exactly the valid ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_keep_the_contract_on_both_routes() {
    for framework in FRAMEWORKS {
        let limit = 4096;
        let verifier = Verifier::new(secret()).with_body_limit(limit);
        let mut receiver = Receiver::start(framework, verifier, Timeouts::default()).await;
        for route in ["/webhook", "/scoped/webhook"] {
            let url = receiver.url(route);
            let context = format!("{framework:?} {route}");
            let conversation_id = send::new_conversation_id();
            let valid = Outgoing::signed(&secret(), lead(&conversation_id));

            let reply = send(&url, &valid).await;
            assert_eq!(
                reply.status(),
                StatusCode::OK,
                "{context}: {}",
                reply.text()
            );
            assert_eq!(reply.text(), "OK", "{context}");
            assert_eq!(
                receiver.delivered.drain(),
                vec![Delivery {
                    event_type: "leads.submit".to_owned(),
                    chatbot_id: Some("bot_e2e".to_owned()),
                    conversation_id: Some(conversation_id),
                }],
                "{context}"
            );

            let body = lead(&send::new_conversation_id());
            let mut oversized = body.to_vec();
            oversized.resize(limit + 1, b' ');
            let rejected = [
                ("tampered", valid.clone().tampered(), 401),
                ("unsigned", Outgoing::unsigned(body.clone()), 401),
                (
                    "wrong signature",
                    Outgoing::badly_signed(&secret(), body.clone()),
                    401,
                ),
                (
                    "signed with another secret",
                    Outgoing::signed(&Secret::new("not the secret").unwrap(), body.clone()),
                    401,
                ),
                ("oversized", Outgoing::signed(&secret(), oversized), 413),
                (
                    "signed, not an event",
                    Outgoing::signed(&secret(), "[1]"),
                    400,
                ),
            ];
            for (what, outgoing, status) in rejected {
                let reply = send(&url, &outgoing).await;
                assert_json_rejection(&reply, status, &format!("{context} {what}"));
            }
            assert!(receiver.delivered.drain().is_empty(), "{context}");
        }

        // Other methods: 405 with `Allow: POST` on /webhook, whatever the body...
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let outgoing =
                Outgoing::signed(&secret(), lead("conv_method")).with_method(method.clone());
            let reply = send(&receiver.url("/webhook"), &outgoing).await;
            assert_eq!(reply.status(), 405, "{framework:?} {method}");
            assert_eq!(reply.headers()["allow"], "POST", "{framework:?} {method}");
        }
        // ...and behind the layer / middleware every method is verified first.
        let unsigned_get = Outgoing::unsigned("").with_method(Method::GET);
        let reply = send(&receiver.url("/scoped/webhook"), &unsigned_get).await;
        assert_json_rejection(&reply, 401, &format!("{framework:?} GET /scoped/webhook"));

        assert!(receiver.delivered.drain().is_empty());
        assert_eq!(receiver.deliveries.count(), 2, "{framework:?}");
        receiver.stop().await;
    }
}

/// chatbase-core's whole request matrix, over TCP, through both routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_pass_the_conformance_matrix_over_tcp() {
    let limit = 2048;
    for framework in FRAMEWORKS {
        let verifier = Verifier::new(secret()).with_body_limit(limit);
        let mut receiver = Receiver::start(framework, verifier, Timeouts::default()).await;
        let mut expected_deliveries = 0;
        for route in ["/webhook", "/scoped/webhook"] {
            for case in conformance::cases(&secret(), limit) {
                let context = format!("{framework:?} {route} {}", case.name);
                let mut outgoing = Outgoing::with_signature(case.body.clone(), case.signature);
                if case.content_type.is_none() {
                    outgoing = outgoing.without_content_type();
                }
                let reply = send(&receiver.url(route), &outgoing).await;
                match case.expected {
                    Expected::Delivered {
                        event_type,
                        chatbot_id,
                    } => {
                        assert_eq!(reply.status(), 200, "{context}: {}", reply.text());
                        let seen = receiver.delivered.drain();
                        assert_eq!(seen.len(), 1, "{context}");
                        assert_eq!(seen[0].event_type, event_type, "{context}");
                        assert_eq!(seen[0].chatbot_id.as_deref(), chatbot_id, "{context}");
                        expected_deliveries += 1;
                    }
                    Expected::Rejected { status } => {
                        assert_json_rejection(&reply, status, &context);
                        assert!(receiver.delivered.drain().is_empty(), "{context}");
                    }
                    other => panic!("{context}: unknown expectation {other:?}"),
                }
            }
        }
        assert_eq!(receiver.deliveries.count(), expected_deliveries);
        receiver.stop().await;
    }
}

// ---------------------------------------------------------------------------
// Hostile clients, on raw sockets
// ---------------------------------------------------------------------------

/// The head of a signed POST announcing `content_length` bytes.
fn post_head(path: &str, content_length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         {SIGNATURE_HEADER}: {}\r\ncontent-length: {content_length}\r\n\r\n",
        sign(&secret(), b"whatever")
    )
}

/// Reads the status line's code.
async fn read_status(stream: &mut TcpStream) -> u16 {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    patiently("status line", reader.read_line(&mut line))
        .await
        .unwrap();
    let code = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {line:?}"));
    code.parse().unwrap()
}

/// Reads until the server closes the connection (an end of file or a reset),
/// and returns what came.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match patiently("connection close", stream.read(&mut buffer)).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Headers, then part of the body, then nothing: 408, and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_off_with_408() {
    let timeouts = Timeouts {
        request: SHORT,
        ..Timeouts::default()
    };
    for framework in FRAMEWORKS {
        let receiver = Receiver::start(framework, Verifier::new(secret()), timeouts).await;
        for route in ["/webhook", "/scoped/webhook"] {
            let mut stream = TcpStream::connect(receiver.address).await.unwrap();
            stream
                .write_all(post_head(route, 1000).as_bytes())
                .await
                .unwrap();
            stream.write_all(&[b' '; 100]).await.unwrap();
            assert_eq!(read_status(&mut stream).await, 408, "{framework:?} {route}");
            read_until_closed(&mut stream).await;
        }
        assert_eq!(receiver.deliveries.count(), 0);
        receiver.stop().await;
    }
}

/// A body trickled a byte at a time: cut off with a 408 long before it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_with_408() {
    let timeouts = Timeouts {
        request: SHORT,
        ..Timeouts::default()
    };
    for framework in FRAMEWORKS {
        let receiver = Receiver::start(framework, Verifier::new(secret()), timeouts).await;
        // 1000 bytes at one per 50 ms would take 50 s: the body never ends in time,
        // and if it did, its signature would not match (401, not 408).
        let stream = TcpStream::connect(receiver.address).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let trickle = tokio::spawn(async move {
            write
                .write_all(post_head("/webhook", 1000).as_bytes())
                .await?;
            for _ in 0..1000 {
                write.write_all(b" ").await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            io::Result::Ok(())
        });
        let mut response = Vec::new();
        let mut buffer = [0; 1024];
        while !response.windows(2).any(|w| w == b"\r\n") {
            let n = patiently("408", read.read(&mut buffer)).await.unwrap();
            assert_ne!(n, 0, "{framework:?}: closed without an answer");
            response.extend_from_slice(&buffer[..n]);
        }
        assert!(
            response.starts_with(b"HTTP/1.1 408"),
            "{framework:?}: {}",
            String::from_utf8_lossy(&response)
        );
        trickle.abort();
        receiver.stop().await;
    }
}

/// A client that connects and says nothing, or stops in the middle of its
/// headers, is disconnected (actix-web says 408 first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_and_slow_headers_are_disconnected() {
    let timeouts = Timeouts {
        header_read: SHORT,
        ..Timeouts::default()
    };
    for framework in FRAMEWORKS {
        let receiver = Receiver::start(framework, Verifier::new(secret()), timeouts).await;
        for sent in ["", "POST /webhook HTTP/1.1\r\nhost: localhost\r\n"] {
            let mut stream = TcpStream::connect(receiver.address).await.unwrap();
            stream.write_all(sent.as_bytes()).await.unwrap();
            let received = read_until_closed(&mut stream).await;
            assert!(
                received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
                "{framework:?} after {sent:?}: {}",
                String::from_utf8_lossy(&received)
            );
        }
        receiver.stop().await;
    }
}

/// After a first request, a connection left idle, or used for a second head
/// that never ends, is closed too. (axum: the header read timeout runs again
/// for every request; actix-web times out only the first head, so its receiver
/// serves one request per connection.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_requests_on_a_connection_are_timed_out_too() {
    let timeouts = Timeouts {
        header_read: SHORT,
        ..Timeouts::default()
    };
    for framework in FRAMEWORKS {
        let receiver = Receiver::start(framework, Verifier::new(secret()), timeouts).await;
        for second in ["", "POST /webhook HTTP/1.1\r\nhost: localhost\r\n"] {
            let body = lead("conv_keep_alive");
            let mut stream = TcpStream::connect(receiver.address).await.unwrap();
            let head = format!(
                "POST /webhook HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {}\r\n\
                 content-length: {}\r\n\r\n",
                sign(&secret(), &body),
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&body).await.unwrap();
            let (status, body) = read_response(&mut stream).await;
            assert_eq!(
                (status, body.as_slice()),
                (200, &b"OK"[..]),
                "{framework:?}"
            );

            // The server may have closed already (actix-web): then this write
            // may fail, and the read below sees the end at once.
            let _ = stream.write_all(second.as_bytes()).await;
            let received = read_until_closed(&mut stream).await;
            assert!(
                received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
                "{framework:?} after {second:?}: {}",
                String::from_utf8_lossy(&received)
            );
        }
        assert_eq!(receiver.deliveries.count(), 2);
        receiver.stop().await;
    }
}

/// Reads one response with a `Content-Length`: its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    let header_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = patiently("response", stream.read(&mut buffer))
            .await
            .unwrap();
        assert_ne!(
            n,
            0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&received[..header_end]).to_lowercase();
    let status = head.get(9..12).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .unwrap_or_else(|| panic!("no content-length: {head}"))
        .trim()
        .parse()
        .unwrap();
    while received.len() < header_end + length {
        let n = patiently("response body", stream.read(&mut buffer))
            .await
            .unwrap();
        assert_ne!(n, 0, "closed mid-body");
        received.extend_from_slice(&buffer[..n]);
    }
    (status, received[header_end..header_end + length].to_vec())
}

/// A request head over the limit is answered 431; one under it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_header_block_gets_431() {
    for framework in FRAMEWORKS {
        let receiver = Receiver::with_secret(framework).await;
        let limit = framework.max_header_bytes();

        // Exactly `limit` bytes of an unfinished head: the server reads all of it
        // before it can tell that the head is too large, so its answer is not
        // lost to a reset.
        let start = "POST /webhook HTTP/1.1\r\nhost: localhost\r\nx-padding: ";
        let mut head = start.as_bytes().to_vec();
        head.resize(limit, b'a');
        let mut stream = TcpStream::connect(receiver.address).await.unwrap();
        stream.write_all(&head).await.unwrap();
        assert_eq!(read_status(&mut stream).await, 431, "{framework:?}");
        read_until_closed(&mut stream).await;

        // A large but acceptable head: a signed event with 16 KiB of headers.
        let body = lead("conv_big_head");
        let head = format!(
            "POST /webhook HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\
             {SIGNATURE_HEADER}: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            "a".repeat(16 * 1024),
            sign(&secret(), &body),
            body.len()
        );
        let mut stream = TcpStream::connect(receiver.address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        assert_eq!(read_status(&mut stream).await, 200, "{framework:?}");
        assert_eq!(receiver.deliveries.count(), 1);
        receiver.stop().await;
    }
}

/// A `Content-Length` over the limit is refused from the head alone: the 413
/// comes without the client sending any of the body. (A server waiting for the
/// body would answer 408 after the 10 s request timeout instead.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_limit_is_refused_before_the_body() {
    let limit = 4096;
    for framework in FRAMEWORKS {
        let verifier = Verifier::new(secret()).with_body_limit(limit);
        let receiver = Receiver::start(framework, verifier, Timeouts::default()).await;
        for route in ["/webhook", "/scoped/webhook"] {
            let mut stream = TcpStream::connect(receiver.address).await.unwrap();
            stream
                .write_all(post_head(route, limit + 1).as_bytes())
                .await
                .unwrap();
            assert_eq!(read_status(&mut stream).await, 413, "{framework:?} {route}");

            // Unsigned, the signature is checked first: 401.
            let mut stream = TcpStream::connect(receiver.address).await.unwrap();
            let head = format!(
                "POST {route} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n",
                100 * limit
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            assert_eq!(read_status(&mut stream).await, 401, "{framework:?} {route}");
        }
        assert_eq!(receiver.deliveries.count(), 0);
        receiver.stop().await;
    }
}

// ---------------------------------------------------------------------------
// `send`: signatures, files, exit codes, https
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct NodeVectors {
    vectors: Vec<NodeVector>,
}

#[derive(serde::Deserialize)]
struct NodeVector {
    name: String,
    secret: String,
    body_base64: String,
    signature: String,
}

fn node_vectors() -> Vec<NodeVector> {
    let vectors: NodeVectors =
        serde_json::from_str(include_str!("../../testdata/node-hmac-sha1.json")).unwrap();
    assert_eq!(vectors.vectors.len(), 60);
    vectors.vectors
}

/// What a capture server saw of one request.
#[derive(Debug)]
struct Captured {
    method: String,
    signature: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// A server that answers 200 to anything and reports every request it got.
async fn capture_server() -> (String, mpsc::UnboundedReceiver<Captured>) {
    use axum::extract::Request;

    let (sender, receiver) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |request: Request| {
        let sender = sender.clone();
        async move {
            let (parts, body) = request.into_parts();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .map(|value| value.to_str().unwrap().to_owned())
            };
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            sender
                .send(Captured {
                    method: parts.method.to_string(),
                    signature: header(SIGNATURE_HEADER),
                    content_type: header("content-type"),
                    body,
                })
                .unwrap();
            "captured"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/capture", listener.local_addr().unwrap());
    tokio::spawn(axum_receiver::serve(
        listener,
        app,
        Timeouts::default(),
        std::future::pending(),
    ));
    (url, receiver)
}

/// `send` signs exactly as Node's `crypto.createHmac('sha1', secret)` does: the
/// header it puts on the wire, for the body it puts on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_like_the_node_vectors_on_the_wire() {
    let (url, mut captured) = capture_server().await;
    let sender = Sender::new().unwrap();
    for vector in node_vectors() {
        let body = BASE64.decode(&vector.body_base64).unwrap();
        let secret = Secret::new(vector.secret.as_str()).unwrap();
        let outgoing = Outgoing::signed(&secret, body.clone());
        assert_eq!(
            outgoing.signature(),
            Some(vector.signature.as_str()),
            "{}",
            vector.name
        );

        let reply = sender.send(&url, &outgoing).await.unwrap();
        assert_eq!(reply.status(), 200, "{}", vector.name);
        let seen = captured.recv().await.unwrap();
        assert_eq!(seen.method, "POST", "{}", vector.name);
        assert_eq!(
            seen.signature.as_deref(),
            Some(vector.signature.as_str()),
            "{}",
            vector.name
        );
        assert_eq!(seen.content_type.as_deref(), Some("application/json"));
        assert_eq!(seen.body, body, "{}", vector.name);
    }
}

/// The `send` binary with `--body-file` sends the file byte for byte, signed as
/// Node signs it (binary, empty, large and pretty-printed bodies; Unicode
/// secrets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_binary_sends_body_files_verbatim_and_signed() {
    let (url, mut captured) = capture_server().await;
    let directory = TempDir::new("body-files");
    let vectors = node_vectors();
    let picked = vectors.iter().filter(|vector| {
        // (Some Unicode secrets hold a NUL, which no command line can: the
        // library test above covers those.)
        [
            "typical-secret/binary-body/21",
            "block-secret/empty-body/17",
            "unicode-secret/large-body/29",
            "unicode-secret/pretty-body/39",
        ]
        .contains(&vector.name.as_str())
    });
    let mut count = 0;
    for vector in picked {
        let body = BASE64.decode(&vector.body_base64).unwrap();
        let path = directory.file("body", &body);
        let output = run_send(&[
            "--url",
            &url,
            "--secret",
            &vector.secret,
            "--body-file",
            path.to_str().unwrap(),
        ])
        .await;
        assert_eq!(output.code(), 0, "{}: {output:?}", vector.name);
        let seen = captured.recv().await.unwrap();
        assert_eq!(
            seen.signature.as_deref(),
            Some(vector.signature.as_str()),
            "{}",
            vector.name
        );
        assert_eq!(seen.body, body, "{}", vector.name);
        assert!(!output.stdout.contains(&vector.secret), "{}", vector.name);
        count += 1;
    }
    assert_eq!(count, 4);
}

/// The exit codes: 0 for a 2xx, 1 for another status or no answer, 2 for usage
/// errors — a missing or empty secret among them. The secret is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_binary_exit_codes() {
    let mut receiver = Receiver::with_secret(Framework::Axum).await;
    let url = receiver.url("/webhook");
    let directory = TempDir::new("exit-codes");
    let lead_file = directory.file("lead.json", &lead("conv_from_file"));
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{address}/webhook")
    };

    // (arguments, secret in the environment, exit code, what stdout or stderr says)
    let lead_path = lead_file.to_str().unwrap();
    let cases: Vec<(Vec<&str>, Option<&str>, i32, &str)> = vec![
        (vec!["--url", &url], Some(SECRET), 0, "200 OK"),
        (vec!["--url", &url, "--secret", SECRET], None, 0, "200 OK"),
        (
            vec!["--url", &url, "--event", "conversations.end"],
            Some(SECRET),
            0,
            "200 OK",
        ),
        (
            vec!["--url", &url, "--body-file", lead_path],
            Some(SECRET),
            0,
            "200 OK",
        ),
        (
            vec!["--url", &url, "--bad-signature"],
            Some(SECRET),
            1,
            "401 Unauthorized",
        ),
        (
            vec!["--url", &url, "--bad-signature"],
            None,
            1,
            "401 Unauthorized",
        ),
        (
            vec!["--url", &url, "--unsigned"],
            None,
            1,
            "401 Unauthorized",
        ),
        (
            vec!["--url", &url, "--secret", "not-the-secret"],
            None,
            1,
            "signature mismatch",
        ),
        (
            vec!["--url", &url, "-X", "get"],
            Some(SECRET),
            1,
            "405 Method Not Allowed",
        ),
        (vec!["--url", &closed], Some(SECRET), 1, "error: request to"),
        (vec!["--url", &url], None, 2, SECRET_ENV_VAR),
        (vec!["--url", &url], Some(""), 2, SECRET_ENV_VAR),
        (
            vec!["--url", &url, "--secret", " padded"],
            None,
            2,
            "whitespace",
        ),
        (vec![], Some(SECRET), 2, "--url"),
        (
            vec!["--url", "ftp://127.0.0.1/webhook"],
            Some(SECRET),
            2,
            "http or https",
        ),
        (
            vec!["--url", &url, "--body-file", "/nonexistent/body.json"],
            Some(SECRET),
            2,
            "--body-file",
        ),
        (
            vec!["--url", &url, "--body-file", lead_path, "--event", "x.y"],
            Some(SECRET),
            2,
            "cannot be used with",
        ),
        (
            vec!["--url", &url, "--unsigned", "--bad-signature"],
            None,
            2,
            "cannot be used with",
        ),
    ];
    for (arguments, environment, code, says) in cases {
        let output = run_send_with_secret(&arguments, environment).await;
        let context =
            format!("send {arguments:?} with {SECRET_ENV_VAR}={environment:?}: {output:?}");
        assert_eq!(output.code(), code, "{context}");
        assert!(
            output.stdout.contains(says) || output.stderr.contains(says),
            "{context}"
        );
        assert!(
            !output.stdout.contains(SECRET) && !output.stderr.contains(SECRET),
            "{context}"
        );
    }

    // What the handler saw: the four accepted requests, the file's as it was.
    let seen = receiver.delivered.drain();
    let types: Vec<_> = seen.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "leads.submit",
            "leads.submit",
            "conversations.end",
            "leads.submit"
        ]
    );
    assert_eq!(seen[3].conversation_id.as_deref(), Some("conv_from_file"));
    assert_ne!(seen[0].conversation_id, seen[1].conversation_id);
    receiver.stop().await;
}

/// `send` reaches an https endpoint whose certificate authority is given with
/// `--cacert`, and refuses it without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_https_with_cacert() {
    let tls = TlsReceiver::start().await;
    let directory = TempDir::new("https");
    let ca_file = directory.file("ca.pem", tls.ca_pem.as_bytes());
    let mut delivered = tls.delivered;

    // The library, trusting only the test CA.
    let sender = Sender::with_ca_certificate(tls.ca_pem.as_bytes()).unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/webhook", tls.port);
        let outgoing = Outgoing::signed(&secret(), lead(&format!("conv_tls_{}", host.len())));
        let reply = patiently(&url, sender.send(&url, &outgoing)).await.unwrap();
        assert_eq!(reply.status(), 200, "{url}: {}", reply.text());
    }
    assert_eq!(delivered.drain().len(), 2);

    // The binary, with and without `--cacert`.
    let url = format!("https://localhost:{}/webhook", tls.port);
    let output = run_send(&[
        "--url",
        &url,
        "--secret",
        SECRET,
        "--cacert",
        ca_file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(output.code(), 0, "{output:?}");
    assert!(output.stdout.contains("200 OK"), "{output:?}");
    assert_eq!(delivered.drain().len(), 1);

    let output = run_send(&["--url", &url, "--secret", SECRET]).await;
    assert_eq!(output.code(), 1, "{output:?}");
    assert!(
        output.stderr.to_lowercase().contains("certificate"),
        "{output:?}"
    );
    assert!(delivered.drain().is_empty());

    // Over http, the TLS port is not spoken to in plain text.
    let output = run_send(&[
        "--url",
        &format!("http://127.0.0.1:{}/webhook", tls.port),
        "--secret",
        SECRET,
    ])
    .await;
    assert_ne!(output.code(), 0, "{output:?}");
}

/// The axum receiver served over TLS with a certificate for `localhost` and
/// `127.0.0.1`, signed by a CA made for the test.
struct TlsReceiver {
    port: u16,
    ca_pem: String,
    delivered: Delivered,
}

impl TlsReceiver {
    async fn start() -> Self {
        use hyper_util::rt::TokioIo;
        use hyper_util::service::TowerToHyperService;
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let (deliveries, delivered) = Deliveries::channel();
        let app = axum_receiver::router(Verifier::new(secret()), deliveries, Timeouts::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    // A client that does not trust the CA aborts the handshake.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Self {
            port,
            ca_pem: ca_cert.pem(),
            delivered,
        }
    }
}

// ---------------------------------------------------------------------------
// The binaries
// ---------------------------------------------------------------------------

/// A process's exit code and output.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

async fn run(mut command: Command) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = patiently("process", command.output()).await.unwrap();
    Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn run_send_with_secret(arguments: &[&str], secret: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_send"));
    command.args(arguments).env_remove(SECRET_ENV_VAR);
    if let Some(secret) = secret {
        command.env(SECRET_ENV_VAR, secret);
    }
    run(command).await
}

async fn run_send(arguments: &[&str]) -> Output {
    run_send_with_secret(arguments, None).await
}

/// Without a usable secret the receivers do not start: a non-zero exit and one
/// line on standard error naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_binaries_refuse_to_start_without_a_secret() {
    for framework in FRAMEWORKS {
        for value in [None, Some(""), Some(" padded ")] {
            let mut command = Command::new(framework.binary());
            command
                .env_remove(SECRET_ENV_VAR)
                .env_remove("CHATBASE_WEBHOOK_PREVIOUS_SECRET")
                .env("PORT", "0");
            if let Some(value) = value {
                command.env(SECRET_ENV_VAR, value);
            }
            let output = run(command).await;
            let context = format!("{framework:?} with {value:?}: {output:?}");
            assert!(!output.status.success(), "{context}");
            assert_eq!(output.stderr.lines().count(), 1, "{context}");
            assert!(output.stderr.contains(SECRET_ENV_VAR), "{context}");
            assert!(output.stdout.is_empty(), "{context}");
        }
    }
}

/// A receiver binary running: its standard output read line by line.
struct RunningBinary {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl RunningBinary {
    fn start(framework: Framework) -> Self {
        let mut child = Command::new(framework.binary())
            .env(SECRET_ENV_VAR, SECRET)
            .env("CHATBASE_WEBHOOK_PREVIOUS_SECRET", PREVIOUS_SECRET)
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`, and returns it.
    async fn wait_for(&mut self, text: &str) -> String {
        loop {
            let line = patiently(text, self.lines.recv())
                .await
                .unwrap_or_else(|| panic!("output ended before {text:?}: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    /// The address from the "listening on http://..." line.
    async fn address(&mut self) -> SocketAddr {
        let line = self.wait_for("listening on http://").await;
        let rest = line.split("listening on http://").nth(1).unwrap();
        rest.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Sends `signal` (`"TERM"`, `"INT"`) with `kill`.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit, then collects the rest of the output.
    async fn exit_status(&mut self) -> ExitStatus {
        let status = patiently("exit", self.child.wait()).await.unwrap();
        while let Some(line) = patiently("output", self.lines.recv()).await {
            self.seen.push(line);
        }
        status
    }
}

/// The binaries serve, log one line per event without customer data, and on
/// `SIGTERM` finish the request in flight before exiting with 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_binaries_serve_log_and_shut_down_gracefully() {
    for framework in FRAMEWORKS {
        let mut binary = RunningBinary::start(framework);
        let address = binary.address().await;

        let conversation_id = send::new_conversation_id();
        let reply = send(
            &format!("http://{address}/webhook"),
            &Outgoing::signed(&secret(), lead(&conversation_id)),
        )
        .await;
        assert_eq!(reply.status(), 200, "{framework:?}: {}", reply.text());
        let logged = binary.wait_for("Chatbase event received").await;
        assert!(logged.contains("INFO"), "{logged}");
        assert!(logged.contains("leads.submit"), "{logged}");
        assert!(logged.contains("bot_e2e"), "{logged}");
        assert!(logged.contains(&conversation_id), "{logged}");

        // During a rotation, `CHATBASE_WEBHOOK_PREVIOUS_SECRET` is accepted too,
        // and nothing else is.
        let url = format!("http://{address}/webhook");
        let previous = Secret::new(PREVIOUS_SECRET).unwrap();
        let reply = send(&url, &Outgoing::signed(&previous, lead("conv_rotation"))).await;
        assert_eq!(reply.status(), 200, "{framework:?}: {}", reply.text());
        let retired = Secret::new("e2e-retired-secret").unwrap();
        let reply = send(&url, &Outgoing::signed(&retired, lead("conv_retired"))).await;
        assert_eq!(reply.status(), 401, "{framework:?}: {}", reply.text());

        // A request in flight when SIGTERM arrives: its head and half its body.
        let in_flight = send::new_conversation_id();
        let body = lead(&in_flight);
        let (first, second) = body.split_at(body.len() / 2);
        let mut stream = TcpStream::connect(address).await.unwrap();
        let head = format!(
            "POST /scoped/webhook HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {}\r\n\
             content-length: {}\r\n\r\n",
            sign(&secret(), &body),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(first).await.unwrap();

        binary.signal("TERM");
        binary
            .wait_for("SIGTERM received: shutting down gracefully")
            .await;
        // The server is shutting down: the rest of the body still gets its answer.
        stream.write_all(second).await.unwrap();
        assert_eq!(read_status(&mut stream).await, 200, "{framework:?}");
        drop(stream);

        let status = binary.exit_status().await;
        assert!(
            status.success(),
            "{framework:?}: {status:?} {:#?}",
            binary.seen
        );
        let log = binary.seen.join("\n");
        assert!(log.contains(&in_flight), "{log}");
        assert!(
            log.contains("conv_rotation") && !log.contains("conv_retired"),
            "{log}"
        );
        for private in [
            "ada@example.com",
            "Ada Lovelace",
            "+1 555 0100",
            SECRET,
            PREVIOUS_SECRET,
        ] {
            assert!(
                !log.contains(private),
                "{framework:?} logged {private:?}:\n{log}"
            );
        }
        // No new connection is accepted any more.
        assert!(TcpStream::connect(address).await.is_err(), "{framework:?}");
    }
}

/// Ctrl-C (`SIGINT`) shuts the binaries down gracefully too, with status 0
/// (actix-web's own handler would stop at once on `SIGINT`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_binaries_stop_gracefully_on_ctrl_c() {
    for framework in FRAMEWORKS {
        let mut binary = RunningBinary::start(framework);
        binary.address().await;
        binary.signal("INT");
        binary
            .wait_for("Ctrl-C received: shutting down gracefully")
            .await;
        let status = binary.exit_status().await;
        assert!(
            status.success(),
            "{framework:?}: {status:?} {:#?}",
            binary.seen
        );
    }
}

/// `cargo run -p examples --bin demo`: exits 0 and prints the three rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_binary_shows_three_rows_and_exits_0() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demo"));
    command.env_remove("RUST_LOG");
    let output = run(command).await;
    assert!(output.status.success(), "{output:?}");
    let rows: Vec<&str> = output
        .stdout
        .lines()
        .filter(|line| {
            [
                "signed with the secret",
                "tampered after signing",
                "no signature",
            ]
            .iter()
            .any(|label| line.trim_start().starts_with(label))
        })
        .collect();
    assert_eq!(rows.len(), 3, "{}", output.stdout);
    assert!(
        rows[0].contains("200 OK") && rows[0].contains("leads.submit, conversation conv_"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("401 signature mismatch") && rows[1].ends_with("nothing"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].contains("401 missing") && rows[2].ends_with("nothing"),
        "{}",
        rows[2]
    );
    assert!(!output.stdout.contains("UNEXPECTED"), "{}", output.stdout);
    assert!(
        output
            .stdout
            .contains("As expected: only the correctly signed request"),
        "{}",
        output.stdout
    );
}

// ---------------------------------------------------------------------------

/// A directory of files for one test, removed at the end.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "examples-e2e-{name}-{}-{}",
            std::process::id(),
            send::new_conversation_id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
