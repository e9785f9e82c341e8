//! What verification and parsing cost, next to their floors.
//!
//! For the 167-byte sample `leads.submit` body and for 1 KiB, 16 KiB and 1 MiB
//! bodies (the sample with a longer `customerName`), in one run:
//!
//! - `a_floor_hmac`: `Hmac<Sha1>::new_from_slice` + `update` + `verify_slice` on a
//!   pre-decoded tag: what any correct verifier must at least do per request;
//! - `a2_floor_prekeyed`: the same with the key absorbed once, cloned per request
//!   (what `Verifier` does);
//! - `b_verify`: `Verifier::verify` from the hex header;
//! - `c_verify_and_parse`: `Verifier::verify_and_parse`, to a typed event;
//! - `d_serde_plain`: `serde_json` into a plain struct of the same fields, no
//!   verification: the parse floor;
//! - `e_serde_tagged` (sample only): `serde_json` into an internally tagged enum,
//!   what a derived event model would cost;
//! - `f_per_chatbot_10k` (sample only): (c) with secrets per chatbot, 10,000
//!   chatbots in a static map;
//! - `g_resolver_warm` (sample only): (c) with a secret resolver whose cache
//!   holds the chatbot.
//!
//! `bench/core.sh` runs this and prints the ratios (b)/(a) and (c)/((a)+(d)).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use chatbase_core::testing::{SAMPLE_LEADS_SUBMIT, lead_body, sample_lead};
use chatbase_core::{
    ChatbotSecrets, ResolveError, ResolverOptions, Secret, SecretResolver, Verifier, sign,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha1::Sha1;

const KEY: &str = "WDI9ZSFyH2YDWyzfWODMlDtzBKO9xGIS";

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainEvent {
    #[serde(rename = "eventType")]
    event_type: String,
    #[serde(rename = "chatbotId")]
    chatbot_id: String,
    payload: PlainLead,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PlainLead {
    conversation_id: String,
    customer_email: String,
    customer_name: String,
    customer_phone: String,
}

#[derive(Deserialize)]
#[serde(tag = "eventType", rename_all_fields = "camelCase")]
#[allow(dead_code)]
enum TaggedEvent {
    #[serde(rename = "leads.submit")]
    LeadsSubmit {
        chatbot_id: String,
        payload: PlainLead,
    },
}

/// A valid `leads.submit` body of exactly `size` bytes (at least the sample's).
fn body_of(size: usize) -> Bytes {
    if size == SAMPLE_LEADS_SUBMIT.len() {
        return Bytes::from_static(SAMPLE_LEADS_SUBMIT.as_bytes());
    }
    let mut lead = sample_lead();
    let base = SAMPLE_LEADS_SUBMIT.len() - "Example".len();
    lead.customer_name = Some("n".repeat(size - base));
    let body = lead_body("xxxxxxxx", &lead);
    assert_eq!(body.len(), size);
    body
}

/// 10,000 chatbots, the sample's among them, each with its own secret.
fn ten_thousand_chatbots() -> ChatbotSecrets {
    let mut chatbots = ChatbotSecrets::new();
    chatbots
        .insert("xxxxxxxx", [Secret::new(KEY).unwrap()])
        .unwrap();
    for n in 1..10_000 {
        let secret = Secret::new(format!("secret-of-bot-{n}")).unwrap();
        chatbots.insert(&format!("bot_{n:05}"), [secret]).unwrap();
    }
    chatbots
}

/// A resolver that knows the sample's chatbot.
struct SampleResolver;

impl SecretResolver for SampleResolver {
    async fn resolve(&self, chatbot_id: &str) -> Result<Option<Vec<Secret>>, ResolveError> {
        Ok((chatbot_id == "xxxxxxxx").then(|| vec![Secret::new(KEY).unwrap()]))
    }
}

fn benches(c: &mut Criterion) {
    let secret = Secret::new(KEY).unwrap();
    let verifier = Verifier::new(secret.clone()).with_body_limit(2 << 20);
    let prekeyed = Hmac::<Sha1>::new_from_slice(KEY.as_bytes()).unwrap();

    for size in [SAMPLE_LEADS_SUBMIT.len(), 1 << 10, 16 << 10, 1 << 20] {
        let body = body_of(size);
        let header = sign(&secret, &body);
        let mut tag = [0u8; 20];
        hex::decode_to_slice(&header, &mut tag).unwrap();
        // Sanity: every path accepts this body.
        verifier
            .verify_and_parse(body.clone(), Some(header.as_bytes()))
            .unwrap();
        serde_json::from_slice::<PlainEvent>(&body).unwrap();

        let mut group = c.benchmark_group(format!("verify/{size}"));
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 16 << 10 {
            group.sample_size(30);
        }

        group.bench_function(BenchmarkId::from_parameter("a_floor_hmac"), |b| {
            b.iter(|| {
                let mut mac = Hmac::<Sha1>::new_from_slice(black_box(KEY.as_bytes())).unwrap();
                mac.update(black_box(&body));
                mac.verify_slice(black_box(&tag)).is_ok()
            });
        });
        group.bench_function(BenchmarkId::from_parameter("a2_floor_prekeyed"), |b| {
            b.iter(|| {
                let mut mac = black_box(&prekeyed).clone();
                mac.update(black_box(&body));
                mac.verify_slice(black_box(&tag)).is_ok()
            });
        });
        group.bench_function(BenchmarkId::from_parameter("b_verify"), |b| {
            b.iter(|| verifier.verify(black_box(&body), Some(black_box(header.as_bytes()))));
        });
        group.bench_function(BenchmarkId::from_parameter("c_verify_and_parse"), |b| {
            b.iter(|| {
                verifier
                    .verify_and_parse(black_box(body.clone()), Some(black_box(header.as_bytes())))
            });
        });
        group.bench_function(BenchmarkId::from_parameter("d_serde_plain"), |b| {
            b.iter(|| serde_json::from_slice::<PlainEvent>(black_box(&body)));
        });
        if size == SAMPLE_LEADS_SUBMIT.len() {
            group.bench_function(BenchmarkId::from_parameter("e_serde_tagged"), |b| {
                b.iter(|| serde_json::from_slice::<TaggedEvent>(black_box(&body)));
            });
            let per_chatbot = Verifier::per_chatbot(ten_thousand_chatbots());
            group.bench_function(BenchmarkId::from_parameter("f_per_chatbot_10k"), |b| {
                b.iter(|| {
                    per_chatbot.verify_and_parse(
                        black_box(body.clone()),
                        Some(black_box(header.as_bytes())),
                    )
                });
            });
            let resolved = Verifier::with_resolver(SampleResolver, ResolverOptions::default());
            // Warm: the first lookup caches the chatbot (and resolves at once).
            resolved
                .verify_and_parse(body.clone(), Some(header.as_bytes()))
                .unwrap();
            group.bench_function(BenchmarkId::from_parameter("g_resolver_warm"), |b| {
                b.iter(|| {
                    resolved.verify_and_parse(
                        black_box(body.clone()),
                        Some(black_box(header.as_bytes())),
                    )
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = verify;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(verify);
