//! The SQL behind the inbox, one module per database. Both modules offer the
//! same methods; [`Store`] picks one.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;

use crate::delivery::{Accepted, DeliveryRecord, State, time_from_millis};
use crate::error::InboxError;

/// The body of each store's `claim_in`: the same three statements (declare
/// dead the expired last attempts, take over expired leases, claim ready
/// deliveries) on its own connection type, with its own SQL.
macro_rules! claim_in_body {
    ($tx:expr, $request:expr, $sweep:expr, $expired:expr, $ready:expr) => {{
        let tx = $tx;
        let request: &ClaimRequest = $request;
        let mut swept_dead = 0;
        let mut rows: Vec<ClaimedRow> = Vec::new();
        if request.expired {
            swept_dead = sqlx::query($sweep)
                .bind(request.max_attempts)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            rows = sqlx::query_as($expired)
                .bind(request.lease_ms)
                .bind(request.max_attempts)
                .bind(request.limit)
                .fetch_all(&mut *tx)
                .await?;
        }
        let reclaimed = rows.len() as u64;
        let left = request.limit - rows.len() as i64;
        if left > 0 {
            rows.extend(
                sqlx::query_as::<_, ClaimedRow>($ready)
                    .bind(request.lease_ms)
                    .bind(left)
                    .fetch_all(&mut *tx)
                    .await?,
            );
        }
        rows.sort_by_key(|row| row.id);
        Ok(Claimed {
            rows,
            reclaimed,
            swept_dead,
        })
    }};
}

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// The name of the table sqlx records this crate's migrations in: not
/// `_sqlx_migrations`, so an application's own sqlx migrations on the same
/// database never see ours as unknown.
pub(crate) const MIGRATIONS_TABLE: &str = "_chatbase_inbox_migrations";

/// How many rows one retention statement removes, so that no statement holds
/// the write lock for long.
pub(crate) const RETENTION_CHUNK: i64 = 1000;

/// Connection settings common to both stores.
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    pub(crate) max_connections: u32,
    pub(crate) min_connections: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) sqlite_busy_timeout: Duration,
}

/// A delivery to store.
#[derive(Debug, Clone)]
pub(crate) struct NewRow {
    pub(crate) key: String,
    pub(crate) chatbot_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) body: Bytes,
}

/// How an attempt ended, as written to the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The handler succeeded.
    Processed,
    /// The handler failed: try again after `delay`.
    Retry {
        delay: Duration,
        error: Cow<'static, str>,
    },
    /// The handler failed for the last time.
    Dead { error: Cow<'static, str> },
    /// The worker is shutting down: back to pending, immediately claimable,
    /// the attempt not counted.
    Release,
}

/// One write of a group-commit batch.
#[derive(Debug)]
pub(crate) enum Write {
    /// Store a delivery unless its key is known.
    Insert(NewRow),
    /// Record an attempt's outcome, fenced by the lease token.
    Finish {
        id: i64,
        lease_token: i64,
        outcome: Outcome,
    },
    /// Claim deliveries for a worker, after the batch's other writes: the
    /// claim shares their transaction (and its commit) instead of paying for
    /// one of its own, and sees the deliveries they stored or released.
    Claim(ClaimRequest),
}

/// The answer to one [`Write`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    Accepted(Accepted),
    /// Whether the row was still ours (lease token unchanged).
    Finished(bool),
    Claimed(Claimed),
}

/// What a worker claims: up to `limit` deliveries under a lease of
/// `lease_ms`, pending ones whose backoff has passed and, with `expired`,
/// first those whose lease expired (declaring dead those whose expired lease
/// was their last attempt). The worker asks for expired leases once per poll
/// interval, not at every claim: they are rare, and each query is work in the
/// write transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClaimRequest {
    pub(crate) limit: i64,
    pub(crate) lease_ms: i64,
    pub(crate) max_attempts: i32,
    pub(crate) expired: bool,
}

impl ClaimRequest {
    pub(crate) fn new(limit: u32, lease: Duration, max_attempts: u32, expired: bool) -> Self {
        Self {
            limit: i64::from(limit),
            lease_ms: millis(lease),
            max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
            expired,
        }
    }
}

