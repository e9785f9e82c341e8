//! What verifying and parsing allocate, counted with dhat's heap profiler in
//! testing mode (counts, not time: the same on any machine).
//!
//! A binary of its own without the test harness: the global allocator counts
//! every thread, so nothing else may run meanwhile.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stdout, missing_docs)]

use bytes::Bytes;
use chatbase_core::testing::{SAMPLE_LEADS_SUBMIT, sample_lead};
use chatbase_core::{ChatbotSecrets, Event, Secret, Verifier, sign};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// How many heap blocks `f` allocates.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = dhat::HeapStats::get().total_blocks;
    let value = f();
    (dhat::HeapStats::get().total_blocks - before, value)
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    verifying_and_parsing_the_sample_allocates_nothing();
    with_secrets_per_chatbot_only_the_id_is_allocated_before_verifying();
    only_escaped_strings_are_allocated();
    a_chunked_body_allocates_once_to_join_it();
    println!("allocations: 4 checks passed");
}

fn verifying_and_parsing_the_sample_allocates_nothing() {
    let secret = Secret::new("allocation-test").unwrap();
    let verifier = Verifier::new(secret.clone());
    let signature = sign(&secret, SAMPLE_LEADS_SUBMIT.as_bytes());
    // The body as a server hands it over: already in a `Bytes` of its own.
    let body = Bytes::from(SAMPLE_LEADS_SUBMIT.as_bytes().to_vec());
    let expected = sample_lead();

    let (count, event) =
        allocations(|| verifier.verify_and_parse(body, Some(signature.as_bytes())));
    let event = event.unwrap();
    println!("verify + parse of the sample: {count} allocations");
    assert_eq!(
        count, 0,
        "verify + parse of the sample: {count} allocations"
    );

    // Reading it allocates nothing either.
    let (count, ok) = allocations(|| match event.event() {
        Event::LeadsSubmit(lead) => lead == expected && event.chatbot_id() == Some("xxxxxxxx"),
        _ => false,
    });
    assert!(ok, "the sample lead");
    println!("reading the sample's lead: {count} allocations");
    assert_eq!(count, 0, "reading the lead: {count} allocations");
}

fn with_secrets_per_chatbot_only_the_id_is_allocated_before_verifying() {
    let secret = Secret::new("allocation-test").unwrap();
    let mut chatbots = ChatbotSecrets::new();
    for n in 0..1000 {
        let other = Secret::new(format!("secret-{n}")).unwrap();
        chatbots = chatbots.with_chatbot(&format!("bot-{n}"), [other]).unwrap();
    }
    // The sample's chatbot id.
    let chatbots = chatbots.with_chatbot("xxxxxxxx", [secret.clone()]).unwrap();
    let verifier = Verifier::per_chatbot(chatbots);
    let signature = sign(&secret, SAMPLE_LEADS_SUBMIT.as_bytes());
    let body = Bytes::from(SAMPLE_LEADS_SUBMIT.as_bytes().to_vec());

    let (count, event) =
        allocations(|| verifier.verify_and_parse(body, Some(signature.as_bytes())));
    assert_eq!(event.unwrap().chatbot_id(), Some("xxxxxxxx"));
    println!("verify + parse of the sample, 1,001 chatbots: {count} allocations");
    assert_eq!(count, 0, "secrets per chatbot: {count} allocations");

    // Before the signature is checked, only an escaped id is allocated:
    // forgeries (signed with another secret) of bodies the parser would
    // allocate for, or not.
    let forge = |body: &'static [u8]| {
        let forgery = sign(&Secret::new("another-secret").unwrap(), body);
        let body = Bytes::from_static(body);
        allocations(|| verifier.verify_and_parse(body, Some(forgery.as_bytes())))
    };
    for (what, body, expected) in [
        (
            "escaped payload strings",
            br#"{"eventType":"leads.submit","chatbotId":"xxxxxxxx","payload":{"customerName":"Zo\u00eb","customerEmail":"a\"b@example.com"}}"#.as_slice(),
            0,
        ),
        // serde_json keeps a stack of the arrays and objects it skips in its
        // scratch buffer: parser and scan alike, one allocation.
        (
            "an unknown event, nested",
            br#"{"eventType":"leads.later","chatbotId":"xxxxxxxx","payload":{"a":[1,{"b":null}],"c":"d"}}"#,
            1,
        ),
        (
            "an unknown event, nested, with an escape (scanned)",
            br#"{"eventType":"leads.later","chatbotId":"xxxxxxxx","payload":{"a":[1,{"b":null}],"c":"\n"}}"#,
            1,
        ),
        // The id decoded: serde_json's scratch buffer, and the id itself.
        (
            "an escaped chatbot id",
            br#"{"eventType":"leads.submit","chatbotId":"xxxx\u0078xxx","payload":{}}"#,
            2,
        ),
    ] {
        let (count, outcome) = forge(body);
        assert!(
            matches!(outcome, Err(chatbase_core::Error::SignatureMismatch)),
            "{what}: {outcome:?}"
        );
        println!("a forgery with {what}, 1,001 chatbots: {count} allocations");
        assert_eq!(count, expected, "a forgery with {what}: {count} allocations");
    }
}

fn only_escaped_strings_are_allocated() {
    let secret = Secret::new("allocation-test").unwrap();
    let verifier = Verifier::new(secret.clone());
    let body = br#"{"eventType":"leads.submit","chatbotId":"b","payload":{"customerName":"Zo\u00eb","customerEmail":"a\"b@example.com"}}"#;
    let signature = sign(&secret, body);
    let body = Bytes::from_static(body);
    let (count, event) =
        allocations(|| verifier.verify_and_parse(body, Some(signature.as_bytes())));
    let event = event.unwrap();
    // One for each of the two strings with escapes, and serde_json's scratch
    // buffer for unescaping them (allocated, then grown once): nothing else.
    println!("verify + parse, two strings with escapes: {count} allocations");
    assert!((2..=4).contains(&count), "{count} allocations");
    let Event::LeadsSubmit(lead) = event.event() else {
        panic!("not a lead")
    };
    assert_eq!(lead.customer_name(), Some("Zoë"));
    assert_eq!(lead.customer_email(), Some("a\"b@example.com"));
}

fn a_chunked_body_allocates_once_to_join_it() {
    let secret = Secret::new("allocation-test").unwrap();
    let verifier = Verifier::new(secret.clone());
    let signature = sign(&secret, SAMPLE_LEADS_SUBMIT.as_bytes());
    let (first, second) = SAMPLE_LEADS_SUBMIT.as_bytes().split_at(50);
    let (count, event) = allocations(|| {
        let mut verification = verifier.head([signature.as_bytes()], None)?;
        verification.chunk(first)?;
        verification.chunk(second)?;
        futures_executor::block_on(verification.finish())
    });
    event.unwrap();
    // The joined body, and the shared header `Bytes` gives it when frozen.
    println!("verify + parse of the sample in two chunks: {count} allocations");
    assert!(count <= 2, "{count} allocations");
}
