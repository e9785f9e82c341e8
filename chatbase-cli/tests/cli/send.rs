//! `chatbase send`: what goes on the wire, expectations, repeats, secrets
//! files, https.

use std::collections::HashSet;

use chatbase_core::{SECRET_ENV_VAR, Secret, sign};

use crate::support::{
    Answer, SECRET, Server, TempDir, TlsServer, arg, chatbase, chatbase_with, node_vectors, run,
    vector_secrets_file,
};

/// Every Node vector, sent by the binary from a body file with the secret
/// from a secrets file: the header on the wire is Node's signature, and the
/// body on the wire is the file's bytes.
#[test]
fn signatures_on_the_wire_match_every_node_vector() {
    let server = Server::capture();
    let dir = TempDir::new("vectors");
    let vectors = node_vectors();
    let secrets = vector_secrets_file(&dir, &vectors);
    for (n, vector) in vectors.iter().enumerate() {
        let body = dir.file("body", &vector.body);
        let id = format!("v{n}");
        let output = chatbase_with(&[
            "send",
            "--url",
            &server.url("/webhook"),
            "--secrets-file",
            arg(&secrets),
            "--chatbot-id",
            &id,
            "--body-file",
            arg(&body),
        ]);
        assert_eq!(output.code, 0, "{}: {output:?}", vector.name);
        let seen = server.next();
        assert_eq!(
            seen.signature(),
            Some(vector.signature.as_str()),
            "{}",
            vector.name
        );
        assert_eq!(seen.body, vector.body, "{}", vector.name);
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert!(
            seen.header("user-agent")
                .unwrap()
                .starts_with("chatbase-cli/"),
            "{seen:?}"
        );
    }
}

/// `--secret` on the command line, for the vectors a command line can hold
/// (no NUL byte): the same signatures.
#[test]
fn secret_flag_signs_like_node() {
    let server = Server::capture();
    let dir = TempDir::new("secret-flag");
    let mut count = 0;
    for vector in node_vectors()
        .iter()
        .filter(|v| !v.secret.contains('\0'))
        .step_by(7)
    {
        let body = dir.file("body", &vector.body);
        let output = chatbase_with(&[
            "send",
            "--url",
            &server.url("/"),
            "--secret",
            &vector.secret,
            "--body-file",
            arg(&body),
        ]);
        assert_eq!(output.code, 0, "{}: {output:?}", vector.name);
        assert_eq!(server.next().signature(), Some(vector.signature.as_str()));
        if vector.secret.len() >= 8 {
            output.never_shows(&vector.secret);
        }
        count += 1;
    }
    assert!(count >= 5, "{count}");
}

