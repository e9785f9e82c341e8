//! What a receiver does, for operators: each request's [`Outcome`] as a
//! `tracing` span and, with the `metrics` feature, as metrics.
//!
//! The adapters call these for every webhook request; a receiver built on
//! [`Verification`](crate::Verification) directly calls them the same way:
//! [`request_span`] when the request arrives, [`record`] once its answer is
//! known.
//!
//! # Metrics (feature `metrics`)
//!
//! Emitted through the [`metrics`](https://docs.rs/metrics) facade: the
//! library never installs a recorder, the application chooses the exporter
//! (for Prometheus, `metrics-exporter-prometheus`). Label values are fixed
//! strings: there is no chatbot label, since a chatbot id is chosen by whoever
//! sends the request until it is verified.
//!
//! | metric | type | labels | what it counts or shows |
//! |---|---|---|---|
//! | `chatbase_webhook_requests_total` | counter | `outcome`, `reason` | every webhook request; `outcome` is `accepted`, `rejected`, `duplicate` or `unavailable`; `reason` is [`Error::reason`] for a rejection or a failed secret lookup, `cancelled` for a request cut off before its answer (a timeout, a client gone), `missing_verifier`, `duplicate`, `inbox_unavailable`, or `none` for an accepted request |
//! | `chatbase_webhook_events_total` | counter | `event_type` | accepted events: `leads.submit`, or `other` for types this version does not know |
//! | `chatbase_webhook_verification_duration_seconds` | histogram | | time spent verifying a body: the secret lookup, the HMAC and the parse |
//! | `chatbase_webhook_last_accepted_timestamp_seconds` | gauge | | when the last event was accepted, in seconds since the Unix epoch |
//!
//! The names and label values are stable. `chatbase-inbox` adds its own.
//!
//! Each request looks its metrics up in the recorder, as the `metrics` macros
//! do. An application that installs a global recorder can call
//! `cache_metric_handles` once after it, so that accepted requests update
//! the handles directly (the gauge then to the second).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Lead};

/// The names of every metric this crate emits (feature `metrics`).
pub const METRIC_NAMES: [&str; 4] = [
    REQUESTS_TOTAL,
    EVENTS_TOTAL,
    VERIFICATION_SECONDS,
    LAST_ACCEPTED_SECONDS,
];

/// `chatbase_webhook_requests_total{outcome, reason}`.
pub const REQUESTS_TOTAL: &str = "chatbase_webhook_requests_total";
/// `chatbase_webhook_events_total{event_type}`.
pub const EVENTS_TOTAL: &str = "chatbase_webhook_events_total";
/// `chatbase_webhook_verification_duration_seconds`.
pub const VERIFICATION_SECONDS: &str = "chatbase_webhook_verification_duration_seconds";
/// `chatbase_webhook_last_accepted_timestamp_seconds`.
pub const LAST_ACCEPTED_SECONDS: &str = "chatbase_webhook_last_accepted_timestamp_seconds";

/// The name of the span [`request_span`] opens: `chatbase.webhook`.
pub const SPAN_NAME: &str = "chatbase.webhook";

/// What came of a webhook request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Verified and handed on (or stored in an inbox).
    Accepted,
    /// Refused: unsigned, forged, too large, not an event... (4xx).
    Rejected,
    /// Verified, and already stored by an inbox: answered 200, not handed on
    /// again.
    Duplicate,
    /// Could not be verified or stored right now: 503, to retry.
    Unavailable,
}

impl Outcome {
    /// The outcome of a request refused with `error`: [`Outcome::Unavailable`]
    /// for a 503, [`Outcome::Rejected`] otherwise.
    pub fn of(error: &Error) -> Self {
        if error.status() == 503 {
            Self::Unavailable
        } else {
            Self::Rejected
        }
    }

    /// Its label value: `accepted`, `rejected`, `duplicate` or `unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Duplicate => "duplicate",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a handler's answer says came of a verified request, for the layer or
/// middleware in front of it to record: the inbox glue puts it in the
/// response's extensions (a duplicate, an unavailable store). A verified
/// request whose answer has none counts as [`Outcome::Accepted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// What came of the request.
    pub outcome: Outcome,
    /// Why, as a fixed label value: `none`, `duplicate`, `inbox_unavailable`...
    pub reason: &'static str,
}

impl Answered {
    /// A verified request, handed on: accepted, reason `none`.
    pub const ACCEPTED: Self = Self {
        outcome: Outcome::Accepted,
        reason: "none",
    };
}

/// The `event_type` label of `event_type`: itself for a type this version
/// knows, `other` for the rest (so that a sender cannot make the label set
/// grow).
pub fn event_type_label(event_type: &str) -> &'static str {
    if event_type == Lead::EVENT_TYPE {
        Lead::EVENT_TYPE
    } else {
        "other"
    }
}

