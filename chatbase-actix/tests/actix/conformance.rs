//! chatbase-core's request matrix (`testing::conformance`) against the
//! extractor and the middleware, each body sent with a `Content-Length` and
//! streamed without one, under limits below, at and above actix-web's own.
//!
//! Besides what `Case::check` checks (status, delivery, JSON answer without
//! customer data), each request must answer the core's short client message,
//! log the rejection exactly once under `chatbase::rejection` with the core's
//! hint and reason, and log no secret, signature or customer data.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, RETRY_AFTER};
use actix_web::test::{call_service, init_service, read_body};
use actix_web::{App, HttpResponse, web};
use chatbase_actix::{DEFAULT_BODY_LIMIT, Verifier};
use chatbase_core::testing::conformance::{self, Case, Observed};
use chatbase_core::testing::logs::{self, Logs};
use chatbase_core::{ResolveError, ResolverOptions, Secret, SecretResolver};

use crate::support::{
    CUSTOMER_DATA, Context, EXTRACTOR_PATH, FRAMINGS, Hits, MIDDLEWARE_PATH, REQ_DATA_PATH, SECRET,
    case_request, extractor_app, middleware_app, rejection_message, secret, verifier,
};

/// 4 KiB; the verifier's default, 1 MiB; and 3 MiB, over actix-web's
/// `PayloadConfig` (256 KiB) and `JsonConfig` (2 MiB) defaults.
const LIMITS: [usize; 3] = [4096, DEFAULT_BODY_LIMIT, 3 * 1024 * 1024];

/// Sends every case, in both framings, to `app` at `path`, and checks the
/// answer, what the handler got, and the logs.
async fn run_matrix<S, B>(app: &S, path: &str, limit: usize, hits: &Hits)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let core = verifier().with_body_limit(limit);
    run_cases(
        app,
        path,
        &core,
        || conformance::cases(&secret(), limit),
        hits,
    )
    .await;
}

