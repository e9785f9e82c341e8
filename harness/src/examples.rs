//! The example binaries, built and run as child processes, as a user runs them.
//!
//! [`binary`] builds every example crate (and the `chatbase` command) once per
//! process (`cargo build` of the
//! example packages, in the profile and target directory this program was built
//! in) and returns the path of one; [`Running::start`] starts it on a free port
//! and reads its standard output line by line.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The example packages and their binaries.
pub const EXAMPLES: [&str; 6] = [
    "example-axum",
    "example-actix",
    "example-inbox",
    "example-many-bots",
    "axum-receiver",
    "actix-receiver",
];

/// How long any step may take before it is reported as stuck: far longer than
/// anything should take, even on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// The path of the example binary `name`, built (with every other example) the
/// first time this is called in the process.
///
/// # Panics
///
/// If `cargo build` fails: the tests cannot run without the examples.
#[allow(clippy::panic)]
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let directory = BUILT.get_or_init(build_examples);
    match directory {
        Ok(directory) => directory.join(name),
        Err(error) => panic!("{error}"),
    }
}

/// Builds the example binaries next to this program: in its profile's
/// directory of its target directory.
fn build_examples() -> Result<PathBuf, String> {
    let executable = std::env::current_exe().map_err(|error| error.to_string())?;
    // `target/<profile>/deps/<test binary>` or `target/<profile>/<binary>`.
    let mut directory = executable
        .parent()
        .ok_or("the test binary has no directory")?
        .to_path_buf();
    if directory.ends_with("deps") {
        directory.pop();
    }
    let profile = directory
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("debug")
        .to_owned();
    let target_dir = directory
        .parent()
        .ok_or("the profile directory has no parent")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--quiet", "--bins"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace_root());
    if profile == "release" {
        command.arg("--release");
    }
    // The examples, and the `chatbase` command the tests drive them with.
    for package in EXAMPLES.iter().chain(&["chatbase-cli"]) {
        command.args(["--package", package]);
    }
    let status = command
        .status()
        .map_err(|error| format!("cannot run cargo to build the examples: {error}"))?;
    if !status.success() {
        return Err(format!("building the examples failed: {status}"));
    }
    Ok(directory)
}

/// The workspace's root directory.
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// An example binary running: its standard output read line by line.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    address: String,
}

impl Running {
    /// Starts the example binary `name` on a free port (`PORT=0`), with
    /// `RUST_LOG=info`, `NO_COLOR=1` and `env` on top, and waits for its
    /// "listening on http://..." line.
    ///
    /// # Errors
    ///
    /// If it cannot be started, or ends or stays silent before it listens.
    pub async fn start(name: &str, env: &[(&str, &str)]) -> Result<Self, String> {
        let mut command = Command::new(binary(name));
        command
            .env_remove("CHATBASE_WEBHOOK_SECRET")
            .env_remove("CHATBASE_WEBHOOK_PREVIOUS_SECRET")
            .env_remove("CHATBASE_WEBHOOK_SECRETS")
            .env_remove("CHATBASE_WEBHOOK_SECRETS_FILE")
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        for (key, value) in env {
            command.env(key, value);
        }
        Self::spawn(command).await
    }

    /// Starts `command` (its standard output piped) and waits for its
    /// "listening on http://..." line.
    ///
    /// # Errors
    ///
    /// As [`Running::start`].
    pub async fn spawn(mut command: Command) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start {command:?}: {error}"))?;
        let stdout = child.stdout.take().ok_or("no standard output")?;
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Self {
            child,
            lines,
            seen: Vec::new(),
            address: String::new(),
        };
        let line = running.wait_for("listening on http://").await?;
        let address = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| format!("no address in {line:?}"))?;
        running.address = address.to_owned();
        Ok(running)
    }

    /// `http://<address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The address it listens on, `127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for a line containing `text` and returns it.
    ///
    /// # Errors
    ///
    /// If the output ends first, or nothing comes within [`PATIENCE`].
    pub async fn wait_for(&mut self, text: &str) -> Result<String, String> {
        loop {
            let line = match tokio::time::timeout(PATIENCE, self.lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => {
                    return Err(format!("output ended before {text:?}: {:#?}", self.seen));
                }
                Err(_) => return Err(format!("no {text:?} after {PATIENCE:?}: {:#?}", self.seen)),
            };
            self.seen.push(line.clone());
            if line.contains(text) {
                return Ok(line);
            }
        }
    }

    /// The lines read so far, after taking whatever is already waiting.
    pub fn lines(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Sends `signal` (`"TERM"`, `"INT"`, `"KILL"`) with `kill(1)`.
    ///
    /// # Errors
    ///
    /// If the process is gone or `kill` fails.
    pub fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.child.id().ok_or("the process has exited")?;
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .map_err(|error| error.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{signal} {pid}: {status}"))
        }
    }

    /// Waits for the process to exit, then takes the rest of its output.
    ///
    /// # Errors
    ///
    /// If it does not exit within [`PATIENCE`].
    pub async fn exit_status(&mut self) -> Result<ExitStatus, String> {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .map_err(|_| format!("still running after {PATIENCE:?}"))?
            .map_err(|error| error.to_string())?;
        while let Ok(Some(line)) = tokio::time::timeout(PATIENCE, self.lines.recv()).await {
            self.seen.push(line);
        }
        Ok(status)
    }
}
