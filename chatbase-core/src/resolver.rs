//! Secrets per chatbot looked up by the user's own async function, behind a
//! moka cache (feature `resolver`).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use crate::{Error, MAX_CHATBOT_ID_LEN, Secret};

/// The error a [`SecretResolver`] may fail with: any error. It is logged at
/// `ERROR` and answered 503; it never reaches the client.
pub type ResolveError = Box<dyn std::error::Error + Send + Sync>;

/// Looks up a chatbot's secrets: from a database, a vault, a configuration
/// service. Implement it and give it to
/// [`Verifier::with_resolver`](crate::Verifier::with_resolver).
///
/// It is called only for a chatbot id that is well formed (1 to 128 ASCII
/// letters, digits, `-` or `_`), read from the body before it is verified: so
/// an attacker chooses the ids it is asked about. The cache in front of it
/// keeps what it finds for [`ResolverOptions::ttl`], and what it does not
/// find for the shorter [`ResolverOptions::unknown_ttl`], so a flood of random
/// ids costs one lookup per id and per period, and merges concurrent lookups of
/// one id into one call.
///
/// # Example
///
/// ```
/// use chatbase_core::{ResolveError, Secret, SecretResolver};
///
/// /// Secrets in a table `chatbots(id, secret, previous_secret)`.
/// struct FromDatabase {/* a connection pool */}
///
/// impl SecretResolver for FromDatabase {
///     async fn resolve(&self, chatbot_id: &str) -> Result<Option<Vec<Secret>>, ResolveError> {
///         // SELECT secret, previous_secret FROM chatbots WHERE id = $1
///         # let row: Option<(String, Option<String>)> =
///         #     (chatbot_id == "bot_1").then(|| ("s1".to_owned(), None));
///         let Some((secret, previous)) = row else {
///             return Ok(None); // not one of ours: the request gets a 401
///         };
///         let mut secrets = vec![Secret::new(secret)?];
///         if let Some(previous) = previous {
///             secrets.push(Secret::new(previous)?);
///         }
///         Ok(Some(secrets))
///     }
/// }
/// ```
pub trait SecretResolver: Send + Sync + 'static {
    /// The secrets of `chatbot_id`, the current one first, then any older ones
    /// still accepted during a rotation; `Ok(None)` if it is not a chatbot of
    /// yours (answered 401, as a forgery is).
    ///
    /// # Errors
    ///
    /// Any: the request is answered 503 with `Retry-After`, and nothing is
    /// cached, so the next request asks again.
    fn resolve(
        &self,
        chatbot_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<Secret>>, ResolveError>> + Send;
}

/// How the cache in front of a [`SecretResolver`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverOptions {
    ttl: Duration,
    unknown_ttl: Duration,
    timeout: Duration,
    max_chatbots: u64,
}

impl Default for ResolverOptions {
    /// Secrets found are kept 5 minutes, unknown chatbots 30 seconds; a lookup
    /// may take 2 seconds; up to 100,000 chatbots are kept.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(5 * 60),
            unknown_ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
            max_chatbots: 100_000,
        }
    }
}

impl ResolverOptions {
    /// How long secrets found are kept (5 minutes by default). A rotation is
    /// seen after at most this long, or at once with
    /// [`Verifier::invalidate`](crate::Verifier::invalidate).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long an unknown chatbot is remembered as unknown (30 seconds by
    /// default): shorter, so that a new chatbot is served soon, but long enough
    /// that a flood of requests naming it cannot hammer the resolver.
    #[must_use]
    pub fn unknown_ttl(mut self, ttl: Duration) -> Self {
        self.unknown_ttl = ttl;
        self
    }

    /// How long a lookup may take (2 seconds by default): then the request is
    /// answered 503 with `Retry-After`. It needs a Tokio runtime's timer;
    /// outside one, lookups are not timed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many chatbots the cache keeps at most (100,000 by default); the
    /// least used go first.
    #[must_use]
    pub fn max_chatbots(mut self, max: u64) -> Self {
        self.max_chatbots = max;
        self
    }
}

/// A chatbot's secrets, or `None` for a chatbot the resolver does not know.
type Entry = Option<Arc<[Secret]>>;

