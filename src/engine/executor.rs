//! Executes a `Plan`: steps in order, per-node work fanned out, every action journaled
//! before it is sent, every change behind a recorded confirmation.

use super::fanout::fanout;
use super::prompter::{Answer, ConfirmRequest, InDoubtChoice, Prompter};
use super::receipt::{self, Receipt};
use super::reporter::Reporter;
use super::{interrupt, Outcome, Prior, Sink};
use crate::inventory::{Inventory, Node};
use crate::journal::Event;
use crate::runbook::raw::Parse;
use crate::runbook::template::{self, eval, eval_bool, eval_names, render_shell, render_text};
use crate::runbook::{Order, Plan, Step, StepKind};
use crate::transport::{ExecOutput, RemoteCommand, Transport, TransportError};
use minijinja::value::Value;
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Gathers cluster facts (the `probe: nats` power). Injected so engine tests can use fixed
/// facts; the real one is `crate::nats::gather` over the transport.
pub type Gather = dyn Fn(&Inventory) -> Json + Send + Sync;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub incident: String,
    /// `--dry-run`: read-only steps run, mutating ones are printed and not sent.
    pub rehearsal: bool,
    pub vars: BTreeMap<String, String>,
    /// `--node`: limit per-node fix steps to these nodes.
    pub node_limit: Vec<String>,
    pub concurrency: usize,
    /// Default poll interval of waits.
    pub poll_interval: Duration,
    /// `diagnose`: run only diagnose steps, with `facts` already gathered.
    pub diagnose_only: bool,
}

impl RunConfig {
    pub fn new(incident: impl Into<String>) -> Self {
        RunConfig {
            incident: incident.into(),
            rehearsal: false,
            vars: BTreeMap::new(),
            node_limit: Vec::new(),
            concurrency: super::fanout::DEFAULT_CONCURRENCY,
            poll_interval: Duration::from_secs(2),
            diagnose_only: false,
        }
    }
}

/// A finding made by a diagnose step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub cause: String,
    pub runbook: String,
    pub confidence: String,
    pub score: i64,
    pub summary: String,
    pub evidence: Vec<String>,
}

/// Executes one plan.
pub struct Engine<'a> {
    plan: &'a Plan,
    inv: &'a Inventory,
    transport: Arc<dyn Transport>,
    gather: Arc<Gather>,
    prompter: &'a mut dyn Prompter,
    sink: &'a mut dyn Sink,
    reporter: &'a Reporter,
    cfg: RunConfig,
    facts: Json,
    captures: Map<String, Json>,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<String>,
    prior: Prior,
    backups: BTreeSet<(String, String)>,
    verify_steps_run: usize,
    /// The latest confirmation approved in this run: (step, destructive).
    last_approval: Option<(String, bool)>,
}

/// Why a step stopped the run.
enum Stop {
    Outcome(Outcome),
}

type StepResult = Result<(), Stop>;

