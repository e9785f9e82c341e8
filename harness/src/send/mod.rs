//! Sending webhook requests as Chatbase does — or as a forger would: the code
//! behind the `send` binary, reused by the demo and the tests.
//!
//! An [`Outgoing`] request is a body and how it is signed: correctly, with a
//! wrong (but well-formed) signature, not at all, or correctly for a body that was
//! then tampered with. A [`Sender`] sends it over HTTP or HTTPS and returns the
//! [`Reply`].
//!
//! ```no_run
//! use chatbase_core::Secret;
//! use harness::send::{self, Outgoing, Sender};
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

mod client;
mod outgoing;

pub use self::client::{MAX_REPLY_BYTES, Reply, SendError, Sender, USER_AGENT, parse_url};
pub use self::outgoing::{
    DEFAULT_CHATBOT_ID, Outgoing, TAMPERED_EMAIL, event_body, lead_body, new_conversation_id,
    sample_lead,
};
