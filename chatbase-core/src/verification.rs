//! [`Verification`]: one request's verification, step by step, for any framework.

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::{ChatbaseEvent, Error, Signature, Verifier};

/// One request being verified: made by [`Verifier::head`] from the request
/// head, fed the body with [`chunk`](Verification::chunk), and turned into a
/// verified event by [`finish`](Verification::finish).
///
/// It does no I/O of its own (it is *sans-IO*): the framework reads the body
/// however it reads bodies and hands each chunk over. All the rules live here,
/// so every adapter applies them alike:
///
/// 1. the signature header is checked before any of the body is read (401), then
///    the announced length against the limit (413);
/// 2. each chunk is counted against the limit, and the first one past it is
///    refused (413): stop reading then;
/// 3. `finish` verifies the HMAC-SHA1 of the exact bytes received, in constant
///    time, and only then parses them.
///
/// A body that arrives in one chunk is kept as it is, without copying.
///
/// # Example: plain hyper
///
/// The axum and actix-web adapters do this for you. Any other framework (plain
/// hyper, `lambda_http`, poem...) reads the same:
///
/// ```
/// use bytes::Bytes;
/// use chatbase_core::{Error, SIGNATURE_HEADER, Verifier};
/// use http_body_util::BodyExt as _;
/// use hyper::body::Body as _;
///
/// async fn verify<B>(verifier: &Verifier, request: hyper::Request<B>) -> Result<chatbase_core::ChatbaseEvent, Error>
/// where
///     B: hyper::body::Body<Data = Bytes> + Unpin,
///     B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
/// {
///     let (parts, mut body) = request.into_parts();
///     let signatures = parts.headers.get_all(SIGNATURE_HEADER).iter().map(|value| value.as_bytes());
///     let mut verification = verifier.head(signatures, body.size_hint().exact())?;
///     while let Some(frame) = body.frame().await {
///         if let Ok(chunk) = frame.map_err(Error::read_body)?.into_data() {
///             verification.chunk(chunk)?;
///         }
///     }
///     verification.finish().await
/// }
///
/// // Answer an `Err` with `error.status()` and `error.json_body()`.
/// # use chatbase_core::{Secret, sign};
/// # let secret = Secret::new("s")?;
/// # let verifier = Verifier::new(secret.clone());
/// # let body = r#"{"eventType":"leads.submit","chatbotId":"b","payload":{}}"#;
/// # let request = hyper::Request::post("/")
/// #     .header(SIGNATURE_HEADER, sign(&secret, body.as_bytes()))
/// #     .body(http_body_util::Full::new(Bytes::from(body)))?;
/// # let event = futures_executor::block_on(verify(&verifier, request))?;
/// # assert_eq!(event.chatbot_id(), Some("b"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Verification {
    verifier: Verifier,
    signature: Signature,
    body: Body,
}

impl Verification {
    pub(crate) fn new(verifier: Verifier, signature: Signature) -> Self {
        Self {
            verifier,
            signature,
            body: Body::default(),
        }
    }

    /// Takes the next chunk of the body.
    ///
    /// # Errors
    ///
    /// [`Error::BodyTooLarge`] (413) as soon as the body passes the verifier's
    /// limit: stop reading the body then, and drop this verification.
    pub fn chunk(&mut self, chunk: impl Into<Bytes>) -> Result<(), Error> {
        let chunk = chunk.into();
        if chunk.len() > self.remaining() {
            return Err(self.verifier.too_large());
        }
        self.body.push(chunk);
        Ok(())
    }

    /// How many more bytes of body the limit allows.
    pub fn remaining(&self) -> usize {
        self.verifier.body_limit().saturating_sub(self.body.len)
    }

    /// Verifies the body received and, only if it is signed, parses it.
    ///
    /// # Errors
    ///
    /// [`Error::SignatureMismatch`] (401) if no secret matches, then
    /// [`Error::InvalidPayload`] (400) for a signed body that is not a Chatbase
    /// event.
    pub async fn finish(self) -> Result<ChatbaseEvent, Error> {
        let body = self.body.into_bytes();
        self.verifier.verify_signed(&self.signature, body).await
    }
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verification")
            .field("verifier", &self.verifier)
            .field("body_len", &self.body.len)
            .finish_non_exhaustive()
    }
}

/// The body received so far: the first chunk as it came, and the whole once a
/// second one arrives.
#[derive(Default)]
struct Body {
    first: Option<Bytes>,
    joined: BytesMut,
    len: usize,
}

impl Body {
    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        if self.joined.is_empty() {
            let Some(first) = self.first.take() else {
                self.first = Some(chunk);
                return;
            };
            self.joined.reserve(first.len() + chunk.len());
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&chunk);
    }

    fn into_bytes(self) -> Bytes {
        match self.first {
            Some(first) => first,
            None => self.joined.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Secret, sign};

    const BODY: &[u8] =
        br#"{"eventType":"leads.submit","chatbotId":"b","payload":{"conversationId":"c"}}"#;

    fn secret() -> Secret {
        Secret::new("verification").unwrap()
    }

    fn head(verifier: &Verifier, body: &[u8]) -> Verification {
        let signature = sign(&secret(), body);
        verifier.head([signature.as_bytes()], None).unwrap()
    }

    fn finish(verification: Verification) -> Result<ChatbaseEvent, Error> {
        futures_executor::block_on(verification.finish())
    }

    #[test]
    fn chunks_in_any_split_verify_the_same() {
        let verifier = Verifier::new(secret());
        for split in [0, 1, 20, BODY.len() - 1, BODY.len()] {
            let mut verification = head(&verifier, BODY);
            let (a, b) = BODY.split_at(split);
            verification.chunk(Bytes::copy_from_slice(a)).unwrap();
            verification.chunk(Bytes::copy_from_slice(b)).unwrap();
            let event = finish(verification).unwrap();
            assert_eq!(event.raw_body(), BODY, "split at {split}");
        }
    }

    #[test]
    fn one_chunk_is_not_copied() {
        let body = Bytes::from_static(BODY);
        let mut verification = head(&Verifier::new(secret()), BODY);
        verification.chunk(body.clone()).unwrap();
        let event = finish(verification).unwrap();
        assert_eq!(event.raw_body().as_ptr(), body.as_ptr());
    }

    #[test]
    fn the_first_chunk_past_the_limit_is_refused() {
        let verifier = Verifier::new(secret()).with_body_limit(10);
        let mut verification = head(&verifier, b"0123456789");
        verification.chunk(&b"01234"[..]).unwrap();
        assert_eq!(verification.remaining(), 5);
        verification.chunk(&b"56789"[..]).unwrap();
        assert_eq!(verification.remaining(), 0);
        let error = verification.chunk(&b"!"[..]).unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge { limit: 10 }));
    }

    #[test]
    fn a_tampered_chunk_is_a_mismatch() {
        let mut verification = head(&Verifier::new(secret()), BODY);
        verification.chunk(&BODY[..10]).unwrap();
        verification.chunk(&b"X"[..]).unwrap();
        verification.chunk(&BODY[11..]).unwrap();
        assert!(matches!(
            finish(verification),
            Err(Error::SignatureMismatch)
        ));
    }

    #[test]
    fn debug_shows_no_body() {
        let mut verification = head(&Verifier::new(secret()), BODY);
        verification.chunk(BODY).unwrap();
        let shown = format!("{verification:?}");
        assert!(shown.contains("body_len: 77"), "{shown}");
        assert!(!shown.contains("leads"), "{shown}");
    }
}
