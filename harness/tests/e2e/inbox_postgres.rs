//! The reference receivers on PostgreSQL: two of them on one database share
//! the deliveries and process each once; a database stopped under load gets
//! 503s with `Retry-After` (never a 200 for what was not stored), and when it
//! is back, every delivery answered 200 is processed and new ones are stored
//! again.
//!
//! The first test runs against `CHATBASE_TEST_POSTGRES_URL` (a database of its
//! own on that server); the second starts a cluster of its own with
//! `.ci/postgres.sh`, to stop it. Without PostgreSQL they say plainly that
//! they are skipped, and under `CI=true` they fail instead.

use std::collections::{BTreeMap, HashSet};

use harness::send::{self, Outgoing, Sender};
use tokio::task::JoinSet;

use crate::support::{
    Answer, Cluster, Database, INBOX_ENV_VAR, Load, METRICS_PORT_ENV_VAR, ROUTES, Reference, Sent,
    Server, assert_no_private_data, assert_requests_counted, counted_as, eventually, free_port,
    lead, patiently, postgres_server, scrape, secret, times_processed,
};
use chatbase_core::observe::REQUESTS_TOTAL;

/// Deliveries sent to both receivers.
const SHARED: usize = 600;
/// Deliveries (each to both receivers) in flight at once.
const SHARED_IN_FLIGHT: usize = 16;

/// The same deliveries sent to two receivers (one axum, one actix-web) on one
/// PostgreSQL database, each to both at once: both answer 200, one storing it
/// and the other saying it is a duplicate, and between them their workers
/// process each delivery exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_receivers_on_one_postgres_process_each_delivery_once() {
    let Some(server) =
        postgres_server("inbox_postgres::two_receivers_on_one_postgres_process_each_delivery_once")
    else {
        return;
    };
    let database = Database::create(&server);
    let env = [(INBOX_ENV_VAR, database.url.as_str())];
    // Started at once: both create the inbox's table on first use.
    let (mut axum, mut actix) = tokio::join!(
        Server::reference_with(Reference::Axum, &env),
        Server::reference_with(Reference::Actix, &env),
    );

    let urls = [axum.url(""), actix.url("")];
    let sender = Sender::new().unwrap();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..SHARED_IN_FLIGHT {
        let (urls, sender, next) = (urls.clone(), sender.clone(), next.clone());
        tasks.spawn(async move {
            let mut sent = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= SHARED {
                    return sent;
                }
                let conversation_id = send::new_conversation_id();
                let outgoing = Outgoing::signed(&secret(), lead(&conversation_id));
                let route = ROUTES[n % ROUTES.len()];
                let [to_axum, to_actix] = urls.clone().map(|url| format!("{url}{route}"));
                let (from_axum, from_actix) = tokio::join!(
                    sender.send(&to_axum, &outgoing),
                    sender.send(&to_actix, &outgoing),
                );
                let answers = [from_axum, from_actix].map(|reply| Answer::of(&reply.unwrap()));
                sent.push((conversation_id, answers));
            }
        });
    }
    let mut sent = Vec::new();
    patiently("the deliveries sent to both", async {
        while let Some(done) = tasks.join_next().await {
            sent.extend(done.unwrap());
        }
    })
    .await;
    assert_eq!(sent.len(), SHARED);

    let mut stored_by = [0; 2];
    for (conversation_id, answers) in &sent {
        for answer in answers {
            assert_eq!(answer.status, 200, "{conversation_id}: {answers:?}");
        }
        let stored: Vec<usize> = (0..2).filter(|at| answers[*at].stored()).collect();
        let [by] = stored.as_slice() else {
            panic!("{conversation_id}: stored by exactly one of the two: {answers:?}");
        };
        stored_by[*by] += 1;
    }

    let ids: HashSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    eventually("every delivery processed by one of them", async || {
        let times = times_processed([axum.log().as_str(), actix.log().as_str()]);
        ids.iter().all(|id| times.contains_key(*id))
    })
    .await;
    // Stopped gracefully: whatever their workers held is finished, so the
    // logs are complete.
    let (axum_log, actix_log) = (axum.stop().await, actix.stop().await);
    let times = times_processed([axum_log.as_str(), actix_log.as_str()]);
    for (conversation_id, count) in &times {
        assert!(ids.contains(conversation_id.as_str()), "{conversation_id}");
        assert_eq!(*count, 1, "{conversation_id}: processed {count} times");
    }
    assert_eq!(times.len(), SHARED);
    assert_no_private_data(&axum_log, "axum-receiver on PostgreSQL");
    assert_no_private_data(&actix_log, "actix-receiver on PostgreSQL");
    let processed_by =
        [axum_log.as_str(), actix_log.as_str()].map(|log| times_processed([log]).len());
    println!(
        "two receivers on one PostgreSQL: {SHARED} deliveries sent to both; stored by \
         axum-receiver {}, by actix-receiver {}; processed by axum-receiver {}, by \
         actix-receiver {}",
        stored_by[0], stored_by[1], processed_by[0], processed_by[1]
    );
}

