//! Soak test of a receiver binary: `soak --receiver target/release/axum-receiver`.
//!
//! Starts the receiver (with a fresh secret, on a free port, `RUST_LOG=info`),
//! then drives it over many concurrent connections with a mix of requests:
//!
//! - valid `leads.submit` events, each with its own conversation id (6 in 10);
//! - forged ones, with a well-formed signature that does not match (2 in 10);
//! - correctly signed bodies that are not events (2 in 10).
//!
//! The run is bounded in requests and in time. Then it checks that every valid
//! request got 200 and reached the handler **exactly once** — counted at the
//! handler, from the receiver's own `info` line per delivered event, not at the
//! client —, every forged one 401, every malformed one 400; that there was no
//! 5xx and no connection error; and that the receiver's resident memory stayed
//! flat after the warm-up. Prints a summary; exits 0 only if every check holds.
//!
//! `bench/soak.sh` builds the receivers and runs this against both.

// A command-line program: its report goes to standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatbase_core::Secret;
use clap::Parser;
use harness::send::{Outgoing, Sender, lead_body};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Soak a receiver binary with valid, forged and malformed webhooks.
#[derive(Debug, Parser)]
struct Args {
    /// The receiver binary to start (it must honour `PORT`,
    /// `CHATBASE_WEBHOOK_SECRET` and `RUST_LOG`, and log one `info` line per
    /// delivered event with its `conversation_id`).
    #[arg(long)]
    receiver: PathBuf,
    /// How many requests to send, at most.
    #[arg(long, default_value_t = 1_000_000)]
    requests: usize,
    /// How many requests are in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Stop sending after this many seconds, whatever the count.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// The route to send to.
    #[arg(long, default_value = "/webhook")]
    path: String,
}

/// What a request was meant to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    Forged,
    Malformed,
}

impl Kind {
    fn of(index: usize) -> Self {
        match index % 10 {
            0..=5 => Self::Valid,
            6 | 7 => Self::Forged,
            _ => Self::Malformed,
        }
    }

    fn expected_status(self) -> u16 {
        match self {
            Self::Valid => 200,
            Self::Forged => 401,
            Self::Malformed => 400,
        }
    }
}

/// Signed bodies that are not Chatbase events.
const MALFORMED: [&[u8]; 4] = [b"{not json", b"[1,2]", br#"{"chatbotId":"soak"}"#, b""];

/// What the client saw.
#[derive(Debug, Default)]
struct Results {
    /// (kind, status) -> count.
    statuses: BTreeMap<(Kind, u16), usize>,
    /// Request indexes of valid requests answered 200.
    valid_ok: Vec<usize>,
    connection_errors: Vec<String>,
}

/// The receiver's RSS over the run: (seconds since start, KiB).
type RssSamples = Vec<(f64, u64)>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("soak: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let secret_text = harness::random::hex(32)?;
    let secret = Secret::new(secret_text.as_str())?;
    let name = args
        .receiver
        .file_name()
        .map_or_else(|| "receiver".into(), |n| n.to_string_lossy().into_owned());

    let mut child = Command::new(&args.receiver)
        .env("PORT", "0")
        .env("CHATBASE_WEBHOOK_SECRET", &secret_text)
        .env_remove("CHATBASE_WEBHOOK_PREVIOUS_SECRET")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", args.receiver.display()))?;
    let pid = child.id().ok_or("the receiver exited at once")?;
    let handled = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let port = watch_log(&mut child, Arc::clone(&handled))?;
    let port = tokio::time::timeout(Duration::from_secs(30), port)
        .await
        .map_err(|_| "the receiver did not say where it listens within 30 s")??;
    let url = format!("http://127.0.0.1:{port}{}", args.path);
    println!(
        "soaking {name} (pid {pid}) at {url}: {} requests at most, {} in flight, {} s at most",
        args.requests, args.concurrency, args.max_seconds
    );

    let started = Instant::now();
    let rss = Arc::new(Mutex::new(RssSamples::new()));
    let sampler = tokio::spawn(sample_rss(pid, started, Arc::clone(&rss)));
    let results = drive(args, &url, &secret, started).await?;
    let elapsed = started.elapsed();
    sampler.abort();

    // The handler's log lines may trail the last answers by a moment.
    let expected_handled = results.valid_ok.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock(&handled).values().sum::<usize>() < expected_handled && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(&mut child, pid).await;

    let handled = lock(&handled).clone();
    let rss = lock(&rss).clone();
    Ok(report(&name, &results, &handled, &rss, elapsed))
}

/// Reads the receiver's standard output: the port it listens on (sent once), and
/// for every delivered event its conversation id, counted in `handled`.
fn watch_log(
    child: &mut Child,
    handled: Arc<Mutex<HashMap<String, usize>>>,
) -> Result<oneshot::Receiver<u16>, Box<dyn std::error::Error>> {
    let stdout = child.stdout.take().ok_or("no standard output")?;
    let (port_tx, port_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut port_tx = Some(port_tx);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(conversation) = delivered_conversation(&line) {
                *lock(&handled).entry(conversation.to_owned()).or_default() += 1;
            } else if let (Some(port), Some(tx)) = (listening_port(&line), port_tx.take()) {
                let _ = tx.send(port);
            }
        }
    });
    Ok(port_rx)
}

