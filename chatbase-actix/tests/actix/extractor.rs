//! The `ChatbaseEvent` extractor: the typed event it hands over, the 405 of
//! `method_not_allowed`, rotation, where it finds its verifier, and repeated
//! signature headers.

use actix_web::http::header::{ALLOW, CONTENT_TYPE};
use actix_web::test::{self, TestRequest};
use actix_web::{App, web};
use bytes::Bytes;
use chatbase_actix::{Error, SIGNATURE_HEADER, Secret, Verifier};
use chatbase_core::testing::{self, logs, logs::Logs};
use serde_json::{Value, json};

use crate::support::{
    EXTRACTOR_PATH, Hits, MIDDLEWARE_PATH, REQ_DATA_PATH, extractor_app, middleware_app, on_event,
    post_signed, rejection_message, sample, secret, send, signed_request, verifier,
};

/// What the matrix does not look at: the typed event the handler matches on,
/// the same through the extractor, behind the middleware and through `ReqData`.
#[actix_web::test]
async fn the_handler_gets_the_typed_event() {
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    let cases = [
        (
            testing::SAMPLE_LEADS_SUBMIT,
            json!("xxxxxxxx"),
            serde_json::to_value(testing::sample_lead()).unwrap(),
            Value::Null,
        ),
        (
            r#"{"eventType":"leads.submit","chatbotId":"b","payload":{"conversationId":"c","customerEmail":null,"customerPhone":null}}"#,
            json!("b"),
            json!({ "conversationId": "c" }),
            Value::Null,
        ),
        // Neither `payload` nor `chatbotId` is required: an empty lead.
        (
            r#"{"eventType":"leads.submit"}"#,
            Value::Null,
            json!({}),
            Value::Null,
        ),
        // An event type this crate does not know is no lead: its payload is
        // handed over as the exact JSON text sent.
        (
            r#"{"eventType":"conversations.end","chatbotId":"bot","payload":{ "conversationId" : "c" }}"#,
            json!("bot"),
            Value::Null,
            json!(r#"{ "conversationId" : "c" }"#),
        ),
    ];
    for (body, chatbot_id, lead, payload_json) in cases {
        let body = Bytes::from_static(body.as_bytes());
        for (status, answer) in [
            post_signed(&extractor, EXTRACTOR_PATH, &body, true).await,
            post_signed(&middleware, MIDDLEWARE_PATH, &body, true).await,
            post_signed(&middleware, REQ_DATA_PATH, &body, true).await,
        ] {
            let context = String::from_utf8_lossy(&body);
            assert_eq!(status, 200, "{context}");
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(answer["chatbotId"], chatbot_id, "{context}");
            assert_eq!(answer["lead"], lead, "{context}");
            assert_eq!(answer["payloadJson"], payload_json, "{context}");
            assert_eq!(answer["rawLen"], body.len(), "{context}");
        }
    }
    assert_eq!(hits.get(), 3 * 4);
}

#[actix_web::test]
async fn other_methods_get_405_with_allow_post() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let signed = testing::sign_body(&secret(), testing::SAMPLE_LEADS_SUBMIT);
    for request in [
        TestRequest::get(),
        TestRequest::put(),
        TestRequest::delete(),
        TestRequest::patch(),
        // Even correctly signed, a GET is no webhook.
        TestRequest::get()
            .insert_header(signed.header())
            .set_payload(signed.body().clone()),
    ] {
        let response = test::call_service(&app, request.uri(EXTRACTOR_PATH).to_request()).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers().get(ALLOW).unwrap(), "POST");
        assert_eq!(
            response.headers().get(CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let message = rejection_message(&test::read_body(response).await);
        assert!(message.contains("POST"), "{message}");
    }
    assert_eq!(hits.get(), 0);
}

#[actix_web::test]
async fn rotation_accepts_the_previous_secret_in_both_set_ups() {
    let previous = Secret::new("previous-secret").unwrap();
    let rotating = Verifier::new(secret()).with_secret(previous.clone());
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(rotating.clone()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(rotating, None, hits.clone())).await;
    let retired = Secret::new("retired-secret").unwrap();
    for (key, status) in [(secret(), 200), (previous, 200), (retired, 401)] {
        for (status_got, _) in [
            send(
                &extractor,
                signed_request(&key, EXTRACTOR_PATH, &sample(), true),
            )
            .await,
            send(
                &middleware,
                signed_request(&key, MIDDLEWARE_PATH, &sample(), true),
            )
            .await,
        ] {
            assert_eq!(status_got, status);
        }
    }
    assert_eq!(hits.get(), 4);
}

#[actix_web::test]
async fn a_plain_verifier_in_app_data_is_found() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new()
            .app_data(hits.clone())
            .app_data(verifier())
            .route(EXTRACTOR_PATH, web::post().to(on_event)),
    )
    .await;
    assert_eq!(
        post_signed(&app, EXTRACTOR_PATH, &sample(), false).await.0,
        200
    );
    assert_eq!(hits.get(), 1);
}

