//! End-to-end tests of the extractor and the `VerifyChatbase` middleware,
//! through `actix_web::test::init_service` and, for early 413s, a real server
//! over TCP. One test binary, split by concern:
//!
//! - `conformance`: chatbase-core's request matrix against both set-ups, each
//!   body sent with a `Content-Length` and streamed without one;
//! - `extractor`: the typed event, 405s, rotation, a missing verifier, repeated
//!   signature headers;
//! - `middleware`: what reaches the handlers behind `VerifyChatbase` (the body,
//!   actix-web's body limits, the event in the request extensions);
//! - `limits`: the verifier's body limit in both set-ups, endless bodies;
//! - `logging`: what is logged, under which target, and what never is;
//! - `tcp`: a 413 reaches a client still sending, over a real socket.
//!
//! Shared apps, handlers and request builders are in `support`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod conformance;
mod extractor;
mod limits;
mod logging;
mod metrics;
mod middleware;
mod support;
mod tcp;
