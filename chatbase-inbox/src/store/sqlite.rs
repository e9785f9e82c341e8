//! SQLite: one file in WAL mode with `synchronous=FULL`, so a commit has
//! reached the disk when it returns. SQLite has one writer at a time: this
//! process's writes take turns on an async mutex (fair, no busy-sleeping), and
//! other processes on the same file wait through the busy timeout. A claim is
//! an `UPDATE ... RETURNING` in a short `BEGIN IMMEDIATE` transaction.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::{
    ClaimRequest, Claimed, ClaimedRow, MIGRATIONS_TABLE, NewRow, Outcome, RETENTION_CHUNK,
    RawStats, RawWaiting, RecordRow, StoreOptions, Write, Written, millis,
};
use crate::delivery::Accepted;
use crate::error::InboxError;

/// The database's clock, in milliseconds since the Unix epoch.
macro_rules! now {
    () => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}

/// Batches are written in chunks of at most this many rows, one statement
/// per chunk: a batch of up to 64 deliveries is one round trip (a message to
/// the connection's thread and back). There is a statement for each chunk
/// size, prepared on first use and kept in the writing connection's cache.
const MAX_CHUNK: usize = 64;

/// The writing connection's statement cache: the insert and finish
/// statements of every chunk size, and the others.
const WRITER_STATEMENT_CACHE: usize = 2 * MAX_CHUNK + 32;

/// Statements that change several rows of a batch say `OR IGNORE`. In a
/// transaction, a statement that may abort halfway needs a statement journal:
/// SQLite copies each page before the statement changes it, to undo that
/// statement alone. These statements cannot fail a constraint (the values
/// bound are never NULL, every state set is a valid one), and with `OR
/// IGNORE` SQLite knows it and keeps no such copies.
///
/// `INSERT OR IGNORE ... VALUES (...), (...) ON CONFLICT DO NOTHING
/// RETURNING` for each chunk size. A key already stored, or earlier in the
/// statement, is skipped.
fn insert_statement(rows: usize) -> &'static str {
    static STATEMENTS: OnceLock<Vec<String>> = OnceLock::new();
    let statements = STATEMENTS.get_or_init(|| {
        (1..=MAX_CHUNK)
            .map(|n| {
                let row = concat!("(?, ?, ?, ?, ", now!(), ", ", now!(), ")");
                format!(
                    "INSERT OR IGNORE INTO chatbase_inbox_deliveries \
                     (delivery_key, chatbot_id, event_type, body, received_at, available_at) \
                     VALUES {} ON CONFLICT (delivery_key) DO NOTHING RETURNING id, delivery_key",
                    vec![row; n].join(", ")
                )
            })
            .collect()
    });
    statements
        .get(rows.clamp(1, MAX_CHUNK) - 1)
        .map_or("", String::as_str)
}

/// `UPDATE OR IGNORE ... FROM (VALUES (?, ?), ...) RETURNING id` marking processed the
/// deliveries of a chunk of (id, lease token) pairs, for each chunk size; a
/// delivery whose lease token changed (it was taken over) is left alone.
fn finish_processed_statement(rows: usize) -> &'static str {
    static STATEMENTS: OnceLock<Vec<String>> = OnceLock::new();
    let statements = STATEMENTS.get_or_init(|| {
        (1..=MAX_CHUNK)
            .map(|n| {
                format!(
                    "UPDATE OR IGNORE chatbase_inbox_deliveries SET state = 'processed', \
                     locked_until = NULL, finished_at = {} \
                     FROM (VALUES {}) AS f \
                     WHERE chatbase_inbox_deliveries.id = f.column1 \
                     AND chatbase_inbox_deliveries.lease_token = f.column2 \
                     AND chatbase_inbox_deliveries.state = 'processing' \
                     RETURNING chatbase_inbox_deliveries.id",
                    now!(),
                    vec!["(?, ?)"; n].join(", ")
                )
            })
            .collect()
    });
    statements
        .get(rows.clamp(1, MAX_CHUNK) - 1)
        .map_or("", String::as_str)
}

const FINISH_RETRY: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', locked_until = NULL, available_at = ",
    now!(),
    " + ?3, last_error = ?4 WHERE id = ?1 AND lease_token = ?2 AND state = 'processing'"
);

const FINISH_DEAD: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'dead', locked_until = NULL, finished_at = ",
    now!(),
    ", last_error = ?3 WHERE id = ?1 AND lease_token = ?2 AND state = 'processing'"
);

const FINISH_RELEASE: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', locked_until = NULL, available_at = ",
    now!(),
    ", attempts = MAX(attempts - 1, 0) WHERE id = ?1 AND lease_token = ?2 AND state = 'processing'"
);

