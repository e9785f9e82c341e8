//! What the tests share: the receivers under test, their log lines, requests
//! over `harness::send` and over raw sockets, and bounded waits; receivers
//! with an inbox, deliveries under load, metrics scraped, PostgreSQL
//! databases and clusters.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chatbase_axum::inbox::DUPLICATE_HEADER;
use chatbase_core::observe::REQUESTS_TOTAL;
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

// ---------------------------------------------------------------------------
// Receivers with a durable inbox
// ---------------------------------------------------------------------------

/// The variable that gives the reference receivers an inbox.
pub const INBOX_ENV_VAR: &str = "CHATBASE_INBOX";

/// The variable that makes the reference receivers serve their metrics.
pub const METRICS_PORT_ENV_VAR: &str = "METRICS_PORT";

/// What the reference receivers' worker logs for each processed delivery.
pub const PROCESSED_LINE: &str = "event processed";

/// How many deliveries the reference receivers' worker processes at once
/// (chatbase-inbox's default, which they keep).
pub const WORKER_CONCURRENCY: usize = 16;

impl Server {
    /// A reference receiver with [`SECRET`] (and [`PREVIOUS_SECRET`]) and `env`
    /// on top; with [`INBOX_ENV_VAR`] in `env` its deliveries are its worker's
    /// [`PROCESSED_LINE`]s, otherwise its handler's [`DELIVERY_LINE`]s.
    pub async fn reference_with(reference: Reference, env: &[(&str, &str)]) -> Self {
        let mut all = vec![
            (SECRET_ENV_VAR, SECRET),
            (PREVIOUS_SECRET_ENV_VAR, PREVIOUS_SECRET),
        ];
        all.extend_from_slice(env);
        let delivery_line = if env.iter().any(|(key, _)| *key == INBOX_ENV_VAR) {
            PROCESSED_LINE
        } else {
            DELIVERY_LINE
        };
        Self::start(reference.binary(), &all, delivery_line).await
    }

    /// Kills it with `SIGKILL`, waits for it to die, and reads the rest of its
    /// output.
    pub async fn kill(&mut self) {
        self.signal("KILL");
        let status = self.exit_status().await;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{}: {status:?}",
            self.name
        );
    }

    /// Stops it with `SIGTERM` and checks that it exits 0; returns its whole
    /// output.
    pub async fn stop(&mut self) -> String {
        self.signal("TERM");
        let status = self.exit_status().await;
        let log = self.log();
        assert!(status.success(), "{}: {status:?}\n{log}", self.name);
        log
    }
}

/// One [`PROCESSED_LINE`] of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// Its `conversation_id=`.
    pub conversation_id: String,
    /// Its `attempt=`.
    pub attempt: u32,
}

/// The [`PROCESSED_LINE`]s of `log`, in order.
pub fn processed(log: &str) -> Vec<Processed> {
    log.lines()
        .filter(|line| line.contains(PROCESSED_LINE))
        .map(|line| {
            assert!(line.contains(" INFO "), "{line}");
            Processed {
                conversation_id: field(line, "conversation_id")
                    .unwrap_or_else(|| panic!("no conversation_id in {line:?}")),
                attempt: field(line, "attempt")
                    .and_then(|attempt| attempt.parse().ok())
                    .unwrap_or_else(|| panic!("no attempt in {line:?}")),
            }
        })
        .collect()
}

/// How many times each conversation was processed, over `logs`.
pub fn times_processed<'a>(logs: impl IntoIterator<Item = &'a str>) -> HashMap<String, usize> {
    let mut times = HashMap::new();
    for log in logs {
        for line in processed(log) {
            *times.entry(line.conversation_id).or_insert(0) += 1;
        }
    }
    times
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("chatbase-e2e-")
        .tempdir()
        .unwrap()
}

/// `sqlite://<dir>/inbox.db`.
pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("inbox.db").display())
}

/// Polls `check` until it answers true; fails naming `what` after
/// [`PATIENCE`].
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    patiently(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
}

/// A port no one listens on now, for a server to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------
// Deliveries under load
// ---------------------------------------------------------------------------

/// What a delivery was answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Whether it came with `x-chatbase-duplicate: true`.
    pub duplicate: bool,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Answer {
    /// What `reply` says.
    pub fn of(reply: &Reply) -> Self {
        let header = |name: &str| {
            reply
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            status: reply.status().as_u16(),
            duplicate: header(DUPLICATE_HEADER).as_deref() == Some("true"),
            retry_after: header("retry-after"),
            body: reply.text().into_owned(),
        }
    }

    /// A 200 that is not a duplicate: a delivery stored by this request.
    pub fn stored(&self) -> bool {
        self.status == 200 && !self.duplicate
    }

    /// A 503 with a `Retry-After` of a whole number of seconds, and a JSON
    /// message: an inbox that could not store.
    pub fn is_unavailable(&self) -> bool {
        self.status == 503
            && self
                .retry_after
                .as_deref()
                .is_some_and(|seconds| seconds.parse::<u64>().is_ok_and(|s| s > 0))
            && serde_json::from_str::<serde_json::Value>(&self.body)
                .is_ok_and(|body| body["message"].is_string())
    }
}

