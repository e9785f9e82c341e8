//! [`ChatbaseLayer`]: verify every request to a group of routes.
//!
//! ```
//! use axum::{Json, Router, body::{Body, Bytes}, http::{Request, StatusCode}, routing::post};
//! use chatbase_axum::{ChatbaseLayer, Secret, Verifier, chatbase_core::sign};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::new("secret-from-the-chatbase-dashboard")?;
//! let verifier = Verifier::new(secret.clone());
//!
//! // Handlers behind the layer take the body however they like.
//! let routes = Router::new()
//!     .route("/raw", post(|body: Bytes| async move { body.len().to_string() }))
//!     .route("/json", post(|Json(event): Json<serde_json::Value>| async move {
//!         event["eventType"].as_str().unwrap_or_default().to_owned()
//!     }));
//! let app = Router::new()
//!     .nest("/chatbase", routes)
//!     .layer(ChatbaseLayer::new(verifier));
//!
//! let body = r#"{"eventType":"leads.submit","chatbotId":"bot_1","payload":{}}"#;
//! let signed = Request::post("/chatbase/json")
//!     .header("x-chatbase-signature", sign(&secret, body.as_bytes()))
//!     .body(Body::from(body))?;
//! let response = app.clone().oneshot(signed).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let forged = Request::post("/chatbase/raw")
//!     .header("x-chatbase-signature", "0".repeat(40))
//!     .body(Body::from(body))?;
//! let response = app.oneshot(forged).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```
//!
//! The layer verifies each request exactly as the
//! [`ChatbaseEvent`](crate::ChatbaseEvent) extractor does, with the
//! [`Verifier`](chatbase_core::Verifier) it was given: the signature header and
//! the announced length first, then the body, read up to the verifier's limit,
//! then the signature, then the event. A request that fails is answered with a
//! [`ChatbaseRejection`](crate::ChatbaseRejection) (401, 413 or 400) and the
//! wrapped service never sees it.
//!
//! A request that passes goes on with:
//!
//! - its body replaced by the verified bytes, so the handler can take
//!   [`Bytes`](bytes::Bytes), `String`, `Json<T>` or anything else that reads
//!   the body (and `content-type: application/json` if it had no content type:
//!   Chatbase does not promise one, and `Json<T>` requires it);
//! - the verified [`chatbase_core::ChatbaseEvent`] in its extensions: the
//!   [`ChatbaseEvent`](crate::ChatbaseEvent) extractor takes it from there
//!   without reading, hashing or parsing again (its route's state must still
//!   provide a `Verifier`, which is then not used), and
//!   `Extension<chatbase_core::ChatbaseEvent>` works with any state.
//!
//! It guards every request to what it wraps, whatever the method: with
//! [`Router::layer`](https://docs.rs/axum/0.8/axum/struct.Router.html#method.layer)
//! that includes the router's fallback, so an unsigned request to an unknown path
//! gets a 401 rather than a 404. Wrap only your webhook routes, as above, and use
//! `route_layer` if unknown paths should keep their 404.

// tower-http's layout: the layer in `layer.rs`, the service in `service.rs`.
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use self::future::ResponseFuture;
pub use self::layer::ChatbaseLayer;
pub use self::service::Chatbase;
