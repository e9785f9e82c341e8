//! Nothing lost when a receiver with a SQLite inbox is killed (`SIGKILL`)
//! under load and started again on the same database: every delivery answered
//! 200 is processed, and only the ones in flight in the worker at the kill (at
//! most its concurrency) are processed twice.

use std::collections::{HashMap, HashSet};

use chatbase_axum::inbox::Inbox;
use chatbase_axum::inbox::chatbase_inbox::State;
use chatbase_core::ChatbaseEvent;

use crate::support::{
    INBOX_ENV_VAR, Load, Reference, Sent, Server, WORKER_CONCURRENCY, assert_no_private_data,
    eventually, processed, sqlite_url, temp_dir, times_processed,
};

/// Leads sent in all, at most (the kill stops the load before the end).
const TOTAL: usize = 3000;
/// Requests in flight at once.
const IN_FLIGHT: usize = 32;
/// The receiver is killed once this many were answered 200.
const KILL_AFTER: usize = 1000;

/// Up to [`WORKER_CONCURRENCY`] deliveries may be in the worker's hands at
/// the kill: they keep the lease the dead worker took (60 s, the receivers'
/// default) before they are processed again, and the wait for them is
/// bounded by `PATIENCE` (120 s).
async fn killed_under_load_then_restarted(reference: Reference) {
    let context = format!("{} killed under load", reference.binary());
    let dir = temp_dir();
    let url = sqlite_url(&dir);
    let env = [(INBOX_ENV_VAR, url.as_str())];

    let mut first = Server::reference_with(reference, &env).await;
    let load = Load::start(&first, TOTAL, IN_FLIGHT);
    eventually(
        &format!("{context}: {KILL_AFTER} answered 200"),
        async || load.accepted() >= KILL_AFTER,
    )
    .await;
    first.kill().await;
    load.stop();
    let sent = load.finish().await;
    let first_log = first.log();

    let accepted: Vec<&Sent> = sent.iter().filter(|sent| sent.ok()).collect();
    let unanswered = sent.iter().filter(|sent| sent.answer.is_err()).count();
    assert!(accepted.len() >= KILL_AFTER, "{context}");
    for sent in &sent {
        if let Ok(answer) = &sent.answer {
            // Unique leads: a new delivery each, stored before its 200.
            assert!(answer.stored(), "{context}: {answer:?}");
        }
    }

    // While it is dead: every delivery answered 200 is in the inbox, and at
    // most the worker's concurrency were in its hands.
    let inbox = Inbox::open(&url).await.unwrap();
    let by_key: HashMap<String, &str> = sent
        .iter()
        .map(|sent| {
            let event = ChatbaseEvent::from_verified_body(sent.body.clone()).unwrap();
            (inbox.delivery_key(&event), sent.conversation_id.as_str())
        })
        .collect();
    let mut stored = HashSet::new();
    let mut in_flight = HashSet::new();
    for state in State::ALL {
        let limit = u32::try_from(TOTAL + 1).unwrap();
        for record in inbox.list(state, limit).await.unwrap() {
            let conversation_id = by_key
                .get(&record.key)
                .unwrap_or_else(|| panic!("{context}: a delivery never sent: {record:?}"));
            stored.insert(*conversation_id);
            if state == State::Processing {
                in_flight.insert(*conversation_id);
            }
            assert_ne!(state, State::Dead, "{context}: {record:?}");
        }
    }
    inbox.close().await;
    for sent in &accepted {
        assert!(
            stored.contains(sent.conversation_id.as_str()),
            "{context}: answered 200, not in the inbox: {sent:?}"
        );
    }
    assert!(
        in_flight.len() <= WORKER_CONCURRENCY,
        "{context}: {} deliveries in the worker's hands: {in_flight:?}",
        in_flight.len()
    );

    // Started again on the same inbox: it processes everything stored.
    let mut second = Server::reference_with(reference, &env).await;
    let inbox = Inbox::open(&url).await.unwrap();
    eventually(
        &format!("{context}: every stored delivery processed after the restart"),
        async || {
            let stats = inbox.stats().await.unwrap();
            stats.pending == 0 && stats.processing == 0
        },
    )
    .await;
    let stats = inbox.stats().await.unwrap();
    inbox.close().await;
    let second_log = second.stop().await;

    let times = times_processed([first_log.as_str(), second_log.as_str()]);
    for sent in &accepted {
        assert!(
            times.contains_key(&sent.conversation_id),
            "{context}: answered 200, never processed: {sent:?}"
        );
    }
    for conversation_id in times.keys() {
        assert!(
            stored.contains(conversation_id.as_str()),
            "{context}: processed, never stored: {conversation_id}"
        );
    }
    assert_eq!(
        times.len(),
        stored.len(),
        "{context}: stored, not processed"
    );
    assert_eq!(
        (stats.processed, stats.dead),
        (stored.len() as u64, 0),
        "{context}: {stats:?}"
    );
    // Once per run at most; twice in all only for a delivery in the worker's
    // hands at the kill, the second time as a new attempt.
    let runs = [processed(&first_log), processed(&second_log)];
    for run in &runs {
        let mut seen = HashSet::new();
        for line in run {
            assert!(
                seen.insert(&line.conversation_id),
                "{context}: processed twice in one run: {line:?}"
            );
        }
    }
    let twice: Vec<&String> = times
        .iter()
        .filter(|(_, times)| **times > 1)
        .map(|(id, _)| id)
        .collect();
    for conversation_id in &twice {
        assert_eq!(times[*conversation_id], 2, "{context}: {conversation_id}");
        assert!(
            in_flight.contains(conversation_id.as_str()),
            "{context}: processed twice, not in flight at the kill: {conversation_id}"
        );
        let again = runs[1]
            .iter()
            .find(|line| &&line.conversation_id == conversation_id)
            .unwrap();
        assert!(again.attempt >= 2, "{context}: {again:?}");
    }
    assert!(twice.len() <= WORKER_CONCURRENCY, "{context}: {twice:?}");
    assert_no_private_data(&first_log, &context);
    assert_no_private_data(&second_log, &context);
    println!(
        "{context}: {} sent, {} answered 200, {unanswered} unanswered, {} stored, \
         {} in the worker's hands at the kill, {} processed after the restart, {} processed \
         twice",
        sent.len(),
        accepted.len(),
        stored.len(),
        in_flight.len(),
        runs[1].len(),
        twice.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_receivers_killed_under_load_lose_nothing_answered_200() {
    tokio::join!(
        killed_under_load_then_restarted(Reference::Axum),
        killed_under_load_then_restarted(Reference::Actix),
    );
}
