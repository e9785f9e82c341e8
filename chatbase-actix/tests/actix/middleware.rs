//! What reaches the services behind `VerifyChatbase`: the body, given back byte
//! for byte to `web::Bytes`, `String` and `web::Json`; actix-web's body limits,
//! raised to the verifier's unless the app set its own; the verified event in
//! the request extensions, for the extractor and for `web::ReqData`.

use actix_web::test::{self, TestRequest};
use actix_web::web::{self, JsonConfig, PayloadConfig};
use actix_web::{App, HttpResponse};
use chatbase_actix::{ChatbaseEvent, Verifier, VerifyChatbase};
use chatbase_core::testing::{self, logs, logs::Logs};
use serde_json::Value;

use crate::support::{
    Hits, MIDDLEWARE_PATH, REQ_DATA_PATH, echo_bytes, echo_json, event_of_size, middleware_app,
    on_event, on_req_data, other_secret, post_signed, sample, secret, send, signed_request,
    verifier,
};

#[actix_web::test]
async fn the_body_is_given_back_to_bytes_string_and_json() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    // 167 bytes, and 900 KiB: over actix-web's 256 KiB `PayloadConfig` default,
    // under the verifier's 1 MiB.
    for body in [sample(), event_of_size(900 * 1024)] {
        for path in ["/chatbase/bytes", "/chatbase/string", "/chatbase/both"] {
            let (status, echoed) = post_signed(&app, path, &body, false).await;
            assert_eq!(status, 200, "{path}, {} bytes", body.len());
            assert!(echoed == body, "{path}: the body changed");
        }
        let (status, echoed) = post_signed(&app, "/chatbase/json", &body, true).await;
        assert_eq!(status, 200, "json, {} bytes", body.len());
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&echoed).unwrap(), sent);
        for path in [MIDDLEWARE_PATH, REQ_DATA_PATH] {
            let (status, answer) = post_signed(&app, path, &body, false).await;
            assert_eq!(status, 200, "{path}");
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(answer["rawLen"], body.len(), "{path}");
        }
    }
    assert_eq!(hits.get(), 2 * 6);
}

#[actix_web::test]
async fn a_larger_verifier_limit_also_raises_the_json_limit() {
    // 2.5 MiB: over actix-web's 2 MiB `JsonConfig` default.
    let size = 5 * 1024 * 1024 / 2;
    let hits = web::Data::new(Hits::default());
    let verifier = verifier().with_body_limit(3 * 1024 * 1024);
    let app = test::init_service(middleware_app(verifier, None, hits.clone())).await;
    let body = event_of_size(size);
    for path in ["/chatbase/json", "/chatbase/bytes"] {
        let (status, echoed) = post_signed(&app, path, &body, true).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(echoed.len(), size);
    }
    // And just over the verifier's own limit, the middleware refuses it.
    let over = event_of_size(3 * 1024 * 1024 + 1);
    let (status, _) = post_signed(&app, "/chatbase/json", &over, true).await;
    assert_eq!(status, 413);
    assert_eq!(hits.get(), 2);
}

#[actix_web::test]
async fn a_body_config_of_your_own_on_the_app_is_left_as_it_is() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new()
            .app_data(hits.clone())
            .app_data(PayloadConfig::new(100))
            .service(
                web::scope("/chatbase")
                    .wrap(VerifyChatbase::new(verifier()))
                    .route("/bytes", web::post().to(echo_bytes))
                    .route("/json", web::post().to(echo_json)),
            ),
    )
    .await;
    // Verified, then refused by the 100-byte limit the app set for `web::Bytes`...
    let (status, _) = post_signed(&app, "/chatbase/bytes", &sample(), false).await;
    assert_eq!(status, 413);
    // ...while `web::Json`, which the app did not configure, gets the verifier's:
    // 900 KiB, under it and over nothing the app set.
    let body = event_of_size(900 * 1024);
    let (status, _) = post_signed(&app, "/chatbase/json", &body, true).await;
    assert_eq!(status, 200);
    assert_eq!(hits.get(), 1);
}

