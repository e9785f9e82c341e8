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
use chatbase_core::testing::metrics::Recorded;
use metrics_util::debugging::DebuggingRecorder;

use crate::support::{
    EXTRACTOR_PATH, Hits, MIDDLEWARE_PATH, extractor_app, middleware_app, post_signed, verifier,
};

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

    let recorded = Recorded::take(&snapshotter);
    let requests = |outcome, reason| {
        recorded.counter(
            observe::REQUESTS_TOTAL,
            &[("outcome", outcome), ("reason", reason)],
        )
    };
    assert_eq!(requests("accepted", "none"), 2, "{path}");
    assert_eq!(requests("rejected", "signature_mismatch"), 1, "{path}");
    assert_eq!(requests("rejected", "missing_signature"), 1, "{path}");
    let events =
        |event_type| recorded.counter(observe::EVENTS_TOTAL, &[("event_type", event_type)]);
    assert_eq!(events("leads.submit"), 1, "{path}");
    assert_eq!(events("other"), 1, "{path}");
    assert_eq!(
        recorded.histogram_samples(observe::VERIFICATION_SECONDS),
        Some(3),
        "{path}"
    );
    let seconds = recorded.gauge(observe::LAST_ACCEPTED_SECONDS);
    assert!(seconds.is_some_and(|seconds| seconds > 1.7e9), "{path}");
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
