//! [`Verifier`]: checks signatures and turns verified bodies into events.

use std::env::{self, VarError};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use hmac::Mac;

use crate::chatbot;
use crate::secret::{
    EnvProblem, PREVIOUS_SECRET_ENV_VAR, SECRET_ENV_VAR, SECRETS_ENV_VAR, SECRETS_FILE_ENV_VAR,
};
use crate::text::Text;
use crate::{
    ChatbaseEvent, ChatbotSecrets, Error, Secret, SecretError, Signature, Verification, parse,
};

/// The default body limit: 1 MiB. A `leads.submit` event is a few hundred bytes.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Verifies Chatbase signatures, then parses the verified body.
///
/// Its secrets come in one of three ways:
///
/// - **one chatbot** (or several sharing a secret): [`Verifier::new`], plus
///   any older secret still accepted while rotating
///   ([`with_secret`](Verifier::with_secret));
/// - **secrets per chatbot**, known at start-up: [`Verifier::per_chatbot`]
///   with a [`ChatbotSecrets`] map. The body's `chatbotId` chooses the
///   secrets, and only that chatbot's secrets are tried: a body signed with
///   one chatbot's secret is never taken for another's;
/// - **secrets per chatbot, looked up** by your own async function (a
///   database, a vault), behind a cache: `Verifier::with_resolver` (feature
///   `resolver`).
///
/// [`Verifier::from_env`] picks one of them from the environment. The body
/// limit is [`with_body_limit`](Verifier::with_body_limit), 1 MiB by default.
/// Cloning is cheap (the secrets are shared), so frameworks can hand one to
/// every request.
///
/// Verification decodes the header into a stack buffer, hashes the body with
/// each candidate secret (with the key already absorbed) and compares with
/// [`Mac::verify_slice`], in constant time. With one chatbot it does not
/// allocate.
///
/// - [`verify_and_parse`](Verifier::verify_and_parse) (or
///   [`verify`](Verifier::verify), without parsing) takes a whole request whose
///   body is already in memory;
/// - [`head`](Verifier::head) starts a [`Verification`] that takes the body
///   chunk by chunk as a server reads it: what the axum and actix-web adapters
///   use, and what to use from any other framework.
///
/// # Example
///
/// ```
/// use chatbase_core::{Secret, Verifier, sign};
///
/// let current = Secret::new("new-secret")?;
/// let previous = Secret::new("old-secret")?;
/// let verifier = Verifier::new(current)
///     .with_secret(previous.clone()) // accepted until every sender has switched
///     .with_body_limit(256 * 1024);
///
/// let body = br#"{"eventType":"leads.submit","chatbotId":"b","payload":{}}"#;
/// let signed_with_old = sign(&previous, body);
/// assert!(verifier.verify(body, Some(signed_with_old.as_bytes())).is_ok());
/// assert_eq!(
///     verifier.verify(body, Some(b"0000000000000000000000000000000000000000")).unwrap_err().status(),
///     401
/// );
/// # Ok::<(), chatbase_core::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    keys: Keys,
    body_limit: usize,
}

/// Where the secrets come from.
#[derive(Clone)]
enum Keys {
    /// Any of these secrets, whatever chatbot the body names.
    Any(Arc<[Secret]>),
    /// The secrets of the chatbot the body names.
    PerChatbot(Arc<ChatbotSecrets>),
    /// The secrets of the chatbot the body names, looked up.
    #[cfg(feature = "resolver")]
    Resolved(Arc<crate::resolver::CachedResolver>),
}