/// The conversation id of a receiver's "Chatbase event received" line.
fn delivered_conversation(line: &str) -> Option<&str> {
    if !line.contains("Chatbase event received") {
        return None;
    }
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("conversation_id="))
}

/// The port of a receiver's "listening on http://127.0.0.1:PORT" line.
fn listening_port(line: &str) -> Option<u16> {
    let rest = line.split("listening on http://").nth(1)?;
    let address = rest.split_whitespace().next()?;
    address.rsplit(':').next()?.parse().ok()
}

/// Sends the requests from `concurrency` tasks until the count or the time is up.
async fn drive(
    args: &Args,
    url: &str,
    secret: &Secret,
    started: Instant,
) -> Result<Results, Box<dyn std::error::Error>> {
    let sender = Sender::new()?;
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Results::default()));
    let time_limit = Duration::from_secs(args.max_seconds);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (sender, next, results) = (sender.clone(), Arc::clone(&next), Arc::clone(&results));
        let (url, secret, total) = (url.to_owned(), secret.clone(), args.requests);
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total || started.elapsed() > time_limit {
                    break;
                }
                let kind = Kind::of(index);
                let outgoing = request(kind, index, &secret);
                match sender.send(&url, &outgoing).await {
                    Ok(reply) => {
                        let status = reply.status().as_u16();
                        let mut results = lock(&results);
                        *results.statuses.entry((kind, status)).or_default() += 1;
                        if kind == Kind::Valid && status == 200 {
                            results.valid_ok.push(index);
                        }
                    }
                    Err(error) => lock(&results).connection_errors.push(error.to_string()),
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let results = std::mem::take(&mut *lock(&results));
    Ok(results)
}

fn request(kind: Kind, index: usize, secret: &Secret) -> Outgoing {
    match kind {
        Kind::Valid => Outgoing::signed(secret, lead_body("soak", &conversation_id(index))),
        Kind::Forged => Outgoing::badly_signed(secret, lead_body("soak", &conversation_id(index))),
        Kind::Malformed => {
            let body = MALFORMED
                .get(index % MALFORMED.len())
                .copied()
                .unwrap_or_default();
            Outgoing::signed(secret, Bytes::from_static(body))
        }
    }
}

fn conversation_id(index: usize) -> String {
    format!("soak_{index}")
}

