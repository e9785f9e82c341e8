//! What `tracing` logged on the current thread: to check what a request logged,
//! and that it logged no secret and no customer data.
//!
//! ```
//! use chatbase_core::testing::logs::{self, Logs};
//! use chatbase_core::Error;
//!
//! let logs = Logs::capture();
//! let mark = logs.mark();
//! Error::SignatureMismatch.log(); // what an adapter does when it refuses a request
//! let logged = logs.since(mark);
//! logs::assert_rejection_logged_once(&logged, 401);
//! assert!(logged.contains("reason=\"signature_mismatch\"") || logged.contains("reason=signature_mismatch"));
//! ```
//!
//! [`Logs::capture`] installs, the first time it is called in a process, a
//! global `tracing` subscriber (`INFO` and above, no colours, with targets) that
//! writes each event to the buffer of the thread that emitted it, if that thread
//! is capturing. A global subscriber, installed before anything logs, rather
//! than a scoped one per test: `tracing` caches each call site's interest, and a
//! call site first hit on another test's thread while a scoped subscriber is
//! being registered can be cached as uninterested, losing the events. If your
//! tests install a global subscriber of their own first, nothing is captured.
//!
//! Requests handled on the test's own thread (axum's `oneshot`, actix-web's
//! `test::call_service`) are captured; a server running on other threads is
//! not.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, Once, PoisonError};

use crate::REJECTION_LOG_TARGET;

thread_local! {
    /// Where `tracing` output emitted on this thread goes, if anywhere.
    static CAPTURE: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Writes to the current thread's capture buffer, or nowhere.
struct ThreadCapture;

impl io::Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(buffer) = &*capture.borrow() {
                buffer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| ThreadCapture)
            .with_ansi(false)
            .with_target(true)
            .finish();
        // Another global subscriber may be installed already: then nothing is
        // captured, which the assertions will show.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// What `tracing` logs on this thread, from [`Logs::capture`] on, until it is
/// dropped.
#[derive(Debug)]
pub struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl Logs {
    /// Starts capturing this thread's `tracing` output.
    pub fn capture() -> Self {
        install();
        let buffer = Arc::new(Mutex::new(Vec::new()));
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(Arc::clone(&buffer)));
        Self { buffer }
    }

    /// Where the logs end now, for [`Logs::since`].
    pub fn mark(&self) -> usize {
        self.lock().len()
    }

    /// What was logged since `mark`.
    pub fn since(&self, mark: usize) -> String {
        String::from_utf8_lossy(self.lock().get(mark..).unwrap_or_default()).into_owned()
    }

    /// Everything logged since the capture started.
    pub fn all(&self) -> String {
        self.since(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        CAPTURE.with(|capture| {
            let mut capture = capture.borrow_mut();
            if capture
                .as_ref()
                .is_some_and(|buffer| Arc::ptr_eq(buffer, &self.buffer))
            {
                *capture = None;
            }
        });
    }
}

/// The rejection lines (target `chatbase::rejection`) among `logged`.
pub fn rejection_lines(logged: &str) -> Vec<&str> {
    logged
        .lines()
        .filter(|line| line.contains(REJECTION_LOG_TARGET))
        .collect()
}

/// Asserts that `logged` holds exactly one rejection line, at `WARN`, for
/// `status`.
///
/// # Panics
///
/// When it does not, with what was logged.
#[allow(clippy::panic)]
pub fn assert_rejection_logged_once(logged: &str, status: u16) {
    let lines = rejection_lines(logged);
    let [line] = lines.as_slice() else {
        panic!("expected one rejection line, got {}: {logged}", lines.len());
    };
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("rejected a Chatbase webhook"), "{line}");
    assert!(line.contains(&format!("status={status}")), "{line}");
}

/// Asserts that `logged` contains none of `private`: secrets, signatures,
/// customer data.
///
/// # Panics
///
/// On the first one found.
pub fn assert_logged_none_of(logged: &str, private: &[&str]) {
    for private in private {
        assert!(
            !logged.contains(private),
            "{private:?} was logged: {logged}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn captures_this_threads_lines_only() {
        let logs = Logs::capture();
        let mark = logs.mark();
        Error::MissingSignature.log();
        std::thread::spawn(|| Error::SignatureMismatch.log())
            .join()
            .unwrap();
        let logged = logs.since(mark);
        assert_rejection_logged_once(&logged, 401);
        assert!(logged.contains("missing_signature"), "{logged}");
        assert!(!logged.contains("signature_mismatch"), "{logged}");
        assert_logged_none_of(&logged, &["secret-value"]);
    }

    #[test]
    fn nothing_after_the_capture_is_dropped() {
        let logs = Logs::capture();
        let buffer = Arc::clone(&logs.buffer);
        drop(logs);
        Error::MissingSignature.log();
        assert!(buffer.lock().unwrap().is_empty());
    }
}
