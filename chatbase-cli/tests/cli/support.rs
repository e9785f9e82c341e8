//! What the tests share: the binary, temporary directories, the Node
//! vectors, servers that capture or verify what they get (plain and TLS),
//! and `chatbase listen` as a child process.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chatbase_core::{PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR, SIGNATURE_HEADER, Secret, Verifier};

/// The longest any step may take before a test gives up: far longer than
/// anything should take, even on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The secret most tests use.
pub const SECRET: &str = "cli-test-secret";

pub fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

/// The `chatbase` binary, with no Chatbase secret or colour setting
/// inherited from the environment, and a bound on how long it may run.
pub fn chatbase() -> Command {
    let mut command = Command::cargo_bin("chatbase").unwrap();
    command
        .env_remove(SECRET_ENV_VAR)
        .env_remove(PREVIOUS_SECRET_ENV_VAR)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove(chatbase_cli::inbox::INBOX_ENV_VAR)
        .timeout(PATIENCE);
    command
}

/// A process's exit code and output, as text.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Both streams, for "says" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts that neither stream shows `secret`.
    pub fn never_shows(&self, secret: &str) {
        assert!(!self.all().contains(secret), "shows {secret:?}: {self:?}");
    }
}

/// Runs `command` and returns its exit code and output.
pub fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `chatbase` with `arguments`.
pub fn chatbase_with(arguments: &[&str]) -> Output {
    run(chatbase().args(arguments))
}

/// A directory for one test, removed at the end.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "chatbase-cli-test-{name}-{}-{}",
            std::process::id(),
            chatbase_cli::send::new_conversation_id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A path as a `&str` argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---------------------------------------------------------------------------
// The Node vectors
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct NodeVectors {
    vectors: Vec<RawVector>,
}

#[derive(serde::Deserialize)]
struct RawVector {
    name: String,
    secret: String,
    body_base64: String,
    signature: String,
}

/// One signature made by Node's `crypto.createHmac("sha1", secret)`.
pub struct NodeVector {
    pub name: String,
    pub secret: String,
    pub body: Vec<u8>,
    pub signature: String,
}

/// The 60 Node vectors of the workspace's `testdata/`.
pub fn node_vectors() -> Vec<NodeVector> {
    let vectors: NodeVectors =
        serde_json::from_str(include_str!("../../../testdata/node-hmac-sha1.json")).unwrap();
    assert_eq!(vectors.vectors.len(), 60);
    vectors
        .vectors
        .into_iter()
        .map(|raw| NodeVector {
            name: raw.name,
            secret: raw.secret,
            body: BASE64.decode(raw.body_base64).unwrap(),
            signature: raw.signature,
        })
        .collect()
}

