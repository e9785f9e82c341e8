//! What is logged: each rejection once, under the `chatbase::rejection` target,
//! with the operator's hint; never a secret, a signature or customer data.

use std::io;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::post;
use chatbase_axum::{ChatbaseEvent, Event, Verifier, VerifyChatbaseLayer};
use chatbase_core::sign;
use chatbase_core::testing::logs::{self, Logs};
use chatbase_core::testing::{self, LeadPayload, SAMPLE_LEADS_SUBMIT};
use futures_util::stream;
use serde_json::json;

use crate::support::{
    Context, LIMIT, SECRET, TARGETS, app, request_signed_as, secret, send, signed_request, verifier,
};

/// A signed body that is no event (400) and carries a customer's details,
/// which serde's message could quote.
#[tokio::test(flavor = "current_thread")]
async fn a_rejected_body_with_customer_data_is_logged_without_it() {
    let logs = Logs::capture();
    let body =
        r#"{"eventType":1,"payload":{"customerEmail":"jo@acme.io","customerPhone":"+1 555 0100"}}"#;
    for target in TARGETS {
        let _context = Context(format!("{target:?}"));
        let app = app(target, verifier());
        let mark = logs.mark();
        let message = send(&app.router, signed_request(app.path, body))
            .await
            .assert_rejected(StatusCode::BAD_REQUEST, "not an event");
        let logged = logs.since(mark);
        logs::assert_rejection_logged_once(&logged, 400);
        logs::assert_logged_none_of(&logged, &["jo@acme.io", "acme", "555 0100", SECRET]);
        logs::assert_logged_none_of(&message, &["jo@acme.io", "acme", "555 0100"]);
        assert_eq!(app.state.hits(), 0);
    }
}

/// Each rejection is one `WARN` line under `chatbase::rejection`, so that
/// operators can filter or rate-limit what an attacker can cause, with its
/// reason code and what to check; the client gets a few words without the hint.
#[tokio::test(flavor = "current_thread")]
async fn rejections_are_logged_under_the_rejection_target_with_the_hint() {
    let logs = Logs::capture();
    let sample = SAMPLE_LEADS_SUBMIT;
    let sha256 = "ab".repeat(32);
    let forged = sign(&secret("forger"), sample.as_bytes());
    let oversized = " ".repeat(LIMIT + 1);
    let oversized_signature = sign(&secret(SECRET), oversized.as_bytes());
    let array_signature = sign(&secret(SECRET), b"[1]");
    for target in TARGETS {
        let app = app(target, verifier());
        let requests = [
            (
                request_signed_as(app.path, &[], sample),
                401,
                "missing_signature",
                "strips the header",
            ),
            (
                request_signed_as(app.path, &[&sha256], sample),
                401,
                "malformed_signature",
                "looks like SHA-256",
            ),
            (
                request_signed_as(app.path, &[&forged], sample),
                401,
                "signature_mismatch",
                "webhook settings",
            ),
            (
                request_signed_as(app.path, &[&oversized_signature], oversized.clone()),
                413,
                "body_too_large",
                "Verifier::with_body_limit",
            ),
            (
                request_signed_as(app.path, &[&array_signature], "[1]"),
                400,
                "invalid_payload",
                "JSON but not an object",
            ),
        ];
        for (request, status, reason, hint) in requests {
            let _context = Context(format!("{target:?}, {reason}"));
            let mark = logs.mark();
            let answer = send(&app.router, request).await;
            let message = answer.assert_rejected(StatusCode::from_u16(status).unwrap(), reason);
            let logged = logs.since(mark);
            logs::assert_rejection_logged_once(&logged, status);
            let line = logs::rejection_lines(&logged)[0];
            // The target is a documented, stable name: the literal, not the constant.
            assert!(line.contains(" chatbase::rejection: "), "{line}");
            assert!(line.contains(reason), "{line}");
            assert!(line.contains(hint), "{line}");
            assert!(
                !message.contains(hint),
                "the client is told the hint: {message}"
            );
        }
        assert_eq!(app.state.hits(), 0, "{target:?}");
    }
}

/// A handler that logs what it received, with `{:?}`, logs no customer data:
/// the event and the lead redact it, an unknown event shows its payload's
/// length only.
#[tokio::test(flavor = "current_thread")]
async fn a_handler_logging_the_event_logs_no_customer_data() {
    async fn handler(event: ChatbaseEvent) -> StatusCode {
        tracing::info!(?event, "received");
        match event.event() {
            Event::LeadsSubmit(lead) => tracing::info!(?lead, "lead"),
            other => tracing::info!(event = ?other, "other event"),
        }
        StatusCode::NO_CONTENT
    }
    let logs = Logs::capture();
    let lead = LeadPayload {
        conversation_id: Some("conv_77".to_owned()),
        customer_email: Some("ada@example.com".to_owned()),
        customer_name: Some("Ada Lovelace".to_owned()),
        customer_phone: Some("+44 20 7946 0000".to_owned()),
    };
    let bodies = [
        (testing::lead_body("bot_7", &lead), "conv_77"),
        (
            testing::event_body(
                "contacts.update",
                "bot_7",
                &json!({"email": "ada@example.com", "name": "Ada Lovelace"}),
            ),
            "contacts.update",
        ),
    ];
    let routers: [(&str, Router); 2] = [
        (
            "extractor",
            Router::new()
                .route("/", post(handler))
                .with_state(verifier()),
        ),
        (
            "layer",
            Router::new()
                .route("/", post(handler))
                .layer(VerifyChatbaseLayer::new(verifier())),
        ),
    ];
    for (name, router) in routers {
        for (body, shown) in &bodies {
            let mark = logs.mark();
            let answer = send(&router, signed_request("/", body.clone())).await;
            assert_eq!(answer.status, StatusCode::NO_CONTENT, "{name}");
            let logged = logs.since(mark);
            // The handler's lines were captured...
            assert_eq!(logged.lines().count(), 2, "{name}: {logged}");
            assert!(logged.contains(shown), "{name}: {logged}");
            // ...without the customer's details.
            logs::assert_logged_none_of(&logged, &["ada@", "Lovelace", "7946"]);
        }
    }
}

/// A body whose stream fails (the client went away) is a 400, logged once
/// like every other rejection.
#[tokio::test(flavor = "current_thread")]
async fn a_body_that_cannot_be_read_is_400_and_logged_once() {
    let logs = Logs::capture();
    let signature = sign(&secret(SECRET), SAMPLE_LEADS_SUBMIT.as_bytes());
    for target in TARGETS {
        let _context = Context(format!("{target:?}"));
        let app = app(target, Verifier::new(secret(SECRET)));
        let frames = stream::iter([
            Ok(Bytes::from_static(b"{")),
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ]);
        let request = request_signed_as(app.path, &[&signature], Body::from_stream(frames));
        let mark = logs.mark();
        send(&app.router, request)
            .await
            .assert_rejected(StatusCode::BAD_REQUEST, "broken body");
        let logged = logs.since(mark);
        logs::assert_rejection_logged_once(&logged, 400);
        assert!(logged.contains("read_body"), "{logged}");
        assert_eq!(app.state.hits(), 0);
    }
}
