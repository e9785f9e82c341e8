//! [`Sender`]: sends [`Outgoing`] requests over HTTP or HTTPS.

use std::borrow::Cow;
use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chatbase_core::SIGNATURE_HEADER;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Certificate, Client, StatusCode, Url, redirect};

use super::Outgoing;

/// The `user-agent` of the requests.
pub const USER_AGENT: &str = concat!("chatbase-webhooks-send/", env!("CARGO_PKG_VERSION"));

/// How much of a response body is kept: 1 MiB. The rest is not read.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// How long a request may take, connecting included: 30 seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends webhook requests. Cheap to clone; reuses connections.
///
/// HTTPS uses rustls (with `ring`), trusting the system's certificate
/// authorities, or only the one given to [`Sender::with_ca_certificate`] (as
/// curl's `--cacert`). Redirects are not followed: a webhook endpoint that
/// redirects is misconfigured, and the reply says so.
#[derive(Debug, Clone)]
pub struct Sender {
    client: Client,
}

impl Sender {
    /// A sender trusting the system's certificate authorities.
    ///
    /// # Errors
    ///
    /// [`SendError::Setup`] if the HTTP client cannot be built.
    pub fn new() -> Result<Self, SendError> {
        Self::build(None)
    }

    /// A sender trusting only the certificate authorities in `pem` (one or more
    /// PEM certificates): for a server with a self-signed or private certificate.
    ///
    /// # Errors
    ///
    /// [`SendError::CaCertificate`] if `pem` holds no certificate, and
    /// [`SendError::Setup`] if the HTTP client cannot be built.
    pub fn with_ca_certificate(pem: &[u8]) -> Result<Self, SendError> {
        let certificates =
            Certificate::from_pem_bundle(pem).map_err(|error| SendError::CaCertificate {
                reason: chain(&error),
            })?;
        if certificates.is_empty() {
            return Err(SendError::CaCertificate {
                reason: "no PEM certificate found".to_owned(),
            });
        }
        Self::build(Some(certificates))
    }

    fn build(certificates: Option<Vec<Certificate>>) -> Result<Self, SendError> {
        // reqwest is built without a default crypto provider (to avoid aws-lc's
        // build requirements): use ring, unless the program chose one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .user_agent(USER_AGENT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(redirect::Policy::none());
        if let Some(certificates) = certificates {
            builder = builder.tls_certs_only(certificates);
        }
        let client = builder.build().map_err(|error| SendError::Setup {
            reason: chain(&error),
        })?;
        Ok(Self { client })
    }

    /// Sends `outgoing` to `url` (`http` or `https`) and reads the reply, up to
    /// [`MAX_REPLY_BYTES`] of its body.
    ///
    /// # Errors
    ///
    /// [`SendError::Url`] for a URL that is not `http` or `https`, and
    /// [`SendError::Request`] if no complete reply came (connection refused, TLS
    /// failure, timeout...). Any status is a reply, not an error.
    pub async fn send(&self, url: &str, outgoing: &Outgoing) -> Result<Reply, SendError> {
        let url = parse_url(url)?;
        let mut request = self
            .client
            .request(outgoing.method().clone(), url.clone())
            .body(outgoing.body().clone());
        if let Some(content_type) = outgoing.content_type() {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(signature) = outgoing.signature() {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let failed = |error: reqwest::Error| SendError::Request {
            url: url.to_string(),
            reason: chain(&error),
        };
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = BytesMut::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            let room = MAX_REPLY_BYTES.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(chunk.get(..room).unwrap_or_default());
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            headers,
            body: body.freeze(),
            truncated,
        })
    }
}

/// Parses `url`, accepting only `http` and `https`.
///
/// # Errors
///
/// [`SendError::Url`] otherwise.
pub fn parse_url(url: &str) -> Result<Url, SendError> {
    let invalid = |reason: String| SendError::Url {
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|error| invalid(error.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(invalid(format!(
            "the scheme is {other:?}: expected http or https"
        ))),
    }
}

/// An error and its sources, on one line: reqwest's own message alone rarely
/// says what went wrong ("error sending request").
fn chain(error: &reqwest::Error) -> String {
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

/// What the endpoint answered.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    truncated: bool,
}

impl Reply {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, at most [`MAX_REPLY_BYTES`] of it.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Whether the body was longer than [`MAX_REPLY_BYTES`] and cut there.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The `message` of a JSON `{"message": ...}` body, as the receivers'
    /// rejections have.
    pub fn message(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Message {
            message: String,
        }
        serde_json::from_slice::<Message>(&self.body)
            .ok()
            .map(|body| body.message)
    }
}

/// Why a request could not be sent, or got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The URL is not an `http` or `https` URL.
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
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
        url: String,
        /// Why, with every cause.
        reason: String,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            Self::CaCertificate { reason } => write!(f, "unusable CA certificate: {reason}"),
            Self::Setup { reason } => write!(f, "cannot set up the HTTP client: {reason}"),
            Self::Request { url, reason } => write!(f, "request to {url} failed: {reason}"),
        }
    }
}

impl std::error::Error for SendError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls() {
        assert!(parse_url("http://127.0.0.1:3000/webhook").is_ok());
        assert!(parse_url("https://example.com/webhook").is_ok());
        for bad in [
            "ftp://example.com/",
            "127.0.0.1:3000/webhook",
            "",
            "http//x",
        ] {
            let error = parse_url(bad).unwrap_err();
            assert!(matches!(error, SendError::Url { .. }), "{bad}: {error}");
            assert!(error.to_string().contains("invalid URL"), "{error}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let error = Sender::with_ca_certificate(b"not a certificate").unwrap_err();
        assert!(matches!(error, SendError::CaCertificate { .. }), "{error}");
    }

    #[tokio::test]
    async fn connection_refused_is_a_request_error_naming_the_cause() {
        // Bind then drop, so nothing listens on the port.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let url = format!("http://{address}/webhook");
        let error = Sender::new()
            .unwrap()
            .send(&url, &Outgoing::unsigned("{}"))
            .await
            .unwrap_err();
        let SendError::Request { reason, .. } = &error else {
            panic!("{error}");
        };
        assert!(reason.to_lowercase().contains("refused"), "{error}");
    }

    #[test]
    fn reply_message_reads_json_messages_only() {
        let reply = |body: &'static str| Reply {
            status: StatusCode::UNAUTHORIZED,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
            truncated: false,
        };
        assert_eq!(
            reply(r#"{"message":"signature mismatch"}"#)
                .message()
                .as_deref(),
            Some("signature mismatch")
        );
        assert_eq!(reply("OK").message(), None);
        assert_eq!(reply("OK").text(), "OK");
    }
}
