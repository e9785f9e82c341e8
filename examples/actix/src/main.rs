//! The shortest correct Chatbase webhook receiver on actix-web.
//!
//! `CHATBASE_WEBHOOK_SECRET=... cargo run -p example-actix`, then POST signed
//! events to http://127.0.0.1:3000/chatbase/webhook (`PORT` changes the port).

use std::sync::Mutex;

use actix_web::{App, HttpResponse, HttpServer, web};
use chatbase_actix::{ChatbaseEvent, Event, Verifier, VerifyChatbase};

/// Where leads go: your database pool in a real app.
#[derive(Default)]
struct Leads(Mutex<Vec<(String, String)>>);

impl Leads {
    fn save(&self, conversation_id: &str, email: &str) {
        if let Ok(mut leads) = self.0.lock() {
            leads.push((conversation_id.to_owned(), email.to_owned()));
        }
    }
}

/// Only ever called with a verified event: unsigned, forged and oversized
/// requests are answered 401/413/400 before it runs.
async fn webhook(leads: web::Data<Leads>, ev: ChatbaseEvent) -> HttpResponse {
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
    HttpResponse::Ok().finish()
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Shows your lines and every rejected request (at WARN, target `chatbase::rejection`).
    tracing_subscriber::fmt().init();

    // The secret from the chatbot's webhook settings in Chatbase.
    let verifier = Verifier::from_env()?;
    let leads = web::Data::new(Leads::default());
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let server = HttpServer::new(move || {
        App::new().app_data(leads.clone()).service(
            // Every request in the scope is verified before any handler runs.
            web::scope("/chatbase")
                .wrap(VerifyChatbase::new(verifier.clone()))
                .route("/webhook", web::post().to(webhook)),
        )
    })
    .bind(("127.0.0.1", port))?;
    for address in server.addrs() {
        tracing::info!("listening on http://{address}");
    }
    server.run().await?;
    Ok(())
}
