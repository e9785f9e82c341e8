//! Retention, purge and stats: bodies go, keys stay for a while, then go.

use std::time::Duration;

use chatbase_inbox::{Accepted, InboxError, RetentionReport, State};

use crate::support::{
    Calls, Kind, Running, TestDb, WAIT, quick, recording, store_tests, unique_lead, wait_until,
};

store_tests!(
    retention_removes_bodies_then_keys,
    worker_applies_retention_periodically,
    purge_removes_finished_deliveries_only,
    stats_count_states_and_the_oldest_pending_age,
);

async fn retention_removes_bodies_then_keys(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let body_retention = Duration::from_secs(3);
    let key_retention = Duration::from_secs(6);
    let inbox = db
        .builder()
        .body_retention(body_retention)
        .key_retention(key_retention)
        .open()
        .await
        .unwrap();
    let processed = unique_lead();
    let id = inbox.accept(&processed).await.unwrap().id().unwrap();
    let calls = Calls::default();
    let worker =
        Running::start(quick(&inbox, recording(&calls)).retention_interval(Duration::ZERO));
    wait_until(WAIT, "the delivery is processed", || async {
        inbox.get(id).await.unwrap().unwrap().state == State::Processed
    })
    .await;
    worker.stop().await;
    let pending = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();

    // Too early: nothing is removed.
    assert_eq!(
        inbox.run_retention().await.unwrap(),
        RetentionReport::default()
    );
    assert!(inbox.get(id).await.unwrap().unwrap().body_len.is_some());

    // After the body retention: the body is gone, the key stays.
    tokio::time::sleep(body_retention + Duration::from_millis(300)).await;
    let report = inbox.run_retention().await.unwrap();
    assert_eq!((report.bodies_removed, report.deliveries_removed), (1, 0));
    let record = inbox.get(id).await.unwrap().unwrap();
    assert_eq!(record.body_len, None);
    assert_eq!(record.state, State::Processed);
    assert_eq!(inbox.accept(&processed).await.unwrap(), Accepted::Duplicate);
    // A pending delivery keeps its body, however old.
    assert!(
        inbox
            .get(pending)
            .await
            .unwrap()
            .unwrap()
            .body_len
            .is_some()
    );

    // After the key retention: the delivery is gone, and the same event is new again.
    tokio::time::sleep(key_retention - body_retention).await;
    let report = inbox.run_retention().await.unwrap();
    assert_eq!((report.bodies_removed, report.deliveries_removed), (0, 1));
    assert_eq!(inbox.get(id).await.unwrap(), None);
    assert!(!inbox.accept(&processed).await.unwrap().is_duplicate());
    assert!(inbox.get(pending).await.unwrap().is_some());
}

async fn worker_applies_retention_periodically(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db
        .builder()
        .body_retention(Duration::ZERO)
        .key_retention(Duration::from_secs(3600))
        .open()
        .await
        .unwrap();
    let id = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let calls = Calls::default();
    let worker = Running::start(
        quick(&inbox, recording(&calls)).retention_interval(Duration::from_millis(100)),
    );
    wait_until(WAIT, "the worker removes the processed body", || async {
        let record = inbox.get(id).await.unwrap().unwrap();
        record.state == State::Processed && record.body_len.is_none()
    })
    .await;
    worker.stop().await;
}

async fn purge_removes_finished_deliveries_only(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let done = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();
    let calls = Calls::default();
    let worker = Running::start(quick(&inbox, recording(&calls)));
    wait_until(WAIT, "processed", || async {
        inbox.get(done).await.unwrap().unwrap().state == State::Processed
    })
    .await;
    worker.stop().await;
    let waiting = inbox.accept(&unique_lead()).await.unwrap().id().unwrap();

    assert_eq!(
        inbox
            .purge(State::Processed, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(inbox.purge(State::Dead, Duration::ZERO).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        inbox.purge(State::Processed, Duration::ZERO).await.unwrap(),
        1
    );
    assert_eq!(inbox.get(done).await.unwrap(), None);
    assert!(inbox.get(waiting).await.unwrap().is_some());
    assert!(matches!(
        inbox.purge(State::Pending, Duration::ZERO).await,
        Err(InboxError::InvalidConfig { .. })
    ));
}

async fn stats_count_states_and_the_oldest_pending_age(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let empty = inbox.stats().await.unwrap();
    assert_eq!(empty.oldest_pending_age, None);
    assert_eq!(State::ALL.map(|s| empty.count(s)), [0, 0, 0, 0]);

    for _ in 0..3 {
        inbox.accept(&unique_lead()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stats = inbox.stats().await.unwrap();
    assert_eq!(stats.pending, 3);
    let age = stats.oldest_pending_age.unwrap();
    assert!(age >= Duration::from_millis(100), "{age:?}");
}
