//! `chatbase listen`, driven by `chatbase send`: verification, masking,
//! forwarding the exact bytes, capture and replay, a secret per chatbot,
//! Ctrl-C.

use chatbase_core::{Secret, sign};

use crate::support::{
    Answer, Listen, SECRET, Server, TempDir, arg, chatbase_with, closed_url, node_vectors,
    vector_secrets_file,
};

/// send → listen: verified events are printed with the customer's email and
/// phone masked; forgeries are rejected with 401 and printed as such;
/// Ctrl-C stops it with exit 0.
#[test]
fn verifies_prints_masked_and_stops_on_ctrl_c() {
    let mut listen = Listen::start(&["--secret", SECRET]);
    let url = listen.url("/webhook");

    let output = chatbase_with(&["send", "--url", &url, "--secret", SECRET]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains(r#"{"received":true}"#), "{output:?}");
    listen.wait_for("#1 POST /webhook  verified  leads.submit  chatbot bot_example");
    listen.wait_for(r#""customerEmail": "a***@***.com""#);
    listen.wait_for(r#""customerPhone": "+* *** **00""#);

    for forgery in ["--bad-signature", "--unsigned", "--tampered"] {
        let output = chatbase_with(&["send", "--url", &url, "--secret", SECRET, forgery]);
        assert_eq!(output.code, 0, "{forgery}: {output:?}");
        assert!(
            output.stdout.contains("401 Unauthorized (as expected)"),
            "{output:?}"
        );
    }
    listen.wait_for("#2 POST /webhook  rejected 401: signature mismatch");
    listen.wait_for("#3 POST /webhook  rejected 401: missing `x-chatbase-signature`");
    listen.wait_for("#4 POST /webhook  rejected 401: signature mismatch");

    let output = listen.interrupt();
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("stopped after 4 request(s)"),
        "{output:?}"
    );
    assert!(!output.stdout.contains("ada@example.com"), "{output:?}");
    // The phone's digits (`+1 555 0100`), not a bare "555": the listening
    // port may hold that.
    assert!(!output.stdout.contains("555 01"), "{output:?}");
    output.never_shows(SECRET);
}

#[test]
fn show_pii_shows_email_and_phone() {
    let mut listen = Listen::start(&["--secret", SECRET, "--show-pii"]);
    let output = chatbase_with(&["send", "--url", &listen.url("/"), "--secret", SECRET]);
    assert_eq!(output.code, 0, "{output:?}");
    listen.wait_for(r#""customerEmail": "ada@example.com""#);
    listen.wait_for(r#""customerPhone": "+1 555 0100""#);
}

/// send → listen → app: the app gets the exact bytes and signature header
/// of every Node vector; listen prints and relays the app's answer.
#[test]
fn forwards_the_exact_bytes_and_signature_to_the_app() {
    let app = Server::start(Answer::Status(axum::http::StatusCode::ACCEPTED));
    let dir = TempDir::new("forward");
    let vectors = node_vectors();
    let secrets = vector_secrets_file(&dir, &vectors);
    // A secret per chatbot: the vectors' bodies name other chatbots, so
    // listen verifies none of them, and still forwards each.
    let mut listen = Listen::start(&["--secret", SECRET, "--forward-to", &app.url("/app/hook")]);
    assert!(listen.stdout.contains("forwarding to"), "{}", listen.stdout);
    for (n, vector) in vectors.iter().enumerate().step_by(5) {
        let body = dir.file("body", &vector.body);
        let output = chatbase_with(&[
            "send",
            "--url",
            &listen.url("/webhook"),
            "--secrets-file",
            arg(&secrets),
            "--chatbot-id",
            &format!("v{n}"),
            "--body-file",
            arg(&body),
            "--expect",
            "202",
        ]);
        assert_eq!(output.code, 0, "{}: {output:?}", vector.name);
        assert!(output.stdout.contains("202 Accepted"), "{output:?}");
        let seen = app.next();
        assert_eq!(seen.body, vector.body, "{}", vector.name);
        assert_eq!(
            seen.signature(),
            Some(vector.signature.as_str()),
            "{}",
            vector.name
        );
        assert_eq!(seen.target, "/app/hook");
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.header("content-type"), Some("application/json"));
        listen.wait_for("app: 202 Accepted");
    }
    // The app accepted requests that do not verify here: listen warns.
    assert!(
        listen
            .stdout
            .contains("your app accepted a request that does not verify"),
        "{}",
        listen.stdout
    );

    // A verified event, forwarded too.
    let output = chatbase_with(&[
        "send",
        "--url",
        &listen.url("/webhook"),
        "--secret",
        SECRET,
        "--expect",
        "202",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    let seen = app.next();
    let secret = Secret::new(SECRET).unwrap();
    assert_eq!(seen.signature().unwrap(), sign(&secret, &seen.body));
    listen.wait_for("verified");
}

/// An app that refuses a verified request gets a warning; an app that is
/// down gets a 502 and a hint.
#[test]
fn the_apps_refusals_and_absence() {
    let app = Server::verifying();
    let mut listen = Listen::start(&[
        "--secret",
        "listen-only-secret",
        "--forward-to",
        &app.url("/"),
    ]);
    let output = chatbase_with(&[
        "send",
        "--url",
        &listen.url("/"),
        "--secret",
        "listen-only-secret",
        "--expect",
        "401",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    listen.wait_for("app: 401 Unauthorized");
    listen.wait_for("your app refused a request that verifies");

    let (down, port) = closed_url();
    let mut listen = Listen::start(&["--secret", SECRET, "--forward-to", &down]);
    let output = chatbase_with(&[
        "send",
        "--url",
        &listen.url("/"),
        "--secret",
        SECRET,
        "--expect",
        "502",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("could not forward"), "{output:?}");
    listen.wait_for("app unreachable");
    listen.wait_for(&format!("is the receiver running on port {port}?"));
}

/// listen --capture DIR writes each request as received, with a warning;
/// send --replay DIR sends them again byte for byte with their original
/// signatures.
#[test]
fn capture_then_replay() {
    let dir = TempDir::new("capture");
    let captured = dir.join("captured");
    let mut listen = Listen::start(&["--secret", SECRET, "--capture", arg(&captured)]);
    let body = dir.file(
        "event.json",
        br#"{"eventType":"leads.submit","chatbotId":"b","payload":{"customerEmail":"x@y.z"}}"#,
    );
    let sends: [&[&str]; 3] = [
        &["--secret", SECRET, "--body-file", arg(&body)],
        &["--secret", SECRET, "-X", "PUT"],
        &["--bad-signature"],
    ];
    for extra in sends {
        let mut arguments = vec!["send", "--url", "PLACEHOLDER"];
        let url = listen.url("/hook?from=test");
        arguments[2] = &url;
        arguments.extend(extra);
        let output = chatbase_with(&arguments);
        assert_eq!(output.code, 0, "{output:?}");
    }
    listen.wait_for("#3");
    let output = listen.interrupt();
    assert!(
        output.stderr.contains("the files hold customer data"),
        "{output:?}"
    );

    let mut files: Vec<_> = std::fs::read_dir(&captured)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let first = std::fs::read(&files[0]).unwrap();
    assert!(first.starts_with(b"POST /hook?from=test HTTP/1.1\r\n"));
    assert!(first.ends_with(&std::fs::read(&body).unwrap()));

    // Replay into an app that captures: the same bytes and signatures.
    let app = Server::capture();
    let output = chatbase_with(&[
        "send",
        "--url",
        &app.url("/replayed"),
        "--replay",
        arg(&captured),
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output
            .stdout
            .contains("3 replayed: 3 with the expected status (2xx)"),
        "{output:?}"
    );
    let replayed = app.drain();
    assert_eq!(replayed.len(), 3);
    for (file, seen) in files.iter().zip(&replayed) {
        let original = chatbase_cli::capture::read(file).unwrap().remove(0).1;
        assert_eq!(&seen.body, original.body());
        assert_eq!(
            seen.signature().map(str::as_bytes),
            original.signature().map(|v| v.as_bytes())
        );
        assert_eq!(seen.method, original.method().as_str());
    }
    assert_eq!(replayed[1].method, "PUT");
    assert_eq!(replayed[0].body, std::fs::read(&body).unwrap());

    // Replayed into a verifying receiver: two verify, the forgery does not.
    let receiver = Server::verifying();
    let output = chatbase_with(&[
        "send",
        "--url",
        &receiver.url("/"),
        "--replay",
        arg(&captured),
    ]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stdout
            .contains("3 replayed: 2 with the expected status (2xx), 1 without"),
        "{output:?}"
    );
    let output = chatbase_with(&[
        "send",
        "--url",
        &receiver.url("/"),
        "--replay",
        arg(&files[2]),
        "--expect",
        "401",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
}

/// With a secrets file, each body is verified with its chatbot's secrets:
/// another chatbot's secret is refused.
#[test]
fn a_secret_per_chatbot() {
    let dir = TempDir::new("listen-bots");
    let file = dir.file(
        "s.json",
        br#"{"bot_a": "secret-a", "bot_b": ["secret-b", "secret-b-old"]}"#,
    );
    let mut listen = Listen::start(&["--secrets-file", arg(&file)]);
    let url = listen.url("/");
    let cases = [
        (
            vec!["--secret", "secret-a", "--chatbot-id", "bot_a"],
            "200 OK",
        ),
        (
            vec!["--secret", "secret-b-old", "--chatbot-id", "bot_b"],
            "200 OK",
        ),
        (
            vec![
                "--secret",
                "secret-a",
                "--chatbot-id",
                "bot_b",
                "--expect",
                "401",
            ],
            "401",
        ),
        (
            vec![
                "--secret",
                "secret-a",
                "--chatbot-id",
                "bot_z",
                "--expect",
                "401",
            ],
            "401",
        ),
    ];
    for (extra, says) in cases {
        let mut arguments = vec!["send", "--url", &url];
        arguments.extend(&extra);
        let output = chatbase_with(&arguments);
        assert_eq!(output.code, 0, "{extra:?}: {output:?}");
        assert!(output.stdout.contains(says), "{output:?}");
    }
    listen.wait_for("#1 POST /  verified  leads.submit  chatbot bot_a");
    listen.wait_for("#2 POST /  verified  leads.submit  chatbot bot_b");
    listen.wait_for("#3 POST /  rejected 401: signature mismatch");
    listen.wait_for(r#"#4 POST /  rejected 401: no secret for chatbot "bot_z""#);
    let output = listen.interrupt();
    assert!(
        !output.all().contains("secret-a") && !output.all().contains("secret-b"),
        "{output:?}"
    );
}
