//! Over a real socket: a client still sending a body far over the limit gets
//! the 413, whether it reads while sending or only once it has sent it all.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use chatbase_actix::{Error, VerifyChatbase, method_not_allowed};

use crate::support::{
    EXTRACTOR_PATH, FRAMINGS, Framing, Hits, MIDDLEWARE_PATH, on_event, rejection_message, verifier,
};

/// 1 GiB: what the client announces, or at most sends.
const HUGE: usize = 1024 * 1024 * 1024;

fn request_head(path: &str, framing: Framing, content_length: usize, close: bool) -> String {
    let framing_header = match framing {
        Framing::Announced => format!("content-length: {content_length}"),
        Framing::Chunked => "transfer-encoding: chunked".to_owned(),
    };
    let connection = if close { "connection: close\r\n" } else { "" };
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nx-chatbase-signature: {}\r\n\
         content-type: application/json\r\n{connection}{framing_header}\r\n\r\n",
        "0".repeat(40)
    )
}

/// Sends a body far over the limit, and reads the response while still sending:
/// `Announced`, a `Content-Length` of 1 GiB, refused from the head; `Chunked`,
/// never ending, refused once past the limit.
/// Returns the response and how many body bytes were sent when it arrived.
fn send_while_reading(addr: SocketAddr, path: &str, framing: Framing) -> (String, usize) {
    let mut stream = TcpStream::connect(addr).unwrap();
    // A guard against a hang if no response ever comes, not a timing assertion.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(request_head(path, framing, HUGE, false).as_bytes())
        .unwrap();

    let answered = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let reader = {
        let mut stream = stream.try_clone().unwrap();
        let answered = Arc::clone(&answered);
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || {
            let response = read_response(&mut stream);
            let sent_then = sent.load(Ordering::SeqCst);
            answered.store(true, Ordering::SeqCst);
            (response, sent_then)
        })
    };

    let chunk = vec![b'x'; 64 * 1024];
    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
    frame.extend_from_slice(&chunk);
    frame.extend_from_slice(b"\r\n");
    while !answered.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < HUGE {
        let written = match framing {
            Framing::Announced => stream.write_all(&chunk),
            Framing::Chunked => stream.write_all(&frame),
        };
        if written.is_err() {
            break;
        }
        sent.fetch_add(chunk.len(), Ordering::SeqCst);
    }
    reader.join().unwrap()
}

/// Sends the whole of a 64 MiB body (more than loopback socket buffers hold),
/// then reads the response, as a simple client does: it only gets the 413 if
/// the server keeps reading what it sends after answering, instead of resetting
/// the connection.
fn send_then_read(addr: SocketAddr, path: &str, framing: Framing) -> io::Result<String> {
    const TOTAL: usize = 64 * 1024 * 1024;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut request = request_head(path, framing, TOTAL, true).into_bytes();
    match framing {
        Framing::Announced => request.resize(request.len() + TOTAL, b'x'),
        Framing::Chunked => {
            let chunk = 64 * 1024;
            for _ in 0..TOTAL / chunk {
                request.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
                request.resize(request.len() + chunk, b'x');
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
        }
    }
    stream.write_all(&request)?;
    Ok(read_response(&mut stream))
}

/// Reads one response: the head, then a body of its `Content-Length`.
fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |value| value.trim().parse().unwrap());
            if received.len() >= end + 4 + length {
                return String::from_utf8_lossy(&received).into_owned();
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) => panic!(
                "reading the response failed after {:?}: {error}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

/// Checks that `response` is the JSON 413.
fn assert_413(response: &str, context: &str) {
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "{context}: {response:?}"
    );
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        rejection_message(body.as_bytes()),
        Error::BodyTooLarge { limit: 0 }.client_message(),
        "{context}"
    );
}

#[actix_web::test]
async fn a_413_reaches_a_client_still_sending_over_tcp() {
    let server = HttpServer::new(|| {
        App::new()
            .app_data(web::Data::new(Hits::default()))
            .app_data(web::Data::new(verifier()))
            .service(
                web::resource(EXTRACTOR_PATH)
                    .route(web::post().to(on_event))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::scope("/chatbase")
                    .wrap(VerifyChatbase::new(verifier()))
                    .route("/event", web::post().to(on_event)),
            )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    for path in [EXTRACTOR_PATH, MIDDLEWARE_PATH] {
        for framing in FRAMINGS {
            let context = format!("{path}, {framing:?}");
            let (response, sent) = actix_web::rt::task::spawn_blocking(move || {
                send_while_reading(addr, path, framing)
            })
            .await
            .unwrap();
            assert_413(&response, &context);
            // The client had not finished: the 1 GiB body was still being sent.
            assert!(sent < HUGE, "{context}: sent {sent}");

            let response =
                actix_web::rt::task::spawn_blocking(move || send_then_read(addr, path, framing))
                    .await
                    .unwrap()
                    .unwrap_or_else(|error| panic!("{context}, sent then read: {error}"));
            assert_413(&response, &format!("{context}, sent then read"));
        }
    }
    handle.stop(true).await;
}
