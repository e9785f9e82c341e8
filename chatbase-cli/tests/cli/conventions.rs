//! CLI conventions: help with examples and exit codes, completions, colour
//! that respects NO_COLOR and non-terminals, the version.

use crate::support::{SECRET, chatbase, chatbase_with, run};

#[test]
fn help_has_examples_and_exit_codes() {
    for flag in ["-h", "--help"] {
        let output = chatbase_with(&[flag]);
        assert_eq!(output.code, 0, "{output:?}");
        assert!(output.stdout.contains("Examples:"), "{output:?}");
        assert!(output.stdout.contains("Exit status:"), "{output:?}");
        for code in ["  0  success", "  1  failure", "  2  usage error"] {
            assert!(output.stdout.contains(code), "{code}: {output:?}");
        }
    }
    for command in [
        "send",
        "sign",
        "verify",
        "listen",
        "inbox",
        "inbox list",
        "inbox stats",
        "inbox retry",
        "inbox purge",
        "completions",
    ] {
        let mut arguments: Vec<&str> = command.split(' ').collect();
        arguments.push("--help");
        let output = chatbase_with(&arguments);
        assert_eq!(output.code, 0, "{output:?}");
        assert!(output.stdout.contains("Examples:"), "{command}: {output:?}");
        if command.starts_with("inbox") {
            assert!(
                output.stdout.contains("Exit status:"),
                "{command}: {output:?}"
            );
        }
        assert!(
            output.stdout.contains(&format!("chatbase {command}")),
            "{command}: {output:?}"
        );
    }
    let output = chatbase_with(&[]);
    assert_eq!(output.code, 2, "{output:?}");
}

#[test]
fn version() {
    let output = chatbase_with(&["--version"]);
    assert_eq!(output.code, 0);
    assert_eq!(
        output.stdout,
        format!("chatbase {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = chatbase_with(&["completions", shell]);
        assert_eq!(output.code, 0, "{shell}: {output:?}");
        for word in [
            "chatbase",
            "send",
            "listen",
            "verify",
            "--secrets-file",
            "inbox",
            "retry",
            "purge",
            "older-than",
            "all-dead",
        ] {
            assert!(output.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let output = chatbase_with(&["completions", "tcsh"]);
    assert_eq!(output.code, 2, "{output:?}");
}

/// Colour: none into a pipe; forced by CLICOLOR_FORCE or --color always;
/// NO_COLOR and --color never win over CLICOLOR_FORCE.
#[test]
fn colour_respects_no_color_and_non_terminals() {
    const ESC: char = '\u{1b}';
    let sign = |env: &[(&str, &str)], extra: &[&str]| {
        let mut command = chatbase();
        command.args(["sign", "--secret", SECRET, "--body-file", "-"]);
        // A usage error with colour: clap's and ours.
        command.args(["--header", "--no-such-flag"]).args(extra);
        for (key, value) in env {
            command.env(key, value);
        }
        run(command.write_stdin("{}"))
    };
    let verify = |env: &[(&str, &str)], extra: &[&str]| {
        let mut command = chatbase();
        command
            .args(["verify", "--secret", SECRET, "--signature", "00"])
            .args(extra);
        for (key, value) in env {
            command.env(key, value);
        }
        run(command.write_stdin("{}"))
    };
    for (env, extra, coloured) in [
        (vec![], vec![], false),
        (vec![("CLICOLOR_FORCE", "1")], vec![], true),
        (vec![], vec!["--color", "always"], true),
        (
            vec![("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
            vec![],
            false,
        ),
        (
            vec![("CLICOLOR_FORCE", "1")],
            vec!["--color", "never"],
            false,
        ),
    ] {
        let output = verify(&env, &extra);
        assert_eq!(output.code, 1, "{output:?}");
        assert_eq!(
            output.stdout.contains(ESC),
            coloured,
            "{env:?} {extra:?}: {output:?}"
        );
        let output = sign(&env, &extra);
        assert_eq!(output.code, 2, "{output:?}");
        assert_eq!(
            output.stderr.contains(ESC),
            coloured,
            "{env:?} {extra:?}: {output:?}"
        );
    }
}
