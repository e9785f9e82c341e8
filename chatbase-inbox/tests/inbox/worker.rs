//! Processing: retries, dead deliveries, panics, leases, shutdown, several workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chatbase_inbox::{Delivery, Failure, State};
use tokio::sync::Notify;

use crate::support::{
    Calls, Kind, Running, TestDb, WAIT, lead, quick, recording, store_tests, unique_lead,
    wait_until, within,
};

store_tests!(
    handler_failing_first_attempts_succeeds_on_the_next,
    failed_attempt_waits_for_its_backoff,
    always_failing_handler_is_dead_then_requeued_and_processed,
    requeue_dead_requeues_them_all,
    panicking_handler_is_retried_and_stored_as_panicked,
    permanent_failure_is_dead_at_once,
    expired_lease_is_taken_over_by_another_worker,
    graceful_shutdown_finishes_in_flight_deliveries,
    graceful_shutdown_releases_what_it_still_holds,
    two_workers_process_each_delivery_once,
    parallel_deliveries_up_to_the_concurrency,
);

async fn handler_failing_first_attempts_succeeds_on_the_next(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    const FAILURES: u32 = 3;
    let inbox = db.open().await;
    let id = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let calls = Calls::default();
    let seen = calls.clone();
    let worker = Running::start(
        quick(&inbox, move |d: Delivery| {
            let seen = seen.clone();
            async move {
                seen.record(&d);
                if d.attempt() <= FAILURES {
                    return Err(Failure::new("the CRM is down"));
                }
                Ok(())
            }
        })
        .max_attempts(5),
    );
    wait_until(WAIT, "the delivery is processed", || async {
        inbox.get(id).await.unwrap().unwrap().state == State::Processed
    })
    .await;
    worker.stop().await;

    assert_eq!(calls.attempts()[&id], vec![1, 2, 3, 4]);
    let record = inbox.get(id).await.unwrap().unwrap();
    assert_eq!(record.attempts, FAILURES + 1);
    assert_eq!(record.last_error.as_deref(), Some("the CRM is down"));
    assert!(record.finished_at.is_some());
    assert_eq!(record.locked_until, None);
}