/// A configuration registered further in (on the wrapped scope itself or a
/// resource inside it) is added after the middleware's, and wins.
#[actix_web::test]
async fn a_body_config_of_your_own_inside_the_scope_wins() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new().app_data(hits.clone()).service(
            web::scope("/chatbase")
                .wrap(VerifyChatbase::new(verifier()))
                .app_data(PayloadConfig::new(100))
                .route("/bytes", web::post().to(echo_bytes))
                .service(
                    web::resource("/json")
                        .app_data(JsonConfig::default().limit(100))
                        .route(web::post().to(echo_json)),
                ),
        ),
    )
    .await;
    for path in ["/chatbase/bytes", "/chatbase/json"] {
        let (status, _) = post_signed(&app, path, &sample(), true).await;
        assert_eq!(status, 413, "{path}");
    }
    assert_eq!(hits.get(), 0);
}

#[actix_web::test]
async fn behind_the_middleware_the_event_is_not_verified_again() {
    let hits = web::Data::new(Hits::default());
    // The app-data verifier knows another secret only: verifying again would fail.
    let other = Verifier::new(other_secret());
    let app = test::init_service(middleware_app(verifier(), Some(other), hits.clone())).await;
    let (status, answer) = post_signed(&app, MIDDLEWARE_PATH, &sample(), false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    // And the middleware's verifier is the one that decides.
    let request = signed_request(&other_secret(), MIDDLEWARE_PATH, &sample(), false);
    assert_eq!(send(&app, request).await.0, 401);
    assert_eq!(hits.get(), 1);
}

/// The hand-over contract: the verified `chatbase_core::ChatbaseEvent` sits in
/// the request extensions, so actix-web's own `ReqData` takes it.
#[actix_web::test]
async fn req_data_takes_the_verified_event() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    let (status, answer) = post_signed(&app, REQ_DATA_PATH, &sample(), false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let [seen] = hits.take_seen().try_into().unwrap();
    assert_eq!(seen.raw_body.unwrap(), sample());
    assert_eq!(seen.chatbot_id.as_deref(), Some("xxxxxxxx"));
    // In one handler, the extractor, `ReqData` and `web::Bytes` agree.
    let (status, echoed) = post_signed(&app, "/chatbase/both", &sample(), false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&echoed));
    assert_eq!(echoed, sample());

    // Without the middleware there is nothing to take: actix-web answers 500,
    // and the handler never runs.
    let bare = test::init_service(
        App::new()
            .app_data(hits.clone())
            .route(REQ_DATA_PATH, web::post().to(on_req_data)),
    )
    .await;
    assert_eq!(
        post_signed(&bare, REQ_DATA_PATH, &sample(), false).await.0,
        500
    );
    assert_eq!(hits.get(), 2);
}

/// Extracting the event twice in one handler (as two arguments) works behind
/// the middleware: the extractor clones it from the extensions.
#[actix_web::test]
async fn the_event_can_be_extracted_twice() {
    async fn twice(first: ChatbaseEvent, second: ChatbaseEvent) -> HttpResponse {
        if first == second {
            HttpResponse::Ok().finish()
        } else {
            HttpResponse::InternalServerError().finish()
        }
    }
    let app = test::init_service(
        App::new().service(
            web::scope("/chatbase")
                .wrap(VerifyChatbase::new(verifier()))
                .route("/twice", web::post().to(twice)),
        ),
    )
    .await;
    assert_eq!(
        post_signed(&app, "/chatbase/twice", &sample(), false)
            .await
            .0,
        200
    );
}

#[actix_web::test]
async fn the_middleware_guards_every_method() {
    let logs = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(
        App::new().app_data(hits.clone()).service(
            web::scope("/chatbase")
                .wrap(VerifyChatbase::new(verifier()))
                .route("/event", web::post().to(on_event))
                .default_service(web::to(echo_bytes)),
        ),
    )
    .await;
    let mark = logs.mark();
    for request in [
        TestRequest::get(),
        TestRequest::put(),
        TestRequest::delete(),
        TestRequest::default(),
    ] {
        let response =
            test::call_service(&app, request.uri("/chatbase/anything").to_request()).await;
        assert_eq!(response.status(), 401);
    }
    assert_eq!(hits.get(), 0);
    assert_eq!(logs::rejection_lines(&logs.since(mark)).len(), 4);

    // A signed request of any method gets through.
    let signed = testing::sign_body(&secret(), sample());
    let request = TestRequest::put()
        .uri("/chatbase/anything")
        .insert_header(signed.header())
        .set_payload(signed.body().clone())
        .to_request();
    let (status, echoed) = send(&app, request).await;
    assert_eq!(status, 200);
    assert_eq!(&echoed, signed.body());
    assert_eq!(hits.get(), 1);
}
