//! What the tests share: the receivers under test, their log lines, requests
//! over `harness::send` and over raw sockets, and bounded waits.

use std::process::{ExitStatus, Stdio};

use bytes::Bytes;
use chatbase_core::testing::conformance::Seen;
use chatbase_core::{
    PREVIOUS_SECRET_ENV_VAR, REJECTION_LOG_TARGET, SECRET_ENV_VAR, SIGNATURE_HEADER, Secret, sign,
};
use harness::examples::{PATIENCE, Running};
use harness::send::{self, Outgoing, Reply, Sender};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::Command;

/// The secret the receivers run with.
pub const SECRET: &str = "e2e-test-secret";

/// The retiring secret the reference receivers also accept, as during a
/// rotation.
pub const PREVIOUS_SECRET: &str = "e2e-previous-secret";

/// The `chatbotId` of the leads sent by [`lead`].
pub const CHATBOT_ID: &str = "bot_e2e";

/// Customer details in the bodies sent ([`lead`], the conformance matrix, a
/// tampered lead): no output of any binary may show them.
pub const CUSTOMER_DATA: [&str; 6] = [
    "ada@example.com",
    "Ada Lovelace",
    "+1 555 0100",
    "jo@acme.io",
    "jo@evil.io",
    send::TAMPERED_EMAIL,
];

/// What the reference receivers log for each delivered event.
pub const DELIVERY_LINE: &str = "Chatbase event received";

/// The secret the receivers run with.
pub fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

/// The retiring secret.
pub fn previous_secret() -> Secret {
    Secret::new(PREVIOUS_SECRET).unwrap()
}

/// A realistic `leads.submit` from [`CHATBOT_ID`] for `conversation_id`, with
/// Ada Lovelace's email and phone.
pub fn lead(conversation_id: &str) -> Bytes {
    send::lead_body(CHATBOT_ID, conversation_id)
}

/// `future`, or a panic naming `what` after [`PATIENCE`].
pub async fn patiently<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {PATIENCE:?}"))
}

/// Asserts that `text` shows no customer data and neither secret.
pub fn assert_no_private_data(text: &str, context: &str) {
    for private in CUSTOMER_DATA.iter().chain(&[SECRET, PREVIOUS_SECRET]) {
        assert!(
            !text.contains(private),
            "{context}: shows {private:?}:\n{text}"
        );
    }
}

/// Asserts a JSON `{"message": "..."}` rejection with `status`.
pub fn assert_json_rejection(reply: &Reply, status: u16, context: &str) {
    assert_eq!(reply.status(), status, "{context}: {}", reply.text());
    let content_type = reply
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok());
    assert_eq!(content_type, Some("application/json"), "{context}");
    assert!(
        reply.message().is_some_and(|message| !message.is_empty()),
        "{context}: {}",
        reply.text()
    );
}

// ---------------------------------------------------------------------------
// The receivers
// ---------------------------------------------------------------------------

/// The two reference receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    Axum,
    Actix,
}

impl Reference {
    /// Both, for tests that run the same checks on each.
    pub const BOTH: [Self; 2] = [Self::Axum, Self::Actix];

    /// Its binary (and package) name.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Axum => "axum-receiver",
            Self::Actix => "actix-receiver",
        }
    }

    /// The largest request head it reads: 64 KiB set by the axum receiver,
    /// 128 KiB fixed by actix-http.
    pub fn max_head_bytes(self) -> usize {
        match self {
            Self::Axum => 64 * 1024,
            Self::Actix => 128 * 1024,
        }
    }
}

/// The routes of the reference receivers: through the extractor, and behind
/// the layer / middleware.
pub const ROUTES: [&str; 2] = ["/webhook", "/scoped/webhook"];

/// One log line that says what became of a request.
#[derive(Debug, Clone)]
pub enum Logged {
    /// The handler's line for a delivered event.
    Delivered(Delivery),
    /// A `WARN` line under `chatbase::rejection`.
    Rejected {
        /// Its `status=` field.
        status: u16,
        /// The whole line.
        line: String,
    },
}

/// A handler's line for a delivered event, and its fields.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub line: String,
    pub event_type: Option<String>,
    pub chatbot_id: Option<String>,
    pub conversation_id: Option<String>,
}

