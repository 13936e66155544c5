//! A validated runbook: each step lowered once into a typed [`Action`], every template and
//! expression compiled, every reference checked, every rule of the language enforced
//! ([`super::validate`]). Nothing runs before a `Plan` exists, so `runbooks validate` and
//! `--dry-run` need no special cases.

use super::raw::{Parse, RawVar, StepKind};
use super::template::{Expr, Template};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where a runbook came from (journaled, and used to find it again on resume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Builtin,
    File(PathBuf),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Builtin => "builtin".into(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// How a per-node step walks its nodes.
#[derive(Debug, Clone)]
pub enum Order {
    Parallel,
    Serial,
    /// Serial, sorted by an expression evaluated per node.
    SerialBy {
        expr: Expr,
        descending: bool,
    },
}

impl Order {
    pub fn is_serial(&self) -> bool {
        !matches!(self, Order::Parallel)
    }
    pub fn describe(&self) -> String {
        match self {
            Order::Parallel => "parallel".into(),
            Order::Serial => "serial".into(),
            Order::SerialBy { expr, descending } => format!(
                "serial, by {}{}",
                expr.source(),
                if *descending { " (descending)" } else { "" }
            ),
        }
    }
}

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

impl Confidence {
    pub fn parse(s: &str) -> Option<Confidence> {
        match s.trim() {
            "high" => Some(Confidence::High),
            "medium" => Some(Confidence::Medium),
            "low" => Some(Confidence::Low),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }
}

/// A finding's confidence: written, or computed by a template that must give one of the
/// three words (anything else is a step error, never a silent default).
#[derive(Debug, Clone)]
pub enum ConfidenceSpec {
    Fixed(Confidence),
    Computed(Template),
}

/// A diagnose step's evidence for this runbook's cause.
#[derive(Debug, Clone)]
pub struct FindingSpec {
    /// `signal:` — a built-in cause signal reported as it is, unless the fields below say
    /// otherwise.
    pub signal: Option<String>,
    pub when: Option<Expr>,
    pub summary: Option<Template>,
    pub confidence: Option<ConfidenceSpec>,
    pub score: Option<Template>,
    pub evidence: Vec<Template>,
    pub evidence_from: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct ConfirmSpec {
    pub prompt: Template,
    /// Lines shown with the question (what the step relies on).
    pub details: Vec<Template>,
    /// Needs the cluster name typed.
    pub destructive: bool,
}

/// Poll (re-gathering facts) until a condition holds.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    pub until: Expr,
    pub timeout: Duration,
    pub interval: Option<Duration>,
}

/// What a per-node step sends to each node.
#[derive(Debug, Clone)]
pub enum Request {
    /// A shell command.
    Shell(Template),
    /// A GET on the node's monitoring port.
    Http(Template),
}

/// A command or request on selected nodes.
#[derive(Debug, Clone)]
pub struct NodeAction {
    pub request: Request,
    /// Which nodes (names); default all.
    pub on: Option<Expr>,
    pub parse: Option<Parse>,
    pub order: Order,
    /// After each node of a serial step, wait until this holds (health gate).
    pub gate: Option<WaitSpec>,
    /// Per-node timeout (default: the node's command timeout).
    pub timeout: Option<Duration>,
    /// Condition over `result` (default: exit code 0 / HTTP 2xx).
    pub expect: Option<Expr>,
    /// Safe to repeat after a crash.
    pub idempotent: bool,
    /// Read-only command: exit 0 means the action is already applied (resume uses it).
    pub check: Option<Template>,
    pub privileged: bool,
    pub destructive: bool,
    /// A backup step that must have succeeded on every target node first.
    pub requires_backup: Option<String>,
    /// Re-checked with freshly gathered facts immediately before the step runs.
    pub precondition: Option<Expr>,
}

/// The built-in backup action.
#[derive(Debug, Clone)]
pub struct BackupSpec {
    /// What to archive on each node.
    pub path: Template,
    /// Directory for the archive on the node; default `/var/backups/nats-rescue`.
    pub dest: Option<Template>,
    pub on: Option<Expr>,
    pub timeout: Option<Duration>,
    pub privileged: bool,
}

/// The built-in routes rewrite (`rewrite_routes:`): on each node, read the config, point
/// `cluster.routes` at the inventory's peers (keeping scheme and credentials), test the result
/// with `<nats.server_bin> -t -c`, then replace the file atomically.
#[derive(Debug, Clone)]
pub struct RewriteRoutesSpec {
    /// Default: the node's `nats.config_file`.
    pub config_file: Option<Template>,
    pub on: Option<Expr>,
    pub timeout: Option<Duration>,
    pub privileged: bool,
}

/// A request on the system account.
#[derive(Debug, Clone)]
pub struct NatsSpec {
    pub subject: Template,
    pub body: Option<Template>,
    pub timeout: Duration,
    pub broadcast: bool,
    pub expect: Option<Expr>,
    pub read_only: bool,
    pub check: Option<Expr>,
    pub idempotent: bool,
}

/// The one thing a step does. "Exactly one action per step" is this type.
#[derive(Debug, Clone)]
pub enum Action {
    /// Built-in NATS fact gathering on every node.
    Probe,
    Finding(FindingSpec),
    Confirm(ConfirmSpec),
    Wait(WaitSpec),
    Nodes(NodeAction),
    Backup(BackupSpec),
    RewriteRoutes(RewriteRoutesSpec),
    Nats(NatsSpec),
    /// A diagnose step that stops the run, nothing changed, with this reason (exit 1).
    Refuse(Template),
    /// Only shows its `message` / `recommend`.
    Note,
}

/// Steps under one `when:`.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub title: Option<Template>,
    pub when: Option<Expr>,
}

/// One validated step.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    pub title: Option<Template>,
    pub when: Option<Expr>,
    /// Index into [`Plan::groups`].
    pub group: Option<usize>,
    pub message: Option<Template>,
    /// Text naming the runbook to run next.
    pub recommend: Option<Template>,
    pub action: Action,
}

impl Step {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn kind(&self) -> StepKind {
        self.kind
    }
    /// Sends something that changes a node.
    pub fn is_mutating(&self) -> bool {
        self.kind == StepKind::Fix
    }
    /// Runs a command, GET or backup on nodes.
    pub fn is_per_node(&self) -> bool {
        matches!(
            self.action,
            Action::Nodes(_) | Action::Backup(_) | Action::RewriteRoutes(_)
        )
    }
    /// Which nodes, when the step is per node.
    pub fn on(&self) -> Option<&Expr> {
        match &self.action {
            Action::Nodes(a) => a.on.as_ref(),
            Action::Backup(b) => b.on.as_ref(),
            Action::RewriteRoutes(r) => r.on.as_ref(),
            _ => None,
        }
    }
    pub fn is_destructive(&self) -> bool {
        match &self.action {
            Action::Confirm(c) => c.destructive,
            Action::Nodes(a) => a.destructive,
            _ => false,
        }
    }
    pub fn is_privileged(&self) -> bool {
        match &self.action {
            Action::Nodes(a) => a.privileged,
            Action::Backup(b) => b.privileged,
            Action::RewriteRoutes(r) => r.privileged,
            _ => false,
        }
    }
    pub fn check(&self) -> Option<&Template> {
        match &self.action {
            Action::Nodes(a) => a.check.as_ref(),
            _ => None,
        }
    }
    pub fn is_backup(&self) -> bool {
        matches!(self.action, Action::Backup(_))
    }
}

/// A runbook ready to execute.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub title: String,
    pub cause: String,
    pub description: Option<String>,
    pub vars: BTreeMap<String, RawVar>,
    pub steps: Vec<Step>,
    pub groups: Vec<Group>,
    pub source: Source,
    /// SHA-256 of the text (journaled; resume refuses a changed runbook).
    pub sha256: String,
    pub text: String,
}

impl Plan {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
    pub fn position(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
    /// Variables with their defaults, overridden by `given`.
    pub fn resolved_vars(&self, given: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .vars
            .iter()
            .filter_map(|(k, v)| v.default.clone().map(|d| (k.clone(), d)))
            .collect();
        vars.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }
    pub fn has_destructive_confirmation(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(&s.action, Action::Confirm(c) if c.destructive))
    }
}
