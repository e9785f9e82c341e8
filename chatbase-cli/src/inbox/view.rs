//! What `chatbase inbox` shows of a delivery and of the counts: only
//! metadata, never a body, so never a customer's email or phone.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use chatbase_inbox::{DeliveryRecord, State, Stats};
use serde::Serialize;

/// A delivery as `chatbase inbox list` shows it, in its table and in JSON:
/// its id, state, attempts, chatbot id, event type, when it was received and
/// its last error.
///
/// Nothing else of the [`DeliveryRecord`]: the body (and with it the
/// customer's email and phone) is not even read from the store, and the last
/// error holds no customer data by the inbox's design (a fixed reason or an
/// error's type name).
///
/// `--json` prints an array of these, each as
/// `{"id":7,"state":"dead","attempts":10,"chatbot_id":"bot_1",
/// "event_type":"leads.submit","received_at":"2026-05-01T10:00:00.000Z",
/// "last_error":"crm down"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ListedDelivery {
    /// Its id in the inbox, for `chatbase inbox retry ID`.
    pub id: i64,
    /// `pending`, `processing`, `processed` or `dead`.
    pub state: &'static str,
    /// Attempts started so far.
    pub attempts: u32,
    /// The chatbot the event is about, if the body named one.
    pub chatbot_id: Option<String>,
    /// The `eventType`.
    pub event_type: String,
    /// When the inbox committed it: RFC 3339, UTC, to the millisecond.
    pub received_at: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl From<&DeliveryRecord> for ListedDelivery {
    fn from(record: &DeliveryRecord) -> Self {
        Self {
            id: record.id,
            state: record.state.as_str(),
            attempts: record.attempts,
            chatbot_id: record.chatbot_id.clone(),
            event_type: record.event_type.clone(),
            received_at: humantime::format_rfc3339_millis(record.received_at).to_string(),
            last_error: record.last_error.clone(),
        }
    }
}

/// The counts of `chatbase inbox stats --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatsView {
    /// Deliveries waiting for a worker.
    pub pending: u64,
    /// Deliveries being processed.
    pub processing: u64,
    /// Deliveries processed (until retention removes them).
    pub processed: u64,
    /// Dead deliveries, waiting for an operator.
    pub dead: u64,
    /// How long the oldest pending or processing delivery has been in the
    /// inbox, in whole seconds: the worker's lag. `null` when there is none.
    pub oldest_pending_age_seconds: Option<u64>,
}

impl From<&Stats> for StatsView {
    fn from(stats: &Stats) -> Self {
        Self {
            pending: stats.count(State::Pending),
            processing: stats.count(State::Processing),
            processed: stats.count(State::Processed),
            dead: stats.count(State::Dead),
            oldest_pending_age_seconds: stats.oldest_pending_age.map(|age| age.as_secs()),
        }
    }
}

/// A time as the table shows it: RFC 3339, UTC, to the second.
pub fn table_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A duration to the second, as people write it: `3h 5m 2s`, `0s`.
pub fn age(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

/// `text` safe to print on a terminal: control characters (escape sequences,
/// carriage returns, newlines) are written as escapes, so a stored value
/// cannot move the cursor, change colours or forge lines of the table.
pub fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("leads.submit"), "leads.submit");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable("x\ny\rz\t"), "x\\ny\\rz\\t");
        assert_eq!(printable("é ü"), "é ü");
    }

    #[test]
    fn ages_are_to_the_second() {
        assert_eq!(age(Duration::from_millis(3_725_400)), "1h 2m 5s");
        assert_eq!(age(Duration::from_millis(400)), "0s");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_777_629_600_123);
        assert_eq!(table_time(time), "2026-05-01T10:00:00Z");
    }
}
