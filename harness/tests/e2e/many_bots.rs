//! The `example-many-bots` example: secrets per chatbot in a SQLite table,
//! read through the cached resolver, over real TCP.

use chatbase_core::Secret;
use harness::send::{self, Outgoing};
use sqlx::SqlitePool;

use crate::support::{Server, temp_dir};

/// A chatbot added to the table while the example runs is served at once;
/// a body signed with another chatbot's secret, or naming an unknown
/// chatbot, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatbots_in_the_table_are_served_with_their_own_secrets() {
    let directory = temp_dir();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("chatbots.db").display()
    );
    let mut server = Server::start(
        "example-many-bots",
        &[("CHATBOTS_DB", url.as_str())],
        "lead received",
    )
    .await;

    // The example created the table; add two chatbots, as an operator would.
    let pool = SqlitePool::connect(&url).await.unwrap();
    for (id, secret) in [
        ("bot_a", "many-bots-secret-a"),
        ("bot_b", "many-bots-secret-b"),
    ] {
        sqlx::query("INSERT INTO chatbots (id, secret) VALUES (?, ?)")
            .bind(id)
            .bind(secret)
            .execute(&pool)
            .await
            .unwrap();
    }
    let secret = |key: &str| Secret::new(key).unwrap();
    let lead = |bot: &str| send::lead_body(bot, &send::new_conversation_id());

    for (bot, key) in [
        ("bot_a", "many-bots-secret-a"),
        ("bot_b", "many-bots-secret-b"),
    ] {
        let reply = server
            .send("/webhook", &Outgoing::signed(&secret(key), lead(bot)))
            .await;
        assert_eq!(reply.status(), 200, "{bot}");
        let delivery = server.next_delivery(bot).await;
        assert_eq!(delivery.chatbot_id.as_deref(), Some(bot));
    }
    // Bot B's body signed with bot A's secret.
    let reply = server
        .send(
            "/webhook",
            &Outgoing::signed(&secret("many-bots-secret-a"), lead("bot_b")),
        )
        .await;
    assert_eq!(reply.status(), 401);
    server.next_rejection(401, "cross-chatbot signature").await;
    // A chatbot not in the table.
    let reply = server
        .send(
            "/webhook",
            &Outgoing::signed(&secret("many-bots-secret-a"), lead("bot_c")),
        )
        .await;
    assert_eq!(reply.status(), 401);
    server.next_rejection(401, "unknown chatbot").await;
}
