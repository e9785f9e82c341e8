//! Many chatbots behind one endpoint: each chatbot's secrets live in a database
//! table, looked up when its first webhook arrives and cached.
//!
//! `cargo run -p example-many-bots`, then add a chatbot (no restart needed):
//! `sqlite3 chatbots.db "INSERT INTO chatbots (id, secret) VALUES ('bot_1', '...')"`.
//! The body's `chatbotId` picks the secrets a webhook is verified with, and only
//! those: a body signed with one chatbot's secret is never taken for another's.

use axum::{Router, routing::post};
use chatbase_axum::{
    ChatbaseEvent, Event, ResolveError, ResolverOptions, Secret, SecretResolver, Verifier,
    VerifyChatbaseLayer,
};
use sqlx::SqlitePool;

/// The secrets of each chatbot, in `chatbots(id, secret, previous_secret)`:
/// the previous secret stays accepted while a chatbot's secret is rotated.
struct FromDatabase(SqlitePool);

impl SecretResolver for FromDatabase {
    async fn resolve(&self, chatbot_id: &str) -> Result<Option<Vec<Secret>>, ResolveError> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT secret, previous_secret FROM chatbots WHERE id = ?")
                .bind(chatbot_id)
                .fetch_optional(&self.0)
                .await?;
        // Not one of ours: answered 401, and remembered for a while, so a flood
        // of made-up ids does not reach the database.
        let Some((secret, previous)) = row else {
            return Ok(None);
        };
        let mut secrets = vec![Secret::new(secret)?];
        if let Some(previous) = previous {
            secrets.push(Secret::new(previous)?);
        }
        Ok(Some(secrets))
    }
}

/// Only ever called with an event verified with its own chatbot's secret.
async fn webhook(ev: ChatbaseEvent) {
    if let Event::LeadsSubmit(lead) = ev.event() {
        tracing::info!(
            chatbot_id = ev.chatbot_id(),
            conversation_id = lead.conversation_id(),
            "lead received"
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();

    let url =
        std::env::var("CHATBOTS_DB").unwrap_or_else(|_| "sqlite://chatbots.db?mode=rwc".into());
    let pool = SqlitePool::connect(&url).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS chatbots (id TEXT PRIMARY KEY, secret TEXT NOT NULL, previous_secret TEXT)",
    )
    .execute(&pool)
    .await?;

    // Found secrets are cached 5 minutes and unknown chatbots 30 seconds; a
    // lookup that fails or takes over 2 s is answered 503 with Retry-After.
    // After rotating a secret, `verifier.invalidate("bot_1").await` makes it
    // count at once.
    let verifier = Verifier::with_resolver(FromDatabase(pool), ResolverOptions::default());
    let app = Router::new()
        .route("/webhook", post(webhook))
        .layer(VerifyChatbaseLayer::new(verifier));

    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
