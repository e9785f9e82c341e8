//! PostgreSQL: several receivers share one database. Every connection sets
//! `synchronous_commit=on`, so a commit has reached the disk (and any
//! synchronous standby) when it returns. Workers claim with
//! `FOR UPDATE SKIP LOCKED` and a lease, so no two processes hold one delivery.
//! Times come from the database's clock, which every host shares.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::{
    ClaimRequest, Claimed, ClaimedRow, MIGRATIONS_TABLE, Outcome, RETENTION_CHUNK, RawStats,
    RawWaiting, RecordRow, StoreOptions, Write, Written, millis, text_column,
};
use crate::delivery::Accepted;
use crate::error::InboxError;

/// The database's clock, in milliseconds since the Unix epoch.
macro_rules! now {
    () => {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    };
}

/// One statement stores a whole batch. Rows go in key order, so two receivers
/// inserting overlapping batches lock keys in the same order and cannot
/// deadlock; a key already present (or earlier in the batch) is skipped.
const INSERT_BATCH: &str = concat!(
    "INSERT INTO chatbase_inbox_deliveries ",
    "(delivery_key, chatbot_id, event_type, body, received_at, available_at) ",
    "SELECT r.k, r.c, r.e, r.b, ",
    now!(),
    ", ",
    now!(),
    " FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[]) AS r(k, c, e, b) ",
    "ORDER BY r.k ON CONFLICT (delivery_key) DO NOTHING RETURNING id, delivery_key"
);

/// Marks processed the deliveries of a batch, given as arrays of ids and lease
/// tokens; a delivery whose lease token changed (it was taken over) is left
/// alone.
const FINISH_PROCESSED: &str = concat!(
    "UPDATE chatbase_inbox_deliveries AS d SET state = 'processed', locked_until = NULL, ",
    "finished_at = ",
    now!(),
    " FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS f(id, token) ",
    "WHERE d.id = f.id AND d.lease_token = f.token AND d.state = 'processing' RETURNING d.id"
);

const FINISH_RETRY: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', locked_until = NULL, available_at = ",
    now!(),
    " + $3, last_error = $4 WHERE id = $1 AND lease_token = $2 AND state = 'processing'"
);

const FINISH_DEAD: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'dead', locked_until = NULL, finished_at = ",
    now!(),
    ", last_error = $3 WHERE id = $1 AND lease_token = $2 AND state = 'processing'"
);

const FINISH_RELEASE: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', locked_until = NULL, available_at = ",
    now!(),
    ", attempts = GREATEST(attempts - 1, 0) WHERE id = $1 AND lease_token = $2 ",
    "AND state = 'processing'"
);

/// Deliveries whose worker died during their last allowed attempt are dead.
const SWEEP_EXPIRED_LAST: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'dead', locked_until = NULL, finished_at = ",
    now!(),
    ", last_error = 'the lease expired during the last attempt (the worker stopped or hung)' ",
    "WHERE id IN (SELECT id FROM chatbase_inbox_deliveries WHERE state = 'processing' ",
    "AND locked_until <= ",
    now!(),
    " AND attempts >= $1 FOR UPDATE SKIP LOCKED)"
);

/// Reclaims deliveries whose lease expired (their worker died or hung).
const CLAIM_EXPIRED: &str = concat!(
    "UPDATE chatbase_inbox_deliveries AS d SET attempts = d.attempts + 1, ",
    "lease_token = d.lease_token + 1, locked_until = ",
    now!(),
    " + $1 FROM (SELECT id FROM chatbase_inbox_deliveries WHERE state = 'processing' ",
    "AND locked_until <= ",
    now!(),
    " AND attempts < $2 ORDER BY locked_until LIMIT $3 FOR UPDATE SKIP LOCKED) AS picked ",
    "WHERE d.id = picked.id ",
    "RETURNING d.id, d.delivery_key, d.chatbot_id, d.event_type, d.body, d.received_at, ",
    "d.attempts, d.lease_token"
);

