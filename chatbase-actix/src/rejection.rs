//! [`ChatbaseRejection`]: why a request did not get through.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use chatbase_core::Error;

/// Why [`ChatbaseEvent`](crate::ChatbaseEvent) or
/// [`VerifyChatbase`](crate::VerifyChatbase) did not let a request through.
///
/// As a [`ResponseError`]:
///
/// | variant | status | body |
/// |---|---|---|
/// | [`Rejected`](ChatbaseRejection::Rejected) | chatbase-core's policy: 401, 413, 400, or 503 with `Retry-After` when a secret lookup failed | `{"message": "..."}`: a few words, never the secret, the signature or the request body |
/// | [`MissingVerifier`](ChatbaseRejection::MissingVerifier) | 500 | a generic message; the log line says what to register |
///
/// with `content-type: application/json`. Every rejection has already been
/// logged once through `tracing` under the target `chatbase::rejection`
/// ([`REJECTION_LOG_TARGET`](chatbase_core::REJECTION_LOG_TARGET)): a refused
/// request at `WARN`, with what to check; a failed secret lookup and a missing
/// verifier at `ERROR`.
///
/// `Display` and `Debug` never show the secret, the expected signature or
/// anything from the body, so actix-web's `Logger`, which prints errors with
/// `{:?}`, does not leak customer data either.
///
/// # Example
///
/// ```
/// use actix_web::{ResponseError, body::MessageBody};
/// use chatbase_actix::{ChatbaseRejection, Error};
///
/// let rejection = ChatbaseRejection::from(Error::SignatureMismatch);
/// assert_eq!(rejection.status_code(), 401);
/// assert_eq!(rejection.reason(), "signature_mismatch");
/// let response = rejection.error_response();
/// assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
/// let body = response.into_body().try_into_bytes().unwrap();
/// assert_eq!(body, r#"{"message":"signature mismatch"}"#);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ChatbaseRejection {
    /// The request was refused: unsigned, forged, too large, unreadable, or not
    /// a Chatbase event. The status and message come from chatbase-core.
    Rejected(Error),
    /// No [`Verifier`](chatbase_core::Verifier) is registered for the route,
    /// and no [`VerifyChatbase`](crate::VerifyChatbase) middleware verified the
    /// request: a server misconfiguration, answered 500 and logged at `ERROR`
    /// with the registration to add.
    MissingVerifier,
}

/// What the `ERROR` line of [`ChatbaseRejection::MissingVerifier`] says.
const MISSING_VERIFIER: &str = "`ChatbaseEvent` found no `Verifier` for this route: \
     wrap the route or its scope in `VerifyChatbase::new(verifier)`, \
     or register `.app_data(web::Data::new(verifier))` on the App, Scope or Resource";

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
}

impl From<Error> for ChatbaseRejection {
    fn from(error: Error) -> Self {
        Self::Rejected(error)
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

impl ResponseError for ChatbaseRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            // chatbase-core's statuses are all valid status codes.
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
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(ContentType::json());
        if let Some(seconds) = self.error().and_then(Error::retry_after) {
            response.insert_header((RETRY_AFTER, seconds));
        }
        response.body(body)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use chatbase_core::testing;

    use super::*;

    fn body_of(error: &ChatbaseRejection) -> serde_json::Value {
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
    fn a_failed_lookup_is_a_503_with_retry_after() {
        let response = ChatbaseRejection::from(chatbase_core::Error::SecretLookup("down".into()))
            .error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "5");
        let response =
            ChatbaseRejection::from(chatbase_core::Error::SignatureMismatch).error_response();
        assert!(response.headers().get(RETRY_AFTER).is_none());
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
            let message = core.client_message();
            let hint = core.to_string();
            let error = ChatbaseRejection::from(core);
            assert_eq!(error.status_code().as_u16(), status);
            assert_eq!(body_of(&error), serde_json::json!({ "message": message }));
            assert_eq!(error.to_string(), hint);
            assert!(error.error().is_some());
        }
    }

    #[test]
    fn missing_verifier_is_a_500_that_says_what_to_register() {
        let error = ChatbaseRejection::MissingVerifier;
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(error.error().is_none());
        assert_eq!(error.reason(), "missing_verifier");
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
        let error = ChatbaseRejection::from(signed_but_invalid());
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