/// The phases of the stopped-database test, as the loads mark what they send.
const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const STARTING: u8 = 3;
const BACK: u8 = 4;

/// Requests in flight to each receiver.
const IN_FLIGHT: usize = 16;
/// Answered 200 before the database is stopped, and again after it is back.
const ACCEPTED_EACH_WAY: usize = 300;

/// A reference receiver on its own database of the cluster, serving metrics.
struct Receiver {
    server: Server,
    metrics_port: u16,
    _database: Database,
}

impl Receiver {
    async fn start(reference: Reference, cluster: &Cluster) -> Self {
        let database = Database::create(&cluster.url);
        let metrics_port = free_port();
        let port = metrics_port.to_string();
        let server = Server::reference_with(
            reference,
            &[
                (INBOX_ENV_VAR, database.url.as_str()),
                (METRICS_PORT_ENV_VAR, port.as_str()),
            ],
        )
        .await;
        Self {
            server,
            metrics_port,
            _database: database,
        }
    }
}

/// Whether `sent` was sent and answered while the database was down.
fn while_down(sent: &Sent) -> bool {
    sent.sent_in == DOWN && sent.answered_in == DOWN
}

/// Runs an axum and an actix-web receiver, each on its own database of a
/// cluster of this test's own, under load; stops the cluster, then starts it
/// again; then sends again what was not answered 200, as a sender retries.
///
/// Always: no 200 for a delivery sent and answered while the database was
/// down, 503s with `Retry-After` then, every delivery answered 200 processed,
/// new deliveries stored once it is back, and the metrics count the 200s
/// exactly. With `strict`, also: every answer while it was down is a 503 with
/// `Retry-After`, and the metrics count every answer exactly. Without, the
/// receivers' `408 Request Timeout`s while it is down
/// are tolerated and reported.
async fn stopped_under_load(test: &str, strict: bool) {
    let Some(cluster) = Cluster::start(test).await else {
        return;
    };
    let (mut axum, mut actix) = tokio::join!(
        Receiver::start(Reference::Axum, &cluster),
        Receiver::start(Reference::Actix, &cluster),
    );
    // Unbounded in count: the phases' waits below end it.
    let loads =
        [&axum, &actix].map(|receiver| Load::start(&receiver.server, usize::MAX, IN_FLIGHT));
    let phase = |phase| loads.iter().for_each(|load| load.set_phase(phase));
    phase(UP);

    eventually("deliveries stored before the stop", async || {
        loads
            .iter()
            .all(|load| load.accepted() >= ACCEPTED_EACH_WAY)
    })
    .await;
    phase(STOPPING);
    cluster.stop_server().await;
    phase(DOWN);
    // Two rounds of requests each, sent and answered while it is down.
    eventually("answers while the database is down", async || {
        loads.iter().all(|load| {
            load.holds(|sent| sent.iter().filter(|sent| while_down(sent)).count() >= 2 * IN_FLIGHT)
        })
    })
    .await;
    phase(STARTING);
    cluster.start_server().await;
    phase(BACK);
    eventually("deliveries stored once the database is back", async || {
        loads.iter().all(|load| {
            load.holds(|sent| {
                sent.iter()
                    .filter(|sent| sent.sent_in == BACK && sent.ok())
                    .count()
                    >= ACCEPTED_EACH_WAY
            })
        })
    })
    .await;
    loads.iter().for_each(Load::stop);
    let [to_axum, to_actix] = loads;
    let sent = [to_axum.finish().await, to_actix.finish().await];

    let sender = Sender::new().unwrap();
    for (receiver, sent) in [(&mut axum, &sent[0]), (&mut actix, &sent[1])] {
        let name = receiver.server.name();
        let mut answers: Vec<Answer> = Vec::new();
        let mut timed_out = 0;
        for sent in sent {
            let answer = sent
                .answer
                .as_ref()
                .unwrap_or_else(|error| panic!("{name}: no answer: {error}: {sent:?}"));
            if while_down(sent) {
                // Nothing can be stored while it is down: never a 200.
                assert_ne!(answer.status, 200, "{name}: 200 while down: {sent:?}");
            }
            if answer.status == 408 && !strict {
                timed_out += 1;
            } else {
                assert!(
                    answer.status == 200 || answer.is_unavailable(),
                    "{name}: phase {} to {}: {answer:?} after {:?}",
                    sent.sent_in,
                    sent.answered_in,
                    sent.took
                );
            }
            answers.push(answer.clone());
        }
        let down = sent.iter().filter(|sent| while_down(sent)).count();
        let unavailable_while_down = sent
            .iter()
            .filter(|sent| while_down(sent))
            .filter(|sent| sent.answer.as_ref().is_ok_and(Answer::is_unavailable))
            .count();
        assert!(unavailable_while_down > 0, "{name}: no 503 while down");
        let unavailable = answers.iter().filter(|answer| answer.status == 503).count();

        // Sent again, as a sender retries a 503: stored now, or found stored
        // already (a commit whose answer was lost with the connection).
        let mut duplicates = 0;
        for sent in sent.iter().filter(|sent| !sent.ok()) {
            let url = receiver.server.url(sent.route);
            let outgoing = Outgoing::signed(&secret(), sent.body.clone());
            let reply = patiently(&url, sender.send(&url, &outgoing)).await.unwrap();
            let answer = Answer::of(&reply);
            assert_eq!(answer.status, 200, "{name}: sent again: {answer:?}");
            duplicates += usize::from(answer.duplicate);
            answers.push(answer);
        }

        // Everything answered 200 (all of it, by now) is processed.
        let ids: HashSet<&str> = sent
            .iter()
            .map(|sent| sent.conversation_id.as_str())
            .collect();
        let server = &mut receiver.server;
        eventually(&format!("{name}: every delivery processed"), async || {
            let times = times_processed([server.log().as_str()]);
            ids.iter().all(|id| times.contains_key(*id))
        })
        .await;

        // The metrics say what the answers said.
        let scrape = scrape(receiver.metrics_port).await;
        let mut expected: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for answer in &answers {
            *expected.entry(counted_as(answer, "timeout")).or_default() += 1;
        }
        if strict || timed_out == 0 {
            assert_requests_counted(&scrape, &expected, name);
        } else {
            // The 200s exactly, and the 503s at least.
            let counted = scrape.series(REQUESTS_TOTAL);
            let count = |outcome: &str, reason: &str| {
                counted
                    .iter()
                    .find(|(labels, _)| {
                        labels.contains(&("outcome".to_owned(), outcome.to_owned()))
                            && labels.contains(&("reason".to_owned(), reason.to_owned()))
                    })
                    .map_or(0.0, |(_, count)| *count)
            };
            #[allow(clippy::cast_precision_loss)]
            let expected =
                |outcome, reason| expected.get(&(outcome, reason)).copied().unwrap_or(0) as f64;
            for (outcome, reason) in [("accepted", "none"), ("duplicate", "duplicate")] {
                assert_eq!(
                    count(outcome, reason),
                    expected(outcome, reason),
                    "{name}: {outcome}\n{}",
                    scrape.text
                );
            }
            assert!(
                count("unavailable", "inbox_unavailable")
                    >= expected("unavailable", "inbox_unavailable"),
                "{name}: unavailable\n{}",
                scrape.text
            );
        }

        let log = receiver.server.stop().await;
        let times = times_processed([log.as_str()]);
        assert_eq!(times.len(), ids.len(), "{name}: processed, never sent");
        assert_no_private_data(&log, name);
        println!(
            "{name}, PostgreSQL stopped under load: {} sent; {down} sent and answered while \
             it was down, {unavailable_while_down} of them 503; {unavailable} 503s and \
             {timed_out} 408s in all; sent again, {duplicates} found stored already; {} \
             processed twice",
            sent.len(),
            times.values().filter(|times| **times > 1).count()
        );
    }
}

/// While PostgreSQL is down, every answer is a 503 with `Retry-After`: an
/// accept waits 5 s at most in all (queue and batch), well within the
/// receivers' 10 s request timeout; and every answer is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_answers_503_with_retry_after_and_counts_every_answer() {
    stopped_under_load(
        "inbox_postgres::postgres_stopped_under_load_answers_503_with_retry_after_and_counts_every_answer",
        true,
    )
    .await;
}