/// A secrets file giving each vector's secret to a chatbot named for its
/// index (`v0`, `v1`...): JSON holds any secret, NUL bytes included, which a
/// command line cannot.
pub fn vector_secrets_file(dir: &TempDir, vectors: &[NodeVector]) -> PathBuf {
    let map: HashMap<String, &str> = vectors
        .iter()
        .enumerate()
        .map(|(n, vector)| (format!("v{n}"), vector.secret.as_str()))
        .collect();
    dir.file("vectors.json", serde_json::to_vec(&map).unwrap())
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/// What a server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn signature(&self) -> Option<&str> {
        self.headers
            .get(SIGNATURE_HEADER)
            .map(|value| value.to_str().unwrap())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

/// How a test server answers.
#[derive(Clone)]
pub enum Answer {
    /// This status to everything, with the body `captured`.
    Status(StatusCode),
    /// As a receiver would: 200 for a verified event, the rejection's
    /// status and JSON otherwise.
    Verify(Verifier),
}

/// A server on 127.0.0.1 that reports every request it gets, on its own
/// runtime so that tests can run the binary synchronously.
pub struct Server {
    pub address: SocketAddr,
    seen: mpsc::Receiver<Seen>,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Captures everything and answers 200.
    pub fn capture() -> Self {
        Self::start(Answer::Status(StatusCode::OK))
    }

    /// Verifies with `SECRET`, as a real receiver would.
    pub fn verifying() -> Self {
        Self::start(Answer::Verify(Verifier::new(secret())))
    }

    pub fn start(answer: Answer) -> Self {
        let runtime = runtime();
        let (sender, seen) = mpsc::channel();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move {
            axum::serve(listener, app(answer, sender)).await.unwrap();
        });
        Self {
            address,
            seen,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The next request it got.
    pub fn next(&self) -> Seen {
        self.seen.recv_timeout(PATIENCE).unwrap()
    }

    /// Every request it got so far.
    pub fn drain(&self) -> Vec<Seen> {
        self.seen.try_iter().collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn app(answer: Answer, sender: mpsc::Sender<Seen>) -> axum::Router {
    axum::Router::new().fallback(move |request: Request| {
        let sender = sender.clone();
        let answer = answer.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let seen = Seen {
                method: parts.method.to_string(),
                target: parts.uri.to_string(),
                headers: parts.headers,
                body,
            };
            let response: Response = match &answer {
                Answer::Status(status) => (*status, "captured").into_response(),
                Answer::Verify(verifier) => match verifier.verify_and_parse(
                    seen.body.clone(),
                    seen.headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes()),
                ) {
                    Ok(_) => (StatusCode::OK, "OK").into_response(),
                    Err(error) => (
                        StatusCode::from_u16(error.status()).unwrap(),
                        [("content-type", "application/json")],
                        error.json_body(),
                    )
                        .into_response(),
                },
            };
            let _ = sender.send(seen);
            response
        }
    })
}

/// A URL on 127.0.0.1 where nothing listens.
pub fn closed_url() -> (String, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    (format!("http://127.0.0.1:{port}/webhook"), port)
}

/// A server over TLS, with a certificate for `localhost` and `127.0.0.1`
/// signed by a CA made for the test, that verifies with `SECRET`.
pub struct TlsServer {
    pub port: u16,
    pub ca_pem: String,
    seen: mpsc::Receiver<Seen>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsServer {
    pub fn start() -> Self {
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

        let runtime = runtime();
        let (sender, seen) = mpsc::channel();
        let app = app(Answer::Verify(Verifier::new(secret())), sender);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
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
            seen,
            _runtime: runtime,
        }
    }

    pub fn drain(&self) -> Vec<Seen> {
        self.seen.try_iter().collect()
    }
}

// ---------------------------------------------------------------------------
// `chatbase listen` as a child process
// ---------------------------------------------------------------------------

/// A running `chatbase listen`, killed when dropped.
pub struct Listen {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    /// Everything it printed on standard output so far.
    pub stdout: String,
    pub address: SocketAddr,
    stderr: Option<std::process::ChildStderr>,
}

impl Listen {
    /// Starts `chatbase listen --port 0` with `arguments`, and waits until it
    /// listens.
    pub fn start(arguments: &[&str]) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chatbase"));
        command
            .args(["listen", "--port", "0"])
            .args(arguments)
            .env_remove(SECRET_ENV_VAR)
            .env_remove(PREVIOUS_SECRET_ENV_VAR)
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take();
        let lines = read_lines(stdout);
        let mut listen = Self {
            child: Some(child),
            lines,
            stdout: String::new(),
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let line = listen.wait_for("listening on http://");
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        listen.address = address.parse().unwrap();
        listen
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Waits for a line of standard output containing `text`, and returns
    /// it.
    pub fn wait_for(&mut self, text: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no {text:?} in:\n{}", self.stdout));
            self.stdout.push_str(&line);
            self.stdout.push('\n');
            if line.contains(text) {
                return line;
            }
        }
    }

    /// Sends Ctrl-C (SIGINT) and returns the exit code, the rest of
    /// standard output, and standard error.
    pub fn interrupt(mut self) -> Output {
        let mut child = self.child.take().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let _ = sender.send(child.wait());
        });
        let status = receiver.recv_timeout(PATIENCE).unwrap().unwrap();
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.stdout.push_str(&line);
            self.stdout.push('\n');
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = self.stderr.take() {
            use std::io::Read as _;
            pipe.read_to_string(&mut stderr).unwrap();
        }
        Output {
            code: status.code().unwrap_or(-1),
            stdout: std::mem::take(&mut self.stdout),
            stderr,
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

// ---------------------------------------------------------------------------
// Inboxes: real chatbase-inbox stores, SQLite always, PostgreSQL when
// CHATBASE_TEST_POSTGRES_URL names a server
// ---------------------------------------------------------------------------

/// Generates one `#[test]` per store kind for each test body
/// `fn name(kind: Kind)` of the calling module: `sqlite::name` and
/// `postgres::name`.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::Kind::Sqlite);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::Kind::Postgres);
                }
            )*
        }
    };
}
pub(crate) use store_tests;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub const POSTGRES_URL_VAR: &str = "CHATBASE_TEST_POSTGRES_URL";

