//! Operating a durable inbox ([`chatbase_inbox`]) from the command line:
//! what `chatbase inbox` is built on.
//!
//! - [`DbUrl`]: the database's URL, checked, and printed only with its
//!   password hidden;
//! - [`open`]: opens an inbox that exists, and never creates one (a mistyped
//!   path or database name is an error, not an empty inbox);
//! - [`ListedDelivery`] and [`StatsView`]: what is shown of a delivery and
//!   of the counts, never a body or a customer's data;
//! - [`OpenError::hint`] and [`inbox_error_hint`]: what to check when the
//!   database cannot be reached or refuses.
//!
//! ```no_run
//! use chatbase_cli::inbox::{self, DbUrl, ListedDelivery};
//! use chatbase_inbox::State;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = DbUrl::parse("postgres://inbox:password@db.internal/webhooks")?;
//! let inbox = inbox::open(&url).await?;
//! for record in inbox.list(State::Dead, 50).await? {
//!     println!("{}", serde_json::to_string(&ListedDelivery::from(&record))?);
//! }
//! # Ok(()) }
//! ```

mod db_url;
mod view;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use chatbase_inbox::{Inbox, InboxError};
use sqlx::Connection as _;

pub use db_url::{DbUrl, DbUrlError, StoreKind};
pub use view::{ListedDelivery, StatsView, age, printable, table_time};

/// The environment variable that names the inbox's database, as the
/// reference receivers read it.
pub const INBOX_ENV_VAR: &str = "CHATBASE_INBOX";

/// The inbox's table, which a database must hold to be an inbox.
pub const INBOX_TABLE: &str = "chatbase_inbox_deliveries";

/// How long connecting to the database may take before [`open`] gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the inbox at `url` for operating it.
///
/// Unlike [`Inbox::open`], it first checks that the database exists and holds
/// an inbox: a SQLite file that does not exist, or a database without the
/// inbox's table, is an error rather than a new, empty inbox. Then it opens
/// the inbox as a receiver would (which applies the inbox's migrations, if
/// this version has newer ones).
///
/// # Errors
///
/// [`OpenError`] if the database cannot be reached, holds no inbox, or the
/// inbox cannot be opened. Its text never holds the URL or its password.
pub async fn open(url: &DbUrl) -> Result<Inbox, OpenError> {
    let checked = tokio::time::timeout(CONNECT_TIMEOUT, ensure_inbox(url)).await;
    match checked {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error),
        Err(_) => return Err(OpenError::TimedOut),
    }
    Inbox::builder(url.expose())
        .max_connections(2)
        .connect_timeout(CONNECT_TIMEOUT)
        .open()
        .await
        .map_err(OpenError::Inbox)
}

/// Checks that the database at `url` exists and holds the inbox's table,
/// without creating anything.
async fn ensure_inbox(url: &DbUrl) -> Result<(), OpenError> {
    let connect = |source| OpenError::Database {
        what: "connect to the database",
        source,
    };
    let query = |source| OpenError::Database {
        what: "look for the inbox's table",
        source,
    };
    let exists: bool = match url.kind() {
        StoreKind::Sqlite => {
            if let Some(path) = url.sqlite_file()
                && !path.exists()
            {
                return Err(OpenError::NoSuchFile {
                    path: path.to_path_buf(),
                });
            }
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose())
                .map_err(connect)?
                .create_if_missing(false);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .map_err(connect)?;
            let exists = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)",
            )
            .bind(INBOX_TABLE)
            .fetch_one(&mut conn)
            .await
            .map_err(query)?;
            let _ = conn.close().await;
            exists
        }
        StoreKind::Postgres => {
            let options =
                sqlx::postgres::PgConnectOptions::from_str(url.expose()).map_err(connect)?;
            let mut conn = sqlx::PgConnection::connect_with(&options)
                .await
                .map_err(connect)?;
            // Resolved through the search path, as the inbox's own statements are.
            let exists = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(INBOX_TABLE)
                .fetch_one(&mut conn)
                .await
                .map_err(query)?;
            let _ = conn.close().await;
            exists
        }
    };
    if exists {
        Ok(())
    } else {
        Err(OpenError::NotAnInbox)
    }
}

/// Why [`open`] failed. The text names what failed in fixed words (with the
/// database's error code, and the operating system's message for an I/O
/// error); it never holds the URL, its password, or a database's message.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The SQLite file does not exist.
    NoSuchFile {
        /// The file the URL names.
        path: PathBuf,
    },
    /// The database exists but holds no inbox: no receiver opened it yet, or
    /// it is another database.
    NotAnInbox,
    /// The database could not be reached or queried.
    Database {
        /// What failed, in fixed words.
        what: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The database did not answer within [`CONNECT_TIMEOUT`].
    TimedOut,
    /// The inbox could not be opened.
    Inbox(InboxError),
}

