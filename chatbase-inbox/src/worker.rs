//! [`Worker`]: runs a handler for each stored delivery, with parallelism,
//! retries, backoff, leases, dead deliveries and graceful shutdown.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::delivery::{Delivery, time_from_millis};
use crate::failure::Failure;
use crate::inbox::Inbox;
use crate::store::{ClaimRequest, ClaimedRow, Outcome};

/// What a [`Worker`] runs for each delivery: any
/// `Fn(Delivery) -> impl Future<Output = Result<(), Failure>>` that is `Send`,
/// `Sync` and `'static` (an `async fn`, or a closure returning an `async`
/// block).
pub trait Handler: Send + Sync + 'static {
    /// The future processing one delivery.
    type Future: Future<Output = Result<(), Failure>> + Send + 'static;

    /// Processes one delivery.
    fn call(&self, delivery: Delivery) -> Self::Future;
}

impl<F, Fut> Handler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    type Future = Fut;

    fn call(&self, delivery: Delivery) -> Fut {
        self(delivery)
    }
}

#[derive(Debug, Clone)]
struct Config {
    concurrency: usize,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    lease: Duration,
    poll_interval: Duration,
    shutdown_grace: Duration,
    retention_interval: Duration,
}

/// Runs a handler for each delivery stored in an [`Inbox`], from
/// [`Inbox::worker`].
///
/// - **Parallel:** up to [`concurrency`](Self::concurrency) deliveries at
///   once, in this process.
/// - **Retries:** a handler that returns a [`Failure`] or panics is retried
///   after an exponential backoff with jitter, up to
///   [`max_attempts`](Self::max_attempts); after that the delivery is
///   declared dead with its last error (which holds no customer data: see
///   [`Failure`]), and waits for [`Inbox::requeue`].
/// - **Leases:** a claimed delivery is leased to this worker, and the lease is
///   renewed while the handler runs. If the process dies, the lease expires
///   and another worker takes the delivery over (that attempt counts). Every
///   outcome is written only if the lease is still this worker's, so a worker
///   that lost its lease cannot overwrite its successor's outcome.
/// - **Several processes:** workers on one PostgreSQL claim with
///   `FOR UPDATE SKIP LOCKED`, so each delivery is processed by one of them.
/// - **Shutdown:** when the future given to [`run`](Self::run) completes, the
///   worker claims nothing more, lets the handlers in flight finish for up to
///   [`shutdown_grace`](Self::shutdown_grace), then stops the rest and
///   releases their deliveries (back to pending, claimable at once, the
///   attempt not counted).
/// - **Retention:** every [`retention_interval`](Self::retention_interval) it
///   runs [`Inbox::run_retention`].
/// - **Metrics** (feature `metrics`): it counts deliveries processed, retried
///   and dead, and keeps the backlog gauges up to date (see
///   [`observe`](crate::observe)).
///
/// Processing is at least once: a delivery whose worker was killed mid-way is
/// processed again, so a handler's side effects should tolerate a repeat
/// (the [`Delivery::key`] or [`Delivery::id`] make good idempotency keys).
///
/// ```no_run
/// use std::time::Duration;
/// use chatbase_inbox::{Delivery, Failure, Inbox};
///
/// async fn handle(delivery: Delivery) -> Result<(), Failure> {
///     let event = delivery.event()?;
///     // ... call the CRM ...
///     # let _ = event;
///     Ok(())
/// }
///
/// # async fn run() -> Result<(), chatbase_inbox::InboxError> {
/// let inbox = Inbox::open("sqlite://inbox.db").await?;
/// inbox
///     .worker(handle)
///     .concurrency(8)
///     .max_attempts(12)
///     .backoff(Duration::from_secs(2), Duration::from_secs(3600))
///     .run(async { let _ = tokio::signal::ctrl_c().await; })
///     .await;
/// # Ok(()) }
/// ```
pub struct Worker<H> {
    inbox: Inbox,
    handler: Arc<H>,
    config: Config,
}

