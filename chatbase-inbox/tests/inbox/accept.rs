//! Accepting: durable, deduplicated, natural keys, group commit.

use std::collections::HashSet;
use std::time::Duration;

use chatbase_inbox::{Accepted, KeyStrategy, State};

use crate::support::{
    Calls, Kind, Running, TestDb, WAIT, event_from, lead, quick, recording, store_tests,
    unique_lead, wait_until,
};

store_tests!(
    accepted_delivery_survives_reopen_and_keeps_its_exact_bytes,
    duplicate_is_stored_once_and_processed_once,
    concurrent_duplicates_store_one,
    two_instances_deduplicate_between_them,
    natural_key_makes_different_bytes_one_delivery,
    concurrent_accepts_share_transactions,
    batch_size_one_commits_each_delivery_alone,
    several_instances_open_a_new_store_at_once,
);

async fn accepted_delivery_survives_reopen_and_keeps_its_exact_bytes(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    // Odd spacing and key order: the bytes as signed, not a re-serialization.
    let body = "{ \"payload\":{\"customerEmail\":\"ada@example.com\",\"conversationId\":\"c1\"},\n  \"chatbotId\":\"bot_1\", \"eventType\":\"leads.submit\" }";
    let event = event_from(body);

    let inbox = db.open().await;
    let id = match inbox.accept(&event).await.unwrap() {
        Accepted::Stored { id } => id,
        other => panic!("expected Stored, got {other:?}"),
    };
    inbox.close().await;
    drop(inbox);

    // A new process would open the same store.
    let inbox = db.open().await;
    let record = inbox
        .get(id)
        .await
        .unwrap()
        .expect("the delivery is stored");
    assert_eq!(record.state, State::Pending);
    assert_eq!(record.chatbot_id.as_deref(), Some("bot_1"));
    assert_eq!(record.event_type, "leads.submit");
    assert_eq!(record.body_len, Some(body.len() as u64));
    assert_eq!(record.attempts, 0);
    assert!(record.key.starts_with("body:"));
    assert_eq!(inbox.list(State::Pending, 10).await.unwrap(), vec![record]);

    let calls = Calls::default();
    let worker = Running::start(quick(&inbox, recording(&calls)));
    wait_until(WAIT, "the stored delivery is processed", || async {
        calls.len() == 1
    })
    .await;
    worker.stop().await;
    assert_eq!(calls.bodies(), vec![bytes::Bytes::from(body)]);
    assert_eq!(
        inbox.get(id).await.unwrap().unwrap().state,
        State::Processed
    );
}

async fn duplicate_is_stored_once_and_processed_once(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let event = unique_lead();
    let first = inbox.accept(&event).await.unwrap();
    assert!(matches!(first, Accepted::Stored { .. }));
    assert_eq!(inbox.accept(&event).await.unwrap(), Accepted::Duplicate);

    let calls = Calls::default();
    let worker = Running::start(quick(&inbox, recording(&calls)));
    wait_until(WAIT, "the delivery is processed", || async {
        inbox.stats().await.unwrap().processed == 1
    })
    .await;
    // Still a duplicate once processed: not stored or processed again.
    assert_eq!(inbox.accept(&event).await.unwrap(), Accepted::Duplicate);
    tokio::time::sleep(Duration::from_millis(200)).await;
    worker.stop().await;

    assert_eq!(calls.len(), 1);
    let stats = inbox.stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.processing, stats.processed),
        (0, 0, 1)
    );
    let commits = inbox.commit_stats();
    assert_eq!((commits.stored, commits.duplicates), (1, 2));
}

async fn concurrent_duplicates_store_one(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let event = unique_lead();
    let answers = futures_util::future::join_all((0..20).map(|_| inbox.accept(&event))).await;
    let stored = answers
        .iter()
        .filter(|a| matches!(a, Ok(Accepted::Stored { .. })))
        .count();
    let duplicates = answers
        .iter()
        .filter(|a| matches!(a, Ok(Accepted::Duplicate)))
        .count();
    assert_eq!((stored, duplicates), (1, 19));
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
}