/// One lead sent under load, and what came of it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub conversation_id: String,
    pub body: Bytes,
    pub route: &'static str,
    /// The [`Load`]'s phase when it was sent...
    pub sent_in: u8,
    /// ...and when its answer (or failure) came.
    pub answered_in: u8,
    /// The answer, or why there was none.
    pub answer: Result<Answer, String>,
    /// How long the answer took (reported, never asserted).
    pub took: Duration,
}

impl Sent {
    /// Whether it was answered 200 (stored, or a duplicate).
    pub fn ok(&self) -> bool {
        self.answer
            .as_ref()
            .is_ok_and(|answer| answer.status == 200)
    }
}

/// Unique signed leads sent to a receiver, `in_flight` at a time, over both
/// [`ROUTES`] in turn, until `total` were sent or [`Load::stop`].
#[derive(Debug)]
pub struct Load {
    shared: Arc<LoadState>,
    tasks: tokio::task::JoinSet<()>,
}

#[derive(Debug)]
struct LoadState {
    base: String,
    total: usize,
    next: AtomicUsize,
    stop: AtomicBool,
    phase: AtomicU8,
    accepted: AtomicUsize,
    sent: Mutex<Vec<Sent>>,
}

impl Load {
    /// Starts sending to `server`.
    pub fn start(server: &Server, total: usize, in_flight: usize) -> Self {
        let shared = Arc::new(LoadState {
            base: server.url(""),
            total,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            phase: AtomicU8::new(0),
            accepted: AtomicUsize::new(0),
            sent: Mutex::new(Vec::new()),
        });
        let sender = Sender::new().unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..in_flight {
            let shared = shared.clone();
            let sender = sender.clone();
            tasks.spawn(async move {
                while !shared.stop.load(Ordering::SeqCst) {
                    let n = shared.next.fetch_add(1, Ordering::SeqCst);
                    if n >= shared.total {
                        break;
                    }
                    let conversation_id = send::new_conversation_id();
                    let body = lead(&conversation_id);
                    let route = ROUTES[n % ROUTES.len()];
                    let url = format!("{}{route}", shared.base);
                    let sent_in = shared.phase.load(Ordering::SeqCst);
                    let outgoing = Outgoing::signed(&secret(), body.clone());
                    let started = std::time::Instant::now();
                    let answer = match sender.send(&url, &outgoing).await {
                        Ok(reply) => Ok(Answer::of(&reply)),
                        Err(error) => Err(error.to_string()),
                    };
                    let answered_in = shared.phase.load(Ordering::SeqCst);
                    if answer.as_ref().is_ok_and(|answer| answer.status == 200) {
                        shared.accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    shared.sent.lock().unwrap().push(Sent {
                        conversation_id,
                        body,
                        route,
                        sent_in,
                        answered_in,
                        answer,
                        took: started.elapsed(),
                    });
                }
            });
        }
        Self { shared, tasks }
    }

    /// How many were answered 200 so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Marks the requests sent from now on, and the answers that come from now
    /// on, with `phase`.
    pub fn set_phase(&self, phase: u8) {
        self.shared.phase.store(phase, Ordering::SeqCst);
    }

    /// What was sent and answered so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.sent.lock().unwrap().clone()
    }

    /// Whether `check` holds of what was sent and answered so far.
    pub fn holds(&self, check: impl FnOnce(&[Sent]) -> bool) -> bool {
        check(&self.shared.sent.lock().unwrap())
    }

    /// Sends no more requests (those in flight still get their answers).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the requests in flight after [`Load::stop`], or for all
    /// `total` to be sent, and returns what was sent.
    pub async fn finish(mut self) -> Vec<Sent> {
        patiently("the load to finish", async {
            while let Some(done) = self.tasks.join_next().await {
                done.unwrap();
            }
        })
        .await;
        self.sent()
    }
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// The samples of a Prometheus text exposition, by metric name and labels.
#[derive(Debug, Default)]
pub struct Scrape {
    samples: BTreeMap<String, BTreeMap<Vec<(String, String)>, f64>>,
    pub text: String,
}

impl Scrape {
    /// Parses a Prometheus text exposition (format 0.0.4).
    pub fn parse(text: &str) -> Self {
        let mut samples: BTreeMap<String, BTreeMap<_, _>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                value => value
                    .parse()
                    .unwrap_or_else(|_| panic!("not a value: {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                    (name, parse_labels(labels, line))
                }
                None => (series, Vec::new()),
            };
            let previous = samples
                .entry(name.to_owned())
                .or_default()
                .insert(labels, value);
            assert!(previous.is_none(), "a series twice: {line:?}\n{text}");
        }
        Self {
            samples,
            text: text.to_owned(),
        }
    }

