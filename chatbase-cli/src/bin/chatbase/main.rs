//! `chatbase`: develop and operate Chatbase webhook receivers.
//!
//! See the crate's README for the commands; `chatbase --help` for the flags.

mod inbox;
mod keys;
mod listen;
mod output;
mod send;
mod sign;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use crate::output::Fail;

/// Exit statuses, the same for every command (a macro, for `concat!`).
macro_rules! exit_codes {
    () => {
        "Exit status:
  0  success: the replies had the expected status, the signature verifies,
     the receiver stopped on Ctrl-C
  1  failure: an unexpected status or no reply, a signature that does not
     verify, a receiver that could not start, an inbox that cannot be
     reached or an operation on it that failed
  2  usage error: a bad or missing flag, a missing secret, an unreadable file"
    };
}

/// The examples of `chatbase --help`.
macro_rules! examples {
    () => {
        "Examples:
  chatbase send --url http://127.0.0.1:3000/webhook
  chatbase listen --port 4000 --forward-to http://127.0.0.1:3000/webhook
  chatbase sign --body-file event.json
  chatbase verify --body-file event.json --signature 6adb...fc75
  chatbase inbox list --db sqlite://data/inbox.db --state dead"
    };
}

/// Send signed test events to a Chatbase webhook receiver, sign and verify
/// bodies, run a local receiver that verifies, forwards and captures, and
/// operate a durable inbox.
#[derive(Debug, Parser)]
#[command(
    name = "chatbase",
    version,
    propagate_version = true,
    after_help = concat!(examples!(), "\n\n'chatbase help <command>' and '<command> --help' say more.\n\n", exit_codes!()),
    after_long_help = concat!(examples!(), "

The secret: --secret, else the environment variable CHATBASE_WEBHOOK_SECRET,
or a secret per chatbot with --secrets-file. Secrets are used exactly as given;
a secret with whitespace around it gets a warning on standard error.

", exit_codes!()),
)]
struct Cli {
    /// When to use colour: auto (a terminal, unless NO_COLOR is set),
    /// always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto", global = true)]
    color: Color,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

// One variant per command, each in its own module.
#[derive(Debug, Subcommand)]
enum Command {
    Send(send::Args),
    Sign(sign::Args),
    Verify(verify::Args),
    Listen(listen::Args),
    Inbox(inbox::Args),
    Completions(CompletionsArgs),
}

/// Print a shell completion script to standard output.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase completions bash > ~/.local/share/bash-completion/completions/chatbase
  chatbase completions zsh > ~/.zfunc/_chatbase
  chatbase completions fish > ~/.config/fish/completions/chatbase.fish")]
struct CompletionsArgs {
    /// The shell.
    shell: Shell,
}

fn main() -> ExitCode {
    // `--color` applies to clap's own help and errors too, so it is read
    // before the rest is parsed.
    let color = color_flag(std::env::args_os().skip(1));
    let clap_color = match color {
        Color::Auto => clap::ColorChoice::Auto,
        Color::Always => clap::ColorChoice::Always,
        Color::Never => clap::ColorChoice::Never,
    };
    match color {
        Color::Auto => {}
        Color::Always => anstream::ColorChoice::Always.write_global(),
        Color::Never => anstream::ColorChoice::Never.write_global(),
    }
    let matches = Cli::command().color(clap_color).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let outcome = match cli.command {
        Command::Send(args) => runtime().and_then(|runtime| runtime.block_on(send::run(args))),
        Command::Sign(args) => sign::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Listen(args) => runtime().and_then(|runtime| runtime.block_on(listen::run(args))),
        Command::Inbox(args) => runtime().and_then(|runtime| runtime.block_on(inbox::run(args))),
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "chatbase", &mut std::io::stdout());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Failed) => ExitCode::FAILURE,
        Err(Fail::Usage {
            command,
            kind,
            message,
        }) => {
            let mut cli = Cli::command().color(clap_color);
            cli.build();
            // `command` is a path of subcommands: `send`, `inbox purge`.
            let mut target = cli;
            for name in command.split_whitespace() {
                match target.find_subcommand(name).cloned() {
                    Some(subcommand) => target = subcommand,
                    None => break,
                }
            }
            target.error(kind, message).exit()
        }
    }
}

/// The value of `--color` (`--color WHEN` or `--color=WHEN`) among the
/// arguments, before `--`; `auto` if absent or unknown (clap reports it).
fn color_flag(arguments: impl Iterator<Item = std::ffi::OsString>) -> Color {
    let mut arguments = arguments.take_while(|argument| argument != "--");
    let mut color = Color::Auto;
    while let Some(argument) = arguments.next() {
        let value = match argument.to_str() {
            Some("--color") => arguments.next(),
            Some(other) => other.strip_prefix("--color=").map(Into::into),
            None => None,
        };
        if let Some(value) = value.as_ref().and_then(|value| value.to_str())
            && let Ok(parsed) = Color::from_str(value, false)
        {
            color = parsed;
        }
    }
    color
}

fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| output::failed(&format!("cannot start the async runtime: {error}"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_color_flag_is_read_before_parsing() {
        let color = |arguments: &[&str]| color_flag(arguments.iter().map(std::ffi::OsString::from));
        assert!(matches!(
            color(&["send", "--color", "always"]),
            Color::Always
        ));
        assert!(matches!(color(&["--color=never", "send"]), Color::Never));
        assert!(matches!(color(&["send"]), Color::Auto));
        assert!(matches!(color(&["--", "--color", "always"]), Color::Auto));
        assert!(matches!(color(&["--color", "purple"]), Color::Auto));
    }

    #[test]
    fn exit_codes_are_in_the_long_help() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains(exit_codes!()), "{help}");
        let short = Cli::command().render_help().to_string();
        assert!(short.contains(exit_codes!()), "{short}");
    }
}
