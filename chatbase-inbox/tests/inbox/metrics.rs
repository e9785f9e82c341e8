//! Metrics (feature `metrics`): every accept counted by result, attempts
//! counted as processed, retried or dead (a dead worker's too), and the
//! backlog gauges kept by the worker and by `record_stats`. Recorded with
//! metrics-util's debugging recorder, installed for the test's thread (so the
//! tests run on a current-thread runtime: every task the inbox spawns records
//! there too).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatbase_core::Event;
use chatbase_core::testing::metrics::Recorded;
use chatbase_inbox::observe::{
    ACCEPTED_TOTAL, DEAD_TOTAL, OLDEST_PENDING_AGE_SECONDS, PENDING, PROCESSED_TOTAL,
    RETRIES_TOTAL, record_stats,
};
use chatbase_inbox::{Delivery, Failure, METRIC_NAMES, State};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::sync::Notify;

use crate::support::{Kind, Running, TestDb, WAIT, lead, quick, unique_lead, wait_until, within};

/// One `#[tokio::test]` per store kind, on a current-thread runtime, for
/// each `async fn name(kind: Kind)` below.
macro_rules! current_thread_store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $name() {
                    super::$name($crate::support::Kind::Sqlite).await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $name() {
                    super::$name($crate::support::Kind::Postgres).await;
                }
            )*
        }
    };
}

current_thread_store_tests!(
    accepts_are_counted_by_result,
    attempts_are_counted_as_processed_retried_or_dead,
    a_dead_workers_attempts_count_as_retried_then_dead,
    the_worker_keeps_the_backlog_gauges,
);

/// Every metric recorded is one of `METRIC_NAMES`, with fixed labels.
fn assert_known_names(recorded: &Recorded) {
    for key in recorded.keys() {
        let name = key.name();
        assert!(METRIC_NAMES.contains(&name), "unlisted metric {name}");
        for label in key.labels() {
            assert_eq!(label.key(), "result", "{name}");
            assert!(
                ["stored", "duplicate", "failed"].contains(&label.value()),
                "{name}: {}",
                label.value()
            );
        }
    }
}

async fn accepts_are_counted_by_result(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let inbox = db.open().await;
    // Exported at zero from the start, so that `rate` and `increase` see the
    // first accept of each kind.
    let recorded = Recorded::take(&snapshotter);
    for result in ["stored", "duplicate", "failed"] {
        assert_eq!(
            recorded.value(MetricKind::Counter, ACCEPTED_TOTAL, &[("result", result)]),
            Some(&DebugValue::Counter(0)),
            "{result}"
        );
    }

    let first = unique_lead();
    inbox.accept(&first).await.unwrap();
    inbox.accept(&unique_lead()).await.unwrap();
    assert!(inbox.accept(&first).await.unwrap().is_duplicate());
    // A store that cannot write: the accept fails (a 503), and is counted.
    let closed = db.open().await;
    closed.close().await;
    within(
        WAIT,
        "accept on a closed inbox",
        closed.accept(&unique_lead()),
    )
    .await
    .unwrap_err();

    let recorded = Recorded::take(&snapshotter);
    assert_known_names(&recorded);
    let accepted = |result| recorded.counter(ACCEPTED_TOTAL, &[("result", result)]);
    assert_eq!(accepted("stored"), 2);
    assert_eq!(accepted("duplicate"), 1);
    assert_eq!(accepted("failed"), 1);
    // Nothing was processed: no worker ran.
    assert_eq!(recorded.counter(PROCESSED_TOTAL, &[]), 0);
}

async fn attempts_are_counted_as_processed_retried_or_dead(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let inbox = db.open().await;
    // One succeeds at once, one on its second attempt, one never (dead after
    // two attempts).
    let mut ids = Vec::new();
    for conversation in ["fine", "flaky", "doomed"] {
        let event = lead("bot_metrics", conversation, "a@example.com", "+1");
        ids.push(inbox.accept(&event).await.unwrap().id().unwrap());
    }
    let handler = |delivery: Delivery| async move {
        let event = delivery.event()?;
        let conversation = match event.event() {
            Event::LeadsSubmit(lead) => lead.conversation_id().map(str::to_owned),
            _ => None,
        };
        match (conversation.as_deref(), delivery.attempt()) {
            (Some("fine"), _) | (Some("flaky"), 2..) => Ok(()),
            (Some("flaky"), _) => Err(Failure::new("flaky")),
            _ => Err(Failure::new("doomed")),
        }
    };
    let worker = Running::start(quick(&inbox, handler).max_attempts(2));
    wait_until(WAIT, "every delivery is processed or dead", || async {
        let stats = inbox.stats().await.unwrap();
        stats.processed == 2 && stats.dead == 1
    })
    .await;
    worker.stop().await;

    let recorded = Recorded::take(&snapshotter);
    assert_known_names(&recorded);
    assert_eq!(recorded.counter(PROCESSED_TOTAL, &[]), 2);
    // The flaky one's first attempt, and the doomed one's first.
    assert_eq!(recorded.counter(RETRIES_TOTAL, &[]), 2);
    assert_eq!(recorded.counter(DEAD_TOTAL, &[]), 1);
    assert_eq!(recorded.counter(ACCEPTED_TOTAL, &[("result", "stored")]), 3);
    let doomed = inbox.get(ids[2]).await.unwrap().unwrap();
    assert_eq!((doomed.state, doomed.attempts), (State::Dead, 2));
}

