//! Durable accepts per second under concurrency: group commit (the default)
//! against one commit per delivery (`batch_size(1)`, the per-request baseline).
//!
//! `cargo bench -p chatbase-inbox --bench accept` measures SQLite (a file in a
//! temporary directory, WAL, `synchronous=FULL`); with
//! `CHATBASE_TEST_POSTGRES_URL` set (`eval "$(.ci/postgres.sh start)"`, and the
//! `postgres` feature) it measures PostgreSQL as well. Criterion's `thrpt` is
//! committed deliveries per second.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use chatbase_core::ChatbaseEvent;
use chatbase_inbox::{Inbox, InboxBuilder};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Concurrent requests, as a loaded receiver would have in flight: 64, or
/// `CHATBASE_BENCH_CONCURRENCY`.
fn concurrency() -> usize {
    std::env::var("CHATBASE_BENCH_CONCURRENCY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

/// `n` distinct leads, distinct from every other call's too.
fn events(n: u64) -> Vec<ChatbaseEvent> {
    let run = fastrand::u64(..);
    (0..n)
        .map(|i| {
            let body = format!(
                r#"{{"eventType":"leads.submit","chatbotId":"bot_bench","payload":{{"conversationId":"conv_{run}_{i}","customerEmail":"c{i}@example.com","customerName":"Ada","customerPhone":"+1555{i:07}"}}}}"#
            );
            ChatbaseEvent::from_verified_body(body.into()).unwrap()
        })
        .collect()
}

/// Accepts `events` from `concurrency()` tasks at once; returns the time taken.
async fn accept_all(inbox: &Inbox, events: Vec<ChatbaseEvent>) -> Duration {
    let concurrency = concurrency();
    let mut chunks: Vec<Vec<ChatbaseEvent>> = (0..concurrency).map(|_| Vec::new()).collect();
    for (i, event) in events.into_iter().enumerate() {
        if let Some(chunk) = chunks.get_mut(i % concurrency) {
            chunk.push(event);
        }
    }
    let start = Instant::now();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                for event in chunk {
                    inbox.accept(&event).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

fn bench_store(c: &mut Criterion, store: &str, mut builder: impl FnMut() -> InboxBuilder) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group(format!("accept/{store}/concurrency_{}", concurrency()));
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, batch) in [("per_request_commit", Some(1)), ("group_commit", None)] {
        let inbox = runtime.block_on(async {
            let builder = builder();
            let builder = match batch {
                Some(rows) => builder.batch_size(rows),
                None => builder,
            };
            builder.open().await.unwrap()
        });
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let events = events(iters);
                runtime.block_on(accept_all(&inbox, events))
            });
        });
        let commits = inbox.commit_stats();
        println!(
            "{store} {name}: {} deliveries in {} transactions ({:.1} per commit)",
            commits.rows,
            commits.batches,
            commits.rows as f64 / commits.batches.max(1) as f64
        );
    }
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    bench_store(c, "sqlite", || {
        n += 1;
        let path = dir.path().join(format!("bench-{n}.db"));
        Inbox::builder(format!("sqlite://{}", path.display()))
    });
}

fn postgres(c: &mut Criterion) {
    if !cfg!(feature = "postgres") {
        return;
    }
    let Ok(base) = std::env::var("CHATBASE_TEST_POSTGRES_URL") else {
        println!("postgres: CHATBASE_TEST_POSTGRES_URL is not set, not measured");
        return;
    };
    bench_store(c, "postgres", move || Inbox::builder(base.clone()));
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
