//! Over real TCP, with `axum::serve`: a client still sending its body receives
//! the rejection (413, or an early 401) rather than a reset connection, and the
//! connection goes on serving. Without the drain of a rejected body, these
//! fail: closing a socket with unread data resets it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use chatbase_axum::{SIGNATURE_HEADER, Verifier};
use chatbase_core::sign;
use chatbase_core::testing::SAMPLE_LEADS_SUBMIT;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{AppState, Framing, SECRET, TARGETS, Target, app, init_logging, secret};

/// The limit of the servers below: the default, 1 MiB. The drain budget is four
/// times that; the bodies sent are larger than what the kernel's socket buffers
/// would absorb without the server reading.
const SERVED_LIMIT: usize = chatbase_axum::DEFAULT_BODY_LIMIT;
/// What the clients send when over the limit: 3 MiB, within the drain budget.
const OVERSIZED: usize = 3 * 1024 * 1024;
/// How long a whole exchange may take before the test is failed rather than
/// left hanging. Not a performance bound: it takes milliseconds.
const GUARD: Duration = Duration::from_secs(60);

/// Serves `target`'s application on a loopback port; returns its address, its
/// state and its webhook's path.
async fn serve(target: Target) -> (SocketAddr, AppState, &'static str) {
    init_logging();
    let app = app(
        target,
        Verifier::new(secret(SECRET)).with_body_limit(SERVED_LIMIT),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.router).await.unwrap() });
    (addr, app.state, app.path)
}

/// An HTTP/1.1 response as read off the socket.
#[derive(Debug)]
struct RawResponse {
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn status_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    fn assert_rejected(&self, status: &str) {
        assert!(
            self.status_line()
                .starts_with(&format!("HTTP/1.1 {status}")),
            "{}",
            self.head
        );
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            self.head
        );
        let body: Value = serde_json::from_slice(&self.body).unwrap();
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
}

/// Reads one response with a `Content-Length` body.
async fn read_response(reader: &mut (impl AsyncRead + Unpin)) -> io::Result<RawResponse> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("the response has a Content-Length");
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(RawResponse { head, body })
}

/// Sends a POST whose head is `signature` and whose body is `len` bytes framed
/// as `framing`, writing the body in 16 KiB pieces while it reads the response
/// at the same time. Returns whether the whole request could be written, the
/// response read, and the connection if it is still whole.
async fn send_while_reading(
    stream: TcpStream,
    path: &str,
    signature: Option<&str>,
    framing: Framing,
    len: usize,
) -> (io::Result<()>, io::Result<RawResponse>, Option<TcpStream>) {
    let (mut reader, mut writer) = stream.into_split();
    let mut head =
        format!("POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n");
    if let Some(signature) = signature {
        head.push_str(&format!("{SIGNATURE_HEADER}: {signature}\r\n"));
    }
    match framing {
        Framing::ContentLength => head.push_str(&format!("content-length: {len}\r\n\r\n")),
        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n\r\n"),
    }
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let piece = vec![b' '; 16 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(piece.len());
            match framing {
                Framing::ContentLength => writer.write_all(&piece[..n]).await?,
                Framing::Chunked => {
                    writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                    writer.write_all(&piece[..n]).await?;
                    writer.write_all(b"\r\n").await?;
                }
            }
            left -= n;
        }
        if let Framing::Chunked = framing {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        writer.flush().await?;
        Ok::<_, io::Error>(writer)
    });
    let response = read_response(&mut reader).await;
    match writing.await.unwrap() {
        Ok(writer) => (Ok(()), response, Some(reader.reunite(writer).unwrap())),
        Err(error) => (Err(error), response, None),
    }
}

/// After a rejection, the same connection serves a valid webhook: the rejected
/// body was drained, not left to break the connection.
async fn assert_connection_still_serves(stream: TcpStream, path: &str) {
    let (mut reader, mut writer) = stream.into_split();
    let signature = sign(&secret(SECRET), SAMPLE_LEADS_SUBMIT.as_bytes());
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {signature}\r\n\
         content-length: {}\r\n\r\n{SAMPLE_LEADS_SUBMIT}",
        SAMPLE_LEADS_SUBMIT.len()
    );
    writer.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut reader).await.unwrap();
    assert!(
        response.status_line().starts_with("HTTP/1.1 200"),
        "{}",
        response.head
    );
}