/// An answer of the resolver, as cached: until when it holds.
#[derive(Clone)]
struct Cached {
    entry: Entry,
    until: Instant,
}

/// A resolver behind its cache.
pub(crate) struct CachedResolver {
    resolver: Box<dyn DynResolver>,
    cache: Cache<Box<str>, Cached>,
    ttl: Ttl,
    timeout: Duration,
    /// Tells this cache from any other (for [`LAST_READ`]).
    id: u64,
    /// Bumped by every invalidation, so that no thread serves an entry it
    /// read before.
    generation: AtomicU64,
}

/// Numbers the caches.
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The entry this thread read last, from any cache: the next request for
    /// the same chatbot is served without reading the cache again (a moka read
    /// costs a few hundred nanoseconds, half a verification, and most
    /// requests name the chatbot the previous one named). It holds until the
    /// entry's own expiry, and no longer than an invalidation.
    static LAST_READ: RefCell<Option<LastRead>> = const { RefCell::new(None) };
}

/// What [`LAST_READ`] holds.
struct LastRead {
    cache: u64,
    generation: u64,
    chatbot_id: [u8; MAX_CHATBOT_ID_LEN],
    len: usize,
    cached: Cached,
}

impl LastRead {
    fn chatbot_id(&self) -> &[u8] {
        self.chatbot_id.get(..self.len).unwrap_or_default()
    }
}

impl CachedResolver {
    pub(crate) fn new(resolver: impl SecretResolver, options: ResolverOptions) -> Self {
        let ttl = Ttl {
            found: options.ttl,
            unknown: options.unknown_ttl,
        };
        let cache = Cache::builder()
            .max_capacity(options.max_chatbots)
            .expire_after(ttl)
            .build();
        Self {
            resolver: Box::new(resolver),
            cache,
            ttl,
            timeout: options.timeout,
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
        }
    }

    /// The cached entry of `chatbot_id`, if there is one and it can be had at
    /// once: the warm path, without a boxed future. From this thread's last
    /// read when it was for this chatbot, else from the cache (whose reads
    /// only wait for its own housekeeping, under contention).
    pub(crate) fn cached(&self, chatbot_id: &str) -> Option<Entry> {
        // Loaded before the cache is read: an invalidation after this load
        // makes what is read now stale for the next request.
        let generation = self.generation.load(Ordering::Acquire);
        let now = Instant::now();
        let hit = LAST_READ.with_borrow(|last| {
            last.as_ref()
                .filter(|last| {
                    last.cache == self.id
                        && last.generation == generation
                        && last.chatbot_id() == chatbot_id.as_bytes()
                        && now < last.cached.until
                })
                .map(|last| last.cached.entry.clone())
        });
        if hit.is_some() {
            return hit;
        }
        let get = std::pin::pin!(self.cache.get(chatbot_id));
        let Poll::Ready(Some(cached)) = get.poll(&mut Context::from_waker(Waker::noop())) else {
            return None;
        };
        let mut id = [0; MAX_CHATBOT_ID_LEN];
        if let Some(slot) = id.get_mut(..chatbot_id.len()) {
            slot.copy_from_slice(chatbot_id.as_bytes());
            LAST_READ.set(Some(LastRead {
                cache: self.id,
                generation,
                chatbot_id: id,
                len: chatbot_id.len(),
                cached: cached.clone(),
            }));
        }
        Some(cached.entry)
    }

    /// The secrets of `chatbot_id`, from the cache or the resolver.
    pub(crate) async fn secrets(&self, chatbot_id: &str) -> Result<Entry, Error> {
        if let Some(cached) = self.cache.get(chatbot_id).await {
            return Ok(cached.entry);
        }
        let lookup = async {
            let resolved = self.resolver.resolve(chatbot_id);
            let resolved = match tokio::runtime::Handle::try_current() {
                Ok(_) => tokio::time::timeout(self.timeout, resolved)
                    .await
                    .map_err(|_| LookupError::TimedOut(self.timeout))?,
                Err(_) => resolved.await,
            };
            let entry = match resolved {
                Ok(Some(secrets)) if !secrets.is_empty() => Some(Arc::from(secrets)),
                Ok(_) => None,
                Err(error) => return Err(LookupError::Failed(error)),
            };
            let until = Instant::now() + self.ttl.of(&entry);
            Ok(Cached { entry, until })
        };
        self.cache
            .try_get_with(chatbot_id.into(), lookup)
            .await
            .map(|cached| cached.entry)
            .map_err(|error| Error::SecretLookup(Box::new(SharedLookupError(error))))
    }

