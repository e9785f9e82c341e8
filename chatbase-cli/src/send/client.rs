//! [`Sender`]: sends [`Outgoing`] requests over HTTP or HTTPS; [`Reply`]: what
//! came back.

use std::borrow::Cow;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chatbase_core::SIGNATURE_HEADER;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Certificate, Client, StatusCode, Url, redirect};

use super::Outgoing;
use super::error::{SendError, chain, parse_url, request_error};

/// The `user-agent` of the requests.
pub const USER_AGENT: &str = concat!("chatbase-cli/", env!("CARGO_PKG_VERSION"));

/// How much of a response body is kept: 1 MiB. The rest is not read.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// How long a request may take, connecting included: 30 seconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// A sender trusting only the certificate authorities in `pem` (one or
    /// more PEM certificates): for a server with a self-signed or private
    /// certificate.
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
    /// [`SendError::Request`] if no complete reply came (connection refused,
    /// TLS failure, timeout...). Any status is a reply, not an error.
    pub async fn send(&self, url: &str, outgoing: &Outgoing) -> Result<Reply, SendError> {
        self.send_to(&parse_url(url)?, outgoing).await
    }

    /// [`Sender::send`] to a URL parsed already (with [`parse_url`]).
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub async fn send_to(&self, url: &Url, outgoing: &Outgoing) -> Result<Reply, SendError> {
        let mut request = self
            .client
            .request(outgoing.method().clone(), url.clone())
            .body(outgoing.body().clone());
        if let Some(content_type) = outgoing.content_type() {
            request = request.header(CONTENT_TYPE, content_type);
        }
        for signature in outgoing.signatures() {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let failed = |error| request_error(url, error);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::Failure;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let error = Sender::with_ca_certificate(b"not a certificate").unwrap_err();
        assert!(matches!(error, SendError::CaCertificate { .. }), "{error}");
    }

    #[tokio::test]
    async fn connection_refused_is_recognised() {
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
        assert_eq!(error.failure(), Some(Failure::ConnectionRefused), "{error}");
        // The URL is named once.
        assert_eq!(error.to_string().matches(&url).count(), 1, "{error}");
        assert!(
            error
                .hint()
                .unwrap()
                .contains(&format!("port {}", address.port()))
        );
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
