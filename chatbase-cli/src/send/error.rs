//! [`SendError`]: why a request could not be sent or got no reply, with a
//! hint at the usual cause.

use std::fmt;
use std::io;

use reqwest::Url;

/// Why a request could not be sent, or got no reply.
///
/// [`Display`](fmt::Display) says what failed, naming the URL once;
/// [`SendError::hint`] says what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The URL is not an `http` or `https` URL.
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
        /// The URL it most likely should be, if there is one: `http://` added
        /// to a URL without a scheme.
        suggestion: Option<String>,
    },
    /// The CA certificate file holds no usable certificate.
    CaCertificate {
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be set up.
    Setup {
        /// Why.
        reason: String,
    },
    /// The request failed before a complete reply: connection, TLS, timeout.
    Request {
        /// The URL.
        url: Url,
        /// The usual cause it fits, if any.
        failure: Failure,
        /// Why, with every cause (without the URL).
        reason: String,
    },
}

/// The usual causes of a [`SendError::Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Nothing listens on that port.
    ConnectionRefused,
    /// The host name does not resolve.
    UnknownHost,
    /// `https` to a server that answered in plain text (an `http` server).
    NotTls,
    /// `http` to a server that did not answer in HTTP, or reset the
    /// connection (a TLS server, most likely).
    NotHttp,
    /// The server's certificate is not trusted.
    Certificate,
    /// No complete reply in time.
    Timeout,
    /// Anything else: the reason says what.
    Other,
}

impl SendError {
    /// What to check, when the failure fits a usual cause.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Url { suggestion, .. } => suggestion
                .as_ref()
                .map(|suggestion| format!("did you mean {suggestion}?")),
            Self::CaCertificate { .. } => {
                Some("give a file holding one or more PEM certificates".to_owned())
            }
            Self::Setup { .. } => None,
            Self::Request { url, failure, .. } => request_hint(url, *failure),
        }
    }

    /// The usual cause of a failed request, if it is one.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            Self::Request { failure, .. } => Some(*failure),
            _ => None,
        }
    }
}

fn request_hint(url: &Url, failure: Failure) -> Option<String> {
    let port = url.port_or_known_default().unwrap_or_default();
    let host = url.host_str().unwrap_or_default();
    let with_scheme = |scheme: &str| {
        let mut other = url.clone();
        // Only http <-> https here: both are special schemes, so this works.
        let _ = other.set_scheme(scheme);
        other.to_string()
    };
    Some(match failure {
        Failure::ConnectionRefused => {
            format!("is the receiver running on port {port}? nothing accepts connections there")
        }
        Failure::UnknownHost => format!("check the host name {host:?}"),
        Failure::NotTls => format!(
            "the server at {host}:{port} answered in plain text: it serves http, not https; \
             try {}",
            with_scheme("http")
        ),
        Failure::NotHttp => format!(
            "the server at {host}:{port} did not answer in HTTP: if it serves https, try {}",
            with_scheme("https")
        ),
        Failure::Certificate => "the server's certificate is not trusted here: for a \
             self-signed certificate or a private certificate authority, give the \
             authority's PEM file with --cacert"
            .to_owned(),
        Failure::Timeout => "the server took too long: is it stuck, or behind a firewall \
             that drops packets?"
            .to_owned(),
        Failure::Other => return None,
    })
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url { url, reason, .. } => write!(f, "invalid URL {url:?}: {reason}"),
            Self::CaCertificate { reason } => write!(f, "unusable CA certificate: {reason}"),
            Self::Setup { reason } => write!(f, "cannot set up the HTTP client: {reason}"),
            Self::Request {
                url,
                failure,
                reason,
            } => {
                // The usual causes in plain words, without the TLS or HTTP
                // library's internal message; the certificate's reason says
                // what is wrong with it.
                let what = match failure {
                    Failure::ConnectionRefused => "connection refused",
                    Failure::UnknownHost => "the host name does not resolve",
                    Failure::NotTls => "the server does not speak TLS",
                    Failure::NotHttp => "no HTTP reply",
                    Failure::Timeout => "no reply in time",
                    Failure::Certificate => {
                        return write!(
                            f,
                            "request to {url} failed: the server's certificate is not trusted ({})",
                            reason.rsplit(": ").next().unwrap_or(reason)
                        );
                    }
                    Failure::Other => return write!(f, "request to {url} failed: {reason}"),
                };
                write!(f, "request to {url} failed: {what}")
            }
        }
    }
}

impl std::error::Error for SendError {}

