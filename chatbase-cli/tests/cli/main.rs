//! End to end: the `chatbase` binary driven the assert_cmd way, over real
//! TCP, against servers started by the tests and against `chatbase listen`
//! itself.
//!
//! No timing assertions: every wait is bounded by a generous
//! [`support::PATIENCE`] only so that a broken binary fails the test instead
//! of hanging it.

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

mod conventions;
mod errors;
mod inbox;
mod listen;
mod send;
mod sign;
mod support;
mod verify;
