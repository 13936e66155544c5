//! The runbook as written (serde). Nothing here is trusted yet: `validate` turns it into a
//! `Plan`.

use crate::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRunbook {
    pub id: String,
    pub title: String,
    /// The cause this runbook fixes, in one sentence.
    pub cause: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Variables the operator may set with `--var KEY=VALUE`.
    #[serde(default)]
    pub vars: BTreeMap<String, RawVar>,
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVar {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Never journaled or printed.
    #[serde(default)]
    pub secret: bool,
    /// An expression over `facts` giving the names to choose from when `run` is on a
    /// terminal and `--var` left this variable unset (e.g. the servers that are down): the
    /// operator picks with a multi-select, and the choice is journaled like a `--var`.
    #[serde(default)]
    pub ask: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Diagnose,
    Confirm,
    Fix,
    Verify,
    /// Steps under one `when:`, decided once when the group is reached.
    Group,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Diagnose => "diagnose",
            StepKind::Confirm => "confirm",
            StepKind::Fix => "fix",
            StepKind::Verify => "verify",
            StepKind::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// Built-in NATS fact gathering on every node.
    Nats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parse {
    Text,
    Json,
    Lines,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub id: String,
    pub kind: StepKind,
    #[serde(default)]
    pub title: Option<String>,
    /// Condition for the whole step (expression).
    #[serde(default)]
    pub when: Option<String>,
    /// Which nodes (expression giving names); default all.
    #[serde(default)]
    pub on: Option<String>,
    #[serde(default)]
    pub probe: Option<Probe>,
    /// Shell command template, run on each selected node.
    #[serde(default)]
    pub run: Option<String>,
    /// Monitoring path template, GET on each selected node.
    #[serde(default)]
    pub http: Option<String>,
    /// How to parse stdout (or the HTTP body) into `steps.<id>.nodes.<node>.parsed`.
    #[serde(default)]
    pub parse: Option<Parse>,
    #[serde(default)]
    pub finding: Option<RawFinding>,
    /// Text shown to the operator (a note, a warning).
    #[serde(default)]
    pub message: Option<String>,
    /// Confirmation question.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Lines shown with the confirmation (what the step relies on).
    #[serde(default)]
    pub details: Vec<String>,
    #[serde(default)]
    pub destructive: bool,
    /// Safe to repeat after a crash.
    #[serde(default)]
    pub idempotent: bool,
    /// Read-only command: exit 0 means the action is already applied.
    #[serde(default)]
    pub check: Option<String>,
    #[serde(default)]
    pub order: Option<RawOrder>,
    /// After each node of a serial step, wait until this holds (health gate).
    #[serde(default)]
    pub gate: Option<RawWait>,
    /// Poll (re-gathering facts) until this holds.
    #[serde(default)]
    pub wait_until: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub interval: Option<Duration>,
    /// Run through `sudo -n` when the inventory enables sudo.
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub backup: Option<RawBackup>,
    /// Built-in: rewrite `cluster.routes` of the node's config to the inventory's peers.
    #[serde(default)]
    pub rewrite_routes: Option<RawRewriteRoutes>,
    /// Step id of a backup step that must have succeeded on every target node first.
    #[serde(default)]
    pub requires_backup: Option<String>,
    /// Re-checked with freshly gathered facts immediately before the step runs.
    #[serde(default)]
    pub precondition: Option<String>,
    /// For `verify` run steps: condition over `result` (default: exit code 0).
    #[serde(default)]
    pub expect: Option<String>,
    /// Text naming the runbook to run next (shown at the end).
    #[serde(default)]
    pub recommend: Option<String>,
    /// Diagnose steps: stop the run here, nothing changed, with this text as the reason.
    #[serde(default)]
    pub refuse: Option<String>,
    /// A request on the NATS system account (`$JS.API.*`, `$SYS.REQ.*`).
    #[serde(default)]
    pub nats: Option<RawNatsRequest>,
    /// `kind: group`: the steps that share this step's `when`.
    #[serde(default)]
    pub steps: Option<Vec<RawStep>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFinding {
    /// A built-in cause signal (`facts.signal[...]`) that this finding reports as it is:
    /// its condition, confidence, score, summary and evidence. Other fields refine it.
    #[serde(default)]
    pub signal: Option<String>,
    /// Required unless `signal` is given.
    #[serde(default)]
    pub when: Option<String>,
    /// Required unless `signal` is given.
    #[serde(default)]
    pub summary: Option<String>,
    /// `high`, `medium`, `low`, or a template giving one.
    #[serde(default)]
    pub confidence: Option<String>,
    /// 0–100, or a template; ranks findings of equal confidence.
    #[serde(default)]
    pub score: Option<String>,
    /// Evidence lines (templates).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Expression giving a list of evidence lines.
    #[serde(default)]
    pub evidence_from: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawOrder {
    Simple(String),
    By(RawOrderBy),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrderBy {
    /// Expression per node (with `node` and `f` = that node's facts) to sort by.
    pub serial_by: String,
    #[serde(default)]
    pub descending: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWait {
    pub wait_until: String,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub interval: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// What to archive on each node (template).
    pub path: String,
    /// Directory for the archive on the node (template); default `/var/backups/nats-rescue`.
    #[serde(default)]
    pub dest: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRewriteRoutes {
    /// The node's config file (template); default `{{ node.config_file }}`. The routes are
    /// rewritten in the file that holds them (an included file when they live there).
    #[serde(default)]
    pub config_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNatsRequest {
    /// Subject (template), e.g. `$JS.API.META.LEADER.STEPDOWN`.
    pub request: String,
    /// JSON body (template).
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// Collect every reply until the timeout (pings); default: the first reply.
    #[serde(default)]
    pub broadcast: bool,
    /// Condition over `reply` (the first) and `replies` (all); default: a reply without an
    /// API error.
    #[serde(default)]
    pub expect: Option<String>,
    /// The request changes nothing (it may then run in diagnose and verify steps).
    #[serde(default)]
    pub read_only: bool,
    /// Expression over freshly gathered facts: true means the request already had its effect
    /// (resume settles an in-doubt request with it, never by sending it blindly again).
    #[serde(default)]
    pub check: Option<String>,
}
