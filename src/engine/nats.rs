//! `nats:` steps: a request on the system account (`$JS.API.*`, `$SYS.REQ.*`), journaled and
//! resumed like a command — intent fsynced before the request, the reply after, shown and not
//! sent by `--dry-run`, and a request whose reply never came is in doubt until its `check`
//! (an expression over fresh facts) says whether it took effect.

use super::command::{result_event, unreachable_event};
use super::{action_id, Engine, Outcome, StepResult, Stop, UiEvent};
use crate::journal::{Decision, Event};
use crate::natsys::Reply;
use crate::runbook::{NatsSpec, Step};
use crate::transport::{Captured, ExecOutput, TransportError};
use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};

/// Where a `nats` action "runs" in the journal: the cluster, through the system account.
pub const NATS_NODE: &str = "cluster";

impl Engine<'_> {
    pub(super) fn nats(&mut self, step: &Step, n: &NatsSpec) -> StepResult {
        let id = step.id.as_str();
        let ctx = self.ctx();
        let subject = self.text(id, "`nats.request`", &n.subject, &ctx)?;
        let body = match &n.body {
            Some(b) => {
                let text = self.text(id, "`nats.body`", b, &ctx)?;
                let v: Json = serde_json::from_str(&text).map_err(|e| {
                    self.runbook_error(id, "`nats.body`", b.source(), &format!("not JSON: {e}"))
                })?;
                Some(v)
            }
            None => None,
        };
        let mutating = !n.read_only;
        let action = action_id(id, NATS_NODE);
        let shown = match &body {
            Some(b) => format!("NATS request {subject} {b}"),
            None => format!("NATS request {subject}"),
        };
        self.reset_capture(id);
        if mutating && self.cfg.rehearsal {
            self.ui(UiEvent::Command {
                node: NATS_NODE.into(),
                command: shown.clone(),
                mutating: true,
                rehearsal: true,
            });
            self.capture(id, NATS_NODE, json!({"ok": true, "rehearsed": true}));
            return self.journal(Event::ActionRehearsed {
                action,
                step: id.into(),
                node: NATS_NODE.into(),
                command: shown,
            });
        }
        if mutating && self.prior.finished.contains(&action) {
            self.note("already done in this incident (journal), not sent again");
            self.capture(id, NATS_NODE, json!({"ok": true, "resumed": true}));
            return Ok(());
        }
        let nodes: Vec<&crate::inventory::Node> = self.inv.nodes.iter().collect();
        let Some(route) = crate::nats::sysfacts::route(&nodes, n.timeout) else {
            let msg = format!(
                "step `{id}` sends a request on the system account, and the inventory names no system credentials (nats.system_user, system_creds or system_nkey_seed)"
            );
            self.ui(UiEvent::Bad(msg.clone()));
            return Err(Stop(Outcome::Failed(msg)));
        };
        self.journal(Event::ActionIntent {
            action: action.clone(),
            step: id.into(),
            node: NATS_NODE.into(),
            command: shown.clone(),
            mutating,
            idempotent: n.idempotent,
            check: n.check.as_ref().map(|c| c.source().to_string()),
        })?;
        self.ui(UiEvent::Command {
            node: NATS_NODE.into(),
            command: shown,
            mutating,
            rehearsal: false,
        });
        let start = Instant::now();
        // Directly, or through an SSH tunnel to a `monitor: ssh` node (behind a bastion).
        let sent = crate::nats::sysfacts::connect(&*self.transport, &route).and_then(|c| {
            c.client
                .request(&subject, body.as_ref(), n.timeout, n.broadcast)
        });
        let took = start.elapsed();
        match sent {
            Ok(replies) => self.nats_replies(step, n, &action, &replies, took),
            Err(e) if e.maybe_pending() && mutating => {
                self.journal(Event::ActionLost {
                    action: action.clone(),
                    step: id.into(),
                    node: NATS_NODE.into(),
                    reason: format!("{e} (the request may still be pending)"),
                })?;
                self.settle_pending(step, n, &action)
            }
            Err(e) => {
                let err = TransportError::Other(e.to_string());
                self.journal(unreachable_event(&action, id, NATS_NODE, &err, took))?;
                let msg = format!("step `{id}`: {e}");
                self.ui(UiEvent::Bad(msg.clone()));
                self.capture(id, NATS_NODE, json!({"ok": false, "error": e.to_string()}));
                if step.kind == crate::runbook::StepKind::Diagnose {
                    return Ok(());
                }
                Err(Stop(Outcome::Failed(msg)))
            }
        }
    }

    fn nats_replies(
        &mut self,
        step: &Step,
        n: &NatsSpec,
        action: &str,
        replies: &[Reply],
        took: Duration,
    ) -> StepResult {
        let id = step.id.as_str();
        let text = serde_json::to_string(replies).unwrap_or_default();
        let api_error = replies.iter().find_map(|r| r.error.as_ref());
        let out = ExecOutput {
            exit_code: Some(i32::from(api_error.is_some())),
            stdout: Captured::from_bytes(text.as_bytes(), text.len()),
            stderr: Captured::from_bytes(b"", 0),
            duration: took,
            timed_out: false,
            lost: false,
        };
        self.journal(result_event(action, id, NATS_NODE, &out))?;
        let first = replies.first().map_or(Json::Null, |r| r.body.clone());
        let all: Vec<Json> = replies.iter().map(|r| r.body.clone()).collect();
        let ok = match &n.expect {
            Some(e) => {
                let ctx = self.ctx_with(&[
                    ("reply", minijinja::value::Value::from_serialize(&first)),
                    ("replies", minijinja::value::Value::from_serialize(&all)),
                ]);
                self.condition(id, "`nats.expect`", e, &ctx)?
            }
            None => !replies.is_empty() && api_error.is_none(),
        };
        let summary = match api_error {
            Some(e) => format!("API error {}: {}", e.code, e.description),
            None => format!(
                "{} repl{} in {took:?}",
                replies.len(),
                if replies.len() == 1 { "y" } else { "ies" }
            ),
        };
        self.ui(UiEvent::Result {
            node: NATS_NODE.into(),
            ok,
            mutating: !n.read_only,
            summary: summary.clone(),
        });
        self.capture(
            id,
            NATS_NODE,
            json!({"ok": ok, "reply": first, "replies": all, "error": api_error.map(|e| e.description.clone())}),
        );
        if ok || step.kind == crate::runbook::StepKind::Diagnose {
            return Ok(());
        }
        let msg = format!("step `{id}`: the reply does not meet the expectation ({summary})");
        Err(Stop(if step.kind == crate::runbook::StepKind::Verify {
            Outcome::VerifyFailed(msg)
        } else {
            Outcome::Failed(msg)
        }))
    }

    /// No reply in time: the request may be pending. Its check, on facts gathered afresh for
    /// up to the request's timeout, says whether it took effect; otherwise it stays in doubt.
    fn settle_pending(&mut self, step: &Step, n: &NatsSpec, action: &str) -> StepResult {
        let id = step.id.as_str();
        self.ui(UiEvent::Warn(format!(
            "no reply to step `{id}` within {}: the request may still be pending",
            crate::duration::format(n.timeout)
        )));
        if let Some(c) = &n.check {
            let deadline = Instant::now() + n.timeout;
            loop {
                self.gather_facts(id)?;
                if self.condition(id, "`nats.check`", c, &self.ctx())? {
                    self.journal(Event::Decision {
                        action: action.into(),
                        node: NATS_NODE.into(),
                        decision: Decision::CheckPassed.as_str().into(),
                        how: "check (no reply)".into(),
                        detail: Some(c.source().to_string()),
                    })?;
                    self.ui(UiEvent::Good(format!("check holds: {}", c.source())));
                    self.capture(id, NATS_NODE, json!({"ok": true, "settled_by": "check"}));
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Err(Stop(Outcome::Failed(format!(
            "step `{id}`: no reply and no sign that the request took effect; it is IN DOUBT (journaled). `nats-rescue resume {}` decides with the step's check, never by sending it blindly",
            self.cfg.incident
        ))))
    }

    /// Resume: a `nats` request left in doubt is settled by its check on fresh facts, then
    /// `idempotent`, then the operator (as any other action).
    pub(super) fn settle_nats_in_doubt(&mut self, d: &super::InDoubt) -> Result<bool, Stop> {
        let Some(step) = self.plan.step(&d.step) else {
            return Ok(false);
        };
        let crate::runbook::Action::Nats(n) = &step.action else {
            return Ok(false);
        };
        let Some(c) = n.check.clone() else {
            return Ok(false);
        };
        let applied = self.condition(&d.step, "`nats.check`", &c, &self.ctx())?;
        self.decide(
            d,
            if applied {
                Decision::CheckPassed
            } else {
                Decision::CheckFailed
            },
            "check",
            Some(c.source().to_string()),
        )?;
        if applied {
            self.prior.finished.insert(d.action.clone());
            self.ui(UiEvent::Good(format!(
                "{}: the check says it took effect; not sent again",
                d.action
            )));
        } else {
            self.note(format!(
                "{}: the check says it did not take effect; it will be sent again",
                d.action
            ));
        }
        Ok(true)
    }
}