/// The default body: a realistic leads.submit for `bot_example` with a new
/// conversation id each time, signed with the environment's secret;
/// `--event`, `--chatbot-id` and `-X` change it.
#[test]
fn made_up_events_and_their_flags() {
    let server = Server::verifying();
    let url = server.url("/webhook");
    let output = run(chatbase()
        .args(["send", "--url", &url])
        .env(SECRET_ENV_VAR, SECRET));
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("200 OK"), "{output:?}");
    assert!(
        output
            .stdout
            .contains("signed with CHATBASE_WEBHOOK_SECRET"),
        "{output:?}"
    );
    output.never_shows(SECRET);
    let first = server.next();
    let event: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(event["eventType"], "leads.submit");
    assert_eq!(event["chatbotId"], "bot_example");
    assert_eq!(event["payload"]["customerEmail"], "ada@example.com");

    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secret",
        SECRET,
        "--event",
        "conversations.end",
        "--chatbot-id",
        "bot_7",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    let second: serde_json::Value = serde_json::from_slice(&server.next().body).unwrap();
    assert_eq!(second["eventType"], "conversations.end");
    assert_eq!(second["chatbotId"], "bot_7");
    assert_ne!(
        second["payload"]["conversationId"],
        event["payload"]["conversationId"]
    );

    // A method the receiver does not expect: it still verifies here, and the
    // method is the one asked for.
    let output = chatbase_with(&["send", "--url", &url, "--secret", SECRET, "-X", "put"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(server.next().method, "PUT");
}

/// The body from standard input with `--body-file -`.
#[test]
fn body_from_standard_input() {
    let server = Server::capture();
    let body = br#"{"eventType":"leads.submit","chatbotId":"stdin","payload":{}}"#;
    let output = run(chatbase()
        .args([
            "send",
            "--url",
            &server.url("/"),
            "--secret",
            SECRET,
            "--body-file",
            "-",
        ])
        .write_stdin(&body[..]));
    assert_eq!(output.code, 0, "{output:?}");
    let seen = server.next();
    assert_eq!(seen.body, &body[..]);
    assert_eq!(
        seen.signature().unwrap(),
        sign(&crate::support::secret(), body)
    );
}

/// Against a verifying receiver: forgeries get 401, which is what they
/// expect by default (exit 0); a forgery that is accepted, or a signed
/// request that is refused, exits 1 and says why. `--expect` changes what
/// counts.
#[test]
fn expectations_and_exit_codes() {
    let server = Server::verifying();
    let url = server.url("/webhook");
    let dir = TempDir::new("expect");
    let other = dir.file(
        "other.json",
        br#"{"eventType":"leads.submit","chatbotId":"b","payload":{}}"#,
    );
    // (arguments, exit code, what the output says)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["--secret", SECRET], 0, "200 OK"),
        (
            vec!["--secret", SECRET, "--bad-signature"],
            0,
            "401 Unauthorized (as expected)",
        ),
        (vec!["--bad-signature"], 0, "401 Unauthorized (as expected)"),
        (vec!["--unsigned"], 0, "401 Unauthorized (as expected)"),
        (
            vec!["--secret", SECRET, "--tampered"],
            0,
            "401 Unauthorized (as expected)",
        ),
        (
            vec!["--secret", SECRET, "--body-file", arg(&other), "--tampered"],
            0,
            "(as expected)",
        ),
        (
            vec!["--secret", "not-the-secret"],
            1,
            "refused a correctly signed request",
        ),
        (vec!["--secret", "not-the-secret"], 1, "signature mismatch"),
        (
            vec!["--unsigned", "--expect", "2xx"],
            1,
            "expected 2xx, got 401 Unauthorized",
        ),
        (
            vec!["--secret", SECRET, "--expect", "401"],
            1,
            "expected 401, got 200 OK",
        ),
        (
            vec!["--secret", SECRET, "--expect", "202", "--expect", "2xx"],
            0,
            "200 OK",
        ),
        (vec!["--unsigned", "--expect", "4xx"], 0, "401"),
    ];
    for (arguments, code, says) in cases {
        let mut all = vec!["send", "--url", &url];
        all.extend(&arguments);
        let output = chatbase_with(&all);
        assert_eq!(output.code, code, "{arguments:?}: {output:?}");
        assert!(output.all().contains(says), "{arguments:?}: {output:?}");
        output.never_shows(SECRET);
    }

    // A receiver that accepts everything: forgeries are caught.
    let lax = Server::capture();
    for forgery in ["--bad-signature", "--unsigned", "--tampered"] {
        let output = chatbase_with(&["send", "--url", &lax.url("/"), "--secret", SECRET, forgery]);
        assert_eq!(output.code, 1, "{forgery}: {output:?}");
        assert!(
            output.stderr.contains("expected 401, got 200 OK"),
            "{output:?}"
        );
        assert!(
            output.stderr.contains("does it verify signatures?"),
            "{output:?}"
        );
    }
}