impl<'a> Engine<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: &'a Plan,
        inv: &'a Inventory,
        transport: Arc<dyn Transport>,
        gather: Arc<Gather>,
        prompter: &'a mut dyn Prompter,
        sink: &'a mut dyn Sink,
        reporter: &'a Reporter,
        cfg: RunConfig,
    ) -> Self {
        Engine {
            plan,
            inv,
            transport,
            gather,
            prompter,
            sink,
            reporter,
            cfg,
            facts: json!({}),
            captures: Map::new(),
            findings: Vec::new(),
            recommendations: Vec::new(),
            prior: Prior::default(),
            backups: BTreeSet::new(),
            verify_steps_run: 0,
            last_approval: None,
        }
    }

    /// Continue from a journal: finished actions are not repeated, approvals are reused.
    pub fn with_prior(mut self, prior: Prior) -> Self {
        self.backups.extend(prior.backups.iter().cloned());
        self.prior = prior;
        self
    }

    /// Use facts gathered elsewhere (diagnose gathers once for every runbook).
    pub fn with_facts(mut self, facts: Json) -> Self {
        self.facts = facts;
        self
    }

    pub fn facts(&self) -> &Json {
        &self.facts
    }

    fn journal(&mut self, ev: Event) -> Result<(), Stop> {
        if self.cfg.diagnose_only {
            return Ok(());
        }
        self.sink.append(ev).map_err(|e| {
            Stop::Outcome(Outcome::Failed(format!(
                "cannot write the journal, stopping before anything else runs: {e}"
            )))
        })
    }

    /// Runs the plan to its end (or the first stop).
    pub fn run(&mut self) -> Outcome {
        if !self.prior.in_doubt.is_empty() && !self.cfg.rehearsal {
            if let Err(Stop::Outcome(o)) = self.settle_in_doubt() {
                return o;
            }
        }
        let steps: Vec<Step> = self.plan.steps.clone();
        for step in &steps {
            if self.cfg.diagnose_only && step.kind() != StepKind::Diagnose {
                continue;
            }
            if interrupt::requested() {
                let _ = self.journal(Event::Interrupted {
                    reason: "interrupted by the operator (Ctrl-C)".into(),
                });
                return Outcome::Stopped("interrupted by the operator (Ctrl-C)".into());
            }
            if let Err(Stop::Outcome(o)) = self.step(step) {
                return o;
            }
        }
        if self.cfg.diagnose_only {
            return Outcome::Completed;
        }
        if self.cfg.rehearsal {
            return Outcome::Rehearsed;
        }
        if self.verify_steps_run > 0 {
            Outcome::Recovered
        } else {
            Outcome::Completed
        }
    }

    // ---- context -----------------------------------------------------------------------

    fn base_ctx(&self) -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        m.insert("facts".into(), Value::from_serialize(&self.facts));
        m.insert("steps".into(), Value::from_serialize(&self.captures));
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &self.plan.vars {
            if let Some(d) = &v.default {
                vars.insert(k.clone(), d.clone());
            }
        }
        vars.extend(self.cfg.vars.clone());
        m.insert("vars".into(), Value::from_serialize(&vars));
        m.insert("cluster".into(), Value::from(self.inv.cluster.clone()));
        let names: Vec<String> = self.inv.nodes.iter().map(|n| n.name.clone()).collect();
        m.insert("nodes".into(), Value::from_serialize(&names));
        m.insert(
            "inventory".into(),
            Value::from_serialize(json!({
                "cluster": self.inv.cluster, "nodes": names, "size": names.len(), "quorum": self.inv.quorum(),
                "hosts": self.inv.nodes.iter().map(|n| json!({"name": n.name, "host": n.host, "cluster_port": n.nats.cluster_port, "monitor_port": n.nats.monitor_port})).collect::<Vec<_>>(),
            })),
        );
        m.insert(
            "incident".into(),
            Value::from_serialize(
                json!({"id": self.cfg.incident, "rehearsal": self.cfg.rehearsal}),
            ),
        );
        m.insert("rehearsal".into(), Value::from(self.cfg.rehearsal));
        m
    }

    fn ctx(&self) -> Value {
        Value::from_serialize(self.base_ctx())
    }

    fn node_ctx(&self, node: &Node, result: Option<Json>) -> Value {
        let mut m = self.base_ctx();
        m.insert("node".into(), node_value(node));
        let f = self
            .facts
            .get("nodes")
            .and_then(|n| n.get(&node.name))
            .cloned()
            .unwrap_or(Json::Null);
        m.insert("f".into(), Value::from_serialize(&f));
        if let Some(r) = result {
            m.insert("result".into(), Value::from_serialize(&r));
        }
        Value::from_serialize(m)
    }

    // ---- steps -------------------------------------------------------------------------

    fn step(&mut self, step: &Step) -> StepResult {
        let raw = &step.raw;
        let ctx = self.ctx();
        // Resume: what an earlier run of this incident decided and did stands. A fix step that
        // finished is done; a confirm or fix step that started keeps its `when` (it was true)
        // and its nodes, whatever the facts say now (a leader may exist again half-way).
        let changes = matches!(raw.kind, StepKind::Fix | StepKind::Confirm);
        if changes && raw.kind == StepKind::Fix && self.prior.finished_steps.contains(&raw.id) {
            self.reporter.step(raw.kind.as_str(), &raw.id, None);
            self.reporter
                .note("finished before the interruption (journal): not run again");
            return self.journal(Event::StepSkipped {
                step: raw.id.clone(),
                reason: "finished before the interruption (journal)".into(),
            });
        }
        // A verify step that passed before the interruption, with later steps already under
        // way, checked a moment that has passed (e.g. "every server is stopped" before the
        // servers were started again): it is not checked again.
        if raw.kind == StepKind::Verify && self.prior.finished_steps.contains(&raw.id) {
            let pos = self
                .plan
                .steps
                .iter()
                .position(|s| s.id() == raw.id)
                .unwrap_or(0);
            if self
                .plan
                .steps
                .iter()
                .skip(pos + 1)
                .any(|s| self.prior.started_steps.contains(s.id()))
            {
                return self.journal(Event::StepSkipped {
                    step: raw.id.clone(),
                    reason: "passed before the interruption, later steps already ran (journal)"
                        .into(),
                });
            }
        }
        let sticky = changes && self.prior.started_steps.contains(&raw.id);
        if let (false, Some(w)) = (sticky, &raw.when) {
            match eval_bool(w, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    self.reporter
                        .skipped(&raw.id, &format!("`when` is false: {w}"));
                    return self.journal(Event::StepSkipped {
                        step: raw.id.clone(),
                        reason: format!("when: {w} is false"),
                    });
                }
                Err(e) => {
                    self.reporter.warn(&format!(
                        "step {}: cannot evaluate `when` ({e}); skipping it",
                        raw.id
                    ));
                    return self.journal(Event::StepSkipped {
                        step: raw.id.clone(),
                        reason: format!("when: cannot evaluate: {e}"),
                    });
                }
            }
        }
        let title = raw
            .title
            .as_deref()
            .map(|t| render_text(t, &ctx).unwrap_or_else(|_| t.to_string()));
        if !self.cfg.diagnose_only {
            self.reporter
                .step(raw.kind.as_str(), &raw.id, title.as_deref());
        }
        self.journal(Event::StepStarted {
            step: raw.id.clone(),
            kind: raw.kind.as_str().into(),
        })?;
        let targets = if step.is_per_node() {
            let planned = if sticky {
                self.prior.step_targets.get(&raw.id).cloned()
            } else {
                None
            };
            let t = match planned {
                Some(names) => self
                    .inv
                    .nodes
                    .iter()
                    .filter(|n| names.contains(&n.name))
                    .cloned()
                    .collect(),
                None => self.targets(step),
            };
            self.journal(Event::StepTargets {
                step: raw.id.clone(),
                nodes: t.iter().map(|n: &Node| n.name.clone()).collect(),
            })?;
            t
        } else {
            Vec::new()
        };
        if let Some(m) = &raw.message {
            if !self.cfg.diagnose_only {
                let text =
                    render_text(m, &ctx).unwrap_or_else(|e| format!("{m} (render error: {e})"));
                self.reporter.note(&text);
            }
        }
        let r = if raw.probe.is_some() {
            self.probe(step)
        } else if raw.finding.is_some() {
            self.finding(step)
        } else if raw.kind == StepKind::Confirm {
            self.confirm(step)
        } else if raw.wait_until.is_some() {
            self.wait(step)
        } else if raw.backup.is_some() {
            self.backup(step, targets)
        } else if raw.run.is_some() || raw.http.is_some() {
            self.nodes(step, targets)
        } else {
            Ok(())
        };
        if let Some(rec) = &raw.recommend {
            let text = render_text(rec, &self.ctx()).unwrap_or_default();
            if !text.trim().is_empty() {
                self.reporter.note(&format!("→ {}", text.trim()));
                self.recommendations.push(text.trim().to_string());
            }
        }
        match r {
            Ok(()) => {
                let outcome = if self.cfg.rehearsal && step.is_mutating() {
                    "rehearsed"
                } else {
                    "ok"
                };
                self.journal(Event::StepFinished {
                    step: raw.id.clone(),
                    outcome: outcome.into(),
                    detail: None,
                })
            }
            Err(Stop::Outcome(o)) => {
                let (outcome, detail) = match &o {
                    Outcome::Stopped(d) => ("stopped", d.clone()),
                    Outcome::NeedDecision(d) => ("needs-decision", d.clone()),
                    Outcome::VerifyFailed(d) => ("failed", d.clone()),
                    Outcome::Failed(d) => ("failed", d.clone()),
                    _ => ("failed", String::new()),
                };
                let _ = self.journal(Event::StepFinished {
                    step: raw.id.clone(),
                    outcome: outcome.into(),
                    detail: Some(detail),
                });
                Err(Stop::Outcome(o))
            }
        }
    }

    fn gather_facts(&mut self, step: &str) -> Result<(), Stop> {
        let facts = (self.gather)(self.inv);
        self.facts = facts;
        let summary = facts_summary(&self.facts);
        self.journal(Event::FactsGathered {
            step: step.into(),
            summary,
        })
    }

    fn probe(&mut self, step: &Step) -> StepResult {
        if self.cfg.diagnose_only && self.facts.get("nodes").is_some() {
            return Ok(());
        }
        self.gather_facts(&step.raw.id)?;
        // Keep this moment's facts: later steps compare against them (`steps.<id>.facts`).
        self.captures.insert(
            step.raw.id.clone(),
            json!({"ok": true, "facts": self.facts.clone()}),
        );
        if !self.cfg.diagnose_only {
            let s = facts_summary(&self.facts);
            self.reporter.note(&format!(
                "leader: {}; up: {}; down: {}; unreachable: {}",
                s.get("leader").and_then(Json::as_str).unwrap_or("none"),
                list(&s["up"]),
                list(&s["down"]),
                list(&s["unreachable"]),
            ));
        }
        Ok(())
    }

    fn finding(&mut self, step: &Step) -> StepResult {
        let Some(f) = &step.raw.finding else {
            return Ok(());
        };
        let ctx = self.ctx();
        let hit = eval_bool(&f.when, &ctx).unwrap_or(false);
        if !hit {
            return Ok(());
        }
        let summary = render_text(&f.summary, &ctx)
            .unwrap_or_else(|e| format!("(summary failed to render: {e})"));
        let confidence = f
            .confidence
            .as_deref()
            .map(|c| render_text(c, &ctx).unwrap_or_default())
            .filter(|c| ["high", "medium", "low"].contains(&c.as_str()))
            .unwrap_or_else(|| "medium".into());
        let score = f
            .score
            .as_deref()
            .and_then(|s| render_text(s, &ctx).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map(|x| x as i64)
            .unwrap_or(50);
        let mut evidence: Vec<String> = f
            .evidence
            .iter()
            .filter_map(|e| render_text(e, &ctx).ok())
            .filter(|e| !e.trim().is_empty())
            .collect();
        if let Some(ef) = &f.evidence_from {
            if let Ok(v) = eval(ef, &ctx) {
                if let Ok(it) = v.try_iter() {
                    evidence.extend(it.map(|x| {
                        x.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| x.to_string())
                    }));
                }
            }
        }
        let finding = Finding {
            cause: self.plan.id.clone(),
            runbook: self.plan.id.clone(),
            confidence: confidence.clone(),
            score,
            summary: summary.clone(),
            evidence: evidence.clone(),
        };
        if !self.cfg.diagnose_only {
            self.reporter
                .warn(&format!("finding ({confidence}): {summary}"));
            for e in &evidence {
                self.reporter.note(&format!("  - {e}"));
            }
        }
        self.findings.push(finding);
        self.journal(Event::Finding {
            step: step.raw.id.clone(),
            cause: self.plan.id.clone(),
            confidence,
            summary,
            evidence,
        })
    }

    /// Renders what the next fix steps would run, per node, for the confirmation.
    fn preview(&self, confirm_index: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let ctx = self.ctx();
        for s in self.plan.steps.iter().skip(confirm_index + 1) {
            if s.kind() == StepKind::Confirm {
                break;
            }
            if s.kind() != StepKind::Fix {
                continue;
            }
            if let Some(w) = &s.raw.when {
                if !eval_bool(w, &ctx).unwrap_or(false) {
                    continue;
                }
            }
            let order = match &s.order {
                Order::Parallel => "all at once",
                Order::Serial | Order::SerialBy { .. } => "one node at a time",
            };
            let targets = self.targets(s);
            lines.push(format!(
                "step `{}` on {} ({order}):",
                s.id(),
                if targets.is_empty() {
                    "no node".into()
                } else {
                    names(&targets)
                }
            ));
            for n in self.ordered(s, targets) {
                let cmd = if let Some(run) = &s.raw.run {
                    render_shell(run, &self.node_ctx(&n, None))
                        .unwrap_or_else(|e| format!("(render error: {e})"))
                } else if let Some(b) = &s.raw.backup {
                    let p = render_shell(&b.path, &self.node_ctx(&n, None)).unwrap_or_default();
                    format!("archive {p} (tar.gz, verified, SHA-256 journaled)")
                } else {
                    String::new()
                };
                lines.push(format!("    {}: {}", n.name, cmd));
            }
        }
        lines
    }

    fn confirm(&mut self, step: &Step) -> StepResult {
        let raw = &step.raw;
        let ctx = self.ctx();
        let question = render_text(raw.prompt.as_deref().unwrap_or("Proceed?"), &ctx)
            .unwrap_or_else(|e| format!("(prompt failed to render: {e})"));
        let mut details: Vec<String> = raw
            .details
            .iter()
            .filter_map(|d| render_text(d, &ctx).ok())
            .filter(|d| !d.trim().is_empty())
            .collect();
        let idx = self
            .plan
            .steps
            .iter()
            .position(|s| s.id() == raw.id)
            .unwrap_or(0);
        details.extend(self.preview(idx));
        if self.cfg.rehearsal {
            self.reporter.note(&format!(
                "would ask{}: {question}",
                if raw.destructive {
                    " (DESTRUCTIVE, cluster name typed)"
                } else {
                    ""
                }
            ));
            for d in &details {
                self.reporter.note(&format!("  {d}"));
            }
            return self.journal(Event::Confirmation {
                step: raw.id.clone(),
                question,
                destructive: raw.destructive,
                approved: true,
                how: "rehearsal".into(),
            });
        }
        if let Some(&approved) = self.prior.confirmations.get(&raw.id) {
            if approved {
                self.reporter
                    .note(&format!("approved earlier in this incident: {question}"));
                return self.journal(Event::Confirmation {
                    step: raw.id.clone(),
                    question,
                    destructive: raw.destructive,
                    approved: true,
                    how: "journal (approved before the interruption)".into(),
                });
            }
        }
        let req = ConfirmRequest {
            step: raw.id.clone(),
            question: question.clone(),
            details,
            destructive: raw.destructive,
            cluster: self.inv.cluster.clone(),
        };
        let reporter = self.reporter;
        let prompter = &mut *self.prompter;
        let answer = reporter.suspend(|| prompter.confirm(&req));
        match answer {
            Answer::Approved { how } => {
                self.last_approval = Some((raw.id.clone(), raw.destructive));
                self.reporter.good(&format!("approved ({how})"));
                self.journal(Event::Confirmation {
                    step: raw.id.clone(),
                    question,
                    destructive: raw.destructive,
                    approved: true,
                    how,
                })
            }
            Answer::Declined { how } => {
                self.journal(Event::Confirmation {
                    step: raw.id.clone(),
                    question,
                    destructive: raw.destructive,
                    approved: false,
                    how,
                })?;
                let reason = format!("the operator declined step `{}`", raw.id);
                self.journal(Event::Interrupted {
                    reason: reason.clone(),
                })?;
                Err(Stop::Outcome(Outcome::Stopped(reason)))
            }
            Answer::Unavailable { reason } => {
                self.journal(Event::Interrupted {
                    reason: format!("no decision for step `{}`: {reason}", raw.id),
                })?;
                Err(Stop::Outcome(Outcome::NeedDecision(reason)))
            }
        }
    }

    /// Polls (re-gathering facts) until the condition holds or the timeout passes.
    fn wait_for(
        &mut self,
        step_id: &str,
        expr: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<bool, Stop> {
        self.wait_for_node(step_id, expr, None, timeout, interval)
    }

    /// `wait_for` with a node in scope (health gates).
    fn wait_for_node(
        &mut self,
        step_id: &str,
        expr: &str,
        node: Option<&Node>,
        timeout: Duration,
        interval: Duration,
    ) -> Result<bool, Stop> {
        let start = Instant::now();
        self.reporter.wait_start(expr, timeout);
        let mut polls = 0u32;
        let ok = loop {
            self.facts = (self.gather)(self.inv);
            polls += 1;
            let ctx = match node {
                Some(n) => self.node_ctx(n, None),
                None => self.ctx(),
            };
            let ok = eval_bool(expr, &ctx).unwrap_or(false);
            if ok {
                break true;
            }
            if start.elapsed() >= timeout || interrupt::requested() {
                break false;
            }
            let s = facts_summary(&self.facts);
            self.reporter.wait_update(&format!(
                "waiting for {expr}: leader {}, down {} ({}s / {}s)",
                s.get("leader").and_then(Json::as_str).unwrap_or("none"),
                list(&s["down"]),
                start.elapsed().as_secs(),
                timeout.as_secs()
            ));
            let left = timeout.saturating_sub(start.elapsed());
            std::thread::sleep(interval.min(left).max(Duration::from_millis(50)));
        };
        self.reporter.wait_end();
        let summary = facts_summary(&self.facts);
        self.journal(Event::FactsGathered {
            step: step_id.into(),
            summary,
        })?;
        if interrupt::requested() && !ok {
            self.journal(Event::Interrupted {
                reason: "interrupted by the operator (Ctrl-C) while waiting".into(),
            })?;
            return Err(Stop::Outcome(Outcome::Stopped(
                "interrupted by the operator (Ctrl-C)".into(),
            )));
        }
        let _ = polls;
        Ok(ok)
    }

    fn wait(&mut self, step: &Step) -> StepResult {
        let raw = &step.raw;
        let expr = raw.wait_until.clone().unwrap_or_default();
        let timeout = raw.timeout.unwrap_or(Duration::from_secs(60));
        let interval = raw.interval.unwrap_or(self.cfg.poll_interval);
        if self.cfg.rehearsal {
            let now = eval_bool(&expr, &self.ctx()).unwrap_or(false);
            self.reporter.note(&format!(
                "would wait up to {} for: {expr} (now: {})",
                crate::duration::format(timeout),
                if now { "true" } else { "false" }
            ));
            return Ok(());
        }
        if raw.kind == StepKind::Verify {
            self.verify_steps_run += 1;
        }
        if self.wait_for(&raw.id, &expr, timeout, interval)? {
            self.reporter.good(&expr);
            Ok(())
        } else {
            let msg = format!(
                "step `{}`: `{expr}` did not hold within {}",
                raw.id,
                crate::duration::format(timeout)
            );
            self.reporter.bad(&msg);
            Err(Stop::Outcome(if raw.kind == StepKind::Verify {
                Outcome::VerifyFailed(msg)
            } else {
                Outcome::Failed(msg)
            }))
        }
    }

    // ---- nodes -------------------------------------------------------------------------

    /// Nodes a per-node step applies to: `on` (default all), limited by `--node` for fixes.
    fn targets(&self, step: &Step) -> Vec<Node> {
        let mut nodes: Vec<Node> = match &step.raw.on {
            None => self.inv.nodes.clone(),
            Some(expr) => {
                let names = eval_names(expr, &self.ctx()).unwrap_or_default();
                self.inv
                    .nodes
                    .iter()
                    .filter(|n| names.contains(&n.name))
                    .cloned()
                    .collect()
            }
        };
        if step.kind() == StepKind::Fix && !self.cfg.node_limit.is_empty() {
            nodes.retain(|n| self.cfg.node_limit.contains(&n.name));
        }
        nodes
    }

    fn ordered(&self, step: &Step, mut nodes: Vec<Node>) -> Vec<Node> {
        if let Order::SerialBy { expr, descending } = &step.order {
            let mut keyed: Vec<(Value, Node)> = nodes
                .drain(..)
                .map(|n| {
                    (
                        eval(expr, &self.node_ctx(&n, None)).unwrap_or(Value::UNDEFINED),
                        n,
                    )
                })
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
            if *descending {
                keyed.reverse();
            }
            return keyed.into_iter().map(|(_, n)| n).collect();
        }
        nodes
    }

    fn command_timeout(&self, step: &Step, node: &Node) -> Duration {
        step.raw.timeout.unwrap_or(node.ssh.command_timeout)
    }

    fn capture(&mut self, step: &str, node: &str, entry: Json) {
        let s = self
            .captures
            .entry(step.to_string())
            .or_insert_with(|| json!({"nodes": {}, "ok": true, "failed": []}));
        let ok = entry.get("ok").and_then(Json::as_bool).unwrap_or(false);
        if let Some(nodes) = s.get_mut("nodes").and_then(Json::as_object_mut) {
            nodes.insert(node.to_string(), entry);
        }
        if !ok {
            s["ok"] = json!(false);
            if let Some(f) = s.get_mut("failed").and_then(Json::as_array_mut) {
                f.push(json!(node));
            }
        }
    }

    /// Read-only or mutating commands (and GETs) on the selected nodes.
    fn nodes(&mut self, step: &Step, targets: Vec<Node>) -> StepResult {
        let raw = step.raw.clone();
        let targets = self.ordered(step, targets);
        self.captures.insert(
            raw.id.clone(),
            json!({"nodes": {}, "ok": true, "failed": []}),
        );
        if targets.is_empty() {
            self.reporter.note("no node selected");
            return Ok(());
        }
        let mutating = step.is_mutating();
        if mutating {
            if self.cfg.rehearsal {
                for n in &targets {
                    let cmd = render_shell(
                        raw.run.as_deref().unwrap_or_default(),
                        &self.node_ctx(n, None),
                    )
                    .unwrap_or_else(|e| format!("(render error: {e})"));
                    self.reporter.command(&n.name, &cmd, true, true);
                    self.journal(Event::ActionRehearsed {
                        action: action_id(&raw.id, &n.name),
                        step: raw.id.clone(),
                        node: n.name.clone(),
                        command: cmd,
                    })?;
                    self.capture(&raw.id, &n.name, json!({"ok": true, "rehearsed": true}));
                }
                return Ok(());
            }
            self.preconditions(step, &targets)?;
        }
        let batches: Vec<Vec<Node>> = match step.order {
            Order::Parallel => vec![targets],
            _ => targets.into_iter().map(|n| vec![n]).collect(),
        };
        let mut failures = Vec::new();
        for batch in batches {
            if interrupt::requested() {
                self.journal(Event::Interrupted {
                    reason: "interrupted by the operator (Ctrl-C)".into(),
                })?;
                return Err(Stop::Outcome(Outcome::Stopped(
                    "interrupted by the operator (Ctrl-C)".into(),
                )));
            }
            failures.extend(self.run_batch(step, &batch)?);
            if !failures.is_empty() && mutating {
                break;
            }
            if let Some(g) = &raw.gate {
                let timeout = g.timeout.unwrap_or(Duration::from_secs(120));
                let interval = g.interval.unwrap_or(self.cfg.poll_interval);
                let who = names(&batch);
                self.reporter
                    .note(&format!("health gate after {who}: {}", g.wait_until));
                let gate_node = batch.first().cloned();
                if !self.wait_for_node(
                    &raw.id,
                    &g.wait_until,
                    gate_node.as_ref(),
                    timeout,
                    interval,
                )? {
                    let msg = format!("step `{}`: health gate `{}` did not hold within {} after {who}; stopping before the next node", raw.id, g.wait_until, crate::duration::format(timeout));
                    self.reporter.bad(&msg);
                    return Err(Stop::Outcome(Outcome::Failed(msg)));
                }
            }
        }
        if raw.kind == StepKind::Verify {
            self.verify_steps_run += 1;
        }
        if failures.is_empty() {
            return Ok(());
        }
        match raw.kind {
            StepKind::Fix => Err(Stop::Outcome(Outcome::Failed(format!(
                "step `{}` failed on {}",
                raw.id,
                failures.join(", ")
            )))),
            StepKind::Verify => Err(Stop::Outcome(Outcome::VerifyFailed(format!(
                "step `{}` failed on {}",
                raw.id,
                failures.join(", ")
            )))),
            // A diagnose command that fails is evidence, not an error.
            _ => Ok(()),
        }
    }

    /// Destructive steps: the named backup exists for every target, and the precondition
    /// holds on freshly gathered facts, immediately before anything is sent.
    fn preconditions(&mut self, step: &Step, targets: &[Node]) -> StepResult {
        let raw = &step.raw;
        if raw.destructive && !matches!(&self.last_approval, Some((_, true))) {
            let msg = format!("step `{}` is destructive and the latest confirmation was not a destructive one; refusing", raw.id);
            self.reporter.bad(&msg);
            return Err(Stop::Outcome(Outcome::Failed(msg)));
        }
        if let Some(b) = &raw.requires_backup {
            let missing: Vec<String> = targets
                .iter()
                .filter(|n| !self.backups.contains(&(b.clone(), n.name.clone())))
                .map(|n| n.name.clone())
                .collect();
            if !missing.is_empty() {
                let msg = format!("step `{}` requires a verified backup (`{b}`) of {} in this incident; none is recorded, refusing", raw.id, missing.join(", "));
                self.reporter.bad(&msg);
                return Err(Stop::Outcome(Outcome::Failed(msg)));
            }
        }
        if let Some(p) = &raw.precondition {
            self.gather_facts(&raw.id)?;
            if !eval_bool(p, &self.ctx()).unwrap_or(false) {
                let msg = format!("step `{}`: precondition `{p}` does not hold on freshly gathered facts; refusing to run it", raw.id);
                self.reporter.bad(&msg);
                return Err(Stop::Outcome(Outcome::Failed(msg)));
            }
            self.reporter.good(&format!("precondition holds: {p}"));
        }
        Ok(())
    }

    /// One batch of nodes in parallel. Returns the nodes that failed.
    fn run_batch(&mut self, step: &Step, batch: &[Node]) -> Result<Vec<String>, Stop> {
        let raw = step.raw.clone();
        let mutating = step.is_mutating();
        let mut work: Vec<(Node, RemoteCommandOrGet, String)> = Vec::new();
        for n in batch {
            let action = action_id(&raw.id, &n.name);
            if mutating && self.prior.finished.contains(&action) {
                self.reporter.note(&format!(
                    "{}: already done in this incident (journal), not repeated",
                    n.name
                ));
                self.capture(&raw.id, &n.name, json!({"ok": true, "resumed": true}));
                continue;
            }
            let ctx = self.node_ctx(n, None);
            let item = if let Some(run) = &raw.run {
                match render_shell(run, &ctx) {
                    Ok(cmd) => RemoteCommandOrGet::Cmd(RemoteCommand {
                        script: cmd,
                        timeout: self.command_timeout(step, n),
                        sudo: raw.privileged && n.ssh.sudo,
                    }),
                    Err(e) => {
                        self.reporter
                            .bad(&format!("{}: cannot render the command: {e}", n.name));
                        self.capture(
                            &raw.id,
                            &n.name,
                            json!({"ok": false, "error": format!("render: {e}")}),
                        );
                        continue;
                    }
                }
            } else {
                let path =
                    render_text(raw.http.as_deref().unwrap_or("/"), &ctx).unwrap_or_default();
                RemoteCommandOrGet::Get(
                    path,
                    self.command_timeout(step, n).min(Duration::from_secs(30)),
                )
            };
            let shown = match &item {
                RemoteCommandOrGet::Cmd(c) => c.script.clone(),
                RemoteCommandOrGet::Get(p, _) => format!("GET {p}"),
            };
            self.journal(Event::ActionIntent {
                action: action.clone(),
                step: raw.id.clone(),
                node: n.name.clone(),
                command: shown.clone(),
                mutating,
                idempotent: raw.idempotent,
                check: raw
                    .check
                    .as_ref()
                    .map(|c| render_shell(c, &ctx).unwrap_or_default()),
            })?;
            self.reporter.command(&n.name, &shown, mutating, false);
            work.push((n.clone(), item, action));
        }
        let incident = self.cfg.incident.clone();
        let transport = self.transport.clone();
        let jobs: Vec<Node> = work.iter().map(|w| w.0.clone()).collect();
        let items: Arc<BTreeMap<String, (RemoteCommandOrGet, String)>> = Arc::new(
            work.into_iter()
                .map(|(n, i, a)| (n.name.clone(), (i, a)))
                .collect(),
        );
        let items2 = items.clone();
        let mut failures = Vec::new();
        let mut stop: Option<Stop> = None;
        let concurrency = self.cfg.concurrency;
        fanout(
            &jobs,
            concurrency,
            move |node| {
                let start = Instant::now();
                let Some((item, action)) = items2.get(&node.name) else {
                    return (
                        Err(TransportError::Other("internal: no work".into())),
                        start.elapsed(),
                    );
                };
                let r = match item {
                    RemoteCommandOrGet::Cmd(c) => {
                        let mut c = c.clone();
                        if mutating {
                            c.script = receipt::wrap(&incident, action, &c.script);
                        }
                        transport.exec(node, &c).map(Outcome1::Exec)
                    }
                    RemoteCommandOrGet::Get(p, t) => transport
                        .http_get(node, p, *t)
                        .map(|h| Outcome1::Http(h.status, h.body)),
                };
                (r, start.elapsed())
            },
            // Each result is journaled the moment it arrives, while slower nodes still work.
            |_, node, (r, d)| {
                if stop.is_some() {
                    return;
                }
                let action = items
                    .get(&node.name)
                    .map(|x| x.1.clone())
                    .unwrap_or_default();
                match self.finish_action(&raw, mutating, &node.name, &action, r, d) {
                    Ok(true) => {}
                    Ok(false) => failures.push(node.name.clone()),
                    Err(e) => stop = Some(e),
                }
            },
        );
        if let Some(e) = stop {
            return Err(e);
        }
        Ok(failures)
    }

    /// Journals one action's result, captures it for later steps, and says whether it
    /// succeeded (exit 0, or the step's `expect`).
    fn finish_action(
        &mut self,
        raw: &crate::runbook::raw::RawStep,
        mutating: bool,
        node_name: &str,
        action: &str,
        r: Result<Outcome1, TransportError>,
        d: Duration,
    ) -> Result<bool, Stop> {
        let node_name = node_name.to_string();
        let action = action.to_string();
        let node = self.inv.node(&node_name).cloned();
        let (entry, ev) = match r {
            Ok(Outcome1::Exec(out)) => {
                let parsed = parse_output(raw.parse, &out.stdout.text);
                let entry = json!({
                    "ok": out.success(), "exit_code": out.exit_code, "stdout": out.stdout.text,
                    "stderr": out.stderr.text, "parsed": parsed, "timed_out": out.timed_out,
                    "lines": out.stdout.text.lines().collect::<Vec<_>>(),
                });
                (
                    entry,
                    result_event(&action, &raw.id, &node_name, &out, None),
                )
            }
            Ok(Outcome1::Http(status, body)) => {
                let parsed = parse_output(raw.parse.or(Some(Parse::Json)), &body);
                let entry = json!({"ok": (200..300).contains(&status), "status": status, "body": body, "parsed": parsed, "stdout": body, "exit_code": if (200..300).contains(&status) {0} else {status as i32}});
                let ev = Event::ActionResult {
                    action: action.clone(),
                    step: raw.id.clone(),
                    node: node_name.clone(),
                    exit_code: Some(status as i32),
                    timed_out: false,
                    error: None,
                    stdout: truncate(&body, 4096),
                    stdout_bytes: body.len() as u64,
                    stdout_sha256: crate::inventory::sha256_hex(body.as_bytes()),
                    stderr: String::new(),
                    stderr_bytes: 0,
                    stderr_sha256: crate::inventory::sha256_hex(b""),
                    duration_ms: d.as_millis() as u64,
                };
                (entry, ev)
            }
            Err(e) => {
                let entry = json!({"ok": false, "error": e.to_string(), "exit_code": null});
                let ev = unreachable_event(&action, &raw.id, &node_name, &e, d);
                (entry, ev)
            }
        };
        self.journal(ev)?;
        let mut ok = entry.get("ok").and_then(Json::as_bool).unwrap_or(false);
        if let (Some(expect), Some(node)) = (&raw.expect, node.as_ref()) {
            ok = eval_bool(expect, &self.node_ctx(node, Some(entry.clone()))).unwrap_or(false);
        }
        let summary = summarize(&entry, d);
        self.reporter.result(&node_name, ok, mutating, &summary);
        let mut entry = entry;
        entry["ok"] = json!(ok);
        self.capture(&raw.id, &node_name, entry);
        Ok(ok)
    }

    /// The built-in backup action: archive a path on each node, verify the archive, and
    /// journal its path, size and SHA-256.
    fn backup(&mut self, step: &Step, targets: Vec<Node>) -> StepResult {
        let raw = step.raw.clone();
        let Some(b) = raw.backup.clone() else {
            return Ok(());
        };
        self.captures.insert(
            raw.id.clone(),
            json!({"nodes": {}, "ok": true, "failed": []}),
        );
        let mut failures = Vec::new();
        let mut work = Vec::new();
        for n in &targets {
            let action = action_id(&raw.id, &n.name);
            let ctx = self.node_ctx(n, None);
            let src = render_shell(&b.path, &ctx).unwrap_or_default();
            let dest = b
                .dest
                .as_deref()
                .map(|d| render_shell(d, &ctx).unwrap_or_default())
                .unwrap_or_else(|| "/var/backups/nats-rescue".into());
            let name = template::quote(&format!(
                "{}-{}.tar.gz",
                self.cfg.incident,
                template::quote_path_component(&n.name)
            ));
            let script = format!(
                "set -e\nsrc={src}\ndest={dest}\n[ -e \"$src\" ] || {{ echo \"nothing to back up: $src does not exist\" >&2; exit 3; }}\nmkdir -p \"$dest\"\nf=\"$dest\"/{name}\ntar -czf \"$f.tmp\" -C \"$(dirname \"$src\")\" \"$(basename \"$src\")\"\ntar -tzf \"$f.tmp\" >/dev/null\nmv \"$f.tmp\" \"$f\"\necho \"path=$f\"\necho \"size=$(stat -c %s \"$f\")\"\necho \"sha256=$(sha256sum \"$f\" | cut -d' ' -f1)\"\necho \"source=$src\""
            );
            if self.cfg.rehearsal {
                self.reporter.command(
                    &n.name,
                    &format!("archive {src} into {dest} (tar.gz, verified)"),
                    true,
                    true,
                );
                self.journal(Event::ActionRehearsed {
                    action,
                    step: raw.id.clone(),
                    node: n.name.clone(),
                    command: script,
                })?;
                continue;
            }
            if self.prior.finished.contains(&action)
                && self.backups.contains(&(raw.id.clone(), n.name.clone()))
            {
                self.reporter.note(&format!(
                    "{}: backup already made in this incident (journal)",
                    n.name
                ));
                continue;
            }
            work.push((n.clone(), action, script, format!("{src} → {dest}")));
        }
        if self.cfg.rehearsal || work.is_empty() {
            return Ok(());
        }
        for (n, action, script, what) in &work {
            self.journal(Event::ActionIntent {
                action: action.clone(),
                step: raw.id.clone(),
                node: n.name.clone(),
                command: script.clone(),
                mutating: true,
                idempotent: true,
                check: None,
            })?;
            self.reporter.command(
                &n.name,
                &format!("archive {what} (verified tar.gz, SHA-256 journaled)"),
                true,
                false,
            );
        }
        let incident = self.cfg.incident.clone();
        let transport = self.transport.clone();
        let timeout = raw.timeout.unwrap_or(Duration::from_secs(600));
        let sudo = raw.privileged;
        let jobs: Vec<Node> = work.iter().map(|w| w.0.clone()).collect();
        let scripts: Arc<BTreeMap<String, (String, String)>> = Arc::new(
            work.into_iter()
                .map(|(n, a, s, _)| (n.name.clone(), (a, s)))
                .collect(),
        );
        let s2 = scripts.clone();
        let mut results = Vec::new();
        fanout(
            &jobs,
            self.cfg.concurrency,
            move |node| {
                let Some((action, script)) = s2.get(&node.name) else {
                    return Err(TransportError::Other("internal: no work".into()));
                };
                let cmd = RemoteCommand {
                    script: receipt::wrap(&incident, action, script),
                    timeout,
                    sudo: sudo && node.ssh.sudo,
                };
                transport.exec(node, &cmd)
            },
            |_, node, r| results.push((node.name.clone(), r)),
        );
        for (name, r) in results {
            let action = scripts.get(&name).map(|x| x.0.clone()).unwrap_or_default();
            match r {
                Ok(out) => {
                    self.journal(result_event(&action, &raw.id, &name, &out, None))?;
                    let kv = parse_kv(&out.stdout.text);
                    match (
                        out.success(),
                        kv.get("path"),
                        kv.get("size").and_then(|s| s.parse::<u64>().ok()),
                        kv.get("sha256"),
                    ) {
                        (true, Some(path), Some(size), Some(sha))
                            if sha.len() == 64 && size > 0 =>
                        {
                            self.journal(Event::BackupMade {
                                step: raw.id.clone(),
                                node: name.clone(),
                                path: path.clone(),
                                size,
                                sha256: sha.clone(),
                                source: kv.get("source").cloned().unwrap_or_default(),
                            })?;
                            self.backups.insert((raw.id.clone(), name.clone()));
                            self.reporter.good(&format!(
                                "{name}: backup {path} ({size} bytes, sha256 {})",
                                &sha[..12]
                            ));
                            self.capture(
                                &raw.id,
                                &name,
                                json!({"ok": true, "path": path, "size": size, "sha256": sha}),
                            );
                        }
                        _ => {
                            let why = if out.stderr.text.trim().is_empty() {
                                format!("exit {:?}", out.exit_code)
                            } else {
                                out.stderr.text.trim().to_string()
                            };
                            self.reporter.bad(&format!("{name}: backup failed: {why}"));
                            self.capture(&raw.id, &name, json!({"ok": false, "error": why}));
                            failures.push(name);
                        }
                    }
                }
                Err(e) => {
                    self.journal(unreachable_event(
                        &action,
                        &raw.id,
                        &name,
                        &e,
                        Duration::ZERO,
                    ))?;
                    self.reporter.bad(&format!("{name}: backup failed: {e}"));
                    self.capture(&raw.id, &name, json!({"ok": false, "error": e.to_string()}));
                    failures.push(name);
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Stop::Outcome(Outcome::Failed(format!(
                "backup `{}` failed on {}",
                raw.id,
                failures.join(", ")
            ))))
        }
    }

    // ---- resume ------------------------------------------------------------------------

    /// Settles every mutating action that has an intent but no result: the node's receipt
    /// first (the real outcome), then `check`, then `idempotent`, then the operator.
    fn settle_in_doubt(&mut self) -> StepResult {
        let in_doubt = std::mem::take(&mut self.prior.in_doubt);
        if in_doubt.iter().any(|d| d.mutating) {
            // Facts are gathered afresh on resume; checks are rendered from the runbook with
            // them (the journal's copy of a command may be redacted).
            self.gather_facts("resume")?;
        }
        for d in in_doubt.iter().filter(|d| d.mutating) {
            let Some(node) = self.inv.node(&d.node).cloned() else {
                continue;
            };
            self.reporter.note(&format!(
                "in doubt: {} on {} — {}",
                d.action, d.node, d.command
            ));
            let mut receipt_rc = None;
            // The receipt lives in the HOME of whoever ran the action: query it the same way
            // (through sudo for privileged steps).
            let privileged = self.plan.step(&d.step).is_some_and(|s| s.raw.privileged);
            let deadline = Instant::now() + node.ssh.command_timeout + Duration::from_secs(5);
            loop {
                let mut q = RemoteCommand::new(
                    receipt::query(&self.cfg.incident, &d.action),
                    node.ssh.connect_timeout + Duration::from_secs(10),
                );
                q.sudo = privileged && node.ssh.sudo;
                match self.transport.exec(&node, &q) {
                    Ok(out) => match receipt::parse(&out.stdout.text) {
                        Receipt::Finished(rc) => {
                            receipt_rc = Some(rc);
                            break;
                        }
                        Receipt::Running if Instant::now() < deadline => {
                            self.reporter.note(&format!(
                                "{}: the command is still running on the node; waiting for it",
                                d.node
                            ));
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        _ => break,
                    },
                    Err(e) => {
                        self.reporter
                            .warn(&format!("{}: cannot read the receipt: {e}", d.node));
                        break;
                    }
                }
            }
            if let Some(rc) = receipt_rc {
                self.journal(Event::Decision {
                    action: d.action.clone(),
                    node: d.node.clone(),
                    decision: "receipt".into(),
                    how: "node receipt".into(),
                    detail: Some(format!(
                        "the command finished on the node with exit code {rc}"
                    )),
                })?;
                if rc == 0 {
                    self.prior.finished.insert(d.action.clone());
                    if let Some(step) = self.plan.step(&d.step) {
                        if step.raw.backup.is_some() {
                            // The archive exists but its checksum was never journaled: redo
                            // the (idempotent) backup so the record is complete.
                            self.prior.finished.remove(&d.action);
                        }
                    }
                    self.reporter.good(&format!(
                        "{}: finished before the interruption (exit 0), not repeated",
                        d.node
                    ));
                    continue;
                }
                self.reporter
                    .warn(&format!("{}: it had finished with exit code {rc}", d.node));
            }
            // The check as it was rendered with the intent (same captures and facts as the
            // action); re-rendered from the runbook only when the journal's copy was redacted.
            let check: Option<Result<String, String>> = match &d.check {
                Some(c) if !c.contains(crate::journal::REDACTED) => Some(Ok(c.clone())),
                _ => self
                    .plan
                    .step(&d.step)
                    .and_then(|s| s.raw.check.clone())
                    .map(|c| render_shell(&c, &self.node_ctx(&node, None))),
            };
            if let Some(check) = &check {
                let (ok, check) = match check {
                    Ok(check) => {
                        let mut c = RemoteCommand::new(check.clone(), node.ssh.command_timeout);
                        c.sudo = privileged && node.ssh.sudo;
                        (
                            self.transport
                                .exec(&node, &c)
                                .map(|o| o.success())
                                .unwrap_or(false),
                            check.clone(),
                        )
                    }
                    // A check that cannot be rendered proves nothing: treat it as failed.
                    Err(e) => (false, format!("(check could not be rendered: {e})")),
                };
                self.journal(Event::Decision {
                    action: d.action.clone(),
                    node: d.node.clone(),
                    decision: if ok { "check-passed" } else { "check-failed" }.into(),
                    how: "check".into(),
                    detail: Some(check),
                })?;
                if ok {
                    self.prior.finished.insert(d.action.clone());
                    self.reporter.good(&format!(
                        "{}: check passed, already applied, not repeated",
                        d.node
                    ));
                } else {
                    self.reporter.note(&format!(
                        "{}: check says not applied; it will run again",
                        d.node
                    ));
                }
                continue;
            }
            if d.idempotent {
                self.journal(Event::Decision {
                    action: d.action.clone(),
                    node: d.node.clone(),
                    decision: "rerun-idempotent".into(),
                    how: "runbook: idempotent".into(),
                    detail: None,
                })?;
                continue;
            }
            let reporter = self.reporter;
            let prompter = &mut *self.prompter;
            let choice = reporter.suspend(|| prompter.in_doubt(&d.action, &d.node, &d.command));
            match choice {
                Some(InDoubtChoice::Rerun) => {
                    self.journal(Event::Decision {
                        action: d.action.clone(),
                        node: d.node.clone(),
                        decision: "operator-rerun".into(),
                        how: "tty".into(),
                        detail: None,
                    })?;
                }
                Some(InDoubtChoice::MarkDone) => {
                    self.journal(Event::Decision {
                        action: d.action.clone(),
                        node: d.node.clone(),
                        decision: "operator-mark-done".into(),
                        how: "tty".into(),
                        detail: None,
                    })?;
                    self.prior.finished.insert(d.action.clone());
                }
                Some(InDoubtChoice::Abort) => {
                    self.journal(Event::Decision {
                        action: d.action.clone(),
                        node: d.node.clone(),
                        decision: "operator-abort".into(),
                        how: "tty".into(),
                        detail: None,
                    })?;
                    self.journal(Event::Interrupted {
                        reason: "the operator aborted the resume".into(),
                    })?;
                    return Err(Stop::Outcome(Outcome::Stopped(
                        "the operator aborted the resume".into(),
                    )));
                }
                None => {
                    let reason = format!(
                        "action {} on {} is in doubt (sent, outcome unknown), is not idempotent and has no check; a human must decide: run `nats-rescue resume` in a terminal",
                        d.action, d.node
                    );
                    self.journal(Event::Interrupted {
                        reason: reason.clone(),
                    })?;
                    return Err(Stop::Outcome(Outcome::NeedDecision(reason)));
                }
            }
        }
        Ok(())
    }
}

enum RemoteCommandOrGet {
    Cmd(RemoteCommand),
    Get(String, Duration),
}

enum Outcome1 {
    Exec(ExecOutput),
    Http(u16, String),
}

/// `<step>@<node>`: the id of one action within an incident.
pub fn action_id(step: &str, node: &str) -> String {
    format!("{step}@{node}")
}

fn node_value(n: &Node) -> Value {
    let safe = |s: &str| Value::from_safe_string(s.to_string());
    let mut service = BTreeMap::new();
    service.insert("start", safe(&n.nats.service.start));
    service.insert("stop", safe(&n.nats.service.stop));
    service.insert("status", safe(&n.nats.service.status));
    service.insert(
        "reload",
        n.nats
            .service
            .reload
            .as_deref()
            .map(safe)
            .unwrap_or(Value::from(())),
    );
    let raft_dir = format!(
        "{}/jetstream/{}/_js_",
        n.nats.store_dir.trim_end_matches('/'),
        n.nats.system_account
    );
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    m.insert("name", Value::from(n.name.clone()));
    m.insert("host", Value::from(n.host.clone()));
    m.insert("user", Value::from(n.ssh.user.clone()));
    m.insert("port", Value::from(n.ssh.port));
    m.insert("cluster_port", Value::from(n.nats.cluster_port));
    m.insert("monitor_port", Value::from(n.nats.monitor_port));
    m.insert("config_file", Value::from(n.nats.config_file.clone()));
    m.insert("store_dir", Value::from(n.nats.store_dir.clone()));
    m.insert("system_account", Value::from(n.nats.system_account.clone()));
    m.insert(
        "jetstream_dir",
        Value::from(format!(
            "{}/jetstream",
            n.nats.store_dir.trim_end_matches('/')
        )),
    );
    m.insert("raft_dir", Value::from(raft_dir));
    m.insert("sudo", Value::from(n.ssh.sudo));
    m.insert("service", Value::from_serialize(&service));
    Value::from_serialize(&m)
}

fn parse_output(p: Option<Parse>, text: &str) -> Json {
    match p {
        Some(Parse::Json) => serde_json::from_str(text).unwrap_or(Json::Null),
        Some(Parse::Lines) => json!(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()),
        Some(Parse::Text) | None => json!(text.trim()),
    }
}

fn parse_kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated]", &s[..end])
}

