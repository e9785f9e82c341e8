//! The payload of a `leads.submit` event.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A lead: what a customer submitted to the chatbot's lead form, the payload of a
/// `leads.submit` event.
///
/// Every field tolerates being missing or `null` (it is then `None`), and unknown
/// fields are ignored, so a form that does not ask for a phone number, or a new
/// field Chatbase adds, does not make the event fail. Serializing gives Chatbase's
/// camelCase shape back, leaving out the fields that are `None`.
///
/// `Debug` shows `conversation_id` but redacts the customer's email, name and
/// phone, so logging a lead with `{:?}` does not leak customer data.
///
/// # Example
///
/// ```
/// use chatbase_core::Lead;
///
/// let mut lead = Lead::default();
/// lead.conversation_id = Some("conv_1".to_owned());
/// lead.customer_email = Some("ada@example.com".to_owned());
/// assert_eq!(
///     serde_json::to_string(&lead)?,
///     r#"{"conversationId":"conv_1","customerEmail":"ada@example.com"}"#
/// );
/// assert!(!format!("{lead:?}").contains("ada@"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Lead {
    /// The conversation the lead was submitted in (`conversationId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The customer's email address (`customerEmail`). Personal data: don't log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// The customer's name (`customerName`). Personal data: don't log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// The customer's phone number (`customerPhone`). Personal data: don't log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_phone: Option<String>,
}

impl Lead {
    /// The `eventType` whose payload is a lead: `leads.submit`.
    pub const EVENT_TYPE: &'static str = "leads.submit";
}

impl fmt::Debug for Lead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |field: &Option<String>| field.as_ref().map(|_| Redacted);
        f.debug_struct("Lead")
            .field("conversation_id", &self.conversation_id)
            .field("customer_email", &redacted(&self.customer_email))
            .field("customer_name", &redacted(&self.customer_name))
            .field("customer_phone", &redacted(&self.customer_phone))
            .finish()
    }
}

/// Stands in for personal data in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_null_and_unknown_fields_are_tolerated() {
        let lead: Lead = serde_json::from_str(
            r#"{"conversationId":"c1","customerEmail":null,"favouriteColour":"teal"}"#,
        )
        .unwrap();
        assert_eq!(lead.conversation_id.as_deref(), Some("c1"));
        assert_eq!(lead.customer_email, None);
        assert_eq!(lead.customer_name, None);
        assert_eq!(lead.customer_phone, None);
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(serde_json::from_str::<Lead>(r#"{"customerPhone":5551234}"#).is_err());
    }

    #[test]
    fn serializes_to_camel_case() {
        let lead = Lead {
            conversation_id: Some("c".into()),
            customer_email: Some("e@example.com".into()),
            customer_name: Some("N".into()),
            customer_phone: Some("+1".into()),
        };
        let json = serde_json::to_value(&lead).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "conversationId": "c",
                "customerEmail": "e@example.com",
                "customerName": "N",
                "customerPhone": "+1",
            })
        );
        assert_eq!(serde_json::from_value::<Lead>(json).unwrap(), lead);
    }

    #[test]
    fn debug_redacts_customer_data() {
        let lead = Lead {
            conversation_id: Some("conv_9".into()),
            customer_email: Some("ada@example.com".into()),
            customer_name: Some("Ada Lovelace".into()),
            customer_phone: Some("+44 20 7946 0000".into()),
        };
        let shown = format!("{lead:?} {lead:#?}");
        assert!(shown.contains("conv_9"), "{shown}");
        for secret in ["ada@", "Lovelace", "7946"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("[redacted]"));
        assert!(format!("{:?}", Lead::default()).contains("customer_email: None"));
    }
}
