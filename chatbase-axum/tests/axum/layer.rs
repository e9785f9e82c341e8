//! `VerifyChatbaseLayer`: what it hands on to the routes it wraps, with any
//! state, and what it guards.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::post;
use chatbase_axum::{
    ChatbaseEvent, SIGNATURE_HEADER, Verifier, VerifyChatbase, VerifyChatbaseLayer,
};
use chatbase_core::sign;
use chatbase_core::testing::{self, SAMPLE_LEADS_SUBMIT};
use serde_json::{Value, json};

use crate::support::{
    AppState, SECRET, Target, app, describe, request_signed_as, secret, send, signed_request,
    streamed, verifier,
};

#[tokio::test]
async fn the_verified_body_is_handed_on_intact() {
    let body = testing::event_body(
        "x.y",
        "bot",
        &json!({"k": [1, "two", null], "é": "\u{1F600}"}),
    );
    let cases = [
        ("/chatbase/bytes", true),
        ("/chatbase/string", true),
        ("/chatbase/json", true),
        // axum's `Json` requires a JSON content type: the layer adds it.
        ("/chatbase/json", false),
        ("/chatbase/bytes", false),
    ];
    for (path, content_type) in cases {
        let context = format!("{path}, content type sent: {content_type}");
        let app = app(Target::Layer, verifier());
        // Streamed, so that the layer really reads it off a stream and puts it back.
        let mut request = signed_request(path, body.clone()).map(|_| streamed(&body));
        if !content_type {
            request.headers_mut().remove(header::CONTENT_TYPE);
        }
        let answer = send(&app.router, request).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{context}: {:?}",
            answer.body
        );
        if path.ends_with("json") {
            let sent: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(answer.json(), sent, "{context}");
        } else {
            assert_eq!(answer.body, body, "{context}");
        }
        assert_eq!(app.state.hits(), 1, "{context}");
    }
}

#[tokio::test]
async fn a_content_type_is_added_only_when_there_is_none() {
    async fn content_type(headers: HeaderMap) -> String {
        headers
            .get(header::CONTENT_TYPE)
            .map_or("none", |value| value.to_str().unwrap())
            .to_owned()
    }
    let router: Router = Router::new()
        .route("/", post(content_type))
        .layer(VerifyChatbaseLayer::new(verifier()));
    for (sent, seen) in [
        (None, "application/json"),
        (
            Some("text/plain; charset=utf-8"),
            "text/plain; charset=utf-8",
        ),
        (Some("application/json"), "application/json"),
    ] {
        let mut request = signed_request("/", SAMPLE_LEADS_SUBMIT);
        request.headers_mut().remove(header::CONTENT_TYPE);
        if let Some(sent) = sent {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, sent.parse().unwrap());
        }
        let answer = send(&router, request).await;
        assert_eq!(answer.text(), seen, "{sent:?}");
    }
}

#[tokio::test]
async fn the_layer_rejects_before_the_body_handlers() {
    for path in ["/chatbase/bytes", "/chatbase/string", "/chatbase/json"] {
        let app = app(Target::Layer, verifier());
        let forged = sign(&secret("forger"), b"{}");
        send(&app.router, request_signed_as(path, &[&forged], "{}"))
            .await
            .assert_rejected(StatusCode::UNAUTHORIZED, path);
        let oversized = " ".repeat(crate::support::LIMIT + 1);
        send(&app.router, signed_request(path, oversized))
            .await
            .assert_rejected(StatusCode::PAYLOAD_TOO_LARGE, path);
        assert_eq!(app.state.hits(), 0, "{path}");
    }
}

