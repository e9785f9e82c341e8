//! Parsing a verified body into a [`ChatbaseEvent`], in one pass.
//!
//! serde's internally tagged enums buffer the whole object into an intermediate
//! tree before they look at the tag, which nearly doubles the cost of a small
//! event. Here a hand-written map visitor reads `eventType` first (Chatbase sends
//! it first) and then deserializes `payload` straight into its type; an unknown
//! type's payload is only validated and kept as a borrowed slice of the body. If
//! `payload` comes before `eventType`, it is kept raw and parsed once the type is
//! known.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Lead;
use crate::error::{InvalidPayload, PayloadErrorKind};
use crate::event::{ChatbaseEvent, Event, UnknownEvent};

/// Parses a verified body. Only [`Verifier`](crate::Verifier) calls this, after
/// the signature has matched.
pub(crate) fn parse(body: Bytes) -> Result<ChatbaseEvent, InvalidPayload> {
    let parsed = parse_slice(&body);
    match parsed {
        Ok((chatbot_id, event)) => Ok(ChatbaseEvent::new(chatbot_id, event, body)),
        Err(error) => Err(classify(&body, error)),
    }
}

fn parse_slice(body: &[u8]) -> serde_json::Result<(Option<String>, Event)> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = deserializer.deserialize_map(EnvelopeVisitor)?;
    deserializer.end()?;
    Ok(parsed)
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    EventType,
    ChatbotId,
    Payload,
    #[serde(other)]
    Other,
}

/// A payload read before or after its type was known.
enum Payload<'de> {
    Lead(Lead),
    Raw(&'de RawValue),
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = (Option<String>, Event);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Chatbase event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event_type: Option<Cow<'de, str>> = None;
        let mut chatbot_id: Option<Option<String>> = None;
        let mut payload: Option<Payload<'de>> = None;

        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventType => {
                    if event_type.is_some() {
                        return Err(de::Error::duplicate_field("eventType"));
                    }
                    event_type = Some(map.next_value::<Text<'de>>()?.0);
                }
                Field::ChatbotId => {
                    if chatbot_id.is_some() {
                        return Err(de::Error::duplicate_field("chatbotId"));
                    }
                    chatbot_id = Some(map.next_value()?);
                }
                Field::Payload => {
                    if payload.is_some() {
                        return Err(de::Error::duplicate_field("payload"));
                    }
                    payload = Some(match event_type.as_deref() {
                        Some(Lead::EVENT_TYPE) => {
                            Payload::Lead(map.next_value::<Option<Lead>>()?.unwrap_or_default())
                        }
                        // Unknown type, or not known yet: validate and keep as is.
                        _ => Payload::Raw(map.next_value()?),
                    });
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }

        let event_type = event_type.ok_or_else(|| de::Error::missing_field("eventType"))?;
        let event = if event_type == Lead::EVENT_TYPE {
            Event::LeadsSubmit(match payload {
                Some(Payload::Lead(lead)) => lead,
                Some(Payload::Raw(raw)) => serde_json::from_str::<Option<Lead>>(raw.get())
                    .map_err(de::Error::custom)?
                    .unwrap_or_default(),
                None => Lead::default(),
            })
        } else {
            let payload = match payload {
                Some(Payload::Raw(raw)) => raw.to_owned(),
                // Only `leads.submit` payloads are read as leads.
                Some(Payload::Lead(_)) | None => RawValue::NULL.to_owned(),
            };
            Event::Unknown(UnknownEvent::new(event_type.into_owned(), payload))
        };
        Ok((chatbot_id.flatten(), event))
    }
}

/// A string borrowed from the body when it has no escapes.
///
/// (`Cow<str>`'s own `Deserialize` always allocates.)
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// Works out what is wrong with a body that failed to parse. Only runs on failure,
/// so the successful path pays nothing for the precise message.
fn classify(body: &[u8], error: serde_json::Error) -> InvalidPayload {
    let kind = if body.trim_ascii().is_empty() {
        PayloadErrorKind::Empty
    } else if std::str::from_utf8(body).is_err() {
        PayloadErrorKind::NotUtf8
    } else if !error.is_data() {
        PayloadErrorKind::NotJson
    } else if body.trim_ascii_start().first() != Some(&b'{') {
        PayloadErrorKind::NotAnObject
    } else if !has_string_event_type(body) {
        PayloadErrorKind::NoEventType
    } else {
        PayloadErrorKind::UnexpectedShape
    };
    let source = match kind {
        PayloadErrorKind::Empty | PayloadErrorKind::NotUtf8 | PayloadErrorKind::NotAnObject => None,
        _ => Some(error),
    };
    InvalidPayload::new(kind, source)
}

