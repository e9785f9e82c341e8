//! Errors a new user meets: each says what is wrong, names the URL once,
//! and hints at the fix; usage errors exit 2, failed requests exit 1.

use chatbase_core::SECRET_ENV_VAR;

use crate::support::{
    SECRET, Server, TempDir, TlsServer, arg, chatbase, chatbase_with, closed_url, run,
};

#[test]
fn connection_refused_asks_whether_the_receiver_runs_on_that_port() {
    let (url, port) = closed_url();
    let output = chatbase_with(&["send", "--url", &url, "--secret", SECRET]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stderr.contains("connection refused"), "{output:?}");
    assert!(
        output
            .stderr
            .contains(&format!("is the receiver running on port {port}?")),
        "{output:?}"
    );
    // The URL once on standard error (and once in the request line).
    assert_eq!(output.stderr.matches(&url).count(), 1, "{output:?}");
}

#[test]
fn https_against_an_http_server_suggests_http() {
    let server = Server::capture();
    let url = format!("https://{}/webhook", server.address);
    let output = chatbase_with(&["send", "--url", &url, "--secret", SECRET]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stderr.contains("does not speak TLS"), "{output:?}");
    assert!(
        output
            .stderr
            .contains(&format!("try http://{}/webhook", server.address)),
        "{output:?}"
    );
    assert!(
        !output.stderr.to_lowercase().contains("invalidcontenttype"),
        "{output:?}"
    );
    assert!(server.drain().is_empty());
}

#[test]
fn http_against_an_https_server_suggests_https() {
    let tls = TlsServer::start();
    let url = format!("http://127.0.0.1:{}/webhook", tls.port);
    let output = chatbase_with(&["send", "--url", &url, "--secret", SECRET]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stderr
            .contains(&format!("try https://127.0.0.1:{}/webhook", tls.port)),
        "{output:?}"
    );
}

#[test]
fn a_url_without_a_scheme_suggests_http() {
    let output = chatbase_with(&[
        "send",
        "--url",
        "localhost:3000/webhook",
        "--secret",
        SECRET,
    ]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains("no scheme"), "{output:?}");
    assert!(
        output
            .stderr
            .contains("did you mean http://localhost:3000/webhook?"),
        "{output:?}"
    );
    assert!(!output.stderr.contains("relative URL"), "{output:?}");

    let output = chatbase_with(&[
        "send",
        "--url",
        "ftp://127.0.0.1/webhook",
        "--secret",
        SECRET,
    ]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        output.stderr.contains("expected http or https"),
        "{output:?}"
    );
}

/// Usage errors: exit 2, clap's format, and never the secret.
#[test]
fn usage_errors_exit_2() {
    let server = Server::capture();
    let url = server.url("/");
    let dir = TempDir::new("usage");
    let body = dir.file("body.json", "{}");
    // (arguments, the secret in the environment, what standard error says)
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (vec!["send", "--url", &url], None, SECRET_ENV_VAR),
        (vec!["send", "--url", &url, "--tampered"], None, "no secret"),
        (vec!["send", "--url", &url], Some(""), "is empty"),
        (vec!["send", "--url", &url, "--secret", ""], None, "empty"),
        (vec!["send"], Some(SECRET), "--url"),
        (
            vec![
                "send",
                "--url",
                &url,
                "--body-file",
                "/nonexistent/body.json",
            ],
            Some(SECRET),
            "--body-file",
        ),
        (
            vec![
                "send",
                "--url",
                &url,
                "--body-file",
                arg(&body),
                "--event",
                "x.y",
            ],
            Some(SECRET),
            "cannot be used with",
        ),
        (
            vec!["send", "--url", &url, "--unsigned", "--bad-signature"],
            None,
            "cannot be used with",
        ),
        (
            vec![
                "send",
                "--url",
                &url,
                "--secret",
                SECRET,
                "--secrets-file",
                arg(&body),
            ],
            None,
            "cannot be used with",
        ),
        (
            vec![
                "send",
                "--url",
                &url,
                "--replay",
                arg(&dir.path),
                "--secret",
                SECRET,
            ],
            None,
            "cannot be used with",
        ),
        (
            vec!["send", "--url", &url, "--replay", "/nonexistent"],
            None,
            "/nonexistent",
        ),
        (
            vec!["send", "--url", &url, "--replay", arg(&dir.path)],
            None,
            "no captured request",
        ),
        (
            vec!["send", "--url", &url, "--expect", "20"],
            Some(SECRET),
            "not a status",
        ),
        (
            vec!["send", "--url", &url, "--repeat", "0"],
            Some(SECRET),
            "--repeat",
        ),
        (
            vec!["send", "--url", &url, "-X", "BAD METHOD"],
            Some(SECRET),
            "not an HTTP method",
        ),
        (
            vec!["send", "--url", &url, "--secrets-file", arg(&body)],
            None,
            "names no chatbot",
        ),
        (vec!["sign", "--body-file", arg(&body)], None, "no secret"),
        (
            vec![
                "sign",
                "--body-file",
                arg(&body),
                "--chatbot-id",
                "x",
                "--secret",
                SECRET,
            ],
            None,
            "cannot be used with",
        ),
        (
            vec!["sign", "--body-file", arg(&body), "--chatbot-id", "x"],
            Some(SECRET),
            "--secrets-file",
        ),
        (
            vec!["verify", "--body-file", arg(&body), "--signature", "ab"],
            None,
            "no secret",
        ),
        (
            vec!["verify", "--body-file", arg(&body)],
            Some(SECRET),
            "--signature",
        ),
        (vec!["listen", "--port", "0"], None, "no secret"),
        (vec!["listen"], Some(SECRET), "--port"),
        (
            vec!["listen", "--port", "0", "--forward-to", "localhost:3000"],
            Some(SECRET),
            "did you mean http://localhost:3000?",
        ),
        (vec!["nonsense"], None, "unrecognized subcommand"),
    ];
    for (arguments, secret, says) in cases {
        let mut command = chatbase();
        command.args(&arguments);
        if let Some(secret) = secret {
            command.env(SECRET_ENV_VAR, secret);
        }
        let output = run(&mut command);
        let context = format!("{arguments:?} with {SECRET_ENV_VAR}={secret:?}: {output:?}");
        assert_eq!(output.code, 2, "{context}");
        assert!(output.stderr.contains(says), "{context}");
        assert!(output.stderr.contains("try '--help'"), "{context}");
        output.never_shows(SECRET);
    }
    assert!(server.drain().is_empty());
}

#[test]
fn listen_on_a_port_in_use_fails_with_a_hint() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(chatbase().args(["listen", "--port", &port, "--secret", SECRET]));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains("cannot listen on 127.0.0.1:"),
        "{output:?}"
    );
    assert!(
        output.stderr.contains("choose another --port"),
        "{output:?}"
    );
}
