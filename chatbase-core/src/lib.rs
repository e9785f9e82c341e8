#![doc = include_str!("../README.md")]
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | [`testing`](https://docs.rs/chatbase-core/latest/chatbase_core/testing/): sign bodies and build verified events in your own tests |
//! | `metrics` | no | [`observe`]'s metrics through the `metrics` facade: requests by outcome and reason, events by type, verification time, last accepted |
//! | `resolver` | no | `Verifier::with_resolver`: secrets per chatbot looked up by your own async function (a database, a vault), behind a moka cache |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod chatbot;
mod chatbot_secrets;
mod error;
mod event;
mod lead;
pub mod observe;
mod parse;
#[cfg(feature = "resolver")]
mod resolver;
mod secret;
mod signature;
mod text;
mod verification;
mod verifier;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use chatbot::{ChatbotIdProblem, MAX_CHATBOT_ID_LEN, is_valid_chatbot_id};
pub use chatbot_secrets::{ChatbotSecretProblem, ChatbotSecrets, MapProblem};
pub use error::{
    Error, InvalidPayload, MalformedSignature, PayloadErrorKind, REJECTION_LOG_TARGET,
};
pub use event::{ChatbaseEvent, Event, UnknownEvent};
pub use lead::Lead;
#[cfg(feature = "resolver")]
#[cfg_attr(docsrs, doc(cfg(feature = "resolver")))]
pub use resolver::{ResolveError, ResolverOptions, SecretResolver};
pub use secret::{
    EnvProblem, PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR, SECRETS_ENV_VAR, SECRETS_FILE_ENV_VAR,
    Secret, SecretError,
};
pub(crate) use signature::Signature;
pub use signature::{SIGNATURE_HEADER, sign};
pub use verification::Verification;
pub use verifier::{DEFAULT_BODY_LIMIT, Verifier};
