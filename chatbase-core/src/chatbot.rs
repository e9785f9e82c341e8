//! Chatbot ids: what one may look like, and reading the one an unverified body
//! claims, to choose the secrets to verify it with.
//!
//! The scan reads the top-level object with the event parser's own rules (the
//! same key identifiers, so escaped keys decode alike, and a duplicated
//! `chatbotId`, `eventType` or `payload` is refused), skips every value but the
//! chatbot id without building anything, and allocates nothing unless the id is
//! written with escapes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::parse::Field;

/// The longest chatbot id accepted, in bytes: 128.
pub const MAX_CHATBOT_ID_LEN: usize = 128;

/// Whether `id` may be a chatbot id: 1 to [`MAX_CHATBOT_ID_LEN`] ASCII letters,
/// digits, `-` or `_`.
pub fn is_valid_chatbot_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CHATBOT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a body names no chatbot whose secrets could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatbotIdProblem {
    /// The body is not a JSON object with distinct `eventType`, `chatbotId` and
    /// `payload` keys.
    NotAnEvent,
    /// There is no `chatbotId`, or it is `null`.
    Missing,
    /// `chatbotId` is not a string.
    NotAString,
    /// `chatbotId` is longer than [`MAX_CHATBOT_ID_LEN`].
    TooLong,
    /// `chatbotId` has characters other than ASCII letters, digits, `-` and `_`.
    BadCharacters,
}

impl fmt::Display for ChatbotIdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnEvent => {
                "the body is not a JSON object with one `eventType`, `chatbotId` and `payload` each"
            }
            Self::Missing => "the body has no `chatbotId`",
            Self::NotAString => "`chatbotId` is not a string",
            Self::TooLong => "`chatbotId` is longer than 128 bytes",
            Self::BadCharacters => {
                "`chatbotId` has characters other than ASCII letters, digits, `-` and `_`"
            }
        })
    }
}

/// The chatbot id an unverified body claims, checked against
/// [`is_valid_chatbot_id`].
pub(crate) fn scan(body: &[u8]) -> Result<Cow<'_, str>, ChatbotIdProblem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let claimed = deserializer
        .deserialize_map(ScanVisitor)
        .map_err(|_| ChatbotIdProblem::NotAnEvent)?;
    deserializer
        .end()
        .map_err(|_| ChatbotIdProblem::NotAnEvent)?;
    match claimed {
        Claimed::Missing => Err(ChatbotIdProblem::Missing),
        Claimed::NotAString => Err(ChatbotIdProblem::NotAString),
        Claimed::Id(id) if id.len() > MAX_CHATBOT_ID_LEN => Err(ChatbotIdProblem::TooLong),
        Claimed::Id(id) if !is_valid_chatbot_id(&id) => Err(ChatbotIdProblem::BadCharacters),
        Claimed::Id(id) => Ok(id),
    }
}

/// What the body says its chatbot is.
enum Claimed<'de> {
    Missing,
    NotAString,
    Id(Cow<'de, str>),
}

struct ScanVisitor;

