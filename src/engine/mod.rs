//! The interpreter: executes a validated `Plan` over a `Transport`, asking through a
//! `Prompter`, journaling through a `Sink`, showing progress through the `Reporter`.

pub mod executor;
pub mod fanout;
pub mod interrupt;
pub mod prompter;
pub mod receipt;
pub mod reporter;

pub use executor::{action_id, Engine, Finding, Gather, RunConfig};

use crate::journal::Event;
use std::collections::{BTreeMap, BTreeSet};

/// Where journal events go. The real one is the incident journal; tests collect in memory.
pub trait Sink {
    /// Durably records the event (fsynced) before returning.
    fn append(&mut self, ev: Event) -> Result<(), String>;
}

/// Collects events in memory (tests, diagnose).
#[derive(Debug, Default)]
pub struct MemorySink(pub Vec<Event>);

impl Sink for MemorySink {
    fn append(&mut self, ev: Event) -> Result<(), String> {
        self.0.push(ev);
        Ok(())
    }
}

/// An action sent before an interruption whose outcome the journal does not know (as the
/// journal's replay reports it).
pub use crate::journal::replay::InDoubtAction as InDoubt;

/// What an earlier run of the same incident already did (rebuilt from the journal).
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// Mutating actions that finished (ids `<step>@<node>`).
    pub finished: BTreeSet<String>,
    pub in_doubt: Vec<InDoubt>,
    /// Confirmations given, by step.
    pub confirmations: BTreeMap<String, bool>,
    /// (backup step, node) with a verified backup recorded.
    pub backups: BTreeSet<(String, String)>,
    /// Steps that finished `ok`: a fix step among them is done and not run again.
    pub finished_steps: BTreeSet<String>,
    /// Steps that started: their `when` was true and is not decided again on fresh facts.
    pub started_steps: BTreeSet<String>,
    /// The nodes each started per-node step was planned for.
    pub step_targets: BTreeMap<String, Vec<String>>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Verify steps passed.
    Recovered,
    /// Ran to the end; the runbook has no verify step.
    Completed,
    /// `--dry-run` finished.
    Rehearsed,
    VerifyFailed(String),
    /// A fix failed or a safety check refused.
    Failed(String),
    Stopped(String),
    NeedDecision(String),
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        use crate::exit_codes::*;
        match self {
            Outcome::Recovered | Outcome::Completed | Outcome::Rehearsed => OK,
            Outcome::VerifyFailed(_) | Outcome::Failed(_) => PROBLEMS,
            Outcome::Stopped(_) => STOPPED,
            Outcome::NeedDecision(_) => NEED_DECISION,
        }
    }
    /// The word journaled in `incident_closed`.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::Completed => "completed",
            Outcome::Rehearsed => "rehearsed",
            Outcome::VerifyFailed(_) => "verify-failed",
            Outcome::Failed(_) => "failed",
            Outcome::Stopped(_) => "stopped",
            Outcome::NeedDecision(_) => "needs-decision",
        }
    }
    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::VerifyFailed(d)
            | Outcome::Failed(d)
            | Outcome::Stopped(d)
            | Outcome::NeedDecision(d) => Some(d.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
