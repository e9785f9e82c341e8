//! `chatbase sign`: the header value for a body, as Node computes it.

use chatbase_core::{SECRET_ENV_VAR, Secret, sign};

use crate::support::{SECRET, TempDir, arg, chatbase, node_vectors, run, vector_secrets_file};

/// Every Node vector: the body on standard input or from a file, the secret
/// from a secrets file (so that NUL bytes fit).
#[test]
fn signs_every_node_vector() {
    let dir = TempDir::new("sign-vectors");
    let vectors = node_vectors();
    let secrets = vector_secrets_file(&dir, &vectors);
    for (n, vector) in vectors.iter().enumerate() {
        let id = format!("v{n}");
        let output = run(chatbase()
            .args(["sign", "--secrets-file", arg(&secrets), "--chatbot-id", &id])
            .write_stdin(vector.body.clone()));
        assert_eq!(output.code, 0, "{}: {output:?}", vector.name);
        assert_eq!(
            output.stdout,
            format!("{}\n", vector.signature),
            "{}",
            vector.name
        );

        if n % 10 == 0 {
            let body = dir.file("body", &vector.body);
            let output = run(chatbase().args([
                "sign",
                "--secrets-file",
                arg(&secrets),
                "--chatbot-id",
                &id,
                "--body-file",
                arg(&body),
                "--header",
            ]));
            assert_eq!(output.code, 0, "{output:?}");
            assert_eq!(
                output.stdout,
                format!("x-chatbase-signature: {}\n", vector.signature)
            );
        }
    }
}

/// The secret from `--secret`, the environment, or the secrets file's
/// chatbot named in the body; whitespace kept, with a warning.
#[test]
fn secret_sources() {
    let body = br#"{"eventType":"leads.submit","chatbotId":"bot_b","payload":{}}"#;
    let expect = |secret: &str| format!("{}\n", sign(&Secret::new_verbatim(secret).unwrap(), body));

    let output = run(chatbase()
        .args(["sign", "--secret", SECRET])
        .write_stdin(&body[..]));
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout, expect(SECRET));

    let output = run(chatbase()
        .arg("sign")
        .env(SECRET_ENV_VAR, SECRET)
        .write_stdin(&body[..]));
    assert_eq!(output.stdout, expect(SECRET));

    let dir = TempDir::new("sign-secrets");
    let file = dir.file("s.json", br#"{"bot_a": "sa", "bot_b": ["sb", "old"]}"#);
    let output = run(chatbase()
        .args(["sign", "--secrets-file", arg(&file)])
        .write_stdin(&body[..]));
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout, expect("sb"));

    let output = run(chatbase()
        .args(["sign", "--secret", "padded\n"])
        .write_stdin(&body[..]));
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout, expect("padded\n"));
    assert!(
        output.stderr.contains("starts or ends with whitespace"),
        "{output:?}"
    );
    assert!(!output.stderr.contains("padded\n"), "{output:?}");
}
