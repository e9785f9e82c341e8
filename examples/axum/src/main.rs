//! The shortest correct Chatbase webhook receiver on axum.
//!
//! `CHATBASE_WEBHOOK_SECRET=... cargo run -p example-axum`, then POST signed
//! events to http://127.0.0.1:3000/webhook (`PORT` changes the port).

use std::sync::{Arc, Mutex};

use axum::{Router, extract::State, http::StatusCode, routing::post};
use chatbase_axum::{ChatbaseEvent, Event, Verifier, VerifyChatbaseLayer};

/// Where leads go: your database pool in a real app.
#[derive(Clone, Default)]
struct Leads(Arc<Mutex<Vec<(String, String)>>>);

impl Leads {
    fn save(&self, conversation_id: &str, email: &str) {
        if let Ok(mut leads) = self.0.lock() {
            leads.push((conversation_id.to_owned(), email.to_owned()));
        }
    }
}

/// Only ever called with a verified event: unsigned, forged and oversized
/// requests are answered 401/413/400 before it runs.
async fn webhook(State(leads): State<Leads>, ev: ChatbaseEvent) -> StatusCode {
    match ev.event() {
        Event::LeadsSubmit(lead) => {
            let conversation_id = lead.conversation_id().unwrap_or_default();
            leads.save(conversation_id, lead.customer_email().unwrap_or_default());
            // Log ids, never the customer's email, name or phone.
            tracing::info!(conversation_id, chatbot_id = ev.chatbot_id(), "lead saved");
        }
        // Chatbase may add event types: acknowledge them rather than fail.
        other => tracing::info!(event_type = other.event_type(), "event ignored"),
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Shows your lines and every rejected request (at WARN, target `chatbase::rejection`).
    tracing_subscriber::fmt().init();

    // The secret from the chatbot's webhook settings in Chatbase.
    let verifier = Verifier::from_env()?;
    let app = Router::new()
        .route("/webhook", post(webhook))
        .layer(VerifyChatbaseLayer::new(verifier))
        .with_state(Leads::default());

    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
