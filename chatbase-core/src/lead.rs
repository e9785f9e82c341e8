//! The payload of a `leads.submit` event.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::text::{OptionalTextSeed, Text};

/// A lead: what a customer submitted to the chatbot's lead form, the payload of a
/// `leads.submit` event.
///
/// It borrows from the verified event it comes from
/// ([`ChatbaseEvent::event`](crate::ChatbaseEvent::event)): each accessor hands
/// out the text straight from the raw body, so reading a lead allocates nothing.
/// Keep what you need with `.map(str::to_owned)`.
///
/// Every field tolerates being missing or `null` (it is then `None`), and unknown
/// fields are ignored, so a form that does not ask for a phone number, or a new
/// field Chatbase adds, does not make the event fail. Serializing gives
/// Chatbase's camelCase shape back, leaving out the fields that are `None`.
///
/// `Debug` shows `conversation_id` but redacts the customer's email, name and
/// phone, so logging a lead with `{:?}` does not leak customer data.
///
/// # Example
///
/// ```
/// use chatbase_core::{Event, testing};
///
/// let event = testing::event(
///     r#"{"eventType":"leads.submit","chatbotId":"bot_1",
///         "payload":{"conversationId":"conv_1","customerEmail":"ada@example.com"}}"#,
/// )?;
/// let Event::LeadsSubmit(lead) = event.event() else { unreachable!() };
/// assert_eq!(lead.conversation_id(), Some("conv_1"));
/// assert_eq!(lead.customer_email(), Some("ada@example.com"));
/// assert_eq!(lead.customer_phone(), None);
/// assert!(!format!("{lead:?}").contains("ada@"));
/// # Ok::<(), chatbase_core::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Lead<'a> {
    body: &'a [u8],
    fields: &'a LeadFields,
}

/// The fields of a lead, as spans of the body they were read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeadFields {
    conversation_id: Option<Text>,
    customer_email: Option<Text>,
    customer_name: Option<Text>,
    customer_phone: Option<Text>,
}

impl<'a> Lead<'a> {
    /// The `eventType` whose payload is a lead: `leads.submit`.
    pub const EVENT_TYPE: &'static str = "leads.submit";

    pub(crate) fn new(body: &'a [u8], fields: &'a LeadFields) -> Self {
        Self { body, fields }
    }

    /// The conversation the lead was submitted in (`conversationId`).
    pub fn conversation_id(&self) -> Option<&'a str> {
        self.get(&self.fields.conversation_id)
    }

    /// The customer's email address (`customerEmail`). Personal data: don't log it.
    pub fn customer_email(&self) -> Option<&'a str> {
        self.get(&self.fields.customer_email)
    }

    /// The customer's name (`customerName`). Personal data: don't log it.
    pub fn customer_name(&self) -> Option<&'a str> {
        self.get(&self.fields.customer_name)
    }

    /// The customer's phone number (`customerPhone`). Personal data: don't log it.
    pub fn customer_phone(&self) -> Option<&'a str> {
        self.get(&self.fields.customer_phone)
    }

    fn get(&self, field: &'a Option<Text>) -> Option<&'a str> {
        field.as_ref().map(|text| text.get(self.body))
    }
}

/// Two leads are equal when their fields have the same text.
impl PartialEq for Lead<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.conversation_id() == other.conversation_id()
            && self.customer_email() == other.customer_email()
            && self.customer_name() == other.customer_name()
            && self.customer_phone() == other.customer_phone()
    }
}

impl fmt::Debug for Lead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |field: Option<&str>| field.map(|_| Redacted);
        f.debug_struct("Lead")
            .field("conversation_id", &self.conversation_id())
            .field("customer_email", &redacted(self.customer_email()))
            .field("customer_name", &redacted(self.customer_name()))
            .field("customer_phone", &redacted(self.customer_phone()))
            .finish()
    }
}

/// Chatbase's camelCase shape, without the fields that are `None`.
impl Serialize for Lead<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = [
            ("conversationId", self.conversation_id()),
            ("customerEmail", self.customer_email()),
            ("customerName", self.customer_name()),
            ("customerPhone", self.customer_phone()),
        ];
        let present = fields.iter().filter(|(_, value)| value.is_some()).count();
        let mut state = serializer.serialize_struct("Lead", present)?;
        for (name, value) in fields {
            match value {
                Some(value) => state.serialize_field(name, value)?,
                None => state.skip_field(name)?,
            }
        }
        state.end()
    }
}

