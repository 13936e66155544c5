//! A capture: one tar.gz of everything `status`/`diagnose` read from a cluster (every node's
//! monitoring answers, probe output, configs — secrets redacted before they are written — the
//! system account's view and the inventory), with a manifest of SHA-256s, so that the same
//! facts and findings can be computed later, elsewhere, offline (`--from`).
//!
//! Members: `manifest.json` (first), `inventory.yaml`, `nodes/<node>/observation.json` (what
//! was asked and how it ended) beside `nodes/<node>/<endpoint>.json` bodies and
//! `probe.txt`/`probe.stderr.txt`, and `system/observation.json` + `system/<server>/…`.

pub mod redact;

use crate::inventory::{sha256_hex, Inventory};
use crate::nats::facts::{HttpBodies, HttpResult};
use crate::nats::observe::{NodeObservation, Observations, ProbeObservation, ProbeRun};
use crate::nats::sysfacts::SystemView;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;

/// The `format` a reader accepts.
pub const FORMAT: &str = "nats-rescue-capture/1";
/// Bound on what `--from` reads (decompressed), against a hostile or broken archive.
const MAX_TOTAL_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("capture {path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// One member as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub tool_version: String,
    /// When the gather started (UTC, RFC 3339).
    pub captured_at: String,
    /// How long the gather took.
    pub gather_ms: u64,
    /// `user@host` that took it.
    pub operator: String,
    pub cluster: String,
    /// The inventory file it was taken with (path and SHA-256 of its bytes, as a journal's
    /// `incident_opened` names them); `inventory.yaml` is its redacted copy.
    pub inventory: String,
    pub inventory_sha256: String,
    /// Server name → version, as `/varz` said (for a glance without unpacking).
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// Every other member, with its SHA-256 and size.
    pub members: Vec<MemberEntry>,
}

/// A capture read back and verified.
#[derive(Debug, Clone)]
pub struct Capture {
    pub manifest: Manifest,
    /// The redacted inventory as loaded.
    pub inventory: Inventory,
    pub observations: Observations,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HttpEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// Member holding the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum ProbeEntry {
    Ran {
        exit_code: Option<i32>,
        timed_out: bool,
        timeout_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sudo_refused: Option<String>,
        stdout: String,
        stderr: String,
    },
    NotRun {
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unmanageable: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeEntry {
    name: String,
    http: BTreeMap<String, HttpEntry>,
    probe: ProbeEntry,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SystemEntry {
    via: String,
    errors: Vec<String>,
    servers: BTreeMap<String, BTreeMap<String, HttpEntry>>,
}

const ENDPOINTS: &[&str] = &["varz", "jsz", "raftz", "routez", "healthz"];

fn slot<'a>(b: &'a HttpBodies, name: &str) -> &'a Option<HttpResult> {
    match name {
        "varz" => &b.varz,
        "jsz" => &b.jsz,
        "raftz" => &b.raftz,
        "routez" => &b.routez,
        _ => &b.healthz,
    }
}

fn slot_mut<'a>(b: &'a mut HttpBodies, name: &str) -> &'a mut Option<HttpResult> {
    match name {
        "varz" => &mut b.varz,
        "jsz" => &mut b.jsz,
        "raftz" => &mut b.raftz,
        "routez" => &mut b.routez,
        _ => &mut b.healthz,
    }
}

/// A path segment from a node or server name: what is not `[A-Za-z0-9._-]` becomes `_`.
fn segment(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "_".into()
    } else {
        s
    }
}

/// Members being written, each text already redacted and scrubbed.
struct Writer {
    members: Vec<(String, Vec<u8>)>,
    secrets: Vec<String>,
}

impl Writer {
    fn add(&mut self, path: String, text: &str) -> String {
        let text = redact::scrub(text, &self.secrets);
        self.members.push((path.clone(), text.into_bytes()));
        path
    }

    fn http(&mut self, dir: &str, b: &HttpBodies) -> BTreeMap<String, HttpEntry> {
        let mut out = BTreeMap::new();
        for name in ENDPOINTS {
            let e = match slot(b, name) {
                None => continue,
                Some(Ok((status, body))) => {
                    let ext = if serde_json::from_str::<serde_json::Value>(body).is_ok() {
                        "json"
                    } else {
                        "txt"
                    };
                    HttpEntry {
                        status: Some(*status),
                        body: Some(
                            self.add(format!("{dir}/{name}.{ext}"), &redact::redact_body(body)),
                        ),
                        error: None,
                    }
                }
                Some(Err(e)) => HttpEntry {
                    error: Some(redact::redact_text(e)),
                    ..Default::default()
                },
            };
            out.insert(name.to_string(), e);
        }
        out
    }

