#![doc = include_str!("../README.md")]
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `inbox` | no | [`inbox`](https://docs.rs/chatbase-actix/latest/chatbase_actix/inbox/): take verified deliveries into chatbase-inbox's durable inbox, in one line or with a ready-made handler |
//! | `metrics` | no | metrics of every webhook request through the `metrics` facade: see chatbase-core's [`observe`](https://docs.rs/chatbase-core/latest/chatbase_core/observe/) |
//! | `resolver` | no | `Verifier::with_resolver`: secrets per chatbot looked up by your own async function, behind a cache (chatbase-core's) |
//! | `test-util` | no | [`testing`](https://docs.rs/chatbase-core/latest/chatbase_core/testing/): sign bodies and build verified events in your own tests (chatbase-core's `test-util`) |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod extract;
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod inbox;
mod method;
mod middleware;
mod rejection;

pub use extract::ChatbaseEvent;
pub use method::method_not_allowed;
pub use middleware::{VerifyChatbase, VerifyChatbaseMiddleware};
pub use rejection::ChatbaseRejection;

pub use chatbase_core::{
    self, ChatbotSecrets, DEFAULT_BODY_LIMIT, Error, Event, Lead, REJECTION_LOG_TARGET,
    SIGNATURE_HEADER, Secret, SecretError, UnknownEvent, Verifier,
};

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use chatbase_core::testing;
#[cfg(feature = "resolver")]
#[cfg_attr(docsrs, doc(cfg(feature = "resolver")))]
pub use chatbase_core::{ResolveError, ResolverOptions, SecretResolver};
