//! How the receivers' binaries end: exit status 0, or 1 with one line on
//! standard error.

// A command-line program's one error line goes to standard error.
#![allow(clippy::print_stderr)]

use std::error::Error;
use std::process::ExitCode;

/// `ExitCode::SUCCESS` for `Ok`; for `Err`, prints `program: error` on standard
/// error (one line: the errors name what to fix, e.g. the missing environment
/// variable) and returns `ExitCode::FAILURE`.
pub fn exit_code(program: &str, outcome: Result<(), Box<dyn Error>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: {error}");
            ExitCode::FAILURE
        }
    }
}
