//! The `ChatbaseEvent` extractor: the typed event, where it finds its verifier,
//! and what it answers when it finds none.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Extension;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use chatbase_axum::{ChatbaseEvent, ChatbaseRejection, Error, Verifier};
use chatbase_core::sign;
use chatbase_core::testing::logs::{self, Logs};
use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::support::{
    AppState, Context, LIMIT, SECRET, TARGETS, Target, app, describe, request_signed_as, secret,
    send, signed_request, verifier,
};

/// What the conformance matrix does not look at: the typed event the handler
/// matches on.
#[tokio::test]
async fn the_handler_gets_the_typed_event() {
    let cases = [
        (
            SAMPLE_LEADS_SUBMIT,
            json!("xxxxxxxx"),
            serde_json::to_value(testing::sample_lead()).unwrap(),
        ),
        (
            r#"{"eventType":"leads.submit","chatbotId":"bot_2","payload":{"conversationId":null,"customerEmail":"ada@example.com"}}"#,
            json!("bot_2"),
            json!({"customerEmail": "ada@example.com"}),
        ),
        // Neither `payload` nor `chatbotId` is required: an empty lead.
        (r#"{"eventType":"leads.submit"}"#, Value::Null, json!({})),
        // An event type this crate does not know is no lead.
        (
            r#"{"eventType":"conversations.end","chatbotId":"bot_9","payload":{}}"#,
            json!("bot_9"),
            Value::Null,
        ),
    ];
    for target in TARGETS {
        for (body, chatbot_id, lead) in &cases {
            let context = format!("{target:?}, {body}");
            let app = app(target, verifier());
            let answer = send(&app.router, signed_request(app.path, *body)).await;
            assert_eq!(answer.status, StatusCode::OK, "{context}");
            let seen = answer.json();
            assert_eq!(seen["chatbotId"], *chatbot_id, "{context}");
            assert_eq!(seen["lead"], *lead, "{context}");
            let delivered = app.state.delivered();
            assert_eq!(delivered.len(), 1, "{context}");
            assert_eq!(delivered[0].raw_body, Some(Bytes::from(*body)), "{context}");
        }
    }
}

#[tokio::test]
async fn get_on_the_post_route_is_405_with_allow() {
    for target in [Target::VerifierState, Target::VerifierExtension] {
        let app = app(target, verifier());
        let request = Request::get(app.path).body(Body::empty()).unwrap();
        let response = app.router.clone().oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{target:?}"
        );
        let allow = response.headers()[header::ALLOW].to_str().unwrap();
        assert!(allow.contains("POST"), "{target:?}: {allow}");
        assert_eq!(app.state.hits(), 0, "{target:?}");
    }
}

#[tokio::test]
async fn rotation_accepts_the_old_and_the_new_secret() {
    let rotating = Verifier::new(secret("new-secret"))
        .with_secret(secret("old-secret"))
        .with_body_limit(LIMIT);
    for target in TARGETS {
        let app = app(target, rotating.clone());
        for (key, status) in [
            ("new-secret", StatusCode::OK),
            ("old-secret", StatusCode::OK),
            ("retired-secret", StatusCode::UNAUTHORIZED),
        ] {
            let signature = sign(&secret(key), SAMPLE_LEADS_SUBMIT.as_bytes());
            let request = request_signed_as(app.path, &[&signature], SAMPLE_LEADS_SUBMIT);
            let answer = send(&app.router, request).await;
            assert_eq!(answer.status, status, "{target:?}, {key}");
        }
        assert_eq!(app.state.hits(), 2, "{target:?}");
    }
}

async fn event_type(event: ChatbaseEvent) -> String {
    event.event_type().to_owned()
}