impl Delivery {
    /// What the handler received, as the conformance check takes it: `"-"` is
    /// how the receivers log a missing chatbot id.
    pub fn seen(&self) -> Seen {
        Seen {
            event_type: self.event_type.clone().unwrap_or_default(),
            chatbot_id: self.chatbot_id.clone().filter(|id| id != "-"),
            raw_body: None,
        }
    }
}

/// The value of `key=` in a tracing line: `key="quoted"` or `key=bare`.
pub fn field(line: &str, key: &str) -> Option<String> {
    let pattern = format!(" {key}=");
    let start = line.find(&pattern)? + pattern.len();
    let rest = line.get(start..)?;
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split_whitespace().next()?,
    };
    Some(value.to_owned())
}

/// An example binary running, its log read in order: every line is returned
/// once by [`Server::next_line`] and the waits built on it.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    delivery_line: &'static str,
    running: Running,
    /// The index, in everything read so far, of the next line to return.
    cursor: usize,
    sender: Sender,
}

impl Server {
    /// Starts the example binary `name` with `env`; `delivery_line` is what its
    /// handler logs for each event.
    pub async fn start(
        name: &'static str,
        env: &[(&str, &str)],
        delivery_line: &'static str,
    ) -> Self {
        let running = Running::start(name, env)
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        Self {
            name,
            delivery_line,
            running,
            cursor: 0,
            sender: Sender::new().unwrap(),
        }
    }

    /// A reference receiver with [`SECRET`], and [`PREVIOUS_SECRET`] as the
    /// retiring one.
    pub async fn reference(reference: Reference) -> Self {
        Self::start(
            reference.binary(),
            &[
                (SECRET_ENV_VAR, SECRET),
                (PREVIOUS_SECRET_ENV_VAR, PREVIOUS_SECRET),
            ],
            DELIVERY_LINE,
        )
        .await
    }

    /// Its binary's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `http://<address><path>`.
    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// Sends `outgoing` to `path` and reads the reply.
    pub async fn send(&self, path: &str, outgoing: &Outgoing) -> Reply {
        let url = self.url(path);
        patiently(&url, self.sender.send(&url, outgoing))
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.name))
    }

    /// A new raw connection to it.
    pub async fn connect(&self) -> Connection {
        let stream = patiently("connect", TcpStream::connect(self.running.address()))
            .await
            .unwrap_or_else(|error| panic!("{}: connect: {error}", self.name));
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        Connection {
            reader,
            writer: Some(writer),
            buffered: Vec::new(),
        }
    }

    /// Whether a new connection is refused.
    pub async fn refuses_connections(&self) -> bool {
        TcpStream::connect(self.running.address()).await.is_err()
    }

    /// The next line of its output: fails if the output ends or nothing comes
    /// within [`PATIENCE`].
    pub async fn next_line(&mut self) -> String {
        if let Some(line) = self.running.lines().get(self.cursor) {
            self.cursor += 1;
            return line.clone();
        }
        // Everything read so far has been returned: the next line read is the
        // next one to return.
        let line = self
            .running
            .wait_for("")
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.name));
        self.cursor += 1;
        line
    }

    /// The next line containing `text`.
    pub async fn wait_for(&mut self, text: &str) -> String {
        loop {
            let line = self.next_line().await;
            if line.contains(text) {
                return line;
            }
        }
    }

    /// The next line saying what became of a request: its handler's line, or a
    /// rejection.
    pub async fn next_outcome(&mut self) -> Logged {
        loop {
            let line = self.next_line().await;
            if line.contains(REJECTION_LOG_TARGET) {
                assert!(line.contains(" WARN "), "{}: {line}", self.name);
                let status = field(&line, "status")
                    .and_then(|status| status.parse().ok())
                    .unwrap_or_else(|| panic!("{}: no status in {line:?}", self.name));
                return Logged::Rejected { status, line };
            }
            if line.contains(self.delivery_line) {
                assert!(line.contains(" INFO "), "{}: {line}", self.name);
                return Logged::Delivered(Delivery {
                    event_type: field(&line, "event_type"),
                    chatbot_id: field(&line, "chatbot_id"),
                    conversation_id: field(&line, "conversation_id"),
                    line,
                });
            }
        }
    }

    /// The next outcome, which must be a delivery.
    pub async fn next_delivery(&mut self, context: &str) -> Delivery {
        match self.next_outcome().await {
            Logged::Delivered(delivery) => delivery,
            other => panic!(
                "{} {context}: expected a delivery, got {other:?}",
                self.name
            ),
        }
    }

    /// The next outcome, which must be a rejection logged with `status`.
    pub async fn next_rejection(&mut self, status: u16, context: &str) -> String {
        match self.next_outcome().await {
            Logged::Rejected {
                status: logged,
                line,
            } if logged == status => line,
            other => panic!(
                "{} {context}: expected a rejection with {status}, got {other:?}",
                self.name
            ),
        }
    }

    /// Every line read so far (without waiting), one per line.
    pub fn log(&mut self) -> String {
        self.running.lines().join("\n")
    }

    /// Sends `signal` (`"TERM"`, `"INT"`) to it.
    pub fn signal(&self, signal: &str) {
        self.running
            .signal(signal)
            .unwrap_or_else(|error| panic!("{}: {error}", self.name));
    }

    /// Waits for it to exit, and reads the rest of its output.
    pub async fn exit_status(&mut self) -> ExitStatus {
        self.running
            .exit_status()
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.name))
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1
// ---------------------------------------------------------------------------

