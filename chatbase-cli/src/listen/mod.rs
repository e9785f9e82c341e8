//! The local development receiver behind `chatbase listen`: it verifies each
//! request as a real receiver would, reports it, and optionally forwards the
//! exact bytes to your app and captures them to files.
//!
//! A [`DevReceiver`] answers every path and method. For each request it:
//!
//! 1. reads the body (up to the verifier's limit, 413 beyond);
//! 2. verifies it with the [`Keys`]: one set of secrets, or a secret per
//!    chatbot chosen by the body's `chatbotId`;
//! 3. writes it to the [`CaptureDir`], if any, exactly as received;
//! 4. forwards the method, the body's exact bytes, the `x-chatbase-signature`
//!    header and the `content-type` to the app, if any, whatever the
//!    verdict (the app must verify too, and refuse what does not verify);
//! 5. answers with the app's reply when forwarding, otherwise with the
//!    verdict: 200, or the rejection's status and JSON message;
//! 6. hands a [`Received`] report to the callback given to
//!    [`DevReceiver::on_request`].
//!
//! ```no_run
//! use chatbase_cli::listen::{DevReceiver, Keys};
//! use chatbase_core::{Secret, Verifier};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = Keys::Shared(Verifier::new(Secret::new("my-secret")?));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! DevReceiver::new(keys)
//!     .on_request(|received| {
//!         let _ = received.status();
//!     })
//!     .serve(listener, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod report;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chatbase_core::{ChatbaseEvent, Error, SIGNATURE_HEADER, Verifier};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use reqwest::Url;

pub use self::report::{Received, Rejection};
use crate::capture::{CaptureDir, CapturedRequest};
use crate::secrets::{SecretsFile, claimed_chatbot_id};
use crate::send::{Reply, SendError, Sender};

/// The secrets requests are verified with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Keys {
    /// One set of secrets for every request (a secret, and a previous one
    /// during a rotation).
    Shared(Verifier),
    /// A set per chatbot, chosen by the body's `chatbotId`: a body naming a
    /// chatbot not in the map is rejected.
    PerChatbot(HashMap<String, Verifier>),
}

impl Keys {
    /// A set per chatbot, from a [`SecretsFile`].
    pub fn from_secrets_file(file: &SecretsFile) -> Self {
        let map = file
            .iter()
            .filter_map(|(id, secrets)| {
                let (first, rest) = secrets.split_first()?;
                let verifier = rest
                    .iter()
                    .fold(Verifier::new(first.clone()), |verifier, secret| {
                        verifier.with_secret(secret.clone())
                    });
                Some((id.to_owned(), verifier))
            })
            .collect();
        Self::PerChatbot(map)
    }

    /// The largest body accepted.
    fn body_limit(&self) -> usize {
        match self {
            Self::Shared(verifier) => verifier.body_limit(),
            Self::PerChatbot(map) => map
                .values()
                .map(Verifier::body_limit)
                .max()
                .unwrap_or(chatbase_core::DEFAULT_BODY_LIMIT),
        }
    }

    /// Verifies and parses `body` as the receiver would.
    fn verify(&self, body: Bytes, signature: Option<&[u8]>) -> Result<ChatbaseEvent, Rejection> {
        let verifier = match self {
            Self::Shared(verifier) => verifier,
            Self::PerChatbot(map) => {
                let claimed = claimed_chatbot_id(&body).ok_or(Rejection::NoChatbotId)?;
                match map.get(&claimed) {
                    Some(verifier) => verifier,
                    None => return Err(Rejection::UnknownChatbot(claimed)),
                }
            }
        };
        verifier
            .verify_and_parse(body, signature)
            .map_err(Rejection::Verify)
    }
}

/// Where verified (and rejected) requests are forwarded: the app.
#[derive(Debug, Clone)]
struct Forward {
    sender: Sender,
    url: Url,
}

type Callback = Arc<dyn Fn(Received) + Send + Sync>;

/// The local development receiver: see the [module](self) docs.
#[derive(Clone)]
pub struct DevReceiver {
    keys: Keys,
    forward: Option<Forward>,
    capture: Option<Arc<CaptureDir>>,
    on_request: Callback,
    count: Arc<AtomicU64>,
}

impl DevReceiver {
    /// A receiver verifying with `keys`, forwarding nowhere, capturing
    /// nothing, reporting to no one.
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            forward: None,
            capture: None,
            on_request: Arc::new(|_| {}),
            count: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Forwards every request to `url` with `sender`, and answers with the
    /// app's reply.
    #[must_use]
    pub fn forward_to(mut self, sender: Sender, url: Url) -> Self {
        self.forward = Some(Forward { sender, url });
        self
    }

