//! `chatbase inbox list|stats|retry|purge` against real inboxes: deliveries
//! made through the library (accepted, then failed or processed by a worker),
//! then operated through the binary. Each test runs once per store:
//! `sqlite::name` and `postgres::name` (skipped with a notice without
//! `CHATBASE_TEST_POSTGRES_URL`, failed under `CI=true`).

use std::collections::BTreeSet;

use chatbase_inbox::State;
use serde_json::Value;

use crate::support::{
    CUSTOMER_EMAIL, CUSTOMER_NAME, CUSTOMER_PHONE, HANDLER_ERROR, INBOX_CHATBOT, Kind, Output,
    TempDir, TestInbox, chatbase, closed_url, run, store_tests, with_database, with_password,
};

store_tests!(
    list_shows_metadata_and_never_customer_data,
    list_json_is_for_scripts,
    list_limit_says_there_are_more,
    stats_counts_per_state,
    retry_requeues_named_dead_deliveries,
    retry_all_dead,
    purge_removes_finished_deliveries,
    purge_asks_first,
    purge_confirms_on_a_terminal,
    the_url_may_come_from_the_environment,
    a_database_without_an_inbox_is_refused,
);

/// `chatbase inbox <arguments> --db <inbox>`.
fn inbox_cmd(db: &TestInbox, arguments: &[&str]) -> Output {
    run(chatbase()
        .arg("inbox")
        .args(arguments)
        .args(["--db", &db.url]))
}

/// Asserts that nothing of the customers' data was printed.
fn no_customer_data(output: &Output) {
    for private in [
        CUSTOMER_EMAIL,
        CUSTOMER_PHONE,
        CUSTOMER_NAME,
        "customerEmail",
    ] {
        output.never_shows(private);
    }
}

/// The ids of a `--json` list.
fn json_ids(output: &Output) -> BTreeSet<i64> {
    let listed: Vec<Value> = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("not a JSON array ({error}): {output:?}"));
    listed
        .iter()
        .map(|delivery| delivery["id"].as_i64().unwrap())
        .collect()
}

fn list_shows_metadata_and_never_customer_data(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(2);
    db.processed(1);
    db.accept(1);

    let output = inbox_cmd(&db, &["list"]);
    assert_eq!(output.code, 0, "{output:?}");
    no_customer_data(&output);
    let mut lines = output.stdout.lines();
    let header = lines.next().unwrap();
    for column in [
        "ID",
        "STATE",
        "ATTEMPTS",
        "CHATBOT",
        "EVENT",
        "RECEIVED (UTC)",
        "LAST ERROR",
    ] {
        assert!(header.contains(column), "{column}: {output:?}");
    }
    // Dead deliveries only, by default: one line each, oldest first.
    let rows: Vec<Vec<&str>> = lines
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{output:?}");
    for (row, id) in rows.iter().zip(&dead) {
        let id = id.to_string();
        assert_eq!(
            row[..5],
            [id.as_str(), "dead", "1", INBOX_CHATBOT, "leads.submit"],
            "{output:?}"
        );
        assert!(row[5].ends_with('Z'), "{output:?}");
        assert_eq!(row[6..].join(" "), HANDLER_ERROR, "{output:?}");
    }
    // Into a pipe: no colour.
    assert!(!output.stdout.contains('\u{1b}'), "{output:?}");

    // Colour on request: the state in the state's colour.
    let coloured = run(chatbase().args(["inbox", "list", "--color", "always", "--db", &db.url]));
    assert_eq!(coloured.code, 0, "{coloured:?}");
    assert!(coloured.stdout.contains('\u{1b}'), "{coloured:?}");

    for (state, count) in [("pending", 1), ("processed", 1), ("processing", 0)] {
        let output = inbox_cmd(&db, &["list", "--state", state]);
        assert_eq!(output.code, 0, "{output:?}");
        no_customer_data(&output);
        if count == 0 {
            assert_eq!(output.stdout, format!("no {state} deliveries\n"));
        } else {
            assert_eq!(output.stdout.lines().count(), 1 + count, "{output:?}");
            assert!(output.stdout.contains(state), "{output:?}");
        }
    }
}