/// The span of one webhook request, `chatbase.webhook` at `INFO`, with the
/// fields [`record`] fills in: `outcome`, `reason` and `event_type`. Enter it
/// (or instrument the request's future with it) while the request is handled.
pub fn request_span() -> tracing::Span {
    tracing::info_span!(
        "chatbase.webhook",
        outcome = tracing::field::Empty,
        reason = tracing::field::Empty,
        event_type = tracing::field::Empty,
    )
}

/// Records what came of a request: on `span` (from [`request_span`]) and,
/// with the `metrics` feature, in the metrics above. `reason` is
/// [`Error::reason`] for a refused request, `none` otherwise; `event_type` is
/// the verified event's type, if it got that far. Call it once per request.
pub fn record(
    span: &tracing::Span,
    outcome: Outcome,
    reason: &'static str,
    event_type: Option<&str>,
) {
    let event_type = event_type.map(event_type_label);
    span.record("outcome", outcome.as_str());
    span.record("reason", reason);
    if let Some(event_type) = event_type {
        span.record("event_type", event_type);
    }
    #[cfg(feature = "metrics")]
    emit(outcome, reason, event_type);
}

/// Records a refused request: [`record`] with the error's outcome and reason.
pub fn record_error(span: &tracing::Span, error: &Error) {
    record(span, Outcome::of(error), error.reason(), None);
}

/// One request's span and its one record: [`record`] at most once, and, if it
/// is dropped unrecorded, `rejected` with the reason `cancelled`. A request is
/// dropped so when its client goes away, or a timeout around it cuts it off
/// (a server then answers `408 Request Timeout`): it is counted all the same.
///
/// Cheap to clone; the clones share the one record.
#[derive(Debug, Clone)]
pub struct Recorder(Arc<Record>);

#[derive(Debug)]
struct Record {
    span: tracing::Span,
    done: AtomicBool,
}

impl Recorder {
    /// A recorder with a new [`request_span`].
    pub fn new() -> Self {
        Self(Arc::new(Record {
            span: request_span(),
            done: AtomicBool::new(false),
        }))
    }

    /// The request's span: enter it, or instrument the request's future with it.
    pub fn span(&self) -> &tracing::Span {
        &self.0.span
    }

    /// [`record`], unless this request was recorded already.
    pub fn record(&self, outcome: Outcome, reason: &'static str, event_type: Option<&str>) {
        if !self.0.done.swap(true, Ordering::AcqRel) {
            record(&self.0.span, outcome, reason, event_type);
        }
    }

    /// [`record_error`], unless this request was recorded already.
    pub fn record_error(&self, error: &Error) {
        self.record(Outcome::of(error), error.reason(), None);
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !*self.done.get_mut() {
            record(&self.span, Outcome::Rejected, "cancelled", None);
        }
    }
}

/// The keys of the hot path (an accepted event), built at compile time with
/// their hashes: the `counter!` macro with labels would allocate a label list
/// and hash it on every request.
#[cfg(feature = "metrics")]
mod keys {
    use metrics::{Key, Label, Level, Metadata};

    use super::{EVENTS_TOTAL, LAST_ACCEPTED_SECONDS, REQUESTS_TOTAL, VERIFICATION_SECONDS};
    use crate::Lead;

    pub(super) static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    static ACCEPTED_LABELS: [Label; 2] = [
        Label::from_static_parts("outcome", "accepted"),
        Label::from_static_parts("reason", "none"),
    ];
    static LEADS_SUBMIT_LABELS: [Label; 1] =
        [Label::from_static_parts("event_type", Lead::EVENT_TYPE)];
    static OTHER_EVENT_LABELS: [Label; 1] = [Label::from_static_parts("event_type", "other")];

    pub(super) static ACCEPTED: Key = Key::from_static_parts(REQUESTS_TOTAL, &ACCEPTED_LABELS);
    pub(super) static LEADS_SUBMIT: Key =
        Key::from_static_parts(EVENTS_TOTAL, &LEADS_SUBMIT_LABELS);
    pub(super) static OTHER_EVENT: Key = Key::from_static_parts(EVENTS_TOTAL, &OTHER_EVENT_LABELS);
    pub(super) static LAST_ACCEPTED: Key = Key::from_static_name(LAST_ACCEPTED_SECONDS);
    pub(super) static VERIFICATION: Key = Key::from_static_name(VERIFICATION_SECONDS);
}

/// The handles of the accepted path's metrics, once [`cache_metric_handles`]
/// has registered them.
#[cfg(feature = "metrics")]
struct Handles {
    accepted: metrics::Counter,
    leads_submit: metrics::Counter,
    other_event: metrics::Counter,
    last_accepted: metrics::Gauge,
    verification: metrics::Histogram,
}

#[cfg(feature = "metrics")]
static HANDLES: std::sync::OnceLock<Handles> = std::sync::OnceLock::new();

