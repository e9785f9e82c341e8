//! chatbase-core's request matrix (`testing::conformance`), against every way
//! of wiring a route, each body sent with a `Content-Length` and chunked.

use chatbase_axum::Verifier;
use chatbase_core::testing::conformance::{self, Case, Expected};
use chatbase_core::testing::logs::{self, Logs};
use chatbase_core::{ResolveError, ResolverOptions, Secret, SecretResolver, sign};

use crate::support::{
    Context, FRAMINGS, Framing, LIMIT, SECRET, TARGETS, Target, app, case_request, secret, send,
    verifier,
};

/// Every case of the matrix, against `target`, framed as `framing`: a fresh
/// application each time, so that what the handler received and what was
/// logged are the case's own.
///
/// Beyond `Case::check`: an accepted request logs nothing; a rejected one
/// logs one line, at `WARN`, under `chatbase::rejection`; neither logs the
/// secret, a signature or customer data.
async fn matrix(target: Target, framing: Framing) {
    let cases = conformance::cases(&secret(SECRET), LIMIT);
    assert_eq!(cases.len(), 26);
    run(target, framing, &verifier(), cases).await;
}

/// `cases` against `target` verifying with `verifier`, framed as `framing`.
async fn run(target: Target, framing: Framing, verifier: &Verifier, cases: Vec<Case>) {
    let logs = Logs::capture();
    for case in cases {
        let _context = Context(format!("{target:?}, {framing:?}, {}", case.name));
        let app = app(target, verifier.clone());
        let mark = logs.mark();
        let answer = send(&app.router, case_request(&case, app.path, framing)).await;
        let logged = logs.since(mark);
        case.check(&answer.observed(&app.state.delivered()));
        match case.expected {
            Expected::Delivered { .. } => {
                assert_eq!(logged, "", "an accepted request was logged");
            }
            Expected::Rejected { status: 503 } => {
                // A failed lookup: the server's trouble, logged at ERROR.
                let lines = logs::rejection_lines(&logged);
                assert_eq!(lines.len(), 1, "{logged}");
                assert!(lines[0].contains("ERROR"), "{logged}");
            }
            Expected::Rejected { status } => {
                logs::assert_rejection_logged_once(&logged, status);
                assert_eq!(
                    logged.lines().count(),
                    1,
                    "more than the rejection: {logged}"
                );
            }
            ref other => panic!("an outcome this suite does not know: {other:?}"),
        }
        let private = private(&case);
        let private: Vec<&str> = private.iter().map(String::as_str).collect();
        logs::assert_logged_none_of(&logged, &private);
    }
}

/// What no log line may show for `case`: the secret, the signature its body
/// would need, the one it was sent with, and the customer data of the matrix.
fn private(case: &Case) -> Vec<String> {
    let mut private: Vec<String> = [
        SECRET,
        "jo@acme.io",
        "jo@evil.io",
        "ada@example.com",
        "555 0100",
        "acme",
    ]
    .map(str::to_owned)
    .into();
    private.push(sign(&secret(SECRET), &case.body));
    for key in [
        "conformance-secret-a",
        "conformance-secret-b-new",
        "conformance-secret-b-old",
    ] {
        private.push(key.to_owned());
        private.push(sign(&secret(key), &case.body));
    }
    // A signature too short to be one (empty, a few digits) could be a chance match.
    private.extend(case.signature.clone().filter(|sent| sent.len() >= 8));
    private
}

/// Every target, in every framing.
#[tokio::test]
async fn request_matrix() {
    for target in TARGETS {
        for framing in FRAMINGS {
            matrix(target, framing).await;
        }
    }
}

/// A resolver over the conformance chatbots that fails for
/// `conformance::UNAVAILABLE_CHATBOT`, as a database that is down does.
struct ConformanceResolver;

impl SecretResolver for ConformanceResolver {
    async fn resolve(&self, chatbot_id: &str) -> Result<Option<Vec<Secret>>, ResolveError> {
        if chatbot_id == conformance::UNAVAILABLE_CHATBOT {
            return Err("the database is down".into());
        }
        let keys: &[&str] = match chatbot_id {
            "bot_a" => &["conformance-secret-a"],
            "bot_b" => &["conformance-secret-b-new", "conformance-secret-b-old"],
            _ => return Ok(None),
        };
        Ok(Some(keys.iter().map(|key| secret(key)).collect()))
    }
}

/// The chatbot matrix, with secrets per chatbot from a static map and from a
/// resolver (whose failure is a 503), against every target, in every framing.
#[tokio::test]
async fn chatbot_matrix() {
    let per_chatbot = Verifier::per_chatbot(conformance::chatbot_secrets()).with_body_limit(LIMIT);
    for target in TARGETS {
        for framing in FRAMINGS {
            run(target, framing, &per_chatbot, conformance::chatbot_cases()).await;
            let resolved = Verifier::with_resolver(ConformanceResolver, ResolverOptions::default());
            let mut cases = conformance::chatbot_cases();
            cases.push(conformance::resolver_failure_case());
            run(target, framing, &resolved, cases).await;
        }
    }
}
