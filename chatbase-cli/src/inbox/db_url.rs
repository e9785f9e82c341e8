//! [`DbUrl`]: the URL of an inbox's database, checked before it is opened,
//! and shown with its password hidden.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

/// What a hidden password or password parameter is shown as.
const HIDDEN: &str = "***";

/// The kind of store a [`DbUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// `sqlite://path/to/inbox.db`.
    Sqlite,
    /// `postgres://...` or `postgresql://...`.
    Postgres,
}

/// The URL of an inbox's database: `sqlite://path/to/inbox.db` or
/// `postgres://user:password@host/database`.
///
/// [`Display`](fmt::Display) and [`Debug`] show it with its password (and any
/// `password`-like query parameter) replaced by `***`: that form is the only
/// one to print. [`DbUrl::expose`] gives the URL as given, to open the store.
///
/// ```
/// use chatbase_cli::inbox::DbUrl;
///
/// let url = DbUrl::parse("postgres://inbox:hunter2@db.internal:5432/webhooks?sslmode=require")?;
/// assert_eq!(url.to_string(), "postgres://inbox:***@db.internal:5432/webhooks?sslmode=require");
/// assert!(!format!("{url:?}").contains("hunter2"));
///
/// let file = DbUrl::parse("sqlite://data/inbox.db")?;
/// assert_eq!(file.sqlite_file(), Some(std::path::Path::new("data/inbox.db")));
/// # Ok::<(), chatbase_cli::inbox::DbUrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    url: String,
    redacted: String,
    kind: StoreKind,
    sqlite_file: Option<PathBuf>,
}

impl DbUrl {
    /// Checks `url` and prepares its printable form.
    ///
    /// # Errors
    ///
    /// [`DbUrlError`] for an empty URL, a URL without a scheme or with a scheme
    /// other than `sqlite`, `postgres` and `postgresql`, a URL that does not
    /// parse, or an in-memory SQLite database (which is empty in every new
    /// process, so there is nothing to operate).
    pub fn parse(url: &str) -> Result<Self, DbUrlError> {
        if url.trim().is_empty() {
            return Err(DbUrlError::Empty);
        }
        let Some((scheme, _)) = url.split_once(':') else {
            return Err(DbUrlError::NoScheme);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Self::sqlite(url),
            "postgres" | "postgresql" => Self::postgres(url),
            _ if is_scheme(scheme) => Err(DbUrlError::UnknownScheme {
                scheme: scheme.to_owned(),
            }),
            _ => Err(DbUrlError::NoScheme),
        }
    }

    fn sqlite(url: &str) -> Result<Self, DbUrlError> {
        // As sqlx reads it: `sqlite://` or `sqlite:`, then the file, then
        // `?` and parameters.
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or_default();
        let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
        let in_memory = database.is_empty()
            || database == ":memory:"
            || params
                .split('&')
                .any(|pair| pair.eq_ignore_ascii_case("mode=memory"));
        if in_memory {
            return Err(DbUrlError::InMemory);
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(|_| {
            DbUrlError::Malformed {
                kind: StoreKind::Sqlite,
            }
        })?;
        Ok(Self {
            url: url.to_owned(),
            // A SQLite URL holds no credentials.
            redacted: url.to_owned(),
            kind: StoreKind::Sqlite,
            sqlite_file: Some(options.get_filename().to_path_buf()),
        })
    }

    fn postgres(url: &str) -> Result<Self, DbUrlError> {
        let mut parsed = url::Url::parse(url).map_err(|_| DbUrlError::Malformed {
            kind: StoreKind::Postgres,
        })?;
        if parsed.password().is_some() && parsed.set_password(Some(HIDDEN)).is_err() {
            return Err(DbUrlError::Malformed {
                kind: StoreKind::Postgres,
            });
        }
        let hides_a_parameter = parsed
            .query_pairs()
            .any(|(key, _)| is_secret_parameter(&key));
        if hides_a_parameter {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(key, value)| {
                    let value = if is_secret_parameter(&key) {
                        HIDDEN.to_owned()
                    } else {
                        value.into_owned()
                    };
                    (key.into_owned(), value)
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Ok(Self {
            url: url.to_owned(),
            redacted: parsed.to_string(),
            kind: StoreKind::Postgres,
            sqlite_file: None,
        })
    }

    /// The URL exactly as given, password included: for
    /// [`Inbox::open`](chatbase_inbox::Inbox::open), never for printing.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with its password hidden, as [`Display`](fmt::Display) shows it.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// SQLite or PostgreSQL.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The SQLite database's file, `None` for PostgreSQL.
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }

    /// PostgreSQL's `host:port` (the port defaults to 5432), for hints; `None`
    /// for SQLite or a URL without a host (a Unix socket).
    pub fn host_and_port(&self) -> Option<String> {
        if self.kind != StoreKind::Postgres {
            return None;
        }
        let parsed = url::Url::parse(&self.url).ok()?;
        let host = parsed.host_str().filter(|host| !host.is_empty())?;
        Some(format!("{host}:{}", parsed.port().unwrap_or(5432)))
    }
}

/// `password`, `sslpassword`, ...: query parameters whose values are hidden.
fn is_secret_parameter(key: &str) -> bool {
    key.to_ascii_lowercase().contains("password")
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DbUrl").field(&self.redacted).finish()
    }
}

/// Why a [`DbUrl`] was refused. The text never quotes the URL, which may hold
/// a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbUrlError {
    /// The URL is empty.
    #[error("the inbox URL is empty")]
    Empty,
    /// The URL has no scheme: a bare path, most likely.
    #[error("the inbox URL has no scheme (expected sqlite://... or postgres://...)")]
    NoScheme,
    /// A scheme other than `sqlite`, `postgres` and `postgresql`.
    #[error("the inbox URL's scheme {scheme:?} is not sqlite, postgres or postgresql")]
    UnknownScheme {
        /// The scheme given.
        scheme: String,
    },
    /// The URL does not parse.
    #[error("the inbox URL is not a valid {} URL", match kind {
        StoreKind::Sqlite => "sqlite://",
        StoreKind::Postgres => "postgres://",
    })]
    Malformed {
        /// The store it names.
        kind: StoreKind,
    },
    /// An in-memory SQLite database: every process gets a new, empty one.
    #[error(
        "the inbox URL names an in-memory SQLite database, which is empty in every new process"
    )]
    InMemory,
}

