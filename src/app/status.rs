//! `status` and `diagnose`: read-only views of the cluster.

use super::load_inventory;
use crate::cli::GlobalOpts;
use crate::engine::prompter::ScriptedPrompter;
use crate::engine::reporter::Reporter;
use crate::engine::{Engine, Finding, MemorySink, RunConfig};
use crate::error::Result;
use crate::runbook::Library;
use crate::ssh::SshTransport;
use std::sync::Arc;

fn gather(
    g: &GlobalOpts,
) -> Result<(
    crate::inventory::Inventory,
    Arc<SshTransport>,
    crate::nats::ClusterFacts,
)> {
    let inv = load_inventory(g)?;
    let ssh = Arc::new(SshTransport::new(g.accept_new_host_keys));
    let facts = crate::nats::gather(&*ssh, &inv, None);
    for k in ssh.take_accepted_host_keys() {
        eprintln!(
            "nats-rescue: accepted new host key for {} ({}): {}",
            k.node, k.host, k.fingerprint
        );
    }
    Ok((inv, ssh, facts))
}

fn color(g: &GlobalOpts) -> bool {
    use std::io::IsTerminal;
    !g.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

pub fn status(g: &GlobalOpts) -> Result<i32> {
    let (_inv, _ssh, facts) = gather(g)?;
    if g.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::nats::status_json(&facts)).unwrap_or_default()
        );
    } else {
        print!("{}", crate::nats::render_status(&facts, color(g)));
    }
    Ok(if facts.healthy { 0 } else { 1 })
}

fn rank(c: &str) -> u8 {
    match c {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    }
}

/// Runs every runbook's diagnose steps against one set of facts; findings ranked most
/// likely first (confidence, then score).
pub fn findings(
    lib: &Library,
    inv: &crate::inventory::Inventory,
    transport: Arc<dyn crate::transport::Transport>,
    facts: serde_json::Value,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for plan in lib.all().into_iter().flatten() {
        let mut prompter = ScriptedPrompter {
            answers: Default::default(),
            in_doubt: None,
            asked: Vec::new(),
        };
        let mut sink = MemorySink::default();
        let reporter = Reporter::silent();
        let mut cfg = RunConfig::new("diagnose");
        cfg.diagnose_only = true;
        let f2 = facts.clone();
        let gather: Arc<crate::engine::Gather> = Arc::new(move |_| f2.clone());
        let mut e = Engine::new(
            &plan,
            inv,
            transport.clone(),
            gather,
            &mut prompter,
            &mut sink,
            &reporter,
            cfg,
        )
        .with_facts(facts.clone());
        e.run();
        out.extend(e.findings.clone());
    }
    out.sort_by(|a, b| {
        rank(&a.confidence)
            .cmp(&rank(&b.confidence))
            .then(b.score.cmp(&a.score))
    });
    out
}

pub fn diagnose(g: &GlobalOpts, lib: &Library) -> Result<i32> {
    let (inv, ssh, facts) = gather(g)?;
    let fj = serde_json::to_value(&facts).unwrap_or_default();
    let found = findings(lib, &inv, ssh, fj);
    let as_table: Vec<crate::nats::Finding> = found
        .iter()
        .map(|f| crate::nats::Finding {
            cause: f.cause.clone(),
            runbook: f.runbook.clone(),
            confidence: f.confidence.clone(),
            summary: f.summary.clone(),
            evidence: f.evidence.clone(),
        })
        .collect();
    let healthy = facts.healthy && found.is_empty();
    if g.json {
        let mut v = crate::nats::diagnose_json(&facts, &as_table);
        v["healthy"] = serde_json::json!(healthy);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", crate::nats::render_status(&facts, color(g)));
        println!();
        print!("{}", render_findings(facts.healthy, &found));
    }
    Ok(if healthy { 0 } else { 1 })
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
            f.confidence,
            f.cause,
            f.summary
        ));
        for e in &f.evidence {
            out.push_str(&format!("     - {e}\n"));
        }
        out.push_str(&format!(
            "     next: nats-rescue run {} --dry-run   (then without --dry-run)\n",
            f.runbook
        ));
    }
    out
}