fn list_json_is_for_scripts(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(2);
    let pending = db.accept(1);

    let output = inbox_cmd(&db, &["list", "--json"]);
    assert_eq!(output.code, 0, "{output:?}");
    no_customer_data(&output);
    assert_eq!(json_ids(&output), dead.iter().copied().collect());
    let listed: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    for delivery in &listed {
        let object = delivery.as_object().unwrap();
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "id",
                "state",
                "attempts",
                "chatbot_id",
                "event_type",
                "received_at",
                "last_error"
            ]),
            "only these columns: {output:?}"
        );
        assert_eq!(delivery["state"], "dead");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["chatbot_id"], INBOX_CHATBOT);
        assert_eq!(delivery["event_type"], "leads.submit");
        assert_eq!(delivery["last_error"], HANDLER_ERROR);
        let received = delivery["received_at"].as_str().unwrap();
        humantime::parse_rfc3339(received).unwrap();
    }

    let output = inbox_cmd(&db, &["list", "--state", "pending", "--json"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(json_ids(&output), pending.iter().copied().collect());
    let listed: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(listed[0]["last_error"], Value::Null);
    assert_eq!(listed[0]["attempts"], 0);

    let output = inbox_cmd(&db, &["list", "--state", "processing", "--json"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout.trim(), "[]");
}

fn list_limit_says_there_are_more(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(3);
    let output = inbox_cmd(&db, &["list", "--limit", "2", "--json"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(json_ids(&output), dead[..2].iter().copied().collect());
    assert!(
        output
            .stderr
            .contains("the oldest 2 of 3 dead deliveries; --limit N for more"),
        "{output:?}"
    );
    let output = inbox_cmd(&db, &["list", "--limit", "3"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(!output.stderr.contains("--limit"), "{output:?}");
    let output = inbox_cmd(&db, &["list", "--limit", "0"]);
    assert_eq!(output.code, 2, "{output:?}");
}

fn stats_counts_per_state(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let empty = inbox_cmd(&db, &["stats", "--json"]);
    assert_eq!(empty.code, 0, "{empty:?}");
    let stats: Value = serde_json::from_str(&empty.stdout).unwrap();
    assert_eq!(stats["dead"], 0);
    assert_eq!(stats["oldest_pending_age_seconds"], Value::Null);

    db.dead(2);
    db.processed(1);
    db.accept(3);
    let output = inbox_cmd(&db, &["stats", "--json"]);
    assert_eq!(output.code, 0, "{output:?}");
    let stats: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(stats["pending"], 3, "{output:?}");
    assert_eq!(stats["processing"], 0, "{output:?}");
    assert_eq!(stats["processed"], 1, "{output:?}");
    assert_eq!(stats["dead"], 2, "{output:?}");
    assert!(stats["oldest_pending_age_seconds"].is_u64(), "{output:?}");

    let output = inbox_cmd(&db, &["stats"]);
    assert_eq!(output.code, 0, "{output:?}");
    let counts: Vec<Vec<&str>> = output
        .stdout
        .lines()
        .take(4)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        counts,
        [
            ["pending", "3"],
            ["processing", "0"],
            ["processed", "1"],
            ["dead", "2"]
        ],
        "{output:?}"
    );
    assert!(
        output
            .stdout
            .contains("the oldest unfinished delivery has waited"),
        "{output:?}"
    );
    assert!(output.stdout.contains("chatbase inbox retry"), "{output:?}");
}

fn retry_requeues_named_dead_deliveries(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(3);
    let processed = db.processed(1);
    let (first, second) = (dead[0], dead[1]);

    let output = inbox_cmd(&db, &["retry", &first.to_string()]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output
            .stdout
            .contains(&format!("requeued 1 dead delivery ({first})")),
        "{output:?}"
    );
    let record = db.get(first).unwrap();
    assert_eq!(record.state, State::Pending);
    assert_eq!(record.attempts, 0);
    assert_eq!(db.get(second).unwrap().state, State::Dead);

    // The same again, another state, one that does not exist, and one that
    // is dead: the dead one is requeued, the rest are reported, exit 1.
    let missing = 987_654_321_i64;
    let output = inbox_cmd(
        &db,
        &[
            "retry",
            &first.to_string(),
            &processed[0].to_string(),
            &missing.to_string(),
            &second.to_string(),
            &second.to_string(),
        ],
    );
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains(&format!(
            "delivery {first} is pending, not dead: not requeued"
        )),
        "{output:?}"
    );
    assert!(
        output.stderr.contains(&format!(
            "delivery {} is processed, not dead: not requeued",
            processed[0]
        )),
        "{output:?}"
    );
    assert!(
        output
            .stderr
            .contains(&format!("no delivery {missing} in the inbox")),
        "{output:?}"
    );
    assert!(
        output
            .stdout
            .contains(&format!("requeued 1 dead delivery ({second})")),
        "{output:?}"
    );
    assert!(
        output.stdout.contains("not requeued: 3 of 4 deliveries"),
        "{output:?}"
    );
    assert_eq!(db.get(second).unwrap().state, State::Pending);
    assert_eq!(db.get(dead[2]).unwrap().state, State::Dead);
    no_customer_data(&output);

    // Usage errors: no id, an id that is not a number, both ids and --all-dead.
    for arguments in [
        &["retry"][..],
        &["retry", "seven"],
        &["retry", "7", "--all-dead"],
    ] {
        let output = inbox_cmd(&db, arguments);
        assert_eq!(output.code, 2, "{arguments:?}: {output:?}");
        assert!(output.stderr.contains("error:"), "{output:?}");
    }
}

fn retry_all_dead(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(2);
    let pending = db.accept(1);
    let output = inbox_cmd(&db, &["retry", "--all-dead"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("requeued 2 dead deliveries"),
        "{output:?}"
    );
    let stats = db.stats();
    assert_eq!((stats.dead, stats.pending), (0, 3));
    for id in dead.iter().chain(&pending) {
        assert_eq!(db.get(*id).unwrap().state, State::Pending);
    }
    let output = inbox_cmd(&db, &["retry", "--all-dead"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout, "no dead deliveries to requeue\n");
}

fn purge_removes_finished_deliveries(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(2);
    let processed = db.processed(1);
    let pending = db.accept(1);

    // Nothing finished an hour ago.
    let output = inbox_cmd(
        &db,
        &["purge", "--state", "dead", "--older-than", "1h", "--yes"],
    );
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        output.stdout,
        "removed 0 dead deliveries that finished more than 1h ago\n"
    );
    assert_eq!(db.stats().dead, 2);

    // Make sure the database's clock has moved past their finish.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let output = inbox_cmd(
        &db,
        &["purge", "--state", "dead", "--older-than", "0s", "--yes"],
    );
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        output.stdout,
        "removed 2 dead deliveries that finished more than 0s ago\n"
    );
    for id in &dead {
        assert!(db.get(*id).is_none(), "{id} is still there");
    }
    assert!(db.get(processed[0]).is_some());
    assert!(db.get(pending[0]).is_some());
    let output = inbox_cmd(&db, &["list"]);
    assert_eq!(output.stdout, "no dead deliveries\n", "{output:?}");

    let output = inbox_cmd(
        &db,
        &["purge", "--state", "processed", "--older-than", "0s", "-y"],
    );
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        output.stdout,
        "removed 1 processed delivery that finished more than 0s ago\n"
    );
    assert!(db.get(pending[0]).is_some());

    // Usage errors: pending deliveries are not purged; durations are checked.
    for arguments in [
        &["purge", "--state", "pending", "--older-than", "1d", "--yes"][..],
        &["purge", "--state", "dead", "--older-than", "7x", "--yes"],
        &["purge", "--state", "dead", "--yes"],
    ] {
        let output = inbox_cmd(&db, arguments);
        assert_eq!(output.code, 2, "{arguments:?}: {output:?}");
    }
    assert!(db.get(pending[0]).is_some());
}

fn purge_asks_first(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Standard input is not a terminal: refused without --yes, before
    // anything is opened, even with "y" piped in.
    for stdin in ["", "y\n"] {
        let output = run(chatbase()
            .args(["inbox", "purge", "--state", "dead", "--older-than", "0s"])
            .args(["--db", &db.url])
            .write_stdin(stdin));
        assert_eq!(output.code, 2, "{output:?}");
        assert!(output.stderr.contains("--yes"), "{output:?}");
        assert!(
            output.stderr.contains("Usage: chatbase inbox purge"),
            "{output:?}"
        );
    }
    assert!(db.get(dead[0]).is_some());
    // Even with an unreachable database: the usage error comes first.
    let (closed, _) = closed_url();
    let output = run(chatbase().args([
        "inbox",
        "purge",
        "--state",
        "dead",
        "--older-than",
        "0s",
        "--db",
        &closed.replace("http://", "postgres://u:pw@"),
    ]));
    assert_eq!(output.code, 2, "{output:?}");
}

/// On a terminal (`script` gives the command one), `purge` asks, and only
/// `y` or `yes` deletes.
fn purge_confirms_on_a_terminal(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    if terminal().is_none() {
        return;
    }
    let dead = db.dead(1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let line = format!(
        "'{}' inbox purge --state dead --older-than 0s --db '{}'",
        env!("CARGO_BIN_EXE_chatbase"),
        db.url
    );
    let purge = |answer: &str| {
        run(terminal()
            .unwrap()
            .args(["-qec", &line, "/dev/null"])
            .write_stdin(answer))
    };
    for answer in ["n\n", "\n", "what\n"] {
        let output = purge(answer);
        assert_eq!(output.code, 1, "{answer:?}: {output:?}");
        assert!(
            output.stdout.contains("Delete the dead deliveries of ")
                && output
                    .stdout
                    .contains("that finished more than 0s ago (1 dead in all)?"),
            "{output:?}"
        );
        assert!(
            output.stdout.contains("aborted: nothing was removed"),
            "{output:?}"
        );
        assert!(db.get(dead[0]).is_some());
    }
    let output = purge("YES\n");
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output
            .stdout
            .contains("removed 1 dead delivery that finished more than 0s ago"),
        "{output:?}"
    );
    assert!(db.get(dead[0]).is_none());
}

/// `script`, which runs a command on a pseudo-terminal (util-linux, in
/// every Debian); `None`, with a notice, where it is missing, and a failure
/// then under `CI=true`.
fn terminal() -> Option<assert_cmd::Command> {
    let found = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "`script` (util-linux) is missing and CI=true: the terminal tests must run"
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: `script` (util-linux) is missing: purge's confirmation on a terminal was \
             not tested"
        );
        return None;
    }
    let mut command = assert_cmd::Command::new("script");
    command
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove(chatbase_cli::inbox::INBOX_ENV_VAR)
        .timeout(crate::support::PATIENCE);
    Some(command)
}

