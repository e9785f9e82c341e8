//! Without a usable secret the reference receivers do not start.

use chatbase_core::{
    PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR, SECRETS_ENV_VAR, SECRETS_FILE_ENV_VAR,
};
use harness::examples;
use tokio::process::Command;

use crate::support::{Reference, SECRET, run};

/// Runs `reference` with exactly these secret variables (the others, per
/// chatbot ones included, unset).
async fn start_with(reference: Reference, secrets: &[(&str, &str)]) -> crate::support::Output {
    let mut command = Command::new(examples::binary(reference.binary()));
    command
        .env_remove(SECRET_ENV_VAR)
        .env_remove(PREVIOUS_SECRET_ENV_VAR)
        .env_remove(SECRETS_ENV_VAR)
        .env_remove(SECRETS_FILE_ENV_VAR)
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(secrets.iter().copied());
    run(command).await
}

/// Unset, empty or padded with spaces: a non-zero exit, one line on standard
/// error naming the variable, nothing on standard output (it never listened).
/// A padded previous secret is refused the same way, naming its variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_receivers_refuse_to_start_without_a_usable_secret() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], SECRET_ENV_VAR),
        (&[(SECRET_ENV_VAR, "")], SECRET_ENV_VAR),
        (&[(SECRET_ENV_VAR, " padded ")], SECRET_ENV_VAR),
        (
            &[
                (SECRET_ENV_VAR, SECRET),
                (PREVIOUS_SECRET_ENV_VAR, "padded\n"),
            ],
            PREVIOUS_SECRET_ENV_VAR,
        ),
    ];
    for reference in Reference::BOTH {
        for (secrets, variable) in cases {
            let output = start_with(reference, secrets).await;
            let context = format!("{} with {secrets:?}: {output:?}", reference.binary());
            assert!(!output.status.success(), "{context}");
            assert!(
                output.status.code().is_some(),
                "killed by a signal: {context}"
            );
            let lines: Vec<&str> = output.stderr.lines().collect();
            let [line] = lines.as_slice() else {
                panic!("expected one line on standard error: {context}");
            };
            assert!(line.contains(variable), "{context}");
            assert!(line.starts_with(reference.binary()), "{context}");
            // It names the variable at fault, not the other one.
            if variable == SECRET_ENV_VAR {
                assert!(!line.contains(PREVIOUS_SECRET_ENV_VAR), "{context}");
            }
            assert!(output.stdout.is_empty(), "{context}");
            // Never the value: it is (or was meant to be) a secret.
            assert!(!output.stderr.contains(SECRET), "{context}");
            assert!(!output.stderr.contains("padded"), "{context}");
        }
    }
}