/// `--repeat N --concurrency K`: N requests, each a new event, and a
/// histogram of the statuses; exit 1 when some status is unexpected.
#[test]
fn repeat_sends_n_events_and_shows_a_histogram() {
    let server = Server::verifying();
    let url = server.url("/webhook");
    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secret",
        SECRET,
        "--repeat",
        "40",
        "--concurrency",
        "8",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("x 40, 8 at a time"), "{output:?}");
    let histogram_line = output
        .stdout
        .lines()
        .find(|line| line.contains("200 OK"))
        .unwrap();
    assert!(histogram_line.contains(" 40 "), "{output:?}");
    assert!(histogram_line.contains('#'), "{output:?}");
    assert!(
        output.stdout.contains("40 requests in")
            && output.stdout.contains("40 with the expected status (2xx)"),
        "{output:?}"
    );
    // No progress bar drawn into a pipe.
    assert!(!output.stderr.contains("eta"), "{output:?}");
    let seen = server.drain();
    assert_eq!(seen.len(), 40);
    let conversations: HashSet<String> = seen
        .iter()
        .map(|s| {
            let event: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
            event["payload"]["conversationId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(conversations.len(), 40);

    // A body file is sent as it is each time, like a redelivery; a wrong
    // secret makes every reply unexpected.
    let dir = TempDir::new("repeat");
    let body = dir.file(
        "event.json",
        br#"{"eventType":"x","chatbotId":"b","payload":{}}"#,
    );
    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secret",
        "wrong",
        "--body-file",
        arg(&body),
        "--repeat",
        "5",
    ]);
    assert_eq!(output.code, 1, "{output:?}");
    let line = output
        .stdout
        .lines()
        .find(|l| l.contains("401 Unauthorized"))
        .unwrap();
    assert!(line.contains(" 5 "), "{output:?}");
    assert!(
        output
            .stdout
            .contains("0 with the expected status (2xx), 5 without"),
        "{output:?}"
    );
    let seen = server.drain();
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(|s| s.body == seen[0].body));
}

/// A repeat against a port where nothing listens counts the failures.
#[test]
fn repeat_counts_failures() {
    let (url, port) = crate::support::closed_url();
    let output = chatbase_with(&["send", "--url", &url, "--unsigned", "--repeat", "3"]);
    assert_eq!(output.code, 1, "{output:?}");
    let line = output
        .stdout
        .lines()
        .find(|l| l.contains("connection refused"))
        .unwrap();
    assert!(line.contains(" 3 "), "{output:?}");
    assert!(
        output.stderr.contains(&format!("port {port}")),
        "{output:?}"
    );
}

