//! The engine's one output: a stream of events. The journal's events (durable, hashed) and
//! UI-only ones (what is shown while it happens) go to every [`Listener`] in order: the
//! journal writer first (so an intent is fsynced before anything is sent or shown), then the
//! terminal reporter, then collectors (`--json`, `diagnose`). The engine never formats a
//! terminal line itself.

use crate::journal::Event;
use crate::runbook::StepKind;
use std::time::Duration;

/// Something that happened, for whoever listens.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// Journaled (and shown, where the reporter has something to say about it).
    Journal(Event),
    /// Shown only.
    Ui(UiEvent),
}

/// What only the operator's screen (or a collector) cares about.
#[derive(Debug, Clone, PartialEq)]
pub enum UiEvent {
    /// A step begins, with its rendered title.
    StepHeader {
        kind: StepKind,
        id: String,
        title: Option<String>,
    },
    /// A step whose `when` is false (shown with `--verbose`).
    Skipped {
        step: String,
        reason: String,
    },
    /// Context for the operator (a step's message, what resume decided).
    Note(String),
    /// Something the operator should notice.
    Warn(String),
    /// Something went as it should.
    Good(String),
    /// Something failed.
    Bad(String),
    /// A command or request about to be sent (or, in a rehearsal, not sent).
    Command {
        node: String,
        command: String,
        mutating: bool,
        rehearsal: bool,
    },
    /// One node's result of a command or request.
    Result {
        node: String,
        ok: bool,
        mutating: bool,
        summary: String,
    },
    /// A wait begins: `what` for at most `timeout`.
    WaitStart {
        what: String,
        timeout: Duration,
    },
    /// A wait's latest poll.
    WaitProgress(String),
    WaitEnd,
    /// The runbook names what to run next.
    Recommendation(String),
}

/// Receives every event in order. An error stops the run (the journal could not be written:
/// nothing else may happen).
pub trait Listener {
    fn on_event(&mut self, ev: &EngineEvent) -> Result<(), String>;
}

/// Keeps every event (tests; the `--json` and `diagnose` collectors read from it).
#[derive(Debug, Default)]
pub struct Recorder {
    pub events: Vec<EngineEvent>,
}

impl Recorder {
    /// The journal events, in order.
    pub fn journal(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Journal(j) => Some(j),
                EngineEvent::Ui(_) => None,
            })
            .collect()
    }

    /// Findings, in the order they were made.
    pub fn findings(&self) -> Vec<super::Finding> {
        self.journal()
            .into_iter()
            .filter_map(super::Finding::from_event)
            .collect()
    }

    /// What the runbook recommends running next.
    pub fn recommendations(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Ui(UiEvent::Recommendation(r)) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Listener for Recorder {
    fn on_event(&mut self, ev: &EngineEvent) -> Result<(), String> {
        self.events.push(ev.clone());
        Ok(())
    }
}
