//! Sending webhook requests as Chatbase does, or as a forger would: the code
//! behind `chatbase send`, for test harnesses and demos too.
//!
//! An [`Outgoing`] request is a body and how it is signed: correctly, with a
//! wrong (but well-formed) signature, not at all, or correctly for a body
//! that was then tampered with. A [`Sender`] sends it over HTTP or HTTPS and
//! returns the [`Reply`]; [`send_many`] sends many, some at a time, and
//! returns a [`Tally`] of the statuses.
//!
//! ```no_run
//! use chatbase_core::Secret;
//! use chatbase_cli::send::{self, Outgoing, Sender};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::new("the-secret-from-the-chatbase-dashboard")?;
//! let body = send::lead_body(send::DEFAULT_CHATBOT_ID, &send::new_conversation_id());
//! let reply = Sender::new()?
//!     .send("http://127.0.0.1:3000/webhook", &Outgoing::signed(&secret, body))
//!     .await?;
//! assert_eq!(reply.status(), 200);
//! # Ok(())
//! # }
//! ```

mod body;
mod client;
mod error;
mod expect;
mod outgoing;
mod repeat;

pub use self::body::{
    DEFAULT_CHATBOT_ID, LEADS_SUBMIT, SAMPLE_EMAIL, SAMPLE_PHONE, TAMPERED_EMAIL, event_body,
    lead_body, new_conversation_id,
};
pub use self::client::{MAX_REPLY_BYTES, REQUEST_TIMEOUT, Reply, Sender, USER_AGENT};
pub use self::error::{Failure, SendError, parse_url};
pub use self::expect::{Expect, InvalidStatusPattern, StatusPattern};
pub use self::outgoing::Outgoing;
pub use self::repeat::{Tally, send_many};
