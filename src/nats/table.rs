//! The `status` table and the `status` / `diagnose` JSON (SPEC §1).

use super::facts::{ClusterFacts, NodeFacts};
use super::signals::Signal;
use serde::Serialize;
use serde_json::{json, Value};

/// One `diagnose` finding (SPEC §1 `findings[]`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Finding {
    pub cause: String,
    pub runbook: String,
    pub confidence: String,
    pub summary: String,
    pub evidence: Vec<String>,
}

impl From<&Signal> for Finding {
    fn from(s: &Signal) -> Finding {
        Finding {
            cause: s.cause.clone(),
            // Cause ids are also the built-in runbook ids.
            runbook: s.cause.clone(),
            confidence: s.confidence.clone(),
            summary: s.summary.clone(),
            evidence: s.evidence.clone(),
        }
    }
}

/// Findings straight from the built-in signals, most likely first.
pub fn findings_from_signals(signals: &[Signal]) -> Vec<Finding> {
    signals.iter().map(Finding::from).collect()
}

fn node_json(n: &NodeFacts) -> Value {
    json!({
        "name": n.name,
        "ssh": n.ssh,
        "service": n.service,
        "monitor": n.monitor,
        "server_name": n.server_name,
        "meta_leader": n.meta_leader,
        "raft": {
            "state": n.raft.state,
            "term": n.raft.term,
            "index": n.raft.index,
            "source": n.raft.source,
        },
        "route_peers": n.route_peers,
        "healthz": n.healthz.text,
        // additions (SPEC allows extra fields)
        "process": n.process,
        "healthz_status": n.healthz.status,
        "version": n.version,
        "num_routes": n.num_routes,
        "errors": n.errors,
    })
}

/// `status --json`: the per-node view plus the verdict; no findings.
pub fn status_json(f: &ClusterFacts) -> Value {
    json!({
        "cluster": f.cluster,
        "healthy": f.healthy,
        "meta_leader": f.leader,
        "has_leader": f.has_leader,
        "verdict": verdict(f),
        "nodes": f.node_list.iter().map(node_json).collect::<Vec<_>>(),
        "up": f.up,
        "down": f.down,
        "unreachable": f.unreachable,
        "frozen": f.frozen,
        "not_probed": f.not_probed,
    })
}

/// `diagnose --json` exactly as SPEC §1 (plus a few added fields).
pub fn diagnose_json(f: &ClusterFacts, findings: &[Finding]) -> Value {
    json!({
        "cluster": f.cluster,
        "healthy": f.healthy,
        "meta_leader": f.leader,
        "nodes": f.node_list.iter().map(node_json).collect::<Vec<_>>(),
        "findings": findings.iter().map(|x| json!({
            "cause": x.cause,
            "runbook": x.runbook,
            "confidence": x.confidence,
            "summary": x.summary,
            "evidence": x.evidence,
        })).collect::<Vec<_>>(),
    })
}

/// One line: healthy, or what is wrong and the most likely cause.
pub fn verdict(f: &ClusterFacts) -> String {
    if f.healthy {
        return format!(
            "HEALTHY: meta leader {} ({} of {} agree), /healthz 200 on all {} servers",
            f.leader.clone().unwrap_or_default(),
            f.leader_agreement.count,
            f.size,
            f.size
        );
    }
    let head = if f.has_leader {
        format!(
            "DEGRADED: meta leader {}, but not every server is healthy",
            f.leader.clone().unwrap_or_default()
        )
    } else {
        format!(
            "NO META LEADER: {} of {} servers up, quorum needs {}",
            f.up.len(),
            f.size,
            f.quorum
        )
    };
    let head = if f.not_probed.is_empty() {
        head
    } else {
        format!("{head} (not probed: {})", f.not_probed.join(", "))
    };
    match f.signals.first() {
        Some(s) => format!(
            "{head}; likely {} ({}): {}",
            s.cause, s.confidence, s.summary
        ),
        None => head,
    }
}

fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn short_status(s: &str) -> String {
    if s == "ok" {
        "ok".into()
    } else if s.starts_with("error") {
        let m = s.to_ascii_lowercase();
        if m.contains("refused") {
            "refused".into()
        } else if m.contains("timed out") || m.contains("timeout") {
            "timeout".into()
        } else if m.contains("host key") {
            "hostkey".into()
        } else if m.contains("auth") {
            "auth".into()
        } else {
            "error".into()
        }
    } else if s == "not probed" {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Short forms of the common healthz texts, for the table only.
fn short_healthz(t: &str) -> String {
    const MAP: [(&str, &str); 6] = [
        (
            "has not established contact with a meta leader",
            "no meta leader contact",
        ),
        ("is still recovering meta layer", "recovering meta layer"),
        (
            "is not current with the meta leader",
            "not current w/ leader",
        ),
        ("meta layer is not running", "meta layer not running"),
        ("is not current", "asset not current"),
        ("group node missing", "group node missing"),
    ];
    for (k, v) in MAP {
        if t.contains(k) {
            return v.to_string();
        }
    }
    t.trim_start_matches("JetStream ").to_string()
}

/// The `status` table: at most 100 columns, then a verdict line.
pub fn render_status(f: &ClusterFacts, color: bool) -> String {
    let style = |s: String, good: Option<bool>| -> String {
        if !color {
            return s;
        }
        match good {
            Some(true) => console::style(s).green().to_string(),
            Some(false) => console::style(s).red().to_string(),
            None => console::style(s).yellow().to_string(),
        }
    };
    // widths: node 8, ssh 7, service 8, monitor 7, server 7, leader 7, raft 20, routes 6, healthz rest
    let widths = [8usize, 7, 8, 7, 7, 7, 20, 6];
    let healthz_w = 100 - widths.iter().sum::<usize>() - widths.len();
    let header = [
        "NODE",
        "SSH",
        "SERVICE",
        "MONITOR",
        "SERVER",
        "LEADER",
        "RAFT STATE/TERM/INDEX",
        "ROUTES",
    ];
    let mut out = String::new();
    for (h, w) in header.iter().zip(widths) {
        out.push_str(&format!("{:<w$} ", h, w = w));
    }
    out.push_str("HEALTHZ\n");
    let expected = f.size.saturating_sub(1);
    for n in &f.node_list {
        let raft = if n.raft.source.is_none() {
            "-".to_string()
        } else {
            let mut s = n.raft.state.clone().unwrap_or_else(|| {
                if n.is_up() {
                    "?".into()
                } else {
                    "-".into()
                }
            });
            s.push_str(&format!(
                " t{} i{}{}",
                n.raft.term.map_or("?".into(), |t| t.to_string()),
                n.raft.index.map_or("?".into(), |t| t.to_string()),
                match n.raft.source.as_deref() {
                    Some("disk") => " disk",
                    _ => "",
                }
            ));
            s
        };
        let routes = if n.monitor == "ok" {
            format!("{}/{}", n.route_peers.len(), expected)
        } else {
            "-".into()
        };
        let healthz = match (n.healthz.status, &n.healthz.text) {
            (Some(c), Some(t)) => format!("{c} {}", short_healthz(t)),
            _ => "-".into(),
        };
        let cells: [(String, Option<bool>); 8] = [
            (n.name.clone(), None),
            (short_status(&n.ssh), Some(n.ssh == "ok")),
            (n.service.clone(), Some(n.service == "active")),
            (short_status(&n.monitor), Some(n.monitor == "ok")),
            (n.server_name.clone().unwrap_or_else(|| "-".into()), None),
            (
                n.meta_leader.clone().unwrap_or_else(|| "none".into()),
                Some(n.meta_leader.is_some()),
            ),
            (raft, None),
            (
                routes,
                Some(n.monitor == "ok" && n.route_peers.len() >= expected),
            ),
        ];
        for (i, (text, good)) in cells.into_iter().enumerate() {
            let w = widths[i];
            let padded = format!("{:<w$}", cut(&text, w), w = w);
            let colored = if i == 0 || i == 4 || i == 6 {
                padded
            } else {
                style(padded, good)
            };
            out.push_str(&colored);
            out.push(' ');
        }
        let hz = cut(&healthz, healthz_w);
        out.push_str(&style(hz, n.healthz.status.map(|c| c == 200)));
        out.push('\n');
    }
    let v = verdict(f);
    let line = cut(&v, 100);
    out.push_str(&style(line, Some(f.healthy)));
    out.push('\n');
    out
}
