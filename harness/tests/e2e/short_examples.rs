//! The shortest receivers, `examples/axum` and `examples/actix`, as a user runs
//! them: a signed lead is saved, the rest is refused and logged.

use chatbase_core::SECRET_ENV_VAR;
use harness::send::{self, Outgoing};

use crate::support::{
    CHATBOT_ID, SECRET, Server, assert_json_rejection, assert_no_private_data, lead, secret,
};

/// What the short examples log for each lead.
const LEAD_SAVED: &str = "lead saved";

/// A signed lead: 200 and its "lead saved" line. Unsigned, forged and tampered
/// with: 401, each with its `WARN` line under `chatbase::rejection`. Never the
/// customer's details in the output.
async fn saves_signed_leads_and_refuses_the_rest(name: &'static str, path: &str) {
    let mut server = Server::start(name, &[(SECRET_ENV_VAR, SECRET)], LEAD_SAVED).await;
    let conversation_id = send::new_conversation_id();
    let body = lead(&conversation_id);
    let signed = Outgoing::signed(&secret(), body.clone());

    let reply = server.send(path, &signed).await;
    assert_eq!(reply.status(), 200, "{name}: {}", reply.text());
    let delivery = server.next_delivery(name).await;
    assert_eq!(
        delivery.conversation_id.as_deref(),
        Some(conversation_id.as_str()),
        "{name}: {}",
        delivery.line
    );
    assert_eq!(delivery.chatbot_id.as_deref(), Some(CHATBOT_ID), "{name}");

    let refused = [
        ("unsigned", Outgoing::unsigned(body.clone())),
        ("forged", Outgoing::badly_signed(&secret(), body.clone())),
        ("tampered", signed.tampered()),
    ];
    for (what, outgoing) in refused {
        let context = format!("{name} {what}");
        let reply = server.send(path, &outgoing).await;
        assert_json_rejection(&reply, 401, &context);
        let line = server.next_rejection(401, &context).await;
        assert!(
            line.contains("rejected a Chatbase webhook"),
            "{context}: {line}"
        );
    }

    let log = server.log();
    assert_eq!(log.matches(LEAD_SAVED).count(), 1, "{name}: {log}");
    assert_no_private_data(&log, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_axum_saves_signed_leads_and_refuses_the_rest() {
    saves_signed_leads_and_refuses_the_rest("example-axum", "/webhook").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_actix_saves_signed_leads_and_refuses_the_rest() {
    saves_signed_leads_and_refuses_the_rest("example-actix", "/chatbase/webhook").await;
}
