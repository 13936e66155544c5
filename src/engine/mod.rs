//! The interpreter: executes a validated [`Plan`] over a [`Transport`], asking through a
//! [`Prompter`], and telling [`Listener`]s (journal, terminal, collectors) what happens
//! through one stream of [`EngineEvent`]s.
//!
//! The rooms: [`context`] (what templates see), `step` (the walk over steps: `when`,
//! groups, resume), `finding`, `confirm`, `wait`, `command` (run/http on nodes),
//! `backup`, `resume` (settling in-doubt actions).

mod backup;
mod command;
mod confirm;
mod context;
pub mod events;
pub mod fanout;
pub mod finding;
pub mod interrupt;
mod nats;
pub mod prompter;
pub mod receipt;
mod resume;
mod routes;
mod step;
mod wait;

pub use backup::DEFAULT_DEST as DEFAULT_BACKUP_DEST;
pub use events::{EngineEvent, Listener, Recorder, UiEvent};
pub use finding::Finding;

use crate::inventory::Inventory;
use crate::journal::{Event, IncidentOutcome, StepOutcome};
use crate::nats::{ClusterFacts, Thresholds};
use crate::runbook::Plan;
use crate::transport::Transport;
use prompter::Prompter;
use serde_json::Map;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Gathers cluster facts (the `probe: nats` power). Injected so engine tests can use fixed
/// facts; the real one is [`crate::nats::gather`] over the transport.
pub type Gather = dyn Fn(&Inventory, &Thresholds) -> ClusterFacts + Send + Sync;

/// Gathers only what the monitoring endpoints say, for waits whose condition reads nothing
/// else ([`crate::nats::light`]); the real one is [`crate::nats::light::gather_light`].
pub type LightGather =
    dyn Fn(&Inventory, &Thresholds, crate::nats::light::LightLevel) -> ClusterFacts + Send + Sync;

/// `<step>@<node>`: the id of one action within an incident.
pub fn action_id(step: &str, node: &str) -> String {
    format!("{step}@{node}")
}

/// What the engine is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every step (or, in a rehearsal, every step with mutating actions only shown).
    Run,
    /// `diagnose`: only diagnose steps, on facts gathered once for every runbook.
    Diagnose,
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub incident: String,
    pub mode: Mode,
    /// `--dry-run`: read-only steps run, mutating ones are shown and not sent.
    pub rehearsal: bool,
    /// `--var` values (the plan's defaults fill the rest).
    pub vars: BTreeMap<String, String>,
    /// `--node`: limit per-node fix steps to these nodes.
    pub node_limit: Vec<String>,
    pub concurrency: usize,
    /// Default poll interval of waits.
    pub poll_interval: Duration,
}

