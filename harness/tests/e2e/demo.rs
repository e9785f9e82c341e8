//! `cargo run -p harness --bin demo`: the README's first command.

use tokio::process::Command;

use crate::support::run;

/// It exits 0 and prints its three rows: the signed request delivered, the
/// tampered and the unsigned ones refused with 401 before the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_three_rows_and_exits_0() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demo"));
    command.env_remove("RUST_LOG");
    let output = run(command).await;
    assert!(output.status.success(), "{output:?}");
    let labels = [
        "signed with the secret",
        "tampered after signing",
        "no signature",
    ];
    let rows: Vec<&str> = output
        .stdout
        .lines()
        .filter(|line| {
            labels
                .iter()
                .any(|label| line.trim_start().starts_with(label))
        })
        .collect();
    let [signed, tampered, unsigned] = rows.as_slice() else {
        panic!("expected three rows: {}", output.stdout);
    };
    assert!(
        signed.contains("200 OK") && signed.contains("leads.submit, conversation conv_"),
        "{signed}"
    );
    assert!(
        tampered.contains("401 signature mismatch") && tampered.ends_with("nothing"),
        "{tampered}"
    );
    assert!(
        unsigned.contains("401 missing") && unsigned.ends_with("nothing"),
        "{unsigned}"
    );
    assert!(!output.stdout.contains("UNEXPECTED"), "{}", output.stdout);
    assert!(
        output
            .stdout
            .contains("As expected: only the correctly signed request"),
        "{}",
        output.stdout
    );
    assert!(output.stderr.is_empty(), "{}", output.stderr);
}