fn result_event(
    action: &str,
    step: &str,
    node: &str,
    out: &ExecOutput,
    error: Option<String>,
) -> Event {
    Event::ActionResult {
        action: action.into(),
        step: step.into(),
        node: node.into(),
        exit_code: out.exit_code,
        timed_out: out.timed_out,
        error,
        stdout: truncate(&out.stdout.text, 4096),
        stdout_bytes: out.stdout.total_bytes,
        stdout_sha256: out.stdout.sha256.clone(),
        stderr: truncate(&out.stderr.text, 4096),
        stderr_bytes: out.stderr.total_bytes,
        stderr_sha256: out.stderr.sha256.clone(),
        duration_ms: out.duration.as_millis() as u64,
    }
}

/// The result of an action that could not be sent or run (the transport failed).
fn unreachable_event(
    action: &str,
    step: &str,
    node: &str,
    e: &TransportError,
    d: Duration,
) -> Event {
    let empty = crate::inventory::sha256_hex(b"");
    Event::ActionResult {
        action: action.into(),
        step: step.into(),
        node: node.into(),
        exit_code: None,
        timed_out: false,
        error: Some(e.to_string()),
        stdout: String::new(),
        stdout_bytes: 0,
        stdout_sha256: empty.clone(),
        stderr: String::new(),
        stderr_bytes: 0,
        stderr_sha256: empty,
        duration_ms: d.as_millis() as u64,
    }
}

