#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! - [`axum_receiver`] and [`actix_receiver`]: the two receivers, as a router /
//!   app and a `serve` function that the binaries, the demo and the tests run;
//! - [`send`]: signing and sending webhook requests (the `send` binary);
//! - [`deliveries`]: what the handlers saw, without customer data;
//! - [`timeouts`]: the receivers' timeouts against slow clients;
//! - [`baseline`]: the receivers without verification, for `bench/load.sh` only;
//! - [`listen`], [`logging`], [`shutdown`], [`random`], [`exit`]: the binaries' plumbing.

pub mod actix_receiver;
pub mod axum_receiver;
pub mod baseline;
pub mod deliveries;
pub mod exit;
pub mod listen;
pub mod logging;
pub mod random;
pub mod send;
pub mod shutdown;
pub mod timeouts;

/// The workspace README's code examples, compiled as doctests here (it belongs to
/// no published crate).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
