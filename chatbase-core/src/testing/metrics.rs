//! Reading what a `metrics-util` [`DebuggingRecorder`] recorded, in tests of
//! the `metrics` feature (features `test-util` and `metrics`).
//!
//! ```
//! use chatbase_core::testing::metrics::Recorded;
//! use metrics_util::debugging::DebuggingRecorder;
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::counter!("requests", "outcome" => "accepted").increment(2);
//! });
//! let recorded = Recorded::take(&snapshotter);
//! assert_eq!(recorded.counter("requests", &[("outcome", "accepted")]), 2);
//! assert_eq!(recorded.counter("requests", &[("outcome", "rejected")]), 0);
//! ```
//!
//! [`DebuggingRecorder`]: metrics_util::debugging::DebuggingRecorder

use metrics::{SharedString, Unit};
use metrics_util::debugging::{DebugValue, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

/// One snapshot of a debugging recorder. Taking it resets the counters, so
/// take it once and query it.
#[derive(Debug)]
pub struct Recorded(Vec<(CompositeKey, Option<Unit>, Option<SharedString>, DebugValue)>);

impl Recorded {
    /// What `snapshotter`'s recorder holds now.
    pub fn take(snapshotter: &Snapshotter) -> Self {
        Self(snapshotter.snapshot().into_vec())
    }

    /// The value of the metric `name` of `kind` with exactly `labels` (in
    /// order), if it was recorded.
    pub fn value(
        &self,
        kind: MetricKind,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<&DebugValue> {
        self.0
            .iter()
            .find(|(key, _, _, _)| {
                key.kind() == kind
                    && key.key().name() == name
                    && key
                        .key()
                        .labels()
                        .map(|label| (label.key(), label.value()))
                        .eq(labels.iter().copied())
            })
            .map(|(_, _, _, value)| value)
    }

    /// The counter `name` with exactly `labels`: 0 if it was not recorded.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(MetricKind::Counter, name, labels) {
            Some(DebugValue::Counter(count)) => *count,
            _ => 0,
        }
    }

    /// The gauge `name` (without labels), if it was set.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        match self.value(MetricKind::Gauge, name, &[]) {
            Some(DebugValue::Gauge(value)) => Some(value.into_inner()),
            _ => None,
        }
    }

    /// How many samples the histogram `name` (without labels) received:
    /// `None` if it was never recorded.
    pub fn histogram_samples(&self, name: &str) -> Option<usize> {
        match self.value(MetricKind::Histogram, name, &[]) {
            Some(DebugValue::Histogram(samples)) => Some(samples.len()),
            _ => None,
        }
    }

    /// The keys of every metric recorded.
    pub fn keys(&self) -> impl Iterator<Item = &metrics::Key> {
        self.0.iter().map(|(key, _, _, _)| key.key())
    }
}
