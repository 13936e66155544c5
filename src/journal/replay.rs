//! Rebuilding an incident's state from its records, for `resume` (SPEC §4): what finished,
//! what is in doubt, what was approved.
//!
//! Actions: an `action_intent` makes an action pending; an `action_result` finishes it. A
//! `decision` of `receipt`, `check-passed` or `operator-mark-done` finishes it too (settled
//! as done); `check-failed` settles it as not done (neither finished nor in doubt, so it runs
//! again as a fresh action). `rerun-idempotent`, `operator-rerun` and `operator-abort` leave
//! it in doubt until a new intent/result settles it. A new intent for a finished action
//! (a deliberate re-run) makes it pending again.

use super::event::{Decision, Event, IncidentOutcome};
use super::record::{Record, GENESIS_HASH};
use super::verify::TornInfo;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The `incident_opened` record's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenedInfo {
    pub operator: String,
    pub tool_version: String,
    pub runbook: String,
    pub runbook_sha256: String,
    pub runbook_source: String,
    /// Inventory path.
    pub inventory: String,
    pub inventory_sha256: String,
    pub cluster: String,
    pub rehearsal: bool,
    pub vars: BTreeMap<String, String>,
    pub node_limit: Vec<String>,
    /// `ts` of the record.
    pub started: String,
}

/// How a finished action ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResultSummary {
    pub step: String,
    pub node: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Transport error: the command may not have run.
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    /// `result` (an `action_result` record) or the settling decision (`receipt`,
    /// `check-passed`, `operator-mark-done`).
    pub settled_by: String,
    /// Seq of the record that finished it.
    pub seq: u64,
}

impl ActionResultSummary {
    /// Exit 0 without timeout or transport error, or settled as done by a decision.
    pub fn succeeded(&self) -> bool {
        if self.settled_by != "result" {
            return true;
        }
        self.exit_code == Some(0) && !self.timed_out && self.error.is_none()
    }
}

/// An action with an intent and nothing that settles it: it may or may not have run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InDoubtAction {
    pub action: String,
    pub step: String,
    pub node: String,
    pub command: String,
    pub mutating: bool,
    pub idempotent: bool,
    pub check: Option<String>,
    /// Seq of the intent.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupInfo {
    pub step: String,
    pub node: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub source: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionInfo {
    pub action: String,
    pub node: String,
    pub decision: String,
    pub how: String,
    pub detail: Option<String>,
    pub seq: u64,
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResumeInfo {
    pub operator: String,
    pub in_doubt: Vec<String>,
    pub repaired_torn_tail: bool,
    pub seq: u64,
    pub ts: String,
}

/// The incident's state as the journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    pub incident: Option<String>,
    pub opened: Option<OpenedInfo>,
    /// Finished actions by action id (`<step>@<node>`): never to be repeated.
    pub finished_actions: BTreeMap<String, ActionResultSummary>,
    /// In intent order.
    pub in_doubt: Vec<InDoubtAction>,
    /// Actions rehearsed under `--dry-run` (nothing was sent).
    pub rehearsed_actions: BTreeSet<String>,
    /// Latest answer per step.
    pub confirmations: BTreeMap<String, bool>,
    /// Steps with a `step_finished` record, whatever the outcome.
    pub finished_steps: BTreeSet<String>,
    /// Steps with a `step_started` record.
    pub started_steps: BTreeSet<String>,
    /// The nodes each per-node step was planned for (latest `step_targets`).
    pub step_targets: BTreeMap<String, Vec<String>>,
    /// Latest outcome per finished step (`ok`, `failed`, `timeout`, `rehearsed`).
    pub step_outcomes: BTreeMap<String, String>,
    pub skipped_steps: BTreeSet<String>,
    pub backups: Vec<BackupInfo>,
    pub decisions: Vec<DecisionInfo>,
    pub resumes: Vec<ResumeInfo>,
    /// Reason of the last `interrupted` record since the last resume.
    pub interrupted: Option<String>,
    /// Outcome of `incident_closed`, unless resumed since.
    pub closed: Option<String>,
    pub last_seq: u64,
    /// [`GENESIS_HASH`] when there are no records.
    pub head_hash: String,
    /// Every `torn_tail_repaired` in the journal: (line, bytes).
    pub torn_tail_repairs: Vec<(usize, usize)>,
    /// Set by `JournalWriter::open_existing` when it repaired a torn tail on this open.
    pub repaired_torn_tail: Option<TornInfo>,
}

impl Replay {
    /// Whether `resume` has nothing left to do (closed with a final outcome).
    pub fn is_finished(&self) -> bool {
        self.closed
            .as_deref()
            .is_some_and(|o| IncidentOutcome::parse(o).is_some_and(IncidentOutcome::is_final))
    }

    pub fn is_rehearsal(&self) -> bool {
        self.opened.as_ref().is_some_and(|o| o.rehearsal)
    }

