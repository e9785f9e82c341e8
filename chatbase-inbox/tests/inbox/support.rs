//! Shared helpers: a fresh store of either kind, events, a recording handler,
//! a running worker, bounded waits.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatbase_core::ChatbaseEvent;
use chatbase_inbox::{Delivery, Failure, Handler, Inbox, InboxBuilder, Worker};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generates one `#[tokio::test]` per store kind for each generic test body
/// `async fn name(kind: Kind)` of the calling module.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Kind::Sqlite).await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Kind::Postgres).await;
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
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

pub const POSTGRES_URL_VAR: &str = "CHATBASE_TEST_POSTGRES_URL";

static SKIP_NOTICE: Once = Once::new();

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
                let _ = writeln!(
                    std::io::stderr(),
                    "\nNOTICE: chatbase-inbox PostgreSQL suite SKIPPED (every `postgres::` test \
                     returned without running): {POSTGRES_URL_VAR} is not set. Run \
                     `eval \"$(.ci/postgres.sh start)\"` first to run it.\n"
                );
            });
            None
        }
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A number unique in this test process.
pub fn unique() -> u64 {
    UNIQUE.fetch_add(1, Ordering::Relaxed)
}

/// A fresh, empty store for one test: a new SQLite file in a temporary
/// directory, or a new database on the PostgreSQL server.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// `None` when the PostgreSQL suite is skipped.
    pub async fn new(kind: Kind) -> Option<Self> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                // A subdirectory that does not exist yet: open creates it.
                let path = dir.path().join("data").join("inbox.db");
                Some(Self {
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                })
            }
            Kind::Postgres => {
                let base = postgres_base_url()?;
                let name = format!(
                    "inbox_test_{}_{}_{}",
                    std::process::id(),
                    unique(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos()
                );
                create_database(&base, &name).await;
                Some(Self {
                    url: with_database(&base, &name),
                    _dir: None,
                })
            }
        }
    }

    pub fn builder(&self) -> InboxBuilder {
        Inbox::builder(self.url.clone())
    }

    pub async fn open(&self) -> Inbox {
        self.builder().open().await.unwrap()
    }
}

/// `base` with its database name replaced by `name` (query string kept).
pub fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &head[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(feature = "postgres")]
async fn create_database(base: &str, name: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap_or_else(|e| {
        panic!("cannot connect to {POSTGRES_URL_VAR}: {e}");
    });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[cfg(not(feature = "postgres"))]
async fn create_database(_base: &str, _name: &str) {
    unreachable!("the PostgreSQL tests are compiled only with the `postgres` feature")
}

/// A `leads.submit` event, as a verified body would give.
pub fn lead(chatbot: &str, conversation: &str, email: &str, phone: &str) -> ChatbaseEvent {
    let body = serde_json::json!({
        "eventType": "leads.submit",
        "chatbotId": chatbot,
        "payload": {
            "conversationId": conversation,
            "customerEmail": email,
            "customerName": "Ada Lovelace",
            "customerPhone": phone,
        }
    });
    event_from(serde_json::to_vec(&body).unwrap())
}

/// A distinct lead every call.
pub fn unique_lead() -> ChatbaseEvent {
    let n = unique();
    lead(
        "bot_test",
        &format!("conv_{n}"),
        &format!("customer{n}@example.com"),
        &format!("+1555{n:07}"),
    )
}

pub fn event_from(body: impl Into<Bytes>) -> ChatbaseEvent {
    ChatbaseEvent::from_verified_body(body.into()).unwrap()
}

/// Waits until `check` answers true, polling; fails the test after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bounds a future: fails the test if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}: {what}"))
}

pub const WAIT: Duration = Duration::from_secs(30);

/// Every call of a test handler: delivery id and attempt number, and the
/// bodies seen.
#[derive(Clone, Default)]
pub struct Calls {
    inner: Arc<Mutex<Vec<(i64, u32, Bytes)>>>,
}

impl Calls {
    pub fn record(&self, delivery: &Delivery) {
        self.inner.lock().unwrap().push((
            delivery.id(),
            delivery.attempt(),
            delivery.body().clone(),
        ));
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().len()
    }

    /// Attempt numbers seen per delivery id.
    pub fn attempts(&self) -> HashMap<i64, Vec<u32>> {
        let mut map: HashMap<i64, Vec<u32>> = HashMap::new();
        for (id, attempt, _) in self.inner.lock().unwrap().iter() {
            map.entry(*id).or_default().push(*attempt);
        }
        map
    }

    pub fn bodies(&self) -> Vec<Bytes> {
        self.inner
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, body)| body.clone())
            .collect()
    }
}

/// A handler that records each call and succeeds.
pub fn recording(calls: &Calls) -> impl Handler {
    let calls = calls.clone();
    move |delivery: Delivery| {
        let calls = calls.clone();
        async move {
            calls.record(&delivery);
            Ok::<(), Failure>(())
        }
    }
}

/// A worker running in a task, stopped on request.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    pub fn start<H: Handler>(worker: Worker<H>) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Asks for a graceful shutdown and waits (bounded) for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within(WAIT, "the worker's graceful shutdown", &mut self.task)
            .await
            .unwrap();
    }

    /// Kills the worker as a crash would: its future is dropped mid-way.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A worker with short timings for tests.
pub fn quick<H: Handler>(inbox: &Inbox, handler: H) -> Worker<H> {
    inbox
        .worker(handler)
        .poll_interval(Duration::from_millis(25))
        .backoff(Duration::from_millis(5), Duration::from_millis(40))
}