    fn json<T: Serialize>(&mut self, path: String, v: &T) {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        self.add(path, &text);
    }
}

/// Everything about one capture but its observations.
pub struct Meta {
    pub captured_at: chrono::DateTime<chrono::Utc>,
    pub gather_ms: u64,
    pub operator: String,
}

/// The archive's bytes (tar.gz). Secrets are removed from every member before it is added.
pub fn write(
    inv: &Inventory,
    inventory_text: &str,
    obs: &Observations,
    meta: &Meta,
) -> Result<Vec<u8>, String> {
    let mut w = Writer {
        members: Vec::new(),
        secrets: redact::known_secrets(inv),
    };
    w.add(
        "inventory.yaml".into(),
        &redact::portable_inventory(inventory_text, inv)?,
    );
    let mut versions = BTreeMap::new();
    for o in &obs.nodes {
        let dir = format!("nodes/{}", segment(&o.name));
        let http = w.http(&dir, &o.http);
        let probe = match &o.probe {
            ProbeObservation::Ran { run, sudo_refused } => ProbeEntry::Ran {
                exit_code: run.exit_code,
                timed_out: run.timed_out,
                timeout_ms: run.timeout_ms,
                sudo_refused: sudo_refused.clone(),
                stdout: w.add(
                    format!("{dir}/probe.txt"),
                    &redact::redact_probe_stdout(&run.stdout),
                ),
                stderr: w.add(
                    format!("{dir}/probe.stderr.txt"),
                    &redact::redact_text(&crate::natsconf::redact(&run.stderr)),
                ),
            },
            ProbeObservation::NotRun {
                error,
                unmanageable,
            } => ProbeEntry::NotRun {
                error: redact::redact_text(error),
                unmanageable: unmanageable.as_deref().map(redact::redact_text),
            },
        };
        if let Some(Ok((200, body))) = &o.http.varz {
            if let Ok(v) = crate::nats::monitor::parse::<crate::nats::monitor::Varz>("/varz", body)
            {
                if let Some(ver) = v.version {
                    versions.insert(o.name.clone(), ver);
                }
            }
        }
        let entry = NodeEntry {
            name: o.name.clone(),
            http,
            probe,
        };
        w.json(format!("{dir}/observation.json"), &entry);
    }
    if let Some(sys) = &obs.system {
        let mut servers = BTreeMap::new();
        for (name, b) in &sys.by_server {
            let http = w.http(&format!("system/{}", segment(name)), b);
            servers.insert(name.clone(), http);
        }
        let entry = SystemEntry {
            via: sys.via.clone(),
            errors: sys.errors.iter().map(|e| redact::redact_text(e)).collect(),
            servers,
        };
        w.json("system/observation.json".into(), &entry);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        captured_at: meta
            .captured_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        gather_ms: meta.gather_ms,
        operator: meta.operator.clone(),
        cluster: inv.cluster.clone(),
        inventory: inv.source.display().to_string(),
        inventory_sha256: inv.sha256.clone(),
        versions,
        members: w
            .members
            .iter()
            .map(|(p, b)| MemberEntry {
                path: p.clone(),
                sha256: sha256_hex(b),
                size: b.len() as u64,
            })
            .collect(),
    };
    let manifest_text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mtime = u64::try_from(meta.captured_at.timestamp()).unwrap_or(0);
    let mut put = |path: &str, bytes: &[u8]| -> Result<(), String> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, bytes)
            .map_err(|e| format!("writing {path}: {e}"))
    };
    put("manifest.json", manifest_text.as_bytes())?;
    for (p, b) in &w.members {
        put(p, b)?;
    }
    let gz = tar.into_inner().map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

