//! Integration tests of chatbase-axum: real axum `Router`s, driven with
//! `tower::ServiceExt::oneshot` and, for what only a connection shows, over
//! real TCP with `axum::serve`.
//!
//! - [`conformance`]: chatbase-core's request matrix against every way of
//!   wiring a route, each body sent with a `Content-Length` and chunked;
//! - [`extractor`]: the `ChatbaseEvent` extractor and where it finds its
//!   verifier;
//! - [`layer`]: `VerifyChatbaseLayer`, what it hands on and what it guards;
//! - [`logging`]: what is logged, under which target, and what never is;
//! - [`tcp`]: over real TCP, a client still sending receives its rejection;
//! - [`support`]: the applications, requests and answers they share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs
)]

mod conformance;
mod extractor;
mod layer;
mod logging;
mod metrics;
mod support;
mod tcp;