fn the_url_may_come_from_the_environment(kind: Kind) {
    let Some(db) = TestInbox::new(kind) else {
        return;
    };
    let dead = db.dead(1);
    let output = run(chatbase()
        .args(["inbox", "list", "--json"])
        .env(chatbase_cli::inbox::INBOX_ENV_VAR, &db.url));
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(json_ids(&output), dead.iter().copied().collect());
    // --db wins over the variable.
    let output = run(chatbase()
        .args(["inbox", "list", "--json", "--db", &db.url])
        .env(
            chatbase_cli::inbox::INBOX_ENV_VAR,
            "sqlite:///nonexistent/inbox.db",
        ));
    assert_eq!(output.code, 0, "{output:?}");
}

#[test]
fn help_names_the_variable_never_its_value() {
    for command in ["list", "stats", "retry", "purge"] {
        let output = run(chatbase().args(["inbox", command, "--help"]).env(
            chatbase_cli::inbox::INBOX_ENV_VAR,
            "postgres://inbox:hunter2-from-env@db/webhooks",
        ));
        assert_eq!(output.code, 0, "{output:?}");
        assert!(
            output.stdout.contains("[env: CHATBASE_INBOX]"),
            "{output:?}"
        );
        assert!(output.stdout.contains("Examples:"), "{output:?}");
        assert!(
            output.stdout.contains(&format!("chatbase inbox {command}")),
            "{output:?}"
        );
        output.never_shows("hunter2-from-env");
        output.never_shows("db/webhooks");
    }
}