/// A delivery claimed by a worker.
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    pub(crate) id: i64,
    pub(crate) delivery_key: String,
    pub(crate) chatbot_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) received_at: i64,
    pub(crate) attempts: i32,
    pub(crate) lease_token: i64,
}

/// What one claim took: the deliveries to run, and what it found of
/// deliveries whose worker died.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Claimed {
    /// The deliveries claimed, by id.
    pub(crate) rows: Vec<ClaimedRow>,
    /// How many of them were taken over from a worker whose lease expired.
    pub(crate) reclaimed: u64,
    /// Deliveries whose lease expired during their last attempt, now dead.
    pub(crate) swept_dead: u64,
}

/// A row as operators see it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RecordRow {
    id: i64,
    delivery_key: String,
    chatbot_id: Option<String>,
    event_type: String,
    state: String,
    attempts: i32,
    received_at: i64,
    available_at: i64,
    locked_until: Option<i64>,
    finished_at: Option<i64>,
    last_error: Option<String>,
    body_len: Option<i64>,
}

impl RecordRow {
    pub(crate) fn into_record(self) -> Result<DeliveryRecord, InboxError> {
        let state = self
            .state
            .parse::<State>()
            .map_err(|_| InboxError::InvalidConfig {
                reason: "the inbox table holds a state this version does not know",
            })?;
        Ok(DeliveryRecord {
            id: self.id,
            key: self.delivery_key,
            chatbot_id: self.chatbot_id,
            event_type: self.event_type,
            state,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            received_at: time_from_millis(self.received_at),
            available_at: time_from_millis(self.available_at),
            locked_until: self.locked_until.map(time_from_millis),
            finished_at: self.finished_at.map(time_from_millis),
            last_error: self.last_error,
            body_len: self.body_len.and_then(|n| u64::try_from(n).ok()),
        })
    }
}

/// Counts per state and the oldest unfinished delivery's age in milliseconds.
#[derive(Debug, Default)]
pub(crate) struct RawStats {
    pub(crate) counts: Vec<(String, i64)>,
    pub(crate) oldest_pending_age_ms: Option<i64>,
}

/// The waiting deliveries (pending and processing): how many, and the
/// oldest one's age in milliseconds.
#[derive(Debug, Default, sqlx::FromRow)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct RawWaiting {
    pub(crate) count: i64,
    pub(crate) oldest_age_ms: Option<i64>,
}

/// PostgreSQL refuses NUL in text; a verified body could still carry one in its
/// `chatbotId` or `eventType` (JSON allows `\u0000`). These columns are
/// metadata (the body is stored exactly), so the character is replaced rather
/// than letting one delivery fail a whole batch.
#[cfg(feature = "postgres")]
pub(crate) fn text_column(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(value)
    }
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The inbox's database.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgStore),
}

