//! Verified events: [`ChatbaseEvent`] and the typed [`Event`] it holds.

use std::fmt;

use bytes::Bytes;
use serde::de::Deserialize;
use serde::ser::{Error as _, Serialize, SerializeStruct, Serializer};
use serde_json::value::RawValue;

use crate::Lead;
use crate::lead::LeadFields;
use crate::text::{Span, Text};

/// A verified Chatbase webhook event: the chatbot it is about, the typed event,
/// and the raw body exactly as it was signed.
///
/// There is deliberately no way to parse one from untrusted bytes: a
/// `ChatbaseEvent` only comes out of a [`Verifier`](crate::Verifier) (or the
/// `test-util` feature's helpers, which sign first, or
/// [`from_verified_body`](ChatbaseEvent::from_verified_body) for bytes verified
/// earlier), so holding one means its signature was checked.
///
/// It owns the raw body and the positions of the strings within it: the typed
/// view, [`event()`](ChatbaseEvent::event), borrows them back, so neither parsing
/// nor reading an event allocates (only a string sent with JSON escapes is
/// decoded into text of its own).
///
/// # Example
///
/// ```
/// use chatbase_core::{Event, Secret, Verifier, sign};
///
/// let secret = Secret::new("my-secret")?;
/// let body = r#"{"eventType":"leads.submit","chatbotId":"bot_1",
///     "payload":{"conversationId":"conv_1","customerEmail":"ada@example.com"}}"#;
/// let signature = sign(&secret, body.as_bytes());
///
/// let verifier = Verifier::new(secret);
/// let event = verifier.verify_and_parse(body.into(), Some(signature.as_bytes()))?;
///
/// assert_eq!(event.chatbot_id(), Some("bot_1"));
/// match event.event() {
///     Event::LeadsSubmit(lead) => {
///         assert_eq!(lead.conversation_id(), Some("conv_1"));
///     }
///     other => println!("ignoring a {} event", other.event_type()),
/// }
/// assert_eq!(event.raw_body(), body.as_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct ChatbaseEvent {
    raw: Bytes,
    chatbot_id: Option<Text>,
    event_type: Text,
    payload: Payload,
}

/// A payload, as the event type says to read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    /// A `leads.submit` payload.
    Lead(LeadFields),
    /// Any other type's payload, as the span of its JSON text; `None` when the
    /// body has none.
    Other(Option<Span>),
}

impl ChatbaseEvent {
    pub(crate) fn new(
        raw: Bytes,
        chatbot_id: Option<Text>,
        event_type: Text,
        payload: Payload,
    ) -> Self {
        Self {
            raw,
            chatbot_id,
            event_type,
            payload,
        }
    }

    /// Parses a body that a [`Verifier`](crate::Verifier) accepted earlier and
    /// that you kept, byte for byte: for instance a delivery read back from a
    /// durable inbox, or replayed from your own archive.
    ///
    /// This is the one way to make a `ChatbaseEvent` without checking a
    /// signature, so never call it on bytes that come from a request: only on
    /// bytes that were verified when they arrived, and stored where nobody else
    /// writes.
    ///
    /// # Errors
    ///
    /// [`InvalidPayload`](crate::InvalidPayload) if the bytes are not a
    /// Chatbase event (they would have been refused with a 400 when they
    /// arrived).
    pub fn from_verified_body(body: Bytes) -> Result<Self, crate::InvalidPayload> {
        crate::parse::parse(body)
    }

    /// The chatbot the event is about (`chatbotId`), if the body names one.
    ///
    /// With secrets per chatbot, it is the chatbot whose secret verified the
    /// body.
    pub fn chatbot_id(&self) -> Option<&str> {
        self.chatbot_id.as_ref().map(|id| id.get(&self.raw))
    }

