//! [`ChatbaseRejection`]: why a request did not get through.

use std::fmt;

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use chatbase_core::Error;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};

/// Why [`ChatbaseEvent`](crate::ChatbaseEvent) or
/// [`VerifyChatbase`](crate::VerifyChatbase) did not let a request through.
///
/// As a response:
///
/// | variant | status | body |
/// |---|---|---|
/// | [`Rejected`](ChatbaseRejection::Rejected) | chatbase-core's policy: 401, 413, 400, or 503 with `Retry-After` when a secret lookup failed | `{"message": "..."}`: a few words, never the secret, the signature or the request body |
/// | [`MissingVerifier`](ChatbaseRejection::MissingVerifier) | 500 | a generic message; the log line says what to add |
///
/// with `content-type: application/json`. Every rejection has already been
/// logged once through `tracing` under the target `chatbase::rejection`
/// ([`REJECTION_LOG_TARGET`](chatbase_core::REJECTION_LOG_TARGET)): a refused
/// request at `WARN`, with what to check; a failed secret lookup and a missing
/// verifier at `ERROR`.
///
/// # Example
///
/// Take `Result<ChatbaseEvent, ChatbaseRejection>` to see the reason yourself:
///
/// ```
/// use axum::{Router, http::StatusCode, response::IntoResponse, routing::post};
/// use chatbase_axum::{ChatbaseEvent, ChatbaseRejection, Secret, Verifier};
///
/// async fn webhook(event: Result<ChatbaseEvent, ChatbaseRejection>) -> axum::response::Response {
///     match event {
///         Ok(_event) => StatusCode::NO_CONTENT.into_response(),
///         Err(rejection) => {
///             if rejection.reason() == "signature_mismatch" {
///                 // e.g. count forged requests
///             }
///             rejection.into_response()
///         }
///     }
/// }
///
/// let verifier = Verifier::new(Secret::new("secret-from-the-chatbase-dashboard")?);
/// let app: Router = Router::new().route("/webhook", post(webhook)).with_state(verifier);
/// # Ok::<(), chatbase_axum::SecretError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ChatbaseRejection {
    /// The request was refused: unsigned, forged, too large, unreadable, or not
    /// a Chatbase event. The status and message come from chatbase-core.
    Rejected(Error),
    /// The route has no [`Verifier`](chatbase_core::Verifier): neither a
    /// [`VerifyChatbaseLayer`](crate::VerifyChatbaseLayer) in front of it, nor
    /// one as the router's state or in the request extensions. A server
    /// misconfiguration: answered 500, logged at `ERROR` with what to add.
    MissingVerifier,
}

/// What the `ERROR` line of [`ChatbaseRejection::MissingVerifier`] says.
const MISSING_VERIFIER: &str = "`ChatbaseEvent` found no `Verifier` for this route: \
     put the route behind `VerifyChatbaseLayer::new(verifier)`, \
     or serve it with `.with_state(verifier)`, \
     or add `.layer(Extension(verifier))`";

/// The body of the 500: the client learns that the server is at fault, not
/// how it is set up.
const MISSING_VERIFIER_BODY: &str =
    r#"{"message":"the server is not configured to receive Chatbase webhooks"}"#;

impl ChatbaseRejection {
    /// A rejection, logged once: a refused request at `WARN` (status, reason and
    /// what to check), a missing verifier at `ERROR`.
    pub(crate) fn logged(self) -> Self {
        match &self {
            Self::Rejected(error) => error.log(),
            Self::MissingVerifier => tracing::error!(
                target: chatbase_core::REJECTION_LOG_TARGET,
                status = 500,
                reason = "missing_verifier",
                "{MISSING_VERIFIER}"
            ),
        }
        self
    }

    /// The reason from chatbase-core, if the request itself was refused.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Rejected(error) => Some(error),
            Self::MissingVerifier => None,
        }
    }

    /// A stable code for what happened: chatbase-core's
    /// [`Error::reason`] (`signature_mismatch`...), or `missing_verifier`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Rejected(error) => error.reason(),
            Self::MissingVerifier => "missing_verifier",
        }
    }

    /// The status the response carries.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            // chatbase-core's statuses are all valid status codes.
            Self::Rejected(error) => {
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::MissingVerifier => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<Error> for ChatbaseRejection {
    fn from(error: Error) -> Self {
        Self::Rejected(error)
    }
}

impl IntoResponse for ChatbaseRejection {
    fn into_response(self) -> Response {
        let body = match &self {
            Self::Rejected(error) => Body::from(error.json_body()),
            Self::MissingVerifier => Body::from(MISSING_VERIFIER_BODY),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(seconds) = self.error().and_then(Error::retry_after) {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The operator's message: what is wrong and what to check.
impl fmt::Display for ChatbaseRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(error) => fmt::Display::fmt(error, f),
            Self::MissingVerifier => f.write_str(MISSING_VERIFIER),
        }
    }
}

/// Transparent over chatbase-core's error: [`source`](std::error::Error::source)
/// is its source (the body stream's error for a read failure, `serde_json`'s for
/// an invalid payload, which may quote the body: don't log it).
impl std::error::Error for ChatbaseRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error().and_then(std::error::Error::source)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[test]
    fn a_failed_lookup_is_a_503_with_retry_after() {
        let response = ChatbaseRejection::from(Error::SecretLookup("down".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "5");
        let response = ChatbaseRejection::from(Error::SignatureMismatch).into_response();
        assert!(response.headers().get(RETRY_AFTER).is_none());
    }

    async fn answer(rejection: ChatbaseRejection) -> (StatusCode, String, serde_json::Value) {
        let response = rejection.into_response();
        let status = response.status();
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn refusals_follow_the_core_policy() {
        for (error, status) in [
            (Error::MissingSignature, StatusCode::UNAUTHORIZED),
            (Error::SignatureMismatch, StatusCode::UNAUTHORIZED),
            (
                Error::BodyTooLarge { limit: 8 },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (Error::read_body("reset"), StatusCode::BAD_REQUEST),
        ] {
            let message = error.client_message();
            let hint = error.to_string();
            let rejection = ChatbaseRejection::from(error);
            assert_eq!(rejection.status(), status);
            assert_eq!(rejection.to_string(), hint);
            let (got, content_type, body) = answer(rejection).await;
            assert_eq!(got, status);
            assert_eq!(content_type, "application/json");
            assert_eq!(body, serde_json::json!({ "message": message }));
        }
    }

    #[tokio::test]
    async fn a_missing_verifier_is_a_500_that_says_what_to_add_in_the_log_only() {
        let rejection = ChatbaseRejection::MissingVerifier;
        assert_eq!(rejection.reason(), "missing_verifier");
        assert!(rejection.error().is_none());
        assert!(
            rejection
                .to_string()
                .contains("VerifyChatbaseLayer::new(verifier)")
        );
        let (status, _, body) = answer(rejection).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let message = body["message"].as_str().unwrap();
        assert!(!message.contains("Verifier"), "{message}");
    }

    #[test]
    fn source_is_the_core_error_source() {
        let rejection = ChatbaseRejection::from(Error::read_body("connection reset by peer"));
        assert_eq!(rejection.reason(), "read_body");
        let source = std::error::Error::source(&rejection).unwrap();
        assert_eq!(source.to_string(), "connection reset by peer");
        assert!(std::error::Error::source(&ChatbaseRejection::MissingVerifier).is_none());
    }
}