impl<H: Handler> Worker<H> {
    pub(crate) fn new(inbox: Inbox, handler: H) -> Self {
        Self {
            inbox,
            handler: Arc::new(handler),
            config: Config {
                concurrency: 16,
                max_attempts: 10,
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(600),
                lease: Duration::from_secs(60),
                poll_interval: Duration::from_secs(1),
                shutdown_grace: Duration::from_secs(10),
                retention_interval: Duration::from_secs(600),
            },
        }
    }

    /// How many deliveries this worker processes at once, default 16. The
    /// worker claims deliveries for half of these slots at least at a time, so
    /// that a claim (a write transaction) is shared by several deliveries.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n.max(1);
        self
    }

    /// How many attempts a delivery gets before it is declared dead,
    /// default 10.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config.max_attempts = n.max(1);
        self
    }

    /// The backoff after a failed attempt: `base × 2^(attempt − 1)`, capped at
    /// `max`, of which a random half is taken off (jitter), so failures that
    /// happened together are not retried together. Default 1 s and 10 min.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_max = max.max(base);
        self
    }

    /// How long a claim holds without renewal, default 60 s. The worker renews
    /// it every third of that while the handler runs; a delivery whose worker
    /// died is taken over by another once it expires.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How often an idle worker looks for deliveries, default 1 s. Deliveries
    /// accepted through the same [`Inbox`] value wake it at once; this
    /// interval matters for those stored by other processes and for retries
    /// coming due.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long a shutdown waits for the handlers in flight before it stops
    /// them and releases their deliveries, default 10 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// How often the worker applies the retention policy
    /// ([`Inbox::run_retention`]), default every 10 minutes, the first time
    /// when it starts. [`Duration::ZERO`] turns it off.
    pub fn retention_interval(mut self, interval: Duration) -> Self {
        self.config.retention_interval = interval;
        self
    }

    /// Processes deliveries until `shutdown` completes, then shuts down
    /// gracefully (see [`Worker`]) and returns.
    ///
    /// Store errors (an unreachable database) are logged and retried: the
    /// worker resumes when the store comes back. Dropping the returned future
    /// stops the handlers at once without releasing their deliveries: they
    /// are taken over when their leases expire.
    pub async fn run<S>(self, shutdown: S)
    where
        S: Future<Output = ()>,
    {
        let config = Arc::new(self.config);
        let (cancel, cancelled) = watch::channel(false);
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut next_retention = (!config.retention_interval.is_zero()).then(Instant::now);
        let notify = self.inbox.stored_notify().clone();
        let mut gauges = Gauges::new(config.poll_interval);
        let mut next_expired = Instant::now();
        crate::observe::worker_started();
        tokio::pin!(shutdown);

        loop {
            while let Some(done) = tasks.try_join_next() {
                log_task_end(done);
            }
            gauges.refresh_if_due(&self.inbox).await;
            if let Some(at) = next_retention
                && Instant::now() >= at
            {
                match self.inbox.run_retention().await {
                    Ok(report) => tracing::debug!(
                        bodies_removed = report.bodies_removed,
                        deliveries_removed = report.deliveries_removed,
                        "chatbase-inbox: retention applied"
                    ),
                    Err(error) => tracing::warn!(%error, "chatbase-inbox: retention failed"),
                }
                next_retention = Some(Instant::now() + config.retention_interval);
            }

            // Claims for half the slots at least (or when idle): each claim is
            // a write transaction, so claiming a slot at a time as handlers
            // finish would cost one per delivery.
            let free = config.concurrency.saturating_sub(tasks.len());
            let wants = free > 0 && (tasks.is_empty() || free * 2 >= config.concurrency);
            if wants {
                let limit = u32::try_from(free).unwrap_or(u32::MAX);
                // Expired leases are looked for once per poll interval.
                let expired = Instant::now() >= next_expired;
                if expired {
                    next_expired = Instant::now() + config.poll_interval;
                }
                let request = ClaimRequest::new(limit, config.lease, config.max_attempts, expired);
                match self.inbox.claim(request).await {
                    Ok(claimed) => {
                        crate::observe::taken_over(claimed.reclaimed, claimed.swept_dead);
                        for row in claimed.rows {
                            tasks.spawn(run_one(
                                self.inbox.clone(),
                                self.handler.clone(),
                                row,
                                config.clone(),
                                cancelled.clone(),
                            ));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "chatbase-inbox: could not claim deliveries");
                    }
                }
            }

            let retention_due = async {
                match next_retention {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(done),
                () = notify.notified(), if wants => {}
                () = tokio::time::sleep(config.poll_interval), if wants => {}
                () = retention_due => {}
                () = gauges.due() => {}
            }
        }

        // Graceful shutdown: finish what is in flight, then release the rest.
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while let Some(done) = tasks.join_next().await {
                log_task_end(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::info!(
                in_flight = tasks.len(),
                "chatbase-inbox: shutdown grace over, releasing the deliveries still held"
            );
            let _ = cancel.send(true);
            while let Some(done) = tasks.join_next().await {
                log_task_end(done);
            }
        }
    }
}

/// When the worker refreshes the backlog gauges (feature `metrics`): when it
/// starts, then every poll interval, at most once a second. Without the
/// feature, never (and no query is made).
struct Gauges {
    #[cfg(feature = "metrics")]
    next: Instant,
    #[cfg(feature = "metrics")]
    every: Duration,
}

impl Gauges {
    /// The shortest interval between two refreshes.
    #[cfg(feature = "metrics")]
    const MIN_INTERVAL: Duration = Duration::from_secs(1);

    fn new(poll_interval: Duration) -> Self {
        #[cfg(feature = "metrics")]
        return Self {
            next: Instant::now(),
            every: poll_interval.max(Self::MIN_INTERVAL),
        };
        #[cfg(not(feature = "metrics"))]
        {
            let _ = poll_interval;
            Self {}
        }
    }

    /// Refreshes the gauges if it is time; a store error is logged, and the
    /// gauges keep their last values until the next refresh.
    async fn refresh_if_due(&mut self, inbox: &Inbox) {
        #[cfg(feature = "metrics")]
        if Instant::now() >= self.next {
            if let Err(error) = inbox.refresh_gauges().await {
                tracing::warn!(%error, "chatbase-inbox: could not refresh the backlog gauges");
            }
            self.next = Instant::now() + self.every;
        }
        #[cfg(not(feature = "metrics"))]
        let _ = inbox;
    }

    /// Completes when the next refresh is due (never without the feature).
    async fn due(&self) {
        #[cfg(feature = "metrics")]
        tokio::time::sleep_until(self.next).await;
        #[cfg(not(feature = "metrics"))]
        std::future::pending::<()>().await;
    }
}

/// Completes when the worker asks its tasks to stop.
async fn until_cancelled(cancelled: &mut watch::Receiver<bool>) {
    if cancelled.wait_for(|c| *c).await.is_err() {
        // The worker is gone (its future was dropped, which aborts this task too).
        std::future::pending::<()>().await;
    }
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done
        && error.is_panic()
    {
        tracing::error!("chatbase-inbox: a delivery task panicked outside its handler");
    }
}

/// The backoff before attempt `attempt + 1`: exponential, capped, with the
/// upper half jittered.
fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
    let capped = base.saturating_mul(factor).min(max);
    let half = capped / 2;
    half + half.mul_f64(fastrand::f64())
}

