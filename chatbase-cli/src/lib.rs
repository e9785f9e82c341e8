#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! The `chatbase` command is built on these, which test harnesses and demos
//! can use directly:
//!
//! - [`send`]: sign and send webhook requests ([`send::Sender`],
//!   [`send::Outgoing`], [`send::Reply`]), many at a time
//!   ([`send::send_many`]);
//! - [`diagnose`]: why a signature does not verify;
//! - [`secrets`]: the per-chatbot secrets file;
//! - [`listen`]: the local development receiver;
//! - [`capture`]: requests written to files exactly as received, and read
//!   back to replay them;
//! - [`mask`]: customer emails and phones masked in a body before it is shown;
//! - [`inbox`]: operating a durable inbox (`chatbase-inbox`): its URL with the
//!   password hidden, opening one that exists, what is shown of a delivery.

pub mod capture;
pub mod diagnose;
pub mod inbox;
pub mod listen;
pub mod mask;
pub mod secrets;
pub mod send;
