#![doc = include_str!("../README.md")]
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | [`testing`](https://docs.rs/chatbase-core/latest/chatbase_core/testing/): sign bodies and build verified events in your own tests |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod event;
mod lead;
mod parse;
mod secret;
mod signature;
mod text;
mod verification;
mod verifier;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use error::{
    Error, InvalidPayload, MalformedSignature, PayloadErrorKind, REJECTION_LOG_TARGET,
};
pub use event::{ChatbaseEvent, Event, UnknownEvent};
pub use lead::Lead;
pub use secret::{EnvProblem, PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR, Secret, SecretError};
pub(crate) use signature::Signature;
pub use signature::{SIGNATURE_HEADER, sign};
pub use verification::Verification;
pub use verifier::{DEFAULT_BODY_LIMIT, Verifier};
