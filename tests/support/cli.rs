//! A fluent builder around the real binary: `Cli::new().args([...]).stdin("y").run()`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nats-rescue"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Cli {
    cmd: Command,
    stdin: Option<String>,
}

/// What the binary did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    pub fn new() -> Self {
        let mut cmd = Command::new(bin());
        cmd.current_dir(repo());
        // Never read the developer's environment by accident.
        cmd.env_remove("NATS_RESCUE_INVENTORY")
            .env_remove("NATS_RESCUE_JOURNAL_DIR")
            .env("NO_COLOR", "1");
        Cli { cmd, stdin: None }
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }
    pub fn arg_path(mut self, p: &Path) -> Self {
        self.cmd.arg(p);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    pub fn journal_dir(self, dir: &Path) -> Self {
        self.env("NATS_RESCUE_JOURNAL_DIR", dir)
    }
    pub fn run(mut self) -> Ran {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn nats-rescue");
        if let Some(mut si) = child.stdin.take() {
            if let Some(s) = &self.stdin {
                let _ = si.write_all(s.as_bytes());
            }
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("wait nats-rescue");
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

impl Ran {
    /// Asserts the exit code, printing both streams when it differs.
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n--- stderr\n{}\n--- stdout\n{}",
            self.stderr,
            self.stdout
        );
        self
    }
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}
