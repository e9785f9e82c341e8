//! [`ChatbaseLayer`].

use chatbase_core::Verifier;
use tower_layer::Layer;

use super::Chatbase;

/// Verifies every request to the service it wraps as a Chatbase webhook.
///
/// See the [module docs](crate::layer) for what it does and an example.
#[derive(Debug, Clone)]
pub struct ChatbaseLayer {
    verifier: Verifier,
}

impl ChatbaseLayer {
    /// A layer verifying requests with `verifier`: its secrets and its body limit.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// The verifier requests are checked with.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl<S> Layer<S> for ChatbaseLayer {
    type Service = Chatbase<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Chatbase::new(inner, self.verifier.clone())
    }
}