/// Parses `url`, accepting only `http` and `https`.
///
/// # Errors
///
/// [`SendError::Url`] otherwise; when the scheme is missing
/// (`localhost:3000/webhook`), it suggests the URL with `http://`.
pub fn parse_url(url: &str) -> Result<Url, SendError> {
    let invalid = |reason: String, suggestion: Option<String>| SendError::Url {
        url: url.to_owned(),
        reason,
        suggestion,
    };
    if !url.contains("://") {
        // `localhost:3000/webhook` parses as the scheme `localhost`: catch it first.
        let suggestion = format!("http://{}", url.trim_start_matches('/'));
        let suggestion = Url::parse(&suggestion).is_ok().then_some(suggestion);
        return Err(invalid(
            "no scheme: a webhook URL starts with http:// or https://".to_owned(),
            suggestion,
        ));
    }
    let parsed = Url::parse(url).map_err(|error| invalid(error.to_string(), None))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(invalid(
            format!("the scheme is {other:?}: expected http or https"),
            None,
        )),
    }
}

/// A [`SendError::Request`] for `error`, which happened sending to `url`.
pub(crate) fn request_error(url: &Url, error: reqwest::Error) -> SendError {
    let failure = match classify(&error) {
        // Suggesting https:// only makes sense for an http:// URL.
        Failure::NotHttp if url.scheme() != "http" => Failure::Other,
        failure => failure,
    };
    SendError::Request {
        url: url.clone(),
        failure,
        reason: chain(&error.without_url()),
    }
}

/// The usual cause `error` fits, from its chain of sources.
fn classify(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(failure) = classify_one(cause) {
            return failure;
        }
        source = cause.source();
    }
    Failure::Other
}

fn classify_one(cause: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
        return classify_tls(tls);
    }
    if let Some(io) = cause.downcast_ref::<io::Error>() {
        if io.kind() == io::ErrorKind::ConnectionRefused {
            return Some(Failure::ConnectionRefused);
        }
        if io.kind() == io::ErrorKind::TimedOut {
            return Some(Failure::Timeout);
        }
        // A TLS server reset by plain text it cannot read, before any reply.
        if matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ) {
            return Some(Failure::NotHttp);
        }
        // The resolver's errors have no type of their own.
        if io.to_string().contains("failed to lookup address") {
            return Some(Failure::UnknownHost);
        }
        // rustls errors travel inside io::Errors (nested ones, even), whose
        // `source` skips what they wrap.
        if let Some(inner) = io.get_ref() {
            let inner: &(dyn std::error::Error + 'static) = inner;
            return classify_one(inner);
        }
    }
    if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
        && (hyper.is_parse() || hyper.is_incomplete_message())
    {
        return Some(Failure::NotHttp);
    }
    None
}

fn classify_tls(error: &rustls::Error) -> Option<Failure> {
    match error {
        rustls::Error::InvalidMessage(_) => Some(Failure::NotTls),
        rustls::Error::InvalidCertificate(_) => Some(Failure::Certificate),
        _ => None,
    }
}

/// An error and its sources, on one line: reqwest's own message alone rarely
/// says what went wrong.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls() {
        assert!(parse_url("http://127.0.0.1:3000/webhook").is_ok());
        assert!(parse_url("https://example.com/webhook").is_ok());
        for bad in ["ftp://example.com/", "", "http//x", "mailto://x@y"] {
            let error = parse_url(bad).unwrap_err();
            assert!(matches!(error, SendError::Url { .. }), "{bad}: {error}");
            assert!(error.to_string().contains("invalid URL"), "{error}");
        }
    }

    #[test]
    fn a_missing_scheme_suggests_http() {
        for (given, suggested) in [
            ("127.0.0.1:3000/webhook", "http://127.0.0.1:3000/webhook"),
            ("localhost:3000/webhook", "http://localhost:3000/webhook"),
            ("example.com/hook", "http://example.com/hook"),
        ] {
            let error = parse_url(given).unwrap_err();
            assert!(error.to_string().contains("no scheme"), "{error}");
            assert_eq!(
                error.hint().as_deref(),
                Some(format!("did you mean {suggested}?").as_str())
            );
        }
    }

    #[test]
    fn hints_name_the_port_and_the_other_scheme() {
        let url = Url::parse("https://localhost:8443/webhook").unwrap();
        let error = |failure| SendError::Request {
            url: url.clone(),
            failure,
            reason: "r".to_owned(),
        };
        let refused = error(Failure::ConnectionRefused);
        assert!(refused.hint().unwrap().contains("port 8443"));
        // The URL once.
        assert_eq!(refused.to_string().matches("localhost:8443").count(), 1);
        assert!(
            error(Failure::NotTls)
                .hint()
                .unwrap()
                .contains("try http://localhost:8443/webhook")
        );
        assert!(
            error(Failure::Certificate)
                .hint()
                .unwrap()
                .contains("--cacert")
        );
        assert_eq!(error(Failure::Other).hint(), None);
        let plain = SendError::Request {
            url: Url::parse("http://localhost:8443/webhook").unwrap(),
            failure: Failure::NotHttp,
            reason: "r".to_owned(),
        };
        assert!(
            plain
                .hint()
                .unwrap()
                .contains("try https://localhost:8443/webhook")
        );
    }
}
