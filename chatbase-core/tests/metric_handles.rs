//! `observe::cache_metric_handles`: the accepted path through cached handles
//! counts exactly what the registry lookups count. A binary of its own, since
//! it installs the global recorder and caches handles for the whole process.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use bytes::Bytes;
use chatbase_core::observe::{self, Outcome};
use chatbase_core::{Error, Secret, Verifier, sign};
use metrics::SharedString;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

type Recorded = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<SharedString>,
    DebugValue,
)>;

fn value<'r>(
    recorded: &'r Recorded,
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'r DebugValue> {
    recorded
        .iter()
        .find(|(key, _, _, _)| {
            let key_labels: Vec<(&str, &str)> = key
                .key()
                .labels()
                .map(|label| (label.key(), label.value()))
                .collect();
            key.kind() == kind && key.key().name() == name && key_labels == labels
        })
        .map(|(_, _, _, value)| value)
}

fn counter(recorded: &Recorded, name: &str, labels: &[(&str, &str)]) -> u64 {
    match value(recorded, MetricKind::Counter, name, labels) {
        Some(DebugValue::Counter(count)) => *count,
        _ => 0,
    }
}

#[test]
fn cached_handles_count_every_accepted_request_in_the_global_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    assert!(observe::cache_metric_handles(), "the first call caches");
    assert!(!observe::cache_metric_handles(), "later calls keep them");

    let secret = Secret::new("metric-handles").unwrap();
    let verifier = Verifier::new(secret.clone());
    let lead = Bytes::from_static(br#"{"eventType":"leads.submit","chatbotId":"b","payload":{}}"#);
    let other =
        Bytes::from_static(br#"{"eventType":"conversations.end","chatbotId":"b","payload":{}}"#);
    for body in [&lead, &lead, &lead, &other] {
        let span = observe::request_span();
        let signature = sign(&secret, body);
        let event = verifier
            .verify_and_parse(body.clone(), Some(signature.as_bytes()))
            .unwrap();
        observe::record(&span, Outcome::Accepted, "none", Some(event.event_type()));
    }
    let span = observe::request_span();
    let forgery = sign(&Secret::new("another-secret").unwrap(), &lead);
    let forged = verifier.verify_and_parse(lead, Some(forgery.as_bytes()));
    let Err(error @ Error::SignatureMismatch) = forged else {
        panic!("expected a signature mismatch, got {forged:?}")
    };
    observe::record_error(&span, &error);

    let recorded: Recorded = snapshotter.snapshot().into_vec();
    let requests = observe::REQUESTS_TOTAL;
    assert_eq!(
        counter(
            &recorded,
            requests,
            &[("outcome", "accepted"), ("reason", "none")]
        ),
        4
    );
    assert_eq!(
        counter(
            &recorded,
            requests,
            &[("outcome", "rejected"), ("reason", "signature_mismatch")]
        ),
        1
    );
    let events = observe::EVENTS_TOTAL;
    assert_eq!(
        counter(&recorded, events, &[("event_type", "leads.submit")]),
        3
    );
    assert_eq!(counter(&recorded, events, &[("event_type", "other")]), 1);
    match value(
        &recorded,
        MetricKind::Gauge,
        observe::LAST_ACCEPTED_SECONDS,
        &[],
    ) {
        Some(DebugValue::Gauge(seconds)) => assert!(seconds.0 > 1.7e9, "{seconds:?}"),
        other => panic!("no last-accepted gauge: {other:?}"),
    }
    // Every verification is timed, the refused one included.
    match value(
        &recorded,
        MetricKind::Histogram,
        observe::VERIFICATION_SECONDS,
        &[],
    ) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 5),
        other => panic!("no verification histogram: {other:?}"),
    }
}