    /// Writes every request to a new file in `dir`.
    #[must_use]
    pub fn capture(mut self, dir: CaptureDir) -> Self {
        self.capture = Some(Arc::new(dir));
        self
    }

    /// Calls `callback` with a report of each request, once it is answered.
    #[must_use]
    pub fn on_request(mut self, callback: impl Fn(Received) + Send + Sync + 'static) -> Self {
        self.on_request = Arc::new(callback);
        self
    }

    /// The receiver as an axum router (every path and method), to serve
    /// yourself or to call in tests.
    pub fn into_router(self) -> Router {
        Router::new().fallback(handle).with_state(Arc::new(self))
    }

    /// Serves on `listener` until `shutdown` completes, then finishes the
    /// requests under way.
    ///
    /// # Errors
    ///
    /// If serving fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        axum::serve(listener, self.into_router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

impl std::fmt::Debug for DevReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevReceiver")
            .field("keys", &self.keys)
            .field(
                "forward",
                &self.forward.as_ref().map(|forward| &forward.url),
            )
            .field("capture", &self.capture.as_ref().map(|dir| dir.path()))
            .finish_non_exhaustive()
    }
}

async fn handle(State(receiver): State<Arc<DevReceiver>>, request: Request) -> Response {
    let number = receiver.count.fetch_add(1, Ordering::Relaxed) + 1;
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_owned(),
        |target| target.as_str().to_owned(),
    );
    let limit = receiver.keys.body_limit();
    let (body, read_error) = match Limited::new(body, limit).collect().await {
        Ok(collected) => (collected.to_bytes(), None),
        Err(error) => {
            let error = if error.is::<LengthLimitError>() {
                Error::BodyTooLarge { limit }
            } else {
                Error::read_body(error)
            };
            (Bytes::new(), Some(error))
        }
    };
    let signature = parts
        .headers
        .get(SIGNATURE_HEADER)
        .map(HeaderValue::as_bytes);
    let verdict = match read_error {
        Some(error) => Err(Rejection::Verify(error)),
        None => receiver.keys.verify(body.clone(), signature),
    };

    let captured: Option<io::Result<PathBuf>> = match (&receiver.capture, &verdict) {
        // A body that could not be read whole is not "as received".
        (Some(_), Err(Rejection::Verify(Error::BodyTooLarge { .. } | Error::ReadBody(_)))) => None,
        (Some(dir), _) => {
            let request = CapturedRequest::new(
                parts.method.clone(),
                target.clone(),
                parts.headers.clone(),
                body.clone(),
            );
            let dir = Arc::clone(dir);
            Some(
                tokio::task::spawn_blocking(move || dir.write(&request))
                    .await
                    .unwrap_or_else(|error| Err(io::Error::other(error))),
            )
        }
        (None, _) => None,
    };

    let forwarded: Option<Result<Reply, SendError>> = match (&receiver.forward, &verdict) {
        (Some(_), Err(Rejection::Verify(Error::BodyTooLarge { .. } | Error::ReadBody(_)))) => None,
        (Some(forward), _) => {
            let outgoing = crate::send::Outgoing::with_signature(
                body.clone(),
                parts.headers.get(SIGNATURE_HEADER).cloned(),
            )
            .with_method(parts.method.clone())
            .with_content_type(parts.headers.get(CONTENT_TYPE).cloned());
            Some(forward.sender.send_to(&forward.url, &outgoing).await)
        }
        (None, _) => None,
    };

    let response = match (&forwarded, &verdict) {
        (Some(Ok(reply)), _) => relay(reply),
        (Some(Err(error)), _) => json(
            StatusCode::BAD_GATEWAY,
            &format!("chatbase listen could not forward the request: {error}"),
        ),
        (None, Ok(_)) => (
            StatusCode::OK,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            r#"{"received":true}"#,
        )
            .into_response(),
        (None, Err(rejection)) => json(rejection.status(), &rejection.to_string()),
    };
    let status = response.status();
    (receiver.on_request)(Received {
        number,
        method: parts.method,
        target,
        body,
        verdict,
        forwarded,
        captured,
        status,
    });
    response
}

/// The app's reply, as the answer to the sender: status, content type, body.
fn relay(reply: &Reply) -> Response {
    let mut response = Response::new(Body::from(reply.body().clone()));
    *response.status_mut() = reply.status();
    if let Some(content_type) = reply.headers().get(CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, content_type.clone());
    }
    response
}

/// `{"message": ...}` with `status`.
fn json(status: StatusCode, message: &str) -> Response {
    #[derive(serde::Serialize)]
    struct Message<'a> {
        message: &'a str,
    }
    let body = serde_json::to_string(&Message { message })
        .unwrap_or_else(|_| String::from(r#"{"message":"rejected"}"#));
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}