impl Verifier {
    /// A verifier accepting bodies signed with `secret`, up to
    /// [`DEFAULT_BODY_LIMIT`].
    pub fn new(secret: Secret) -> Self {
        Self {
            keys: Keys::Any(Arc::new([secret])),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// A verifier with secrets per chatbot: the body's `chatbotId` chooses the
    /// secrets it is verified with, and the event delivered carries exactly
    /// that chatbot id.
    ///
    /// A body whose `chatbotId` is missing, not a string, longer than 128 bytes
    /// or made of other characters than ASCII letters, digits, `-` and `_` is
    /// refused with [`Error::InvalidChatbotId`] (401), and one naming a chatbot
    /// that is not in `secrets` with [`Error::UnknownChatbot`] (401, answered
    /// as a signature mismatch). See [`ChatbotSecrets`] for an example.
    pub fn per_chatbot(secrets: ChatbotSecrets) -> Self {
        Self {
            keys: Keys::PerChatbot(Arc::new(secrets)),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// A verifier with secrets per chatbot looked up by `resolver`, behind a
    /// cache configured by `options` (feature `resolver`).
    ///
    /// As [`per_chatbot`](Verifier::per_chatbot), and: a lookup that fails or
    /// takes longer than [`ResolverOptions::timeout`](crate::ResolverOptions::timeout)
    /// is refused with [`Error::SecretLookup`]: 503 with `Retry-After`, logged
    /// at `ERROR`, never a 401. Call [`invalidate`](Verifier::invalidate) when a
    /// chatbot's secret changes.
    ///
    /// ```
    /// use chatbase_core::{ResolveError, ResolverOptions, Secret, SecretResolver, Verifier};
    /// use std::time::Duration;
    ///
    /// struct Vault;
    ///
    /// impl SecretResolver for Vault {
    ///     async fn resolve(&self, chatbot_id: &str) -> Result<Option<Vec<Secret>>, ResolveError> {
    ///         Ok((chatbot_id == "bot_1").then(|| vec![Secret::new("s1").unwrap()]))
    ///     }
    /// }
    ///
    /// let verifier = Verifier::with_resolver(Vault, ResolverOptions::default().ttl(Duration::from_secs(60)));
    /// ```
    #[cfg(feature = "resolver")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resolver")))]
    pub fn with_resolver(
        resolver: impl crate::SecretResolver,
        options: crate::ResolverOptions,
    ) -> Self {
        Self {
            keys: Keys::Resolved(Arc::new(crate::resolver::CachedResolver::new(
                resolver, options,
            ))),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// A verifier from the environment, from exactly one of:
    ///
    /// - `CHATBASE_WEBHOOK_SECRET`: one secret, also accepting the one in
    ///   `CHATBASE_WEBHOOK_PREVIOUS_SECRET` when that is set and not empty (for
    ///   a rotation without downtime);
    /// - `CHATBASE_WEBHOOK_SECRETS`: secrets per chatbot, as the JSON
    ///   [`ChatbotSecrets::from_json`] reads,
    ///   `{"<chatbotId>": "<secret>" | ["<current>", "<previous>", ...]}`;
    /// - `CHATBASE_WEBHOOK_SECRETS_FILE`: the path of a file holding that JSON
    ///   (a mounted secret).
    ///
    /// # Errors
    ///
    /// [`SecretError::ConflictingEnv`] naming them if more than one is set (or
    /// `CHATBASE_WEBHOOK_PREVIOUS_SECRET` with secrets per chatbot, whose
    /// entries hold their previous secrets); a [`SecretError::Env`] naming the
    /// variable that is unset, empty or unusable (and the chatbot, for a map),
    /// never showing a secret.
    pub fn from_env() -> Result<Self, SecretError> {
        Self::from_lookup(
            |name| env::var(name),
            |path| std::fs::read_to_string(path).map_err(|error| error.kind()),
        )
    }

    fn from_lookup(
        lookup: impl Fn(&str) -> Result<String, VarError>,
        read_file: impl Fn(&PathBuf) -> Result<String, std::io::ErrorKind>,
    ) -> Result<Self, SecretError> {
        let is_set = |name: &str| !matches!(lookup(name), Err(VarError::NotPresent));
        let sources = [SECRET_ENV_VAR, SECRETS_ENV_VAR, SECRETS_FILE_ENV_VAR];
        let mut set: Vec<String> = sources
            .into_iter()
            .filter(|name| is_set(name))
            .map(str::to_owned)
            .collect();
        let per_chatbot = set.iter().any(|name| name != SECRET_ENV_VAR);
        if per_chatbot && is_set(PREVIOUS_SECRET_ENV_VAR) {
            set.push(PREVIOUS_SECRET_ENV_VAR.to_owned());
        }
        if set.len() > 1 {
            return Err(SecretError::ConflictingEnv { vars: set });
        }
        match set.first().map(String::as_str) {
            Some(SECRETS_ENV_VAR) => Self::map_from_var(SECRETS_ENV_VAR, lookup(SECRETS_ENV_VAR)),
            Some(SECRETS_FILE_ENV_VAR) => {
                let path = PathBuf::from(
                    lookup(SECRETS_FILE_ENV_VAR)
                        .map_err(|error| env_error(SECRETS_FILE_ENV_VAR, &error))?,
                );
                let json = read_file(&path).map_err(|kind| SecretError::Env {
                    var: SECRETS_FILE_ENV_VAR.to_owned(),
                    problem: EnvProblem::Unreadable { path, kind },
                })?;
                Self::map_from_var(SECRETS_FILE_ENV_VAR, Ok(json))
            }
            // One secret, and the error for a missing one names this variable.
            _ => {
                let verifier = Self::new(Secret::from_var(SECRET_ENV_VAR, lookup(SECRET_ENV_VAR))?);
                match lookup(PREVIOUS_SECRET_ENV_VAR) {
                    Err(VarError::NotPresent) => Ok(verifier),
                    Ok(value) if value.is_empty() => Ok(verifier),
                    value => {
                        Ok(verifier.with_secret(Secret::from_var(PREVIOUS_SECRET_ENV_VAR, value)?))
                    }
                }
            }
        }
    }

    /// A verifier per chatbot from the JSON held by (or read through) `var`.
    fn map_from_var(var: &str, value: Result<String, VarError>) -> Result<Self, SecretError> {
        let json = value.map_err(|error| env_error(var, &error))?;
        if json.trim().is_empty() {
            return Err(SecretError::Env {
                var: var.to_owned(),
                problem: EnvProblem::Empty,
            });
        }
        let secrets = ChatbotSecrets::from_json(&json).map_err(|error| error.in_env(var))?;
        Ok(Self::per_chatbot(secrets))
    }

    /// Also accepts bodies signed with `secret`.
    ///
    /// To rotate the secret without downtime: deploy with the new secret added,
    /// switch Chatbase to it, then deploy again without the old one. Each extra
    /// secret costs one more HMAC for requests that match none or a later one.
    ///
    /// Only for a verifier made with [`new`](Verifier::new): with secrets per
    /// chatbot, each chatbot's entry lists its own previous secrets, and adding
    /// one to every chatbot would let any of them sign for the others; there it
    /// changes nothing (and says so in a `WARN` line).
    pub fn with_secret(mut self, secret: Secret) -> Self {
        match &self.keys {
            Keys::Any(secrets) => {
                let mut secrets = secrets.to_vec();
                secrets.push(secret);
                self.keys = Keys::Any(secrets.into());
            }
            _ => tracing::warn!(
                "Verifier::with_secret ignored: this verifier has secrets per chatbot; \
                 list a chatbot's previous secret in its own entry"
            ),
        }
        self
    }

    /// Sets the largest body accepted, in bytes (1 MiB by default). Larger bodies
    /// are rejected with [`Error::BodyTooLarge`] (413) before any hashing; the
    /// adapters stop reading as soon as the limit is passed.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The largest body accepted, in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Forgets the cached secrets of `chatbot_id`, so that the next request
    /// naming it looks them up again: call it when a chatbot's secret changes.
    /// Does nothing without a resolver.
    pub async fn invalidate(&self, chatbot_id: &str) {
        match &self.keys {
            #[cfg(feature = "resolver")]
            Keys::Resolved(resolver) => resolver.invalidate(chatbot_id).await,
            _ => {
                let _ = chatbot_id;
            }
        }
    }

    /// Forgets every cached secret. Does nothing without a resolver.
    pub fn invalidate_all(&self) {
        match &self.keys {
            #[cfg(feature = "resolver")]
            Keys::Resolved(resolver) => resolver.invalidate_all(),
            _ => {}
        }
    }

    /// Starts verifying a request from its head, before any of the body is read:
    /// `signatures` are the values of its `x-chatbase-signature` headers (there
    /// must be exactly one), `content_length` the length the body announces, if
    /// it does. Feed the body to the [`Verification`] it returns.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSignature`], [`Error::MultipleSignatures`] or
    /// [`Error::MalformedSignature`] (401) first, then [`Error::BodyTooLarge`]
    /// (413): an unsigned request is refused without looking at its size.
    pub fn head<'h>(
        &self,
        signatures: impl IntoIterator<Item = &'h [u8]>,
        content_length: Option<u64>,
    ) -> Result<Verification, Error> {
        let signature = Signature::from_headers(signatures)?;
        match content_length {
            Some(len) if len > u64::try_from(self.body_limit).unwrap_or(u64::MAX) => {
                Err(self.too_large())
            }
            _ => Ok(Verification::new(self.clone(), signature)),
        }
    }

    /// Verifies a whole request at once: `signature` is the header's value, `None`
    /// if the header is absent.
    ///
    /// With a resolver, only chatbots whose secrets are already cached can be
    /// verified here (the others get [`Error::SecretLookup`]): use
    /// [`head`](Verifier::head) and [`Verification::finish`], which wait for
    /// the lookup.
    ///
    /// # Errors
    ///
    /// As [`head`](Verifier::head), then [`Error::SignatureMismatch`] (401) if no
    /// secret matches (and, with secrets per chatbot,
    /// [`Error::InvalidChatbotId`] or [`Error::UnknownChatbot`]).
    pub fn verify(&self, body: &[u8], signature: Option<&[u8]>) -> Result<(), Error> {
        let signature = Signature::from_headers(signature)?;
        now(self.authenticate(&signature, body)).map(|_| ())
    }

    /// Verifies a whole request, and only then parses it: the one call to make
    /// when the body is already in memory.
    ///
    /// # Errors
    ///
    /// As [`verify`](Verifier::verify), then [`Error::InvalidPayload`] (400) for
    /// a correctly signed body that is not a Chatbase event.
    pub fn verify_and_parse(
        &self,
        body: Bytes,
        signature: Option<&[u8]>,
    ) -> Result<ChatbaseEvent, Error> {
        let signature = Signature::from_headers(signature)?;
        now(self.verify_signed(&signature, body))
    }

    /// Checks the signature of a whole body, then parses it, and holds the
    /// event to the chatbot whose secret verified it.
    ///
    /// All of it runs at once but a secret lookup that misses the cache,
    /// which waits in a boxed future of its own: the state of this future
    /// (which the adapters' futures embed, and move) stays small.
    pub(crate) async fn verify_signed(
        &self,
        signature: &Signature,
        body: Bytes,
    ) -> Result<ChatbaseEvent, Error> {
        let _timer = crate::observe::VerificationTimer::start();
        // The match ends before any await: what it holds is not kept in this
        // future's state.
        let pending = match self.authenticate_now(signature, &body) {
            Ok(Authenticated::Verified(bound)) => return event(body, bound),
            Err(error) => return Err(error),
            Ok(Authenticated::Lookup(pending)) => pending,
        };
        Box::pin(self.after_lookup(pending, signature, body)).await
    }

    /// After a cache miss: asks the resolver, then verifies and parses.
    #[cfg(feature = "resolver")]
    async fn after_lookup(
        &self,
        claim: Pending,
        signature: &Signature,
        body: Bytes,
    ) -> Result<ChatbaseEvent, Error> {
        let entry = self.resolver()?.secrets(claim.id().get(&body)).await?;
        check_entry(entry, signature, &body, &claim)?;
        event(body, Some(*claim))
    }

    /// Never called: only a resolver makes lookups.
    #[cfg(not(feature = "resolver"))]
    async fn after_lookup(
        &self,
        never: Pending,
        _: &Signature,
        _: Bytes,
    ) -> Result<ChatbaseEvent, Error> {
        match never {}
    }

    /// Checks that `signature` is the HMAC-SHA1 of `body` under one of the
    /// secrets it may be signed with, and returns the chatbot those secrets
    /// belong to, with secrets per chatbot. A body over the limit is not
    /// hashed.
    async fn authenticate(
        &self,
        signature: &Signature,
        body: &[u8],
    ) -> Result<Option<Claim>, Error> {
        match self.authenticate_now(signature, body)? {
            Authenticated::Verified(bound) => Ok(bound),
            #[cfg(feature = "resolver")]
            Authenticated::Lookup(claim) => {
                let lookup = self.resolver()?.secrets(claim.id().get(body));
                let entry = Box::pin(lookup).await?;
                check_entry(entry, signature, body, &claim)?;
                Ok(Some(*claim))
            }
            #[cfg(not(feature = "resolver"))]
            Authenticated::Lookup(never) => match never {},
        }
    }

    /// [`authenticate`](Self::authenticate) as far as it goes without
    /// waiting: all the way, but for a chatbot whose secrets are not cached.
    fn authenticate_now(&self, signature: &Signature, body: &[u8]) -> Result<Authenticated, Error> {
        match self.candidates(body)? {
            Candidates::Ready(secrets, bound) => {
                check(secrets, signature, body)?;
                Ok(Authenticated::Verified(bound))
            }
            #[cfg(feature = "resolver")]
            Candidates::Lookup(resolver, claim) => match resolver.cached(claim.id().get(body)) {
                Some(entry) => {
                    check_entry(entry, signature, body, &claim)?;
                    Ok(Authenticated::Verified(Some(claim)))
                }
                None => Ok(Authenticated::Lookup(Box::new(claim))),
            },
        }
    }

    /// The resolver of a verifier made with [`with_resolver`](Self::with_resolver).
    #[cfg(feature = "resolver")]
    fn resolver(&self) -> Result<&crate::resolver::CachedResolver, Error> {
        match &self.keys {
            Keys::Resolved(resolver) => Ok(resolver),
            // Only a verifier with a resolver asks for a lookup.
            _ => Err(Error::SecretLookup("this verifier has no resolver".into())),
        }
    }

    /// The secrets `body` may be signed with, or the chatbot whose secrets
    /// must be looked up.
    fn candidates(&self, body: &[u8]) -> Result<Candidates<'_>, Error> {
        if body.len() > self.body_limit {
            return Err(self.too_large());
        }
        match &self.keys {
            Keys::Any(secrets) => Ok(Candidates::Ready(secrets, None)),
            Keys::PerChatbot(chatbots) => {
                let claim = Claim::read(body)?;
                let id = claim.id().get(body);
                let secrets = chatbots.get(id).ok_or_else(|| Error::UnknownChatbot {
                    chatbot_id: id.to_owned(),
                })?;
                Ok(Candidates::Ready(secrets, Some(claim)))
            }
            #[cfg(feature = "resolver")]
            Keys::Resolved(resolver) => Ok(Candidates::Lookup(resolver, Claim::read(body)?)),
        }
    }

    pub(crate) fn too_large(&self) -> Error {
        Error::BodyTooLarge {
            limit: self.body_limit,
        }
    }
}

/// How far [`Verifier::authenticate_now`] went.
enum Authenticated {
    /// The signature matches: the body is from this chatbot (with secrets per
    /// chatbot).
    Verified(Option<Claim>),
    /// The chatbot's secrets are not cached: the resolver must be asked.
    #[cfg_attr(not(feature = "resolver"), allow(dead_code))]
    Lookup(Pending),
}

/// A claim waiting for its chatbot's secrets (none without a resolver).
#[cfg(feature = "resolver")]
type Pending = Box<Claim>;
/// A claim waiting for its chatbot's secrets (none without a resolver).
#[cfg(not(feature = "resolver"))]
type Pending = std::convert::Infallible;

/// Checks `body` against the secrets a resolver gave for the chatbot it
/// claims (`None`: a chatbot it does not know).
#[cfg(feature = "resolver")]
fn check_entry(
    entry: Option<Arc<[Secret]>>,
    signature: &Signature,
    body: &[u8],
    claim: &Claim,
) -> Result<(), Error> {
    let secrets = entry.ok_or_else(|| Error::UnknownChatbot {
        chatbot_id: claim.id().get(body).to_owned(),
    })?;
    check(&secrets, signature, body)
}

/// The event of a verified body: parsed already when its chatbot id was read
/// with the parser (then the id is the event's own), else parsed now, and
/// held to the chatbot whose secrets verified it.
fn event(body: Bytes, bound: Option<Claim>) -> Result<ChatbaseEvent, Error> {
    match bound {
        Some(Claim::Parsed(envelope)) => Ok(envelope.into_event(body)),
        bound => parse::parse(body)
            .map_err(Error::InvalidPayload)
            .and_then(|event| bind(event, bound)),
    }
}

/// What a body may be signed with.
enum Candidates<'v> {
    /// These secrets, binding the event to this chatbot (with secrets per
    /// chatbot).
    Ready(&'v [Secret], Option<Claim>),
    /// The secrets of this chatbot, once looked up.
    #[cfg(feature = "resolver")]
    Lookup(&'v crate::resolver::CachedResolver, Claim),
}

/// The chatbot an unverified body claims to come from, to choose the secrets
/// it is verified with (secrets per chatbot).
///
/// The id has to be read before the signature is checked, and nothing but the
/// id may be allocated for it. A body without a backslash is read by the
/// event parser itself, which then allocates nothing (it records where each
/// field lies in the body; only escaped strings would need copies), so that
/// an event is parsed once: nothing it read is used, or returned, unless the
/// signature matches. A body with escapes is read by the chatbot-id scan,
/// which allocates only for an escaped id, and parsed once verified. So is a
/// body the parser refuses, or whose id is not a valid one: the scan says
/// what is wrong with it (and refuses it as a forgery would be: 401).
enum Claim {
    /// The whole event, parsed: its id is valid.
    Parsed(parse::Envelope),
    /// The id the scan found.
    Scanned(Text),
}

impl Claim {
    fn read(body: &[u8]) -> Result<Self, Error> {
        if !body.contains(&b'\\')
            && let Ok(envelope) = parse::parse_slice(body)
            && envelope
                .chatbot_id()
                .is_some_and(|id| chatbot::is_valid_chatbot_id(id.get(body)))
        {
            return Ok(Self::Parsed(envelope));
        }
        let id = chatbot::scan(body).map_err(Error::InvalidChatbotId)?;
        Ok(Self::Scanned(Text::read_cow(body, id)))
    }

    fn id(&self) -> &Text {
        match self {
            // Checked present in `read`; never `None` here.
            Self::Parsed(envelope) => envelope.chatbot_id().unwrap_or(&EMPTY_ID),
            Self::Scanned(id) => id,
        }
    }
}

/// Stands for a missing id (which `Claim::read` never lets through).
static EMPTY_ID: Text = Text::EMPTY;

/// `event`, if it names the chatbot whose secret verified it (with secrets per
/// chatbot).
fn bind(event: ChatbaseEvent, bound: Option<Claim>) -> Result<ChatbaseEvent, Error> {
    match bound {
        // The parser reads `chatbotId` by the scan's rules, so this holds;
        // checked all the same, since it is what the secret was chosen by.
        Some(bound) if event.chatbot_id() != Some(bound.id().get(event.raw_body())) => {
            Err(Error::InvalidChatbotId(crate::ChatbotIdProblem::NotAnEvent))
        }
        _ => Ok(event),
    }
}

/// Whether `signature` is the HMAC-SHA1 of `body` under one of `secrets`.
fn check(secrets: &[Secret], signature: &Signature, body: &[u8]) -> Result<(), Error> {
    for secret in secrets {
        let mut mac = secret.mac();
        mac.update(body);
        if signature.matches(mac) {
            return Ok(());
        }
    }
    Err(Error::SignatureMismatch)
}

/// The outcome of `future` if it is ready at once: always, but for a secret
/// lookup that is not cached, which the synchronous calls cannot wait for.
fn now<T>(future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Err(Error::SecretLookup(
            "the chatbot's secrets are not cached, and a synchronous verification cannot wait \
             for the resolver: use Verifier::head and Verification::finish"
                .into(),
        )),
    }
}

/// The error for an environment variable that could not be read.
fn env_error(var: &str, error: &VarError) -> SecretError {
    SecretError::Env {
        var: var.to_owned(),
        problem: match error {
            VarError::NotPresent => EnvProblem::NotSet,
            VarError::NotUnicode(_) => EnvProblem::NotUnicode,
        },
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Verifier");
        match &self.keys {
            Keys::Any(secrets) => debug.field("secrets", &secrets.len()),
            Keys::PerChatbot(chatbots) => debug.field("chatbots", &chatbots.len()),
            #[cfg(feature = "resolver")]
            Keys::Resolved(_) => debug.field("chatbots", &"resolved"),
        };
        debug.field("body_limit", &self.body_limit).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign;

    const BODY: &[u8] =
        br#"{"eventType":"leads.submit","chatbotId":"b","payload":{"conversationId":"c"}}"#;

    fn secret(key: &str) -> Secret {
        Secret::new(key).unwrap()
    }

    #[test]
    fn accepts_a_valid_signature() {
        let verifier = Verifier::new(secret("k"));
        let signature = sign(&secret("k"), BODY);
        verifier.verify(BODY, Some(signature.as_bytes())).unwrap();
        let event = verifier
            .verify_and_parse(Bytes::from_static(BODY), Some(signature.as_bytes()))
            .unwrap();
        assert_eq!(event.chatbot_id(), Some("b"));
    }

    #[test]
    fn accepts_upper_case_hex() {
        let verifier = Verifier::new(secret("k"));
        let signature = sign(&secret("k"), BODY).to_ascii_uppercase();
        verifier.verify(BODY, Some(signature.as_bytes())).unwrap();
    }

    #[test]
    fn rejects_wrong_secret_and_tampered_body() {
        let verifier = Verifier::new(secret("k"));
        let wrong = sign(&secret("other"), BODY);
        assert!(matches!(
            verifier.verify(BODY, Some(wrong.as_bytes())),
            Err(Error::SignatureMismatch)
        ));
        let signature = sign(&secret("k"), BODY);
        let mut tampered = BODY.to_vec();
        tampered[20] ^= 1;
        assert!(matches!(
            verifier.verify(&tampered, Some(signature.as_bytes())),
            Err(Error::SignatureMismatch)
        ));
    }

    #[test]
    fn missing_and_malformed_headers() {
        let verifier = Verifier::new(secret("k"));
        assert!(matches!(
            verifier.verify(BODY, None),
            Err(Error::MissingSignature)
        ));
        assert!(matches!(
            verifier.verify(BODY, Some(b"")),
            Err(Error::MalformedSignature(_))
        ));
    }

    #[test]
    fn rotation_accepts_every_configured_secret() {
        let verifier = Verifier::new(secret("new")).with_secret(secret("old"));
        for key in ["new", "old"] {
            let signature = sign(&secret(key), BODY);
            verifier.verify(BODY, Some(signature.as_bytes())).unwrap();
        }
        let retired = sign(&secret("older"), BODY);
        assert!(verifier.verify(BODY, Some(retired.as_bytes())).is_err());
    }

    #[test]
    fn body_limit_is_checked_before_hashing() {
        let verifier = Verifier::new(secret("k")).with_body_limit(BODY.len() - 1);
        let signature = sign(&secret("k"), BODY);
        let error = verifier
            .verify(BODY, Some(signature.as_bytes()))
            .unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge { limit } if limit == BODY.len() - 1));
        assert_eq!(error.status(), 413);

        let exact = Verifier::new(secret("k")).with_body_limit(BODY.len());
        exact.verify(BODY, Some(signature.as_bytes())).unwrap();
    }

    #[test]
    fn head_checks_the_signature_then_the_length() {
        let verifier = Verifier::new(secret("k")).with_body_limit(10);
        let signature = sign(&secret("k"), BODY);
        let signature = signature.as_bytes();
        assert!(matches!(
            verifier.head(None, Some(11)),
            Err(Error::MissingSignature)
        ));
        assert!(matches!(
            verifier.head([signature, signature], Some(11)),
            Err(Error::MultipleSignatures)
        ));
        assert!(matches!(
            verifier.head([signature], Some(11)),
            Err(Error::BodyTooLarge { limit: 10 })
        ));
        assert!(verifier.head([signature], Some(10)).is_ok());
        assert!(verifier.head([signature], None).is_ok());
        assert!(verifier.head([signature], Some(u64::MAX)).is_err());
    }

    #[test]
    fn unsigned_invalid_json_is_401_not_400() {
        let verifier = Verifier::new(secret("k"));
        let error = verifier
            .verify_and_parse(Bytes::from_static(b"not json"), None)
            .unwrap_err();
        assert_eq!(error.status(), 401);
        let forged = verifier
            .verify_and_parse(
                Bytes::from_static(b"not json"),
                Some(b"0000000000000000000000000000000000000000"),
            )
            .unwrap_err();
        assert!(matches!(forged, Error::SignatureMismatch));
    }

    #[test]
    fn signed_garbage_is_400() {
        let verifier = Verifier::new(secret("k"));
        let signature = sign(&secret("k"), b"[1]");
        let error = verifier
            .verify_and_parse(Bytes::from_static(b"[1]"), Some(signature.as_bytes()))
            .unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(matches!(error, Error::InvalidPayload(_)));
    }

    #[test]
    fn from_env_reads_current_and_previous() {
        let lookup = |current: Option<&'static str>, previous: Option<&'static str>| {
            move |name: &str| match name {
                SECRET_ENV_VAR => current.map(str::to_owned).ok_or(VarError::NotPresent),
                PREVIOUS_SECRET_ENV_VAR => previous.map(str::to_owned).ok_or(VarError::NotPresent),
                _ => Err(VarError::NotPresent),
            }
        };
        let from_lookup =
            |lookup| Verifier::from_lookup(lookup, |_: &PathBuf| Err(std::io::ErrorKind::NotFound));
        let one = from_lookup(lookup(Some("new"), None)).unwrap();
        assert_eq!(
            format!("{one:?}"),
            "Verifier { secrets: 1, body_limit: 1048576 }"
        );
        let empty_previous = from_lookup(lookup(Some("new"), Some(""))).unwrap();
        assert_eq!(
            format!("{empty_previous:?}"),
            "Verifier { secrets: 1, body_limit: 1048576 }"
        );
        let two = from_lookup(lookup(Some("new"), Some("old"))).unwrap();
        let signature = sign(&secret("old"), BODY);
        two.verify(BODY, Some(signature.as_bytes())).unwrap();

        let missing = from_lookup(lookup(None, Some("old"))).unwrap_err();
        assert!(missing.to_string().contains(SECRET_ENV_VAR), "{missing}");
        let bad_previous = from_lookup(lookup(Some("new"), Some("old\n"))).unwrap_err();
        assert!(
            bad_previous.to_string().contains(PREVIOUS_SECRET_ENV_VAR),
            "{bad_previous}"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let verifier = Verifier::new(secret("hunter2")).with_secret(secret("hunter3"));
        let shown = format!("{verifier:?}");
        assert_eq!(shown, "Verifier { secrets: 2, body_limit: 1048576 }");
    }

    fn chatbots() -> Verifier {
        let secrets = ChatbotSecrets::new()
            .with_chatbot("bot_a", [secret("secret-a")])
            .unwrap()
            .with_chatbot("bot_b", [secret("secret-b-new"), secret("secret-b-old")])
            .unwrap();
        Verifier::per_chatbot(secrets)
    }

    fn body_of(chatbot: &str) -> String {
        format!(r#"{{"eventType":"leads.submit","chatbotId":"{chatbot}","payload":{{}}}}"#)
    }

    #[test]
    fn per_chatbot_verifies_with_the_named_chatbots_secrets_only() {
        let verifier = chatbots();
        for (chatbot, key) in [
            ("bot_a", "secret-a"),
            ("bot_b", "secret-b-new"),
            ("bot_b", "secret-b-old"),
        ] {
            let body = body_of(chatbot);
            let signature = sign(&secret(key), body.as_bytes());
            let event = verifier
                .verify_and_parse(Bytes::from(body), Some(signature.as_bytes()))
                .unwrap();
            assert_eq!(event.chatbot_id(), Some(chatbot));
        }
        // Bot A's secret never passes for bot B, and the other way round.
        for (chatbot, key) in [("bot_b", "secret-a"), ("bot_a", "secret-b-new")] {
            let body = body_of(chatbot);
            let signature = sign(&secret(key), body.as_bytes());
            let error = verifier
                .verify(body.as_bytes(), Some(signature.as_bytes()))
                .unwrap_err();
            assert!(
                matches!(error, Error::SignatureMismatch),
                "{chatbot}: {error}"
            );
        }
    }

    #[test]
    fn per_chatbot_refuses_unknown_and_unusable_chatbot_ids() {
        let verifier = chatbots();
        let body = body_of("bot_c");
        let signature = sign(&secret("secret-a"), body.as_bytes());
        let error = verifier
            .verify(body.as_bytes(), Some(signature.as_bytes()))
            .unwrap_err();
        assert!(matches!(&error, Error::UnknownChatbot { chatbot_id } if chatbot_id == "bot_c"));
        assert_eq!(error.status(), 401);
        // Answered exactly as a mismatch.
        assert_eq!(error.json_body(), Error::SignatureMismatch.json_body());

        for body in [
            r#"{"eventType":"leads.submit","payload":{}}"#,
            r#"{"eventType":"leads.submit","chatbotId":7}"#,
            r#"{"eventType":"leads.submit","chatbotId":"bot a"}"#,
            r#"{"chatbotId":"bot_a","chatbotId":"bot_b"}"#,
            r#"{"chatbotId":"bot_b","chatbot\u0049d":"bot_a"}"#,
            "not json",
        ] {
            let signature = sign(&secret("secret-a"), body.as_bytes());
            let error = verifier
                .verify(body.as_bytes(), Some(signature.as_bytes()))
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidChatbotId(_)),
                "{body}: {error}"
            );
            assert_eq!(error.status(), 401);
        }
    }

    #[test]
    fn per_chatbot_reads_escaped_ids_as_the_parser_does() {
        let verifier = chatbots();
        let body = r#"{"eventType":"leads.submit","chatbot\u0049d":"bot_\u0061","payload":{}}"#;
        let signature = sign(&secret("secret-a"), body.as_bytes());
        let event = verifier
            .verify_and_parse(
                Bytes::from_static(body.as_bytes()),
                Some(signature.as_bytes()),
            )
            .unwrap();
        assert_eq!(event.chatbot_id(), Some("bot_a"));
    }

    #[test]
    fn with_secret_changes_nothing_per_chatbot() {
        let verifier = chatbots().with_secret(secret("everyone"));
        let body = body_of("bot_a");
        let signature = sign(&secret("everyone"), body.as_bytes());
        assert!(
            verifier
                .verify(body.as_bytes(), Some(signature.as_bytes()))
                .is_err()
        );
        assert_eq!(
            format!("{verifier:?}"),
            "Verifier { chatbots: 2, body_limit: 1048576 }"
        );
    }

    /// An environment of `vars`, and files of `files`.
    fn from_env(vars: &[(&str, &str)], files: &[(&str, &str)]) -> Result<Verifier, SecretError> {
        Verifier::from_lookup(
            |name| {
                vars.iter()
                    .find(|(var, _)| *var == name)
                    .map(|(_, value)| (*value).to_owned())
                    .ok_or(VarError::NotPresent)
            },
            |path| {
                files
                    .iter()
                    .find(|(file, _)| path == &PathBuf::from(file))
                    .map(|(_, json)| (*json).to_owned())
                    .ok_or(std::io::ErrorKind::NotFound)
            },
        )
    }

    #[test]
    fn from_env_reads_secrets_per_chatbot_from_a_variable_or_a_file() {
        let json = r#"{"bot_a":"secret-a","bot_b":["secret-b-new","secret-b-old"]}"#;
        let verifiers = [
            from_env(&[(SECRETS_ENV_VAR, json)], &[]).unwrap(),
            from_env(
                &[(SECRETS_FILE_ENV_VAR, "/run/secrets/chatbase")],
                &[("/run/secrets/chatbase", json)],
            )
            .unwrap(),
        ];
        for verifier in verifiers {
            let body = body_of("bot_b");
            let signature = sign(&secret("secret-b-old"), body.as_bytes());
            verifier
                .verify(body.as_bytes(), Some(signature.as_bytes()))
                .unwrap();
        }
    }

    #[test]
    fn from_env_refuses_more_than_one_source_naming_them() {
        let json = r#"{"bot_a":"secret-a"}"#;
        for vars in [
            &[(SECRET_ENV_VAR, "s"), (SECRETS_ENV_VAR, json)][..],
            &[(SECRET_ENV_VAR, "s"), (SECRETS_FILE_ENV_VAR, "/f")][..],
            &[(SECRETS_ENV_VAR, json), (SECRETS_FILE_ENV_VAR, "/f")][..],
            &[(SECRETS_ENV_VAR, json), (PREVIOUS_SECRET_ENV_VAR, "old")][..],
        ] {
            let error = from_env(vars, &[("/f", json)]).unwrap_err();
            let SecretError::ConflictingEnv { vars: named } = &error else {
                panic!("{error}")
            };
            assert_eq!(named.len(), 2, "{error}");
            for (var, _) in vars {
                assert!(error.to_string().contains(var), "{error}");
            }
        }
    }

    #[test]
    fn from_env_errors_name_the_variable_and_chatbot_never_the_secret() {
        let cases = [
            (SECRETS_ENV_VAR, "{not json", None),
            (SECRETS_ENV_VAR, "{}", None),
            (SECRETS_ENV_VAR, "", None),
            (SECRETS_ENV_VAR, r#"{"bot_a":""}"#, Some("bot_a")),
            (SECRETS_ENV_VAR, r#"{"bot_b":"hunter2\n"}"#, Some("bot_b")),
            (
                SECRETS_ENV_VAR,
                r#"{"bot_c":["ok"," hunter2"]}"#,
                Some("bot_c"),
            ),
        ];
        for (var, value, chatbot) in cases {
            let error = from_env(&[(var, value)], &[]).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(shown.contains(var), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            if let Some(chatbot) = chatbot {
                assert!(shown.contains(chatbot), "{shown}");
            }
        }
        let error = from_env(&[(SECRETS_FILE_ENV_VAR, "/missing")], &[]).unwrap_err();
        assert!(error.to_string().contains(SECRETS_FILE_ENV_VAR), "{error}");
        assert!(error.to_string().contains("/missing"), "{error}");
        let error =
            from_env(&[(SECRETS_FILE_ENV_VAR, "/f")], &[("/f", r#"{"x y":"s"}"#)]).unwrap_err();
        assert!(error.to_string().contains(SECRETS_FILE_ENV_VAR), "{error}");
        assert!(error.to_string().contains("x y"), "{error}");
        // Nothing set: the error names the one-secret variable.
        let error = from_env(&[], &[]).unwrap_err();
        assert!(error.to_string().contains(SECRET_ENV_VAR), "{error}");
    }
}
