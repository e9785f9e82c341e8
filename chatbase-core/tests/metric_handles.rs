//! `observe::cache_metric_handles`: the accepted path through cached handles
//! counts exactly what the registry lookups count, and sets the last-accepted
//! gauge once per second at most. A binary of its own, since
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

    // The gauge moves once per second at most: an event accepted later in
    // the same second leaves it at an earlier one's time.
    let accept = || {
        let span = observe::request_span();
        observe::record(&span, Outcome::Accepted, "none", Some("leads.submit"));
    };
    for _ in 0..10 {
        // Start a new second, so the next event is its first; a snapshot
        // reads a gauge and resets it to 0.
        let now = unix_seconds();
        std::thread::sleep(std::time::Duration::from_secs_f64(
            now.floor() + 1.0 - now + 0.001,
        ));
        let _ = Recorded::take(&snapshotter);
        let before = unix_seconds();
        accept();
        let between = unix_seconds();
        std::thread::sleep(std::time::Duration::from_millis(5));
        accept();
        let after = unix_seconds();
        if before.floor() != after.floor() {
            // A second began in between: either event may have set it.
            continue;
        }
        let gauge = Recorded::take(&snapshotter)
            .gauge(observe::LAST_ACCEPTED_SECONDS)
            .unwrap();
        assert!(
            before <= gauge && gauge <= between,
            "the gauge is {gauge}: not the first event of its second ({before} to {between})"
        );
        return;
    }
    panic!("10 tries, each across a second boundary");
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