/// Whether the object's `eventType` is present and a string. If the object does
/// not parse even loosely (a duplicated key...), the type is not the problem.
fn has_string_event_type(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(rename = "eventType", borrow)]
        event_type: Option<&'a RawValue>,
    }
    match serde_json::from_slice::<Probe<'_>>(body) {
        Ok(probe) => probe
            .event_type
            .is_some_and(|raw| raw.get().starts_with('"')),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed document's sample body, with a real address in place of the
    /// page's obfuscated one.
    const SEED_SAMPLE: &str = r#"{
        "eventType": "leads.submit",
        "chatbotId": "xxxxxxxx",
        "payload": {
            "conversationId": "xxxxxxxx",
            "customerEmail": "example@chatbase.co",
            "customerName": "Example",
            "customerPhone": "123"
        }
    }"#;

    fn ok(body: &str) -> ChatbaseEvent {
        parse(Bytes::copy_from_slice(body.as_bytes())).unwrap()
    }

    fn kind(body: &[u8]) -> PayloadErrorKind {
        parse(Bytes::copy_from_slice(body)).unwrap_err().kind()
    }

    fn lead(event: &ChatbaseEvent) -> &Lead {
        match event.event() {
            Event::LeadsSubmit(lead) => lead,
            other => panic!("expected a lead, got {other:?}"),
        }
    }

    #[test]
    fn seed_sample() {
        let event = ok(SEED_SAMPLE);
        assert_eq!(event.chatbot_id(), Some("xxxxxxxx"));
        assert_eq!(event.event_type(), "leads.submit");
        let lead = lead(&event);
        assert_eq!(lead.conversation_id.as_deref(), Some("xxxxxxxx"));
        assert_eq!(lead.customer_email.as_deref(), Some("example@chatbase.co"));
        assert_eq!(lead.customer_name.as_deref(), Some("Example"));
        assert_eq!(lead.customer_phone.as_deref(), Some("123"));
        assert_eq!(event.raw_body(), SEED_SAMPLE.as_bytes());
    }

    #[test]
    fn payload_before_event_type() {
        let event = ok(
            r#"{"payload":{"conversationId":"c","customerName":"N"},"chatbotId":"b","eventType":"leads.submit"}"#,
        );
        assert_eq!(lead(&event).conversation_id.as_deref(), Some("c"));
        assert_eq!(lead(&event).customer_name.as_deref(), Some("N"));
        assert_eq!(event.chatbot_id(), Some("b"));
    }

    #[test]
    fn escaped_keys_and_values() {
        let event =
            ok(r#"{"event\u0054ype":"leads.su\u0062mit","payload":{"customerName":"A\"B"}}"#);
        assert_eq!(lead(&event).customer_name.as_deref(), Some("A\"B"));
    }

    #[test]
    fn lead_with_missing_null_and_extra_fields() {
        let event = ok(
            r#"{"eventType":"leads.submit","chatbotId":"b","extra":[1,{"x":2}],
                "payload":{"conversationId":"c","customerEmail":null,"source":"widget"}}"#,
        );
        let lead = lead(&event);
        assert_eq!(lead.conversation_id.as_deref(), Some("c"));
        assert_eq!(lead.customer_email, None);
        assert_eq!(lead.customer_name, None);
        assert_eq!(lead.customer_phone, None);
    }

    #[test]
    fn lead_with_null_or_missing_payload_is_empty() {
        for body in [
            r#"{"eventType":"leads.submit","payload":null}"#,
            r#"{"eventType":"leads.submit"}"#,
            r#"{"payload":null,"eventType":"leads.submit"}"#,
        ] {
            assert_eq!(lead(&ok(body)), &Lead::default(), "{body}");
        }
    }

    #[test]
    fn missing_or_null_chatbot_id() {
        assert_eq!(ok(r#"{"eventType":"x"}"#).chatbot_id(), None);
        assert_eq!(
            ok(r#"{"eventType":"x","chatbotId":null}"#).chatbot_id(),
            None
        );
    }

    #[test]
    fn unknown_event_types_are_delivered_with_their_payload() {
        let body =
            r#"{"eventType":"conversations.end","chatbotId":"b","payload":{"n":[1, 2.5,"x"]}}"#;
        let event = ok(body);
        assert_eq!(event.event_type(), "conversations.end");
        let Event::Unknown(unknown) = event.event() else {
            panic!("expected an unknown event")
        };
        assert_eq!(unknown.payload().get(), r#"{"n":[1, 2.5,"x"]}"#);
        let value: serde_json::Value = unknown.deserialize_payload().unwrap();
        assert_eq!(value, serde_json::json!({"n": [1, 2.5, "x"]}));

        let no_payload = ok(r#"{"eventType":"ping"}"#);
        let Event::Unknown(unknown) = no_payload.event() else {
            panic!("expected an unknown event")
        };
        assert_eq!(unknown.payload().get(), "null");
    }

    #[test]
    fn unknown_payload_of_any_json_type() {
        for payload in ["[1,2]", "\"s\"", "42", "true", "null"] {
            let event = ok(&format!(r#"{{"eventType":"x","payload":{payload}}}"#));
            let Event::Unknown(unknown) = event.event() else {
                panic!("expected an unknown event")
            };
            assert_eq!(unknown.payload().get(), payload);
        }
    }

    #[test]
    fn empty_bodies() {
        assert_eq!(kind(b""), PayloadErrorKind::Empty);
        assert_eq!(kind(b" \r\n\t"), PayloadErrorKind::Empty);
    }

    #[test]
    fn not_utf8() {
        assert_eq!(kind(b"\xff\xfe"), PayloadErrorKind::NotUtf8);
        assert_eq!(
            kind(b"{\"eventType\":\"x\",\"payload\":\"\xff\"}"),
            PayloadErrorKind::NotUtf8
        );
        assert_eq!(
            kind(b"{\"eventType\":\"leads.submit\",\"payload\":{\"customerName\":\"\xc3\"}}"),
            PayloadErrorKind::NotUtf8
        );
    }

    #[test]
    fn not_json() {
        for body in [
            "not json",
            "{",
            r#"{"eventType":"x"} trailing"#,
            r#"{"eventType":"x",}"#,
            "{'eventType':'x'}",
        ] {
            assert_eq!(kind(body.as_bytes()), PayloadErrorKind::NotJson, "{body}");
        }
    }

    #[test]
    fn not_an_object() {
        for body in [
            "[]",
            r#"[{"eventType":"x"}]"#,
            "42",
            r#""leads.submit""#,
            "null",
            "true",
        ] {
            assert_eq!(
                kind(body.as_bytes()),
                PayloadErrorKind::NotAnObject,
                "{body}"
            );
        }
    }

    #[test]
    fn no_string_event_type() {
        for body in [
            "{}",
            r#"{"chatbotId":"b","payload":{}}"#,
            r#"{"eventType":null}"#,
            r#"{"eventType":5}"#,
            r#"{"eventType":["leads.submit"]}"#,
        ] {
            assert_eq!(
                kind(body.as_bytes()),
                PayloadErrorKind::NoEventType,
                "{body}"
            );
        }
    }

    #[test]
    fn unexpected_shapes() {
        for body in [
            r#"{"eventType":"leads.submit","payload":{"customerPhone":5551234}}"#,
            r#"{"payload":{"customerPhone":5551234},"eventType":"leads.submit"}"#,
            r#"{"eventType":"leads.submit","payload":[1]}"#,
            r#"{"eventType":"x","chatbotId":7}"#,
            r#"{"eventType":"x","eventType":"y"}"#,
            r#"{"eventType":"x","payload":1,"payload":2}"#,
        ] {
            assert_eq!(
                kind(body.as_bytes()),
                PayloadErrorKind::UnexpectedShape,
                "{body}"
            );
        }
    }

    #[test]
    fn messages_never_quote_the_body() {
        let error = parse(Bytes::from_static(
            br#"{"eventType":"leads.submit","payload":{"customerPhone":5551234}}"#,
        ))
        .unwrap_err();
        assert!(!error.to_string().contains("5551234"), "{error}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn serialize_round_trip() {
        for body in [
            SEED_SAMPLE,
            r#"{"eventType":"leads.submit","chatbotId":"b","payload":{"customerName":"Zoë"}}"#,
            r#"{"eventType":"leads.submit","payload":{}}"#,
            r#"{"eventType":"conversations.end","chatbotId":"b","payload":{"n":[1,2.5,"x"],"o":{}}}"#,
            r#"{"eventType":"ping"}"#,
        ] {
            let event = ok(body);
            let json = serde_json::to_vec(&event).unwrap();
            let again = parse(Bytes::from(json)).unwrap();
            assert_eq!(again.event(), event.event(), "{body}");
            assert_eq!(again.chatbot_id(), event.chatbot_id(), "{body}");
            let value: serde_json::Value = serde_json::from_slice(again.raw_body()).unwrap();
            assert_eq!(value["eventType"], event.event_type());
        }
    }

    #[test]
    fn serializes_to_chatbase_shape() {
        let event = ok(SEED_SAMPLE);
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::from_str::<serde_json::Value>(SEED_SAMPLE).unwrap()
        );
    }

    #[test]
    fn debug_does_not_show_customer_data_or_the_body() {
        let event = ok(SEED_SAMPLE);
        let shown = format!("{event:?}");
        assert!(!shown.contains("example@chatbase.co"), "{shown}");
        assert!(!shown.contains("\"123\""), "{shown}");
        let unknown = ok(r#"{"eventType":"x","payload":{"customerEmail":"a@b.c"}}"#);
        assert!(!format!("{unknown:?}").contains("a@b.c"));
    }
}