/// Samples the receiver's resident memory (`VmRSS`) every 250 ms.
async fn sample_rss(pid: u32, started: Instant, samples: Arc<Mutex<RssSamples>>) {
    loop {
        if let Some(kib) = rss_kib(pid) {
            lock(&samples).push((started.elapsed().as_secs_f64(), kib));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Asks the receiver to shut down (SIGTERM), and kills it if it does not.
async fn stop(child: &mut Child, pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    if tokio::time::timeout(Duration::from_secs(40), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Prints the summary and says whether every check holds.
fn report(
    name: &str,
    results: &Results,
    handled: &HashMap<String, usize>,
    rss: &RssSamples,
    elapsed: Duration,
) -> bool {
    let mut checks: Vec<(String, bool)> = Vec::new();
    let sent: usize = results.statuses.values().sum::<usize>() + results.connection_errors.len();
    println!();
    println!(
        "{name}: {sent} requests in {:.1} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!("| kind | status | count |");
    println!("|---|---:|---:|");
    for ((kind, status), count) in &results.statuses {
        println!("| {kind:?} | {status} | {count} |");
    }

    for kind in [Kind::Valid, Kind::Forged, Kind::Malformed] {
        let total: usize = results
            .statuses
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, c)| c)
            .sum();
        let right = results
            .statuses
            .get(&(kind, kind.expected_status()))
            .copied()
            .unwrap_or(0);
        checks.push((
            format!(
                "every {kind:?} request got {} ({right}/{total})",
                kind.expected_status()
            ),
            total > 0 && right == total,
        ));
    }
    let server_errors: usize = results
        .statuses
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, c)| c)
        .sum();
    checks.push((format!("no 5xx ({server_errors})"), server_errors == 0));
    checks.push((
        format!("no connection error ({})", results.connection_errors.len()),
        results.connection_errors.is_empty(),
    ));
    if let Some(first) = results.connection_errors.first() {
        println!("first connection error: {first}");
    }

    let not_once: Vec<_> = results
        .valid_ok
        .iter()
        .map(|&index| conversation_id(index))
        .filter(|id| handled.get(id) != Some(&1))
        .collect();
    let strays = handled.len().saturating_sub(results.valid_ok.len());
    checks.push((
        format!(
            "every valid request reached the handler exactly once ({} of {}; {} not exactly once, {} unexpected)",
            results.valid_ok.len() - not_once.len(),
            results.valid_ok.len(),
            not_once.len(),
            strays
        ),
        not_once.is_empty() && strays == 0,
    ));

    let (flat, description) = rss_flat(rss, elapsed.as_secs_f64());
    checks.push((description, flat));

    println!();
    let mut all = true;
    for (check, ok) in &checks {
        println!("{} {check}", if *ok { "PASS" } else { "FAIL" });
        all &= ok;
    }
    all
}

/// Whether RSS stayed flat after the warm-up: the peak of the last quarter of
/// the run is within 10% (or 2 MiB) of the peak of the second quarter.
fn rss_flat(samples: &RssSamples, total: f64) -> (bool, String) {
    // At least four samples (a second) in a window, or it says nothing.
    let peak = |from: f64, to: f64| {
        let window: Vec<u64> = samples
            .iter()
            .filter(|(t, _)| *t >= from * total && *t < to * total)
            .map(|(_, kib)| *kib)
            .collect();
        (window.len() >= 4)
            .then(|| window.into_iter().max())
            .flatten()
    };
    match (peak(0.25, 0.5), peak(0.75, 1.01)) {
        (Some(warm), Some(end)) => {
            let allowed = (warm / 10).max(2048);
            let growth = end.saturating_sub(warm);
            (
                growth <= allowed,
                format!(
                    "RSS flat after warm-up: {:.1} MiB then {:.1} MiB (growth {growth} KiB, allowed {allowed} KiB)",
                    warm as f64 / 1024.0,
                    end as f64 / 1024.0
                ),
            )
        }
        _ => (
            false,
            "RSS flat after warm-up: too few samples (run longer)".to_owned(),
        ),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_receivers_lines() {
        let line = "2026-11-25T06:00:00.123Z  INFO axum_receiver: Chatbase event received event_type=leads.submit chatbot_id=soak conversation_id=soak_17";
        assert_eq!(delivered_conversation(line), Some("soak_17"));
        assert_eq!(
            delivered_conversation("WARN rejected a Chatbase webhook status=401"),
            None
        );
        let listening = "2026-11-25T06:00:00Z  INFO axum_receiver: listening on http://127.0.0.1:41234 (POST /webhook, /scoped/webhook)";
        assert_eq!(listening_port(listening), Some(41234));
        assert_eq!(listening_port("something else"), None);
    }

    #[test]
    fn the_mix_is_six_valid_two_forged_two_malformed() {
        let mut counts = BTreeMap::new();
        for index in 0..100 {
            *counts.entry(Kind::of(index)).or_insert(0) += 1;
        }
        assert_eq!(counts[&Kind::Valid], 60);
        assert_eq!(counts[&Kind::Forged], 20);
        assert_eq!(counts[&Kind::Malformed], 20);
    }

    #[test]
    fn rss_check() {
        let flat: RssSamples = (0..100u32).map(|i| (f64::from(i), 10_000)).collect();
        assert!(rss_flat(&flat, 100.0).0);
        let growing: RssSamples = (0..100u32)
            .map(|i| (f64::from(i), 10_000 + u64::from(i) * 100))
            .collect();
        assert!(!rss_flat(&growing, 100.0).0);
    }
}