impl DbUrlError {
    /// What to write instead.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Empty | Self::NoScheme | Self::UnknownScheme { .. } => {
                "give sqlite://path/to/inbox.db or postgres://user:password@host/database"
            }
            Self::Malformed {
                kind: StoreKind::Sqlite,
            } => "write sqlite://path/to/inbox.db, with % escapes for ? and # in the path",
            Self::Malformed {
                kind: StoreKind::Postgres,
            } => {
                "write postgres://user:password@host:port/database, with % escapes for special \
                 characters in the user name and password"
            }
            Self::InMemory => "give the file the receiver uses: sqlite://path/to/inbox.db",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        for (url, file) in [
            ("sqlite://data/inbox.db", "data/inbox.db"),
            ("sqlite:data/inbox.db", "data/inbox.db"),
            ("sqlite:///var/lib/inbox.db", "/var/lib/inbox.db"),
            ("sqlite://data/inbox.db?mode=rwc", "data/inbox.db"),
            ("sqlite://data/in%3Fbox.db", "data/in?box.db"),
        ] {
            let parsed = DbUrl::parse(url).unwrap();
            assert_eq!(parsed.kind(), StoreKind::Sqlite);
            assert_eq!(parsed.sqlite_file(), Some(Path::new(file)), "{url}");
            assert_eq!(parsed.to_string(), url);
            assert_eq!(parsed.expose(), url);
            assert_eq!(parsed.host_and_port(), None);
        }
    }

    #[test]
    fn in_memory_sqlite_is_refused() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://",
            "sqlite://x.db?mode=memory",
        ] {
            assert_eq!(DbUrl::parse(url), Err(DbUrlError::InMemory), "{url}");
        }
    }

    #[test]
    fn passwords_are_hidden_in_every_printed_form() {
        for (url, shown) in [
            (
                "postgres://inbox:hunter2@db.internal/webhooks",
                "postgres://inbox:***@db.internal/webhooks",
            ),
            (
                "postgresql://inbox:hun%40ter2@127.0.0.1:55432/webhooks?sslmode=require",
                "postgresql://inbox:***@127.0.0.1:55432/webhooks?sslmode=require",
            ),
            (
                "postgres://inbox@db/webhooks?password=hunter2&sslmode=require",
                "postgres://inbox@db/webhooks?password=***&sslmode=require",
            ),
            (
                "postgres://inbox@db/webhooks?sslpassword=hunter2",
                "postgres://inbox@db/webhooks?sslpassword=***",
            ),
            ("postgres://db/webhooks", "postgres://db/webhooks"),
        ] {
            let parsed = DbUrl::parse(url).unwrap();
            assert_eq!(parsed.kind(), StoreKind::Postgres);
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(parsed.redacted(), shown);
            assert_eq!(format!("{parsed:?}"), format!("DbUrl({shown:?})"));
            assert_eq!(parsed.expose(), url);
            assert!(!format!("{parsed} {parsed:?}").contains("hunter2"));
            assert!(!format!("{parsed} {parsed:?}").contains("hun%40ter2"));
        }
    }

    #[test]
    fn host_and_port_for_hints() {
        let url = DbUrl::parse("postgres://u:p@db.internal/x").unwrap();
        assert_eq!(url.host_and_port().as_deref(), Some("db.internal:5432"));
        let url = DbUrl::parse("postgres://u:p@127.0.0.1:55432/x").unwrap();
        assert_eq!(url.host_and_port().as_deref(), Some("127.0.0.1:55432"));
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for (url, error) in [
            ("", DbUrlError::Empty),
            ("data/inbox.db", DbUrlError::NoScheme),
            (
                "mysql://u:hunter2@db/x",
                DbUrlError::UnknownScheme {
                    scheme: "mysql".to_owned(),
                },
            ),
            (
                "postgres://u:hunter2@db:notaport/x",
                DbUrlError::Malformed {
                    kind: StoreKind::Postgres,
                },
            ),
            ("hunter2 no scheme: here", DbUrlError::NoScheme),
        ] {
            let refused = DbUrl::parse(url).unwrap_err();
            assert_eq!(refused, error, "{url}");
            assert!(!refused.to_string().contains("hunter2"));
            assert!(!refused.hint().is_empty());
        }
    }
}