fn a_database_without_an_inbox_is_refused(kind: Kind) {
    // A database no receiver opened an inbox in.
    let Some(db) = TestInbox::without_inbox(kind) else {
        return;
    };
    let dir = TempDir::new("not-an-inbox");
    let url = match kind {
        Kind::Sqlite => {
            // An empty file is an empty SQLite database.
            let path = dir.file("empty.db", "");
            format!("sqlite://{}", path.display())
        }
        Kind::Postgres => db.url.clone(),
    };
    for arguments in [
        &["list"][..],
        &["stats"],
        &["retry", "--all-dead"],
        &["purge", "--state", "dead", "--older-than", "0s", "--yes"],
    ] {
        let output = run(chatbase().arg("inbox").args(arguments).args(["--db", &url]));
        assert_eq!(output.code, 1, "{arguments:?}: {output:?}");
        assert!(
            output.stderr.contains(
                "the database holds no inbox (it has no chatbase_inbox_deliveries table)"
            ),
            "{output:?}"
        );
        assert!(output.stderr.contains("hint:"), "{output:?}");
    }
    // And nothing was created there.
    if kind == Kind::Sqlite {
        assert_eq!(std::fs::metadata(dir.join("empty.db")).unwrap().len(), 0);
    }
}

// ---------------------------------------------------------------------------
// Errors that need no inbox
// ---------------------------------------------------------------------------