    /// Every series of metric `name`: its labels (sorted by name) and value.
    pub fn series(&self, name: &str) -> BTreeMap<Vec<(String, String)>, f64> {
        self.samples.get(name).cloned().unwrap_or_default()
    }

    /// The value of the series of `name` without labels.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples.get(name)?.get(&Vec::new()).copied()
    }
}

/// `a="x",b="y"` (values with `\"`, `\\` and `\n` escapes) as sorted pairs.
fn parse_labels(text: &str, line: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad labels: {line:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("bad escape: {line:?}"),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => panic!("unclosed label value: {line:?}"),
            }
        };
        labels.push((name.trim().to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels.sort();
    labels
}

/// `GET http://127.0.0.1:<port>/metrics`, which must answer 200.
pub async fn scrape(port: u16) -> Scrape {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let response = patiently(&url, reqwest::get(&url)).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    Scrape::parse(&patiently(&url, response.text()).await.unwrap())
}

/// The `{outcome, reason}` labels `chatbase_webhook_requests_total` must count
/// `answer` under: 200 is `accepted`/`none`, 200 with `x-chatbase-duplicate`
/// is `duplicate`/`duplicate`, 503 is `unavailable`/`inbox_unavailable`, and
/// any other status is `rejected`/`rejection_reason`.
pub fn counted_as(answer: &Answer, rejection_reason: &'static str) -> (&'static str, &'static str) {
    match (answer.status, answer.duplicate) {
        (200, false) => ("accepted", "none"),
        (200, true) => ("duplicate", "duplicate"),
        (503, _) => ("unavailable", "inbox_unavailable"),
        _ => ("rejected", rejection_reason),
    }
}

/// Asserts that `chatbase_webhook_requests_total` holds exactly `expected`
/// (`(outcome, reason)` → count): no series missing, none more.
pub fn assert_requests_counted(
    scrape: &Scrape,
    expected: &BTreeMap<(&str, &str), u64>,
    context: &str,
) {
    let counted: BTreeMap<(String, String), u64> = scrape
        .series(REQUESTS_TOTAL)
        .into_iter()
        .map(|(labels, value)| {
            let label = |name: &str| {
                labels
                    .iter()
                    .find(|(label, _)| label == name)
                    .map(|(_, value)| value.clone())
                    .unwrap_or_else(|| panic!("{context}: no {name} label in {labels:?}"))
            };
            assert_eq!(labels.len(), 2, "{context}: {labels:?}");
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let value = value as u64;
            ((label("outcome"), label("reason")), value)
        })
        .filter(|(_, value)| *value > 0)
        .collect();
    let expected: BTreeMap<(String, String), u64> = expected
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|((outcome, reason), count)| (((*outcome).to_owned(), (*reason).to_owned()), *count))
        .collect();
    assert_eq!(
        counted, expected,
        "{context}: {REQUESTS_TOTAL}\n{}",
        scrape.text
    );
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/// The PostgreSQL server the PostgreSQL tests run against, as
/// `.ci/postgres.sh start` exports it.
pub const POSTGRES_URL_VAR: &str = "CHATBASE_TEST_POSTGRES_URL";

/// Says plainly that `test` is skipped because of `why` (on the terminal:
/// libtest captures a passing test's `eprintln!`); under `CI=true` nothing
/// is skipped: it fails instead.
pub fn skip(test: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} must run under CI=true, but {why}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\nNOTICE: e2e test {test} SKIPPED (it returned without running): {why}. \
         Run `eval \"$(.ci/postgres.sh start)\"` first (as root it installs PostgreSQL \
         from Debian's packages) to run it.\n"
    );
}

/// The directory of PostgreSQL's programs, found as `.ci/postgres.sh` finds
/// it: the newest `/usr/lib/postgresql/*/bin` (Debian), or `initdb`'s on the
/// `PATH`.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()))
}

/// `psql`: PostgreSQL's, or the one on the `PATH`.
fn psql() -> Option<PathBuf> {
    if let Some(psql) = postgres_bin_dir()
        .map(|bin| bin.join("psql"))
        .filter(|psql| psql.is_file())
    {
        return Some(psql);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("psql"))
            .find(|psql| psql.is_file())
    })
}