/// Claims pending deliveries whose backoff has passed.
const CLAIM_READY: &str = concat!(
    "UPDATE chatbase_inbox_deliveries AS d SET state = 'processing', attempts = d.attempts + 1, ",
    "lease_token = d.lease_token + 1, locked_until = ",
    now!(),
    " + $1 FROM (SELECT id FROM chatbase_inbox_deliveries WHERE state = 'pending' ",
    "AND available_at <= ",
    now!(),
    " ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED) AS picked ",
    "WHERE d.id = picked.id ",
    "RETURNING d.id, d.delivery_key, d.chatbot_id, d.event_type, d.body, d.received_at, ",
    "d.attempts, d.lease_token"
);

const EXTEND_LEASE: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET locked_until = ",
    now!(),
    " + $3 WHERE id = $1 AND lease_token = $2 AND state = 'processing'"
);

const GET: &str = concat!(
    "SELECT id, delivery_key, chatbot_id, event_type, state, attempts, received_at, available_at, ",
    "locked_until, finished_at, last_error, CAST(octet_length(body) AS BIGINT) AS body_len ",
    "FROM chatbase_inbox_deliveries WHERE id = $1"
);

const LIST: &str = concat!(
    "SELECT id, delivery_key, chatbot_id, event_type, state, attempts, received_at, available_at, ",
    "locked_until, finished_at, last_error, CAST(octet_length(body) AS BIGINT) AS body_len ",
    "FROM chatbase_inbox_deliveries WHERE state = $1 ORDER BY id LIMIT $2"
);

const REQUEUE_ONE: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', attempts = 0, finished_at = NULL, ",
    "available_at = ",
    now!(),
    " WHERE id = $1 AND state = 'dead'"
);

const REQUEUE_ALL: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET state = 'pending', attempts = 0, finished_at = NULL, ",
    "available_at = ",
    now!(),
    " WHERE state = 'dead'"
);

const PURGE_CHUNK: &str = concat!(
    "DELETE FROM chatbase_inbox_deliveries WHERE id IN (SELECT id FROM chatbase_inbox_deliveries ",
    "WHERE state = $1 AND finished_at < ",
    now!(),
    " - $2 LIMIT $3 FOR UPDATE SKIP LOCKED)"
);

