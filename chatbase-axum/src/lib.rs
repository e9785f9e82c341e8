#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod extract;
pub mod layer;
mod rejection;
mod verify;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use chatbase_core::testing;
pub use chatbase_core::{
    self, DEFAULT_BODY_LIMIT, Error, Event, Lead, SIGNATURE_HEADER, Secret, SecretError,
    UnknownEvent, Verifier,
};

pub use self::extract::ChatbaseEvent;
pub use self::layer::ChatbaseLayer;
pub use self::rejection::ChatbaseRejection;