/// Calls the same method on whichever store this is.
macro_rules! dispatch {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            Store::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Opens (creating and migrating) the store named by `url`.
    pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<Self, InboxError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => {
                #[cfg(feature = "sqlite")]
                return Ok(Self::Sqlite(sqlite::SqliteStore::open(url, options).await?));
                #[cfg(not(feature = "sqlite"))]
                Err(InboxError::InvalidUrl {
                    reason: "a sqlite: URL needs the `sqlite` feature of chatbase-inbox",
                })
            }
            "postgres" | "postgresql" => {
                #[cfg(feature = "postgres")]
                return Ok(Self::Postgres(postgres::PgStore::open(url, options).await?));
                #[cfg(not(feature = "postgres"))]
                Err(InboxError::InvalidUrl {
                    reason: "a postgres: URL needs the `postgres` feature of chatbase-inbox",
                })
            }
            _ => Err(InboxError::InvalidUrl {
                reason: "expected sqlite://<path>, postgres://... or postgresql://...",
            }),
        }
    }

    /// `sqlite` or `postgres`.
    pub(crate) fn kind(&self) -> &'static str {
        dispatch!(self, _s => _s.kind())
    }

    pub(crate) async fn write_batch(&self, writes: &[Write]) -> Result<Vec<Written>, sqlx::Error> {
        dispatch!(self, s => s.write_batch(writes).await)
    }

    /// Whether a worker's claims should go through the group commit
    /// ([`Write::Claim`]). SQLite has one writer at a time: a claim of its own
    /// would wait for the batch anyway, then pay for a commit of its own.
    /// PostgreSQL runs a claim on another connection while a batch commits.
    pub(crate) fn claims_in_batch(&self) -> bool {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(_) => true,
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => false,
        }
    }

    /// Claims deliveries outside the group commit (see [`ClaimRequest`]):
    /// on PostgreSQL on a connection of its own, on SQLite in a batch of one.
    pub(crate) async fn claim_alone(&self, request: ClaimRequest) -> Result<Claimed, sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => claimed(s.write_batch(&[Write::Claim(request)]).await?),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.claim_alone(request).await,
        }
    }

    /// Claims deliveries as the group commit does, in a batch of one.
    #[cfg(test)]
    pub(crate) async fn claim(
        &self,
        limit: u32,
        lease: Duration,
        max_attempts: u32,
        expired: bool,
    ) -> Result<Claimed, sqlx::Error> {
        let request = ClaimRequest::new(limit, lease, max_attempts, expired);
        claimed(self.write_batch(&[Write::Claim(request)]).await?)
    }

    pub(crate) async fn extend_lease(
        &self,
        id: i64,
        lease_token: i64,
        lease: Duration,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, s => s.extend_lease(id, lease_token, millis(lease)).await)
    }

    pub(crate) async fn get(&self, id: i64) -> Result<Option<RecordRow>, sqlx::Error> {
        dispatch!(self, s => s.get(id).await)
    }

    pub(crate) async fn list(
        &self,
        state: State,
        limit: u32,
    ) -> Result<Vec<RecordRow>, sqlx::Error> {
        dispatch!(self, s => s.list(state.as_str(), i64::from(limit)).await)
    }

    /// Dead to pending: one (`Some(id)`) or all.
    pub(crate) async fn requeue(&self, id: Option<i64>) -> Result<u64, sqlx::Error> {
        dispatch!(self, s => s.requeue(id).await)
    }

    /// Deletes finished deliveries in `state` finished more than `older_than` ago.
    pub(crate) async fn purge(
        &self,
        state: State,
        older_than: Duration,
    ) -> Result<u64, sqlx::Error> {
        let older_than = millis(older_than);
        let mut total = 0;
        loop {
            let n = dispatch!(self, s => s.purge_chunk(state.as_str(), older_than).await)?;
            total += n;
            if n < RETENTION_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// Removes the bodies of deliveries processed more than `older_than` ago.
    pub(crate) async fn remove_bodies(&self, older_than: Duration) -> Result<u64, sqlx::Error> {
        let older_than = millis(older_than);
        let mut total = 0;
        loop {
            let n = dispatch!(self, s => s.remove_bodies_chunk(older_than).await)?;
            total += n;
            if n < RETENTION_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    pub(crate) async fn stats(&self) -> Result<RawStats, sqlx::Error> {
        dispatch!(self, s => s.stats().await)
    }

    /// The waiting deliveries only: one statement over the index of states,
    /// cheap however many finished deliveries are kept.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) async fn waiting(&self) -> Result<RawWaiting, sqlx::Error> {
        dispatch!(self, s => s.waiting().await)
    }

    pub(crate) async fn close(&self) {
        dispatch!(self, s => s.close().await);
    }
}

/// The answer to a batch of one claim.
#[cfg_attr(not(any(test, feature = "sqlite")), allow(dead_code))]
fn claimed(mut written: Vec<Written>) -> Result<Claimed, sqlx::Error> {
    match written.pop() {
        Some(Written::Claimed(claimed)) => Ok(claimed),
        _ => Err(sqlx::Error::Protocol(
            "the store answered a claim with something else".into(),
        )),
    }
}

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "chatbase-inbox needs a store: enable the `sqlite` feature, the `postgres` feature, or both"
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn options() -> StoreOptions {
        StoreOptions {
            max_connections: 2,
            min_connections: 0,
            connect_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }

    fn row(key: &str) -> NewRow {
        NewRow {
            key: key.to_owned(),
            chatbot_id: Some("bot\0with a NUL".to_owned()),
            event_type: "leads.submit".to_owned(),
            body: Bytes::from_static(b"{}"),
        }
    }

    /// A worker whose lease expired and was taken over can no longer record
    /// an outcome or renew the lease: only the new owner's token counts.
    async fn outcomes_are_fenced_by_the_lease_token(store: Store) {
        let written = store
            .write_batch(&[Write::Insert(row("k1")), Write::Insert(row("k1"))])
            .await
            .unwrap();
        let Written::Accepted(Accepted::Stored { id }) = written[0] else {
            panic!("{written:?}");
        };
        assert_eq!(written[1], Written::Accepted(Accepted::Duplicate));

        let lease = Duration::from_millis(20);
        let first = store.claim(1, lease, 5, true).await.unwrap().rows;
        assert_eq!(first.len(), 1);
        let old = first[0].lease_token;
        assert!(
            store
                .claim(1, lease, 5, true)
                .await
                .unwrap()
                .rows
                .is_empty(),
            "leased"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        let second = store
            .claim(1, Duration::from_secs(60), 5, true)
            .await
            .unwrap();
        assert_eq!((second.reclaimed, second.swept_dead), (1, 0));
        let second = second.rows;
        assert_eq!((second[0].id, second[0].attempts), (id, 2));
        let new = second[0].lease_token;
        assert_ne!(old, new);

        assert!(!store.extend_lease(id, old, lease).await.unwrap());
        let stale = store
            .write_batch(&[Write::Finish {
                id,
                lease_token: old,
                outcome: Outcome::Processed,
            }])
            .await
            .unwrap();
        assert_eq!(stale, vec![Written::Finished(false)]);
        assert_eq!(
            store
                .get(id)
                .await
                .unwrap()
                .unwrap()
                .into_record()
                .unwrap()
                .state,
            State::Processing
        );

        assert!(store.extend_lease(id, new, lease).await.unwrap());
        let current = store
            .write_batch(&[Write::Finish {
                id,
                lease_token: new,
                outcome: Outcome::Dead { error: "x".into() },
            }])
            .await
            .unwrap();
        assert_eq!(current, vec![Written::Finished(true)]);
        let record = store.get(id).await.unwrap().unwrap().into_record().unwrap();
        assert_eq!(record.state, State::Dead);
        assert_eq!(
            record.chatbot_id.as_deref().map(|c| c.contains("bot")),
            Some(true)
        );
    }

    /// A delivery whose worker died during its last allowed attempt is dead,
    /// not retried forever.
    async fn expired_last_attempt_is_dead(store: Store) {
        store
            .write_batch(&[Write::Insert(row("k2"))])
            .await
            .unwrap();
        let claimed = store
            .claim(1, Duration::from_millis(20), 1, true)
            .await
            .unwrap();
        let id = claimed.rows[0].id;
        let waiting = store.waiting().await.unwrap();
        assert_eq!(waiting.count, 1);
        assert!(
            waiting.oldest_age_ms.is_some_and(|age| age >= 0),
            "{waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        let after = store
            .claim(1, Duration::from_secs(60), 1, true)
            .await
            .unwrap();
        assert!(after.rows.is_empty());
        assert_eq!((after.reclaimed, after.swept_dead), (0, 1));
        let waiting = store.waiting().await.unwrap();
        assert_eq!((waiting.count, waiting.oldest_age_ms), (0, None));
        let record = store.get(id).await.unwrap().unwrap().into_record().unwrap();
        assert_eq!(record.state, State::Dead);
        assert!(record.last_error.unwrap().contains("lease expired"));
    }

    /// Many deliveries finished in one batch (chunks of several sizes): each
    /// by its own lease token, a stale token refused, the other outcomes
    /// written beside them. Expired leases are taken over only when asked.
    async fn a_batch_finishes_each_delivery_by_its_token(store: Store) {
        let inserts: Vec<Write> = (0..75)
            .map(|i| Write::Insert(row(&format!("b{i}"))))
            .collect();
        store.write_batch(&inserts).await.unwrap();
        let lease = Duration::from_secs(60);
        let claimed = store.claim(100, lease, 5, false).await.unwrap().rows;
        assert_eq!(claimed.len(), 75);
        // A stale token for the first, a retry for the second, the rest processed.
        let mut finishes: Vec<Write> = claimed
            .iter()
            .map(|row| Write::Finish {
                id: row.id,
                lease_token: row.lease_token,
                outcome: Outcome::Processed,
            })
            .collect();
        finishes[0] = Write::Finish {
            id: claimed[0].id,
            lease_token: claimed[0].lease_token - 1,
            outcome: Outcome::Processed,
        };
        finishes[1] = Write::Finish {
            id: claimed[1].id,
            lease_token: claimed[1].lease_token,
            outcome: Outcome::Retry {
                delay: Duration::ZERO,
                error: "retry".into(),
            },
        };
        finishes.push(Write::Insert(row("b-late")));
        let written = store.write_batch(&finishes).await.unwrap();
        assert_eq!(written[0], Written::Finished(false));
        assert!(
            written[1..75].iter().all(|w| *w == Written::Finished(true)),
            "{written:?}"
        );
        assert!(matches!(
            written[75],
            Written::Accepted(Accepted::Stored { .. })
        ));
        let mut counts = store.stats().await.unwrap().counts;
        counts.sort();
        let expected = [("pending", 2), ("processed", 73), ("processing", 1)]
            .map(|(state, n)| (state.to_owned(), n));
        assert_eq!(counts, expected);

        // A lease that expires is taken over only with `expired`.
        let expired = store
            .claim(1, Duration::from_millis(20), 5, false)
            .await
            .unwrap();
        assert_eq!(expired.reclaimed, 0);
        let short = expired.rows;
        tokio::time::sleep(Duration::from_millis(80)).await;
        let without = store.claim(10, lease, 5, false).await.unwrap();
        assert_eq!(without.reclaimed, 0, "{without:?}");
        let with = store.claim(10, lease, 5, true).await.unwrap();
        assert_eq!(short.len(), 1);
        assert_eq!(with.reclaimed, 1, "{with:?}");
        assert_eq!(
            with.rows.first().map(|row| row.id),
            short.first().map(|row| row.id)
        );
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("unit.db").display());
        (Store::open(&url, &options()).await.unwrap(), dir)
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_outcomes_are_fenced_by_the_lease_token() {
        let (store, _dir) = sqlite_store().await;
        outcomes_are_fenced_by_the_lease_token(store).await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_a_batch_finishes_each_delivery_by_its_token() {
        let (store, _dir) = sqlite_store().await;
        a_batch_finishes_each_delivery_by_its_token(store).await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_expired_last_attempt_is_dead() {
        let (store, _dir) = sqlite_store().await;
        expired_last_attempt_is_dead(store).await;
    }

    /// A fresh database on `CHATBASE_TEST_POSTGRES_URL`'s server; `None` when
    /// unset (the integration suite prints the skip notice), a failure under CI.
    #[cfg(feature = "postgres")]
    async fn postgres_store() -> Option<Store> {
        use sqlx::Connection as _;
        let Ok(base) = std::env::var("CHATBASE_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CHATBASE_TEST_POSTGRES_URL is not set and CI=true"
            );
            return None;
        };
        let name = format!("inbox_unit_{}_{}", std::process::id(), fastrand::u64(..));
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let (head, _) = base.rsplit_once('/').unwrap();
        Some(
            Store::open(&format!("{head}/{name}"), &options())
                .await
                .unwrap(),
        )
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_outcomes_are_fenced_by_the_lease_token() {
        if let Some(store) = postgres_store().await {
            outcomes_are_fenced_by_the_lease_token(store).await;
        }
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_expired_last_attempt_is_dead() {
        if let Some(store) = postgres_store().await {
            expired_last_attempt_is_dead(store).await;
        }
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_a_batch_finishes_each_delivery_by_its_token() {
        if let Some(store) = postgres_store().await {
            a_batch_finishes_each_delivery_by_its_token(store).await;
        }
    }
}