    /// `open`, `interrupted`, or the close outcome (`recovered`, `stopped`, ...).
    pub fn status(&self) -> String {
        match (&self.closed, &self.interrupted) {
            (Some(outcome), _) => outcome.clone(),
            (None, Some(_)) => "interrupted".into(),
            (None, None) => "open".into(),
        }
    }

    pub fn is_action_finished(&self, action: &str) -> bool {
        self.finished_actions.contains_key(action)
    }
}

/// Rebuilds the state from verified records.
pub fn replay(records: &[Record]) -> Replay {
    let mut r = Replay {
        incident: records.first().map(|r| r.incident.clone()),
        opened: None,
        finished_actions: BTreeMap::new(),
        in_doubt: Vec::new(),
        rehearsed_actions: BTreeSet::new(),
        confirmations: BTreeMap::new(),
        finished_steps: BTreeSet::new(),
        started_steps: BTreeSet::new(),
        step_targets: BTreeMap::new(),
        step_outcomes: BTreeMap::new(),
        skipped_steps: BTreeSet::new(),
        backups: Vec::new(),
        decisions: Vec::new(),
        resumes: Vec::new(),
        interrupted: None,
        closed: None,
        last_seq: records.last().map(|r| r.seq).unwrap_or(0),
        head_hash: records
            .last()
            .map(|r| r.hash.clone())
            .unwrap_or_else(|| GENESIS_HASH.to_string()),
        torn_tail_repairs: Vec::new(),
        repaired_torn_tail: None,
    };
    // Pending intents by action id; order kept by seq.
    let mut pending: BTreeMap<String, InDoubtAction> = BTreeMap::new();

    for rec in records {
        match &rec.event {
            Event::IncidentOpened {
                operator,
                tool_version,
                runbook,
                runbook_sha256,
                runbook_source,
                inventory,
                inventory_sha256,
                cluster,
                rehearsal,
                vars,
                node_limit,
            } => {
                r.opened = Some(OpenedInfo {
                    operator: operator.clone(),
                    tool_version: tool_version.clone(),
                    runbook: runbook.clone(),
                    runbook_sha256: runbook_sha256.clone(),
                    runbook_source: runbook_source.clone(),
                    inventory: inventory.clone(),
                    inventory_sha256: inventory_sha256.clone(),
                    cluster: cluster.clone(),
                    rehearsal: *rehearsal,
                    vars: vars.clone(),
                    node_limit: node_limit.clone(),
                    started: rec.ts.clone(),
                })
            }
            Event::StepStarted { step, .. } => {
                r.started_steps.insert(step.clone());
            }
            Event::StepTargets { step, nodes } => {
                r.step_targets.insert(step.clone(), nodes.clone());
            }
            Event::FactsGathered { .. } | Event::Finding { .. } => {}
            Event::HostKeyAccepted { .. } | Event::CaptureAttached { .. } => {}
            Event::StepSkipped { step, .. } => {
                r.skipped_steps.insert(step.clone());
            }
            Event::StepFinished { step, outcome, .. } => {
                r.finished_steps.insert(step.clone());
                r.step_outcomes.insert(step.clone(), outcome.clone());
            }
            Event::Confirmation { step, approved, .. } => {
                r.confirmations.insert(step.clone(), *approved);
            }
            Event::ActionIntent {
                action,
                step,
                node,
                command,
                mutating,
                idempotent,
                check,
            } => {
                r.finished_actions.remove(action);
                pending.insert(
                    action.clone(),
                    InDoubtAction {
                        action: action.clone(),
                        step: step.clone(),
                        node: node.clone(),
                        command: command.clone(),
                        mutating: *mutating,
                        idempotent: *idempotent,
                        check: check.clone(),
                        seq: rec.seq,
                    },
                );
            }
            Event::ActionResult {
                action,
                step,
                node,
                exit_code,
                timed_out,
                error,
                duration_ms,
                ..
            } => {
                pending.remove(action);
                r.finished_actions.insert(
                    action.clone(),
                    ActionResultSummary {
                        step: step.clone(),
                        node: node.clone(),
                        exit_code: *exit_code,
                        timed_out: *timed_out,
                        error: error.clone(),
                        duration_ms: Some(*duration_ms),
                        settled_by: "result".into(),
                        seq: rec.seq,
                    },
                );
            }
            // Still pending (in doubt): only a decision or a new intent/result settles it.
            Event::ActionLost { .. } => {}
            Event::ActionRehearsed { action, .. } => {
                r.rehearsed_actions.insert(action.clone());
            }
            Event::BackupMade {
                step,
                node,
                path,
                size,
                sha256,
                source,
            } => r.backups.push(BackupInfo {
                step: step.clone(),
                node: node.clone(),
                path: path.clone(),
                size: *size,
                sha256: sha256.clone(),
                source: source.clone(),
                seq: rec.seq,
            }),
            Event::Resumed {
                operator,
                in_doubt,
                repaired_torn_tail,
            } => {
                r.closed = None;
                r.interrupted = None;
                r.resumes.push(ResumeInfo {
                    operator: operator.clone(),
                    in_doubt: in_doubt.clone(),
                    repaired_torn_tail: *repaired_torn_tail,
                    seq: rec.seq,
                    ts: rec.ts.clone(),
                });
            }
            Event::Decision {
                action,
                node,
                decision,
                how,
                detail,
            } => {
                r.decisions.push(DecisionInfo {
                    action: action.clone(),
                    node: node.clone(),
                    decision: decision.clone(),
                    how: how.clone(),
                    detail: detail.clone(),
                    seq: rec.seq,
                    ts: rec.ts.clone(),
                });
                if Decision::parse(decision).is_some_and(Decision::settles_done) {
                    let intent = pending.remove(action);
                    r.finished_actions.insert(
                        action.clone(),
                        ActionResultSummary {
                            step: intent.map(|i| i.step).unwrap_or_default(),
                            node: node.clone(),
                            exit_code: None,
                            timed_out: false,
                            error: None,
                            duration_ms: None,
                            settled_by: decision.clone(),
                            seq: rec.seq,
                        },
                    );
                } else if Decision::parse(decision).is_some_and(Decision::settles_not_done) {
                    pending.remove(action);
                }
            }
            Event::Interrupted { reason } => r.interrupted = Some(reason.clone()),
            Event::TornTailRepaired { line, bytes } => r.torn_tail_repairs.push((*line, *bytes)),
            Event::IncidentClosed { outcome, .. } => r.closed = Some(outcome.clone()),
        }
    }
    let mut in_doubt: Vec<InDoubtAction> = pending.into_values().collect();
    in_doubt.sort_by_key(|a| a.seq);
    r.in_doubt = in_doubt;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::now_ts;

    pub(crate) fn chain(events: Vec<Event>) -> Vec<Record> {
        let mut prev = GENESIS_HASH.to_string();
        events
            .into_iter()
            .enumerate()
            .map(|(i, ev)| {
                let r = Record::seal(i as u64 + 1, now_ts(), "inc", ev, &prev);
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn intent(a: &str, idempotent: bool) -> Event {
        Event::ActionIntent {
            action: a.into(),
            step: a.split('@').next().unwrap_or_default().into(),
            node: a.split('@').nth(1).unwrap_or_default().into(),
            command: format!("do {a}"),
            mutating: true,
            idempotent,
            check: None,
        }
    }

    fn result(a: &str, code: i32) -> Event {
        Event::ActionResult {
            action: a.into(),
            step: "s".into(),
            node: "n".into(),
            exit_code: Some(code),
            timed_out: false,
            error: None,
            stdout: String::new(),
            stdout_bytes: 0,
            stdout_sha256: String::new(),
            stderr: String::new(),
            stderr_bytes: 0,
            stderr_sha256: String::new(),
            duration_ms: 5,
        }
    }

    fn decision(a: &str, d: &str) -> Event {
        Event::Decision {
            action: a.into(),
            node: "n".into(),
            decision: d.into(),
            how: "tty".into(),
            detail: None,
        }
    }

    #[test]
    fn settles_actions() {
        let records = chain(vec![
            intent("a@n1", false),
            result("a@n1", 0),
            intent("b@n1", false),
            intent("c@n1", true),
            decision("c@n1", "operator-mark-done"),
            intent("d@n1", false),
            decision("d@n1", "check-failed"),
            intent("e@n1", false),
            decision("e@n1", "operator-rerun"),
            Event::Interrupted {
                reason: "ctrl-c".into(),
            },
        ]);
        let r = replay(&records);
        assert_eq!(
            r.finished_actions.keys().cloned().collect::<Vec<_>>(),
            vec!["a@n1", "c@n1"]
        );
        assert!(r.finished_actions["a@n1"].succeeded());
        assert_eq!(r.finished_actions["c@n1"].settled_by, "operator-mark-done");
        let doubt: Vec<&str> = r.in_doubt.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(doubt, vec!["b@n1", "e@n1"]);
        assert_eq!(r.status(), "interrupted");
        assert_eq!(r.last_seq, 10);
        assert_eq!(r.head_hash, records[9].hash);
    }

    #[test]
    fn rerun_intent_reopens_and_resume_clears_close() {
        let records = chain(vec![
            intent("a@n1", true),
            result("a@n1", 1),
            Event::IncidentClosed {
                outcome: "stopped".into(),
                detail: None,
            },
            Event::Resumed {
                operator: "o@h".into(),
                in_doubt: vec![],
                repaired_torn_tail: false,
            },
            intent("a@n1", true),
        ]);
        let r = replay(&records);
        assert!(r.finished_actions.is_empty());
        assert_eq!(r.in_doubt.len(), 1);
        assert_eq!(r.closed, None);
        assert_eq!(r.status(), "open");
        assert_eq!(r.resumes.len(), 1);
    }
}
