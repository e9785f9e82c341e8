//! [`Expect`]: which statuses a run of `chatbase send` counts as success.

use std::fmt;
use std::str::FromStr;

use reqwest::StatusCode;

/// One accepted status: exactly `401`, or a class such as `2xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    /// This status.
    Exact(StatusCode),
    /// Any status of this class: `2` for `2xx`.
    Class(u8),
}

impl StatusPattern {
    /// Whether `status` is this one, or of this class.
    pub fn matches(self, status: StatusCode) -> bool {
        match self {
            Self::Exact(expected) => status == expected,
            Self::Class(class) => status.as_u16() / 100 == u16::from(class),
        }
    }
}

impl FromStr for StatusPattern {
    type Err = InvalidStatusPattern;

    /// `200`, `401`...: a status from 100 to 599; `2xx`, `4XX`...: a class.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidStatusPattern {
            given: text.to_owned(),
        };
        let lower = text.to_ascii_lowercase();
        if let Some(class) = lower.strip_suffix("xx") {
            return match class.parse::<u8>() {
                Ok(class @ 1..=5) => Ok(Self::Class(class)),
                _ => Err(invalid()),
            };
        }
        match lower.parse::<u16>() {
            Ok(code @ 100..=599) => StatusCode::from_u16(code)
                .map(Self::Exact)
                .map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(status) => write!(f, "{}", status.as_u16()),
            Self::Class(class) => write!(f, "{class}xx"),
        }
    }
}

/// A status pattern that is neither a status (100 to 599) nor a class (`1xx`
/// to `5xx`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a status (100 to 599, e.g. 401) nor a class of statuses (e.g. 2xx)")]
pub struct InvalidStatusPattern {
    given: String,
}

/// The statuses that count as success: any of one or more [`StatusPattern`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    any_of: Vec<StatusPattern>,
}

impl Expect {
    /// Any of `patterns`; [`Expect::success`] if there are none.
    pub fn any_of(patterns: impl IntoIterator<Item = StatusPattern>) -> Self {
        let any_of: Vec<_> = patterns.into_iter().collect();
        if any_of.is_empty() {
            return Self::success();
        }
        Self { any_of }
    }

    /// `2xx`: what a receiver answers to an event it accepted.
    pub fn success() -> Self {
        Self {
            any_of: vec![StatusPattern::Class(2)],
        }
    }

    /// `401`: what a receiver must answer to a request that is unsigned, badly
    /// signed or tampered with.
    pub fn unauthorized() -> Self {
        Self {
            any_of: vec![StatusPattern::Exact(StatusCode::UNAUTHORIZED)],
        }
    }

    /// Whether `status` is one of them.
    pub fn matches(&self, status: StatusCode) -> bool {
        self.any_of.iter().any(|pattern| pattern.matches(status))
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, pattern) in self.any_of.iter().enumerate() {
            if n > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "{pattern}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> StatusPattern {
        text.parse().unwrap()
    }

    #[test]
    fn exact_statuses_and_classes() {
        assert_eq!(
            pattern("401"),
            StatusPattern::Exact(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(pattern("2xx"), StatusPattern::Class(2));
        assert_eq!(pattern("4XX"), StatusPattern::Class(4));
        assert!(pattern("2xx").matches(StatusCode::NO_CONTENT));
        assert!(!pattern("2xx").matches(StatusCode::UNAUTHORIZED));
        assert!(pattern("401").matches(StatusCode::UNAUTHORIZED));
        assert!(!pattern("401").matches(StatusCode::FORBIDDEN));
        for bad in ["", "20", "600", "99", "0xx", "6xx", "2x", "abc", "-1", "xx"] {
            let error = bad.parse::<StatusPattern>().unwrap_err();
            assert!(error.to_string().contains("not a status"), "{bad}");
        }
    }

    #[test]
    fn expect_any_of_and_defaults() {
        let expect = Expect::any_of([pattern("200"), pattern("202")]);
        assert!(expect.matches(StatusCode::OK));
        assert!(expect.matches(StatusCode::ACCEPTED));
        assert!(!expect.matches(StatusCode::NO_CONTENT));
        assert_eq!(expect.to_string(), "200 or 202");
        assert_eq!(Expect::any_of([]), Expect::success());
        assert_eq!(Expect::success().to_string(), "2xx");
        assert_eq!(Expect::unauthorized().to_string(), "401");
    }
}
