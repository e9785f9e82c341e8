//! The reference receivers' Prometheus metrics (`METRICS_PORT`) agree exactly
//! with the statuses they sent: every request counted once under the outcome
//! and reason its answer says, accepted events by type, one verification time
//! per body verified, the time of the last accepted event; and they are served
//! on their own port only, never on the webhook port.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chatbase_core::observe::{EVENTS_TOTAL, LAST_ACCEPTED_SECONDS, VERIFICATION_SECONDS};
use chatbase_core::{DEFAULT_BODY_LIMIT, sign};
use harness::send::{self, Outgoing};
use reqwest::header::HeaderValue;

use crate::support::{
    Answer, CHATBOT_ID, INBOX_ENV_VAR, METRICS_PORT_ENV_VAR, ROUTES, Reference, Server,
    assert_requests_counted, counted_as, free_port, lead, patiently, scrape, secret, sqlite_url,
    temp_dir,
};

/// One kind of request of the mix, and what it must be answered.
struct Case {
    what: &'static str,
    outgoing: Outgoing,
    status: u16,
    /// Whether it must be answered as a duplicate.
    duplicate: bool,
    /// Its `reason` label if it is rejected.
    reason: &'static str,
    /// Whether its body gets as far as verification (past the head's checks:
    /// one well-formed signature, a length within the limit).
    verified: bool,
    /// Its `event_type` label if it is accepted.
    event_type: Option<&'static str>,
}