/// `--secrets-file`: the current secret of `--chatbot-id`, of the body's
/// chatbotId, or of the file's only chatbot; the made-up body names that
/// chatbot.
#[test]
fn secrets_file_picks_the_chatbots_current_secret() {
    let server = Server::capture();
    let url = server.url("/");
    let dir = TempDir::new("secrets-file");
    let file = dir.file(
        "secrets.json",
        br#"{"bot_a": "secret-a", "bot_b": ["secret-b-new", "secret-b-old"]}"#,
    );
    let signed_with = |secret: &str, body: &[u8]| sign(&Secret::new(secret).unwrap(), body);

    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secrets-file",
        arg(&file),
        "--chatbot-id",
        "bot_b",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output
            .stdout
            .contains("signed with the current secret of bot_b"),
        "{output:?}"
    );
    output.never_shows("secret-b-new");
    let seen = server.next();
    assert_eq!(
        seen.signature().unwrap(),
        signed_with("secret-b-new", &seen.body)
    );
    let event: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(event["chatbotId"], "bot_b");

    // The body names the chatbot.
    let body = dir.file(
        "a.json",
        br#"{"eventType":"x","chatbotId":"bot_a","payload":{}}"#,
    );
    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secrets-file",
        arg(&file),
        "--body-file",
        arg(&body),
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    let seen = server.next();
    assert_eq!(
        seen.signature().unwrap(),
        signed_with("secret-a", &seen.body)
    );

    // Several chatbots, none named: a usage error listing them.
    let output = chatbase_with(&["send", "--url", &url, "--secrets-file", arg(&file)]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains(r#""bot_a", "bot_b""#), "{output:?}");
    assert!(output.stderr.contains("--chatbot-id"), "{output:?}");
    // An unknown chatbot.
    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secrets-file",
        arg(&file),
        "--chatbot-id",
        "bot_z",
    ]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        output.stderr.contains(r#"no secret for chatbot "bot_z""#),
        "{output:?}"
    );

    // One chatbot: that one.
    let single = dir.file("single.json", br#"{"bot_only": "secret-only"}"#);
    let output = chatbase_with(&["send", "--url", &url, "--secrets-file", arg(&single)]);
    assert_eq!(output.code, 0, "{output:?}");
    let seen = server.next();
    assert_eq!(
        seen.signature().unwrap(),
        signed_with("secret-only", &seen.body)
    );
    let event: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(event["chatbotId"], "bot_only");
    assert!(server.drain().is_empty());
}

/// A secret with whitespace around it is used exactly as given, with a
/// warning: the signature is the one Chatbase would make with those bytes.
#[test]
fn a_secret_with_whitespace_is_used_verbatim_with_a_warning() {
    let server = Server::capture();
    for (padded, how) in [(" padded-secret\n", "flag"), ("\tpadded-secret ", "env")] {
        let mut command = chatbase();
        command.args(["send", "--url", &server.url("/")]);
        if how == "flag" {
            command.args(["--secret", padded]);
        } else {
            command.env(SECRET_ENV_VAR, padded);
        }
        let output = run(&mut command);
        assert_eq!(output.code, 0, "{output:?}");
        assert!(output.stderr.contains("warning: "), "{output:?}");
        assert!(
            output.stderr.contains("starts or ends with whitespace"),
            "{output:?}"
        );
        assert!(
            output.stderr.contains("used exactly as given"),
            "{output:?}"
        );
        output.never_shows("padded-secret");
        let seen = server.next();
        let verbatim = Secret::new_verbatim(padded).unwrap();
        assert_eq!(seen.signature().unwrap(), sign(&verbatim, &seen.body));
    }
}

/// https with a private CA: `--cacert` reaches it; without it, the
/// certificate is refused with a hint.
#[test]
fn https_with_cacert() {
    let tls = TlsServer::start();
    let dir = TempDir::new("https");
    let ca = dir.file("ca.pem", tls.ca_pem.as_bytes());
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/webhook", tls.port);
        let output = chatbase_with(&[
            "send",
            "--url",
            &url,
            "--secret",
            SECRET,
            "--cacert",
            arg(&ca),
        ]);
        assert_eq!(output.code, 0, "{output:?}");
        assert!(output.stdout.contains("200 OK"), "{output:?}");
    }
    assert_eq!(tls.drain().len(), 2);

    let url = format!("https://localhost:{}/webhook", tls.port);
    let output = chatbase_with(&["send", "--url", &url, "--secret", SECRET]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains("certificate is not trusted"),
        "{output:?}"
    );
    assert!(output.stderr.contains("--cacert"), "{output:?}");
    assert!(tls.drain().is_empty());

    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secret",
        SECRET,
        "--cacert",
        "/nonexistent/ca.pem",
    ]);
    assert_eq!(output.code, 2, "{output:?}");
    let not_pem = dir.file("not.pem", "not a certificate");
    let output = chatbase_with(&[
        "send",
        "--url",
        &url,
        "--secret",
        SECRET,
        "--cacert",
        arg(&not_pem),
    ]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains("CA certificate"), "{output:?}");
}

/// The answer of a server that replies with another status is shown, and
/// counts against the default expectation.
#[test]
fn any_status_is_a_reply() {
    let server = Server::start(Answer::Status(axum::http::StatusCode::SERVICE_UNAVAILABLE));
    let output = chatbase_with(&["send", "--url", &server.url("/"), "--secret", SECRET]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stdout.contains("503 Service Unavailable"),
        "{output:?}"
    );
    assert!(output.stdout.contains("captured"), "{output:?}");
    let output = chatbase_with(&[
        "send",
        "--url",
        &server.url("/"),
        "--secret",
        SECRET,
        "--expect",
        "503",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
}