/// Runs one claimed delivery: the handler (catching panics, renewing the
/// lease, stopping on cancellation), then records the outcome.
async fn run_one<H: Handler>(
    inbox: Inbox,
    handler: Arc<H>,
    row: ClaimedRow,
    config: Arc<Config>,
    mut cancelled: watch::Receiver<bool>,
) {
    let id = row.id;
    let lease_token = row.lease_token;
    let attempt = u32::try_from(row.attempts).unwrap_or(1).max(1);
    let outcome = match row.body {
        None => Outcome::Dead {
            error: "the body is no longer stored (removed by retention)".into(),
        },
        Some(body) => {
            let delivery = Delivery {
                id,
                key: row.delivery_key,
                chatbot_id: row.chatbot_id,
                event_type: row.event_type,
                body: Bytes::from(body),
                received_at: time_from_millis(row.received_at),
                attempt,
            };
            // The call itself runs inside catch_unwind too.
            let handling =
                AssertUnwindSafe(async move { handler.call(delivery).await }).catch_unwind();
            tokio::pin!(handling);
            let renew_every = (config.lease / 3).max(Duration::from_millis(10));
            let mut renew = tokio::time::interval_at(Instant::now() + renew_every, renew_every);
            let result = loop {
                tokio::select! {
                    result = &mut handling => break Some(result),
                    () = until_cancelled(&mut cancelled) => break None,
                    _ = renew.tick() => {
                        match inbox.store().extend_lease(id, lease_token, config.lease).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!(
                                id, attempt,
                                "chatbase-inbox: lease lost while the handler runs; \
                                 another worker has taken the delivery over"
                            ),
                            Err(e) => {
                                let error = crate::InboxError::store("renew a lease", e);
                                tracing::warn!(id, %error, "chatbase-inbox: could not renew a lease");
                            }
                        }
                    }
                }
            };
            let failure = match result {
                None => None,
                Some(Ok(Ok(()))) => Some(None),
                Some(Ok(Err(failure))) => Some(Some(failure)),
                Some(Err(_panic)) => Some(Some(Failure::panicked())),
            };
            match failure {
                None => Outcome::Release,
                Some(None) => Outcome::Processed,
                Some(Some(failure)) => {
                    if failure.is_permanent() || attempt >= config.max_attempts {
                        tracing::warn!(
                            id,
                            attempt,
                            reason = failure.reason(),
                            "chatbase-inbox: delivery failed for the last time, now dead"
                        );
                        Outcome::Dead {
                            error: failure.into_reason(),
                        }
                    } else {
                        let delay = backoff(attempt, config.backoff_base, config.backoff_max);
                        tracing::warn!(
                            id,
                            attempt,
                            reason = failure.reason(),
                            retry_in_ms = delay.as_millis() as u64,
                            "chatbase-inbox: delivery failed, will retry"
                        );
                        Outcome::Retry {
                            delay,
                            error: failure.into_reason(),
                        }
                    }
                }
            }
        }
    };
    record(&inbox, id, lease_token, outcome, &config, &mut cancelled).await;
}

