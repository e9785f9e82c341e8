//! `observe::cache_metric_handles`: the accepted path through cached handles
//! counts exactly what the registry lookups count. A binary of its own, since
//! it installs the global recorder and caches handles for the whole process.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use bytes::Bytes;
use chatbase_core::observe::{self, Outcome};
use chatbase_core::testing::metrics::Recorded;
use chatbase_core::{Error, Secret, Verifier, sign};
use metrics_util::debugging::DebuggingRecorder;

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

    let recorded = Recorded::take(&snapshotter);
    let requests = observe::REQUESTS_TOTAL;
    assert_eq!(
        recorded.counter(requests, &[("outcome", "accepted"), ("reason", "none")]),
        4
    );
    assert_eq!(
        recorded.counter(
            requests,
            &[("outcome", "rejected"), ("reason", "signature_mismatch")]
        ),
        1
    );
    let events = observe::EVENTS_TOTAL;
    assert_eq!(
        recorded.counter(events, &[("event_type", "leads.submit")]),
        3
    );
    assert_eq!(recorded.counter(events, &[("event_type", "other")]), 1);
    let seconds = recorded.gauge(observe::LAST_ACCEPTED_SECONDS);
    assert!(
        seconds.is_some_and(|seconds| seconds > 1.7e9),
        "{seconds:?}"
    );
    // Every verification is timed, the refused one included.
    assert_eq!(
        recorded.histogram_samples(observe::VERIFICATION_SECONDS),
        Some(5)
    );
}
