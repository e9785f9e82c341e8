// The README's examples open SQLite inboxes: they run as doctests where the
// store they use is built in.
#![cfg_attr(feature = "sqlite", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "sqlite"),
    doc = "A durable inbox for verified Chatbase webhook deliveries: stored once, \
           processed at least once, retried, never lost. See the crate's README \
           (its examples use the default `sqlite` feature)."
)]
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | the embedded SQLite store (`sqlite://path`), bundled: nothing to install |
//! | `postgres` | no | the PostgreSQL store (`postgres://...`), for several receivers on one database |
//! | `rustls` | no | TLS to PostgreSQL through rustls (`?sslmode=require` in the URL) |
//! | `metrics` | no | counters and gauges through the `metrics` facade: see [`observe`] |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod commit;
mod delivery;
mod error;
mod failure;
mod inbox;
mod key;
pub mod observe;
mod store;
mod worker;

pub use answer::{Answer, DUPLICATE_HEADER};
pub use delivery::{
    Accepted, CommitStats, Delivery, DeliveryRecord, RetentionReport, State, Stats, UnknownState,
};
pub use error::InboxError;
pub use failure::Failure;
pub use inbox::{
    DEFAULT_BATCH_SIZE, DEFAULT_BODY_RETENTION, DEFAULT_KEY_RETENTION, DEFAULT_WRITE_TIMEOUT,
    Inbox, InboxBuilder,
};
pub use key::KeyStrategy;
pub use observe::METRIC_NAMES;
pub use worker::{Handler, Worker};