/// Deliveries whose worker died during their last allowed attempt are dead.
const SWEEP_EXPIRED_LAST: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'dead', locked_until = NULL, finished_at = ",
    now!(),
    ", last_error = 'the lease expired during the last attempt (the worker stopped or hung)' ",
    "WHERE state = 'processing' AND locked_until <= ",
    now!(),
    " AND attempts >= ?1"
);

/// Reclaims deliveries whose lease expired (their worker died or hung).
const CLAIM_EXPIRED: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET attempts = attempts + 1, lease_token = lease_token + 1, ",
    "locked_until = ",
    now!(),
    " + ?1 WHERE id IN (SELECT id FROM chatbase_inbox_deliveries ",
    "WHERE state = 'processing' AND locked_until <= ",
    now!(),
    " AND attempts < ?2 ORDER BY locked_until LIMIT ?3) ",
    "RETURNING id, delivery_key, chatbot_id, event_type, body, received_at, attempts, lease_token"
);

/// Claims pending deliveries whose backoff has passed, oldest first (`OR
/// IGNORE`: see [`insert_statement`]). The
/// partial index of pending deliveries is named: without statistics SQLite
/// would pick the index on `state` and sort every pending delivery at each
/// claim, which makes a backlog slower to drain the larger it grows.
///
/// The limit is `CAST(?2 AS INTEGER)`, not a bare `?2`: SQLite plans a bare
/// parameter in `LIMIT` for its value, so it would prepare the statement
/// again at every claim, whose limit is bound afresh each time.
const CLAIM_READY: &str = concat!(
    "UPDATE OR IGNORE chatbase_inbox_deliveries SET state = 'processing', attempts = attempts + 1, ",
    "lease_token = lease_token + 1, locked_until = ",
    now!(),
    " + ?1 WHERE id IN (SELECT id FROM chatbase_inbox_deliveries INDEXED BY chatbase_inbox_ready ",
    "WHERE state = 'pending' AND available_at <= ",
    now!(),
    " ORDER BY available_at LIMIT CAST(?2 AS INTEGER)) ",
    "RETURNING id, delivery_key, chatbot_id, event_type, body, received_at, attempts, lease_token"
);

const EXTEND_LEASE: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET locked_until = ",
    now!(),
    " + ?3 WHERE id = ?1 AND lease_token = ?2 AND state = 'processing'"
);

const GET: &str = concat!(
    "SELECT id, delivery_key, chatbot_id, event_type, state, attempts, received_at, available_at, ",
    "locked_until, finished_at, last_error, length(body) AS body_len ",
    "FROM chatbase_inbox_deliveries WHERE id = ?1"
);

const LIST: &str = concat!(
    "SELECT id, delivery_key, chatbot_id, event_type, state, attempts, received_at, available_at, ",
    "locked_until, finished_at, last_error, length(body) AS body_len ",
    "FROM chatbase_inbox_deliveries WHERE state = ?1 ORDER BY id LIMIT ?2"
);

const REQUEUE_ONE: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', attempts = 0, finished_at = NULL, ",
    "available_at = ",
    now!(),
    " WHERE id = ?1 AND state = 'dead'"
);

const REQUEUE_ALL: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', attempts = 0, finished_at = NULL, ",
    "available_at = ",
    now!(),
    " WHERE state = 'dead'"
);

const PURGE_CHUNK: &str = concat!(
    "DELETE FROM chatbase_inbox_deliveries WHERE id IN (SELECT id FROM chatbase_inbox_deliveries ",
    "WHERE state = ?1 AND finished_at < ",
    now!(),
    " - ?2 LIMIT ?3)"
);

const REMOVE_BODIES_CHUNK: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET body = NULL WHERE id IN (SELECT id FROM ",
    "chatbase_inbox_deliveries WHERE state = 'processed' AND finished_at < ",
    now!(),
    " - ?1 AND body IS NOT NULL LIMIT ?2)"
);

const COUNTS: &str = "SELECT state, COUNT(*) FROM chatbase_inbox_deliveries GROUP BY state";

const WAITING: &str = concat!(
    "SELECT COUNT(*) AS count, ",
    now!(),
    " - MIN(received_at) AS oldest_age_ms FROM chatbase_inbox_deliveries ",
    "WHERE state IN ('pending', 'processing')"
);

const OLDEST_PENDING_AGE: &str = concat!(
    "SELECT ",
    now!(),
    " - MIN(received_at) FROM chatbase_inbox_deliveries WHERE state IN ('pending', 'processing')"
);

/// Whether SQLite answered `SQLITE_BUSY` (its primary code 5, whatever the
/// extended one).
fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// Claims deliveries in the transaction `tx` holds (see [`ClaimRequest`]).
async fn claim_in(
    tx: &mut SqliteConnection,
    request: &ClaimRequest,
) -> Result<Claimed, sqlx::Error> {
    claim_in_body!(tx, request, SWEEP_EXPIRED_LAST, CLAIM_EXPIRED, CLAIM_READY)
}

