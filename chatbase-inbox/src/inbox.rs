//! [`Inbox`] and its [`InboxBuilder`]: accepting deliveries and operating the
//! store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chatbase_core::ChatbaseEvent;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::commit::{BatchOptions, Counters, Job, run_writer};
use crate::delivery::{Accepted, CommitStats, DeliveryRecord, RetentionReport, State, Stats};
use crate::error::InboxError;
use crate::key::KeyStrategy;
use crate::store::{ClaimRequest, Claimed, NewRow, Outcome, Store, StoreOptions, Write, Written};
use crate::worker::{Handler, Worker};

/// How long the bodies of processed deliveries are kept, by default: 7 days.
pub const DEFAULT_BODY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long finished deliveries (and so their keys) are kept, by default: 30 days.
pub const DEFAULT_KEY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most writes one group commit holds, by default.
pub const DEFAULT_BATCH_SIZE: usize = 256;
/// How long an accept may wait for its commit, by default: 5 seconds.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The durable inbox. Cheap to clone: clones share one store and one writer.
///
/// Open one with [`Inbox::open`] or [`Inbox::builder`], store each verified
/// event with [`accept`](Self::accept) before answering `200`, and process
/// what was stored with a [`worker`](Self::worker). The rest of the methods
/// are for operators: [`list`](Self::list), [`get`](Self::get),
/// [`requeue`](Self::requeue), [`requeue_dead`](Self::requeue_dead),
/// [`purge`](Self::purge), [`stats`](Self::stats),
/// [`run_retention`](Self::run_retention).
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    jobs: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    pub(crate) stored: Arc<Notify>,
    keys: KeyStrategy,
    body_retention: Duration,
    key_retention: Duration,
    /// How long an accept waits in all, queue and batch.
    write_timeout: Duration,
}

impl Inbox {
    /// Opens the inbox at `url` with the default options:
    ///
    /// - `sqlite://path/to/inbox.db` (feature `sqlite`, on by default): the
    ///   file and its directory are created on first use, in WAL mode with
    ///   `synchronous=FULL`;
    /// - `postgres://user:password@host/database` (feature `postgres`):
    ///   every connection sets `synchronous_commit=on`.
    ///
    /// The inbox's table is created or migrated on first use; several
    /// instances may start at once.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the URL is not one of these, or the store cannot be
    /// opened or migrated.
    pub async fn open(url: &str) -> Result<Self, InboxError> {
        Self::builder(url).open().await
    }

    /// Options for the inbox at `url`: see [`InboxBuilder`].
    pub fn builder(url: impl Into<String>) -> InboxBuilder {
        InboxBuilder::new(url.into())
    }

    /// Stores a verified delivery, and returns once it is durably committed
    /// (or was already stored).
    ///
    /// Detecting a duplicate and storing a new delivery are one statement
    /// (`INSERT ... ON CONFLICT (delivery_key) DO NOTHING`), so there is no
    /// in-flight state to get stuck, and a delivery sent to two receivers at
    /// once is stored by one of them. Concurrent calls share a transaction
    /// (group commit).
    ///
    /// An HTTP adapter answers `200` for both [`Accepted`] variants (saying
    /// which in a header), and `503` with `Retry-After` for an error.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the write failed or timed out: nothing of the
    /// delivery was committed.
    pub async fn accept(&self, event: &ChatbaseEvent) -> Result<Accepted, InboxError> {
        let row = NewRow {
            key: self.inner.keys.key(event),
            chatbot_id: event.chatbot_id().map(str::to_owned),
            event_type: event.event_type().to_owned(),
            body: event.raw_body().clone(),
        };
        // Bounded from here, not only once the batch starts: a delivery queued
        // behind a batch that waits for an unreachable database must not wait
        // for two.
        let written =
            tokio::time::timeout(self.inner.write_timeout, self.write(Write::Insert(row)))
                .await
                .unwrap_or(Err(InboxError::Timeout));
        let result = match written {
            Ok(Written::Accepted(accepted)) => Ok(accepted),
            Ok(_) => Err(InboxError::Closed),
            Err(error) => Err(error),
        };
        crate::observe::accepted(&result);
        result
    }

    /// The delivery key `event` is stored under, computed with this inbox's
    /// [`KeyStrategy`].
    pub fn delivery_key(&self, event: &ChatbaseEvent) -> String {
        self.inner.keys.key(event)
    }

