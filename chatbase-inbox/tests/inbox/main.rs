//! The inbox against real stores: SQLite in temporary files always, PostgreSQL
//! when `CHATBASE_TEST_POSTGRES_URL` names a server (`.ci/postgres.sh start`
//! starts one; under `CI=true` the PostgreSQL suite is never skipped). Each
//! behavioural test runs once per store: `sqlite::name` and `postgres::name`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub
)]

mod support;

mod accept;
mod errors;
#[cfg(feature = "metrics")]
mod metrics;
mod retention;
mod worker;
