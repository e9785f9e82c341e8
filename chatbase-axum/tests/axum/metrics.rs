//! Every request is counted once, by outcome and reason, and traced in one
//! `chatbase.webhook` span: chatbase-core's `observe`, as the adapter calls it.

use axum::http::StatusCode;
use chatbase_core::observe;
use chatbase_core::testing::logs::Logs;
use chatbase_core::testing::metrics::Recorded;
use metrics_util::debugging::DebuggingRecorder;

use crate::support::{TARGETS, app, request_signed_as, send, signed_request, verifier};

#[tokio::test(flavor = "current_thread")]
async fn each_request_is_counted_once_by_outcome_and_reason() {
    let logs = Logs::capture();
    for target in TARGETS {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let app = app(target, verifier());
        let lead = r#"{"eventType":"leads.submit","chatbotId":"b","payload":{}}"#;
        let other = r#"{"eventType":"conversations.end","chatbotId":"b","payload":{}}"#;
        for body in [lead, other] {
            let answer = send(&app.router, signed_request(app.path, body)).await;
            assert_eq!(answer.status, StatusCode::OK, "{target:?}");
        }
        let forged = request_signed_as(app.path, &[&"0".repeat(40)], lead);
        let mark = logs.mark();
        send(&app.router, forged)
            .await
            .assert_rejected(StatusCode::UNAUTHORIZED, "forged");
        let forged_log = logs.since(mark);
        send(&app.router, request_signed_as(app.path, &[], lead))
            .await
            .assert_rejected(StatusCode::UNAUTHORIZED, "unsigned");

        let recorded = Recorded::take(&snapshotter);
        let requests = |outcome, reason| {
            recorded.counter(
                observe::REQUESTS_TOTAL,
                &[("outcome", outcome), ("reason", reason)],
            )
        };
        assert_eq!(requests("accepted", "none"), 2, "{target:?}");
        assert_eq!(requests("rejected", "signature_mismatch"), 1, "{target:?}");
        assert_eq!(requests("rejected", "missing_signature"), 1, "{target:?}");
        let events =
            |event_type| recorded.counter(observe::EVENTS_TOTAL, &[("event_type", event_type)]);
        assert_eq!(events("leads.submit"), 1, "{target:?}");
        assert_eq!(events("other"), 1, "{target:?}");
        // Three bodies were verified (the unsigned one was refused from its head).
        assert_eq!(
            recorded.histogram_samples(observe::VERIFICATION_SECONDS),
            Some(3),
            "{target:?}"
        );
        let seconds = recorded.gauge(observe::LAST_ACCEPTED_SECONDS);
        assert!(seconds.is_some_and(|seconds| seconds > 1.7e9), "{target:?}");
        // The rejection's log line is in the request's span, with its fields.
        assert!(forged_log.contains("chatbase.webhook{"), "{forged_log}");
        assert!(forged_log.contains("outcome=\"rejected\""), "{forged_log}");
        assert!(
            forged_log.contains("reason=\"signature_mismatch\""),
            "{forged_log}"
        );
    }
}
