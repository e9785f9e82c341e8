//! Random hex strings from the operating system, for the demo's secret and for
//! unique conversation ids.

use std::fmt;

/// `bytes` random bytes from the operating system's generator, as lowercase hex
/// (twice as many characters).
///
/// The generator is the one rustls uses (through `ring`), so no other crate is
/// needed for it.
///
/// # Errors
///
/// [`RandomError`] if the operating system's generator fails.
pub fn hex(bytes: usize) -> Result<String, RandomError> {
    let mut buffer = vec![0; bytes];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut buffer)
        .map_err(|_| RandomError)?;
    Ok(hex::encode(buffer))
}

/// The operating system's random generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operating system's random generator failed")
    }
}

impl std::error::Error for RandomError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_has_the_length_asked_and_differs_each_time() {
        let one = hex(16).unwrap();
        let two = hex(16).unwrap();
        assert_eq!(one.len(), 32);
        assert!(
            one.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(one, two);
        assert_eq!(hex(0).unwrap(), "");
    }
}