    /// The typed event: match on it.
    pub fn event(&self) -> Event<'_> {
        match &self.payload {
            Payload::Lead(fields) => Event::LeadsSubmit(Lead::new(&self.raw, fields)),
            Payload::Other(span) => Event::Unknown(UnknownEvent {
                event_type: self.event_type(),
                payload: span.map_or("null", |span| span.str(&self.raw)),
            }),
        }
    }

    /// The `eventType`, e.g. `leads.submit`.
    pub fn event_type(&self) -> &str {
        self.event_type.get(&self.raw)
    }

    /// The body exactly as received and signed. Cheap to clone.
    pub fn raw_body(&self) -> &Bytes {
        &self.raw
    }

    /// The body exactly as received and signed, dropping the rest.
    pub fn into_raw_body(self) -> Bytes {
        self.raw
    }
}

impl fmt::Debug for ChatbaseEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The raw body holds customer data: show its length only.
        f.debug_struct("ChatbaseEvent")
            .field("chatbot_id", &self.chatbot_id())
            .field("event", &self.event())
            .field("raw_body_len", &self.raw.len())
            .finish()
    }
}

/// Serializes to Chatbase's shape: `{"eventType", "chatbotId", "payload"}`.
impl Serialize for ChatbaseEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("ChatbaseEvent", 3)?;
        state.serialize_field("eventType", self.event_type())?;
        match self.chatbot_id() {
            Some(id) => state.serialize_field("chatbotId", id)?,
            None => state.skip_field("chatbotId")?,
        }
        match self.event() {
            Event::LeadsSubmit(lead) => state.serialize_field("payload", &lead)?,
            Event::Unknown(unknown) => {
                let raw: &RawValue =
                    serde_json::from_str(unknown.payload_json()).map_err(S::Error::custom)?;
                state.serialize_field("payload", raw)?;
            }
        }
        state.end()
    }
}

/// The typed event, borrowed from a [`ChatbaseEvent`]. Match on it, with a
/// catch-all arm: Chatbase may add event types, and this crate may learn them.
///
/// ```
/// # use chatbase_core::Event;
/// fn handle(event: Event<'_>) {
///     match event {
///         Event::LeadsSubmit(lead) => {
///             // store the lead
///             # let _ = lead;
///         }
///         other => tracing::debug!(event_type = other.event_type(), "not handled"),
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// `leads.submit`: a customer submitted their contact details.
    LeadsSubmit(Lead<'a>),
    /// An event type this version of the crate does not know. It is delivered,
    /// not rejected, with its `eventType` and its payload as raw JSON.
    ///
    /// A later version may give such a type its own variant, so don't rely on a
    /// known type arriving here.
    Unknown(UnknownEvent<'a>),
}

impl<'a> Event<'a> {
    /// The `eventType`, e.g. `leads.submit`.
    pub fn event_type(&self) -> &'a str {
        match self {
            Self::LeadsSubmit(_) => Lead::EVENT_TYPE,
            Self::Unknown(unknown) => unknown.event_type(),
        }
    }
}

/// An event of a type this crate does not know: its `eventType` and its payload,
/// as the exact JSON text it was sent as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UnknownEvent<'a> {
    event_type: &'a str,
    payload: &'a str,
}

impl<'a> UnknownEvent<'a> {
    /// The `eventType`.
    pub fn event_type(&self) -> &'a str {
        self.event_type
    }

    /// The payload's JSON text, exactly as sent (`null` if the body had none).
    pub fn payload_json(&self) -> &'a str {
        self.payload
    }

    /// Deserializes the payload into your own type, which may borrow from it.
    ///
    /// # Errors
    ///
    /// `serde_json`'s, if the payload does not fit `T`.
    ///
    /// ```
    /// # use chatbase_core::{Event, testing};
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct ConversationEnded<'a> {
    ///     conversation_id: &'a str,
    /// }
    ///
    /// let body = r#"{"eventType":"conversations.end","chatbotId":"b","payload":{"conversationId":"c9"}}"#;
    /// let event = testing::event(body)?;
    /// if let Event::Unknown(unknown) = event.event() {
    ///     let ended: ConversationEnded<'_> = unknown.deserialize_payload()?;
    ///     assert_eq!(ended.conversation_id, "c9");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deserialize_payload<T: Deserialize<'a>>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.payload)
    }
}

impl fmt::Debug for UnknownEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload may hold customer data: show its length only.
        f.debug_struct("UnknownEvent")
            .field("event_type", &self.event_type)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}