    /// Hands a write to the group-commit writer and waits for its answer.
    pub(crate) async fn write(&self, write: Write) -> Result<Written, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| InboxError::Closed)?;
        answer.await.map_err(|_| InboxError::Closed)?
    }

    /// Records an attempt's outcome, fenced by the lease token: `Ok(false)`
    /// when the lease was lost (another worker took the delivery over).
    pub(crate) async fn finish(
        &self,
        id: i64,
        lease_token: i64,
        outcome: Outcome,
    ) -> Result<bool, InboxError> {
        match self
            .write(Write::Finish {
                id,
                lease_token,
                outcome,
            })
            .await?
        {
            Written::Finished(ours) => Ok(ours),
            _ => Err(InboxError::Closed),
        }
    }

    /// Claims deliveries for a worker: in the group commit's next batch
    /// where the store has one writer at a time (SQLite), else alone.
    pub(crate) async fn claim(&self, request: ClaimRequest) -> Result<Claimed, InboxError> {
        if !self.inner.store.claims_in_batch() {
            return self
                .inner
                .store
                .claim_alone(request)
                .await
                .map_err(|e| InboxError::store("claim deliveries", e));
        }
        match self.write(Write::Claim(request)).await? {
            Written::Claimed(claimed) => Ok(claimed),
            _ => Err(InboxError::Closed),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn stored_notify(&self) -> &Arc<Notify> {
        &self.inner.stored
    }

    /// A worker that runs `handler` for each stored delivery: configure it
    /// (concurrency, attempts, backoff, lease...) and
    /// [`run`](Worker::run) it. See [`Worker`].
    pub fn worker<H: Handler>(&self, handler: H) -> Worker<H> {
        Worker::new(self.clone(), handler)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn store_kind(&self) -> &'static str {
        self.inner.store.kind()
    }

    /// This process's group-commit counters since the inbox was opened: how
    /// many transactions the writer committed for how many deliveries.
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.counters.snapshot()
    }

    /// One delivery's record, without its body.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the store cannot be read.
    pub async fn get(&self, id: i64) -> Result<Option<DeliveryRecord>, InboxError> {
        self.inner
            .store
            .get(id)
            .await
            .map_err(|e| InboxError::store("read a delivery", e))?
            .map(|row| row.into_record())
            .transpose()
    }

    /// Up to `limit` deliveries in `state`, oldest first, without their bodies.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the store cannot be read.
    pub async fn list(&self, state: State, limit: u32) -> Result<Vec<DeliveryRecord>, InboxError> {
        self.inner
            .store
            .list(state, limit)
            .await
            .map_err(|e| InboxError::store("list deliveries", e))?
            .into_iter()
            .map(|row| row.into_record())
            .collect()
    }

    /// Puts one dead delivery back to pending, with its attempts reset to
    /// zero, to be processed again. Returns whether it was dead.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the store cannot be written.
    pub async fn requeue(&self, id: i64) -> Result<bool, InboxError> {
        let n = self
            .inner
            .store
            .requeue(Some(id))
            .await
            .map_err(|e| InboxError::store("requeue a delivery", e))?;
        Ok(n == 1)
    }

    /// Puts every dead delivery back to pending. Returns how many.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the store cannot be written.
    pub async fn requeue_dead(&self) -> Result<u64, InboxError> {
        self.inner
            .store
            .requeue(None)
            .await
            .map_err(|e| InboxError::store("requeue dead deliveries", e))
    }

    /// Deletes the deliveries in `state` that finished more than `older_than`
    /// ago, keys included (a later duplicate of one of them is stored again).
    /// Returns how many.
    ///
    /// # Errors
    ///
    /// [`InboxError::InvalidConfig`] for a state that is not finished
    /// ([`State::Processed`] or [`State::Dead`]); otherwise if the store cannot
    /// be written.
    pub async fn purge(&self, state: State, older_than: Duration) -> Result<u64, InboxError> {
        if !matches!(state, State::Processed | State::Dead) {
            return Err(InboxError::InvalidConfig {
                reason: "only processed and dead deliveries can be purged",
            });
        }
        self.inner
            .store
            .purge(state, older_than)
            .await
            .map_err(|e| InboxError::store("purge deliveries", e))
    }

    /// Applies the retention policy now (a running [`Worker`] also does it
    /// periodically): removes the bodies of deliveries processed longer ago
    /// than the body retention, and deletes finished deliveries (processed or
    /// dead) older than the key retention.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the store cannot be written.
    pub async fn run_retention(&self) -> Result<RetentionReport, InboxError> {
        let bodies_removed = self
            .inner
            .store
            .remove_bodies(self.inner.body_retention)
            .await
            .map_err(|e| InboxError::store("remove old bodies", e))?;
        let mut deliveries_removed = 0;
        for state in [State::Processed, State::Dead] {
            deliveries_removed += self
                .inner
                .store
                .purge(state, self.inner.key_retention)
                .await
                .map_err(|e| InboxError::store("remove old deliveries", e))?;
        }
        Ok(RetentionReport {
            bodies_removed,
            deliveries_removed,
        })
    }

    /// Counts per state, and how long the oldest unfinished delivery has
    /// waited.
    ///
    /// # Errors
    ///
    /// [`InboxError`] if the store cannot be read.
    pub async fn stats(&self) -> Result<Stats, InboxError> {
        let raw = self
            .inner
            .store
            .stats()
            .await
            .map_err(|e| InboxError::store("count deliveries", e))?;
        let mut stats = Stats::default();
        for (state, count) in raw.counts {
            let count = u64::try_from(count).unwrap_or(0);
            match state.parse::<State>() {
                Ok(State::Pending) => stats.pending = count,
                Ok(State::Processing) => stats.processing = count,
                Ok(State::Processed) => stats.processed = count,
                Ok(State::Dead) => stats.dead = count,
                Err(_) => {}
            }
        }
        stats.oldest_pending_age = raw
            .oldest_pending_age_ms
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
        Ok(stats)
    }

    /// Refreshes the backlog gauges from the store (feature `metrics`): the
    /// waiting deliveries only, one cheap statement.
    #[cfg(feature = "metrics")]
    pub(crate) async fn refresh_gauges(&self) -> Result<(), InboxError> {
        let raw = self
            .inner
            .store
            .waiting()
            .await
            .map_err(|e| InboxError::store("count waiting deliveries", e))?;
        crate::observe::waiting(
            u64::try_from(raw.count).unwrap_or(0),
            raw.oldest_age_ms
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        );
        Ok(())
    }

    /// Closes the store's connections: writes still queued fail, and later
    /// calls answer [`InboxError`]. Dropping every clone of the inbox closes
    /// it too.
    pub async fn close(&self) {
        self.inner.store.close().await;
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("store", &self.inner.store.kind())
            .field("keys", &self.inner.keys)
            .field("body_retention", &self.inner.body_retention)
            .field("key_retention", &self.inner.key_retention)
            .finish_non_exhaustive()
    }
}

