//! `status` and `diagnose`: read-only views of the cluster.

use super::capture::{Offline, OfflineTransport};
use super::load_inventory;
use crate::cli::{GlobalOpts, ViewArgs};
use crate::engine::prompter::ScriptedPrompter;
use crate::engine::{Engine, Finding, Listener, Mode, Outcome, Recorder, RunConfig};
use crate::error::Result;
use crate::inventory::Inventory;
use crate::nats::{ClusterFacts, Thresholds};
use crate::runbook::{Library, Plan};
use crate::ssh::SshTransport;
use crate::ui::{self, status as view, Settings};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The pressure thresholds the runbook library sets (defaults of their variables).
pub fn library_thresholds(lib: &Library) -> Thresholds {
    let mut vars = BTreeMap::new();
    for plan in lib.all().into_iter().flatten() {
        vars.extend(plan.resolved_vars(&BTreeMap::new()));
    }
    Thresholds::from_vars(&vars)
}

/// Facts from the cluster, or offline from a capture (`--from`).
type Gathered = (
    Inventory,
    Arc<dyn crate::transport::Transport>,
    ClusterFacts,
    Option<Offline>,
);

fn gather(g: &GlobalOpts, th: &Thresholds, v: &ViewArgs) -> Result<Gathered> {
    if let Some(from) = &v.from {
        let off = Offline::open(from)?;
        let facts = off.facts(th);
        let inv = off.capture.inventory.clone();
        return Ok((inv, Arc::new(OfflineTransport), facts, Some(off)));
    }
    let inv = load_inventory(g)?;
    let ssh = Arc::new(SshTransport::new(g.accept_new_host_keys));
    let facts = crate::nats::gather(&*super::run::retrying(&ssh), &inv, None, th);
    for k in ssh.take_accepted_host_keys() {
        eprintln!(
            "nats-rescue: accepted new host key for {} ({}): {}",
            k.node, k.host, k.fingerprint
        );
    }
    Ok((inv, ssh, facts, None))
}

pub fn status(g: &GlobalOpts, lib: &Library, v: &ViewArgs) -> Result<i32> {
    let s = Settings::resolve(g);
    let (_inv, _ssh, facts, offline) = gather(g, &library_thresholds(lib), v)?;
    if s.json {
        let mut j = view::status_json(&facts);
        if let Some(o) = &offline {
            j["offline"] = o.json();
        }
        ui::out_json(&j);
    } else {
        if let Some(o) = &offline {
            ui::out(&o.banner());
        }
        ui::out(&view::render_status(&facts, s.color_stdout, s.width));
    }
    Ok(i32::from(!facts.healthy))
}

/// What every runbook's diagnose steps found on one set of facts, most likely first, and
/// the runbooks that could not be evaluated (a defect in the runbook, reported, not hidden).
pub struct Diagnosis {
    pub findings: Vec<Finding>,
    pub errors: Vec<String>,
}

/// Runs every runbook's diagnose steps against one set of facts.
pub fn diagnosis(
    lib: &Library,
    inv: &Inventory,
    transport: Arc<dyn crate::transport::Transport>,
    facts: &ClusterFacts,
) -> Diagnosis {
    let mut d = Diagnosis {
        findings: Vec::new(),
        errors: Vec::new(),
    };
    for plan in lib.all().into_iter().flatten() {
        let (found, err) = diagnose_one(&plan, inv, transport.clone(), facts);
        d.findings.extend(found);
        d.errors.extend(err);
    }
    crate::engine::finding::rank(&mut d.findings);
    d
}

fn diagnose_one(
    plan: &Plan,
    inv: &Inventory,
    transport: Arc<dyn crate::transport::Transport>,
    facts: &ClusterFacts,
) -> (Vec<Finding>, Option<String>) {
    let mut prompter = ScriptedPrompter::default();
    let mut recorder = Recorder::default();
    let mut cfg = RunConfig::new("diagnose");
    cfg.mode = Mode::Diagnose;
    let f2 = facts.clone();
    let gather: Arc<crate::engine::Gather> = Arc::new(move |_, _| f2.clone());
    let listeners: Vec<&mut dyn Listener> = vec![&mut recorder];
    let outcome = Engine::new(plan, inv, transport, gather, &mut prompter, listeners, cfg)
        .with_facts(facts.clone())
        .run();
    let err = match outcome {
        Outcome::Failed(e) => Some(e),
        _ => None,
    };
    (recorder.findings(), err)
}

pub fn diagnose(g: &GlobalOpts, lib: &Library, v: &ViewArgs) -> Result<i32> {
    let s = Settings::resolve(g);
    let (inv, ssh, facts, offline) = gather(g, &library_thresholds(lib), v)?;
    let mut d = diagnosis(lib, &inv, ssh, &facts);
    // `converging` has no runbook: the finding is the verdict itself (wait and re-run).
    // diagnose still exits 1: the cluster is not healthy yet, a script should poll again.
    if let Some(c) = facts.signal.get(crate::nats::signals::CONVERGING) {
        d.findings.insert(
            0,
            crate::engine::finding::Finding {
                cause: c.cause.clone(),
                runbook: String::new(),
                confidence: crate::runbook::plan::Confidence::parse(&c.confidence)
                    .unwrap_or(crate::runbook::plan::Confidence::High),
                score: i64::from(c.score),
                summary: c.summary.clone(),
                evidence: c.evidence.clone(),
            },
        );
    }
    for e in &d.errors {
        eprintln!("nats-rescue: {e}");
    }
    let healthy = facts.healthy && d.findings.is_empty();
    if s.json {
        let mut v = view::diagnose_json(&facts, &d.findings);
        v["healthy"] = serde_json::json!(healthy);
        v["errors"] = serde_json::json!(d.errors);
        if let Some(o) = &offline {
            v["offline"] = o.json();
        }
        ui::out_json(&v);
    } else {
        if let Some(o) = &offline {
            ui::out(&o.banner());
        }
        ui::out(&view::render_status(&facts, s.color_stdout, s.width));
        ui::out("\n");
        ui::out(&view::render_findings(facts.healthy, &d.findings));
        if d.findings.is_empty() {
            // Nothing explains it: at least name the stream/consumer groups that are not well.
            for g in facts.groups.iter().filter(|g| !g.healthy) {
                ui::out(&format!("  {}: {}\n", g.label(), g.problems.join("; ")));
            }
        }
    }
    Ok(i32::from(!healthy))
}