fn summarize(entry: &Json, d: Duration) -> String {
    if let Some(e) = entry.get("error").and_then(Json::as_str) {
        return e.to_string();
    }
    if entry.get("timed_out").and_then(Json::as_bool) == Some(true) {
        return format!("timed out after {}", crate::duration::format(d));
    }
    let code = entry
        .get("exit_code")
        .map(|c| c.to_string())
        .unwrap_or_default();
    let err = entry
        .get("stderr")
        .and_then(Json::as_str)
        .unwrap_or("")
        .trim();
    let tail = if err.is_empty() {
        String::new()
    } else {
        format!(": {}", truncate(err.lines().last().unwrap_or(""), 200))
    };
    format!(
        "exit {code} in {}{tail}",
        crate::duration::format(Duration::from_millis(d.as_millis() as u64))
    )
}

fn list(v: &Json) -> String {
    match v.as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(Json::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => "-".into(),
    }
}

fn names(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The part of the facts worth journaling at each gathering (the full facts are large).
pub fn facts_summary(f: &Json) -> Json {
    let pick = |k: &str| f.get(k).cloned().unwrap_or(Json::Null);
    let mut nodes = Map::new();
    if let Some(ns) = f.get("nodes").and_then(Json::as_object) {
        for (name, n) in ns {
            nodes.insert(
                name.clone(),
                json!({
                    "ssh": n.get("ssh"), "service": n.get("service"), "process": n.get("process"),
                    "monitor": n.get("monitor"), "meta_leader": n.get("meta_leader"), "raft": n.get("raft"),
                    "healthz": n.get("healthz"),
                }),
            );
        }
    }
    json!({
        "has_leader": pick("has_leader"), "leader": pick("leader"), "healthy": pick("healthy"),
        "up": pick("up"), "down": pick("down"), "unreachable": pick("unreachable"), "frozen": pick("frozen"),
        "nodes": nodes,
    })
}
