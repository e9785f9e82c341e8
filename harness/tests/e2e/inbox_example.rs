//! `examples/inbox` as a user runs it: a signed lead is stored, answered 200,
//! then processed once; the same delivery again is a duplicate, answered 200
//! and not processed again; an unsigned one is refused.

use chatbase_axum::inbox::Inbox;
use chatbase_core::SECRET_ENV_VAR;
use harness::send::{self, Outgoing};

use crate::support::{
    Answer, INBOX_ENV_VAR, SECRET, Server, assert_json_rejection, assert_no_private_data, field,
    lead, secret, sqlite_url, temp_dir,
};

/// What the example's worker logs for each lead it processes.
const LEAD_PROCESSED: &str = "lead processed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_inbox_stores_processes_once_and_refuses_the_unsigned() {
    let dir = temp_dir();
    let url = sqlite_url(&dir);
    let mut server = Server::start(
        "example-inbox",
        &[(SECRET_ENV_VAR, SECRET), (INBOX_ENV_VAR, &url)],
        LEAD_PROCESSED,
    )
    .await;

    let first = send::new_conversation_id();
    let delivery = Outgoing::signed(&secret(), lead(&first));
    let answer = Answer::of(&server.send("/webhook", &delivery).await);
    assert!(answer.stored(), "{answer:?}");
    let line = server.wait_for(LEAD_PROCESSED).await;
    assert_eq!(
        field(&line, "conversation_id"),
        Some(first.clone()),
        "{line}"
    );

    // The same bytes again, as a retry or a replay: 200, said to be a
    // duplicate.
    let again = Answer::of(&server.send("/webhook", &delivery).await);
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.duplicate, "{again:?}");

    let unsigned = server
        .send("/webhook", &Outgoing::unsigned(lead(&first)))
        .await;
    assert_json_rejection(&unsigned, 401, "example-inbox unsigned");

    // A fresh lead after them, processed too: by then the worker had every
    // chance to process the duplicate, had it been stored.
    let second = send::new_conversation_id();
    let answer = Answer::of(
        &server
            .send("/webhook", &Outgoing::signed(&secret(), lead(&second)))
            .await,
    );
    assert!(answer.stored(), "{answer:?}");
    let line = server.wait_for(LEAD_PROCESSED).await;
    assert_eq!(
        field(&line, "conversation_id"),
        Some(second.clone()),
        "{line}"
    );

    // Ctrl-C: the server stops, then the worker; everything is in the log.
    server.signal("INT");
    let status = server.exit_status().await;
    let log = server.log();
    assert!(status.success(), "{status:?}\n{log}");
    let processed: Vec<String> = log
        .lines()
        .filter(|line| line.contains(LEAD_PROCESSED))
        .filter_map(|line| field(line, "conversation_id"))
        .collect();
    assert_eq!(processed, [first, second], "{log}");
    assert_no_private_data(&log, "example-inbox");

    // Two deliveries in the inbox, both processed: the duplicate and the
    // unsigned one were never stored.
    let inbox = Inbox::open(&url).await.unwrap();
    let stats = inbox.stats().await.unwrap();
    inbox.close().await;
    assert_eq!(
        (stats.pending, stats.processing, stats.processed, stats.dead),
        (0, 0, 2, 0),
        "{stats:?}"
    );
}