/// The head of a POST to `path` announcing `content_length` bytes, with this
/// signature (none: no header) and `extra` header lines (each ending `\r\n`).
pub fn post_head(
    path: &str,
    content_length: usize,
    signature: Option<&str>,
    extra: &str,
) -> String {
    let signature = signature
        .map(|value| format!("{SIGNATURE_HEADER}: {value}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         {signature}{extra}content-length: {content_length}\r\n\r\n"
    )
}

/// A whole POST of `body` to `path`, correctly signed.
pub fn signed_post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = post_head(path, body.len(), Some(&sign(&secret(), body)), "").into_bytes();
    request.extend_from_slice(body);
    request
}

/// A response read from a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A raw TCP connection, for what a well-behaved client would not send.
#[derive(Debug)]
pub struct Connection {
    reader: OwnedReadHalf,
    writer: Option<OwnedWriteHalf>,
    /// Read, not yet consumed.
    buffered: Vec<u8>,
}

impl Connection {
    /// Writes `bytes`. An error (the server closed) is returned, not a panic.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let writer = self.writer.as_mut().expect("the writer was taken");
        patiently("write", writer.write_all(bytes)).await
    }

    /// The writing half, to write from another task while this one reads.
    pub fn take_writer(&mut self) -> OwnedWriteHalf {
        self.writer.take().expect("the writer was taken")
    }

    /// Reads more: the number of bytes, 0 at the end (an end of file or a reset).
    async fn fill(&mut self) -> usize {
        let mut buffer = [0; 8192];
        match patiently("read", self.reader.read(&mut buffer)).await {
            Ok(n) => {
                self.buffered.extend_from_slice(&buffer[..n]);
                n
            }
            Err(_) => 0,
        }
    }

    /// Reads one response: an interim one (`100 Continue`) counts as one.
    /// Panics if the connection ends first.
    pub async fn response(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(at) = self.buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let seen = String::from_utf8_lossy(&self.buffered).into_owned();
            assert_ne!(self.fill().await, 0, "closed before a response: {seen:?}");
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).into_owned();
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
            .collect();
        self.buffered.drain(..head_end);
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return response;
        }
        match response.header("content-length") {
            Some(length) => {
                let length: usize = length.parse().unwrap();
                while self.buffered.len() < length {
                    assert_ne!(self.fill().await, 0, "closed mid-body: {response:?}");
                }
                response.body = self.buffered.drain(..length).collect();
            }
            None => {
                assert!(
                    response.header("transfer-encoding").is_none(),
                    "chunked responses are not read here: {response:?}"
                );
                response.body = self.until_closed().await;
            }
        }
        response
    }

    /// Reads until the server closes the connection (an end of file or a
    /// reset), and returns what came that was not read yet.
    pub async fn until_closed(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buffered)
    }
}

// ---------------------------------------------------------------------------
// Processes run to their end
// ---------------------------------------------------------------------------

/// A process's exit status and output.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end, without input.
pub async fn run(mut command: Command) -> Output {
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
