//! [`ChatbaseError`]: why the extractor or the middleware did not let a request through.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};

/// Why [`ChatbaseEvent`](crate::ChatbaseEvent) or [`VerifyChatbase`](crate::VerifyChatbase)
/// did not let a request through.
///
/// As a [`ResponseError`] it answers with the status of [`chatbase_core::Error`]'s
/// policy (401, 413 or 400) and a JSON body `{"message": "..."}` with
/// `content-type: application/json`:
///
/// | variant | status | body |
/// |---|---|---|
/// | [`Rejected`](ChatbaseError::Rejected) | [`Error::status`](chatbase_core::Error::status): 401, 413 or 400 | [`Error::json_body`](chatbase_core::Error::json_body) |
/// | [`MissingVerifier`](ChatbaseError::MissingVerifier) | 500 | a generic message; the log line says what to register |
///
/// `Display` and `Debug` never show the secret, the expected signature or
/// anything from the body, so actix-web's `Logger`, which prints errors with
/// `{:?}`, does not leak customer data either.
///
/// # Example
///
/// ```
/// use actix_web::{ResponseError, body::MessageBody};
/// use chatbase_actix::{ChatbaseError, Error};
///
/// let error = ChatbaseError::from(Error::MissingSignature);
/// assert_eq!(error.status_code(), 401);
/// let response = error.error_response();
/// assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
/// let body = response.into_body().try_into_bytes().unwrap();
/// assert!(body.starts_with(br#"{"message":"missing `x-chatbase-signature` header"#));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ChatbaseError {
    /// The request was refused: unsigned, forged, too large, unreadable, or not a
    /// Chatbase event. The status and message come from chatbase-core.
    Rejected(chatbase_core::Error),
    /// No [`Verifier`](chatbase_core::Verifier) is registered for the route: a
    /// server misconfiguration, answered with 500 and logged at `ERROR` with the
    /// registration to add.
    MissingVerifier,
}

/// What the `ERROR` log line and `Display` of [`ChatbaseError::MissingVerifier`] say.
const MISSING_VERIFIER: &str = "no `chatbase_actix::Verifier` is registered for this route: \
     add `.app_data(web::Data::new(verifier))` to the App, Scope or Resource that serves it, \
     or wrap the route in `chatbase_actix::VerifyChatbase::new(verifier)`";

/// The body of the 500 for [`ChatbaseError::MissingVerifier`]: the client is told
/// that the server is at fault, not how it is configured.
const MISSING_VERIFIER_BODY: &str =
    r#"{"message":"the server is not configured to receive Chatbase webhooks"}"#;

impl ChatbaseError {
    /// The reason from chatbase-core, if the request itself was refused.
    #[must_use]
    pub fn rejection(&self) -> Option<&chatbase_core::Error> {
        match self {
            Self::Rejected(error) => Some(error),
            Self::MissingVerifier => None,
        }
    }

    /// Logs the error once: a rejection at `WARN` through
    /// [`chatbase_core::Error::log`], a missing verifier at `ERROR` with the
    /// registration to add.
    pub(crate) fn log(&self) {
        match self {
            Self::Rejected(error) => error.log(),
            Self::MissingVerifier => tracing::error!("{MISSING_VERIFIER}"),
        }
    }
}

impl From<chatbase_core::Error> for ChatbaseError {
    fn from(error: chatbase_core::Error) -> Self {
        Self::Rejected(error)
    }
}

impl fmt::Display for ChatbaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(error) => fmt::Display::fmt(error, f),
            Self::MissingVerifier => f.write_str(MISSING_VERIFIER),
        }
    }
}

impl std::error::Error for ChatbaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // `Display` already shows the core error's message: hand on its source,
        // as `#[error(transparent)]` would.
        match self {
            Self::Rejected(error) => std::error::Error::source(error),
            Self::MissingVerifier => None,
        }
    }
}

impl ResponseError for ChatbaseError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Rejected(error) => {
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::MissingVerifier => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::Rejected(error) => error.json_body(),
            Self::MissingVerifier => MISSING_VERIFIER_BODY.to_owned(),
        };
        HttpResponse::build(self.status_code())
            .content_type(ContentType::json())
            .body(body)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use chatbase_core::testing;

    use super::*;

    fn body_of(error: &ChatbaseError) -> serde_json::Value {
        let response = error.error_response();
        assert_eq!(response.status(), error.status_code());
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        let bytes = response.into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn signed_but_invalid() -> chatbase_core::Error {
        // A lead whose phone is a number: serde_json's message quotes it.
        testing::event(r#"{"eventType":"leads.submit","payload":{"customerPhone":5551234}}"#)
            .unwrap_err()
    }

    #[test]
    fn rejections_follow_the_core_policy() {
        let cases = [
            (chatbase_core::Error::MissingSignature, 401),
            (chatbase_core::Error::SignatureMismatch, 401),
            (chatbase_core::Error::BodyTooLarge { limit: 10 }, 413),
            (chatbase_core::Error::read_body("reset"), 400),
            (signed_but_invalid(), 400),
        ];
        for (core, status) in cases {
            let message = core.to_string();
            let error = ChatbaseError::from(core);
            assert_eq!(error.status_code().as_u16(), status);
            assert_eq!(body_of(&error), serde_json::json!({ "message": message }));
            assert_eq!(error.to_string(), message);
            assert!(error.rejection().is_some());
        }
    }

    #[test]
    fn missing_verifier_is_a_500_that_says_what_to_register() {
        let error = ChatbaseError::MissingVerifier;
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(error.rejection().is_none());
        let shown = error.to_string();
        assert!(
            shown.contains("app_data(web::Data::new(verifier))"),
            "{shown}"
        );
        assert!(shown.contains("VerifyChatbase::new(verifier)"), "{shown}");
        // The client learns that the server is at fault, not how it is set up.
        let body = body_of(&error);
        let message = body["message"].as_str().unwrap();
        assert!(!message.contains("app_data"), "{message}");
    }

    #[test]
    fn debug_and_display_do_not_quote_the_body() {
        let error = ChatbaseError::from(signed_but_invalid());
        for shown in [format!("{error:?}"), error.to_string()] {
            assert!(!shown.contains("5551234"), "{shown}");
        }
        assert!(
            format!("{error:?}")
                .starts_with("Rejected(InvalidPayload(InvalidPayload { kind: UnexpectedShape")
        );
        // The detail stays reachable, for whoever decides to log it.
        let source = std::error::Error::source(&error).unwrap();
        assert!(source.to_string().contains("5551234"));
        // And the response body does not quote it either.
        let bytes = error.error_response().into_body().try_into_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("5551234"));
    }
}