    pub(crate) async fn invalidate(&self, chatbot_id: &str) {
        self.cache.invalidate(chatbot_id).await;
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn invalidate_all(&self) {
        self.cache.invalidate_all();
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// Keeps secrets found for one TTL, unknown chatbots for another.
#[derive(Clone, Copy)]
struct Ttl {
    found: Duration,
    unknown: Duration,
}

impl Ttl {
    fn of(&self, entry: &Entry) -> Duration {
        match entry {
            Some(_) => self.found,
            None => self.unknown,
        }
    }
}

impl Expiry<Box<str>, Cached> for Ttl {
    fn expire_after_create(&self, _: &Box<str>, cached: &Cached, now: Instant) -> Option<Duration> {
        Some(cached.until.saturating_duration_since(now))
    }
}

/// Why a lookup failed.
#[derive(Debug)]
enum LookupError {
    TimedOut(Duration),
    Failed(ResolveError),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut(timeout) => {
                write!(f, "the secret resolver took longer than {timeout:?}")
            }
            Self::Failed(error) => write!(f, "the secret resolver failed: {error}"),
        }
    }
}

impl std::error::Error for LookupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::TimedOut(_) => None,
            Self::Failed(error) => Some(&**error),
        }
    }
}

/// A lookup error, shared by every request that waited for that lookup.
#[derive(Debug)]
struct SharedLookupError(Arc<LookupError>);

impl fmt::Display for SharedLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SharedLookupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What a lookup gives: the secrets, `None` for an unknown chatbot, or an error.
type Resolved = Result<Option<Vec<Secret>>, ResolveError>;

/// [`SecretResolver`], made object-safe.
trait DynResolver: Send + Sync {
    fn resolve<'a>(
        &'a self,
        chatbot_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Resolved> + Send + 'a>>;
}

impl<R: SecretResolver> DynResolver for R {
    fn resolve<'a>(
        &'a self,
        chatbot_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Resolved> + Send + 'a>> {
        Box::pin(SecretResolver::resolve(self, chatbot_id))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use tokio::sync::Notify;

    use super::*;
    use crate::{ChatbaseEvent, Verifier, sign};

    /// A resolver over a map that counts its calls, and can be made to fail,
    /// hang, or wait for a go-ahead.
    #[derive(Default)]
    struct Table {
        secrets: Mutex<HashMap<String, String>>,
        calls: AtomicUsize,
        fail: Mutex<bool>,
        hang: Mutex<bool>,
        gate: Option<Arc<Notify>>,
    }