/// SQLite: this process's writes take turns on one connection of their own,
/// reads go through a pool.
///
/// One writing connection keeps its page cache: SQLite empties a connection's
/// cache when another connection has written to the file since its last
/// transaction, so writers that alternate would re-read the pages they touch.
/// It also skips the pool's acquire and health check, which on SQLite are
/// round trips to the connection's thread.
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    writer: Arc<Mutex<Option<SqliteConnection>>>,
}

impl SqliteStore {
    pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<Self, InboxError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|_| InboxError::InvalidUrl {
                reason: "not a valid sqlite: URL (expected sqlite://<path>)",
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.sqlite_busy_timeout)
            // A statement that changes many rows keeps the pages it changes in
            // a statement journal (to undo itself alone on error): in memory,
            // not in a temporary file written page by page.
            .pragma("temp_store", "memory")
            // Copy the WAL back into the database every 10,000 pages (40 MiB)
            // rather than 1,000: pages written many times (the ends of the
            // table and its indexes) are copied once per checkpoint.
            .pragma("wal_autocheckpoint", "10000");
        // Create the file's directory, as the file itself is created.
        if let Some(parent) = connect.get_filename().parent()
            && !parent.as_os_str().is_empty()
            && url != "sqlite::memory:"
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                InboxError::store("create the database's directory", sqlx::Error::Io(e))
            })?;
        }
        // Several processes opening one new file at once race to switch it to
        // WAL, and SQLite answers the losers SQLITE_BUSY at once, without
        // waiting out the busy timeout: try again, as for the migrations.
        let mut attempt = 0;
        let mut writer = loop {
            let writing = connect
                .clone()
                .statement_cache_capacity(WRITER_STATEMENT_CACHE)
                // Keys are hashes, so inserts land all over the key index: a
                // page cache of 16 MiB (SQLite's default is 2 MiB) keeps the
                // index in memory instead of re-reading it for every insert.
                .pragma("cache_size", "-16384");
            let opened = tokio::time::timeout(options.connect_timeout, writing.connect()).await;
            match opened {
                Ok(Ok(connection)) => break connection,
                Ok(Err(e)) if is_busy(&e) && attempt < 8 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Ok(Err(e)) => return Err(InboxError::store("open the SQLite database", e)),
                Err(_) => return Err(InboxError::Timeout),
            }
        };

        let mut migrator = sqlx::migrate!("migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        // SQLite has no migration lock: when several processes open a new file
        // at once, one of them loses the race and finds the work done on retry.
        let mut attempt = 0;
        loop {
            match migrator.run(&mut writer).await {
                Ok(()) => break,
                // Up to 8 tries over about 2 s: several processes (or tests)
                // opening one new file under load may lose the race more than
                // once.
                Err(_) if attempt < 8 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => {
                    return Err(InboxError::Migrate {
                        source: Arc::new(e),
                    });
                }
            }
        }
        // The file exists and is in WAL mode: the readers open it as is.
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(options.min_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| InboxError::store("open the SQLite database", e))?;
        Ok(Self {
            pool,
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// This process's turn to write, on the writing connection.
    async fn writer(&self) -> Result<MappedMutexGuard<'_, SqliteConnection>, sqlx::Error> {
        MutexGuard::try_map(self.writer.lock().await, Option::as_mut)
            .map_err(|_| sqlx::Error::PoolClosed)
    }

    pub(crate) fn kind(&self) -> &'static str {
        "sqlite"
    }

    pub(crate) async fn write_batch(&self, writes: &[Write]) -> Result<Vec<Written>, sqlx::Error> {
        let rows: Vec<&NewRow> = writes
            .iter()
            .filter_map(|write| match write {
                Write::Insert(row) => Some(row),
                Write::Finish { .. } | Write::Claim(_) => None,
            })
            .collect();

        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut stored: HashMap<&str, i64> = HashMap::new();
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(MAX_CHUNK.min(rest.len()));
            rest = tail;
            let mut query = sqlx::query_as::<_, (i64, String)>(insert_statement(chunk.len()));
            for row in chunk {
                query = query
                    .bind(row.key.as_str())
                    .bind(row.chatbot_id.as_deref())
                    .bind(row.event_type.as_str())
                    .bind(row.body.as_ref());
            }
            for (id, key) in query.fetch_all(&mut *tx).await? {
                // The key of a row of this chunk, so it lives as long as `writes`.
                if let Some(row) = chunk.iter().find(|row| row.key == key) {
                    stored.insert(row.key.as_str(), id);
                }
            }
        }
        // Processed deliveries, the common outcome, in a few statements for
        // the whole batch; the others one by one.
        let processed: Vec<(i64, i64)> = writes
            .iter()
            .filter_map(|write| match write {
                Write::Finish {
                    id,
                    lease_token,
                    outcome: Outcome::Processed,
                } => Some((*id, *lease_token)),
                _ => None,
            })
            .collect();
        let mut processed_ids = HashSet::new();
        let mut rest = processed.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(MAX_CHUNK.min(rest.len()));
            rest = tail;
            let mut query = sqlx::query_scalar::<_, i64>(finish_processed_statement(chunk.len()));
            for (id, lease_token) in chunk {
                query = query.bind(id).bind(lease_token);
            }
            processed_ids.extend(query.fetch_all(&mut *tx).await?);
        }
        let mut finished = Vec::new();
        for write in writes {
            if let Write::Finish {
                id,
                lease_token,
                outcome,
            } = write
            {
                let query = match outcome {
                    Outcome::Processed => {
                        finished.push(processed_ids.contains(id));
                        continue;
                    }
                    Outcome::Retry { delay, error } => sqlx::query(FINISH_RETRY)
                        .bind(id)
                        .bind(lease_token)
                        .bind(millis(*delay))
                        .bind(error.as_ref()),
                    Outcome::Dead { error } => sqlx::query(FINISH_DEAD)
                        .bind(id)
                        .bind(lease_token)
                        .bind(error.as_ref()),
                    Outcome::Release => sqlx::query(FINISH_RELEASE).bind(id).bind(lease_token),
                };
                finished.push(query.execute(&mut *tx).await?.rows_affected() == 1);
            }
        }
        // Claims last: they see what this batch stored and released.
        let mut claimed = Vec::new();
        for write in writes {
            if let Write::Claim(request) = write {
                claimed.push(claim_in(&mut tx, request).await?);
            }
        }
        tx.commit().await?;

        // The first write of a stored key gets its id; later ones (and keys
        // that were already there) are duplicates.
        let mut finished = finished.into_iter();
        let mut claimed = claimed.into_iter();
        Ok(writes
            .iter()
            .map(|write| match write {
                Write::Insert(row) => Written::Accepted(match stored.remove(row.key.as_str()) {
                    Some(id) => Accepted::Stored { id },
                    None => Accepted::Duplicate,
                }),
                Write::Finish { .. } => Written::Finished(finished.next().unwrap_or(false)),
                Write::Claim(_) => Written::Claimed(claimed.next().unwrap_or_default()),
            })
            .collect())
    }

    pub(crate) async fn extend_lease(
        &self,
        id: i64,
        lease_token: i64,
        lease_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut writer = self.writer().await?;
        let done = sqlx::query(EXTEND_LEASE)
            .bind(id)
            .bind(lease_token)
            .bind(lease_ms)
            .execute(&mut *writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn get(&self, id: i64) -> Result<Option<RecordRow>, sqlx::Error> {
        sqlx::query_as(GET)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub(crate) async fn list(
        &self,
        state: &str,
        limit: i64,
    ) -> Result<Vec<RecordRow>, sqlx::Error> {
        sqlx::query_as(LIST)
            .bind(state)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }

    pub(crate) async fn requeue(&self, id: Option<i64>) -> Result<u64, sqlx::Error> {
        let mut writer = self.writer().await?;
        let query = match id {
            Some(id) => sqlx::query(REQUEUE_ONE).bind(id),
            None => sqlx::query(REQUEUE_ALL),
        };
        Ok(query.execute(&mut *writer).await?.rows_affected())
    }

    pub(crate) async fn purge_chunk(
        &self,
        state: &str,
        older_than_ms: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut writer = self.writer().await?;
        let done = sqlx::query(PURGE_CHUNK)
            .bind(state)
            .bind(older_than_ms)
            .bind(RETENTION_CHUNK)
            .execute(&mut *writer)
            .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn remove_bodies_chunk(&self, older_than_ms: i64) -> Result<u64, sqlx::Error> {
        let mut writer = self.writer().await?;
        let done = sqlx::query(REMOVE_BODIES_CHUNK)
            .bind(older_than_ms)
            .bind(RETENTION_CHUNK)
            .execute(&mut *writer)
            .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn stats(&self) -> Result<RawStats, sqlx::Error> {
        let counts: Vec<(String, i64)> = sqlx::query_as(COUNTS).fetch_all(&self.pool).await?;
        let oldest_pending_age_ms: Option<i64> = sqlx::query_scalar(OLDEST_PENDING_AGE)
            .fetch_one(&self.pool)
            .await?;
        Ok(RawStats {
            counts,
            oldest_pending_age_ms,
        })
    }

    pub(crate) async fn waiting(&self) -> Result<RawWaiting, sqlx::Error> {
        sqlx::query_as(WAITING).fetch_one(&self.pool).await
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
        // Waits for the write in progress, if any; later writes fail.
        if let Some(writer) = self.writer.lock().await.take() {
            let _ = writer.close().await;
        }
    }
}