/// Writes an attempt's outcome, retrying while the store is unreachable, for
/// as long as the lease would hold. Past that, another worker will take the
/// delivery over anyway.
async fn record(
    inbox: &Inbox,
    id: i64,
    lease_token: i64,
    outcome: Outcome,
    config: &Config,
    cancelled: &mut watch::Receiver<bool>,
) {
    let give_up_at = Instant::now() + config.lease;
    let mut pause = Duration::from_millis(50);
    loop {
        match inbox.finish(id, lease_token, outcome.clone()).await {
            Ok(true) => {
                crate::observe::finished(&outcome);
                if outcome == Outcome::Processed {
                    tracing::debug!(id, "chatbase-inbox: delivery processed");
                }
                return;
            }
            Ok(false) => {
                tracing::warn!(
                    id,
                    "chatbase-inbox: the lease was lost before the outcome was recorded; \
                     the worker that took the delivery over decides"
                );
                return;
            }
            Err(error) => {
                if Instant::now() + pause >= give_up_at || *cancelled.borrow() {
                    tracing::warn!(
                        id, %error,
                        "chatbase-inbox: could not record an outcome; \
                         the delivery will be taken over when its lease expires"
                    );
                    return;
                }
                tracing::warn!(id, %error, "chatbase-inbox: could not record an outcome, retrying");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = until_cancelled(cancelled) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl<H> fmt::Debug for Worker<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("inbox", &self.inbox)
            .field("concurrency", &self.config.concurrency)
            .field("max_attempts", &self.config.max_attempts)
            .field("backoff_base", &self.config.backoff_base)
            .field("backoff_max", &self.config.backoff_max)
            .field("lease", &self.config.lease)
            .field("poll_interval", &self.config.poll_interval)
            .field("shutdown_grace", &self.config.shutdown_grace)
            .field("retention_interval", &self.config.retention_interval)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..=10u32 {
            let full = (base * 2u32.pow(attempt - 1)).min(max);
            for _ in 0..50 {
                let d = backoff(attempt, base, max);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
            }
        }
        // Huge attempt numbers saturate instead of overflowing.
        assert!(backoff(u32::MAX, base, max) <= max);
    }
}
