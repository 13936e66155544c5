//! The `status` table, `diagnose`'s findings, and the `status` / `diagnose` JSON (SPEC §1).

use crate::engine::Finding;
use crate::nats::{ClusterFacts, NodeFacts};
use serde_json::{json, Value};

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
        "uptime_s": n.uptime_s,
        // `http` (its monitoring port) | `system` (the system account) | null
        "source": n.source,
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
        "unmanageable": f.unmanageable,
    })
}

/// `diagnose --json` exactly as SPEC §1 (plus a few added fields).
pub fn diagnose_json(f: &ClusterFacts, findings: &[Finding]) -> Value {
    json!({
        "cluster": f.cluster,
        "healthy": f.healthy,
        "meta_leader": f.leader,
        "nodes": f.node_list.iter().map(node_json).collect::<Vec<_>>(),
        "groups": f.groups,
        "unhealthy_groups": f.unhealthy_groups,
        "findings": findings.iter().map(|x| json!({
            "cause": x.cause,
            "runbook": if x.runbook.is_empty() { Value::Null } else { json!(x.runbook) },
            "confidence": x.confidence,
            "score": x.score,
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
        match f.meta_size {
            Some(m) if m > f.size && !f.stale_peers.is_empty() => format!(
                "NO META LEADER: {} of {} servers up; the meta group counts {m} peers ({} not \
                 in the inventory), quorum needs {}",
                f.up.len(),
                f.size,
                f.stale_peers
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                f.meta_quorum
            ),
            _ => format!(
                "NO META LEADER: {} of {} servers up, quorum needs {}",
                f.up.len(),
                f.size,
                f.quorum
            ),
        }
    };
    let head = if f.not_probed.is_empty() {
        head
    } else {
        format!("{head} (not probed: {})", f.not_probed.join(", "))
    };
    let head = match f.signals.first() {
        Some(s) => format!(
            "{head}; likely {} ({}): {}",
            s.cause, s.confidence, s.summary
        ),
        None => head,
    };
    // A node we cannot manage is a problem of its own, even when NATS is fine: say it first.
    if f.unmanageable.is_empty() {
        return head;
    }
    // Nodes with the same reason (one sudoers file for all, one bastion) share one line.
    let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
    for u in &f.unmanageable {
        match groups.iter_mut().find(|(_, r)| *r == u.reason) {
            Some((nodes, _)) => nodes.push(&u.node),
            None => groups.push((vec![&u.node], &u.reason)),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(nodes, reason)| format!("{}: {reason}", nodes.join(", ")))
        .collect();
    format!("CANNOT MANAGE {}. {head}", parts.join(". CANNOT MANAGE "))
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

/// The `status` table: fits 80 columns; the long texts (healthz errors, SSH and monitoring
/// errors, a server name that differs from the inventory) follow as notes under it, then
/// the verdict, wrapped.
pub fn render_status(f: &ClusterFacts, color: bool, width: usize) -> String {
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
    let widths = [6usize, 7, 8, 8, 7, 23, 6];
    let header = [
        "NODE",
        "SSH",
        "SERVICE",
        "MONITOR",
        "LEADER",
        "RAFT STATE TERM INDEX",
        "ROUTES",
    ];
    let mut out = String::new();
    for (h, w) in header.iter().zip(widths) {
        out.push_str(&format!("{h:<w$} "));
    }
    out.push_str("HEALTHZ\n");
    let expected = f.size.saturating_sub(1);
    let mut notes = Vec::new();
    for n in &f.node_list {
        let raft = if n.raft.source.is_none() || (n.raft.term.is_none() && n.raft.index.is_none()) {
            n.raft.state.clone().unwrap_or_else(|| "-".into())
        } else {
            let state = n.raft.state.clone().unwrap_or_else(|| "-".into());
            let num = |v: Option<u64>| v.map_or("-".into(), |t| t.to_string());
            let src = match n.raft.source.as_deref() {
                Some("disk") => " (disk)",
                _ => "",
            };
            format!("{state} t{} i{}{src}", num(n.raft.term), num(n.raft.index))
        };
        let routes = if n.monitor == "ok" {
            format!("{}/{}", n.route_peers.len(), expected)
        } else {
            "-".into()
        };
        let healthz = n.healthz.status.map_or("-".to_string(), |c| c.to_string());
        let cells: [(String, Option<bool>); 7] = [
            (n.name.clone(), None),
            (short_status(&n.ssh), Some(n.ssh == "ok")),
            (n.service.clone(), Some(n.service == "active")),
            (short_status(&n.monitor), Some(n.monitor == "ok")),
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
            let colored = if i == 0 || i == 5 {
                padded
            } else {
                style(padded, good)
            };
            out.push_str(&colored);
            out.push(' ');
        }
        out.push_str(&style(healthz, n.healthz.status.map(|c| c == 200)));
        out.push('\n');
        if n.ssh != "ok" && n.ssh != "not probed" {
            notes.push(format!(
                "{}: ssh {}",
                n.name,
                n.ssh.trim_start_matches("error: ")
            ));
        }
        if n.monitor != "ok" && n.monitor != "not probed" && n.service != "inactive" {
            notes.push(format!(
                "{}: monitoring {}",
                n.name,
                n.monitor.trim_start_matches("error: ")
            ));
        }
        if let (Some(c), Some(t)) = (n.healthz.status, &n.healthz.text) {
            if c != 200 {
                notes.push(format!("{}: /healthz {c}: {t}", n.name));
            }
        }
        if let Some(sn) = &n.server_name {
            if sn != &n.name {
                notes.push(format!(
                    "{}: server_name is {sn} (must equal the inventory name)",
                    n.name
                ));
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&wrap(&note, width, "  "));
        }
    }
    out.push('\n');
    out.push_str(&style(
        wrap(&verdict(f), width, "  ").trim_end().to_string(),
        Some(f.healthy),
    ));
    out.push('\n');
    out
}

/// Wraps `text` at `width` columns on spaces (words are never broken); continuation lines
/// start with `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let opts = textwrap::Options::new(width)
        .subsequent_indent(indent)
        .break_words(false)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit);
    let mut out = textwrap::wrap(text, opts).join("\n");
    out.push('\n');
    out
}

/// The findings part of `diagnose`'s human output, most likely first, each with its evidence
/// and the runbook to run next.
pub fn render_findings(healthy: bool, found: &[Finding]) -> String {
    let mut out = String::new();
    if found.is_empty() {
        if healthy {
            out.push_str("No problems found.\n");
        } else {
            out.push_str("The cluster is not healthy, but no runbook recognises the cause. Evidence per node is\n");
            out.push_str("above; re-run in a few seconds (elections take ~5-20 s), or read the servers' logs.\n");
        }
        return out;
    }
    out.push_str("Findings, most likely first:\n");
    for (i, f) in found.iter().enumerate() {
        out.push_str(&format!(
            "\n{}. [{}] {} — {}\n",
            i + 1,
            f.confidence.as_str(),
            f.cause,
            f.summary
        ));
        for e in &f.evidence {
            out.push_str(&format!("     - {e}\n"));
        }
        if f.runbook.is_empty() {
            out.push_str(
                "     next: nothing to fix; wait as said and re-run `nats-rescue diagnose`\n",
            );
        } else {
            out.push_str(&format!(
                "     next: nats-rescue run {} --dry-run   (then without --dry-run)\n",
                f.runbook
            ));
        }
    }
    out
}
