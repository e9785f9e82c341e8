//! [`Answer`]: what to answer the sender of a delivery taken into the inbox,
//! the one policy the axum and actix-web glue share.

use chatbase_core::observe::{Answered, Outcome};

use crate::{Accepted, InboxError};

/// The response header that says a delivery was a duplicate:
/// `x-chatbase-duplicate: true`.
pub const DUPLICATE_HEADER: &str = "x-chatbase-duplicate";

/// What to answer the sender of a delivery once [`Inbox::accept`](crate::Inbox::accept)
/// has returned:
///
/// | result | status | headers | body |
/// |---|---|---|---|
/// | `Stored` | 200 | | `{"message":"stored"}` |
/// | `Duplicate` | 200 | `x-chatbase-duplicate: true` | `{"message":"duplicate: stored already"}` |
/// | an [`InboxError`] | 503 | `Retry-After` | `{"message":"temporarily unable to store the delivery: retry later"}` |
///
/// A 200 only ever follows a durable commit; the client never sees the
/// error's detail, which [`Answer::log`] logs for the operator.
///
/// ```
/// use chatbase_inbox::{Accepted, Answer};
///
/// let answer = Answer::of(&Ok(Accepted::Duplicate));
/// assert_eq!(answer.status(), 200);
/// assert!(answer.is_duplicate());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    status: u16,
    duplicate: bool,
    retry_after: Option<u64>,
    body: &'static str,
    answered: Answered,
}

impl Answer {
    /// The answer to `result`, what `Inbox::accept` returned.
    pub fn of(result: &Result<Accepted, InboxError>) -> Self {
        match result {
            Ok(Accepted::Stored { .. }) => Self {
                status: 200,
                duplicate: false,
                retry_after: None,
                body: r#"{"message":"stored"}"#,
                answered: Answered::ACCEPTED,
            },
            Ok(Accepted::Duplicate) => Self {
                status: 200,
                duplicate: true,
                retry_after: None,
                body: r#"{"message":"duplicate: stored already"}"#,
                answered: Answered {
                    outcome: Outcome::Duplicate,
                    reason: "duplicate",
                },
            },
            Err(error) => Self {
                status: 503,
                duplicate: false,
                retry_after: Some(error.retry_after()),
                body: r#"{"message":"temporarily unable to store the delivery: retry later"}"#,
                answered: Answered {
                    outcome: Outcome::Unavailable,
                    reason: "inbox_unavailable",
                },
            },
        }
    }

    /// The HTTP status: 200, or 503.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether to send [`DUPLICATE_HEADER`]`: true`.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The `Retry-After` to send, in seconds, with a 503.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The body, JSON `{"message": "..."}`, to send with
    /// `content-type: application/json`.
    pub fn json_body(&self) -> &'static str {
        self.body
    }

    /// What came of the request, for the metrics and the request's span.
    pub fn answered(&self) -> Answered {
        self.answered
    }

    /// Logs an error once, at `ERROR` under the `chatbase::rejection` target:
    /// the store's trouble (never the body or customer data), not the
    /// client's. Nothing for a stored or duplicate delivery.
    pub fn log(result: &Result<Accepted, InboxError>) {
        if let Err(error) = result {
            tracing::error!(
                target: chatbase_core::REJECTION_LOG_TARGET,
                status = 503,
                reason = "inbox_unavailable",
                "could not store a verified Chatbase webhook in the inbox: {error}; answered 503 so that the sender retries"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_duplicate_and_unavailable() {
        let stored = Answer::of(&Ok(Accepted::Stored { id: 1 }));
        assert_eq!(
            (stored.status(), stored.is_duplicate(), stored.retry_after()),
            (200, false, None)
        );
        assert_eq!(stored.answered(), Answered::ACCEPTED);
        let duplicate = Answer::of(&Ok(Accepted::Duplicate));
        assert!(duplicate.is_duplicate());
        assert_eq!(duplicate.answered().outcome, Outcome::Duplicate);
        let unavailable = Answer::of(&Err(InboxError::Timeout));
        assert_eq!(unavailable.status(), 503);
        assert_eq!(unavailable.retry_after(), Some(5));
        assert_eq!(unavailable.answered().reason, "inbox_unavailable");
        for answer in [stored, duplicate, unavailable] {
            let body: serde_json::Value = serde_json::from_str(answer.json_body()).unwrap();
            assert!(body["message"].is_string());
        }
    }
}
