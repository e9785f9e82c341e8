//! Every request is counted once, by outcome and reason, and traced in one
//! `chatbase.webhook` span: chatbase-core's `observe`, as the adapter calls it.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{TestRequest, call_service, init_service};
use actix_web::web;
use bytes::Bytes;
use chatbase_core::observe;
use chatbase_core::testing::logs::Logs;
use metrics::{SharedString, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

use crate::support::{
    EXTRACTOR_PATH, Hits, MIDDLEWARE_PATH, extractor_app, middleware_app, post_signed, verifier,
};

/// What was recorded since the last snapshot (a snapshot takes the counts).
type Recorded = Vec<(CompositeKey, Option<Unit>, Option<SharedString>, DebugValue)>;

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

/// Sends two accepted requests, a forged and an unsigned one to `path`, and
/// checks what was recorded.
async fn counts<S, B>(app: &S, path: &str, logs: &Logs, recorder: &DebuggingRecorder)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let snapshotter = recorder.snapshotter();
    let lead = Bytes::from_static(br#"{"eventType":"leads.submit","chatbotId":"b","payload":{}}"#);
    let other =
        Bytes::from_static(br#"{"eventType":"conversations.end","chatbotId":"b","payload":{}}"#);
    for body in [&lead, &other] {
        assert_eq!(post_signed(app, path, body, true).await.0, 200);
    }
    let mark = logs.mark();
    let forged = TestRequest::post()
        .uri(path)
        .insert_header(("x-chatbase-signature", "0".repeat(40)))
        .set_payload(lead.clone())
        .to_request();
    assert_eq!(call_service(app, forged).await.status(), 401);
    let forged_log = logs.since(mark);
    let unsigned = TestRequest::post()
        .uri(path)
        .set_payload(lead.clone())
        .to_request();
    assert_eq!(call_service(app, unsigned).await.status(), 401);

    let recorded = snapshotter.snapshot().into_vec();
    let requests = |outcome, reason| {
        counter(
            &recorded,
            observe::REQUESTS_TOTAL,
            &[("outcome", outcome), ("reason", reason)],
        )
    };
    assert_eq!(requests("accepted", "none"), 2, "{path}");
    assert_eq!(requests("rejected", "signature_mismatch"), 1, "{path}");
    assert_eq!(requests("rejected", "missing_signature"), 1, "{path}");
    let events = |event_type| {
        counter(
            &recorded,
            observe::EVENTS_TOTAL,
            &[("event_type", event_type)],
        )
    };
    assert_eq!(events("leads.submit"), 1, "{path}");
    assert_eq!(events("other"), 1, "{path}");
    match value(
        &recorded,
        MetricKind::Histogram,
        observe::VERIFICATION_SECONDS,
        &[],
    ) {
        Some(DebugValue::Histogram(times)) => assert_eq!(times.len(), 3, "{path}"),
        other => panic!("{path}: no verification histogram: {other:?}"),
    }
    assert!(matches!(
        value(&recorded, MetricKind::Gauge, observe::LAST_ACCEPTED_SECONDS, &[]),
        Some(DebugValue::Gauge(seconds)) if seconds.into_inner() > 1.7e9
    ));
    assert!(forged_log.contains("chatbase.webhook{"), "{forged_log}");
    assert!(forged_log.contains("outcome=\"rejected\""), "{forged_log}");
    assert!(
        forged_log.contains("reason=\"signature_mismatch\""),
        "{forged_log}"
    );
}

#[actix_web::test]
async fn each_request_is_counted_once_by_outcome_and_reason() {
    let logs = Logs::capture();
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let hits = web::Data::new(Hits::default());
    let app = init_service(extractor_app(Some(verifier()), hits.clone())).await;
    counts(&app, EXTRACTOR_PATH, &logs, &recorder).await;
    let app = init_service(middleware_app(verifier(), None, hits)).await;
    counts(&app, MIDDLEWARE_PATH, &logs, &recorder).await;
}