async fn over_limit_reaches_a_client_still_sending(target: Target, framing: Framing) {
    let (addr, state, path) = serve(target).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let signature = "0".repeat(40);
    let exchange = send_while_reading(stream, path, Some(&signature), framing, OVERSIZED);
    let (written, response, stream) = tokio::time::timeout(GUARD, exchange).await.unwrap();
    let context = format!("{target:?}, {framing:?}");
    let response = response.unwrap_or_else(|e| panic!("{context}: no response: {e}"));
    response.assert_rejected("413");
    written.unwrap_or_else(|e| panic!("{context}: the client could not send its body: {e}"));
    let stream = stream.unwrap();
    tokio::time::timeout(GUARD, assert_connection_still_serves(stream, path))
        .await
        .unwrap();
    assert_eq!(
        state.hits(),
        1,
        "{context}: only the valid request is handled"
    );
}

#[tokio::test]
async fn over_limit_content_length_reaches_the_client_extractor() {
    over_limit_reaches_a_client_still_sending(Target::VerifierState, Framing::ContentLength).await;
}

#[tokio::test]
async fn over_limit_content_length_reaches_the_client_layer() {
    over_limit_reaches_a_client_still_sending(Target::Layer, Framing::ContentLength).await;
}

#[tokio::test]
async fn chunked_body_past_the_limit_reaches_the_client_extractor() {
    over_limit_reaches_a_client_still_sending(Target::VerifierState, Framing::Chunked).await;
}

#[tokio::test]
async fn chunked_body_past_the_limit_reaches_the_client_layer() {
    over_limit_reaches_a_client_still_sending(Target::Layer, Framing::Chunked).await;
}

#[tokio::test]
async fn missing_signature_reaches_a_client_still_sending() {
    for target in TARGETS {
        let (addr, state, path) = serve(target).await;
        for framing in [Framing::ContentLength, Framing::Chunked] {
            let stream = TcpStream::connect(addr).await.unwrap();
            // Within the limit: a 401 that comes before any of it is read.
            let exchange = send_while_reading(stream, path, None, framing, 768 * 1024);
            let (written, response, _) = tokio::time::timeout(GUARD, exchange).await.unwrap();
            let context = format!("{target:?}, {framing:?}");
            response
                .unwrap_or_else(|e| panic!("{context}: no response: {e}"))
                .assert_rejected("401");
            written
                .unwrap_or_else(|e| panic!("{context}: the client could not send its body: {e}"));
        }
        assert_eq!(state.hits(), 0);
    }
}

#[tokio::test]
async fn a_client_waiting_for_100_continue_gets_the_413_without_sending() {
    for target in [Target::VerifierState, Target::Layer] {
        let (addr, state, path) = serve(target).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {}\r\n\
             expect: 100-continue\r\ncontent-length: {OVERSIZED}\r\n\r\n",
            "0".repeat(40)
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let response = tokio::time::timeout(GUARD, read_response(&mut stream))
            .await
            .unwrap()
            .unwrap();
        // The final status straight away, not `100 Continue` inviting the body.
        response.assert_rejected("413");
        assert_eq!(state.hits(), 0, "{target:?}");
    }
}

#[tokio::test]
async fn an_endless_body_is_cut_off() {
    // The drain is bounded: a client that never stops sending is disconnected
    // after at most four times the limit (plus what the socket buffers hold).
    let (addr, _, path) = serve(Target::VerifierState).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (_reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\n{SIGNATURE_HEADER}: {}\r\n\
         transfer-encoding: chunked\r\n\r\n",
        "0".repeat(40)
    );
    let sending = async move {
        writer.write_all(head.as_bytes()).await?;
        let piece = vec![b' '; 64 * 1024];
        let mut sent = 0_usize;
        // 256 MiB: far more than the budget and any socket buffer.
        while sent < 256 * 1024 * 1024 {
            writer
                .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await?;
            writer.write_all(&piece).await?;
            writer.write_all(b"\r\n").await?;
            sent += piece.len();
        }
        Ok::<usize, io::Error>(sent)
    };
    let result = tokio::time::timeout(GUARD, sending).await.unwrap();
    assert!(
        result.is_err(),
        "the server read {result:?} bytes of a rejected body"
    );
}
