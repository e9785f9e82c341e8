//! Verified events: [`ChatbaseEvent`] and the typed [`Event`] it holds.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::Lead;

/// A verified Chatbase webhook event: the chatbot it is about, the typed event,
/// and the raw body exactly as it was signed.
///
/// There is deliberately no way to parse one from untrusted bytes: a
/// `ChatbaseEvent` only comes out of a [`Verifier`](crate::Verifier) (or the
/// `test-util` feature's helpers, which sign first), so holding one means its
/// signature was checked.
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
///         assert_eq!(lead.conversation_id.as_deref(), Some("conv_1"));
///     }
///     other => println!("ignoring a {} event", other.event_type()),
/// }
/// assert_eq!(event.raw_body(), body.as_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct ChatbaseEvent {
    chatbot_id: Option<String>,
    event: Event,
    raw: Bytes,
}

impl ChatbaseEvent {
    pub(crate) fn new(chatbot_id: Option<String>, event: Event, raw: Bytes) -> Self {
        Self {
            chatbot_id,
            event,
            raw,
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
    pub fn chatbot_id(&self) -> Option<&str> {
        self.chatbot_id.as_deref()
    }

    /// The typed event: match on it.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The `eventType`, e.g. `leads.submit`.
    pub fn event_type(&self) -> &str {
        self.event.event_type()
    }

    /// The body exactly as received and signed. Cheap to clone.
    pub fn raw_body(&self) -> &Bytes {
        &self.raw
    }

    /// The typed event, dropping the rest.
    pub fn into_event(self) -> Event {
        self.event
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
            .field("chatbot_id", &self.chatbot_id)
            .field("event", &self.event)
            .field("raw_body_len", &self.raw.len())
            .finish()
    }
}

/// Serializes to Chatbase's shape: `{"eventType", "chatbotId", "payload"}`.
impl Serialize for ChatbaseEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let payload = match &self.event {
            Event::LeadsSubmit(lead) => PayloadRef::Lead(lead),
            Event::Unknown(unknown) => PayloadRef::Raw(&unknown.payload),
        };
        Envelope {
            event_type: self.event_type(),
            chatbot_id: self.chatbot_id(),
            payload,
        }
        .serialize(serializer)
    }
}

/// Chatbase's JSON shape, for serializing events and building test bodies.
#[derive(Serialize)]
pub(crate) struct Envelope<'a, P> {
    #[serde(rename = "eventType")]
    pub(crate) event_type: &'a str,
    #[serde(rename = "chatbotId", skip_serializing_if = "Option::is_none")]
    pub(crate) chatbot_id: Option<&'a str>,
    pub(crate) payload: P,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PayloadRef<'a> {
    Lead(&'a Lead),
    Raw(&'a RawValue),
}

/// The typed event. Match on it, with a catch-all arm: Chatbase may add event
/// types, and this crate may learn them.
///
/// ```
/// # use chatbase_core::Event;
/// fn handle(event: &Event) {
///     match event {
///         Event::LeadsSubmit(lead) => {
///             // store the lead
///             # let _ = lead;
///         }
///         other => tracing::debug!(event_type = other.event_type(), "not handled"),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `leads.submit`: a customer submitted their contact details.
    LeadsSubmit(Lead),
    /// An event type this version of the crate does not know. It is delivered,
    /// not rejected, with its `eventType` and its payload as raw JSON.
    ///
    /// A later version may give such a type its own variant, so don't rely on a
    /// known type arriving here.
    Unknown(UnknownEvent),
}

impl Event {
    /// The `eventType`, e.g. `leads.submit`.
    pub fn event_type(&self) -> &str {
        match self {
            Self::LeadsSubmit(_) => Lead::EVENT_TYPE,
            Self::Unknown(unknown) => unknown.event_type(),
        }
    }
}

/// An event of a type this crate does not know: its `eventType` and its payload,
/// kept as the exact JSON text it was sent as.
#[derive(Clone)]
pub struct UnknownEvent {
    event_type: String,
    payload: Box<RawValue>,
}

impl UnknownEvent {
    pub(crate) fn new(event_type: String, payload: Box<RawValue>) -> Self {
        Self {
            event_type,
            payload,
        }
    }

    /// The `eventType`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The payload as raw JSON (`null` if the body had none).
    pub fn payload(&self) -> &RawValue {
        &self.payload
    }

    /// Deserializes the payload into your own type.
    ///
    /// # Errors
    ///
    /// `serde_json`'s, if the payload does not fit `T`.
    ///
    /// ```
    /// # use chatbase_core::{Event, Secret, Verifier, sign};
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct ConversationEnded {
    ///     conversation_id: String,
    /// }
    ///
    /// # let secret = Secret::new("s")?;
    /// let body = r#"{"eventType":"conversations.end","chatbotId":"b","payload":{"conversationId":"c9"}}"#;
    /// # let signature = sign(&secret, body.as_bytes());
    /// # let event = Verifier::new(secret).verify_and_parse(body.into(), Some(signature.as_bytes()))?;
    /// if let Event::Unknown(unknown) = event.event() {
    ///     let ended: ConversationEnded = unknown.deserialize_payload()?;
    ///     assert_eq!(ended.conversation_id, "c9");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deserialize_payload<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.payload.get())
    }
}

impl PartialEq for UnknownEvent {
    /// Same type and the same payload text.
    fn eq(&self, other: &Self) -> bool {
        self.event_type == other.event_type && self.payload.get() == other.payload.get()
    }
}

impl fmt::Debug for UnknownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload may hold customer data: show its length only.
        f.debug_struct("UnknownEvent")
            .field("event_type", &self.event_type)
            .field("payload_len", &self.payload.get().len())
            .finish()
    }
}