/// A verifier registered on the resource serves it; one on another resource
/// does not.
#[actix_web::test]
async fn a_verifier_on_the_resource_is_found() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new()
            .app_data(hits.clone())
            .service(
                web::resource("/with")
                    .app_data(web::Data::new(verifier()))
                    .route(web::post().to(on_event)),
            )
            .route("/without", web::post().to(on_event)),
    )
    .await;
    assert_eq!(post_signed(&app, "/with", &sample(), false).await.0, 200);
    assert_eq!(post_signed(&app, "/without", &sample(), false).await.0, 500);
    assert_eq!(hits.get(), 1);
}

#[actix_web::test]
async fn without_a_verifier_it_is_a_logged_500_not_a_panic() {
    let logs = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(extractor_app(None, hits.clone())).await;
    let response = test::call_service(
        &app,
        signed_request(&secret(), EXTRACTOR_PATH, &sample(), true),
    )
    .await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers().get(CONTENT_TYPE).unwrap(),
        "application/json"
    );
    // The client learns that the server is at fault, not how it is set up.
    let message = rejection_message(&test::read_body(response).await);
    assert!(!message.contains("app_data"), "{message}");
    assert_eq!(hits.get(), 0);

    let logged = logs.all();
    let errors: Vec<_> = logged
        .lines()
        .filter(|line| line.contains("ERROR"))
        .collect();
    let [line] = errors.as_slice() else {
        panic!("expected one ERROR line: {logged:?}")
    };
    assert!(
        line.contains(".app_data(web::Data::new(verifier))"),
        "{line}"
    );
    assert!(line.contains("VerifyChatbase::new(verifier)"), "{line}");
    // A misconfiguration, not a refused request: logged at ERROR under the
    // rejection target, and no WARN line.
    assert_eq!(logs::rejection_lines(&logged), errors);
    assert!(!logged.contains("WARN"), "{logged}");
}

/// Chatbase sends one signature; two (equal or not, in either order) are
/// refused before anything is verified, in both set-ups.
#[actix_web::test]
async fn two_signature_headers_are_refused() {
    let logs = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    let good = testing::sign_body(&secret(), sample());
    let forged = "0".repeat(40);
    let pairs = [
        (good.signature(), good.signature()),
        (good.signature(), forged.as_str()),
        (forged.as_str(), good.signature()),
    ];
    for (first, second) in pairs {
        for path in [EXTRACTOR_PATH, MIDDLEWARE_PATH] {
            let request = TestRequest::post()
                .uri(path)
                .append_header((SIGNATURE_HEADER, first))
                .append_header((SIGNATURE_HEADER, second))
                .set_payload(sample())
                .to_request();
            let mark = logs.mark();
            let (status, body) = if path == EXTRACTOR_PATH {
                send(&extractor, request).await
            } else {
                send(&middleware, request).await
            };
            assert_eq!(status, 401, "{path}");
            assert_eq!(
                rejection_message(&body),
                Error::MultipleSignatures.client_message()
            );
            let logged = logs.since(mark);
            logs::assert_rejection_logged_once(&logged, 401);
            assert!(logged.contains("multiple_signatures"), "{logged}");
            logs::assert_logged_none_of(&logged, &[good.signature()]);
        }
    }
    assert_eq!(hits.get(), 0);
}
