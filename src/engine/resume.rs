//! Settling the actions an interrupted run left in doubt (intent journaled, no result):
//! the node's receipt first (the real outcome), then the step's `check`, then `idempotent`,
//! then the operator (exit 4 when there is none).

use super::prompter::InDoubtChoice;
use super::receipt::{self, Receipt};
use super::{Engine, InDoubt, Outcome, StepResult, Stop, UiEvent};
use crate::inventory::Node;
use crate::journal::{Decision, Event};
use crate::transport::RemoteCommand;
use std::time::{Duration, Instant};

/// What a receipt query found.
pub(super) enum ReceiptRead {
    Finished(i32),
    StillRunning,
    /// No receipt: the wrapper never started on the node.
    None,
    Unreachable(String),
}

/// How long past the node's command timeout a receipt that says "running" is waited for.
const RUNNING_GRACE: Duration = Duration::from_secs(5);
/// Budget of one receipt query beyond the connect timeout.
const QUERY_BUDGET: Duration = Duration::from_secs(10);

impl Engine<'_> {
    pub(super) fn settle_in_doubt(&mut self) -> StepResult {
        let in_doubt = std::mem::take(&mut self.prior.in_doubt);
        if in_doubt.iter().any(|d| d.mutating) {
            // Facts are gathered afresh on resume; checks are rendered from the runbook with
            // them when the journal's copy is redacted.
            self.gather_facts("resume")?;
        }
        for d in in_doubt.iter().filter(|d| d.mutating) {
            if d.node == super::nats::NATS_NODE {
                self.note(format!("in doubt: {} — {}", d.action, d.command));
                if self.settle_nats_in_doubt(d)? {
                    continue;
                }
            }
            let Some(node) = self.inv.node(&d.node).cloned() else {
                if d.idempotent {
                    self.decide(d, Decision::RerunIdempotent, "runbook: idempotent", None)?;
                    continue;
                }
                // A request on the system account with neither a check nor `idempotent`:
                // only a human can say whether it took effect.
                let reason = format!(
                    "action {} is in doubt (sent, outcome unknown), is not idempotent and has no check; inspect the cluster and mark it in the runbook, then resume",
                    d.action
                );
                self.journal(Event::Interrupted {
                    reason: reason.clone(),
                })?;
                return Err(Stop(Outcome::NeedDecision(reason)));
            };
            self.note(format!(
                "in doubt: {} on {} — {}",
                d.action, d.node, d.command
            ));
            if self.settle_by_receipt(d, &node)? {
                continue;
            }
            if self.settle_by_check(d, &node)?.is_some() {
                continue;
            }
            if d.idempotent {
                self.decide(d, Decision::RerunIdempotent, "runbook: idempotent", None)?;
                continue;
            }
            match self.prompter.in_doubt(&d.action, &d.node, &d.command) {
                Some(InDoubtChoice::Rerun) => {
                    self.decide(d, Decision::OperatorRerun, "tty", None)?;
                }
                Some(InDoubtChoice::MarkDone) => {
                    self.decide(d, Decision::OperatorMarkDone, "tty", None)?;
                    self.prior.finished.insert(d.action.clone());
                }
                Some(InDoubtChoice::Abort) => {
                    self.decide(d, Decision::OperatorAbort, "tty", None)?;
                    self.journal(Event::Interrupted {
                        reason: "the operator aborted the resume".into(),
                    })?;
                    return Err(Stop(Outcome::Stopped(
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
                    return Err(Stop(Outcome::NeedDecision(reason)));
                }
            }
        }
        Ok(())
    }

    pub(super) fn decide(
        &mut self,
        d: &InDoubt,
        decision: Decision,
        how: &str,
        detail: Option<String>,
    ) -> StepResult {
        self.journal(Event::Decision {
            action: d.action.clone(),
            node: d.node.clone(),
            decision: decision.as_str().into(),
            how: how.into(),
            detail,
        })
    }

    /// What the node's receipt says about an action, asked until `deadline`. With `retry`,
    /// a node that cannot be reached is asked again with backoff (a network flap); without,
    /// one failed attempt is the answer.
    pub(super) fn read_receipt(
        &mut self,
        d: &InDoubt,
        node: &Node,
        deadline: Instant,
        retry: bool,
    ) -> ReceiptRead {
        // The receipt lives in the HOME of whoever ran the action: query it the same way
        // (through sudo for privileged steps).
        let privileged = self
            .plan
            .step(&d.step)
            .is_some_and(crate::runbook::Step::is_privileged);
        let mut backoff = Duration::from_millis(500);
        loop {
            let mut q = RemoteCommand::new(
                receipt::query(&self.cfg.incident, &d.action),
                node.ssh.connect_timeout + QUERY_BUDGET,
            );
            q.sudo = privileged && node.ssh.sudo;
            match self.transport.exec(node, &q) {
                Ok(out) => match receipt::parse(&out.stdout.text) {
                    Receipt::Finished(rc) => return ReceiptRead::Finished(rc),
                    Receipt::Running if Instant::now() < deadline => {
                        self.note(format!(
                            "{}: the command is still running on the node; waiting for it",
                            d.node
                        ));
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Receipt::Running => return ReceiptRead::StillRunning,
                    Receipt::None => return ReceiptRead::None,
                },
                Err(e) if retry && Instant::now() + backoff < deadline => {
                    self.ui(UiEvent::Warn(format!(
                        "{}: cannot read the receipt yet ({e}); trying again in {}",
                        d.node,
                        crate::duration::format(backoff)
                    )));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(4));
                }
                Err(e) => {
                    self.ui(UiEvent::Warn(format!(
                        "{}: cannot read the receipt: {e}",
                        d.node
                    )));
                    return ReceiptRead::Unreachable(e.to_string());
                }
            }
        }
    }

    /// True when the receipt settled the action as done.
    fn settle_by_receipt(&mut self, d: &InDoubt, node: &Node) -> Result<bool, Stop> {
        let deadline = Instant::now() + node.ssh.command_timeout + RUNNING_GRACE;
        let ReceiptRead::Finished(rc) = self.read_receipt(d, node, deadline, false) else {
            return Ok(false);
        };
        self.decide(
            d,
            Decision::Receipt,
            "node receipt",
            Some(format!(
                "the command finished on the node with exit code {rc}"
            )),
        )?;
        if rc != 0 {
            self.ui(UiEvent::Warn(format!(
                "{}: it had finished with exit code {rc}",
                d.node
            )));
            return Ok(false);
        }
        // A backup's archive exists but its checksum was never journaled: redo the
        // (idempotent) backup so the record is complete.
        let is_backup = self
            .plan
            .step(&d.step)
            .is_some_and(crate::runbook::Step::is_backup);
        if !is_backup {
            self.prior.finished.insert(d.action.clone());
        }
        self.ui(UiEvent::Good(format!(
            "{}: finished before the interruption (exit 0), not repeated",
            d.node
        )));
        Ok(true)
    }

    /// The check as it was rendered with the intent (same captures and facts as the action);
    /// re-rendered from the runbook only when the journal's copy was redacted. `Some(applied)`
    /// when a check settled the action (either way), `None` when there is no check.
    pub(super) fn settle_by_check(
        &mut self,
        d: &InDoubt,
        node: &Node,
    ) -> Result<Option<bool>, Stop> {
        let step = self.plan.step(&d.step);
        let privileged = step.is_some_and(crate::runbook::Step::is_privileged);
        let check: Option<Result<String, String>> = match &d.check {
            Some(c) if !c.contains(crate::journal::REDACTED) => Some(Ok(c.clone())),
            _ => step
                .and_then(crate::runbook::Step::check)
                .map(|c| c.render(&self.node_ctx(node, None))),
        };
        let Some(check) = check else { return Ok(None) };
        let (ok, shown) = match check {
            Ok(check) => {
                let mut c = RemoteCommand::new(check.clone(), node.ssh.command_timeout);
                c.sudo = privileged && node.ssh.sudo;
                (
                    self.transport.exec(node, &c).is_ok_and(|o| o.success()),
                    check,
                )
            }
            // A check that cannot be rendered proves nothing: treat it as failed.
            Err(e) => (false, format!("(check could not be rendered: {e})")),
        };
        let decision = if ok {
            Decision::CheckPassed
        } else {
            Decision::CheckFailed
        };
        self.decide(d, decision, "check", Some(shown))?;
        if ok {
            self.prior.finished.insert(d.action.clone());
            self.ui(UiEvent::Good(format!(
                "{}: check passed, already applied, not repeated",
                d.node
            )));
        } else {
            self.note(format!(
                "{}: check says not applied; it will run again",
                d.node
            ));
        }
        Ok(Some(ok))
    }
}
