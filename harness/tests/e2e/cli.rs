//! The `chatbase` command driven end to end against the reference receivers,
//! over real TCP: what it sends is what Chatbase sends, and its exit status
//! says whether the endpoint answered as it should.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chatbase_core::SECRETS_ENV_VAR;
use harness::examples;
use tokio::process::Command;

use crate::support::{DELIVERY_LINE, Logged, Output, Reference, SECRET, Server, run, temp_dir};

const REFERENCES: [Reference; 2] = Reference::BOTH;

/// Writes `contents` to `name` in `directory`, and returns its path.
fn file(directory: &tempfile::TempDir, name: &str, contents: &[u8]) -> String {
    let path = directory.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `chatbase` with `arguments`, with no secret in its environment.
async fn chatbase(arguments: &[&str]) -> Output {
    let mut command = Command::new(examples::binary("chatbase"));
    command
        .args(arguments)
        .env_remove("CHATBASE_WEBHOOK_SECRET")
        .env_remove("CHATBASE_WEBHOOK_PREVIOUS_SECRET")
        .env("NO_COLOR", "1");
    run(command).await
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// A lead, a forgery and an unsigned request: each answered as it must be, and
/// `chatbase send` exits 0 when the answer is the one expected (2xx for a
/// signed event, 401 for the forgeries), 1 otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_drives_both_receivers_and_its_exit_status_says_whether_they_answered_right() {
    for reference in REFERENCES {
        let mut server = Server::reference(reference).await;
        let url = server.url("/webhook");
        let name = reference.binary();

        let sent = chatbase(&["send", "--url", &url, "--secret", SECRET]).await;
        assert_eq!(code(&sent), 0, "{name}: {sent:?}");
        let delivery = server.next_delivery("chatbase send").await;
        assert_eq!(
            delivery.event_type.as_deref(),
            Some("leads.submit"),
            "{name}"
        );

        for forgery in ["--bad-signature", "--unsigned", "--tampered"] {
            let mut arguments = vec!["send", "--url", &url, forgery];
            if forgery != "--unsigned" {
                arguments.extend(["--secret", SECRET]);
            }
            let sent = chatbase(&arguments).await;
            assert_eq!(
                code(&sent),
                0,
                "{name} {forgery}: a 401 is what it expects: {sent:?}"
            );
            assert!(
                matches!(
                    server.next_outcome().await,
                    Logged::Rejected { status: 401, .. }
                ),
                "{name} {forgery}"
            );
        }
        // Expecting a 200 of a forgery fails.
        let sent = chatbase(&["send", "--url", &url, "--unsigned", "--expect", "200"]).await;
        assert_eq!(code(&sent), 1, "{name}: {sent:?}");
        server.next_rejection(401, "unsigned, expecting 200").await;
        // The wrong secret: the receiver refuses, and the command says so.
        let sent = chatbase(&["send", "--url", &url, "--secret", "not-the-secret"]).await;
        assert_eq!(code(&sent), 1, "{name}: {sent:?}");
        server.next_rejection(401, "wrong secret").await;
    }
}

/// `--repeat` with `--concurrency`: every request delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_repeat_delivers_each_request_once() {
    for reference in REFERENCES {
        let mut server = Server::reference(reference).await;
        let url = server.url("/scoped/webhook");
        let sent = chatbase(&[
            "send",
            "--url",
            &url,
            "--secret",
            SECRET,
            "--repeat",
            "40",
            "--concurrency",
            "8",
        ])
        .await;
        assert_eq!(code(&sent), 0, "{sent:?}");
        let mut conversations = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let delivery = server.next_delivery("repeat").await;
            conversations.insert(delivery.conversation_id.unwrap_or_default());
        }
        assert_eq!(
            conversations.len(),
            40,
            "{}: a new conversation per request",
            reference.binary()
        );
    }
}

/// With secrets per chatbot: `--secrets-file` and `--chatbot-id` sign with
/// that chatbot's current secret, and the receiver delivers it as that
/// chatbot's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_with_a_secrets_file_signs_as_the_named_chatbot() {
    let json = r#"{"bot_a":"cli-secret-a","bot_b":["cli-secret-b-new","cli-secret-b-old"]}"#;
    let directory = temp_dir();
    let secrets = file(&directory, "secrets.json", json.as_bytes());
    let other = file(&directory, "unknown.json", br#"{"bot_c":"cli-secret-c"}"#);
    for reference in REFERENCES {
        let mut server = Server::start(
            reference.binary(),
            &[(SECRETS_ENV_VAR, json)],
            DELIVERY_LINE,
        )
        .await;
        let url = server.url("/webhook");
        for bot in ["bot_a", "bot_b"] {
            let sent = chatbase(&[
                "send",
                "--url",
                &url,
                "--secrets-file",
                &secrets,
                "--chatbot-id",
                bot,
            ])
            .await;
            assert_eq!(code(&sent), 0, "{bot}: {sent:?}");
            let delivery = server.next_delivery(bot).await;
            assert_eq!(delivery.chatbot_id.as_deref(), Some(bot));
        }
        // A chatbot the receiver does not know: refused, and the command fails.
        let sent = chatbase(&[
            "send",
            "--url",
            &url,
            "--secrets-file",
            &other,
            "--chatbot-id",
            "bot_c",
        ])
        .await;
        assert_eq!(code(&sent), 1, "{sent:?}");
        server.next_rejection(401, "unknown chatbot").await;
    }
}

#[derive(serde::Deserialize)]
struct NodeVectors {
    vectors: Vec<NodeVector>,
}

#[derive(serde::Deserialize)]
struct NodeVector {
    name: String,
    secret: String,
    body_base64: String,
}

/// Every Node vector whose secret an environment variable can hold (no NUL),
/// sent with `chatbase send --body-file` to a receiver verifying with that
/// secret: the signature always verifies (a lead or an unknown event is
/// delivered; an empty or binary body, signed but no event, is a 400), never
/// a 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_signatures_verify_at_the_receivers_for_every_node_vector() {
    let vectors: NodeVectors =
        serde_json::from_str(include_str!("../../../testdata/node-hmac-sha1.json")).unwrap();
    let directory = temp_dir();
    let mut checked = 0;
    for (index, vector) in vectors.vectors.iter().enumerate() {
        if vector.secret.contains('\0') {
            continue;
        }
        let reference = REFERENCES[index % REFERENCES.len()];
        let mut server = Server::start(
            reference.binary(),
            &[("CHATBASE_WEBHOOK_SECRET", vector.secret.as_str())],
            DELIVERY_LINE,
        )
        .await;
        let body = BASE64.decode(&vector.body_base64).unwrap();
        let body_file = file(&directory, &format!("body-{index}"), &body);
        // The secret through a file, exactly as given: JSON carries any string.
        let secrets = serde_json::json!({ "v": vector.secret }).to_string();
        let secrets_file = file(
            &directory,
            &format!("secrets-{index}.json"),
            secrets.as_bytes(),
        );
        let sent = chatbase(&[
            "send",
            "--url",
            &server.url("/webhook"),
            "--body-file",
            &body_file,
            "--secrets-file",
            &secrets_file,
            "--chatbot-id",
            "v",
            "--expect",
            "2xx",
            "--expect",
            "400",
        ])
        .await;
        assert_eq!(code(&sent), 0, "{}: {sent:?}", vector.name);
        match server.next_outcome().await {
            Logged::Delivered(_) => {}
            Logged::Rejected { status: 400, .. } => {}
            other => panic!("{}: {other:?}", vector.name),
        }
        checked += 1;
    }
    assert!(checked >= 50, "{checked} vectors checked");
}
