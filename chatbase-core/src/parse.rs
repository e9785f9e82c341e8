//! Parsing a verified body into a [`ChatbaseEvent`], in one pass and without
//! allocating.
//!
//! serde's internally tagged enums buffer the whole object into an intermediate
//! tree before they look at the tag, which nearly doubles the cost of a small
//! event. Here a hand-written map visitor reads `eventType` first (Chatbase sends
//! it first) and then reads `payload` straight into its type; an unknown type's
//! payload is only validated and kept as a span of the body. If `payload` comes
//! before `eventType`, its span is kept and read once the type is known.
//!
//! Strings are kept as spans of the body ([`Text`]): the event borrows them back
//! when asked, so nothing is allocated but for strings sent with escapes.

use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Lead;
use crate::error::{InvalidPayload, PayloadErrorKind};
use crate::event::{ChatbaseEvent, Payload};
use crate::lead::{LeadFields, LeadSeed};
use crate::text::{OptionalTextSeed, Span, Text, TextSeed};

/// Parses a verified body. Only [`Verifier`](crate::Verifier) calls this, after
/// the signature has matched (and [`ChatbaseEvent::from_verified_body`], for
/// bytes verified earlier).
pub(crate) fn parse(body: Bytes) -> Result<ChatbaseEvent, InvalidPayload> {
    match parse_slice(&body) {
        Ok(envelope) => Ok(envelope.into_event(body)),
        Err(error) => Err(classify(&body, error)),
    }
}

/// The top-level fields of an event, as spans of the body.
pub(crate) struct Envelope {
    chatbot_id: Option<Text>,
    event_type: Text,
    payload: Payload,
}

impl Envelope {
    /// The chatbot id, if the event has one.
    pub(crate) fn chatbot_id(&self) -> Option<&Text> {
        self.chatbot_id.as_ref()
    }

    /// The event, over `body`: the bytes this envelope was read from.
    pub(crate) fn into_event(self, body: Bytes) -> ChatbaseEvent {
        ChatbaseEvent::new(body, self.chatbot_id, self.event_type, self.payload)
    }
}

/// Reads the top-level fields of an event, without allocating (but for
/// strings with escapes).
pub(crate) fn parse_slice(body: &[u8]) -> serde_json::Result<Envelope> {
    let visitor = EnvelopeVisitor { base: body };
    // Checked as UTF-8 once, as a whole: then serde_json does not check each
    // string again. A body that is not UTF-8 gets serde_json's error, with its
    // position.
    if let Ok(text) = std::str::from_utf8(body) {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let envelope = deserializer.deserialize_map(visitor)?;
        deserializer.end()?;
        Ok(envelope)
    } else {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let envelope = deserializer.deserialize_map(visitor)?;
        deserializer.end()?;
        Ok(envelope)
    }
}

/// The top-level keys of an event. Shared with the chatbot-id scan, so that
/// both read keys (escapes included) by the same rules.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
pub(crate) enum Field {
    EventType,
    ChatbotId,
    Payload,
    #[serde(other)]
    Other,
}

/// A payload read before or after its type was known.
enum Read {
    Lead(LeadFields),
    Raw(Span),
}

struct EnvelopeVisitor<'b> {
    base: &'b [u8],
}

impl<'de> Visitor<'de> for EnvelopeVisitor<'_> {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Chatbase event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let base = self.base;
        let mut event_type: Option<Text> = None;
        let mut chatbot_id: Option<Option<Text>> = None;
        let mut payload: Option<Read> = None;

        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventType => {
                    if event_type.is_some() {
                        return Err(de::Error::duplicate_field("eventType"));
                    }
                    event_type = Some(map.next_value_seed(TextSeed { base })?);
                }
                Field::ChatbotId => {
                    if chatbot_id.is_some() {
                        return Err(de::Error::duplicate_field("chatbotId"));
                    }
                    chatbot_id = Some(map.next_value_seed(OptionalTextSeed { base })?);
                }
                Field::Payload => {
                    if payload.is_some() {
                        return Err(de::Error::duplicate_field("payload"));
                    }
                    let is_lead = event_type
                        .as_ref()
                        .is_some_and(|t| t.is(base, Lead::EVENT_TYPE));
                    payload = Some(if is_lead {
                        Read::Lead(map.next_value_seed(LeadSeed { base })?)
                    } else {
                        // Unknown type, or not known yet: validate and keep as is.
                        let raw: &RawValue = map.next_value()?;
                        Read::Raw(span_of(base, raw)?)
                    });
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }

        let event_type = event_type.ok_or_else(|| de::Error::missing_field("eventType"))?;
        let payload = if event_type.is(base, Lead::EVENT_TYPE) {
            Payload::Lead(match payload {
                Some(Read::Lead(lead)) => lead,
                Some(Read::Raw(span)) => read_lead(base, span).map_err(de::Error::custom)?,
                None => LeadFields::default(),
            })
        } else {
            Payload::Other(match payload {
                Some(Read::Raw(span)) => Some(span),
                // Only `leads.submit` payloads are read as leads.
                Some(Read::Lead(_)) | None => None,
            })
        };
        Ok(Envelope {
            chatbot_id: chatbot_id.flatten(),
            event_type,
            payload,
        })
    }
}

