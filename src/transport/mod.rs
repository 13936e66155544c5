//! How the engine reaches nodes: run a shell command on a node, GET a monitoring path on a
//! node. The real implementation is SSH (`crate::ssh`); `local` runs commands on this machine
//! for unit tests and `recording` wraps any transport to assert what was sent.

pub mod local;
pub mod recording;
pub mod retry;

use crate::inventory::Node;
use std::time::Duration;

/// A command to run on one node, already rendered and quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    /// Shell text, run by `sh -c` on the node.
    pub script: String,
    /// Hard bound on the command; enforced on both ends.
    pub timeout: Duration,
    /// Run through `sudo -n`.
    pub sudo: bool,
}

impl RemoteCommand {
    pub fn new(script: impl Into<String>, timeout: Duration) -> Self {
        RemoteCommand {
            script: script.into(),
            timeout,
            sudo: false,
        }
    }
}

/// Output of one stream, capped in memory; the hash covers everything the node sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// At most the cap, lossily decoded as UTF-8.
    pub text: String,
    /// Total bytes the node sent on this stream.
    pub total_bytes: u64,
    /// `text` holds less than `total_bytes`.
    pub truncated: bool,
    /// SHA-256 (hex) of the full stream.
    pub sha256: String,
}

impl Captured {
    pub fn from_bytes(bytes: &[u8], cap: usize) -> Self {
        let keep = bytes.len().min(cap);
        Captured {
            text: String::from_utf8_lossy(&bytes[..keep]).into_owned(),
            total_bytes: bytes.len() as u64,
            truncated: keep < bytes.len(),
            sha256: crate::inventory::sha256_hex(bytes),
        }
    }
}

/// Result of a command that ran (whatever its exit code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// None when killed by a signal or the timeout.
    pub exit_code: Option<i32>,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration: Duration,
    /// The command was stopped because it outlived its timeout.
    pub timed_out: bool,
    /// The answer never came: the connection died or our deadline passed while the command
    /// may still have been running. For a mutating command its outcome is IN DOUBT (the
    /// node's receipt says what really happened), never "failed".
    pub lost: bool,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// An HTTP answer recorded like a command's: the status as the exit code, the body as
    /// stdout (the journal keeps both the same way).
    pub fn from_http(status: u16, body: &str, duration: Duration) -> Self {
        ExecOutput {
            exit_code: Some(i32::from(status)),
            stdout: Captured::from_bytes(body.as_bytes(), body.len()),
            stderr: Captured::from_bytes(b"", 0),
            duration,
            timed_out: false,
            lost: false,
        }
    }
}

/// An HTTP answer from a node's monitoring port (any status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
    /// `direct` or `ssh` (tunnel), for evidence lines.
    pub via: &'static str,
}

/// Why a node could not be reached or a command could not be run. A command that ran and
/// failed is an `ExecOutput` with a non-zero exit code, not an error.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to {addr} timed out after {}", crate::duration::format(*.after))]
    ConnectTimeout { addr: String, after: Duration },
    #[error("host key of {host} is not in {known_hosts} (offered {offered}); refusing to connect. Verify the fingerprint out of band, then add it to known_hosts or pass --accept-new-host-keys")]
    HostKeyUnknown {
        host: String,
        known_hosts: String,
        offered: String,
    },
    #[error("HOST KEY CHANGED for {host}: known_hosts has {known}, the server offered {offered}; refusing to connect (possible man-in-the-middle, or the host was reinstalled). Fix {known_hosts} after verifying the new key")]
    HostKeyChanged {
        host: String,
        known_hosts: String,
        known: String,
        offered: String,
    },
    #[error("authentication failed for {user}@{host}: {reason}")]
    Auth {
        user: String,
        host: String,
        reason: String,
    },
    #[error("sudo needs a password on {host} (sudo -n refused); configure NOPASSWD for the service commands or run as a privileged user")]
    SudoPassword { host: String },
    /// The command was sent, then the connection was lost before its exit status came back:
    /// it may have run, in part or in full.
    #[error(
        "{node}: connection lost after the command was sent ({reason}); its outcome is unknown"
    )]
    Lost { node: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// Runs commands and monitoring requests on nodes. Blocking: the engine calls it from worker
/// threads (`tokio::task::spawn_blocking`), one node per call, many nodes in parallel.
pub trait Transport: Send + Sync {
    /// Runs `cmd` on `node`. Must return within `cmd.timeout` plus the connect timeout.
    fn exec(&self, node: &Node, cmd: &RemoteCommand) -> Result<ExecOutput, TransportError>;

    /// GETs `path_and_query` (e.g. `/jsz?leader-only=true`) from the node's monitoring port.
    fn http_get(
        &self,
        node: &Node,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError>;

    /// Short name for reports (`ssh`, `local`).
    fn name(&self) -> &'static str;

    /// Opens a dedicated connection to `node` whose streams reach TCP `port` as seen from
    /// the node (the system account behind a bastion). `None`: this transport cannot.
    fn tunnel(&self, _node: &Node, _port: u16) -> Option<Result<TunnelOpener, TransportError>> {
        None
    }
}

/// Opens one stream to the tunnelled port per call (run on the forwarder's thread, see
/// [`crate::natsys::Forwarder`]); owns its connection, which closes when it is dropped.
pub type TunnelOpener = Box<dyn FnMut() -> std::io::Result<ssh2::Channel> + Send>;

/// Output cap kept in memory per stream (the hash covers all of it).
pub const OUTPUT_CAP: usize = 64 * 1024;

/// An error and its causes on one line (reqwest hides the useful part in `source()`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// One HTTP client per connect timeout, shared by every request of the process. Building a
/// client loads the system certificate store (~0.1 s of CPU): per request, that dominated a
/// whole `diagnose` and starved the SSH handshakes running beside it.
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::blocking::Client, TransportError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CLIENTS: OnceLock<Mutex<HashMap<u128, reqwest::blocking::Client>>> = OnceLock::new();
    let key = connect_timeout.as_millis();
    let map = CLIENTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = guard.get(&key) {
        return Ok(c.clone());
    }
    let c = reqwest::blocking::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| TransportError::Other(error_chain(&e)))?;
    guard.insert(key, c.clone());
    Ok(c)
}
