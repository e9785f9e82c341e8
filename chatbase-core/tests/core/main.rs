//! chatbase-core's integration tests, one binary split by concern.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub
)]

mod properties;
mod support;
mod vectors;
