//! What the commands print: styles that respect `NO_COLOR` and terminals
//! (through anstream), warnings, errors with hints, and how a command fails.

use anstyle::{AnsiColor, Style};
use clap::error::ErrorKind;

/// A good outcome: verified, the expected status.
pub(crate) const GOOD: Style = AnsiColor::Green.on_default().bold();
/// A bad outcome: rejected, an unexpected status.
pub(crate) const BAD: Style = AnsiColor::Red.on_default().bold();
/// A warning.
pub(crate) const WARN: Style = AnsiColor::Yellow.on_default().bold();
/// A hint, a label.
pub(crate) const NOTE: Style = AnsiColor::Cyan.on_default().bold();
/// Less important text.
pub(crate) const DIM: Style = Style::new().dimmed();
/// A heading: the request line.
pub(crate) const HEAD: Style = Style::new().bold();

/// How a command failed.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A failure, already reported: exit status 1.
    Failed,
    /// A usage error, reported by clap with the command's usage: exit
    /// status 2.
    Usage {
        /// The subcommand's path: `send`, `inbox purge`.
        command: &'static str,
        kind: ErrorKind,
        message: String,
    },
}

/// A usage error of `command`.
pub(crate) fn usage(command: &'static str, message: impl Into<String>) -> Fail {
    Fail::Usage {
        command,
        kind: ErrorKind::ValueValidation,
        message: message.into(),
    }
}

/// A usage error of `command`: something it needs is missing.
pub(crate) fn missing(command: &'static str, message: impl Into<String>) -> Fail {
    Fail::Usage {
        command,
        kind: ErrorKind::MissingRequiredArgument,
        message: message.into(),
    }
}

/// A message and its hint on one value, for usage errors.
pub(crate) fn with_hint(message: &str, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{message}\n\n  hint: {hint}"),
        None => message.to_owned(),
    }
}

/// Prints `error: message` (and `hint: ...`) on standard error, and fails
/// with exit status 1.
pub(crate) fn failed(message: &str, hint: Option<String>) -> Fail {
    error(message, hint);
    Fail::Failed
}

/// Prints `error: message` (and `hint: ...`) on standard error.
pub(crate) fn error(message: &str, hint: Option<String>) {
    anstream::eprintln!("{BAD}error{BAD:#}: {message}");
    if let Some(hint) = hint {
        anstream::eprintln!("  {NOTE}hint{NOTE:#}: {hint}");
    }
}

/// Prints `warning: message` on standard error.
pub(crate) fn warn(message: &str) {
    anstream::eprintln!("{WARN}warning{WARN:#}: {message}");
}
