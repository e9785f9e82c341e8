//! Sending many requests, some at a time, and counting what came back:
//! [`send_many`] and its [`Tally`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::{StatusCode, Url};

use super::{Expect, Failure, Outgoing, Reply, SendError, Sender};

/// What a run of [`send_many`] got back: how many of each status, how many
/// of each failure (with the first error of each kind), and how long it took.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    statuses: BTreeMap<u16, usize>,
    failures: Vec<(SendError, usize)>,
    elapsed: Duration,
}

impl Tally {
    /// Counts one outcome.
    pub fn record(&mut self, outcome: &Result<Reply, SendError>) {
        match outcome {
            Ok(reply) => *self.statuses.entry(reply.status().as_u16()).or_default() += 1,
            Err(error) => {
                let kind = error.failure();
                match self
                    .failures
                    .iter_mut()
                    .find(|(first, _)| first.failure() == kind && same_kind(first, error))
                {
                    Some((_, count)) => *count += 1,
                    None => self.failures.push((error.clone(), 1)),
                }
            }
        }
    }

    /// How many replies of each status, lowest status first.
    pub fn statuses(&self) -> impl Iterator<Item = (StatusCode, usize)> + '_ {
        self.statuses.iter().filter_map(|(status, count)| {
            StatusCode::from_u16(*status)
                .ok()
                .map(|status| (status, *count))
        })
    }

    /// The requests that got no reply: the first error of each kind, and how
    /// many there were of that kind.
    pub fn failures(&self) -> impl Iterator<Item = (&SendError, usize)> + '_ {
        self.failures.iter().map(|(error, count)| (error, *count))
    }

    /// How many requests were sent (replied to or not).
    pub fn total(&self) -> usize {
        self.statuses.values().sum::<usize>() + self.failures.iter().map(|(_, n)| n).sum::<usize>()
    }

    /// How many replies had a status that `expect` accepts.
    pub fn matching(&self, expect: &Expect) -> usize {
        self.statuses()
            .filter(|(status, _)| expect.matches(*status))
            .map(|(_, count)| count)
            .sum()
    }

    /// How long the run took.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

/// Two errors are of one kind when they fit the same usual cause, or, for
/// other failures, say the same thing.
fn same_kind(one: &SendError, other: &SendError) -> bool {
    match one.failure() {
        Some(Failure::Other) | None => one.to_string() == other.to_string(),
        Some(_) => true,
    }
}

/// Sends `count` requests to `url`, `concurrency` at a time (at least one),
/// making request `n` (from 0) with `make(n)`, and counts what came back.
/// `on_outcome` sees each outcome as it comes (to move a progress bar).
pub async fn send_many(
    sender: &Sender,
    url: &Url,
    count: usize,
    concurrency: usize,
    make: impl Fn(usize) -> Outgoing,
    mut on_outcome: impl FnMut(&Result<Reply, SendError>),
) -> Tally {
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut outcomes = futures_util::stream::iter(0..count)
        .map(|n| {
            let outgoing = make(n);
            async move { sender.send_to(url, &outgoing).await }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(outcome) = outcomes.next().await {
        tally.record(&outcome);
        on_outcome(&outcome);
    }
    tally.elapsed = started.elapsed();
    tally
}
