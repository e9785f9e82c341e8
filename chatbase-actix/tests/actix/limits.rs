//! The verifier's body limit, in both set-ups: the limit it is given, and a body
//! without `Content-Length` that never ends, refused as soon as it passes it.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, Service, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use bytes::Bytes;
use chatbase_actix::{DEFAULT_BODY_LIMIT, SIGNATURE_HEADER};
use chatbase_core::testing;
use futures_util::{Stream, stream};

use crate::support::{
    EXTRACTOR_PATH, Hits, MIDDLEWARE_PATH, extractor_app, middleware_app, post_signed,
    rejection_message, sample, send, streamed, verifier,
};

#[actix_web::test]
async fn a_smaller_verifier_limit_applies_to_both_set_ups() {
    let hits = web::Data::new(Hits::default());
    let small = verifier().with_body_limit(testing::SAMPLE_LEADS_SUBMIT.len());
    let extractor = test::init_service(extractor_app(Some(small.clone()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(small, None, hits.clone())).await;
    let over = Bytes::from(format!("{} ", testing::SAMPLE_LEADS_SUBMIT));
    for (body, status) in [(sample(), 200), (over, 413)] {
        let (got, _) = post_signed(&extractor, EXTRACTOR_PATH, &body, false).await;
        assert_eq!(got, status, "extractor, {} bytes", body.len());
        let (got, _) = post_signed(&middleware, MIDDLEWARE_PATH, &body, false).await;
        assert_eq!(got, status, "middleware, {} bytes", body.len());
    }
    assert_eq!(hits.get(), 2);
}

/// A body that never ends, in chunks of `size` spaces, counting the bytes pulled.
fn endless(
    size: usize,
    pulled: Rc<Cell<usize>>,
) -> impl Stream<Item = Result<Bytes, PayloadError>> {
    stream::repeat_with(move || {
        pulled.set(pulled.get() + size);
        Ok(Bytes::from(vec![b' '; size]))
    })
}

/// A signed-looking request whose body never ends.
fn endless_request(path: &str, chunk: usize, pulled: &Rc<Cell<usize>>) -> Request {
    let request = TestRequest::post()
        .uri(path)
        .insert_header((SIGNATURE_HEADER, "0".repeat(40)));
    streamed(request, endless(chunk, Rc::clone(pulled)))
}

/// Refused with a 413 as soon as the limit is passed, though it never ends:
/// at most one chunk past the limit is pulled.
async fn check_endless<S, B>(app: &S, path: &str, hits: &Hits)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let pulled = Rc::new(Cell::new(0));
    let chunk = 8 * 1024;
    let response = test::call_service(app, endless_request(path, chunk, &pulled)).await;
    assert_eq!(response.status(), 413, "{path}");
    assert_eq!(
        response.headers().get(CONTENT_TYPE).unwrap(),
        "application/json"
    );
    let message = rejection_message(&test::read_body(response).await);
    assert_eq!(
        message,
        chatbase_actix::Error::BodyTooLarge { limit: 0 }.client_message()
    );
    assert!(
        pulled.get() > DEFAULT_BODY_LIMIT && pulled.get() <= DEFAULT_BODY_LIMIT + chunk,
        "{path}: pulled {} bytes",
        pulled.get()
    );
    assert_eq!(hits.get(), 0, "{path}: handler reached");
}

#[actix_web::test]
async fn an_endless_body_without_content_length_is_refused_past_the_limit() {
    let hits = web::Data::new(Hits::default());
    let app = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    check_endless(&app, EXTRACTOR_PATH, &hits).await;
    let app = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    check_endless(&app, MIDDLEWARE_PATH, &hits).await;
}

/// An unsigned endless body is refused from its head: not a byte is pulled.
#[actix_web::test]
async fn an_unsigned_endless_body_is_not_read_at_all() {
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    for path in [EXTRACTOR_PATH, MIDDLEWARE_PATH] {
        let pulled = Rc::new(Cell::new(0));
        let request = streamed(
            TestRequest::post().uri(path),
            endless(8 * 1024, Rc::clone(&pulled)),
        );
        let (status, _) = if path == EXTRACTOR_PATH {
            send(&extractor, request).await
        } else {
            send(&middleware, request).await
        };
        assert_eq!(status, 401, "{path}");
        assert_eq!(pulled.get(), 0, "{path}: the body was read");
    }
    assert_eq!(hits.get(), 0);
}

/// A body announcing a `Content-Length` over the limit is refused from the
/// head, after the signature header is found well-formed: not a byte is pulled.
#[actix_web::test]
async fn an_announced_length_over_the_limit_is_refused_before_reading() {
    let hits = web::Data::new(Hits::default());
    let extractor = test::init_service(extractor_app(Some(verifier()), hits.clone())).await;
    let middleware = test::init_service(middleware_app(verifier(), None, hits.clone())).await;
    for path in [EXTRACTOR_PATH, MIDDLEWARE_PATH] {
        let pulled = Rc::new(Cell::new(0));
        let request = TestRequest::post()
            .uri(path)
            .insert_header((SIGNATURE_HEADER, "0".repeat(40)))
            .insert_header((CONTENT_LENGTH, (DEFAULT_BODY_LIMIT + 1).to_string()))
            .to_request();
        let body: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(endless(8 * 1024, Rc::clone(&pulled)));
        let request = request.replace_payload(Payload::from(body)).0;
        let (status, body) = if path == EXTRACTOR_PATH {
            send(&extractor, request).await
        } else {
            send(&middleware, request).await
        };
        assert_eq!(status, 413, "{path}");
        assert_eq!(
            rejection_message(&body),
            chatbase_actix::Error::BodyTooLarge { limit: 0 }.client_message()
        );
        assert_eq!(pulled.get(), 0, "{path}: the body was read");
    }
    assert_eq!(hits.get(), 0);
}
