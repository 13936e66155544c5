//! What the journal records (SPEC §4). One enum variant per event; the writer adds `seq`,
//! `ts`, `incident`, `prev` and `hash` around it. Field names are part of the on-disk format:
//! add fields, never change their meaning.

use serde::{Deserialize, Serialize};

/// One journaled event. Serialized with `"event": "<snake_case name>"` beside its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// First record of every incident.
    IncidentOpened {
        /// `user@host` of the operator.
        operator: String,
        tool_version: String,
        runbook: String,
        /// SHA-256 of the runbook's text.
        runbook_sha256: String,
        /// `builtin` or the path the runbook was read from.
        runbook_source: String,
        inventory: String,
        inventory_sha256: String,
        cluster: String,
        /// `--dry-run`: nothing mutating was sent.
        rehearsal: bool,
        /// Runbook variables as given (`--var`), secrets redacted.
        #[serde(default)]
        vars: std::collections::BTreeMap<String, String>,
        /// `--node` limits, empty = all.
        #[serde(default)]
        node_limit: Vec<String>,
    },
    StepStarted {
        step: String,
        kind: String,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    /// The nodes a per-node step was planned for, written when it starts: a resume finishes
    /// the same nodes whatever the facts say then.
    StepTargets {
        step: String,
        nodes: Vec<String>,
    },
    StepFinished {
        step: String,
        /// A [`StepOutcome`].
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A summary of gathered facts (for the audit trail and the report).
    FactsGathered {
        step: String,
        summary: serde_json::Value,
    },
    Finding {
        step: String,
        cause: String,
        /// `high`, `medium`, `low`.
        confidence: String,
        /// Ranks findings of equal confidence (0–100); absent in journals before 0.2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<i64>,
        summary: String,
        evidence: Vec<String>,
    },
    Confirmation {
        step: String,
        question: String,
        destructive: bool,
        /// true = approved.
        approved: bool,
        /// `tty`, `typed`, `--yes`, `--confirm-destructive`, `rehearsal`.
        how: String,
    },
    /// Written and fsynced BEFORE the command is sent.
    ActionIntent {
        /// Stable id within the incident: `<step>@<node>`.
        action: String,
        step: String,
        node: String,
        /// Fully rendered command (secrets redacted).
        command: String,
        mutating: bool,
        idempotent: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<String>,
    },
    ActionResult {
        action: String,
        step: String,
        node: String,
        #[serde(default)]
        exit_code: Option<i32>,
        #[serde(default)]
        timed_out: bool,
        /// Transport failure (unreachable, host key, ...), when the command could not run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        stdout: String,
        stdout_bytes: u64,
        stdout_sha256: String,
        stderr: String,
        stderr_bytes: u64,
        stderr_sha256: String,
        duration_ms: u64,
    },
    /// The command was sent and its answer never came (connection lost, or our deadline
    /// passed): the action is IN DOUBT until a `decision` (the node's receipt, a check)
    /// settles it. Not a result: nothing here says it failed.
    ActionLost {
        action: String,
        step: String,
        node: String,
        reason: String,
    },
    /// `--dry-run`: what would have been sent, and was not.
    ActionRehearsed {
        action: String,
        step: String,
        node: String,
        command: String,
    },
    BackupMade {
        step: String,
        node: String,
        path: String,
        size: u64,
        sha256: String,
        /// What was archived.
        source: String,
    },
    HostKeyAccepted {
        node: String,
        host: String,
        fingerprint: String,
    },
    /// A resume started: who, and what was in doubt.
    Resumed {
        operator: String,
        in_doubt: Vec<String>,
        #[serde(default)]
        repaired_torn_tail: bool,
    },
    /// How an in-doubt action was settled on resume.
    Decision {
        action: String,
        node: String,
        /// A [`Decision`].
        decision: String,
        how: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The run was interrupted (Ctrl-C, declined confirmation, lost decision).
    Interrupted {
        reason: String,
    },
    /// A torn last line (crash mid-write) was found; history is never rewritten, this record
    /// says where it was and how many bytes it had.
    TornTailRepaired {
        line: usize,
        bytes: usize,
    },
    /// A capture of the cluster (`nats-rescue capture --incident`) attached to this incident,
    /// named by the SHA-256 of the archive file.
    CaptureAttached {
        path: String,
        sha256: String,
        size: u64,
        /// When the capture was taken (its manifest's `captured_at`).
        captured_at: String,
        operator: String,
    },
    IncidentClosed {
        /// An [`IncidentOutcome`].
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

impl Event {
    /// The snake_case event name as written in the journal.
    pub fn name(&self) -> &'static str {
        match self {
            Event::IncidentOpened { .. } => "incident_opened",
            Event::StepStarted { .. } => "step_started",
            Event::StepSkipped { .. } => "step_skipped",
            Event::StepTargets { .. } => "step_targets",
            Event::StepFinished { .. } => "step_finished",
            Event::FactsGathered { .. } => "facts_gathered",
            Event::Finding { .. } => "finding",
            Event::Confirmation { .. } => "confirmation",
            Event::ActionIntent { .. } => "action_intent",
            Event::ActionResult { .. } => "action_result",
            Event::ActionLost { .. } => "action_lost",
            Event::ActionRehearsed { .. } => "action_rehearsed",
            Event::BackupMade { .. } => "backup_made",
            Event::HostKeyAccepted { .. } => "host_key_accepted",
            Event::Resumed { .. } => "resumed",
            Event::Decision { .. } => "decision",
            Event::Interrupted { .. } => "interrupted",
            Event::TornTailRepaired { .. } => "torn_tail_repaired",
            Event::CaptureAttached { .. } => "capture_attached",
            Event::IncidentClosed { .. } => "incident_closed",
        }
    }
}

/// Defines a closed vocabulary written as strings in the journal: one enum, its words, and
/// the parse back, so the engine, replay and the reports cannot disagree.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// Every word, in order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The word as written in the journal.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $word),+ }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($word => Some($name::$var),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// How a step ended (`step_finished.outcome`).
    StepOutcome {
        Ok => "ok",
        /// A mutating step in a `--dry-run`: shown, not sent.
        Rehearsed => "rehearsed",
        Failed => "failed",
        /// The operator declined or interrupted.
        Stopped => "stopped",
        /// A confirmation without anyone to give it.
        NeedsDecision => "needs-decision",
    }
}

vocabulary! {
    /// How an incident (or one run of it) ended (`incident_closed.outcome`).
    IncidentOutcome {
        /// The runbook's verify steps passed.
        Recovered => "recovered",
        /// Ran to the end; the runbook has no verify step.
        Completed => "completed",
        Rehearsed => "rehearsed",
        VerifyFailed => "verify-failed",
        /// A fix failed or a safety check refused: fix the cause, then resume.
        Failed => "failed",
        Stopped => "stopped",
        NeedsDecision => "needs-decision",
    }
}

impl IncidentOutcome {
    /// After these, `resume` has nothing to continue.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            IncidentOutcome::Recovered
                | IncidentOutcome::Completed
                | IncidentOutcome::Rehearsed
                | IncidentOutcome::VerifyFailed
        )
    }
}