#[tokio::test]
async fn the_verifier_can_be_the_state() {
    let router = Router::new()
        .route("/", post(event_type))
        .with_state(verifier());
    let answer = send(&router, signed_request("/", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "leads.submit");

    // It is that verifier that verifies: with another secret, it refuses.
    let other = Router::new()
        .route("/", post(event_type))
        .with_state(Verifier::new(secret("another-secret")));
    send(&other, signed_request("/", SAMPLE_LEADS_SUBMIT))
        .await
        .assert_rejected(StatusCode::UNAUTHORIZED, "another secret");
}

/// A state larger than the verifier: the application's own, with the
/// verifier next to it in an `Extension`.
#[tokio::test]
async fn the_verifier_can_be_an_extension_next_to_a_state_of_your_own() {
    let own = app(Target::VerifierExtension, verifier());
    let answer = send(&own.router, signed_request(own.path, SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.status, StatusCode::OK);
    // The handler used the rest of the state.
    assert_eq!(own.state.emails(), ["jo@acme.io"]);

    // It is that verifier that verifies, with its limit.
    let small = app(Target::VerifierExtension, verifier().with_body_limit(16));
    send(
        &small.router,
        signed_request(small.path, SAMPLE_LEADS_SUBMIT),
    )
    .await
    .assert_rejected(StatusCode::PAYLOAD_TOO_LARGE, "a 16-byte limit");
    assert_eq!(small.state.hits(), 0);
}

/// The extractor looks at the state first, then the extensions.
#[tokio::test]
async fn a_verifier_state_comes_before_a_verifier_extension() {
    let router = Router::new()
        .route("/", post(event_type))
        .layer(Extension(Verifier::new(secret("another-secret"))))
        .with_state(verifier());
    let answer = send(&router, signed_request("/", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test(flavor = "current_thread")]
async fn without_any_verifier_it_is_a_500_and_an_error_saying_what_to_add() {
    let logs = Logs::capture();
    let state = AppState::default();
    let routers = [
        (
            "no state",
            Router::new().route("/webhook", post(event_type)),
        ),
        (
            "a state without a verifier",
            Router::new()
                .route("/webhook", post(describe))
                .with_state(state.clone()),
        ),
    ];
    for (name, router) in routers {
        let _context = Context(name.to_owned());
        for request in [
            signed_request("/webhook", SAMPLE_LEADS_SUBMIT),
            request_signed_as("/webhook", &[], SAMPLE_LEADS_SUBMIT),
        ] {
            let mark = logs.mark();
            let answer = send(&router, request).await;
            let logged = logs.since(mark);
            // The client learns the server is at fault, not how it is set up.
            let message = answer.assert_rejected(StatusCode::INTERNAL_SERVER_ERROR, name);
            assert!(!message.contains("Verifier"), "{message}");
            // The operator learns what to add, once.
            let lines: Vec<&str> = logged.lines().collect();
            assert_eq!(lines.len(), 1, "{logged}");
            assert!(lines[0].contains("ERROR"), "{logged}");
            for fix in [
                "VerifyChatbaseLayer::new(verifier)",
                ".with_state(verifier)",
                ".layer(Extension(verifier))",
            ] {
                assert!(lines[0].contains(fix), "{fix} not in {logged}");
            }
        }
    }
    assert_eq!(state.hits(), 0);
}

/// `Result<ChatbaseEvent, ChatbaseRejection>` hands the rejection to the
/// handler, already logged, to answer as it likes.
#[tokio::test(flavor = "current_thread")]
async fn a_rejection_can_be_handled_by_the_handler() {
    async fn lenient(event: Result<ChatbaseEvent, ChatbaseRejection>) -> Response {
        match event {
            Ok(event) => event.event_type().to_owned().into_response(),
            Err(rejection) => {
                let forged = matches!(rejection.error(), Some(Error::SignatureMismatch));
                let answer = format!(
                    "refused: {} {} forged={forged}",
                    rejection.status().as_u16(),
                    rejection.reason()
                );
                (StatusCode::ACCEPTED, answer).into_response()
            }
        }
    }
    let logs = Logs::capture();
    let router = Router::new()
        .route("/", post(lenient))
        .with_state(verifier());
    let forged = sign(&secret("forger"), SAMPLE_LEADS_SUBMIT.as_bytes());
    for (signatures, expected) in [
        (vec![], "refused: 401 missing_signature forged=false"),
        (
            vec![forged.as_str()],
            "refused: 401 signature_mismatch forged=true",
        ),
        (vec!["abc"], "refused: 401 malformed_signature forged=false"),
    ] {
        let mark = logs.mark();
        let answer = send(
            &router,
            request_signed_as("/", &signatures, SAMPLE_LEADS_SUBMIT),
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        assert_eq!(answer.text(), expected);
        // Already logged, though the handler answered it.
        logs::assert_rejection_logged_once(&logs.since(mark), 401);
    }
    let answer = send(&router, signed_request("/", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.text(), "leads.submit");

    // Answering with the rejection itself is what the plain extractor does.
    async fn strict(event: Result<ChatbaseEvent, ChatbaseRejection>) -> Response {
        event.map_or_else(
            |rejection| rejection.into_response(),
            |_| StatusCode::OK.into_response(),
        )
    }
    let router = Router::new()
        .route("/", post(strict))
        .with_state(verifier());
    send(
        &router,
        request_signed_as("/", &[&forged], SAMPLE_LEADS_SUBMIT),
    )
    .await
    .assert_rejected(StatusCode::UNAUTHORIZED, "strict");
}

/// Two `x-chatbase-signature` headers are refused, whichever is valid:
/// checking either one would let the other through unexamined by whatever
/// sits in front.
#[tokio::test(flavor = "current_thread")]
async fn two_signature_headers_are_401() {
    let logs = Logs::capture();
    let valid = sign(&secret(SECRET), SAMPLE_LEADS_SUBMIT.as_bytes());
    let forged = "0".repeat(40);
    for target in TARGETS {
        let app = app(target, verifier());
        for signatures in [[&valid, &forged], [&forged, &valid], [&valid, &valid]] {
            let _context = Context(format!("{target:?}, {signatures:?}"));
            let signatures = signatures.map(String::as_str);
            let mark = logs.mark();
            let request = request_signed_as(app.path, &signatures, SAMPLE_LEADS_SUBMIT);
            let answer = send(&app.router, request).await;
            answer.assert_rejected(StatusCode::UNAUTHORIZED, "two signatures");
            let logged = logs.since(mark);
            logs::assert_rejection_logged_once(&logged, 401);
            assert!(logged.contains("multiple_signatures"), "{logged}");
        }
        assert_eq!(app.state.hits(), 0, "{target:?}");
    }
}
