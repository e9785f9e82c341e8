//! What the adapters log: each rejection once, at `WARN`, under the stable
//! target `chatbase::rejection`, with the operator's hint (the client gets only
//! the short message); never the secret, a signature or customer data.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{TestRequest, init_service};
use actix_web::web;
use bytes::Bytes;
use chatbase_actix::{Error, SIGNATURE_HEADER};
use chatbase_core::REJECTION_LOG_TARGET;
use chatbase_core::testing::{self, logs, logs::Logs};

use crate::support::{
    CUSTOMER_DATA, EXTRACTOR_PATH, Hits, MIDDLEWARE_PATH, SECRET, extractor_app, middleware_app,
    other_secret, rejection_message, sample, secret, send, signed_request, verifier,
};

/// Sends `request` (built for `path`) to whichever app serves `path`, and
/// returns the answer and what it logged.
async fn logged<S1, B1, S2, B2>(
    logs: &Logs,
    extractor: &S1,
    middleware: &S2,
    path: &str,
    request: Request,
) -> (u16, Bytes, String)
where
    S1: Service<Request, Response = ServiceResponse<B1>, Error = actix_web::Error>,
    B1: MessageBody,
    S2: Service<Request, Response = ServiceResponse<B2>, Error = actix_web::Error>,
    B2: MessageBody,
{
    let mark = logs.mark();
    let (status, body) = if path == EXTRACTOR_PATH {
        send(extractor, request).await
    } else {
        send(middleware, request).await
    };
    (status, body, logs.since(mark))
}

#[test]
fn the_target_is_the_documented_one() {
    assert_eq!(REJECTION_LOG_TARGET, "chatbase::rejection");
}

/// One `WARN chatbase::rejection` line per refused request, with its status,
/// its reason code and the hint of the core's `Display`; the answer carries
/// only the short client message, without the hint.
#[actix_web::test]
async fn rejections_are_logged_under_the_rejection_target_with_the_hint() {
    let logs = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let small = verifier().with_body_limit(1000);
    let extractor = init_service(extractor_app(Some(small.clone()), hits.clone())).await;
    let middleware = init_service(middleware_app(small, None, hits.clone())).await;
    let requests = |path: &'static str| {
        let post = || TestRequest::post().uri(path);
        [
            (
                post().set_payload(sample()).to_request(),
                Error::MissingSignature,
                "no proxy strips the header",
            ),
            (
                signed_request(&other_secret(), path, &sample(), true),
                Error::SignatureMismatch,
                "check that the secret is the one in the chatbot's webhook settings",
            ),
            (
                post()
                    .insert_header((SIGNATURE_HEADER, "ab".repeat(32)))
                    .set_payload(sample())
                    .to_request(),
                Error::MalformedSignature(malformed_sha256()),
                "looks like SHA-256",
            ),
            (
                signed_request(&secret(), path, &Bytes::from(vec![b' '; 1001]), true),
                Error::BodyTooLarge { limit: 1000 },
                "raise the limit with `Verifier::with_body_limit`",
            ),
            (
                signed_request(&secret(), path, &Bytes::from_static(b"[1]"), true),
                testing::event("[1]").unwrap_err(),
                "it is JSON but not an object",
            ),
        ]
    };
    for path in [EXTRACTOR_PATH, MIDDLEWARE_PATH] {
        for (request, error, hint) in requests(path) {
            let (status, body, logged) =
                logged(&logs, &extractor, &middleware, path, request).await;
            let context = format!("{path}, {}", error.reason());
            assert_eq!(status, error.status(), "{context}");
            logs::assert_rejection_logged_once(&logged, status);
            let line = logs::rejection_lines(&logged)[0];
            // `WARN`, then the request's span, then the target.
            assert!(line.contains(" WARN "), "{context}: {line}");
            assert!(
                line.contains(&format!(": {REJECTION_LOG_TARGET}: ")),
                "{context}: {line}"
            );
            assert!(line.contains(error.reason()), "{context}: {line}");
            assert!(line.contains(hint), "{context}: {line}");
            // The client is told briefly, without the operator's hint.
            let message = rejection_message(&body);
            assert_eq!(message, error.client_message(), "{context}");
            assert!(!message.contains(hint), "{context}: {message}");
        }
    }
    assert_eq!(hits.get(), 0);
}

/// The `MalformedSignature` a 64-hex-digit header gives, from the core itself.
fn malformed_sha256() -> chatbase_core::MalformedSignature {
    let header = "ab".repeat(32);
    match verifier().verify(b"{}", Some(header.as_bytes())) {
        Err(Error::MalformedSignature(malformed)) => malformed,
        other => panic!("expected a malformed signature: {other:?}"),
    }
}

/// Signed bodies that are no event and carry customer data, which
/// `serde_json`'s messages would quote: refused with a 400, and neither the
/// logs nor the answers show it. A delivered lead logs none of it either.
#[actix_web::test]
async fn customer_data_is_never_logged() {
    let logs = Logs::capture();
    let hits = web::Data::new(Hits::default());
    let extractor = init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let middleware = init_service(middleware_app(verifier(), None, hits.clone())).await;
    let bodies: [&[u8]; 3] = [
        br#"{"eventType":1,"payload":{"customerEmail":"jo@acme.io"}}"#,
        br#"{"eventType":"leads.submit","payload":{"customerEmail":"jo@acme.io","customerPhone":5551234}}"#,
        br#"{"eventType":"leads.submit","payload":{"customerName":"Ada","customerName":"ada@example.com"}}"#,
    ];
    let private = [&CUSTOMER_DATA[..], &["acme", "5551234", "Ada"]].concat();
    for path in [EXTRACTOR_PATH, MIDDLEWARE_PATH] {
        for body in bodies {
            let body = Bytes::from_static(body);
            let request = signed_request(&secret(), path, &body, true);
            let (status, answer, logged) =
                logged(&logs, &extractor, &middleware, path, request).await;
            assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
            logs::assert_rejection_logged_once(&logged, 400);
            logs::assert_logged_none_of(&logged, &private);
            logs::assert_logged_none_of(&String::from_utf8_lossy(&answer), &private);
        }
        let request = signed_request(&secret(), path, &sample(), true);
        let (status, _, logged) = logged(&logs, &extractor, &middleware, path, request).await;
        assert_eq!(status, 200, "{path}");
        logs::assert_logged_none_of(&logged, &["jo@acme.io", SECRET]);
    }
    assert_eq!(hits.get(), 2);
}