/// The second of the last accepted event, as set in the gauge (with cached
/// handles only).
#[cfg(feature = "metrics")]
static LAST_ACCEPTED_SECOND: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registers the metrics that every accepted request updates with the
/// current recorder, once, and keeps their handles (feature `metrics`).
///
/// Without it, each request looks its four metrics up in the recorder's
/// registry, as the `metrics` macros do: with metrics-exporter-prometheus,
/// a lock and a hash-map lookup per metric, shared by every worker thread.
/// With it, a request updates the handles directly, and the
/// `chatbase_webhook_last_accepted_timestamp_seconds` gauge is set once per
/// second at most (to the first accepted event of that second).
///
/// Call it right after installing the global recorder (for example after
/// `PrometheusBuilder::install`). From then on, these metrics go to that
/// recorder, even inside `metrics::with_local_recorder`: do not call it in
/// tests that use local recorders. Rejections and the other outcomes are
/// still looked up per request (they are not the hot path).
///
/// Returns `false` if handles were cached already (by an earlier call),
/// `true` if this call cached them.
#[cfg(feature = "metrics")]
pub fn cache_metric_handles() -> bool {
    let mut cached = false;
    HANDLES.get_or_init(|| {
        cached = true;
        metrics::with_recorder(|recorder| Handles {
            accepted: recorder.register_counter(&keys::ACCEPTED, &keys::METADATA),
            leads_submit: recorder.register_counter(&keys::LEADS_SUBMIT, &keys::METADATA),
            other_event: recorder.register_counter(&keys::OTHER_EVENT, &keys::METADATA),
            last_accepted: recorder.register_gauge(&keys::LAST_ACCEPTED, &keys::METADATA),
            verification: recorder.register_histogram(&keys::VERIFICATION, &keys::METADATA),
        })
    });
    cached
}

#[cfg(feature = "metrics")]
fn emit(outcome: Outcome, reason: &'static str, event_type: Option<&'static str>) {
    if outcome != Outcome::Accepted || reason != "none" {
        metrics::counter!(REQUESTS_TOTAL, "outcome" => outcome.as_str(), "reason" => reason)
            .increment(1);
        if outcome != Outcome::Accepted {
            return;
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    let leads = event_type.map(|event_type| event_type == Lead::EVENT_TYPE);
    if let Some(handles) = HANDLES.get() {
        if reason == "none" {
            handles.accepted.increment(1);
        }
        match leads {
            Some(true) => handles.leads_submit.increment(1),
            Some(false) => handles.other_event.increment(1),
            None => {}
        }
        // Truncating to whole seconds is the point.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let second = now as u64;
        if LAST_ACCEPTED_SECOND.load(Ordering::Relaxed) != second {
            LAST_ACCEPTED_SECOND.store(second, Ordering::Relaxed);
            handles.last_accepted.set(now);
        }
        return;
    }
    metrics::with_recorder(|recorder| {
        if reason == "none" {
            recorder
                .register_counter(&keys::ACCEPTED, &keys::METADATA)
                .increment(1);
        }
        if let Some(leads) = leads {
            let key = if leads {
                &keys::LEADS_SUBMIT
            } else {
                &keys::OTHER_EVENT
            };
            recorder.register_counter(key, &keys::METADATA).increment(1);
        }
        recorder
            .register_gauge(&keys::LAST_ACCEPTED, &keys::METADATA)
            .set(now);
    });
}

/// Times a verification into the histogram (feature `metrics`) when dropped:
/// at the end of the verification, or when it is abandoned (a client gone
/// during a secret lookup). Without the feature it is empty and does nothing.
pub(crate) struct VerificationTimer {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl VerificationTimer {
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "metrics")]
impl Drop for VerificationTimer {
    fn drop(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64();
        if let Some(handles) = HANDLES.get() {
            handles.verification.record(seconds);
            return;
        }
        metrics::with_recorder(|recorder| {
            metrics::Recorder::register_histogram(recorder, &keys::VERIFICATION, &keys::METADATA)
                .record(seconds);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_records_once_and_a_dropped_one_as_cancelled() {
        let logs = crate::testing::logs::Logs::capture();
        let recorder = Recorder::new();
        let clone = recorder.clone();
        recorder.record(Outcome::Accepted, "none", Some("leads.submit"));
        clone.record_error(&Error::SignatureMismatch);
        drop((recorder, clone));
        let cancelled = Recorder::new();
        let _entered = cancelled.span().clone().entered();
        drop(cancelled);
        // The span outlives the recorder here: its fields now say cancelled.
        tracing::warn!("after the drop");
        let logged = logs.all();
        assert!(logged.contains("outcome=\"rejected\""), "{logged}");
        assert!(logged.contains("reason=\"cancelled\""), "{logged}");
    }

    #[test]
    fn outcomes_and_labels_are_fixed_strings() {
        assert_eq!(Outcome::of(&Error::SignatureMismatch), Outcome::Rejected);
        assert_eq!(
            Outcome::of(&Error::SecretLookup("down".into())),
            Outcome::Unavailable
        );
        assert_eq!(Outcome::Duplicate.to_string(), "duplicate");
        assert_eq!(event_type_label("leads.submit"), "leads.submit");
        assert_eq!(event_type_label("conversations.end"), "other");
        assert_eq!(event_type_label("attacker-chosen-{}"), "other");
    }
}