async fn failed_attempt_waits_for_its_backoff(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let id = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let calls = Calls::default();
    let seen = calls.clone();
    let worker = Running::start(
        quick(&inbox, move |d: Delivery| {
            let seen = seen.clone();
            async move {
                seen.record(&d);
                Err::<(), _>(Failure::new("always"))
            }
        })
        .backoff(Duration::from_secs(60), Duration::from_secs(60)),
    );
    wait_until(WAIT, "the first attempt has failed", || async {
        let record = inbox.get(id).await.unwrap().unwrap();
        record.state == State::Pending && record.attempts == 1
    })
    .await;
    let record = inbox.get(id).await.unwrap().unwrap();
    // Half of the backoff is fixed, half is jitter: at least 30 s from now.
    let earliest = SystemTime::now() + Duration::from_secs(25);
    assert!(record.available_at > earliest, "{record:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    assert_eq!(calls.len(), 1, "not retried before its backoff");
}

async fn always_failing_handler_is_dead_then_requeued_and_processed(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    const EMAIL: &str = "grace.hopper@example.com";
    const PHONE: &str = "+15558675309";
    let inbox = db.open().await;
    let event = lead("bot_1", "conv_dead", EMAIL, PHONE);
    let id = inbox.accept(&event).await.unwrap().id().unwrap();

    let healthy = Arc::new(AtomicBool::new(false));
    let calls = Calls::default();
    let (seen, ok) = (calls.clone(), healthy.clone());
    let handler = move |d: Delivery| {
        let (seen, ok) = (seen.clone(), ok.clone());
        async move {
            seen.record(&d);
            if ok.load(Ordering::SeqCst) {
                return Ok(());
            }
            // An error whose message quotes customer data, converted with `?`.
            let body = String::from_utf8(d.body().to_vec()).unwrap();
            Err(std::io::Error::other(format!("CRM refused {body}")))?;
            Ok(())
        }
    };
    let worker = Running::start(quick(&inbox, handler).max_attempts(3));
    wait_until(WAIT, "the delivery is dead", || async {
        inbox.get(id).await.unwrap().unwrap().state == State::Dead
    })
    .await;
    let record = inbox.get(id).await.unwrap().unwrap();
    assert_eq!(record.attempts, 3);
    assert_eq!(calls.attempts()[&id], vec![1, 2, 3]);
    let error = record.last_error.clone().unwrap();
    assert_eq!(error, "std::io::error::Error");
    assert!(!error.contains(EMAIL) && !error.contains(PHONE), "{error}");
    assert!(record.body_len.is_some(), "a dead delivery keeps its body");
    let dead = inbox.list(State::Dead, 10).await.unwrap();
    assert_eq!(dead.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(inbox.stats().await.unwrap().dead, 1);

    // Fixed, then requeued: processed, its attempts counted afresh.
    healthy.store(true, Ordering::SeqCst);
    assert!(inbox.requeue(id).await.unwrap());
    assert!(!inbox.requeue(id).await.unwrap(), "no longer dead");
    wait_until(WAIT, "the requeued delivery is processed", || async {
        inbox.get(id).await.unwrap().unwrap().state == State::Processed
    })
    .await;
    worker.stop().await;
    assert_eq!(calls.attempts()[&id], vec![1, 2, 3, 1]);
    assert_eq!(inbox.get(id).await.unwrap().unwrap().attempts, 1);
}

async fn requeue_dead_requeues_them_all(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    for _ in 0..5 {
        inbox.accept(&unique_lead()).await.unwrap();
    }
    let healthy = Arc::new(AtomicBool::new(false));
    let ok = healthy.clone();
    let worker = Running::start(
        quick(&inbox, move |_d: Delivery| {
            let ok = ok.clone();
            async move {
                if ok.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err(Failure::new("down"))
                }
            }
        })
        .max_attempts(2),
    );
    wait_until(WAIT, "all five are dead", || async {
        inbox.stats().await.unwrap().dead == 5
    })
    .await;
    healthy.store(true, Ordering::SeqCst);
    assert_eq!(inbox.requeue_dead().await.unwrap(), 5);
    wait_until(WAIT, "all five are processed", || async {
        inbox.stats().await.unwrap().processed == 5
    })
    .await;
    worker.stop().await;
    assert_eq!(inbox.requeue_dead().await.unwrap(), 0);
}

async fn panicking_handler_is_retried_and_stored_as_panicked(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let once = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let always = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let calls = Calls::default();
    let seen = calls.clone();
    let worker = Running::start(
        quick(&inbox, move |d: Delivery| {
            let seen = seen.clone();
            async move {
                seen.record(&d);
                let body = String::from_utf8(d.body().to_vec()).unwrap();
                if d.id() == always || d.attempt() == 1 {
                    panic!("cannot handle {body}");
                }
                Ok(())
            }
        })
        .max_attempts(3),
    );
    wait_until(WAIT, "one processed, one dead", || async {
        let stats = inbox.stats().await.unwrap();
        stats.processed == 1 && stats.dead == 1
    })
    .await;
    worker.stop().await;
    assert_eq!(calls.attempts()[&once], vec![1, 2]);
    assert_eq!(calls.attempts()[&always], vec![1, 2, 3]);
    let dead = inbox.get(always).await.unwrap().unwrap();
    assert_eq!(dead.state, State::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("panicked"));
}

async fn permanent_failure_is_dead_at_once(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let id = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let worker = Running::start(quick(&inbox, |_d: Delivery| async {
        Err::<(), _>(Failure::permanent("unsupported event"))
    }));
    wait_until(WAIT, "the delivery is dead", || async {
        inbox.get(id).await.unwrap().unwrap().state == State::Dead
    })
    .await;
    worker.stop().await;
    let record = inbox.get(id).await.unwrap().unwrap();
    assert_eq!(record.attempts, 1);
    assert_eq!(record.last_error.as_deref(), Some("unsupported event"));
}

async fn expired_lease_is_taken_over_by_another_worker(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let lease = Duration::from_millis(600);
    // Two processes' worth: each worker has its own inbox value.
    let first = db.open().await;
    let second = db.open().await;
    let id = first.accept(&unique_lead()).await.unwrap().id().unwrap();

    let started = Arc::new(Notify::new());
    let signal = started.clone();
    let hanging = Running::start(
        quick(&first, move |_d: Delivery| {
            let signal = signal.clone();
            async move {
                signal.notify_one();
                std::future::pending::<()>().await;
                Ok(())
            }
        })
        .lease(lease),
    );
    within(
        WAIT,
        "the first worker claims the delivery",
        started.notified(),
    )
    .await;
    // The worker dies mid-handler: nothing is released, the lease stays.
    hanging.abort().await;
    let record = first.get(id).await.unwrap().unwrap();
    assert_eq!(record.state, State::Processing);
    assert!(record.locked_until.is_some());

    let calls = Calls::default();
    let taker = Running::start(quick(&second, recording(&calls)).lease(lease));
    wait_until(WAIT, "the second worker processes it", || async {
        second.get(id).await.unwrap().unwrap().state == State::Processed
    })
    .await;
    taker.stop().await;
    // The dead worker's attempt counts.
    assert_eq!(calls.attempts()[&id], vec![2]);
}

async fn graceful_shutdown_finishes_in_flight_deliveries(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let id = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let started = Arc::new(Notify::new());
    let signal = started.clone();
    let worker = Running::start(
        quick(&inbox, move |_d: Delivery| {
            let signal = signal.clone();
            async move {
                signal.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(())
            }
        })
        .shutdown_grace(Duration::from_secs(20)),
    );
    within(WAIT, "the handler starts", started.notified()).await;
    worker.stop().await;
    assert_eq!(
        inbox.get(id).await.unwrap().unwrap().state,
        State::Processed
    );
}

async fn graceful_shutdown_releases_what_it_still_holds(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let id = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let started = Arc::new(Notify::new());
    let signal = started.clone();
    let worker = Running::start(
        quick(&inbox, move |_d: Delivery| {
            let signal = signal.clone();
            async move {
                signal.notify_one();
                std::future::pending::<()>().await;
                Ok(())
            }
        })
        .lease(Duration::from_secs(3600))
        .shutdown_grace(Duration::from_millis(100)),
    );
    within(WAIT, "the handler starts", started.notified()).await;
    worker.stop().await;

    let record = inbox.get(id).await.unwrap().unwrap();
    assert_eq!(record.state, State::Pending);
    assert_eq!(record.attempts, 0, "a released attempt does not count");
    assert_eq!(record.locked_until, None);
    // Claimable at once, though the old lease was an hour.
    let calls = Calls::default();
    let next = Running::start(quick(&inbox, recording(&calls)));
    wait_until(WAIT, "the released delivery is processed", || async {
        calls.len() == 1
    })
    .await;
    next.stop().await;
    assert_eq!(calls.attempts()[&id], vec![1]);
}

async fn two_workers_process_each_delivery_once(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    const N: usize = 120;
    let a = db.open().await;
    let b = db.open().await;
    for i in 0..N {
        let inbox = if i % 2 == 0 { &a } else { &b };
        inbox.accept(&unique_lead()).await.unwrap();
    }
    let seen: Arc<Mutex<HashMap<i64, u32>>> = Arc::default();
    let handler = |seen: Arc<Mutex<HashMap<i64, u32>>>| {
        move |d: Delivery| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                *seen.lock().unwrap().entry(d.id()).or_default() += 1;
                Ok::<(), Failure>(())
            }
        }
    };
    let wa = Running::start(quick(&a, handler(seen.clone())).concurrency(4));
    let wb = Running::start(quick(&b, handler(seen.clone())).concurrency(4));
    wait_until(WAIT, "every delivery is processed", || async {
        a.stats().await.unwrap().processed == N as u64
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wa.stop().await;
    wb.stop().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), N);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "processed more than once: {twice:?}");
}

async fn parallel_deliveries_up_to_the_concurrency(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    for _ in 0..6 {
        inbox.accept(&unique_lead()).await.unwrap();
    }
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let release = Arc::new(Notify::new());
    let (r, p, go) = (running.clone(), peak.clone(), release.clone());
    let worker = Running::start(
        quick(&inbox, move |_d: Delivery| {
            let (r, p, go) = (r.clone(), p.clone(), go.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                go.notified().await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), Failure>(())
            }
        })
        .concurrency(3),
    );
    wait_until(WAIT, "three handlers run at once", || async {
        running.load(Ordering::SeqCst) == 3
    })
    .await;
    // No fourth while three are held.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(inbox.stats().await.unwrap().processing, 3);
    wait_until(WAIT, "all six are processed", || {
        release.notify_waiters();
        async { inbox.stats().await.unwrap().processed == 6 }
    })
    .await;
    worker.stop().await;
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}