vocabulary! {
    /// How an in-doubt action was settled (`decision.decision`).
    Decision {
        /// The node's own record of the outcome.
        Receipt => "receipt",
        CheckPassed => "check-passed",
        CheckFailed => "check-failed",
        RerunIdempotent => "rerun-idempotent",
        OperatorRerun => "operator-rerun",
        OperatorMarkDone => "operator-mark-done",
        OperatorAbort => "operator-abort",
    }
}

impl Decision {
    /// Settles the action as done (it is not run again).
    pub fn settles_done(self) -> bool {
        matches!(
            self,
            Decision::Receipt | Decision::CheckPassed | Decision::OperatorMarkDone
        )
    }
    /// Settles the action as not done (it runs again as a fresh action).
    pub fn settles_not_done(self) -> bool {
        self == Decision::CheckFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for o in IncidentOutcome::ALL {
            assert_eq!(IncidentOutcome::parse(o.as_str()), Some(*o));
        }
        for o in StepOutcome::ALL {
            assert_eq!(StepOutcome::parse(o.as_str()), Some(*o));
        }
        for d in Decision::ALL {
            assert_eq!(Decision::parse(d.as_str()), Some(*d));
        }
        // A failed or stopped incident can be resumed; a recovered one cannot.
        assert!(!IncidentOutcome::Failed.is_final());
        assert!(!IncidentOutcome::Stopped.is_final());
        assert!(IncidentOutcome::Recovered.is_final());
    }
}
