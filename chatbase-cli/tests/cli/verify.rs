//! `chatbase verify`: the verdict, the diagnoses, the exit codes; never a
//! secret or the expected signature.

use chatbase_core::{SECRET_ENV_VAR, Secret, sign};

use crate::support::{
    Output, SECRET, TempDir, arg, chatbase, node_vectors, run, vector_secrets_file,
};

const BODY: &[u8] = br#"{"eventType":"leads.submit","chatbotId":"bot_a","payload":{"conversationId":"c1","customerEmail":"ada@example.com"}}"#;

fn signature_of(secret: &str, body: &[u8]) -> String {
    sign(&Secret::new_verbatim(secret).unwrap(), body)
}

fn verify(body: &[u8], signature: &str, secrets: &[&str]) -> Output {
    let mut command = chatbase();
    command.args(["verify", "--signature", signature]);
    for secret in secrets {
        command.args(["--secret", secret]);
    }
    run(command.write_stdin(body.to_vec()))
}

/// Every Node vector verifies (exit 0), with its secret from a secrets file.
#[test]
fn every_node_vector_verifies() {
    let dir = TempDir::new("verify-vectors");
    let vectors = node_vectors();
    let secrets = vector_secrets_file(&dir, &vectors);
    for (n, vector) in vectors.iter().enumerate() {
        let body = dir.file("body", &vector.body);
        let output = run(chatbase().args([
            "verify",
            "--body-file",
            arg(&body),
            "--signature",
            &vector.signature,
            "--secrets-file",
            arg(&secrets),
            "--chatbot-id",
            &format!("v{n}"),
        ]));
        assert_eq!(output.code, 0, "{}: {output:?}", vector.name);
        assert!(
            output.stdout.contains(&format!(
                "verified: the signature matches the body with the current secret of v{n}"
            )),
            "{output:?}"
        );
    }
}

#[test]
fn verifies_with_any_of_several_secrets_and_notes_upper_case() {
    let signature = signature_of(SECRET, BODY);
    let output = verify(BODY, &signature, &["old-secret", SECRET]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("with --secret #2"), "{output:?}");

    let output = verify(BODY, &signature.to_ascii_uppercase(), &[SECRET]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("upper-case hex"), "{output:?}");
    assert!(output.stdout.contains("accepts either"), "{output:?}");

    // The environment's secret and previous secret.
    let output = run(chatbase()
        .args(["verify", "--signature", &signature_of("previous", BODY)])
        .env(SECRET_ENV_VAR, SECRET)
        .env("CHATBASE_WEBHOOK_PREVIOUS_SECRET", "previous")
        .write_stdin(BODY));
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("CHATBASE_WEBHOOK_PREVIOUS_SECRET"),
        "{output:?}"
    );
}

/// Each usual cause is named, exit 1, and neither the secret nor the
/// signature it would make is printed.
#[test]
fn diagnoses_the_usual_causes() {
    let expected = signature_of(SECRET, BODY);
    let sha256 = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(BODY);
        hex::encode(mac.finalize().into_bytes())
    };
    // What a framework that parses and pretty-prints hands on.
    let pretty = chatbase_cli::diagnose::Form::Pretty2.apply(BODY).unwrap();
    let padded = format!("{SECRET}\n");
    // (body, signature, secrets, what it says)
    let cases: Vec<(&[u8], String, Vec<&str>, &str)> = vec![
        (
            BODY,
            expected.clone(),
            vec![&padded],
            "it matches with --secret trimmed",
        ),
        (
            BODY,
            signature_of(&padded, BODY),
            vec![SECRET],
            "followed by a newline",
        ),
        (
            BODY,
            sha256,
            vec![SECRET],
            "HMAC-SHA256 of the body with --secret",
        ),
        (
            &pretty,
            expected.clone(),
            vec![SECRET],
            "it matches the same JSON compact (whitespace removed, key order kept), with --secret",
        ),
        (
            BODY,
            format!("sha1={expected}"),
            vec![SECRET],
            "starts with \"sha1=\"",
        ),
        (
            BODY,
            signature_of("another", BODY),
            vec![SECRET],
            "most likely the wrong secret",
        ),
        (BODY, "not-hex".to_owned(), vec![SECRET], "malformed"),
    ];
    for (body, signature, secrets, says) in cases {
        let output = verify(body, &signature, &secrets);
        assert_eq!(output.code, 1, "{says}: {output:?}");
        assert!(output.stdout.contains("does not verify"), "{output:?}");
        assert!(output.stdout.contains(says), "{says}: {output:?}");
        output.never_shows(SECRET);
        if signature != expected {
            output.never_shows(&expected);
        }
    }
}

/// With a secrets file: the body's chatbot's secrets verify; a signature
/// made with another chatbot's secret is named as such.
#[test]
fn secrets_file_and_another_chatbots_secret() {
    let dir = TempDir::new("verify-bots");
    let file = dir.file(
        "s.json",
        br#"{"bot_a": ["a-new", "a-old"], "bot_b": "b-secret"}"#,
    );
    let body = dir.file("body.json", BODY);
    let run_with = |signature: &str, extra: &[&str]| {
        let mut command = chatbase();
        command.args([
            "verify",
            "--body-file",
            arg(&body),
            "--signature",
            signature,
            "--secrets-file",
            arg(&file),
        ]);
        run(command.args(extra))
    };
    let output = run_with(&signature_of("a-old", BODY), &[]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("secret #2 of bot_a"), "{output:?}");

    let output = run_with(&signature_of("b-secret", BODY), &[]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stdout
            .contains("it matches the current secret of bot_b"),
        "{output:?}"
    );
    assert!(
        output.stdout.contains("another chatbot's secret"),
        "{output:?}"
    );
    output.never_shows("b-secret");

    let output = run_with(&signature_of("b-secret", BODY), &["--chatbot-id", "bot_b"]);
    assert_eq!(output.code, 0, "{output:?}");

    let output = run_with(&signature_of("a-new", BODY), &["--chatbot-id", "bot_z"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stdout
            .contains("has no secret for chatbot \"bot_z\""),
        "{output:?}"
    );
}