/// Behind the layer, a verifier the extractor could use (the state, an
/// extension) would refuse everything: another secret and a one-byte limit.
/// The event comes from the layer, not from a second verification.
#[tokio::test]
async fn behind_the_layer_the_extractor_does_not_verify_again() {
    let refusing = Verifier::new(secret("not-the-layer-secret")).with_body_limit(1);
    let state = AppState::default();
    let recorder = state.clone();
    let as_state = Router::new()
        .route(
            "/",
            post(move |event: ChatbaseEvent| async move { recorder.record(&event) }),
        )
        .with_state(refusing.clone());
    let as_extension = Router::new()
        .route("/", post(describe))
        .layer(Extension(refusing))
        .with_state(state.clone());
    for (name, routes) in [("state", as_state), ("extension", as_extension)] {
        let guarded = routes.clone().layer(VerifyChatbaseLayer::new(verifier()));
        let answer = send(&guarded, signed_request("/", SAMPLE_LEADS_SUBMIT)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {:?}", answer.body);
        assert_eq!(answer.json()["eventType"], "leads.submit", "{name}");

        // Without the layer, that verifier does refuse the same request.
        send(&routes, signed_request("/", SAMPLE_LEADS_SUBMIT))
            .await
            .assert_rejected(StatusCode::PAYLOAD_TOO_LARGE, name);
    }
    assert_eq!(state.hits(), 2);
}

/// A handler behind the layer takes the event whatever the router's state:
/// none, the application's own with no verifier in it, any other type.
#[tokio::test]
async fn behind_the_layer_the_state_can_be_anything() {
    async fn named(State(name): State<String>, event: ChatbaseEvent) -> String {
        format!("{name}: {}", event.event_type())
    }
    async fn own(State(state): State<AppState>, event: ChatbaseEvent) -> String {
        let _ = state.record(&event);
        format!("recorded {}", event.event_type())
    }
    let state = AppState::default();
    let routers: [(&str, Router, &str); 3] = [
        (
            "no state",
            Router::new()
                .route(
                    "/",
                    post(|event: ChatbaseEvent| async move { event.event_type().to_owned() }),
                )
                .layer(VerifyChatbaseLayer::new(verifier())),
            "leads.submit",
        ),
        (
            "a state of your own, the layer before `with_state`",
            Router::new()
                .route("/", post(own))
                // `VerifyChatbase::layer` alone does not infer its service type.
                .layer(VerifyChatbase::layer(verifier()))
                .with_state(state.clone()),
            "recorded leads.submit",
        ),
        (
            "a String",
            Router::new()
                .route("/", post(named))
                .with_state("shop".to_owned())
                .layer(VerifyChatbaseLayer::new(verifier())),
            "shop: leads.submit",
        ),
    ];
    for (name, router, expected) in routers {
        let answer = send(&router, signed_request("/", SAMPLE_LEADS_SUBMIT)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {:?}", answer.body);
        assert_eq!(answer.text(), expected, "{name}");
        let forged = "0".repeat(40);
        send(
            &router,
            request_signed_as("/", &[&forged], SAMPLE_LEADS_SUBMIT),
        )
        .await
        .assert_rejected(StatusCode::UNAUTHORIZED, name);
    }
    assert_eq!(state.emails(), ["jo@acme.io"]);
}

#[tokio::test]
async fn behind_the_layer_the_event_is_an_extension() {
    async fn handler(
        Extension(event): Extension<chatbase_core::ChatbaseEvent>,
        body: Bytes,
    ) -> String {
        assert_eq!(event.raw_body(), &body);
        format!(
            "{} from {}",
            event.event_type(),
            event.chatbot_id().unwrap_or("?")
        )
    }
    // Both ways at once: the extension is there for the extractor too.
    async fn both(
        Extension(extension): Extension<chatbase_core::ChatbaseEvent>,
        event: ChatbaseEvent,
    ) -> String {
        (extension == event.0).to_string()
    }
    let router: Router = Router::new()
        .route("/hook", post(handler))
        .route("/both", post(both))
        .layer(VerifyChatbaseLayer::new(verifier()));
    let answer = send(&router, signed_request("/hook", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.text(), "leads.submit from xxxxxxxx");
    let answer = send(&router, signed_request("/both", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.text(), "true");
}

#[tokio::test]
async fn the_layer_guards_every_method_and_path_it_wraps() {
    let app = app(Target::Layer, verifier());
    for (method, path) in [
        ("GET", "/chatbase/webhook"),
        ("PUT", "/chatbase/bytes"),
        ("DELETE", "/chatbase/json"),
        ("POST", "/chatbase/nowhere"),
        ("POST", "/elsewhere"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        send(&app.router, request)
            .await
            .assert_rejected(StatusCode::UNAUTHORIZED, &format!("{method} {path}"));
    }
    // Signed, they reach the router, which answers as it would without the layer.
    let signed_get = Request::get("/chatbase/webhook")
        .header(SIGNATURE_HEADER, sign(&secret(SECRET), b""))
        .body(Body::empty())
        .unwrap();
    // An empty body is signed but is not an event.
    send(&app.router, signed_get)
        .await
        .assert_rejected(StatusCode::BAD_REQUEST, "signed GET");
    let signed_elsewhere = signed_request("/chatbase/nowhere", SAMPLE_LEADS_SUBMIT);
    let answer = send(&app.router, signed_elsewhere).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(app.state.hits(), 0);
}

/// As the docs say: with `route_layer`, unknown paths keep their 404.
#[tokio::test]
async fn with_route_layer_unknown_paths_keep_their_404() {
    let state = AppState::default();
    let router: Router = Router::new()
        .route("/webhook", post(describe))
        .route_layer(VerifyChatbaseLayer::new(verifier()))
        .with_state(state.clone());
    let unsigned = |path: &str| request_signed_as(path, &[], SAMPLE_LEADS_SUBMIT);
    let answer = send(&router, unsigned("/nowhere")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    send(&router, unsigned("/webhook"))
        .await
        .assert_rejected(StatusCode::UNAUTHORIZED, "route_layer");
    let answer = send(&router, signed_request("/webhook", SAMPLE_LEADS_SUBMIT)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(state.hits(), 1);
}