/// Stands in for personal data in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Reads a lead payload (an object, or `null` for an empty lead) of the body
/// starting at `base`.
#[derive(Clone, Copy)]
pub(crate) struct LeadSeed<'b> {
    pub(crate) base: &'b [u8],
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    ConversationId,
    CustomerEmail,
    CustomerName,
    CustomerPhone,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for LeadSeed<'_> {
    type Value = LeadFields;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LeadFields, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for LeadSeed<'_> {
    type Value = LeadFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a lead object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<LeadFields, E> {
        Ok(LeadFields::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<LeadFields, E> {
        Ok(LeadFields::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<LeadFields, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeadFields, A::Error> {
        let mut fields = LeadFields::default();
        // One bit per field, to refuse a field given twice.
        let mut seen = 0_u8;
        let seed = OptionalTextSeed { base: self.base };
        while let Some(field) = map.next_key::<Field>()? {
            let (slot, bit, name) = match field {
                Field::ConversationId => (&mut fields.conversation_id, 1, "conversationId"),
                Field::CustomerEmail => (&mut fields.customer_email, 2, "customerEmail"),
                Field::CustomerName => (&mut fields.customer_name, 4, "customerName"),
                Field::CustomerPhone => (&mut fields.customer_phone, 8, "customerPhone"),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if seen & bit != 0 {
                return Err(de::Error::duplicate_field(name));
            }
            seen |= bit;
            *slot = map.next_value_seed(seed)?;
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Event, testing};

    fn with_lead(payload: &str, check: impl FnOnce(crate::Lead<'_>)) {
        let body = format!(r#"{{"eventType":"leads.submit","payload":{payload}}}"#);
        let event = testing::event(body).unwrap();
        let Event::LeadsSubmit(lead) = event.event() else {
            panic!("not a lead")
        };
        check(lead);
    }

    #[test]
    fn missing_null_and_unknown_fields_are_tolerated() {
        with_lead(
            r#"{"conversationId":"c1","customerEmail":null,"favouriteColour":"teal"}"#,
            |lead| {
                assert_eq!(lead.conversation_id(), Some("c1"));
                assert_eq!(lead.customer_email(), None);
                assert_eq!(lead.customer_name(), None);
                assert_eq!(lead.customer_phone(), None);
            },
        );
    }

    #[test]
    fn wrong_types_and_duplicates_are_errors() {
        for payload in [
            r#"{"customerPhone":5551234}"#,
            r#"{"customerName":"a","customerName":"b"}"#,
            "[1]",
            "[]",
            "\"lead\"",
        ] {
            let body = format!(r#"{{"eventType":"leads.submit","payload":{payload}}}"#);
            assert_eq!(testing::event(body).unwrap_err().status(), 400, "{payload}");
        }
    }

    #[test]
    fn escaped_values_are_decoded() {
        with_lead(r#"{"customerName":"Zo\u00eb \"Z\""}"#, |lead| {
            assert_eq!(lead.customer_name(), Some("Zoë \"Z\""));
        });
    }

    #[test]
    fn serializes_to_camel_case_without_nones() {
        with_lead(
            r#"{"customerPhone":"+1","conversationId":"c","extra":1}"#,
            |lead| {
                assert_eq!(
                    serde_json::to_value(lead).unwrap(),
                    serde_json::json!({"conversationId": "c", "customerPhone": "+1"})
                );
            },
        );
    }

    #[test]
    fn debug_redacts_customer_data() {
        with_lead(
            r#"{"conversationId":"conv_9","customerEmail":"ada@example.com",
                "customerName":"Ada Lovelace","customerPhone":"+44 20 7946 0000"}"#,
            |lead| {
                let shown = format!("{lead:?} {lead:#?}");
                assert!(shown.contains("conv_9"), "{shown}");
                for secret in ["ada@", "Lovelace", "7946"] {
                    assert!(!shown.contains(secret), "{shown}");
                }
                assert!(shown.contains("[redacted]"));
            },
        );
        with_lead("{}", |lead| {
            assert!(format!("{lead:?}").contains("customer_email: None"));
        });
    }
}