/// Sends each of `cases`, in both framings, to `app` at `path`, which
/// verifies as `core` does, and checks the answer, what the handler got, and
/// the logs.
async fn run_cases<S, B>(
    app: &S,
    path: &str,
    core: &Verifier,
    cases: impl Fn() -> Vec<Case>,
    hits: &Hits,
) where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let logs = Logs::capture();
    for framing in FRAMINGS {
        for case in cases() {
            let _context = Context(format!("{path}, {core:?}, {framing:?}, {}", case.name));
            let mark = logs.mark();
            let response = call_service(app, case_request(&case, path, framing)).await;
            let status = response.status().as_u16();
            let content_type = response.headers().get(CONTENT_TYPE).cloned();
            let retry_after = response.headers().get(RETRY_AFTER).cloned();
            let body = read_body(response).await;
            let delivered = hits.take_seen();
            case.check(&Observed {
                status,
                content_type: content_type.as_ref().and_then(|value| value.to_str().ok()),
                body: &body,
                delivered: &delivered,
                retry_after: retry_after.as_ref().and_then(|value| value.to_str().ok()),
            });

            let logged = logs.since(mark);
            let signatures: Vec<&[u8]> = case.signatures().map(str::as_bytes).collect();
            let expected = match core.head(signatures, None) {
                Ok(mut verification) => match verification.chunk(case.body.clone()) {
                    Ok(()) => verification.finish().await,
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            match expected {
                Ok(_) => assert_eq!(logs::rejection_lines(&logged), Vec::<&str>::new()),
                Err(error) if error.status() == 503 => {
                    assert_eq!(rejection_message(&body), error.client_message());
                    let lines = logs::rejection_lines(&logged);
                    assert_eq!(lines.len(), 1, "{logged}");
                    assert!(lines[0].contains("ERROR"), "{logged}");
                }
                Err(error) => {
                    assert_eq!(rejection_message(&body), error.client_message());
                    logs::assert_rejection_logged_once(&logged, error.status());
                    let line = logs::rejection_lines(&logged)[0];
                    assert!(line.contains(&error.to_string()), "no hint: {line}");
                    assert!(line.contains(error.reason()), "no reason: {line}");
                }
            }
            let private = private(&case);
            let private: Vec<&str> = private.iter().map(String::as_str).collect();
            logs::assert_logged_none_of(&logged, &private);
        }
    }
}

/// What the logs must never show for `case`: the secret, the signature its
/// body needs, the one sent, and the customer data of the matrix.
fn private(case: &Case) -> Vec<String> {
    let expected = chatbase_core::sign(&secret(), &case.body);
    let sent = case.signature.clone().filter(|sent| sent.len() >= 8);
    let per_chatbot = CHATBOT_KEYS.iter().flat_map(|key| {
        let secret = Secret::new(*key).unwrap();
        [(*key).to_owned(), chatbase_core::sign(&secret, &case.body)]
    });
    [SECRET.to_owned(), expected]
        .into_iter()
        .chain(sent)
        .chain(per_chatbot)
        .chain(CUSTOMER_DATA.map(str::to_owned))
        .collect()
}

/// The secrets of `conformance::CHATBOT_SECRETS_JSON`.
const CHATBOT_KEYS: [&str; 3] = [
    "conformance-secret-a",
    "conformance-secret-b-new",
    "conformance-secret-b-old",
];

/// A resolver over the conformance chatbots that fails for
/// `conformance::UNAVAILABLE_CHATBOT`, as a database that is down does.
struct ConformanceResolver;

impl SecretResolver for ConformanceResolver {
    async fn resolve(&self, chatbot_id: &str) -> Result<Option<Vec<Secret>>, ResolveError> {
        if chatbot_id == conformance::UNAVAILABLE_CHATBOT {
            return Err("the database is down".into());
        }
        let keys: &[&str] = match chatbot_id {
            "bot_a" => &CHATBOT_KEYS[..1],
            "bot_b" => &CHATBOT_KEYS[1..],
            _ => return Ok(None),
        };
        Ok(Some(
            keys.iter().map(|key| Secret::new(*key).unwrap()).collect(),
        ))
    }
}

/// The chatbot matrix, with secrets per chatbot from a static map and from a
/// resolver (whose failure is a 503), against the extractor and the
/// middleware, in both framings.
#[actix_web::test]
async fn secrets_per_chatbot_pass_the_chatbot_matrix() {
    let verifiers = [
        Verifier::per_chatbot(conformance::chatbot_secrets()),
        Verifier::with_resolver(ConformanceResolver, ResolverOptions::default()),
    ];
    for verifier in verifiers {
        let resolved = format!("{verifier:?}").contains("resolved");
        let cases = || {
            let mut cases = conformance::chatbot_cases();
            if resolved {
                cases.push(conformance::resolver_failure_case());
            }
            cases
        };
        let hits = web::Data::new(Hits::default());
        let app = init_service(extractor_app(Some(verifier.clone()), hits.clone())).await;
        run_cases(&app, EXTRACTOR_PATH, &verifier, cases, &hits).await;
        let hits = web::Data::new(Hits::default());
        let app = init_service(middleware_app(verifier.clone(), None, hits.clone())).await;
        for path in [MIDDLEWARE_PATH, REQ_DATA_PATH] {
            run_cases(&app, path, &verifier, cases, &hits).await;
        }
    }
}

#[actix_web::test]
async fn the_extractor_passes_the_matrix() {
    for limit in LIMITS {
        let hits = web::Data::new(Hits::default());
        let verifier = verifier().with_body_limit(limit);
        let app = init_service(extractor_app(Some(verifier), hits.clone())).await;
        run_matrix(&app, EXTRACTOR_PATH, limit, &hits).await;
    }
}

/// Through the extractor behind the middleware (with no verifier in app data:
/// it must not need one), and through `web::ReqData`.
#[actix_web::test]
async fn the_middleware_passes_the_matrix() {
    for limit in LIMITS {
        let hits = web::Data::new(Hits::default());
        let verifier = verifier().with_body_limit(limit);
        let app = init_service(middleware_app(verifier, None, hits.clone())).await;
        for path in [MIDDLEWARE_PATH, REQ_DATA_PATH] {
            run_matrix(&app, path, limit, &hits).await;
        }
    }
}

/// A receiver that parses without verifying delivers unsigned requests: the
/// runner must fail it, at the first unsigned case.
#[test]
fn the_runner_fails_a_receiver_that_does_not_verify() {
    async fn unverified(body: web::Bytes, hits: web::Data<Hits>) -> HttpResponse {
        match chatbase_core::ChatbaseEvent::from_verified_body(body) {
            Ok(event) => {
                hits.saw(&event);
                HttpResponse::Ok().finish()
            }
            Err(_) => HttpResponse::BadRequest().json(serde_json::json!({ "message": "no" })),
        }
    }

    let outcome = std::panic::catch_unwind(|| {
        actix_web::rt::System::new().block_on(async {
            let hits = web::Data::new(Hits::default());
            let app = App::new()
                .app_data(hits.clone())
                .route("/unverified", web::post().to(unverified));
            let app = init_service(app).await;
            run_matrix(&app, "/unverified", 4096, &hits).await;
        });
    });
    let payload = outcome.expect_err("a receiver that does not verify passed the matrix");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("missing signature: status"), "{message}");
}
