//! [`ChatbaseRejection`]: the response to a request that is not a verified
//! Chatbase webhook.

use std::fmt;

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use chatbase_core::Error;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};

/// Why [`ChatbaseEvent`](crate::ChatbaseEvent) or
/// [`ChatbaseLayer`](crate::ChatbaseLayer) refused a request.
///
/// As a response it follows chatbase-core's status policy: 401 for a missing,
/// malformed or mismatched signature, 413 for a body over the limit, 400 for a
/// body that could not be read or is signed but not a Chatbase event. The body is
/// `{"message": "..."}` with `content-type: application/json`; the message says
/// what to check and never shows the secret, the signature or the request body.
///
/// Every rejection has already been logged once, at `WARN` through `tracing`, when
/// you get it.
///
/// # Example
///
/// Take `Result<ChatbaseEvent, ChatbaseRejection>` to see the reason yourself,
/// for instance to count forged requests:
///
/// ```
/// use axum::{Router, http::StatusCode, response::IntoResponse, routing::post};
/// use chatbase_axum::{ChatbaseEvent, ChatbaseRejection, Error, Verifier};
///
/// async fn webhook(event: Result<ChatbaseEvent, ChatbaseRejection>) -> axum::response::Response {
///     match event {
///         Ok(event) => {
///             // handle the event
///             # let _ = event;
///             StatusCode::NO_CONTENT.into_response()
///         }
///         Err(rejection) => {
///             if matches!(rejection.reason(), Error::SignatureMismatch) {
///                 // e.g. increment a "forged webhooks" metric
///             }
///             rejection.into_response()
///         }
///     }
/// }
///
/// # let verifier = Verifier::new(chatbase_axum::Secret::new("s").unwrap());
/// let app = Router::new().route("/webhook", post(webhook)).with_state(verifier);
/// # let _: Router = app;
/// ```
#[derive(Debug)]
pub struct ChatbaseRejection {
    reason: Error,
}

impl ChatbaseRejection {
    /// A rejection for `reason`, logged once at `WARN` (status and reason only).
    pub(crate) fn logged(reason: Error) -> Self {
        reason.log();
        Self { reason }
    }

    /// Why the request was refused.
    #[must_use]
    pub fn reason(&self) -> &Error {
        &self.reason
    }

    /// Why the request was refused, by value.
    #[must_use]
    pub fn into_reason(self) -> Error {
        self.reason
    }

    /// The status the response carries: 401, 413 or 400.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        // chatbase-core only answers 400, 401 and 413, all valid status codes.
        StatusCode::from_u16(self.reason.status()).unwrap_or(StatusCode::BAD_REQUEST)
    }
}

impl IntoResponse for ChatbaseRejection {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.reason.json_body()));
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The reason's message: what is wrong and what to check.
impl fmt::Display for ChatbaseRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.reason, f)
    }
}

/// Transparent over the reason: [`source`](std::error::Error::source) is the
/// reason's own source (the body stream's error for a read failure, `serde_json`'s
/// for an invalid payload, which may quote the body: don't log it).
impl std::error::Error for ChatbaseRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.reason.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn parts(rejection: ChatbaseRejection) -> (StatusCode, Option<HeaderValue>, String) {
        let response = rejection.into_response();
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn response_follows_the_core_policy() {
        for (reason, status) in [
            (Error::MissingSignature, StatusCode::UNAUTHORIZED),
            (Error::SignatureMismatch, StatusCode::UNAUTHORIZED),
            (
                Error::BodyTooLarge { limit: 8 },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (Error::read_body("reset"), StatusCode::BAD_REQUEST),
        ] {
            let message = reason.to_string();
            let json = reason.json_body();
            let rejection = ChatbaseRejection { reason };
            assert_eq!(rejection.status(), status);
            assert_eq!(rejection.to_string(), message);
            let (got_status, content_type, body) = parts(rejection).await;
            assert_eq!(got_status, status);
            assert_eq!(content_type.unwrap(), "application/json");
            assert_eq!(body, json);
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(value["message"], message.as_str());
        }
    }

    #[test]
    fn accessors_and_source_are_the_reason() {
        let rejection = ChatbaseRejection {
            reason: Error::read_body("connection reset by peer"),
        };
        assert!(matches!(rejection.reason(), Error::ReadBody(_)));
        let source = std::error::Error::source(&rejection).unwrap();
        assert_eq!(source.to_string(), "connection reset by peer");
        assert!(matches!(rejection.into_reason(), Error::ReadBody(_)));

        let missing = ChatbaseRejection {
            reason: Error::MissingSignature,
        };
        assert!(std::error::Error::source(&missing).is_none());
    }
}
