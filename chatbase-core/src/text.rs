//! The strings of a verified event, kept as spans of its raw body.
//!
//! A JSON string without escapes is, byte for byte, a slice of the body: the
//! event keeps its position and borrows it back on demand, so parsing allocates
//! nothing for it. Only a string with escapes (`\"`, `\u00e9`...) is decoded
//! into text of its own.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// Where a byte range of the raw body starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The span of `part` within `base`, if `part` is a slice of it.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Option<Self> {
        let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        // Same address and length: `part` is this very slice of `base`.
        let slice = base.get(start..end)?;
        (slice.as_ptr() == part.as_ptr()).then_some(Self { start, end })
    }

    /// The spanned bytes of `body`: empty if they are not there, which cannot
    /// happen for the body the span was taken from.
    pub(crate) fn bytes(self, body: &[u8]) -> &[u8] {
        body.get(self.start..self.end).unwrap_or_default()
    }

    /// The spanned text of `body`: empty if it is not UTF-8, which cannot happen
    /// for a string the JSON parser read from that body.
    pub(crate) fn str(self, body: &[u8]) -> &str {
        std::str::from_utf8(self.bytes(body)).unwrap_or_default()
    }
}

/// A string of the event: a span of the raw body, or decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    /// The string had no escapes: it is these bytes of the body.
    Span(Span),
    /// The string had escapes: its decoded text.
    Decoded(Box<str>),
}

impl Text {
    /// The empty text.
    pub(crate) const EMPTY: Self = Self::Span(Span { start: 0, end: 0 });

    /// `text`, which the parser read from `base`: a span when it borrows from it.
    pub(crate) fn read(base: &[u8], text: &str) -> Self {
        match Span::of(base, text.as_bytes()) {
            Some(span) => Self::Span(span),
            None => Self::Decoded(text.into()),
        }
    }

    /// `text`, which the chatbot-id scan read from `base`: a span when it
    /// borrows from it, else the decoded text itself (not copied again).
    pub(crate) fn read_cow(base: &[u8], text: std::borrow::Cow<'_, str>) -> Self {
        match text {
            std::borrow::Cow::Borrowed(text) => Self::read(base, text),
            std::borrow::Cow::Owned(text) => Self::Decoded(text.into_boxed_str()),
        }
    }

    /// Whether the text is `text`, given the body it was read from (without
    /// checking the body's UTF-8 again).
    pub(crate) fn is(&self, body: &[u8], text: &str) -> bool {
        match self {
            Self::Span(span) => span.bytes(body) == text.as_bytes(),
            Self::Decoded(decoded) => &**decoded == text,
        }
    }

    /// The text, given the body it was read from.
    pub(crate) fn get<'a>(&'a self, body: &'a [u8]) -> &'a str {
        match self {
            Self::Span(span) => span.str(body),
            Self::Decoded(text) => text,
        }
    }
}

/// Reads a JSON string of the body starting at `base` into a [`Text`].
#[derive(Clone, Copy)]
pub(crate) struct TextSeed<'b> {
    pub(crate) base: &'b [u8],
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = Text;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text, E> {
        Ok(Text::read(self.base, v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text::Decoded(v.into()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text::Decoded(v.into_boxed_str()))
    }
}

/// Reads a JSON string or `null` into an optional [`Text`].
#[derive(Clone, Copy)]
pub(crate) struct OptionalTextSeed<'b> {
    pub(crate) base: &'b [u8],
}

impl<'de> DeserializeSeed<'de> for OptionalTextSeed<'_> {
    type Value = Option<Text>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalTextSeed<'_> {
    type Value = Option<Text>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        TextSeed { base: self.base }
            .deserialize(deserializer)
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_of_a_slice_and_not_of_anything_else() {
        let body = b"0123456789";
        let span = Span::of(body, &body[2..5]).unwrap();
        assert_eq!(span.bytes(body), b"234");
        assert_eq!(span.str(body), "234");
        let elsewhere = b"234".to_vec();
        assert_eq!(Span::of(body, &elsewhere), None);
        // Another body of the same length gives what is there, never a panic.
        assert_eq!(span.bytes(b"ab"), b"");
    }

    #[test]
    fn unescaped_strings_are_spans_and_escaped_ones_decoded() {
        let body = br#"["plain","esc\"aped"]"#;
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let (plain, escaped) = deserializer
            .deserialize_seq(PairVisitor { base: body })
            .unwrap();
        assert!(matches!(plain, Text::Span(_)));
        assert_eq!(plain.get(body), "plain");
        assert_eq!(escaped, Text::Decoded("esc\"aped".into()));
    }

    struct PairVisitor<'b> {
        base: &'b [u8],
    }

    impl<'de> Visitor<'de> for PairVisitor<'_> {
        type Value = (Text, Text);

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("two strings")
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let seed = TextSeed { base: self.base };
            let first = seq.next_element_seed(seed)?.unwrap();
            let second = seq.next_element_seed(seed)?.unwrap();
            Ok((first, second))
        }
    }
}