impl<'de> Visitor<'de> for ScanVisitor {
    type Value = Claimed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Chatbase event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event_type = false;
        let mut payload = false;
        let mut chatbot_id: Option<Claimed<'de>> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventType | Field::Payload => {
                    let seen = if matches!(field, Field::EventType) {
                        &mut event_type
                    } else {
                        &mut payload
                    };
                    if std::mem::replace(seen, true) {
                        return Err(de::Error::custom("duplicate key"));
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Field::ChatbotId => {
                    if chatbot_id.is_some() {
                        return Err(de::Error::duplicate_field("chatbotId"));
                    }
                    chatbot_id = Some(map.next_value::<IdValue<'de>>()?.0);
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(chatbot_id.unwrap_or(Claimed::Missing))
    }
}

/// The value of `chatbotId`, whatever its JSON type, read without allocating
/// unless it is a string with escapes.
struct IdValue<'de>(Claimed<'de>);

impl<'de> Deserialize<'de> for IdValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = IdValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(IdValue(Claimed::Id(Cow::Borrowed(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        // Too long to be an id: don't copy it.
        if v.len() > MAX_CHATBOT_ID_LEN {
            return Ok(IdValue(Claimed::Id(Cow::Borrowed(TOO_LONG))));
        }
        Ok(IdValue(Claimed::Id(Cow::Owned(v.to_owned()))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(IdValue(Claimed::Missing))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(IdValue(Claimed::Missing))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(IdValue(Claimed::NotAString))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(IdValue(Claimed::NotAString))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(IdValue(Claimed::NotAString))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(IdValue(Claimed::NotAString))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(IdValue(Claimed::NotAString))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(IdValue(Claimed::NotAString))
    }
}

/// Stands for an escaped id too long to be one (its length is all that
/// matters).
const TOO_LONG: &str = concat!(
    "0123456789012345678901234567890123456789012345678901234567890123",
    "0123456789012345678901234567890123456789012345678901234567890123",
    "!"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn id(body: &str) -> Result<Cow<'_, str>, ChatbotIdProblem> {
        scan(body.as_bytes())
    }

    #[test]
    fn reads_the_id_wherever_it_is() {
        assert_eq!(
            id(r#"{"eventType":"leads.submit","chatbotId":"bot_1","payload":{"chatbotId":"x"}}"#)
                .unwrap(),
            "bot_1"
        );
        assert_eq!(
            id(r#"{"payload":[1,{"a":"b"}],"other":null,"chatbotId":"b-2"}"#).unwrap(),
            "b-2"
        );
    }

    #[test]
    fn borrows_unless_escaped_and_decodes_escapes_as_the_parser_does() {
        assert!(matches!(
            id(r#"{"chatbotId":"bot"}"#).unwrap(),
            Cow::Borrowed(_)
        ));
        let escaped = id(r#"{"chatbot\u0049d":"b\u006ft"}"#).unwrap();
        assert_eq!(escaped, "bot");
        assert!(matches!(escaped, Cow::Owned(_)));
    }

    #[test]
    fn refuses_duplicated_keys_even_when_escaped() {
        for body in [
            r#"{"chatbotId":"a","chatbotId":"b"}"#,
            r#"{"chatbotId":"a","chatbot\u0049d":"b"}"#,
            r#"{"chatbotId":"a","eventType":"x","eventType":"y"}"#,
            r#"{"chatbotId":"a","payload":{},"payload":{}}"#,
        ] {
            assert_eq!(id(body), Err(ChatbotIdProblem::NotAnEvent), "{body}");
        }
    }

    #[test]
    fn missing_null_and_wrong_types() {
        assert_eq!(id(r#"{"eventType":"x"}"#), Err(ChatbotIdProblem::Missing));
        assert_eq!(id(r#"{"chatbotId":null}"#), Err(ChatbotIdProblem::Missing));
        for value in ["7", "true", "[\"a\"]", "{\"a\":1}", "1.5"] {
            let body = format!(r#"{{"chatbotId":{value}}}"#);
            assert_eq!(id(&body), Err(ChatbotIdProblem::NotAString), "{body}");
        }
    }

    #[test]
    fn bounded_in_length_and_characters() {
        let longest = "a".repeat(MAX_CHATBOT_ID_LEN);
        assert_eq!(
            id(&format!(r#"{{"chatbotId":"{longest}"}}"#)).unwrap(),
            longest
        );
        let too_long = "a".repeat(MAX_CHATBOT_ID_LEN + 1);
        assert_eq!(
            id(&format!(r#"{{"chatbotId":"{too_long}"}}"#)),
            Err(ChatbotIdProblem::TooLong)
        );
        let escaped_long = "\\u0061".repeat(MAX_CHATBOT_ID_LEN + 1);
        assert_eq!(
            id(&format!(r#"{{"chatbotId":"{escaped_long}"}}"#)),
            Err(ChatbotIdProblem::TooLong)
        );
        for bad in ["", "a b", "a/b", "a.b", "é", "a\\nb", "../x"] {
            let body = format!(r#"{{"chatbotId":"{bad}"}}"#);
            assert_eq!(id(&body), Err(ChatbotIdProblem::BadCharacters), "{body}");
        }
    }

    #[test]
    fn not_an_event() {
        for body in [
            "",
            "not json",
            "[]",
            "\"bot\"",
            r#"{"chatbotId":"a"} x"#,
            "{",
        ] {
            assert_eq!(id(body), Err(ChatbotIdProblem::NotAnEvent), "{body}");
        }
    }

    #[test]
    fn valid_ids() {
        for good in ["a", "bot_1", "AbC-09_x", &"z".repeat(128)] {
            assert!(is_valid_chatbot_id(good), "{good}");
        }
        for bad in ["", " a", "a\n", "a+b", &"z".repeat(129)] {
            assert!(!is_valid_chatbot_id(bad), "{bad}");
        }
    }
}