const REMOVE_BODIES_CHUNK: &str = concat!(
    "UPDATE chatbase_inbox_deliveries SET body = NULL WHERE id IN (SELECT id FROM ",
    "chatbase_inbox_deliveries WHERE state = 'processed' AND finished_at < ",
    now!(),
    " - $1 AND body IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED)"
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

/// Claims deliveries in the transaction `tx` holds (see [`ClaimRequest`]).
async fn claim_in(tx: &mut PgConnection, request: &ClaimRequest) -> Result<Claimed, sqlx::Error> {
    claim_in_body!(tx, request, SWEEP_EXPIRED_LAST, CLAIM_EXPIRED, CLAIM_READY)
}

/// PostgreSQL behind a pool.
#[derive(Debug, Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<Self, InboxError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| InboxError::InvalidUrl {
                reason: "not a valid postgres:// URL",
            })?
            // Said explicitly: a server or role default of `off` or `local`
            // would acknowledge commits that a crash can still lose.
            .options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(options.min_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| InboxError::store("connect to PostgreSQL", e))?;

        // sqlx holds an advisory lock while migrating, so several instances
        // starting at once apply each migration once.
        let mut migrator = sqlx::migrate!("migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await.map_err(|e| InboxError::Migrate {
            source: Arc::new(e),
        })?;
        Ok(Self { pool })
    }

    pub(crate) fn kind(&self) -> &'static str {
        "postgres"
    }

    pub(crate) async fn write_batch(&self, writes: &[Write]) -> Result<Vec<Written>, sqlx::Error> {
        let mut keys = Vec::new();
        let mut chatbots = Vec::new();
        let mut event_types = Vec::new();
        let mut bodies: Vec<&[u8]> = Vec::new();
        let mut finishes = Vec::new();
        for (index, write) in writes.iter().enumerate() {
            match write {
                Write::Insert(row) => {
                    keys.push(text_column(&row.key).into_owned());
                    chatbots.push(
                        row.chatbot_id
                            .as_deref()
                            .map(|c| text_column(c).into_owned()),
                    );
                    event_types.push(text_column(&row.event_type).into_owned());
                    bodies.push(row.body.as_ref());
                }
                Write::Finish {
                    id,
                    lease_token,
                    outcome,
                } => finishes.push((index, *id, *lease_token, outcome)),
                Write::Claim(_) => {}
            }
        }
        // Finishes in id order, for the same reason inserts go in key order.
        finishes.sort_by_key(|(_, id, _, _)| *id);

        let mut tx = self.pool.begin().await?;
        let mut stored: HashMap<String, i64> = HashMap::new();
        if !keys.is_empty() {
            let rows: Vec<(i64, String)> = sqlx::query_as(INSERT_BATCH)
                .bind(&keys)
                .bind(&chatbots)
                .bind(&event_types)
                .bind(&bodies)
                .fetch_all(&mut *tx)
                .await?;
            stored = rows.into_iter().map(|(id, key)| (key, id)).collect();
        }
        let mut finished = HashMap::new();
        // Processed deliveries, the common outcome, in one statement; the
        // others one by one.
        let (processed, others): (Vec<_>, Vec<_>) = finishes
            .into_iter()
            .partition(|(_, _, _, outcome)| matches!(outcome, Outcome::Processed));
        if !processed.is_empty() {
            let ids: Vec<i64> = processed.iter().map(|(_, id, _, _)| *id).collect();
            let tokens: Vec<i64> = processed.iter().map(|(_, _, token, _)| *token).collect();
            let done: HashSet<i64> = sqlx::query_scalar(FINISH_PROCESSED)
                .bind(&ids)
                .bind(&tokens)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            for (index, id, _, _) in &processed {
                finished.insert(*index, done.contains(id));
            }
        }
        for (index, id, lease_token, outcome) in others {
            let query = match outcome {
                Outcome::Processed => continue,
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
            let done = query.execute(&mut *tx).await?;
            finished.insert(index, done.rows_affected() == 1);
        }
        // Claims last: they see what this batch stored and released. Their
        // rows stay locked until the commit, so no other worker takes them.
        let mut claimed = HashMap::new();
        for (index, write) in writes.iter().enumerate() {
            if let Write::Claim(request) = write {
                claimed.insert(index, claim_in(&mut tx, request).await?);
            }
        }
        tx.commit().await?;

        // The first write of a stored key gets its id; later ones (and keys
        // that were already there) are duplicates.
        let mut key_index = 0;
        let mut written = Vec::with_capacity(writes.len());
        for (index, write) in writes.iter().enumerate() {
            written.push(match write {
                Write::Insert(_) => {
                    let key = keys.get(key_index).map(String::as_str).unwrap_or_default();
                    key_index += 1;
                    Written::Accepted(match stored.remove(key) {
                        Some(id) => Accepted::Stored { id },
                        None => Accepted::Duplicate,
                    })
                }
                Write::Finish { .. } => {
                    Written::Finished(finished.get(&index).copied().unwrap_or(false))
                }
                Write::Claim(_) => Written::Claimed(claimed.remove(&index).unwrap_or_default()),
            });
        }
        Ok(written)
    }

    /// A claim on a connection of its own, each statement committed alone
    /// (`FOR UPDATE SKIP LOCKED` keeps two workers off one delivery), while
    /// the group commit goes on on another connection.
    pub(crate) async fn claim_alone(&self, request: ClaimRequest) -> Result<Claimed, sqlx::Error> {
        let mut connection = self.pool.acquire().await?;
        claim_in(&mut connection, &request).await
    }

    pub(crate) async fn extend_lease(
        &self,
        id: i64,
        lease_token: i64,
        lease_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(EXTEND_LEASE)
            .bind(id)
            .bind(lease_token)
            .bind(lease_ms)
            .execute(&self.pool)
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
        let query = match id {
            Some(id) => sqlx::query(REQUEUE_ONE).bind(id),
            None => sqlx::query(REQUEUE_ALL),
        };
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    pub(crate) async fn purge_chunk(
        &self,
        state: &str,
        older_than_ms: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(PURGE_CHUNK)
            .bind(state)
            .bind(older_than_ms)
            .bind(RETENTION_CHUNK)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn remove_bodies_chunk(&self, older_than_ms: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(REMOVE_BODIES_CHUNK)
            .bind(older_than_ms)
            .bind(RETENTION_CHUNK)
            .execute(&self.pool)
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
    }
}
