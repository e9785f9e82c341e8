//! Group commit: every write of this process (deliveries accepted, attempts
//! finished) goes to one writer task, which commits whatever is queued in one
//! transaction and then answers each waiter. Under concurrency, one fsync
//! covers many deliveries; alone, a delivery is committed at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::delivery::{Accepted, CommitStats};
use crate::error::InboxError;
use crate::store::{Store, Write, Written};

/// A write and who waits for its answer.
pub(crate) struct Job {
    pub(crate) write: Write,
    pub(crate) reply: oneshot::Sender<Result<Written, InboxError>>,
}

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchOptions {
    pub(crate) max_rows: usize,
    pub(crate) max_wait: Duration,
    pub(crate) write_timeout: Duration,
}

/// The writer's counters, shared with [`Inbox::commit_stats`](crate::Inbox::commit_stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    rows: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CommitStats {
        CommitStats {
            batches: self.batches.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The writer task: runs until every sender (every `Inbox` clone) is gone.
pub(crate) async fn run_writer(
    store: Store,
    mut jobs: mpsc::Receiver<Job>,
    options: BatchOptions,
    counters: Arc<Counters>,
    stored_notify: Arc<Notify>,
) {
    let max_rows = options.max_rows.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max_rows);
    loop {
        // Wait for one job, then take whatever else is already queued.
        if jobs.recv_many(&mut batch, max_rows).await == 0 {
            return;
        }
        if batch.len() < max_rows && !options.max_wait.is_zero() {
            let deadline = Instant::now() + options.max_wait;
            while batch.len() < max_rows {
                let room = max_rows - batch.len();
                match tokio::time::timeout_at(deadline, jobs.recv_many(&mut batch, room)).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        commit(&store, &mut batch, options, &counters, &stored_notify).await;
    }
}

async fn commit(
    store: &Store,
    batch: &mut Vec<Job>,
    options: BatchOptions,
    counters: &Counters,
    stored_notify: &Notify,
) {
    let (writes, replies): (Vec<Write>, Vec<_>) =
        batch.drain(..).map(|job| (job.write, job.reply)).unzip();
    let inserts = writes
        .iter()
        .filter(|w| matches!(w, Write::Insert(_)))
        .count() as u64;
    let result = match tokio::time::timeout(options.write_timeout, store.write_batch(&writes)).await
    {
        Ok(Ok(written)) if written.len() == replies.len() => Ok(written),
        Ok(Ok(_)) => Err(InboxError::InvalidConfig {
            reason: "the store answered a batch with the wrong number of results",
        }),
        Ok(Err(e)) => Err(InboxError::store("commit a batch", e)),
        Err(_) => Err(InboxError::Timeout),
    };
    match result {
        Ok(written) => {
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.rows.fetch_add(inserts, Ordering::Relaxed);
            let mut any_stored = false;
            for (answer, reply) in written.into_iter().zip(replies) {
                match answer {
                    Written::Accepted(Accepted::Stored { .. }) => {
                        any_stored = true;
                        counters.stored.fetch_add(1, Ordering::Relaxed);
                    }
                    Written::Accepted(Accepted::Duplicate) => {
                        counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    Written::Finished(_) | Written::Claimed(_) => {}
                }
                // The waiter may have gone (its request was dropped): the
                // delivery is stored all the same.
                let _ = reply.send(Ok(answer));
            }
            if any_stored {
                stored_notify.notify_one();
            }
        }
        Err(error) => {
            counters.failed.fetch_add(inserts, Ordering::Relaxed);
            tracing::warn!(%error, rows = replies.len(), "chatbase-inbox: a batch failed");
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
