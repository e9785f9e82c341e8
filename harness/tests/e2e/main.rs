//! End to end: the example binaries (`examples/*`), built once and run as child
//! processes, driven over real TCP by `harness::send` and by raw sockets for the
//! hostile clients; what they delivered is read from their log lines. And the
//! `demo` binary.
//!
//! No timing assertions: the receivers run with their own default timeouts
//! (10 s), and every wait is bounded by [`PATIENCE`](harness::examples::PATIENCE)
//! only so that a broken binary fails the test instead of hanging it. The cases
//! that wait for a timeout run at once, in one test, so together they take
//! about one timeout.
//!
//! Each test starts its own binaries on free ports; the binaries are built
//! once, by the first test that needs one (`harness::examples::binary`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod cli;
mod conformance;
mod contract;
mod demo;
mod inbox_example;
mod inbox_kill;
mod inbox_postgres;
mod many_bots;
mod metrics;
mod short_examples;
mod shutdown;
mod slow_clients;
mod startup;
mod support;
