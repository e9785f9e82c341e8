//! What the inbox does, for operators: with the `metrics` feature, counters
//! of accepts and attempts, and gauges of the backlog.
//!
//! Emitted through the [`metrics`](https://docs.rs/metrics) facade: the
//! library never installs a recorder, the application chooses the exporter
//! (for Prometheus, `metrics-exporter-prometheus`). Label values are fixed
//! strings; there is no chatbot label.
//!
//! | metric | type | labels | what it counts or shows | emitted by |
//! |---|---|---|---|---|
//! | `chatbase_inbox_accepted_total` | counter | `result` | every [`Inbox::accept`](crate::Inbox::accept): `result` is `stored`, `duplicate` or `failed` (answered an [`InboxError`]: a 503) | `Inbox::accept` |
//! | `chatbase_inbox_processed_total` | counter | | deliveries the handler processed | the [`Worker`](crate::Worker) |
//! | `chatbase_inbox_retries_total` | counter | | failed attempts that will be retried: the handler failed (or panicked) before its last attempt, or the attempt's worker died and its lease expired | the `Worker` |
//! | `chatbase_inbox_dead_total` | counter | | deliveries declared dead: the handler failed for the last time (or permanently), or the worker died during the last attempt | the `Worker` |
//! | `chatbase_inbox_pending` | gauge | | deliveries waiting: pending (including those waiting for a retry's backoff) and processing | the `Worker`, and [`record_stats`] |
//! | `chatbase_inbox_oldest_pending_age_seconds` | gauge | | how long the oldest waiting delivery has been in the inbox, 0 when none: the worker's lag | the `Worker`, and [`record_stats`] |
//!
//! Counters count what this process did. The gauges describe the whole
//! store, which every process sharing a PostgreSQL database sees alike: sum
//! the counters across instances, but take the `max` of the gauges. A running
//! worker refreshes the gauges from the database when it starts, then every
//! [poll interval](crate::Worker::poll_interval), at most once a second, with
//! one cheap query (it reads the waiting deliveries only). The counters are
//! exported at zero from the start (the accept counters when the inbox opens,
//! the worker's when it starts), so that Prometheus's `rate` and `increase`
//! count the first event too.
//!
//! The names and label values are stable.

use std::time::Duration;

use crate::delivery::{Accepted, Stats};
use crate::error::InboxError;
use crate::store::Outcome;

/// The names of every metric this crate emits (feature `metrics`).
pub const METRIC_NAMES: [&str; 6] = [
    ACCEPTED_TOTAL,
    PROCESSED_TOTAL,
    RETRIES_TOTAL,
    DEAD_TOTAL,
    PENDING,
    OLDEST_PENDING_AGE_SECONDS,
];

/// `chatbase_inbox_accepted_total{result}`: `stored`, `duplicate` or `failed`.
pub const ACCEPTED_TOTAL: &str = "chatbase_inbox_accepted_total";
/// `chatbase_inbox_processed_total`.
pub const PROCESSED_TOTAL: &str = "chatbase_inbox_processed_total";
/// `chatbase_inbox_retries_total`.
pub const RETRIES_TOTAL: &str = "chatbase_inbox_retries_total";
/// `chatbase_inbox_dead_total`.
pub const DEAD_TOTAL: &str = "chatbase_inbox_dead_total";
/// `chatbase_inbox_pending` (gauge).
pub const PENDING: &str = "chatbase_inbox_pending";
/// `chatbase_inbox_oldest_pending_age_seconds` (gauge).
pub const OLDEST_PENDING_AGE_SECONDS: &str = "chatbase_inbox_oldest_pending_age_seconds";

/// Sets the gauges `chatbase_inbox_pending` and
/// `chatbase_inbox_oldest_pending_age_seconds` from `stats`, for an
/// application that reads [`Inbox::stats`](crate::Inbox::stats) anyway (an
/// admin page, a health check) or runs no worker in this process. A running
/// [`Worker`](crate::Worker) keeps them up to date by itself. Without the
/// `metrics` feature, it does nothing.
///
/// ```no_run
/// # async fn run(inbox: chatbase_inbox::Inbox) -> Result<(), chatbase_inbox::InboxError> {
/// let stats = inbox.stats().await?;
/// chatbase_inbox::observe::record_stats(&stats);
/// # Ok(()) }
/// ```
pub fn record_stats(stats: &Stats) {
    waiting(
        stats.pending.saturating_add(stats.processing),
        stats.oldest_pending_age,
    );
}

/// Sets the backlog gauges.
pub(crate) fn waiting(count: u64, oldest: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!(PENDING).set(count as f64);
        metrics::gauge!(OLDEST_PENDING_AGE_SECONDS)
            .set(oldest.map_or(0.0, |age| age.as_secs_f64()));
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (count, oldest);
}

/// Registers the accept counters at zero when an inbox opens, so that they
/// are exported before their first event (Prometheus's `increase` and `rate`
/// miss the first increment of a series that appears already at 1).
pub(crate) fn opened() {
    #[cfg(feature = "metrics")]
    for result in ["stored", "duplicate", "failed"] {
        metrics::counter!(ACCEPTED_TOTAL, "result" => result).increment(0);
    }
}

/// Registers the worker's counters at zero, for the same reason: an alert on
/// `increase(chatbase_inbox_dead_total[1h]) > 0` must see the first death.
pub(crate) fn worker_started() {
    #[cfg(feature = "metrics")]
    for name in [PROCESSED_TOTAL, RETRIES_TOTAL, DEAD_TOTAL] {
        metrics::counter!(name).increment(0);
    }
}

/// Counts one [`Inbox::accept`](crate::Inbox::accept) by its result.
pub(crate) fn accepted(result: &Result<Accepted, InboxError>) {
    #[cfg(feature = "metrics")]
    {
        let label = match result {
            Ok(Accepted::Stored { .. }) => "stored",
            Ok(Accepted::Duplicate) => "duplicate",
            Err(_) => "failed",
        };
        metrics::counter!(ACCEPTED_TOTAL, "result" => label).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// Counts an attempt's outcome, once it is recorded in the store.
pub(crate) fn finished(outcome: &Outcome) {
    #[cfg(feature = "metrics")]
    match outcome {
        Outcome::Processed => metrics::counter!(PROCESSED_TOTAL).increment(1),
        Outcome::Retry { .. } => metrics::counter!(RETRIES_TOTAL).increment(1),
        Outcome::Dead { .. } => metrics::counter!(DEAD_TOTAL).increment(1),
        Outcome::Release => {}
    }
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}

/// Counts what a claim found of deliveries whose worker died: `reclaimed`
/// are tried again (retries), `swept_dead` were on their last attempt (dead).
pub(crate) fn taken_over(reclaimed: u64, swept_dead: u64) {
    #[cfg(feature = "metrics")]
    {
        if reclaimed > 0 {
            metrics::counter!(RETRIES_TOTAL).increment(reclaimed);
        }
        if swept_dead > 0 {
            metrics::counter!(DEAD_TOTAL).increment(swept_dead);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (reclaimed, swept_dead);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_prometheus_names_of_this_crate() {
        for (i, name) in METRIC_NAMES.iter().enumerate() {
            assert!(name.starts_with("chatbase_inbox_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(!METRIC_NAMES.iter().skip(i + 1).any(|other| other == name));
        }
    }
}
