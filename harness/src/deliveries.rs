//! What the handlers saw: [`Deliveries`], a cheap record of every event that
//! reached a receiver's handler — its type, chatbot and conversation, never the
//! customer's details.
//!
//! The demo prints it ("what the handler saw").
//!
//! ```
//! use harness::deliveries::{Deliveries, Delivery};
//!
//! let (deliveries, mut delivered) = Deliveries::channel();
//! // In a handler, for each verified event:
//! deliveries.record(Delivery {
//!     event_type: "leads.submit".to_owned(),
//!     chatbot_id: Some("bot_1".to_owned()),
//!     conversation_id: Some("conv_1".to_owned()),
//! });
//! assert_eq!(deliveries.count(), 1);
//! let seen = delivered.drain();
//! assert_eq!(seen[0].conversation_id.as_deref(), Some("conv_1"));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chatbase_core::{ChatbaseEvent, Event};
use serde::Deserialize;
use tokio::sync::mpsc;

/// One event a handler received: no email, name or phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The `eventType`, e.g. `leads.submit`.
    pub event_type: String,
    /// The `chatbotId`, if the event names one.
    pub chatbot_id: Option<String>,
    /// The payload's `conversationId`, if it has one (a lead's, or a string
    /// `conversationId` in the payload of an event type this version does not
    /// know).
    pub conversation_id: Option<String>,
}

impl Delivery {
    /// The delivery of a verified event.
    pub fn of(event: &ChatbaseEvent) -> Self {
        let conversation_id = match event.event() {
            Event::LeadsSubmit(lead) => lead.conversation_id().map(str::to_owned),
            Event::Unknown(unknown) => unknown
                .deserialize_payload::<ConversationOnly>()
                .ok()
                .and_then(|payload| payload.conversation_id),
            // `Event` is non-exhaustive: a type a later version knows.
            _ => None,
        };
        Self {
            event_type: event.event_type().to_owned(),
            chatbot_id: event.chatbot_id().map(str::to_owned),
            conversation_id,
        }
    }
}

/// The one field of an unknown payload a delivery keeps.
#[derive(Deserialize)]
struct ConversationOnly {
    #[serde(rename = "conversationId")]
    conversation_id: Option<String>,
}

/// Where handlers record what they received: a count, and optionally a channel
/// of every [`Delivery`].
///
/// Cheap to clone (one `Arc` and a channel sender) and shared by every worker.
/// [`Deliveries::counter`] only counts, in constant memory, for servers that run
/// for long; [`Deliveries::channel`] also sends each delivery to a [`Delivered`]
/// receiver, for tests and the demo. If that receiver is dropped, deliveries are
/// still counted.
#[derive(Debug, Clone)]
pub struct Deliveries {
    count: Arc<AtomicU64>,
    sender: Option<mpsc::UnboundedSender<Delivery>>,
}

impl Deliveries {
    /// Counts deliveries and keeps nothing else.
    pub fn counter() -> Self {
        Self {
            count: Arc::default(),
            sender: None,
        }
    }

    /// Counts deliveries and sends each one to the returned [`Delivered`]. The
    /// channel is unbounded: drain it, or drop it.
    pub fn channel() -> (Self, Delivered) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let deliveries = Self {
            count: Arc::default(),
            sender: Some(sender),
        };
        (deliveries, Delivered { receiver })
    }

    /// What both receivers' handlers do with a verified event: one `info` line
    /// with its type, chatbot and conversation (never the customer's details),
    /// and the delivery recorded.
    pub fn receive(&self, event: &ChatbaseEvent) {
        let delivery = Delivery::of(event);
        tracing::info!(
            event_type = %delivery.event_type,
            chatbot_id = %delivery.chatbot_id.as_deref().unwrap_or("-"),
            conversation_id = %delivery.conversation_id.as_deref().unwrap_or("-"),
            "Chatbase event received"
        );
        self.record(delivery);
    }

    /// Records a delivery. Call it once per event a handler accepts.
    pub fn record(&self, delivery: Delivery) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(sender) = &self.sender {
            // The receiving end may be gone: counting is enough then.
            let _ = sender.send(delivery);
        }
    }

    /// How many deliveries have been recorded, by every clone.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The receiving end of [`Deliveries::channel`]: every delivery, in the order
/// the handlers recorded them.
#[derive(Debug)]
pub struct Delivered {
    receiver: mpsc::UnboundedReceiver<Delivery>,
}

impl Delivered {
    /// Every delivery recorded so far and not yet taken.
    ///
    /// A handler records its delivery before it answers, so once a client has
    /// its `200` the delivery is here.
    pub fn drain(&mut self) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        while let Ok(delivery) = self.receiver.try_recv() {
            deliveries.push(delivery);
        }
        deliveries
    }

    /// Waits for the next delivery; `None` once every [`Deliveries`] clone is
    /// gone and all have been taken.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.receiver.recv().await
    }
}

#[cfg(test)]
mod tests {
    use chatbase_core::testing;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_lead_keeps_type_chatbot_and_conversation_only() {
        let delivery = Delivery::of(&testing::sample_event());
        assert_eq!(
            delivery,
            Delivery {
                event_type: "leads.submit".to_owned(),
                chatbot_id: Some("xxxxxxxx".to_owned()),
                conversation_id: Some("xxxxxxxx".to_owned()),
            }
        );
        let shown = format!("{delivery:?}");
        assert!(!shown.contains("jo@acme.io"), "{shown}");
        assert!(!shown.contains("Example"), "{shown}");
    }

    #[test]
    fn an_unknown_event_keeps_a_string_conversation_id() {
        let body = testing::event_body(
            "conversations.end",
            "bot_9",
            &json!({"conversationId": "c9"}),
        );
        let delivery = Delivery::of(&testing::event(body).unwrap());
        assert_eq!(delivery.event_type, "conversations.end");
        assert_eq!(delivery.chatbot_id.as_deref(), Some("bot_9"));
        assert_eq!(delivery.conversation_id.as_deref(), Some("c9"));

        for payload in [
            json!(null),
            json!([1]),
            json!({"conversationId": 7}),
            json!({}),
        ] {
            let body = testing::event_body("x.y", "b", &payload);
            let delivery = Delivery::of(&testing::event(body).unwrap());
            assert_eq!(delivery.conversation_id, None, "{payload}");
        }
    }

    #[tokio::test]
    async fn channel_counts_and_delivers_in_order_across_clones() {
        let (deliveries, mut delivered) = Deliveries::channel();
        let other = deliveries.clone();
        let delivery = |n: u8| Delivery {
            event_type: "leads.submit".to_owned(),
            chatbot_id: None,
            conversation_id: Some(format!("c{n}")),
        };
        deliveries.record(delivery(1));
        other.record(delivery(2));
        assert_eq!(deliveries.count(), 2);
        assert_eq!(other.count(), 2);
        assert_eq!(delivered.drain(), vec![delivery(1), delivery(2)]);
        assert!(delivered.drain().is_empty());

        other.record(delivery(3));
        assert_eq!(delivered.next().await, Some(delivery(3)));
        drop((deliveries, other));
        assert_eq!(delivered.next().await, None);
    }

    #[test]
    fn counter_counts_without_a_receiver() {
        let deliveries = Deliveries::counter();
        deliveries.record(Delivery::of(&testing::sample_event()));
        assert_eq!(deliveries.count(), 1);

        let (deliveries, delivered) = Deliveries::channel();
        drop(delivered);
        deliveries.record(Delivery::of(&testing::sample_event()));
        assert_eq!(deliveries.count(), 1);
    }
}
