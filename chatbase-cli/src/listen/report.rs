//! [`Received`]: what the development receiver reports of each request, and
//! [`Rejection`]: why it refused one.

use std::io;
use std::path::PathBuf;

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use chatbase_core::{ChatbaseEvent, Error};

use crate::send::{Reply, SendError};

/// Why the development receiver refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Verification failed, as it would in a receiver built on
    /// chatbase-core.
    #[error(transparent)]
    Verify(Error),
    /// With a secret per chatbot: the body names no `chatbotId`, so no
    /// secret can be chosen.
    #[error("the body names no chatbotId (a string at its top level), so no secret can be chosen")]
    NoChatbotId,
    /// With a secret per chatbot: the body names a chatbot with no secret.
    #[error("no secret for chatbot {0:?}: add it to the secrets file")]
    UnknownChatbot(String),
}

impl Rejection {
    /// The status a receiver answers with: [`Error::status`], and 401 for
    /// a chatbot without a secret.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Verify(error) => {
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::NoChatbotId | Self::UnknownChatbot(_) => StatusCode::UNAUTHORIZED,
        }
    }
}

/// One request the development receiver answered.
///
/// Its `Debug` shows neither the body nor the event (customer data).
#[non_exhaustive]
pub struct Received {
    pub(super) number: u64,
    pub(super) method: Method,
    pub(super) target: String,
    pub(super) body: Bytes,
    pub(super) verdict: Result<ChatbaseEvent, Rejection>,
    pub(super) forwarded: Option<Result<Reply, SendError>>,
    pub(super) captured: Option<io::Result<PathBuf>>,
    pub(super) status: StatusCode,
}

impl Received {
    /// Its number: 1 for the first request since the receiver started.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The body as received (empty if it could not be read whole).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The verified event, or why the request was refused.
    pub fn verdict(&self) -> Result<&ChatbaseEvent, &Rejection> {
        self.verdict.as_ref()
    }

    /// What the app answered when the request was forwarded, or why it
    /// could not be.
    pub fn forwarded(&self) -> Option<Result<&Reply, &SendError>> {
        self.forwarded.as_ref().map(Result::as_ref)
    }

    /// Where the request was captured, or why it could not be.
    pub fn captured(&self) -> Option<Result<&PathBuf, &io::Error>> {
        self.captured.as_ref().map(Result::as_ref)
    }

    /// The status answered to the sender.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("number", &self.number)
            .field("method", &self.method)
            .field("target", &self.target)
            .field("body_len", &self.body.len())
            .field("verified", &self.verdict.is_ok())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