/// Options of an [`Inbox`], from [`Inbox::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use chatbase_inbox::{Inbox, KeyStrategy};
///
/// # async fn run() -> Result<(), chatbase_inbox::InboxError> {
/// let inbox = Inbox::builder("sqlite://data/inbox.db")
///     .key_strategy(KeyStrategy::conversation_id())
///     .body_retention(Duration::from_secs(3 * 24 * 3600))
///     .key_retention(Duration::from_secs(60 * 24 * 3600))
///     .open()
///     .await?;
/// # let _ = inbox; Ok(()) }
/// ```
#[derive(Clone)]
pub struct InboxBuilder {
    url: String,
    keys: KeyStrategy,
    body_retention: Duration,
    key_retention: Duration,
    batch: BatchOptions,
    store: StoreOptions,
    max_connections: Option<u32>,
}

impl InboxBuilder {
    fn new(url: String) -> Self {
        Self {
            url,
            keys: KeyStrategy::default(),
            body_retention: DEFAULT_BODY_RETENTION,
            key_retention: DEFAULT_KEY_RETENTION,
            batch: BatchOptions {
                max_rows: DEFAULT_BATCH_SIZE,
                max_wait: Duration::ZERO,
                write_timeout: DEFAULT_WRITE_TIMEOUT,
            },
            store: StoreOptions {
                max_connections: 0,
                min_connections: 0,
                connect_timeout: Duration::from_secs(5),
                sqlite_busy_timeout: Duration::from_secs(5),
            },
            max_connections: None,
        }
    }

    /// How delivery keys are computed: by default the chatbot id plus the
    /// SHA-256 of the raw body ([`KeyStrategy::body_hash`]).
    pub fn key_strategy(mut self, keys: KeyStrategy) -> Self {
        self.keys = keys;
        self
    }