async fn two_instances_deduplicate_between_them(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let a = db.open().await;
    let b = db.open().await;
    let events: Vec<_> = (0..30).map(|_| unique_lead()).collect();
    // Every event sent to both instances at once.
    let mut stored = 0;
    for event in &events {
        let (x, y) = tokio::join!(a.accept(event), b.accept(event));
        let answers = [x.unwrap(), y.unwrap()];
        assert_eq!(
            answers.iter().filter(|a| a.is_duplicate()).count(),
            1,
            "{answers:?}"
        );
        stored += answers.iter().filter(|a| !a.is_duplicate()).count();
    }
    assert_eq!(stored, 30);
    assert_eq!(a.stats().await.unwrap().pending, 30);
}

async fn natural_key_makes_different_bytes_one_delivery(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db
        .builder()
        .key_strategy(KeyStrategy::conversation_id())
        .open()
        .await
        .unwrap();
    let first = lead("bot_1", "conv_42", "ada@example.com", "+15550001");
    // Same conversation, different bytes: the same delivery.
    let again = lead("bot_1", "conv_42", "ada.l@example.com", "+15550002");
    // Same conversation id under another chatbot: another delivery.
    let other_bot = lead("bot_2", "conv_42", "ada@example.com", "+15550001");
    // No conversation id: falls back to the body hash.
    let no_conversation =
        event_from(r#"{"eventType":"leads.submit","chatbotId":"bot_1","payload":{}}"#);

    assert!(!inbox.accept(&first).await.unwrap().is_duplicate());
    assert!(inbox.accept(&again).await.unwrap().is_duplicate());
    assert!(!inbox.accept(&other_bot).await.unwrap().is_duplicate());
    assert!(!inbox.accept(&no_conversation).await.unwrap().is_duplicate());
    assert!(inbox.accept(&no_conversation).await.unwrap().is_duplicate());
    assert_eq!(inbox.stats().await.unwrap().pending, 3);

    let key = inbox.delivery_key(&first);
    assert!(key.starts_with("natural:"), "{key}");
    assert!(!key.contains("conv_42"), "keys are hashed: {key}");
    assert_eq!(
        inbox.delivery_key(&no_conversation),
        KeyStrategy::body_hash().key(&no_conversation)
    );

    // A closure of your own.
    let db2 = TestDb::new(kind).await.unwrap();
    let by_email = db2
        .builder()
        .natural_key(|event| {
            let body: serde_json::Value = serde_json::from_slice(event.raw_body()).ok()?;
            body["payload"]["customerEmail"].as_str().map(str::to_owned)
        })
        .open()
        .await
        .unwrap();
    assert!(!by_email.accept(&first).await.unwrap().is_duplicate());
    assert!(!by_email.accept(&again).await.unwrap().is_duplicate());
    assert!(
        by_email
            .accept(&lead("bot_1", "conv_43", "ada@example.com", "+1"))
            .await
            .unwrap()
            .is_duplicate()
    );
    let record = &by_email.list(State::Pending, 10).await.unwrap()[0];
    assert!(!record.key.contains("ada@example.com"), "{}", record.key);
}

async fn concurrent_accepts_share_transactions(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    let events: Vec<_> = (0..300).map(|_| unique_lead()).collect();
    let tasks: Vec<_> = events
        .into_iter()
        .map(|event| {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.accept(&event).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Accepted::Stored { id } => assert!(ids.insert(id)),
            other => panic!("expected Stored, got {other:?}"),
        }
    }
    assert_eq!(ids.len(), 300);
    let commits = inbox.commit_stats();
    assert_eq!(commits.rows, 300);
    assert_eq!(commits.stored, 300);
    assert!(
        commits.batches < 300,
        "300 concurrent accepts took {} transactions: none was shared",
        commits.batches
    );
    assert_eq!(inbox.stats().await.unwrap().pending, 300);
}

async fn batch_size_one_commits_each_delivery_alone(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.builder().batch_size(1).open().await.unwrap();
    let events: Vec<_> = (0..40).map(|_| unique_lead()).collect();
    let answers = futures_util::future::join_all(events.iter().map(|e| inbox.accept(e))).await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(Accepted::Stored { .. })))
    );
    let commits = inbox.commit_stats();
    assert_eq!((commits.batches, commits.rows), (40, 40));
}

async fn several_instances_open_a_new_store_at_once(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let opened = futures_util::future::join_all((0..4).map(|_| db.builder().open())).await;
    let inboxes: Vec<_> = opened.into_iter().map(Result::unwrap).collect();
    for inbox in &inboxes {
        assert!(!inbox.accept(&unique_lead()).await.unwrap().is_duplicate());
    }
    assert_eq!(inboxes[0].stats().await.unwrap().pending, 4);
}