/// A worker dies twice in the middle of its handlers: the attempts whose
/// lease expired count as retries when another worker takes them over, and
/// as dead when they were the last allowed.
async fn a_dead_workers_attempts_count_as_retried_then_dead(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let lease = Duration::from_millis(300);
    let inbox = db.open().await;
    for _ in 0..2 {
        inbox.accept(&unique_lead()).await.unwrap();
    }
    for attempt in 1..=2u32 {
        let started = Arc::new(Notify::new());
        let signal = started.clone();
        let hanging = Running::start(
            quick(&inbox, move |_d: Delivery| {
                let signal = signal.clone();
                async move {
                    signal.notify_one();
                    std::future::pending::<()>().await;
                    Ok(())
                }
            })
            .concurrency(2)
            .max_attempts(2)
            .lease(lease),
        );
        wait_until(WAIT, "the hanging worker holds both deliveries", || async {
            let held = inbox.list(State::Processing, 10).await.unwrap();
            held.len() == 2 && held.iter().all(|record| record.attempts == attempt)
        })
        .await;
        hanging.abort().await;
    }
    assert!(inbox.list(State::Dead, 10).await.unwrap().is_empty());

    // The third worker finds both on their last attempt, expired: dead.
    let called = Arc::new(AtomicBool::new(false));
    let seen = called.clone();
    let sweeper = Running::start(
        quick(&inbox, move |_d: Delivery| {
            seen.store(true, Ordering::SeqCst);
            async { Ok(()) }
        })
        .max_attempts(2)
        .lease(lease),
    );
    wait_until(WAIT, "both deliveries are dead", || async {
        inbox.stats().await.unwrap().dead == 2
    })
    .await;
    sweeper.stop().await;
    assert!(!called.load(Ordering::SeqCst), "a dead delivery was run");

    let recorded = Recorded::take(&snapshotter);
    assert_known_names(&recorded);
    assert_eq!(recorded.counter(RETRIES_TOTAL, &[]), 2);
    assert_eq!(recorded.counter(DEAD_TOTAL, &[]), 2);
    assert_eq!(recorded.counter(PROCESSED_TOTAL, &[]), 0);
}

async fn the_worker_keeps_the_backlog_gauges(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let inbox = db.open().await;
    for _ in 0..3 {
        inbox.accept(&unique_lead()).await.unwrap();
    }
    const WAITED: Duration = Duration::from_millis(300);
    tokio::time::sleep(WAITED).await;

    // One delivery at a time, held until released: three wait meanwhile (one
    // processing, two pending).
    let release = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let (gate, signal) = (release.clone(), started.clone());
    let worker = Running::start(
        quick(&inbox, move |_d: Delivery| {
            let (gate, signal) = (gate.clone(), signal.clone());
            async move {
                signal.notify_one();
                gate.notified().await;
                Ok::<(), Failure>(())
            }
        })
        .concurrency(1),
    );
    within(WAIT, "the worker starts a delivery", started.notified()).await;
    let recorded = Recorded::take(&snapshotter);
    assert_known_names(&recorded);
    // The worker's counters are exported at zero before anything happens (an
    // alert on `increase(chatbase_inbox_dead_total[1h])` sees the first one).
    for name in [PROCESSED_TOTAL, RETRIES_TOTAL, DEAD_TOTAL] {
        assert_eq!(
            recorded.value(MetricKind::Counter, name, &[]),
            Some(&DebugValue::Counter(0)),
            "{name}"
        );
    }
    assert_eq!(recorded.gauge(PENDING), Some(3.0));
    let age = recorded.gauge(OLDEST_PENDING_AGE_SECONDS).unwrap();
    assert!(
        age >= WAITED.as_secs_f64() * 0.9 && age < WAIT.as_secs_f64(),
        "oldest pending age {age}"
    );

    wait_until(WAIT, "every delivery is processed", || async {
        // One permit at a time: each lets one delivery finish.
        release.notify_one();
        inbox.stats().await.unwrap().processed == 3
    })
    .await;

    // The worker refreshes the gauges periodically: overwrite them with a
    // mark, and wait until a refresh replaces it with the empty backlog.
    let refreshed = async {
        loop {
            metrics::gauge!(PENDING).set(-1.0);
            metrics::gauge!(OLDEST_PENDING_AGE_SECONDS).set(-1.0);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let recorded = Recorded::take(&snapshotter);
            let pending = recorded.gauge(PENDING);
            if pending != Some(-1.0) {
                break (pending, recorded.gauge(OLDEST_PENDING_AGE_SECONDS));
            }
        }
    };
    let (pending, age) = within(WAIT, "the worker refreshes the gauges", refreshed).await;
    assert_eq!((pending, age), (Some(0.0), Some(0.0)));
    worker.stop().await;

    // `record_stats`, for those who read `Inbox::stats` themselves.
    inbox.accept(&unique_lead()).await.unwrap();
    record_stats(&inbox.stats().await.unwrap());
    let recorded = Recorded::take(&snapshotter);
    assert_eq!(recorded.gauge(PENDING), Some(1.0));
    let age = recorded.gauge(OLDEST_PENDING_AGE_SECONDS).unwrap();
    assert!((0.0..WAIT.as_secs_f64()).contains(&age), "{age}");
}