#[test]
fn a_missing_db_is_a_usage_error() {
    for arguments in [
        &["inbox", "list"][..],
        &["inbox", "stats"],
        &["inbox", "retry", "--all-dead"],
        &[
            "inbox",
            "purge",
            "--state",
            "dead",
            "--older-than",
            "7d",
            "--yes",
        ],
    ] {
        let output = run(chatbase().args(arguments));
        assert_eq!(output.code, 2, "{arguments:?}: {output:?}");
        assert!(output.stderr.contains("--db <URL>"), "{output:?}");
    }
    let output = run(chatbase().arg("inbox"));
    assert_eq!(output.code, 2, "{output:?}");
}

#[test]
fn an_unreachable_database_fails_without_showing_the_password() {
    let (closed, port) = closed_url();
    let url = closed
        .replace("http://", "postgres://inbox:hunter2-secret@")
        .replace("/webhook", "/webhooks");
    let output = run(chatbase().args(["inbox", "list", "--db", &url]));
    assert_eq!(output.code, 1, "{output:?}");
    output.never_shows("hunter2-secret");
    assert!(
        output.stderr.contains(&format!(
            "error: postgres://inbox:***@127.0.0.1:{port}/webhooks: cannot connect to the database"
        )),
        "{output:?}"
    );
    assert!(
        output.stderr.contains(&format!(
            "is PostgreSQL running at 127.0.0.1:{port}, and reachable from here?"
        )),
        "{output:?}"
    );
    // From the environment too, and in a password parameter.
    let url = closed.replace("http://", "postgres://") + "?password=hunter2-secret";
    let output = run(chatbase()
        .args(["inbox", "stats"])
        .env(chatbase_cli::inbox::INBOX_ENV_VAR, &url));
    assert_eq!(output.code, 1, "{output:?}");
    output.never_shows("hunter2-secret");
    assert!(output.stderr.contains("password=***"), "{output:?}");
}

#[test]
fn a_url_that_is_not_an_inbox_url_is_a_usage_error() {
    for url in [
        "mysql://inbox:hunter2-secret@db/webhooks",
        "postgres://inbox:hunter2-secret@db:port/webhooks",
        "data/inbox.db",
        "sqlite::memory:",
    ] {
        let output = run(chatbase().args(["inbox", "list", "--db", url]));
        assert_eq!(output.code, 2, "{url}: {output:?}");
        output.never_shows("hunter2-secret");
        assert!(output.stderr.contains("--db"), "{output:?}");
        assert!(output.stderr.contains("hint:"), "{output:?}");
    }
}

#[test]
fn a_sqlite_file_that_does_not_exist_is_not_created() {
    let dir = TempDir::new("no-inbox");
    let path = dir.join("typo").join("inbox.db");
    let url = format!("sqlite://{}", path.display());
    let output = run(chatbase().args(["inbox", "list", "--db", &url]));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stderr
            .contains(&format!("the file {} does not exist", path.display())),
        "{output:?}"
    );
    assert!(!path.exists());
    assert!(!dir.join("typo").exists());

    // A file that is not a SQLite database.
    let text = dir.file(
        "notes.txt",
        "not a database, just some text that is long enough",
    );
    let output = run(chatbase().args([
        "inbox",
        "list",
        "--db",
        &format!("sqlite://{}", text.display()),
    ]));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains("the file is not a SQLite database"),
        "{output:?}"
    );
}

#[test]
fn a_postgres_database_that_does_not_exist_is_named_in_the_hint() {
    let Some(base) = crate::support::postgres_base_url() else {
        return;
    };
    let url = with_password(
        &with_database(&base, "no_such_inbox_database"),
        "hunter2-secret",
    );
    let output = run(chatbase().args(["inbox", "stats", "--db", &url]));
    assert_eq!(output.code, 1, "{output:?}");
    output.never_shows("hunter2-secret");
    assert!(output.stderr.contains("(code 3D000)"), "{output:?}");
    assert!(
        output.stderr.contains("no such database on that server"),
        "{output:?}"
    );
}
