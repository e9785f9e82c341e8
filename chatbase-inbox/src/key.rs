//! [`KeyStrategy`]: how a delivery's key, the thing duplicates are detected by,
//! is computed from a verified event.

use std::fmt;
use std::sync::Arc;

use chatbase_core::ChatbaseEvent;
use sha2::{Digest, Sha256};

type NaturalKeyFn = dyn Fn(&ChatbaseEvent) -> Option<String> + Send + Sync;

/// How the delivery key is computed: two deliveries with the same key are the
/// same delivery, stored and processed once.
///
/// The key is computed after verification, from the verified event, and is
/// always a SHA-256 (hex) under a prefix that says how it was made:
///
/// - `body:<sha256>` (the default, [`KeyStrategy::body_hash`]): the chatbot id
///   and the raw body bytes exactly as signed. A retry or replay of the same
///   bytes is a duplicate; two different submissions are not.
/// - `natural:<sha256>` ([`KeyStrategy::natural`]): the chatbot id and a key
///   your closure reads from the event, such as a lead's `conversationId`
///   ([`KeyStrategy::conversation_id`]). Use it when the same fact may arrive
///   with different bytes. When the closure returns `None`, the body hash is
///   used for that delivery.
///
/// Keys are hashed because they outlive bodies (see
/// [`InboxBuilder::key_retention`](crate::InboxBuilder::key_retention)): a
/// natural key may be an email address, and the stored key must hold no
/// customer data. The chatbot id is part of every key, so two chatbots never
/// share a key.
#[derive(Clone, Default)]
pub struct KeyStrategy {
    natural: Option<Arc<NaturalKeyFn>>,
}

impl KeyStrategy {
    /// The default: chatbot id plus the SHA-256 of the raw body.
    pub fn body_hash() -> Self {
        Self::default()
    }

    /// A natural key read from the event by `key`, namespaced by the chatbot
    /// id. Where `key` returns `None`, the body hash is used.
    ///
    /// ```
    /// use chatbase_inbox::KeyStrategy;
    ///
    /// // One delivery per event type and conversation, whatever the bytes.
    /// let strategy = KeyStrategy::natural(|event| {
    ///     let body: serde_json::Value = serde_json::from_slice(event.raw_body()).ok()?;
    ///     let conversation = body["payload"]["conversationId"].as_str()?;
    ///     Some(format!("{}/{conversation}", event.event_type()))
    /// });
    /// # let _ = strategy;
    /// ```
    pub fn natural<F>(key: F) -> Self
    where
        F: Fn(&ChatbaseEvent) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            natural: Some(Arc::new(key)),
        }
    }

    /// The natural key of Chatbase's lead events: the event type and the
    /// payload's `conversationId`, so a lead submitted twice in one
    /// conversation is one delivery even if its bytes differ. Events without a
    /// `conversationId` fall back to the body hash.
    pub fn conversation_id() -> Self {
        Self::natural(|event| {
            #[derive(serde::Deserialize)]
            struct Envelope<'a> {
                #[serde(borrow)]
                payload: Option<Payload<'a>>,
            }
            #[derive(serde::Deserialize)]
            struct Payload<'a> {
                #[serde(rename = "conversationId", borrow)]
                conversation_id: Option<std::borrow::Cow<'a, str>>,
            }
            let envelope: Envelope<'_> = serde_json::from_slice(event.raw_body()).ok()?;
            let conversation = envelope.payload?.conversation_id?;
            Some(format!("{}\n{conversation}", event.event_type()))
        })
    }

    /// The key of `event`: `body:<hex>` or `natural:<hex>`.
    pub fn key(&self, event: &ChatbaseEvent) -> String {
        let natural = self.natural.as_ref().and_then(|f| f(event));
        let (kind, material): (&str, &[u8]) = match &natural {
            Some(natural) => ("natural", natural.as_bytes()),
            None => ("body", event.raw_body()),
        };
        let mut hash = Sha256::new();
        // Length-prefixed, so no chatbot id and material can be confused with another pair.
        match event.chatbot_id() {
            Some(chatbot) => {
                hash.update([1u8]);
                hash.update((chatbot.len() as u64).to_be_bytes());
                hash.update(chatbot.as_bytes());
            }
            None => hash.update([0u8]),
        }
        hash.update(kind.as_bytes());
        hash.update([0u8]);
        hash.update(material);
        format!("{kind}:{}", hex::encode(hash.finalize()))
    }
}

impl fmt::Debug for KeyStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.natural {
            Some(_) => "KeyStrategy::Natural",
            None => "KeyStrategy::BodyHash",
        })
    }
}