/// The mix sent to each route: valid leads, an event of a type this version
/// does not know, a duplicate (with an inbox), and every kind of refusal.
fn mix(inbox: bool) -> Vec<Case> {
    let valid = |what| {
        let body = lead(&send::new_conversation_id());
        Case {
            what,
            outgoing: Outgoing::signed(&secret(), body),
            status: 200,
            duplicate: false,
            reason: "none",
            verified: true,
            event_type: Some("leads.submit"),
        }
    };
    let rejected = |what, outgoing, status, reason, verified| Case {
        what,
        outgoing,
        status,
        duplicate: false,
        reason,
        verified,
        event_type: None,
    };
    let first = valid("a lead");
    let repeated = first.outgoing.clone();
    let body = lead(&send::new_conversation_id());
    let signature = HeaderValue::from_str(&sign(&secret(), &body)).unwrap();
    let mut oversized = body.to_vec();
    oversized.resize(DEFAULT_BODY_LIMIT + 1, b' ');
    let unknown = send::event_body(
        "conversations.end",
        CHATBOT_ID,
        &send::new_conversation_id(),
    );
    let mut cases = vec![
        first,
        valid("another lead"),
        valid("a third lead"),
        Case {
            what: "an unknown event type",
            outgoing: Outgoing::signed(&secret(), unknown),
            status: 200,
            duplicate: false,
            reason: "none",
            verified: true,
            event_type: Some("other"),
        },
        rejected(
            "forged",
            Outgoing::badly_signed(&secret(), body.clone()),
            401,
            "signature_mismatch",
            true,
        ),
        rejected(
            "tampered",
            Outgoing::signed(&secret(), body.clone()).tampered(),
            401,
            "signature_mismatch",
            true,
        ),
        rejected(
            "unsigned",
            Outgoing::unsigned(body.clone()),
            401,
            "missing_signature",
            false,
        ),
        rejected(
            "a malformed signature",
            Outgoing::with_signature(
                body.clone(),
                Some(HeaderValue::from_static("not-a-signature")),
            ),
            401,
            "malformed_signature",
            false,
        ),
        rejected(
            "two signature headers",
            Outgoing::signed(&secret(), body).with_second_signature(signature),
            401,
            "multiple_signatures",
            false,
        ),
        rejected(
            "oversized",
            Outgoing::signed(&secret(), oversized),
            413,
            "body_too_large",
            false,
        ),
        rejected(
            "signed, not JSON",
            Outgoing::signed(&secret(), Bytes::from_static(b"not json")),
            400,
            "invalid_payload",
            true,
        ),
    ];
    if inbox {
        cases.push(Case {
            what: "the first lead again",
            outgoing: repeated,
            status: 200,
            duplicate: true,
            reason: "duplicate",
            verified: true,
            event_type: None,
        });
    }
    cases
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sends the mix to both routes of `reference` (with a SQLite inbox or
/// without), then checks its metrics against the answers.
async fn metrics_agree_with_the_statuses(reference: Reference, inbox: bool) {
    let context = format!(
        "{} {}",
        reference.binary(),
        if inbox {
            "with an inbox"
        } else {
            "without an inbox"
        }
    );
    let dir = temp_dir();
    let url = sqlite_url(&dir);
    let port = free_port().to_string();
    let mut env = vec![(METRICS_PORT_ENV_VAR, port.as_str())];
    if inbox {
        env.push((INBOX_ENV_VAR, url.as_str()));
    }
    let server = Server::reference_with(reference, &env).await;
    let port: u16 = port.parse().unwrap();

    let started = now();
    let mut requests: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut events: BTreeMap<&str, u64> = BTreeMap::new();
    let mut verified = 0;
    for route in ROUTES {
        for case in mix(inbox) {
            let context = format!("{context} {route} {}", case.what);
            let answer = Answer::of(&server.send(route, &case.outgoing).await);
            assert_eq!(answer.status, case.status, "{context}: {answer:?}");
            assert_eq!(answer.duplicate, case.duplicate, "{context}: {answer:?}");
            let counted = counted_as(&answer, case.reason);
            *requests.entry(counted).or_default() += 1;
            if counted == ("accepted", "none") {
                let event_type = case.event_type.expect("an accepted case has a type");
                *events.entry(event_type).or_default() += 1;
            }
            if case.verified {
                verified += 1;
            }
        }
    }

    // Not on the webhook port: there, /metrics is nothing but a 404.
    let webhook_port = server.url("/metrics");
    let response = patiently(&webhook_port, reqwest::get(&webhook_port))
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "{context}: {webhook_port}");
    let body = response.text().await.unwrap();
    assert!(!body.contains("chatbase_"), "{context}: {body}");

    let scrape = scrape(port).await;
    let scraped = now();
    assert_requests_counted(&scrape, &requests, &context);
    let counted: BTreeMap<String, f64> = scrape
        .series(EVENTS_TOTAL)
        .into_iter()
        .map(|(labels, value)| {
            let [(name, event_type)] = labels.as_slice() else {
                panic!("{context}: {EVENTS_TOTAL} labels {labels:?}");
            };
            assert_eq!(name, "event_type", "{context}");
            (event_type.clone(), value)
        })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let expected: BTreeMap<String, f64> = events
        .iter()
        .map(|(event_type, count)| ((*event_type).to_owned(), *count as f64))
        .collect();
    assert_eq!(
        counted, expected,
        "{context}: {EVENTS_TOTAL}\n{}",
        scrape.text
    );

    let verifications = scrape.value(&format!("{VERIFICATION_SECONDS}_count"));
    #[allow(clippy::cast_precision_loss)]
    let expected = verified as f64;
    assert_eq!(
        verifications,
        Some(expected),
        "{context}: bodies verified\n{}",
        scrape.text
    );
    let buckets = scrape.series(&format!("{VERIFICATION_SECONDS}_bucket"));
    let infinite = buckets
        .iter()
        .find(|(labels, _)| labels.iter().any(|(name, le)| name == "le" && le == "+Inf"))
        .map(|(_, count)| *count);
    assert_eq!(infinite, Some(expected), "{context}\n{}", scrape.text);

    let last_accepted = scrape
        .value(LAST_ACCEPTED_SECONDS)
        .unwrap_or_else(|| panic!("{context}: no {LAST_ACCEPTED_SECONDS}\n{}", scrape.text));
    assert!(
        (started..=scraped).contains(&last_accepted),
        "{context}: {LAST_ACCEPTED_SECONDS} {last_accepted} not between {started} and {scraped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_receivers_metrics_agree_exactly_with_the_statuses_sent() {
    tokio::join!(
        metrics_agree_with_the_statuses(Reference::Axum, false),
        metrics_agree_with_the_statuses(Reference::Axum, true),
        metrics_agree_with_the_statuses(Reference::Actix, false),
        metrics_agree_with_the_statuses(Reference::Actix, true),
    );
}
