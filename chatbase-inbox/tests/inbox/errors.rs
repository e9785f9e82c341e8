//! Failures: a store that cannot write answers an error (never a hang), and
//! nothing half-written is left behind; errors show no secrets or customer data.

use std::time::Duration;

use chatbase_inbox::{Inbox, InboxError};

use crate::support::{Kind, TestDb, lead, store_tests, within};

store_tests!(accept_after_close_is_an_error);

const EMAIL: &str = "linus@example.com";

async fn accept_after_close_is_an_error(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let inbox = db.open().await;
    inbox.close().await;
    let error = within(
        Duration::from_secs(20),
        "accept on a closed inbox answers",
        inbox.accept(&lead("bot", "c", EMAIL, "+1")),
    )
    .await
    .unwrap_err();
    assert!(!error.to_string().contains(EMAIL), "{error}");
    assert!(error.retry_after() >= 1);
}

#[tokio::test]
async fn an_unknown_url_is_refused_without_showing_it() {
    let error = Inbox::open("mysql://root:hunter2@db/inbox")
        .await
        .unwrap_err();
    assert!(matches!(error, InboxError::InvalidUrl { .. }), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
}

#[tokio::test]
async fn key_retention_shorter_than_body_retention_is_refused() {
    let db = TestDb::new(Kind::Sqlite).await.unwrap();
    let error = db
        .builder()
        .body_retention(Duration::from_secs(10))
        .key_retention(Duration::from_secs(5))
        .open()
        .await
        .unwrap_err();
    assert!(
        matches!(error, InboxError::InvalidConfig { .. }),
        "{error:?}"
    );
}

/// Another process holds SQLite's write lock: the write fails after the busy
/// timeout with an error (a 503 for the sender), and once the lock is gone the
/// same delivery is stored, so the failed attempt left nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_that_cannot_get_the_lock_fails_and_leaves_nothing() {
    use sqlx::Connection as _;

    let db = TestDb::new(Kind::Sqlite).await.unwrap();
    let inbox = db
        .builder()
        .sqlite_busy_timeout(Duration::from_millis(200))
        .open()
        .await
        .unwrap();
    let event = lead("bot_1", "conv_locked", EMAIL, "+15550100");

    let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let error = within(
        Duration::from_secs(20),
        "a blocked write answers",
        inbox.accept(&event),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, InboxError::Store { .. }), "{error:?}");
    assert_eq!(
        error.database_code().as_deref(),
        Some("5"),
        "SQLITE_BUSY: {error}"
    );
    assert!(!error.to_string().contains(EMAIL), "{error}");
    assert!(error.retry_after() >= 1);
    assert_eq!(inbox.commit_stats().failed, 1);
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();

    assert!(!inbox.accept(&event).await.unwrap().is_duplicate());
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
}

/// The path of the SQLite file is taken by a directory: opening fails with an
/// error, not a panic.
#[tokio::test]
async fn sqlite_path_that_cannot_be_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be.
    let path = dir.path().join("inbox.db");
    std::fs::create_dir(&path).unwrap();
    let error = within(
        Duration::from_secs(20),
        "opening answers",
        Inbox::open(&format!("sqlite://{}", path.display())),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, InboxError::Store { .. }), "{error:?}");
}

#[cfg(feature = "postgres")]
mod postgres_only {
    use super::*;
    use crate::support::{postgres_base_url, unique_lead};

    /// Nothing listens on the port: opening fails fast with an error that does
    /// not show the password.
    #[tokio::test]
    async fn closed_port_is_an_error_not_a_hang() {
        let error = within(
            Duration::from_secs(20),
            "connecting to a closed port answers",
            Inbox::builder("postgres://inbox:s3cret-pw@127.0.0.1:1/inbox")
                .connect_timeout(Duration::from_secs(2))
                .open(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, InboxError::Store { .. }), "{error:?}");
        assert!(!error.to_string().contains("s3cret-pw"), "{error}");
        assert!(!format!("{error:?}").contains("s3cret-pw"), "{error:?}");
    }

    /// The table is locked by another session: the write times out with an
    /// error, and nothing of it is committed once the lock goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn write_that_times_out_fails_and_leaves_nothing() {
        use sqlx::Connection as _;
        if postgres_base_url().is_none() {
            return;
        }
        let db = TestDb::new(Kind::Postgres).await.unwrap();
        let inbox = db
            .builder()
            .write_timeout(Duration::from_millis(500))
            .open()
            .await
            .unwrap();
        let event = unique_lead();

        let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut other).await.unwrap();
        sqlx::query("LOCK TABLE chatbase_inbox_deliveries IN ACCESS EXCLUSIVE MODE")
            .execute(&mut other)
            .await
            .unwrap();
        let error = within(
            Duration::from_secs(20),
            "a blocked write answers",
            inbox.accept(&event),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, InboxError::Timeout), "{error:?}");
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        other.close().await.unwrap();

        assert!(!inbox.accept(&event).await.unwrap().is_duplicate());
        assert_eq!(inbox.stats().await.unwrap().pending, 1);
    }
}
