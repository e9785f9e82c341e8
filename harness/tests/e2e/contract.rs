//! The reference receivers' contract: what is delivered, what is refused with
//! which status, what is logged, on both routes; rotation.

use chatbase_core::{DEFAULT_BODY_LIMIT, Secret};
use harness::send::{self, Outgoing};
use reqwest::Method;

use crate::support::{
    CHATBOT_ID, DELIVERY_LINE, ROUTES, Reference, Server, assert_json_rejection,
    assert_no_private_data, lead, previous_secret, secret,
};

/// Valid, tampered, unsigned, wrong signature, another secret, oversized and
/// not an event, on both routes; other methods. Exactly the valid requests are
/// delivered, each logged once at `INFO` with its conversation and chatbot;
/// every refusal is logged under `chatbase::rejection`; no customer data and
/// no secret is ever logged.
async fn keeps_the_contract(reference: Reference) {
    let mut server = Server::reference(reference).await;
    for route in ROUTES {
        let context = format!("{} {route}", reference.binary());
        let conversation_id = send::new_conversation_id();
        let valid = Outgoing::signed(&secret(), lead(&conversation_id));

        let reply = server.send(route, &valid).await;
        assert_eq!(reply.status(), 200, "{context}: {}", reply.text());
        assert_eq!(reply.text(), "OK", "{context}");
        let delivery = server.next_delivery(&context).await;
        assert_eq!(
            delivery.event_type.as_deref(),
            Some("leads.submit"),
            "{context}"
        );
        assert_eq!(
            delivery.chatbot_id.as_deref(),
            Some(CHATBOT_ID),
            "{context}"
        );
        assert_eq!(
            delivery.conversation_id.as_deref(),
            Some(conversation_id.as_str()),
            "{context}: {}",
            delivery.line
        );

        let body = lead(&send::new_conversation_id());
        let mut oversized = body.to_vec();
        oversized.resize(DEFAULT_BODY_LIMIT + 1, b' ');
        let another_secret = Secret::new("not the receiver's secret").unwrap();
        let rejected = [
            ("tampered", valid.clone().tampered(), 401),
            ("unsigned", Outgoing::unsigned(body.clone()), 401),
            (
                "wrong signature",
                Outgoing::badly_signed(&secret(), body.clone()),
                401,
            ),
            (
                "another secret",
                Outgoing::signed(&another_secret, body.clone()),
                401,
            ),
            ("oversized", Outgoing::signed(&secret(), oversized), 413),
            (
                "signed, not an event",
                Outgoing::signed(&secret(), "[1]"),
                400,
            ),
        ];
        for (what, outgoing, status) in rejected {
            let context = format!("{context} {what}");
            let reply = server.send(route, &outgoing).await;
            assert_json_rejection(&reply, status, &context);
            server.next_rejection(status, &context).await;
        }
    }

    // Other methods on /webhook: 405 with `Allow: POST`, whatever the body, and
    // nothing delivered or logged as a rejection...
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let context = format!("{} {method} /webhook", reference.binary());
        let outgoing = Outgoing::signed(&secret(), lead("conv_method")).with_method(method);
        let reply = server.send("/webhook", &outgoing).await;
        assert_eq!(reply.status(), 405, "{context}");
        let allow = reply.headers().get("allow").and_then(|v| v.to_str().ok());
        assert_eq!(allow, Some("POST"), "{context}");
    }
    // ...while behind the layer / middleware every method is verified first:
    // the next line logged is this request's rejection.
    let context = format!("{} unsigned GET /scoped/webhook", reference.binary());
    let unsigned_get = Outgoing::unsigned("").with_method(Method::GET);
    let reply = server.send("/scoped/webhook", &unsigned_get).await;
    assert_json_rejection(&reply, 401, &context);
    server.next_rejection(401, &context).await;

    let log = server.log();
    let deliveries = log.lines().filter(|l| l.contains(DELIVERY_LINE)).count();
    assert_eq!(deliveries, ROUTES.len(), "{log}");
    assert!(!log.contains("conv_method"), "{log}");
    assert_no_private_data(&log, reference.binary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_receiver_keeps_the_contract_on_both_routes() {
    keeps_the_contract(Reference::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_receiver_keeps_the_contract_on_both_routes() {
    keeps_the_contract(Reference::Actix).await;
}

/// During a rotation `CHATBASE_WEBHOOK_PREVIOUS_SECRET` is accepted too, on
/// both routes, and a secret that is neither is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_receivers_accept_the_previous_secret_during_a_rotation() {
    for reference in Reference::BOTH {
        let mut server = Server::reference(reference).await;
        for route in ROUTES {
            let context = format!("{} {route}", reference.binary());
            let conversation_id = send::new_conversation_id();
            let outgoing = Outgoing::signed(&previous_secret(), lead(&conversation_id));
            let reply = server.send(route, &outgoing).await;
            assert_eq!(reply.status(), 200, "{context}: {}", reply.text());
            let delivery = server.next_delivery(&context).await;
            assert_eq!(
                delivery.conversation_id.as_deref(),
                Some(conversation_id.as_str()),
                "{context}"
            );

            let retired = Secret::new("e2e-retired-secret").unwrap();
            let outgoing = Outgoing::signed(&retired, lead("conv_retired"));
            let reply = server.send(route, &outgoing).await;
            assert_json_rejection(&reply, 401, &context);
            server.next_rejection(401, &context).await;
        }
        assert!(!server.log().contains("conv_retired"));
    }
}
