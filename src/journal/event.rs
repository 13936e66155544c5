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
        /// `ok`, `failed`, `timeout`, `rehearsed`.
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
        confidence: String,
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
        /// `receipt` (the node's own record of the outcome), `check-passed`, `check-failed`,
        /// `rerun-idempotent`, `operator-rerun`, `operator-mark-done`, `operator-abort`.
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
    IncidentClosed {
        /// `recovered`, `verify-failed`, `stopped`, `aborted`, `rehearsed`, `error`.
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
            Event::ActionRehearsed { .. } => "action_rehearsed",
            Event::BackupMade { .. } => "backup_made",
            Event::HostKeyAccepted { .. } => "host_key_accepted",
            Event::Resumed { .. } => "resumed",
            Event::Decision { .. } => "decision",
            Event::Interrupted { .. } => "interrupted",
            Event::TornTailRepaired { .. } => "torn_tail_repaired",
            Event::IncidentClosed { .. } => "incident_closed",
        }
    }
}