static SKIP_NOTICE: std::sync::Once = std::sync::Once::new();

/// The PostgreSQL server to test against: `None` (with a plain notice on the
/// terminal) when `CHATBASE_TEST_POSTGRES_URL` is unset, a failure when it is
/// unset under `CI=true`.
pub fn postgres_base_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{POSTGRES_URL_VAR} is not set and CI=true: the PostgreSQL suite must run \
                     (start a server with `eval \"$(.ci/postgres.sh start)\"`)"
                );
            }
            // Written to the terminal directly: libtest captures print!/eprint!
            // of passing tests, and a skip must be seen.
            SKIP_NOTICE.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "\nNOTICE: chatbase-cli `chatbase inbox` PostgreSQL suite SKIPPED (every \
                     `inbox::...::postgres::` test returned without running): {POSTGRES_URL_VAR} \
                     is not set. Run `eval \"$(.ci/postgres.sh start)\"` first to run it.\n"
                );
            });
            None
        }
    }
}

/// `base` with its database name replaced by `name` (query string kept).
pub fn with_database(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(base).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// `url` with `password` as its password.
pub fn with_password(url: &str, password: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    if url.username().is_empty() {
        url.set_username("postgres").unwrap();
    }
    url.set_password(Some(password)).unwrap();
    url.to_string()
}

/// A new, empty database on the PostgreSQL server, named uniquely.
fn create_postgres_database(runtime: &tokio::runtime::Runtime, base: &str) -> String {
    use sqlx::Connection as _;
    let name = format!(
        "cli_inbox_test_{}_{}",
        std::process::id(),
        chatbase_cli::send::new_conversation_id()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase()
    );
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    name
}

/// A fresh store for one test, with an inbox in it (a receiver opened it),
/// and what the test put there.
pub struct TestInbox {
    pub url: String,
    runtime: tokio::runtime::Runtime,
    /// PostgreSQL: the server's URL and the test's database, dropped at the end.
    postgres: Option<(String, String)>,
    _dir: Option<TempDir>,
}

/// A lead's customer data: what `chatbase inbox` must never print.
pub const CUSTOMER_EMAIL: &str = "ada.customer@example.com";
pub const CUSTOMER_PHONE: &str = "+15550001234";
pub const CUSTOMER_NAME: &str = "Ada Customer";

/// The chatbot of the test deliveries.
pub const INBOX_CHATBOT: &str = "bot_cli_inbox";

/// The reason the failing handler stores.
pub const HANDLER_ERROR: &str = "crm down";

impl TestInbox {
    /// `None` when the PostgreSQL suite is skipped.
    pub fn new(kind: Kind) -> Option<Self> {
        let inbox = Self::without_inbox(kind)?;
        // A receiver opens it: the table is created.
        inbox.with_inbox(|_| async {});
        Some(inbox)
    }

    /// A new database that no receiver opened yet (for SQLite: a file that
    /// does not exist yet), `None` when the PostgreSQL suite is skipped.
    pub fn without_inbox(kind: Kind) -> Option<Self> {
        let runtime = runtime();
        let (url, postgres, dir) = match kind {
            Kind::Sqlite => {
                let dir = TempDir::new("inbox");
                let url = format!("sqlite://{}", dir.join("inbox.db").display());
                (url, None, Some(dir))
            }
            Kind::Postgres => {
                let base = postgres_base_url()?;
                let name = create_postgres_database(&runtime, &base);
                (with_database(&base, &name), Some((base, name)), None)
            }
        };
        Some(Self {
            url,
            runtime,
            postgres,
            _dir: dir,
        })
    }

    /// Runs `f` with the inbox open, as a receiver or a worker would have it.
    pub fn with_inbox<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(chatbase_inbox::Inbox) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.runtime.block_on(async {
            let inbox = tokio::time::timeout(PATIENCE, chatbase_inbox::Inbox::open(&self.url))
                .await
                .expect("opening the inbox took too long")
                .unwrap();
            let out = f(inbox.clone()).await;
            inbox.close().await;
            out
        })
    }

    /// Stores `n` new leads, each with the customer's data, and returns their ids.
    pub fn accept(&self, n: usize) -> Vec<i64> {
        self.with_inbox(|inbox| async move {
            let mut ids = Vec::new();
            for _ in 0..n {
                let lead = chatbase_core::testing::LeadPayload {
                    conversation_id: Some(chatbase_cli::send::new_conversation_id()),
                    customer_email: Some(CUSTOMER_EMAIL.to_owned()),
                    customer_name: Some(CUSTOMER_NAME.to_owned()),
                    customer_phone: Some(CUSTOMER_PHONE.to_owned()),
                };
                let event = chatbase_core::testing::event(chatbase_core::testing::lead_body(
                    INBOX_CHATBOT,
                    &lead,
                ))
                .unwrap();
                let accepted = inbox.accept(&event).await.unwrap();
                ids.push(accepted.id().expect("a new lead is stored"));
            }
            ids
        })
    }

    /// Stores `n` leads and has a worker fail each on its only attempt:
    /// they are dead, with `HANDLER_ERROR` as their last error.
    pub fn dead(&self, n: usize) -> Vec<i64> {
        let ids = self.accept(n);
        self.work(false, &ids);
        ids
    }

    /// Stores `n` leads and has a worker process them.
    pub fn processed(&self, n: usize) -> Vec<i64> {
        let ids = self.accept(n);
        self.work(true, &ids);
        ids
    }

    /// Runs a worker whose handler succeeds or always fails (with one
    /// attempt allowed) until every delivery of `ids` is finished.
    fn work(&self, succeed: bool, ids: &[i64]) {
        use chatbase_inbox::{Delivery, Failure, State};
        let want = if succeed {
            State::Processed
        } else {
            State::Dead
        };
        self.with_inbox(|inbox| async move {
            let handler = move |_delivery: Delivery| async move {
                if succeed {
                    Ok(())
                } else {
                    Err(Failure::new(HANDLER_ERROR))
                }
            };
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let worker = inbox
                .worker(handler)
                .max_attempts(1)
                .poll_interval(Duration::from_millis(20))
                .run(async move {
                    let _ = stopped.await;
                });
            let task = tokio::spawn(worker);
            let deadline = tokio::time::Instant::now() + PATIENCE;
            for id in ids {
                loop {
                    let record = inbox.get(*id).await.unwrap().unwrap();
                    if record.state == want {
                        break;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "delivery {id} is still {} after {PATIENCE:?}",
                        record.state
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let _ = stop.send(());
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("the worker did not stop")
                .unwrap();
        });
    }

    /// One delivery's record, read through the library.
    pub fn get(&self, id: i64) -> Option<chatbase_inbox::DeliveryRecord> {
        self.with_inbox(|inbox| async move { inbox.get(id).await.unwrap() })
    }

    /// The counts per state, read through the library.
    pub fn stats(&self) -> chatbase_inbox::Stats {
        self.with_inbox(|inbox| async move { inbox.stats().await.unwrap() })
    }
}

impl Drop for TestInbox {
    fn drop(&mut self) {
        if let Some((base, name)) = self.postgres.take() {
            use sqlx::Connection as _;
            // Best effort: the cluster is throwaway anyway.
            self.runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        }
    }
}