    impl SecretResolver for Arc<Table> {
        async fn resolve(&self, chatbot_id: &str) -> Result<Option<Vec<Secret>>, ResolveError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            if *self.hang.lock().unwrap() {
                std::future::pending::<()>().await;
            }
            if *self.fail.lock().unwrap() {
                return Err("the database is down".into());
            }
            let secret = self.secrets.lock().unwrap().get(chatbot_id).cloned();
            Ok(secret.map(|secret| vec![Secret::new(secret).unwrap()]))
        }
    }

    fn table(entries: &[(&str, &str)]) -> Arc<Table> {
        let table = Table::default();
        for (id, secret) in entries {
            table
                .secrets
                .lock()
                .unwrap()
                .insert((*id).to_owned(), (*secret).to_owned());
        }
        Arc::new(table)
    }

    fn calls(table: &Table) -> usize {
        table.calls.load(Ordering::SeqCst)
    }

    async fn deliver(
        verifier: &Verifier,
        chatbot: &str,
        key: &str,
    ) -> Result<ChatbaseEvent, Error> {
        let body =
            format!(r#"{{"eventType":"leads.submit","chatbotId":"{chatbot}","payload":{{}}}}"#);
        let signature = sign(&Secret::new(key).unwrap(), body.as_bytes());
        let mut verification = verifier.head([signature.as_bytes()], None)?;
        verification.chunk(Bytes::from(body))?;
        verification.finish().await
    }

    const LONG: Duration = Duration::from_secs(3600);
    const SHORT: Duration = Duration::from_millis(50);

    fn options() -> ResolverOptions {
        ResolverOptions::default().ttl(LONG).unknown_ttl(LONG)
    }

    #[tokio::test]
    async fn found_secrets_are_cached_for_the_ttl() {
        let table = table(&[("bot_a", "secret-a")]);
        let verifier = Verifier::with_resolver(Arc::clone(&table), options());
        for _ in 0..3 {
            let event = deliver(&verifier, "bot_a", "secret-a").await.unwrap();
            assert_eq!(event.chatbot_id(), Some("bot_a"));
        }
        assert_eq!(calls(&table), 1);
        // Another chatbot's secret never passes.
        let error = deliver(&verifier, "bot_a", "secret-b").await.unwrap_err();
        assert!(matches!(error, Error::SignatureMismatch));
    }

    /// Each thread remembers the last entry it read: for its own cache only
    /// (two verifiers that know one chatbot id by different secrets never mix
    /// them up), and no longer than an invalidation.
    #[tokio::test]
    async fn the_last_read_belongs_to_its_cache() {
        let first = Verifier::with_resolver(table(&[("bot_a", "secret-1")]), options());
        let second = Verifier::with_resolver(table(&[("bot_a", "secret-2")]), options());
        for _ in 0..2 {
            deliver(&first, "bot_a", "secret-1").await.unwrap();
            let error = deliver(&second, "bot_a", "secret-1").await.unwrap_err();
            assert!(matches!(error, Error::SignatureMismatch), "{error:?}");
            deliver(&second, "bot_a", "secret-2").await.unwrap();
            let error = deliver(&first, "bot_a", "secret-2").await.unwrap_err();
            assert!(matches!(error, Error::SignatureMismatch), "{error:?}");
        }

        // A rotated secret is served as soon as the chatbot is invalidated,
        // although this thread just read the old one.
        let table = table(&[("bot_a", "old")]);
        let verifier = Verifier::with_resolver(Arc::clone(&table), options());
        deliver(&verifier, "bot_a", "old").await.unwrap();
        deliver(&verifier, "bot_a", "old").await.unwrap();
        table
            .secrets
            .lock()
            .unwrap()
            .insert("bot_a".to_owned(), "new".to_owned());
        verifier.invalidate("bot_a").await;
        deliver(&verifier, "bot_a", "new").await.unwrap();
        assert!(deliver(&verifier, "bot_a", "old").await.is_err());
        assert_eq!(calls(&table), 2);
    }

    #[tokio::test]
    async fn unknown_chatbots_are_remembered_for_the_shorter_ttl() {
        let table = table(&[("bot_a", "secret-a")]);
        let verifier = Verifier::with_resolver(Arc::clone(&table), options().unknown_ttl(SHORT));
        for _ in 0..5 {
            let error = deliver(&verifier, "bot_x", "any").await.unwrap_err();
            assert!(matches!(error, Error::UnknownChatbot { .. }));
            assert_eq!(error.status(), 401);
        }
        assert_eq!(
            calls(&table),
            1,
            "a flood of one unknown id costs one lookup"
        );
        deliver(&verifier, "bot_a", "secret-a").await.unwrap();
        assert_eq!(calls(&table), 2);

        // After the unknown TTL, the unknown id is asked about again (and the
        // known one, on its long TTL, is not).
        tokio::time::sleep(SHORT * 4).await;
        table
            .secrets
            .lock()
            .unwrap()
            .insert("bot_x".to_owned(), "secret-x".to_owned());
        deliver(&verifier, "bot_x", "secret-x").await.unwrap();
        deliver(&verifier, "bot_a", "secret-a").await.unwrap();
        assert_eq!(calls(&table), 3);
    }

    #[tokio::test]
    async fn secrets_found_expire_after_their_ttl() {
        let table = table(&[("bot_a", "secret-a")]);
        let verifier = Verifier::with_resolver(Arc::clone(&table), options().ttl(SHORT));
        deliver(&verifier, "bot_a", "secret-a").await.unwrap();
        tokio::time::sleep(SHORT * 4).await;
        deliver(&verifier, "bot_a", "secret-a").await.unwrap();
        assert_eq!(calls(&table), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_of_one_chatbot_are_merged() {
        let gate = Arc::new(Notify::new());
        let table = Arc::new(Table {
            gate: Some(Arc::clone(&gate)),
            ..Table::default()
        });
        table
            .secrets
            .lock()
            .unwrap()
            .insert("bot_a".to_owned(), "secret-a".to_owned());
        let verifier = Verifier::with_resolver(Arc::clone(&table), options());
        let waiting: Vec<_> = (0..16)
            .map(|_| {
                let verifier = verifier.clone();
                tokio::spawn(async move { deliver(&verifier, "bot_a", "secret-a").await })
            })
            .collect();
        // Bounded: the first lookup starts, the others wait for it.
        while calls(&table) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.notify_waiters();
        gate.notify_one();
        for request in waiting {
            request.await.unwrap().unwrap();
        }
        assert_eq!(calls(&table), 1);
    }

    #[tokio::test]
    async fn a_failing_resolver_is_a_503_and_is_not_cached() {
        let table = table(&[("bot_a", "secret-a")]);
        *table.fail.lock().unwrap() = true;
        let verifier = Verifier::with_resolver(Arc::clone(&table), options());
        let error = deliver(&verifier, "bot_a", "secret-a").await.unwrap_err();
        assert!(matches!(error, Error::SecretLookup(_)), "{error}");
        assert_eq!(error.status(), 503);
        assert_eq!(error.retry_after(), Some(5));
        assert_eq!(error.reason(), "secret_lookup_failed");
        assert!(
            error.to_string().contains("the database is down"),
            "{error}"
        );
        // The client is not told why.
        assert!(!error.json_body().contains("database"));

        *table.fail.lock().unwrap() = false;
        deliver(&verifier, "bot_a", "secret-a").await.unwrap();
        assert_eq!(calls(&table), 2);
    }

    #[tokio::test]
    async fn a_slow_resolver_times_out_with_a_503() {
        let table = table(&[("bot_a", "secret-a")]);
        *table.hang.lock().unwrap() = true;
        let verifier = Verifier::with_resolver(Arc::clone(&table), options().timeout(SHORT));
        let error = deliver(&verifier, "bot_a", "secret-a").await.unwrap_err();
        assert_eq!(error.status(), 503);
        assert!(error.to_string().contains("took longer than"), "{error}");
    }

    #[tokio::test]
    async fn invalidation_makes_a_rotation_visible_at_once() {
        let table = table(&[("bot_a", "old")]);
        let verifier = Verifier::with_resolver(Arc::clone(&table), options());
        deliver(&verifier, "bot_a", "old").await.unwrap();
        table
            .secrets
            .lock()
            .unwrap()
            .insert("bot_a".to_owned(), "new".to_owned());
        // Still cached.
        assert!(deliver(&verifier, "bot_a", "new").await.is_err());
        verifier.invalidate("bot_a").await;
        deliver(&verifier, "bot_a", "new").await.unwrap();
        verifier.invalidate_all();
        deliver(&verifier, "bot_a", "new").await.unwrap();
        assert_eq!(calls(&table), 3);
    }

    #[tokio::test]
    async fn the_synchronous_calls_cannot_wait_for_a_lookup() {
        let table = table(&[("bot_a", "secret-a")]);
        // A lookup that does not complete at once, as a database's does not.
        *table.hang.lock().unwrap() = true;
        let verifier = Verifier::with_resolver(Arc::clone(&table), options());
        let body = br#"{"eventType":"x","chatbotId":"bot_a"}"#;
        let signature = sign(&Secret::new("secret-a").unwrap(), body);
        let error = verifier
            .verify(body, Some(signature.as_bytes()))
            .unwrap_err();
        assert_eq!(error.status(), 503);
        assert!(
            error.to_string().contains("Verification::finish"),
            "{error}"
        );
        *table.hang.lock().unwrap() = false;
        deliver(&verifier, "bot_a", "secret-a").await.unwrap();
        // Cached now: the synchronous call can use it.
        verifier.verify(body, Some(signature.as_bytes())).unwrap();
    }
}
