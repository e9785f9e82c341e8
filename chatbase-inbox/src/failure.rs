//! [`Failure`]: why a handler could not process a delivery, in words that can
//! be stored without customer data.

use std::borrow::Cow;
use std::fmt;

/// Why a handler failed. The delivery is retried with backoff, or declared
/// dead after the last attempt (at once for a [permanent](Self::permanent)
/// failure), and the reason is stored as its `last_error`.
///
/// **The stored reason never holds customer data**, because it is either a
/// `&'static str` you wrote ([`Failure::new`]) or the *type name* of an error
/// converted with `?`: any `E: std::error::Error` converts into a `Failure`
/// (as into `anyhow::Error`), keeping only `std::any::type_name::<E>()`, such
/// as `std::io::error::Error`, and never its message, which could quote an
/// email address or a phone number. A handler that panics is stored as
/// `panicked`, without the panic's message. Log the details yourself, where
/// your logging policy applies, if you need them.
///
/// ```
/// use chatbase_inbox::{Delivery, Failure};
///
/// async fn handle(delivery: Delivery) -> Result<(), Failure> {
///     let event = delivery.event()?; // stored as "chatbase_core::error::InvalidPayload"
///     if event.chatbot_id().is_none() {
///         return Err(Failure::permanent("no chatbot id"));
///     }
///     std::fs::create_dir_all("leads")?; // stored as "std::io::error::Error"
///     Ok(())
/// }
/// ```
///
/// `Failure` deliberately does not implement `std::error::Error`: that is what
/// lets every error convert into it.
pub struct Failure {
    reason: Cow<'static, str>,
    permanent: bool,
}

impl Failure {
    /// A failure to retry, with a fixed reason.
    pub fn new(reason: &'static str) -> Self {
        Self {
            reason: Cow::Borrowed(reason),
            permanent: false,
        }
    }

    /// A failure that retrying cannot fix: the delivery is declared dead at
    /// once, and left for an operator.
    pub fn permanent(reason: &'static str) -> Self {
        Self {
            reason: Cow::Borrowed(reason),
            permanent: true,
        }
    }

    /// The type name of `E`, as the `?` conversion stores it.
    pub fn from_error_type<E: ?Sized>() -> Self {
        Self {
            reason: Cow::Borrowed(std::any::type_name::<E>()),
            permanent: false,
        }
    }

    /// Makes this failure permanent: no more attempts.
    pub fn into_permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// The reason that will be stored.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the delivery is declared dead at once.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    pub(crate) fn panicked() -> Self {
        Self::new("panicked")
    }

    pub(crate) fn into_reason(self) -> Cow<'static, str> {
        self.reason
    }
}

impl<E> From<E> for Failure
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(_: E) -> Self {
        Self::from_error_type::<E>()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        if self.permanent {
            f.write_str(" (permanent)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("reason", &self.reason)
            .field("permanent", &self.permanent)
            .finish()
    }
}
