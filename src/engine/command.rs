//! `run:` and `http:` steps on their nodes: order and health gates, destructive
//! preconditions, intent journaled before anything is sent, results journaled and captured
//! as they arrive, receipts on the node for every mutating command.

use super::context::names;
use super::fanout::fanout;
use super::receipt;
use super::resume::ReceiptRead;
use super::{action_id, interrupt, Engine, InDoubt, Outcome, StepResult, Stop, UiEvent};
use crate::inventory::Node;
use crate::journal::{Decision, Event};
use crate::runbook::raw::Parse;
use crate::runbook::{NodeAction, Order, Request, Step, StepKind};
use crate::transport::{ExecOutput, RemoteCommand, TransportError};
use minijinja::value::Value;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// HTTP requests of a step never wait longer than this.
const HTTP_TIMEOUT_CAP: Duration = Duration::from_secs(30);
/// Output kept in the journal per stream (the full output's size and SHA-256 are kept too).
const JOURNAL_OUTPUT_CAP: usize = 4096;

/// One node's rendered work.
enum Work {
    Cmd(RemoteCommand),
    Get(String, Duration),
}

/// What came back.
pub(super) enum Reply {
    Exec(ExecOutput),
    Http(u16, String),
}

impl<'a> Engine<'a> {
    /// Sorts nodes for a `serial_by` order (node name breaks ties).
    pub(super) fn ordered(&self, step: &Step, mut nodes: Vec<Node>) -> Result<Vec<Node>, Stop> {
        let Some(Order::SerialBy { expr, descending }) = node_order(step) else {
            return Ok(nodes);
        };
        let mut keyed: Vec<(Value, Node)> = Vec::with_capacity(nodes.len());
        for n in nodes.drain(..) {
            let k = expr.eval(&self.node_ctx(&n, None)).map_err(|e| {
                self.runbook_error(&step.id, "`order.serial_by`", expr.source(), &e)
            })?;
            keyed.push((k, n));
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        if *descending {
            keyed.reverse();
        }
        Ok(keyed.into_iter().map(|(_, n)| n).collect())
    }

    /// Read-only or mutating commands (and GETs) on the selected nodes.
    pub(super) fn nodes(&mut self, step: &Step, a: &NodeAction, targets: Vec<Node>) -> StepResult {
        let targets = self.ordered(step, targets)?;
        self.reset_capture(&step.id);
        if targets.is_empty() {
            self.note("no node selected");
            return Ok(());
        }
        let mutating = step.is_mutating();
        if mutating {
            if self.cfg.rehearsal {
                for n in &targets {
                    let cmd = match &a.request {
                        Request::Shell(t) | Request::Http(t) => t
                            .render(&self.node_ctx(n, None))
                            .unwrap_or_else(|e| format!("(render error: {e})")),
                    };
                    self.ui(UiEvent::Command {
                        node: n.name.clone(),
                        command: cmd.clone(),
                        mutating: true,
                        rehearsal: true,
                    });
                    self.journal(Event::ActionRehearsed {
                        action: action_id(&step.id, &n.name),
                        step: step.id.clone(),
                        node: n.name.clone(),
                        command: cmd,
                    })?;
                    self.capture(&step.id, &n.name, json!({"ok": true, "rehearsed": true}));
                }
                return Ok(());
            }
            self.preconditions(step, a, &targets)?;
        }
        let batches: Vec<Vec<Node>> = match a.order {
            Order::Parallel => vec![targets],
            _ => targets.into_iter().map(|n| vec![n]).collect(),
        };
        let mut failures = Vec::new();
        for batch in batches {
            if interrupt::requested() {
                return Err(self.interrupted("interrupted by the operator (Ctrl-C)"));
            }
            failures.extend(self.run_batch(step, a, &batch)?);
            if !failures.is_empty() && mutating {
                break;
            }
            if let Some(g) = &a.gate {
                let who = names(&batch);
                self.note(format!("health gate after {who}: {}", g.until.source()));
                if !self.wait_for(&step.id, g, batch.first())? {
                    let msg = format!(
                        "step `{}`: health gate `{}` did not hold within {} after {who}; stopping before the next node",
                        step.id,
                        g.until.source(),
                        crate::duration::format(g.timeout)
                    );
                    self.ui(UiEvent::Bad(msg.clone()));
                    return Err(Stop(Outcome::Failed(msg)));
                }
            }
        }
        if step.kind == StepKind::Verify {
            self.verify_steps_run += 1;
        }
        if failures.is_empty() {
            return Ok(());
        }
        let msg = format!("step `{}` failed on {}", step.id, failures.join(", "));
        match step.kind {
            StepKind::Fix => Err(Stop(Outcome::Failed(
                self.next_steps(&step.id, &msg, &failures),
            ))),
            StepKind::Verify => Err(Stop(Outcome::VerifyFailed(msg))),
            // A diagnose command that fails is evidence, not an error.
            _ => Ok(()),
        }
    }

    /// Destructive steps: the latest approval was destructive, the named backup exists for
    /// every target, and the precondition holds on freshly gathered facts, immediately
    /// before anything is sent.
    fn preconditions(&mut self, step: &Step, a: &NodeAction, targets: &[Node]) -> StepResult {
        let refuse = |e: &mut Self, msg: String| {
            e.ui(UiEvent::Bad(msg.clone()));
            Err(Stop(Outcome::Failed(msg)))
        };
        if a.destructive && !matches!(&self.last_approval, Some((_, true))) {
            let msg = format!("step `{}` is destructive and the latest confirmation was not a destructive one; refusing", step.id);
            return refuse(self, msg);
        }
        if let Some(b) = &a.requires_backup {
            let missing: Vec<String> = targets
                .iter()
                .filter(|n| !self.backups.contains(&(b.clone(), n.name.clone())))
                .map(|n| n.name.clone())
                .collect();
            if !missing.is_empty() {
                let msg = format!("step `{}` requires a verified backup (`{b}`) of {} in this incident; none is recorded, refusing", step.id, missing.join(", "));
                return refuse(self, msg);
            }
        }
        if let Some(p) = &a.precondition {
            self.gather_facts(&step.id)?;
            if !self.condition(&step.id, "`precondition`", p, &self.ctx())? {
                let msg = format!("step `{}`: precondition `{}` does not hold on freshly gathered facts; refusing to run it", step.id, p.source());
                return refuse(self, msg);
            }
            self.ui(UiEvent::Good(format!("precondition holds: {}", p.source())));
        }
        Ok(())
    }

    /// One batch of nodes in parallel. Returns the nodes that failed.
    fn run_batch(
        &mut self,
        step: &Step,
        a: &NodeAction,
        batch: &[Node],
    ) -> Result<Vec<String>, Stop> {
        let mutating = step.is_mutating();
        let mut work: Vec<(Node, Work, Sent)> = Vec::new();
        for n in batch {
            let action = action_id(&step.id, &n.name);
            if mutating && self.prior.finished.contains(&action) {
                self.note(format!(
                    "{}: already done in this incident (journal), not repeated",
                    n.name
                ));
                self.capture(&step.id, &n.name, json!({"ok": true, "resumed": true}));
                continue;
            }
            let ctx = self.node_ctx(n, None);
            let timeout = a.timeout.unwrap_or(n.ssh.command_timeout);
            let rendered = match &a.request {
                Request::Shell(t) => t.render(&ctx).map(|cmd| {
                    Work::Cmd(RemoteCommand {
                        script: cmd,
                        timeout,
                        sudo: a.privileged && n.ssh.sudo,
                    })
                }),
                Request::Http(t) => t
                    .render(&ctx)
                    .map(|p| Work::Get(p, timeout.min(HTTP_TIMEOUT_CAP))),
            };
            let item = match rendered {
                Ok(w) => w,
                Err(e) => {
                    self.ui(UiEvent::Bad(format!(
                        "{}: cannot render the command: {e}",
                        n.name
                    )));
                    self.capture(
                        &step.id,
                        &n.name,
                        json!({"ok": false, "error": format!("render: {e}")}),
                    );
                    continue;
                }
            };
            let shown = match &item {
                Work::Cmd(c) => c.script.clone(),
                Work::Get(p, _) => format!("GET {p}"),
            };
            let check = match &a.check {
                Some(c) => Some(
                    c.render(&ctx)
                        .map_err(|e| self.runbook_error(&step.id, "`check`", c.source(), &e))?,
                ),
                None => None,
            };
            self.journal(Event::ActionIntent {
                action: action.clone(),
                step: step.id.clone(),
                node: n.name.clone(),
                command: shown.clone(),
                mutating,
                idempotent: a.idempotent,
                check: check.clone(),
            })?;
            self.ui(UiEvent::Command {
                node: n.name.clone(),
                command: shown.clone(),
                mutating,
                rehearsal: false,
            });
            work.push((
                n.clone(),
                item,
                Sent {
                    action,
                    shown,
                    check,
                },
            ));
        }
        let incident = self.cfg.incident.clone();
        let transport = self.transport.clone();
        let jobs: Vec<Node> = work.iter().map(|w| w.0.clone()).collect();
        let items: Arc<BTreeMap<String, (Work, Sent)>> = Arc::new(
            work.into_iter()
                .map(|(n, i, a)| (n.name.clone(), (i, a)))
                .collect(),
        );
        let items2 = items.clone();
        let mut failures = Vec::new();
        let mut stop: Option<Stop> = None;
        fanout(
            &jobs,
            self.cfg.concurrency,
            move |node| {
                let start = Instant::now();
                let Some((item, sent)) = items2.get(&node.name) else {
                    return (
                        Err(TransportError::Other("internal: no work".into())),
                        start.elapsed(),
                    );
                };
                let r = match item {
                    Work::Cmd(c) => {
                        let mut c = c.clone();
                        if mutating {
                            c.script = receipt::wrap(&incident, &sent.action, &c.script);
                        }
                        transport.exec(node, &c).map(Reply::Exec)
                    }
                    Work::Get(p, t) => transport
                        .http_get(node, p, *t)
                        .map(|h| Reply::Http(h.status, h.body)),
                };
                (r, start.elapsed())
            },
            // Each result is journaled the moment it arrives, while slower nodes still work.
            |_, node, (r, d)| {
                if stop.is_some() {
                    return;
                }
                let Some(sent) = items.get(&node.name).map(|x| x.1.clone()) else {
                    return;
                };
                match self.finish_action(step, a, &node.name, &sent, r, d) {
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
    /// succeeded (exit 0 / HTTP 2xx, or the step's `expect`).
    fn finish_action(
        &mut self,
        step: &Step,
        a: &NodeAction,
        node_name: &str,
        sent: &Sent,
        r: Result<Reply, TransportError>,
        d: Duration,
    ) -> Result<bool, Stop> {
        let mutating = step.is_mutating();
        let action = sent.action.as_str();
        if mutating {
            let lost = match &r {
                Err(TransportError::Lost { reason, .. }) => Some(reason.clone()),
                Ok(Reply::Exec(out)) if out.lost => Some(format!(
                    "no answer within {}",
                    crate::duration::format(out.duration)
                )),
                _ => None,
            };
            if let Some(reason) = lost {
                return self.settle_lost(step, a, node_name, sent, &reason);
            }
        }
        let (entry, ev) = match r {
            Ok(Reply::Exec(out)) => {
                let parsed = parse_output(a.parse, &out.stdout.text);
                let entry = json!({
                    "ok": out.success(), "exit_code": out.exit_code, "stdout": out.stdout.text,
                    "stderr": out.stderr.text, "parsed": parsed, "timed_out": out.timed_out,
                    "lines": out.stdout.text.lines().collect::<Vec<_>>(),
                });
                (entry, result_event(action, &step.id, node_name, &out))
            }
            Ok(Reply::Http(status, body)) => {
                let ok = (200..300).contains(&status);
                let parsed = parse_output(a.parse.or(Some(Parse::Json)), &body);
                let entry = json!({"ok": ok, "status": status, "body": body, "parsed": parsed, "stdout": body, "exit_code": if ok {0} else {i32::from(status)}});
                let out = ExecOutput::from_http(status, &body, d);
                (entry, result_event(action, &step.id, node_name, &out))
            }
            Err(e) => {
                let entry = json!({"ok": false, "error": e.to_string(), "exit_code": null});
                (entry, unreachable_event(action, &step.id, node_name, &e, d))
            }
        };
        self.journal(ev)?;
        let mut ok = entry.get("ok").and_then(Json::as_bool).unwrap_or(false);
        if let Some(expect) = &a.expect {
            if let Some(node) = self.inv.node(node_name) {
                let ctx = self.node_ctx(node, Some(&entry));
                ok = self.condition(&step.id, "`expect`", expect, &ctx)?;
            }
        }
        self.ui(UiEvent::Result {
            node: node_name.into(),
            ok,
            mutating,
            summary: summarize(&entry, d),
        });
        let mut entry = entry;
        entry["ok"] = json!(ok);
        self.capture(&step.id, node_name, entry);
        Ok(ok)
    }
}

impl Engine<'_> {
    /// A mutating command whose answer never came is IN DOUBT, not failed: journal that,
    /// then reconnect (with backoff, within the step's timeout) and read the node's receipt —
    /// the real exit status when it finished; no receipt means it never started there, and
    /// the step's check decides. A node that stays out of reach stops the run with the
    /// action in doubt; `resume` settles it the same way, never by re-running it blindly.
    fn settle_lost(
        &mut self,
        step: &Step,
        a: &NodeAction,
        node_name: &str,
        sent: &Sent,
        reason: &str,
    ) -> Result<bool, Stop> {
        self.journal(Event::ActionLost {
            action: sent.action.clone(),
            step: step.id.clone(),
            node: node_name.into(),
            reason: reason.into(),
        })?;
        self.ui(UiEvent::Warn(format!(
            "{node_name}: the connection was lost while the command ran ({reason}); its outcome is in doubt: reading the node's receipt"
        )));
        let Some(node) = self.inv.node(node_name).cloned() else {
            return Ok(false);
        };
        let d = InDoubt {
            action: sent.action.clone(),
            step: step.id.clone(),
            node: node_name.into(),
            command: sent.shown.clone(),
            mutating: true,
            idempotent: a.idempotent,
            check: sent.check.clone(),
            seq: 0,
        };
        let window = a.timeout.unwrap_or(node.ssh.command_timeout) + node.ssh.connect_timeout;
        let in_doubt = |e: &Self, why: &str| {
            Stop(Outcome::Failed(format!(
                "{node_name}: the connection was lost while step `{}` ran and {why}; action {} is IN DOUBT (journaled). Once {node_name} is reachable, `nats-rescue resume {}` reads its receipt and settles it (it is never re-run blindly)",
                step.id, sent.action, e.cfg.incident
            )))
        };
        match self.read_receipt(&d, &node, Instant::now() + window, true) {
            ReceiptRead::Finished(rc) => {
                self.decide(
                    &d,
                    Decision::Receipt,
                    "node receipt (after a lost connection)",
                    Some(format!(
                        "the command finished on the node with exit code {rc}"
                    )),
                )?;
                let out = ExecOutput {
                    exit_code: Some(rc),
                    stdout: crate::transport::Captured::from_bytes(b"", 0),
                    stderr: crate::transport::Captured::from_bytes(b"", 0),
                    duration: Duration::ZERO,
                    timed_out: false,
                    lost: false,
                };
                self.journal(result_event(&sent.action, &step.id, node_name, &out))?;
                let ok = rc == 0;
                self.ui(UiEvent::Result {
                    node: node_name.into(),
                    ok,
                    mutating: true,
                    summary: format!(
                        "exit {rc} (from the node's receipt; the output was lost with the connection)"
                    ),
                });
                self.capture(
                    &step.id,
                    node_name,
                    json!({"ok": ok, "exit_code": rc, "stdout": "", "stderr": "", "settled_by": "receipt"}),
                );
                Ok(ok)
            }
            ReceiptRead::None => {
                // The wrapper writes its receipt before anything else: without one, the
                // command never started there. The check (if any) confirms the state.
                let applied = self.settle_by_check(&d, &node)?.unwrap_or(false);
                if applied {
                    self.prior.finished.insert(sent.action.clone());
                }
                self.ui(UiEvent::Result {
                    node: node_name.into(),
                    ok: applied,
                    mutating: true,
                    summary: if applied {
                        "no receipt, but the check says it is applied".into()
                    } else {
                        "the command never started on the node (no receipt); not applied".into()
                    },
                });
                self.capture(
                    &step.id,
                    node_name,
                    json!({"ok": applied, "settled_by": "check"}),
                );
                Ok(applied)
            }
            ReceiptRead::StillRunning => Err(in_doubt(self, "it is still running there")),
            ReceiptRead::Unreachable(e) => Err(in_doubt(
                self,
                &format!("the node stayed unreachable ({e})"),
            )),
        }
    }
}

impl Engine<'_> {
    /// A failed fix: what failed where, that nothing after it ran, and what to do next.
    fn next_steps(&self, step: &str, msg: &str, failures: &[String]) -> String {
        let why: Vec<String> = failures
            .iter()
            .map(|n| {
                let e = self
                    .captures
                    .get(step)
                    .and_then(|c| c.get("nodes"))
                    .and_then(|x| x.get(n))
                    .cloned()
                    .unwrap_or(Json::Null);
                let detail = e
                    .get("error")
                    .and_then(Json::as_str)
                    .map(String::from)
                    .or_else(|| {
                        e.get("stderr")
                            .and_then(Json::as_str)
                            .and_then(|s| s.trim().lines().last().map(String::from))
                    })
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| {
                        format!(
                            "exit {}",
                            e.get("exit_code").map_or("?".into(), ToString::to_string)
                        )
                    });
                format!("{n}: {}", truncate(&detail, 200))
            })
            .collect();
        format!(
            "{msg} ({}). The runbook stopped there: no later step ran. Fix the cause on {}, then continue with `nats-rescue resume {}` (finished actions are not repeated); if {} cannot come back, see the `permanent-loss` runbook or restore from backup",
            why.join("; "),
            failures.join(", "),
            self.cfg.incident,
            if failures.len() == 1 { "it" } else { "they" }
        )
    }
}

/// What was sent to one node (as journaled with the intent).
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub action: String,
    pub shown: String,
    pub check: Option<String>,
}

fn node_order(step: &Step) -> Option<&Order> {
    match &step.action {
        crate::runbook::Action::Nodes(a) => Some(&a.order),
        _ => None,
    }
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

/// At most `max` bytes of `s`, cut at a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated]", &s[..end])
}

/// The journal record of a command that ran.
pub(super) fn result_event(action: &str, step: &str, node: &str, out: &ExecOutput) -> Event {
    Event::ActionResult {
        action: action.into(),
        step: step.into(),
        node: node.into(),
        exit_code: out.exit_code,
        timed_out: out.timed_out,
        error: None,
        stdout: truncate(&out.stdout.text, JOURNAL_OUTPUT_CAP),
        stdout_bytes: out.stdout.total_bytes,
        stdout_sha256: out.stdout.sha256.clone(),
        stderr: truncate(&out.stderr.text, JOURNAL_OUTPUT_CAP),
        stderr_bytes: out.stderr.total_bytes,
        stderr_sha256: out.stderr.sha256.clone(),
        duration_ms: millis(out.duration),
    }
}

/// The result of an action that could not be sent or run (the transport failed).
pub(super) fn unreachable_event(
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
        duration_ms: millis(d),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
        .map(ToString::to_string)
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
        crate::duration::format(Duration::from_millis(millis(d)))
    )
}
