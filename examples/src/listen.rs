//! Where the receivers listen: `127.0.0.1:$PORT`, port 3000 by default.

use std::env::{self, VarError};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

/// The environment variable holding the port: `PORT`.
pub const PORT_ENV_VAR: &str = "PORT";

/// The port when `PORT` is unset or empty: 3000.
pub const DEFAULT_PORT: u16 = 3000;

/// The address to listen on: `127.0.0.1:$PORT`, or `127.0.0.1:3000` when `PORT`
/// is unset or empty. `PORT=0` picks a free port (the receivers log the one they
/// got).
///
/// Loopback only: put a TLS-terminating proxy in front to receive Chatbase's
/// requests from the internet.
///
/// # Errors
///
/// A [`PortError`] if `PORT` is not a port number.
pub fn address() -> Result<SocketAddr, PortError> {
    address_from(env::var(PORT_ENV_VAR))
}

fn address_from(value: Result<String, VarError>) -> Result<SocketAddr, PortError> {
    let port = match value {
        Err(VarError::NotPresent) => DEFAULT_PORT,
        Ok(value) if value.is_empty() => DEFAULT_PORT,
        Ok(value) => value.trim().parse().map_err(|_| PortError { value })?,
        Err(VarError::NotUnicode(value)) => {
            return Err(PortError {
                value: value.to_string_lossy().into_owned(),
            });
        }
    };
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// `PORT` does not hold a port number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError {
    value: String,
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {PORT_ENV_VAR} is {:?}: expected a port number (0-65535)",
            self.value
        )
    }
}

impl std::error::Error for PortError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_empty_and_set() {
        let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert_eq!(address_from(Err(VarError::NotPresent)), Ok(local(3000)));
        assert_eq!(address_from(Ok(String::new())), Ok(local(3000)));
        assert_eq!(address_from(Ok("8080".to_owned())), Ok(local(8080)));
        assert_eq!(address_from(Ok("0".to_owned())), Ok(local(0)));
    }

    #[test]
    fn not_a_port_names_the_variable() {
        for bad in ["http", "-1", "65536", "30 00"] {
            let error = address_from(Ok(bad.to_owned())).unwrap_err();
            let shown = error.to_string();
            assert!(shown.contains("PORT"), "{shown}");
            assert!(shown.contains(bad), "{shown}");
        }
    }
}
