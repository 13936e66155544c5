//! `capture`: one tar.gz of everything `status`/`diagnose` read, for a second opinion and the
//! post-incident review; and reading one back for `status --from` / `diagnose --from`.

use super::{journal_dir, load_inventory};
use crate::capture::{self, Capture, Meta};
use crate::cli::{CaptureArgs, GlobalOpts};
use crate::error::{Error, Result};
use crate::inventory::sha256_hex;
use crate::journal::{self, Event, JournalWriter};
use crate::nats::{ClusterFacts, Thresholds};
use crate::ssh::SshTransport;
use crate::transport::{ExecOutput, HttpResponse, RemoteCommand, Transport, TransportError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub fn capture(g: &GlobalOpts, args: &CaptureArgs) -> Result<i32> {
    let inv = load_inventory(g)?;
    // Check the incident before touching the cluster: a typo should not cost a gather.
    let incident = match &args.incident {
        Some(id) => Some(journal::resolve(&journal_dir(g), id)?),
        None => None,
    };
    let inventory_text = std::fs::read_to_string(&inv.source)
        .map_err(|e| Error::Other(format!("reading {}: {e}", inv.source.display())))?;
    let started = chrono::Utc::now();
    let path = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "nats-rescue-capture-{}-{}.tar.gz",
            file_safe(&inv.cluster),
            started.format("%Y%m%dT%H%M%SZ")
        ))
    });
    if path.exists() {
        return Err(exists(&path));
    }
    let ssh = Arc::new(SshTransport::new(g.accept_new_host_keys));
    let clock = std::time::Instant::now();
    let obs = crate::nats::probe::observe(
        &*super::run::retrying(&ssh),
        &inv,
        None,
        crate::nats::probe::DEFAULT_TIMEOUT,
    );
    for k in ssh.take_accepted_host_keys() {
        eprintln!(
            "nats-rescue: accepted new host key for {} ({}): {}",
            k.node, k.host, k.fingerprint
        );
    }
    let meta = Meta {
        captured_at: started,
        gather_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        operator: journal::current_operator(),
    };
    let bytes = capture::write(&inv, &inventory_text, &obs, &meta)
        .map_err(|e| Error::Other(format!("capture: {e}")))?;
    write_new(&path, &bytes)?;
    let sha = sha256_hex(&bytes);
    let shown = std::fs::canonicalize(&path).unwrap_or(path.clone());
    let attached = match incident {
        Some(p) => Some(attach(&p, &shown, &sha, bytes.len() as u64, &meta)?),
        None => None,
    };
    if g.json {
        crate::ui::out_json(&serde_json::json!({
            "path": shown.display().to_string(),
            "sha256": sha,
            "size": bytes.len(),
            "captured_at": meta.captured_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "nodes": obs.nodes.len(),
            "incident": attached,
        }));
    } else {
        crate::ui::out(&format!(
            "capture: {}\nsha256: {sha}\n{} nodes, {} bytes; read it with `nats-rescue diagnose --from {}`\n",
            shown.display(),
            obs.nodes.len(),
            bytes.len(),
            shown.display()
        ));
        if let Some(id) = &attached {
            crate::ui::out(&format!("attached to incident {id} (journaled)\n"));
        }
    }
    Ok(0)
}

fn exists(path: &Path) -> Error {
    Error::Usage(format!(
        "{} exists: a capture is never overwritten (choose another -o)",
        path.display()
    ))
}

/// Never overwrite: a capture is evidence.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => exists(path),
            _ => Error::Other(format!("creating {}: {e}", path.display())),
        })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Other(format!("writing {}: {e}", path.display())))
}

fn attach(
    journal_file: &Path,
    capture: &Path,
    sha: &str,
    size: u64,
    meta: &Meta,
) -> Result<String> {
    let dir = journal_file.parent().unwrap_or(Path::new("."));
    let id = journal_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut w, _) = JournalWriter::open_existing(dir, &id)?;
    w.append(Event::CaptureAttached {
        path: capture.display().to_string(),
        sha256: sha.to_string(),
        size,
        captured_at: meta
            .captured_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        operator: meta.operator.clone(),
    })?;
    Ok(w.incident().to_string())
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A capture opened for `--from`: where it is, its hash, and what it holds.
pub struct Offline {
    pub path: PathBuf,
    pub sha256: String,
    pub capture: Capture,
}

impl Offline {
    /// Reads and verifies `path` (exit 2 when it is not a capture or was altered).
    pub fn open(path: &Path) -> Result<Offline> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Usage(format!("cannot read capture {}: {e}", path.display())))?;
        let capture = capture::read(&path.display().to_string(), &bytes)
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok(Offline {
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            capture,
        })
    }

    /// The facts, computed exactly as a live gather computes them.
    pub fn facts(&self, th: &Thresholds) -> ClusterFacts {
        crate::nats::observe::facts_from(&self.capture.inventory, &self.capture.observations, th)
    }

    /// `OFFLINE: …` — what the output is made of.
    pub fn banner(&self) -> String {
        let m = &self.capture.manifest;
        format!(
            "OFFLINE: capture {} (sha256 {}) of cluster {}, captured {}{}\n",
            self.path.display(),
            &self.sha256[..16.min(self.sha256.len())],
            m.cluster,
            m.captured_at,
            age(&m.captured_at)
                .map(|a| format!(", {a}"))
                .unwrap_or_default()
        )
    }

    pub fn json(&self) -> serde_json::Value {
        let m = &self.capture.manifest;
        serde_json::json!({
            "capture": self.path.display().to_string(),
            "sha256": self.sha256,
            "captured_at": m.captured_at,
            "cluster": m.cluster,
            "tool_version": m.tool_version,
        })
    }
}

/// `37 min ago`, `2 h 5 min ago`, `3 d ago`.
fn age(captured_at: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(captured_at).ok()?;
    let s = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    Some(match s {
        ..=-1 => "in the future (clock skew?)".into(),
        0..=59 => "less than a minute ago".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h {} min ago", s / 3600, (s % 3600) / 60),
        _ => format!("{} d ago", s / 86_400),
    })
}

/// What the runbooks' diagnose steps are given offline: nothing can be sent to a node.
pub struct OfflineTransport;

impl Transport for OfflineTransport {
    fn exec(
        &self,
        node: &crate::inventory::Node,
        _: &RemoteCommand,
    ) -> Result<ExecOutput, TransportError> {
        Err(TransportError::Other(format!(
            "offline (reading a capture): nothing is sent to {}",
            node.name
        )))
    }

    fn http_get(
        &self,
        node: &crate::inventory::Node,
        _: &str,
        _: Duration,
    ) -> Result<HttpResponse, TransportError> {
        Err(TransportError::Other(format!(
            "offline (reading a capture): nothing is sent to {}",
            node.name
        )))
    }

    fn name(&self) -> &'static str {
        "offline"
    }
}