/// The span of a raw value the parser borrowed from `base`.
fn span_of<E: de::Error>(base: &[u8], raw: &RawValue) -> Result<Span, E> {
    Span::of(base, raw.get().as_bytes()).ok_or_else(|| E::custom("a raw value outside the body"))
}

/// Reads a lead payload that came before its `eventType`, from its span.
fn read_lead(base: &[u8], span: Span) -> serde_json::Result<LeadFields> {
    let mut deserializer = serde_json::Deserializer::from_slice(span.bytes(base));
    let lead = LeadSeed { base }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(lead)
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
    use crate::Event;

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

    fn lead(event: &ChatbaseEvent) -> Lead<'_> {
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
        assert_eq!(lead.conversation_id(), Some("xxxxxxxx"));
        assert_eq!(lead.customer_email(), Some("example@chatbase.co"));
        assert_eq!(lead.customer_name(), Some("Example"));
        assert_eq!(lead.customer_phone(), Some("123"));
        assert_eq!(event.raw_body(), SEED_SAMPLE.as_bytes());
    }

    #[test]
    fn payload_before_event_type() {
        let event = ok(
            r#"{"payload":{"conversationId":"c","customerName":"N"},"chatbotId":"b","eventType":"leads.submit"}"#,
        );
        assert_eq!(lead(&event).conversation_id(), Some("c"));
        assert_eq!(lead(&event).customer_name(), Some("N"));
        assert_eq!(event.chatbot_id(), Some("b"));
    }

    #[test]
    fn escaped_keys_and_values() {
        let event =
            ok(r#"{"event\u0054ype":"leads.su\u0062mit","payload":{"customerName":"A\"B"}}"#);
        assert_eq!(lead(&event).customer_name(), Some("A\"B"));
    }

    #[test]
    fn lead_with_missing_null_and_extra_fields() {
        let event = ok(
            r#"{"eventType":"leads.submit","chatbotId":"b","extra":[1,{"x":2}],
                "payload":{"conversationId":"c","customerEmail":null,"source":"widget"}}"#,
        );
        let lead = lead(&event);
        assert_eq!(lead.conversation_id(), Some("c"));
        assert_eq!(lead.customer_email(), None);
        assert_eq!(lead.customer_name(), None);
        assert_eq!(lead.customer_phone(), None);
    }

    #[test]
    fn lead_with_null_or_missing_payload_is_empty() {
        for body in [
            r#"{"eventType":"leads.submit","payload":null}"#,
            r#"{"eventType":"leads.submit"}"#,
            r#"{"payload":null,"eventType":"leads.submit"}"#,
        ] {
            let event = ok(body);
            let lead = lead(&event);
            let fields = [
                lead.conversation_id(),
                lead.customer_email(),
                lead.customer_name(),
                lead.customer_phone(),
            ];
            assert_eq!(fields, [None; 4], "{body}");
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
        assert_eq!(unknown.payload_json(), r#"{"n":[1, 2.5,"x"]}"#);
        let value: serde_json::Value = unknown.deserialize_payload().unwrap();
        assert_eq!(value, serde_json::json!({"n": [1, 2.5, "x"]}));

        let no_payload = ok(r#"{"eventType":"ping"}"#);
        let Event::Unknown(unknown) = no_payload.event() else {
            panic!("expected an unknown event")
        };
        assert_eq!(unknown.payload_json(), "null");
    }

    #[test]
    fn unknown_payload_of_any_json_type() {
        for payload in ["[1,2]", "\"s\"", "42", "true", "null"] {
            let event = ok(&format!(r#"{{"eventType":"x","payload":{payload}}}"#));
            let Event::Unknown(unknown) = event.event() else {
                panic!("expected an unknown event")
            };
            assert_eq!(unknown.payload_json(), payload);
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