/// Unpacks `bytes`, checks every member against the manifest (none missing, none extra,
/// every SHA-256 and size right) and rebuilds the observations. `path` names the archive in
/// errors.
pub fn read(path: &str, bytes: &[u8]) -> Result<Capture, CaptureError> {
    let bad = |reason: String| CaptureError::Invalid {
        path: path.to_string(),
        reason,
    };
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut total = 0u64;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let entries = ar
        .entries()
        .map_err(|e| bad(format!("not a tar.gz capture: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| bad(format!("not a tar.gz capture: {e}")))?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e
            .path()
            .map_err(|e| bad(format!("bad member name: {e}")))?
            .to_string_lossy()
            .into_owned();
        total += e.size();
        if total > MAX_TOTAL_BYTES {
            return Err(bad("more than 1 GiB uncompressed: refused".into()));
        }
        let mut b = Vec::new();
        e.read_to_end(&mut b)
            .map_err(|err| bad(format!("reading {name}: {err}")))?;
        if members.insert(name.clone(), b).is_some() {
            return Err(bad(format!("member {name} appears twice")));
        }
    }
    let manifest: Manifest = members
        .remove("manifest.json")
        .ok_or_else(|| bad("no manifest.json: not a nats-rescue capture".into()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| bad(format!("manifest.json: {e}"))))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format {:?}, this nats-rescue reads {FORMAT:?}",
            manifest.format
        )));
    }
    for m in &manifest.members {
        let b = members.get(&m.path).ok_or_else(|| {
            bad(format!(
                "member {} listed in the manifest is missing: the archive was altered",
                m.path
            ))
        })?;
        let sha = sha256_hex(b);
        if sha != m.sha256 || b.len() as u64 != m.size {
            return Err(bad(format!(
                "member {} does not match the manifest (sha256 {sha}, manifest says {}): the archive was altered",
                m.path, m.sha256
            )));
        }
    }
    if let Some(extra) = members
        .keys()
        .find(|k| !manifest.members.iter().any(|m| &m.path == *k))
    {
        return Err(bad(format!(
            "member {extra} is not in the manifest: the archive was altered"
        )));
    }
    let text = |p: &str| -> Result<String, CaptureError> {
        members
            .get(p)
            .ok_or_else(|| bad(format!("member {p} is missing")))
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let json = |p: &str| -> Result<serde_json::Value, CaptureError> {
        serde_json::from_str(&text(p)?).map_err(|e| bad(format!("{p}: {e}")))
    };
    let http = |m: &BTreeMap<String, HttpEntry>| -> Result<HttpBodies, CaptureError> {
        let mut b = HttpBodies::default();
        for (name, e) in m {
            if !ENDPOINTS.contains(&name.as_str()) {
                return Err(bad(format!("unknown endpoint {name:?}")));
            }
            let r: HttpResult = match (e.status, &e.body, &e.error) {
                (Some(s), Some(p), None) => Ok((s, text(p)?)),
                (None, None, Some(err)) => Err(err.clone()),
                _ => {
                    return Err(bad(format!(
                        "endpoint {name}: status+body or error expected"
                    )))
                }
            };
            *slot_mut(&mut b, name) = Some(r);
        }
        Ok(b)
    };
    let inventory_text = text("inventory.yaml")?;
    let inventory = Inventory::parse(std::path::Path::new("inventory.yaml"), &inventory_text)
        .map_err(|e| bad(format!("inventory.yaml: {e}")))?;
    let mut obs = Observations::default();
    for n in &inventory.nodes {
        let p = format!("nodes/{}/observation.json", segment(&n.name));
        let entry: NodeEntry =
            serde_json::from_value(json(&p)?).map_err(|e| bad(format!("{p}: {e}")))?;
        let probe = match entry.probe {
            ProbeEntry::Ran {
                exit_code,
                timed_out,
                timeout_ms,
                sudo_refused,
                stdout,
                stderr,
            } => ProbeObservation::Ran {
                run: ProbeRun {
                    stdout: text(&stdout)?,
                    stderr: text(&stderr)?,
                    exit_code,
                    timed_out,
                    timeout_ms,
                },
                sudo_refused,
            },
            ProbeEntry::NotRun {
                error,
                unmanageable,
            } => ProbeObservation::NotRun {
                error,
                unmanageable,
            },
        };
        obs.nodes.push(NodeObservation {
            name: entry.name,
            http: http(&entry.http)?,
            probe,
        });
    }
    if members.contains_key("system/observation.json") {
        let p = "system/observation.json";
        let e: SystemEntry =
            serde_json::from_value(json(p)?).map_err(|e| bad(format!("{p}: {e}")))?;
        let mut view = SystemView {
            via: e.via,
            errors: e.errors,
            ..Default::default()
        };
        for (name, m) in &e.servers {
            view.by_server.insert(name.clone(), http(m)?);
        }
        obs.system = Some(view);
    }
    Ok(Capture {
        manifest,
        inventory,
        observations: obs,
    })
}

#[cfg(test)]
mod tests;