impl OpenError {
    /// What to check, when the failure fits a usual cause.
    pub fn hint(&self, url: &DbUrl) -> Option<String> {
        match self {
            Self::NoSuchFile { .. } => Some(
                "check the path: sqlite://data/inbox.db is relative to the current directory, \
                 sqlite:///var/lib/inbox.db is absolute"
                    .to_owned(),
            ),
            Self::NotAnInbox => Some(format!(
                "is --db the URL the receivers use ({INBOX_ENV_VAR})? The inbox's table is \
                 created when a receiver first opens it"
            )),
            Self::Database { source, .. } => sqlx_hint(source, url),
            Self::TimedOut => Some(unreachable_hint(url)),
            Self::Inbox(error) => inbox_error_hint(error, url),
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchFile { path } => {
                write!(f, "no inbox: the file {} does not exist", path.display())
            }
            Self::NotAnInbox => write!(
                f,
                "the database holds no inbox (it has no {INBOX_TABLE} table)"
            ),
            Self::Database { what, source } => {
                write!(f, "cannot {what}: {}", describe(source))?;
                if let Some(code) = database_code(source) {
                    write!(f, " (code {code})")?;
                }
                Ok(())
            }
            Self::TimedOut => write!(
                f,
                "the database did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
            Self::Inbox(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Database { source, .. } => Some(source),
            Self::Inbox(error) => Some(error),
            _ => None,
        }
    }
}

/// What to check when an inbox operation failed, when it fits a usual cause.
pub fn inbox_error_hint(error: &InboxError, url: &DbUrl) -> Option<String> {
    match error {
        InboxError::Store { source, .. } => sqlx_hint(source, url),
        InboxError::Migrate { source } => Some(match source.as_ref() {
            sqlx::migrate::MigrateError::VersionMissing(_) => {
                "a newer chatbase-inbox migrated this database: use a chatbase as recent as the \
                 receivers"
                    .to_owned()
            }
            sqlx::migrate::MigrateError::Execute(error)
            | sqlx::migrate::MigrateError::ExecuteMigration(error, _) => sqlx_hint(error, url)
                .unwrap_or_else(|| {
                    "opening an inbox applies its migrations: the database user needs the \
                     right to alter the inbox's table"
                        .to_owned()
                }),
            _ => "is --db the URL the receivers use?".to_owned(),
        }),
        InboxError::Timeout => Some("the database did not answer in time: try again".to_owned()),
        _ => None,
    }
}

fn sqlx_hint(error: &sqlx::Error, url: &DbUrl) -> Option<String> {
    match error {
        sqlx::Error::Io(io) => Some(match url.kind() {
            StoreKind::Postgres => format!("{} ({io})", unreachable_hint(url)),
            _ => format!("check the file and its directory's permissions ({io})"),
        }),
        sqlx::Error::PoolTimedOut => Some(unreachable_hint(url)),
        sqlx::Error::Tls(_) => Some(
            "TLS to PostgreSQL failed: check sslmode in the URL, and the server's certificate"
                .to_owned(),
        ),
        sqlx::Error::Database(_) => {
            let code = database_code(error)?;
            let hint = match (url.kind(), code.as_str()) {
                (StoreKind::Postgres, "28P01" | "28000") => {
                    "authentication failed: check the user name and password in --db"
                }
                (StoreKind::Postgres, "3D000") => {
                    "no such database on that server: check the database name in --db"
                }
                (StoreKind::Postgres, "42501") => {
                    "permission denied: the database user needs rights on the inbox's table"
                }
                (StoreKind::Postgres, "57P03") => "the server is starting up or shutting down",
                (StoreKind::Sqlite, "26") => {
                    "the file is not a SQLite database: is --db the receivers' inbox file?"
                }
                (StoreKind::Sqlite, "14") => "cannot open the file: check its permissions",
                (StoreKind::Sqlite, "8" | "1032") => {
                    "the file is read-only: operating the inbox writes to it"
                }
                (StoreKind::Sqlite, "5" | "517") => {
                    "another process holds the database's write lock: try again"
                }
                _ => return None,
            };
            Some(hint.to_owned())
        }
        _ => None,
    }
}

fn unreachable_hint(url: &DbUrl) -> String {
    match url.host_and_port() {
        Some(at) => format!("is PostgreSQL running at {at}, and reachable from here?"),
        None => "is the database running, and reachable from here?".to_owned(),
    }
}

/// The database's error code: SQLSTATE on PostgreSQL, the extended result
/// code on SQLite.
fn database_code(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// A few fixed words about a driver error, never its message (which may quote
/// values).
fn describe(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Configuration(_) => "invalid configuration",
        sqlx::Error::Database(_) => "the database refused it",
        sqlx::Error::Io(_) => "I/O error",
        sqlx::Error::Tls(_) => "TLS error",
        sqlx::Error::Protocol(_) => "protocol error",
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection",
        _ => "driver error",
    }
}
