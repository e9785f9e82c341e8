//! `cargo run -p harness --bin demo`: the README's first command.

use tokio::process::Command;

use crate::support::run;

/// It exits 0 and prints its five rows: the signed lead stored, then
/// processed once; the same delivery again answered 200 as a duplicate and not
/// processed again; the tampered and the unsigned ones refused with 401 before
/// anything; a lead whose CRM call fails once processed on its second attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_five_rows_and_exits_0() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demo"));
    command.env_remove("RUST_LOG");
    let output = run(command).await;
    assert!(output.status.success(), "{output:?}");
    let labels = [
        "signed with the secret",
        "the same delivery again",
        "tampered after signing",
        "no signature",
        "a lead whose CRM call fails once",
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
    let [signed, again, tampered, unsigned, flaky] = rows.as_slice() else {
        panic!("expected five rows: {}", output.stdout);
    };
    assert!(
        signed.contains("200 stored") && signed.ends_with("processed (attempt 1)"),
        "{signed}"
    );
    assert!(
        again.contains("200 duplicate (x-chatbase-duplicate)")
            && again.ends_with("processed (attempt 1)"),
        "{again}"
    );
    assert!(
        tampered.contains("401 signature mismatch") && tampered.ends_with("nothing"),
        "{tampered}"
    );
    assert!(
        unsigned.contains("401 missing") && unsigned.ends_with("nothing"),
        "{unsigned}"
    );
    assert!(
        flaky.contains("200 stored") && flaky.ends_with("attempt 1 failed, processed (attempt 2)"),
        "{flaky}"
    );
    assert!(!output.stdout.contains("UNEXPECTED"), "{}", output.stdout);
    assert!(
        output
            .stdout
            .contains("As expected: the signed lead was stored"),
        "{}",
        output.stdout
    );
    assert!(output.stderr.is_empty(), "{}", output.stderr);
}
