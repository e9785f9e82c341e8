#![doc = include_str!("../README.md")]
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `inbox` | no | [`inbox`](https://docs.rs/chatbase-axum/latest/chatbase_axum/inbox/): take verified deliveries into chatbase-inbox's durable inbox, in one line or with a ready-made service |
//! | `metrics` | no | metrics of every webhook request through the `metrics` facade: see chatbase-core's [`observe`](https://docs.rs/chatbase-core/latest/chatbase_core/observe/) |
//! | `resolver` | no | `Verifier::with_resolver`: secrets per chatbot looked up by your own async function, behind a cache (chatbase-core's) |
//! | `test-util` | no | [`testing`](https://docs.rs/chatbase-core/latest/chatbase_core/testing/): sign bodies and build verified events in your own tests (chatbase-core's) |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod extract;
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod inbox;
mod rejection;
pub mod verify_chatbase;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use chatbase_core::testing;
pub use chatbase_core::{
    self, ChatbotSecrets, DEFAULT_BODY_LIMIT, Error, Event, Lead, REJECTION_LOG_TARGET,
    SIGNATURE_HEADER, Secret, SecretError, UnknownEvent, Verifier,
};
#[cfg(feature = "resolver")]
#[cfg_attr(docsrs, doc(cfg(feature = "resolver")))]
pub use chatbase_core::{ResolveError, ResolverOptions, SecretResolver};

pub use self::extract::ChatbaseEvent;
pub use self::rejection::ChatbaseRejection;
pub use self::verify_chatbase::{VerifyChatbase, VerifyChatbaseLayer};