    /// A natural key read from each event by `key` (namespaced by the chatbot
    /// id): shorthand for [`KeyStrategy::natural`].
    pub fn natural_key<F>(self, key: F) -> Self
    where
        F: Fn(&ChatbaseEvent) -> Option<String> + Send + Sync + 'static,
    {
        self.key_strategy(KeyStrategy::natural(key))
    }

    /// How long the body of a processed delivery is kept after processing,
    /// default 7 days ([`DEFAULT_BODY_RETENTION`]). Bodies hold customer
    /// emails and phone numbers: keep them no longer than you need to
    /// investigate. Bodies of pending and dead deliveries are kept, as they
    /// are still needed.
    pub fn body_retention(mut self, retention: Duration) -> Self {
        self.body_retention = retention;
        self
    }

    /// How long a finished delivery (processed or dead) is kept, key and
    /// metadata, default 30 days ([`DEFAULT_KEY_RETENTION`]); no shorter than
    /// the body retention.
    ///
    /// **Replay protection lasts as long as keys are kept**: a delivery
    /// arriving again after its key was removed is stored and processed again.
    pub fn key_retention(mut self, retention: Duration) -> Self {
        self.key_retention = retention;
        self
    }

    /// The most writes one transaction holds, default
    /// [`DEFAULT_BATCH_SIZE`]. `1` commits every delivery on its own (one
    /// fsync each): the per-request baseline of the benchmarks.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch.max_rows = rows.max(1);
        self
    }

    /// How long the writer waits for more writes before committing a batch
    /// that is not full, default zero: a batch holds what queued up while the
    /// previous one was committing, which is enough under load and adds no
    /// latency when idle.
    pub fn batch_max_wait(mut self, wait: Duration) -> Self {
        self.batch.max_wait = wait;
        self
    }

    /// How long an [`accept`](Inbox::accept) may wait in all, in the queue and
    /// in its batch, before it gets [`InboxError::Timeout`] (and so its sender
    /// a 503 to retry): default 5 s, so that it is answered well within a
    /// receiver's request timeout even when the database is unreachable. A
    /// batch that takes longer is abandoned too, and nothing of it is
    /// committed; a delivery whose accept timed out while its batch committed
    /// is a duplicate when it is sent again.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.batch.write_timeout = timeout;
        self
    }

    /// The most connections the pool opens: default 4 for SQLite, 10 for
    /// PostgreSQL. With SQLite, the pool serves reads; this process's writes
    /// go through one more connection, kept for them.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Connections the pool keeps open when idle, default 0.
    pub fn min_connections(mut self, n: u32) -> Self {
        self.store.min_connections = n;
        self
    }

    /// How long to wait for a connection (connecting, or from the pool) before
    /// failing, default 5 s. An unreachable store fails after this, and never
    /// hangs a request.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.store.connect_timeout = timeout;
        self
    }

    /// SQLite only: how long a write waits for another process's write lock
    /// on the same file, default 5 s.
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.store.sqlite_busy_timeout = timeout;
        self
    }

    /// Opens the inbox (creating and migrating the store) and starts its
    /// writer task on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`InboxError`] for an invalid URL or option, or a store that cannot be
    /// opened or migrated.
    pub async fn open(self) -> Result<Inbox, InboxError> {
        if self.key_retention < self.body_retention {
            return Err(InboxError::InvalidConfig {
                reason: "the key retention must be at least the body retention",
            });
        }
        let mut store_options = self.store;
        let is_sqlite = self.url.starts_with("sqlite:");
        store_options.max_connections =
            self.max_connections
                .unwrap_or(if is_sqlite { 4 } else { 10 });
        let store = Store::open(&self.url, &store_options).await?;
        let (jobs, receiver) = mpsc::channel(self.batch.max_rows.saturating_mul(4).max(64));
        let counters = Arc::new(Counters::default());
        let stored = Arc::new(Notify::new());
        tokio::spawn(run_writer(
            store.clone(),
            receiver,
            self.batch,
            counters.clone(),
            stored.clone(),
        ));
        crate::observe::opened();
        Ok(Inbox {
            inner: Arc::new(Inner {
                store,
                jobs,
                counters,
                stored,
                keys: self.keys,
                body_retention: self.body_retention,
                key_retention: self.key_retention,
                write_timeout: self.batch.write_timeout,
            }),
        })
    }
}

impl fmt::Debug for InboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: not shown.
        f.debug_struct("InboxBuilder")
            .field("keys", &self.keys)
            .field("body_retention", &self.body_retention)
            .field("key_retention", &self.key_retention)
            .field("batch", &self.batch)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}
