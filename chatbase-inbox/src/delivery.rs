//! What the inbox hands out: the [`Delivery`] a handler processes, the
//! [`DeliveryRecord`] and [`Stats`] operators read, and [`Accepted`].

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chatbase_core::{ChatbaseEvent, InvalidPayload};

/// The outcome of [`Inbox::accept`](crate::Inbox::accept): either way the
/// delivery is durably stored, and an HTTP adapter answers `200`. (Not
/// `#[non_exhaustive]`: a delivery is new or it is not, so match both.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The delivery is new: it was committed under this id and will be
    /// processed.
    Stored {
        /// Its id in the inbox.
        id: i64,
    },
    /// A delivery with the same key was already stored (a retry, a replay, or
    /// the same event sent to another instance): nothing was written, and it
    /// is processed once, as the first one.
    Duplicate,
}

impl Accepted {
    /// Whether this was a duplicate.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Duplicate)
    }

    /// The id of the stored delivery, `None` for a duplicate.
    pub fn id(&self) -> Option<i64> {
        match self {
            Self::Stored { id } => Some(*id),
            Self::Duplicate => None,
        }
    }
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Stored and waiting for a worker (perhaps until its backoff has passed).
    Pending,
    /// Claimed by a worker, under a lease.
    Processing,
    /// The handler succeeded.
    Processed,
    /// Every attempt failed (or the handler gave a permanent failure): left
    /// for an operator to [requeue](crate::Inbox::requeue).
    Dead,
}

impl State {
    /// Every state, in life order.
    pub const ALL: [State; 4] = [
        State::Pending,
        State::Processing,
        State::Processed,
        State::Dead,
    ];

    /// The name stored in the database: `pending`, `processing`, `processed`
    /// or `dead`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Processed => "processed",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a [`State`]'s name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState;

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown delivery state (expected pending, processing, processed or dead)")
    }
}

impl std::error::Error for UnknownState {}

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or(UnknownState)
    }
}

/// Milliseconds since the Unix epoch (as stored) to a [`SystemTime`].
pub(crate) fn time_from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A stored delivery handed to the worker's handler.
///
/// `Debug` shows the metadata and the body's length, never the body (it holds
/// customer data).
#[derive(Clone)]
pub struct Delivery {
    pub(crate) id: i64,
    pub(crate) key: String,
    pub(crate) chatbot_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) body: Bytes,
    pub(crate) received_at: SystemTime,
    pub(crate) attempt: u32,
}

impl Delivery {
    /// Its id in the inbox.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Its delivery key (`body:<sha256>` or `natural:<sha256>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The chatbot the event is about, if the body named one.
    pub fn chatbot_id(&self) -> Option<&str> {
        self.chatbot_id.as_deref()
    }

    /// The `eventType`, e.g. `leads.submit`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The raw body exactly as it was signed and received.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// When the inbox committed it (the database's clock).
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// Which attempt this is: 1 the first time, 2 after one failure, ...
    /// An attempt whose worker died (its lease expired) counts; one released
    /// by a graceful shutdown does not.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The typed event, parsed again from the stored body.
    ///
    /// # Errors
    ///
    /// [`InvalidPayload`] if the stored bytes are not a Chatbase event, which
    /// cannot happen for a delivery accepted as a verified
    /// [`ChatbaseEvent`].
    pub fn event(&self) -> Result<ChatbaseEvent, InvalidPayload> {
        ChatbaseEvent::from_verified_body(self.body.clone())
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("chatbot_id", &self.chatbot_id)
            .field("event_type", &self.event_type)
            .field("body_len", &self.body.len())
            .field("received_at", &self.received_at)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// A delivery as operators see it ([`Inbox::list`](crate::Inbox::list),
/// [`Inbox::get`](crate::Inbox::get)): its metadata and state, without the
/// body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// Its id in the inbox.
    pub id: i64,
    /// Its delivery key.
    pub key: String,
    /// The chatbot the event is about.
    pub chatbot_id: Option<String>,
    /// The `eventType`.
    pub event_type: String,
    /// Where it is in its life.
    pub state: State,
    /// Attempts started so far (the one in progress included).
    pub attempts: u32,
    /// When it was committed.
    pub received_at: SystemTime,
    /// A pending delivery is not claimed before this time (backoff).
    pub available_at: SystemTime,
    /// Until when a processing delivery's lease holds.
    pub locked_until: Option<SystemTime>,
    /// When it was processed or declared dead.
    pub finished_at: Option<SystemTime>,
    /// Why the last attempt failed: a fixed reason or an error's type name,
    /// never customer data.
    pub last_error: Option<String>,
    /// The stored body's length in bytes; `None` once retention removed it.
    pub body_len: Option<u64>,
}

/// Counts per state and the age of the oldest unfinished delivery
/// ([`Inbox::stats`](crate::Inbox::stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Deliveries waiting for a worker.
    pub pending: u64,
    /// Deliveries being processed.
    pub processing: u64,
    /// Deliveries processed (until key retention removes them).
    pub processed: u64,
    /// Dead deliveries, waiting for an operator.
    pub dead: u64,
    /// How long the oldest pending or processing delivery has been in the
    /// inbox: the worker's lag. `None` when there is none.
    pub oldest_pending_age: Option<Duration>,
}

impl Stats {
    /// The count of deliveries in `state`.
    pub fn count(&self, state: State) -> u64 {
        match state {
            State::Pending => self.pending,
            State::Processing => self.processing,
            State::Processed => self.processed,
            State::Dead => self.dead,
        }
    }
}

/// What [`Inbox::run_retention`](crate::Inbox::run_retention) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Bodies of processed deliveries removed (their keys stay).
    pub bodies_removed: u64,
    /// Finished deliveries (processed or dead) removed entirely, keys
    /// included: a later duplicate of one of them is stored again.
    pub deliveries_removed: u64,
}

/// This process's group-commit counters since the inbox was opened
/// ([`Inbox::commit_stats`](crate::Inbox::commit_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitStats {
    /// Transactions committed by the writer. Each holds one or more writes:
    /// deliveries accepted, and the outcomes of a worker using this inbox
    /// (which share the group commit too).
    pub batches: u64,
    /// Deliveries written in those transactions (stored and duplicates).
    pub rows: u64,
    /// Deliveries newly stored.
    pub stored: u64,
    /// Deliveries answered as duplicates.
    pub duplicates: u64,
    /// Deliveries whose batch failed (each was answered with an error).
    pub failed: u64,
}