/// Runs `sql` with `psql` on the database at `url`.
fn run_psql(url: &str, sql: &str) -> Result<(), String> {
    let psql = psql().ok_or("psql is not installed")?;
    let output = std::process::Command::new(psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("psql: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql -c {sql:?}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `url` with its database name replaced by `name` (its query kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority = head.find("://").map_or(0, |at| at + 3);
    let path = head[authority..]
        .find('/')
        .map_or(head.len(), |at| authority + at);
    let mut url = format!("{}/{name}", &head[..path]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// A database of its own for one test, created on the server at a URL and
/// dropped (connections and all) when this is dropped.
#[derive(Debug)]
pub struct Database {
    /// Where it is: the server's URL with this database's name.
    pub url: String,
    server: String,
    name: String,
}

impl Database {
    /// Creates a fresh database on the server `server_url` points to.
    pub fn create(server_url: &str) -> Self {
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "chatbase_e2e_{}_{}_{nanos}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::SeqCst)
        );
        run_psql(server_url, &format!("CREATE DATABASE {name}")).unwrap();
        Self {
            url: with_database(server_url, &name),
            server: server_url.to_owned(),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = run_psql(&self.server, &drop) {
            let _ = writeln!(std::io::stderr(), "e2e: {error}");
        }
    }
}

/// The server of [`POSTGRES_URL_VAR`], or `None` after saying why `test` is
/// skipped (see [`skip`]).
pub fn postgres_server(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => {
            if psql().is_none() {
                skip(test, "psql (PostgreSQL's client) is not installed");
                return None;
            }
            Some(url)
        }
        _ => {
            skip(test, &format!("{POSTGRES_URL_VAR} is not set"));
            None
        }
    }
}

/// A throwaway PostgreSQL cluster of a test's own, started with
/// `.ci/postgres.sh start` on a port and in a directory of its own, which the
/// test may stop and start again; removed (with `.ci/postgres.sh stop`) when
/// dropped, whatever happened.
#[derive(Debug)]
pub struct Cluster {
    /// Its database `chatbase_test`.
    pub url: String,
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
}

impl Cluster {
    /// Starts a new cluster, or returns `None` after saying why `test` is
    /// skipped (PostgreSQL is not installed: see [`skip`]).
    pub async fn start(test: &str) -> Option<Self> {
        let Some(bin) = postgres_bin_dir() else {
            skip(test, "PostgreSQL is not installed (no initdb)");
            return None;
        };
        // Below Linux's ephemeral ports (32768 and up): while the server is
        // stopped, no client connection can take its port. One port per
        // cluster of this process, free when it is chosen.
        static NEXT_PORT: AtomicU16 = AtomicU16::new(15433);
        let port = std::iter::repeat_with(|| NEXT_PORT.fetch_add(1, Ordering::SeqCst))
            .take_while(|port| *port < 15533)
            .find(|port| {
                std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, *port)).is_ok()
            })
            .expect("a free port for PostgreSQL");
        let dir =
            std::env::temp_dir().join(format!("chatbase-e2e-pg-{}-{port}", std::process::id()));
        // From here on, dropping it removes whatever the script made.
        let mut cluster = Self {
            url: String::new(),
            bin,
            port,
            dir,
        };
        let output = run(cluster.script("start")).await;
        assert!(output.status.success(), "postgres.sh start: {output:?}");
        cluster.url = output
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("export {POSTGRES_URL_VAR}=")))
            .unwrap_or_else(|| panic!("postgres.sh start printed no URL: {output:?}"))
            .to_owned();
        Some(cluster)
    }

    /// `.ci/postgres.sh <action>` for this cluster.
    fn script(&self, action: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(harness::examples::workspace_root().join(".ci/postgres.sh"))
            .arg(action)
            .env("CHATBASE_PG_PORT", self.port.to_string())
            .env("CHATBASE_PG_DIR", &self.dir);
        command
    }

    /// `pg_ctl <args>`, as the cluster's owner (`postgres` when this is root,
    /// as in `.ci/postgres.sh`).
    fn pg_ctl(&self, args: &[&str]) -> Command {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(pg_ctl);
            command
        } else {
            Command::new(pg_ctl)
        };
        command.arg("-D").arg(data).args(args);
        command
    }

    /// Stops the server (fast: open connections are cut), keeping its data.
    pub async fn stop_server(&self) {
        let output = run(self.pg_ctl(&["-m", "fast", "-w", "stop"])).await;
        assert!(output.status.success(), "pg_ctl stop: {output:?}");
    }

    /// Starts the server again on its data, with the options of
    /// `.ci/postgres.sh start`.
    pub async fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let log = log.to_str().unwrap();
        let output =
            run(self.pg_ctl(&["-l", log, "-w", "-t", "60", "-o", &options, "start"])).await;
        assert!(output.status.success(), "pg_ctl start: {output:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut command = self.script("stop").into_std();
        match command.stdin(Stdio::null()).output() {
            Ok(output) if output.status.success() => {}
            outcome => {
                let _ = writeln!(std::io::stderr(), "e2e: postgres.sh stop: {outcome:?}");
            }
        }
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}
