//! [`InboxError`]: what can go wrong when opening, writing to or operating the inbox.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// An inbox operation failed: the store could not be opened, reached or written.
///
/// `Display` names what failed in fixed words, with the database's error code
/// (SQLSTATE on PostgreSQL, the extended result code on SQLite) when there is
/// one. It never contains the database URL (it may hold a password), a body or
/// a customer's data. [`source`](std::error::Error::source) keeps the driver's
/// error for debugging; a database's own message may quote values, so log it
/// with care.
///
/// When [`Inbox::accept`](crate::Inbox::accept) fails, nothing of the delivery
/// was committed (or, if the connection broke during the commit itself, the
/// delivery may be stored and a retry is answered as a duplicate). An HTTP
/// adapter answers `503 Service Unavailable` with `Retry-After:`
/// [`retry_after`](Self::retry_after) seconds, so the sender tries again later.
#[derive(Clone)]
#[non_exhaustive]
pub enum InboxError {
    /// The URL is not `sqlite:...`, `postgres://...` or `postgresql://...`, or
    /// names a store whose cargo feature is not enabled, or does not parse.
    InvalidUrl {
        /// Why, in fixed words.
        reason: &'static str,
    },
    /// An option given to the builder makes no sense (for example a key
    /// retention shorter than the body retention).
    InvalidConfig {
        /// Why, in fixed words.
        reason: &'static str,
    },
    /// The inbox's migrations could not be applied.
    Migrate {
        /// The migrator's error.
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// The store refused or failed the operation, or could not be reached.
    Store {
        /// What failed, in fixed words.
        what: &'static str,
        /// The driver's error.
        source: Arc<sqlx::Error>,
    },
    /// The write did not complete within the inbox's write timeout. Nothing
    /// was committed unless the timeout struck during the commit itself.
    Timeout,
    /// The inbox was closed ([`Inbox::close`](crate::Inbox::close)).
    Closed,
}

impl InboxError {
    pub(crate) fn store(what: &'static str, source: sqlx::Error) -> Self {
        Self::Store {
            what,
            source: Arc::new(source),
        }
    }

    /// How many seconds a sender should wait before trying again: the value of
    /// the `Retry-After` header of the `503` an HTTP adapter answers with.
    ///
    /// A timeout or an unreachable store is usually brief (a restart, a
    /// failover), so the hint is short; a configuration error will not go away
    /// by itself, so the hint is longer.
    #[must_use]
    pub fn retry_after(&self) -> u64 {
        match self {
            Self::Timeout | Self::Store { .. } => 5,
            Self::Closed => 10,
            Self::InvalidUrl { .. } | Self::InvalidConfig { .. } | Self::Migrate { .. } => 60,
        }
    }

    /// The retry hint as a [`Duration`].
    #[must_use]
    pub fn retry_after_duration(&self) -> Duration {
        Duration::from_secs(self.retry_after())
    }

    /// The database's error code, if the database answered with one: the
    /// SQLSTATE on PostgreSQL (e.g. `55P03`), the extended result code on
    /// SQLite (e.g. `5` for `SQLITE_BUSY`).
    #[must_use]
    pub fn database_code(&self) -> Option<String> {
        match self {
            Self::Store { source, .. } => match source.as_ref() {
                sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A few fixed words about a driver error, never its message.
fn describe(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Configuration(_) => "invalid configuration",
        sqlx::Error::Database(_) => "the database refused it",
        sqlx::Error::Io(_) => "I/O error",
        sqlx::Error::Tls(_) => "TLS error",
        sqlx::Error::Protocol(_) => "protocol error",
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection",
        sqlx::Error::PoolClosed => "the connection pool is closed",
        sqlx::Error::WorkerCrashed => "the database worker crashed",
        sqlx::Error::RowNotFound => "row not found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "could not decode a column",
        _ => "driver error",
    }
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { reason } => write!(f, "invalid inbox URL: {reason}"),
            Self::InvalidConfig { reason } => write!(f, "invalid inbox configuration: {reason}"),
            Self::Migrate { .. } => f.write_str("the inbox's database migrations failed"),
            Self::Store { what, source } => {
                write!(f, "the inbox store failed to {what}: {}", describe(source))?;
                if let Some(code) = self.database_code() {
                    write!(f, " (code {code})")?;
                }
                Ok(())
            }
            Self::Timeout => f.write_str("the inbox store did not answer in time"),
            Self::Closed => f.write_str("the inbox is closed"),
        }
    }
}

impl fmt::Debug for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same words as Display: the driver's message may quote values.
        f.debug_tuple("InboxError")
            .field(&format_args!("{self}"))
            .finish()
    }
}

impl std::error::Error for InboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Migrate { source } => Some(source.as_ref()),
            Self::Store { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