impl RunConfig {
    pub fn new(incident: impl Into<String>) -> Self {
        RunConfig {
            incident: incident.into(),
            mode: Mode::Run,
            rehearsal: false,
            vars: BTreeMap::new(),
            node_limit: Vec::new(),
            concurrency: fanout::DEFAULT_CONCURRENCY,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// An action sent before an interruption whose outcome the journal does not know.
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
    /// The archives those backups made, so a resumed run still sees `steps.<backup>.nodes`
    /// (a later confirmation lists them) without making them again.
    pub archives: Vec<crate::journal::BackupInfo>,
    /// Steps that finished `ok`: a fix step among them is done and not run again.
    pub finished_steps: BTreeSet<String>,
    /// Steps (and groups) that started: their `when` was true and is not decided again.
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
    /// A fix failed, a safety check refused, or the runbook itself is wrong (a condition
    /// that cannot be evaluated).
    Failed(String),
    Stopped(String),
    NeedDecision(String),
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        use crate::exit_codes::{NEED_DECISION, OK, PROBLEMS, STOPPED};
        match self {
            Outcome::Recovered | Outcome::Completed | Outcome::Rehearsed => OK,
            Outcome::VerifyFailed(_) | Outcome::Failed(_) => PROBLEMS,
            Outcome::Stopped(_) => STOPPED,
            Outcome::NeedDecision(_) => NEED_DECISION,
        }
    }
    /// As journaled in `incident_closed`.
    pub fn journaled(&self) -> IncidentOutcome {
        match self {
            Outcome::Recovered => IncidentOutcome::Recovered,
            Outcome::Completed => IncidentOutcome::Completed,
            Outcome::Rehearsed => IncidentOutcome::Rehearsed,
            Outcome::VerifyFailed(_) => IncidentOutcome::VerifyFailed,
            Outcome::Failed(_) => IncidentOutcome::Failed,
            Outcome::Stopped(_) => IncidentOutcome::Stopped,
            Outcome::NeedDecision(_) => IncidentOutcome::NeedsDecision,
        }
    }
    /// As journaled in `step_finished` for the step that ended the run this way.
    fn step_outcome(&self) -> StepOutcome {
        match self {
            Outcome::Stopped(_) => StepOutcome::Stopped,
            Outcome::NeedDecision(_) => StepOutcome::NeedsDecision,
            _ => StepOutcome::Failed,
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

/// Why a step stopped the run.
pub(crate) struct Stop(pub(crate) Outcome);

pub(crate) type StepResult = Result<(), Stop>;

/// Executes one plan.
pub struct Engine<'a> {
    plan: &'a Plan,
    inv: &'a Inventory,
    transport: Arc<dyn Transport>,
    gather: Arc<Gather>,
    /// Set: waits on leader/monitoring-only conditions poll with it (see `wait`).
    light_gather: Option<Arc<LightGather>>,
    prompter: &'a mut dyn Prompter,
    listeners: Vec<&'a mut dyn Listener>,
    cfg: RunConfig,
    /// The plan's variables resolved (defaults, then `--var`).
    vars: BTreeMap<String, String>,
    thresholds: Thresholds,
    facts: context::Facts,
    captures: Map<String, serde_json::Value>,
    prior: Prior,
    backups: BTreeSet<(String, String)>,
    verify_steps_run: usize,
    /// The latest confirmation approved in this run: (step, destructive).
    last_approval: Option<(String, bool)>,
    /// Groups decided in this run: index → entered.
    groups: BTreeMap<usize, bool>,
}

impl<'a> Engine<'a> {
    /// `listeners` hear every event in order; put the journal first.
    pub fn new(
        plan: &'a Plan,
        inv: &'a Inventory,
        transport: Arc<dyn Transport>,
        gather: Arc<Gather>,
        prompter: &'a mut dyn Prompter,
        listeners: Vec<&'a mut dyn Listener>,
        cfg: RunConfig,
    ) -> Self {
        let vars = plan.resolved_vars(&cfg.vars);
        let thresholds = Thresholds::from_vars(&vars);
        Engine {
            plan,
            inv,
            transport,
            gather,
            light_gather: None,
            prompter,
            listeners,
            cfg,
            vars,
            thresholds,
            facts: context::Facts::default(),
            captures: Map::new(),
            prior: Prior::default(),
            backups: BTreeSet::new(),
            verify_steps_run: 0,
            last_approval: None,
            groups: BTreeMap::new(),
        }
    }

    /// Continue from a journal: finished actions are not repeated, approvals are reused.
    #[must_use]
    pub fn with_prior(mut self, prior: Prior) -> Self {
        self.backups.extend(prior.backups.iter().cloned());
        self.prior = prior;
        self
    }

    /// Poll waits whose condition reads only monitoring facts with `light` (no SSH probe per
    /// poll); the full gather still decides once the light condition holds.
    #[must_use]
    pub fn with_light_gather(mut self, light: Arc<LightGather>) -> Self {
        self.light_gather = Some(light);
        self
    }

    /// Use facts gathered elsewhere (diagnose gathers once for every runbook).
    #[must_use]
    pub fn with_facts(mut self, facts: ClusterFacts) -> Self {
        self.facts.set(facts);
        self
    }

    /// The latest facts.
    pub fn facts(&self) -> &ClusterFacts {
        self.facts.typed()
    }

    /// Tells every listener, in order; the first failure stops the run.
    fn emit(&mut self, ev: EngineEvent) -> StepResult {
        for l in &mut self.listeners {
            l.on_event(&ev).map_err(|e| {
                Stop(Outcome::Failed(format!(
                    "cannot write the journal, stopping before anything else runs: {e}"
                )))
            })?;
        }
        Ok(())
    }

    fn journal(&mut self, ev: Event) -> StepResult {
        self.emit(EngineEvent::Journal(ev))
    }

    /// Shown only; a listener failing here does not matter to the run.
    fn ui(&mut self, ev: UiEvent) {
        let ev = EngineEvent::Ui(ev);
        for l in &mut self.listeners {
            let _ = l.on_event(&ev);
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        self.ui(UiEvent::Note(text.into()));
    }

    fn interrupted(&mut self, reason: &str) -> Stop {
        let _ = self.journal(Event::Interrupted {
            reason: reason.into(),
        });
        Stop(Outcome::Stopped(reason.into()))
    }

    /// Runs the plan to its end (or the first stop).
    pub fn run(&mut self) -> Outcome {
        if !self.prior.in_doubt.is_empty() && !self.cfg.rehearsal {
            if let Err(Stop(o)) = self.settle_in_doubt() {
                return o;
            }
        }
        let plan = self.plan;
        for (i, step) in plan.steps.iter().enumerate() {
            if self.cfg.mode == Mode::Diagnose && step.kind() != crate::runbook::StepKind::Diagnose
            {
                continue;
            }
            if interrupt::requested() {
                return self.interrupted("interrupted by the operator (Ctrl-C)").0;
            }
            if let Err(Stop(o)) = self.step(i, step) {
                return o;
            }
        }
        match self.cfg.mode {
            Mode::Diagnose => Outcome::Completed,
            Mode::Run if self.cfg.rehearsal => Outcome::Rehearsed,
            Mode::Run if self.verify_steps_run > 0 => Outcome::Recovered,
            Mode::Run => Outcome::Completed,
        }
    }

    /// A step error that names the runbook, the step and what could not be evaluated.
    fn runbook_error(&self, step: &str, what: &str, src: &str, e: &str) -> Stop {
        Stop(Outcome::Failed(format!(
            "runbook `{}`, step `{step}`: cannot evaluate {what} `{src}`: {e}",
            self.plan.id
        )))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wait_tests;
