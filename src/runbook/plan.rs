//! A validated runbook: every template compiled, every reference checked, every rule of
//! the language enforced. Nothing runs before a `Plan` exists, so `runbooks validate` and
//! `--dry-run` need no special cases.

use super::raw::{Parse, Probe, RawOrder, RawRunbook, RawStep, RawVar, StepKind};
use super::template;
use crate::input_error::{InputProblem, InputProblems};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    Parallel,
    Serial,
    /// Serial, sorted by an expression evaluated per node.
    SerialBy {
        expr: String,
        descending: bool,
    },
}

/// One validated step.
#[derive(Debug, Clone)]
pub struct Step {
    pub raw: RawStep,
    pub order: Order,
}

impl Step {
    pub fn id(&self) -> &str {
        &self.raw.id
    }
    pub fn kind(&self) -> StepKind {
        self.raw.kind
    }
    /// Sends something that changes a node.
    pub fn is_mutating(&self) -> bool {
        self.raw.kind == StepKind::Fix
    }
    /// Runs a command or GET on nodes.
    pub fn is_per_node(&self) -> bool {
        self.raw.run.is_some() || self.raw.http.is_some() || self.raw.backup.is_some()
    }
    pub fn timeout_or(&self, d: Duration) -> Duration {
        self.raw.timeout.unwrap_or(d)
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
    pub source: Source,
    /// SHA-256 of the text (journaled; resume refuses a changed runbook).
    pub sha256: String,
    pub text: String,
}

impl Plan {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id() == id)
    }
}

/// Roots a template may reference.
const ROOTS: &[&str] = &[
    "facts",
    "steps",
    "vars",
    "cluster",
    "inventory",
    "nodes",
    "incident",
    "rehearsal",
];
/// Only meaningful where a node is in scope.
const NODE_ROOTS: &[&str] = &["node", "f"];
/// minijinja's global functions.
const FUNCTIONS: &[&str] = &["range", "dict", "namespace", "debug"];

/// Where a template sits, which decides what it may reference.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Cluster,
    Node,
    /// `expect`: node scope plus `result`.
    Result,
}

/// Parses and validates runbook text, collecting every problem.
pub fn parse(path: &Path, text: &str, source: Source) -> Result<Plan, InputProblems> {
    let raw: RawRunbook = match yaml_serde::from_str(text) {
        Ok(r) => r,
        Err(e) => return Err(InputProblems(vec![InputProblem::from_yaml(path, &e)])),
    };
    validate(path, text, raw, source)
}

fn validate(
    path: &Path,
    text: &str,
    raw: RawRunbook,
    source: Source,
) -> Result<Plan, InputProblems> {
    let mut v = Validator {
        path,
        text,
        problems: Vec::new(),
    };
    if raw.id.is_empty()
        || !raw
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        v.top(
            "id",
            format!(
                "runbook id `{}` must be lowercase letters, digits and dashes",
                raw.id
            ),
        );
    }
    if raw.steps.is_empty() {
        v.top("steps", "a runbook needs at least one step".to_string());
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // Steps that produce `steps.<id>` results, in order.
    let mut producers: BTreeSet<String> = BTreeSet::new();
    let mut backups: BTreeSet<String> = BTreeSet::new();
    let mut confirmed = false;
    // Whether the latest confirm step is destructive (the one a destructive fix relies on).
    let mut last_confirm_destructive = false;
    let mut steps = Vec::new();
    for (i, s) in raw.steps.iter().enumerate() {
        let id = s.id.clone();
        if !seen.insert(id.clone()) {
            v.step(i, &id, "id", format!("duplicate step id `{id}` (ids must be unique: the journal and resume refer to steps by id)"));
        }
        if id.is_empty()
            || id.contains('@')
            || id.contains('/')
            || id.chars().any(char::is_whitespace)
        {
            v.step(
                i,
                &id,
                "id",
                "step id must be non-empty, without spaces, `@` or `/`".into(),
            );
        }
        v.check_shape(i, s, confirmed);
        let order = v.check_order(i, s);

        // References and syntax of every template, by scope.
        let ctx = RefCtx {
            producers: &producers,
            vars: &raw.vars,
        };
        let per_node = s.run.is_some() || s.http.is_some() || s.backup.is_some();
        let node_scope = if per_node {
            Scope::Node
        } else {
            Scope::Cluster
        };
        for (field, src) in [("run", &s.run), ("check", &s.check), ("http", &s.http)] {
            if let Some(src) = src {
                v.template(i, s, field, src, true, node_scope, &ctx);
            }
        }
        if let Some(b) = &s.backup {
            v.template(i, s, "backup.path", &b.path, true, Scope::Node, &ctx);
            if let Some(d) = &b.dest {
                v.template(i, s, "backup.dest", d, true, Scope::Node, &ctx);
            }
        }
        for (field, src) in [
            ("prompt", &s.prompt),
            ("message", &s.message),
            ("title", &s.title),
            ("recommend", &s.recommend),
        ] {
            if let Some(src) = src {
                v.template(i, s, field, src, false, Scope::Cluster, &ctx);
            }
        }
        for d in &s.details {
            v.template(i, s, "details", d, false, Scope::Cluster, &ctx);
        }
        for (field, src) in [
            ("when", &s.when),
            ("on", &s.on),
            ("wait_until", &s.wait_until),
            ("precondition", &s.precondition),
        ] {
            if let Some(src) = src {
                v.expression(i, s, field, src, Scope::Cluster, &ctx);
            }
        }
        if let Some(e) = &s.expect {
            v.expression(i, s, "expect", e, Scope::Result, &ctx);
        }
        if let Some(g) = &s.gate {
            v.expression(i, s, "gate.wait_until", &g.wait_until, Scope::Node, &ctx);
        }
        if let Order::SerialBy { expr, .. } = &order {
            v.expression(i, s, "order.serial_by", expr, Scope::Node, &ctx);
        }
        if let Some(f) = &s.finding {
            v.expression(i, s, "finding.when", &f.when, Scope::Cluster, &ctx);
            v.template(
                i,
                s,
                "finding.summary",
                &f.summary,
                false,
                Scope::Cluster,
                &ctx,
            );
            for e in &f.evidence {
                v.template(i, s, "finding.evidence", e, false, Scope::Cluster, &ctx);
            }
            if let Some(e) = &f.evidence_from {
                v.expression(i, s, "finding.evidence_from", e, Scope::Cluster, &ctx);
            }
            if let Some(c) = &f.confidence {
                if template::is_template(c) {
                    v.template(i, s, "finding.confidence", c, false, Scope::Cluster, &ctx);
                } else if !["high", "medium", "low"].contains(&c.as_str()) {
                    v.step(
                        i,
                        &id,
                        "finding.confidence",
                        format!("confidence `{c}` must be high, medium or low"),
                    );
                }
            }
            if let Some(sc) = &f.score {
                v.template(i, s, "finding.score", sc, false, Scope::Cluster, &ctx);
            }
        }
        // Safety rules of the language.
        if s.kind == StepKind::Confirm {
            confirmed = true;
            last_confirm_destructive = s.destructive;
        }
        if s.destructive && s.kind == StepKind::Fix && !last_confirm_destructive {
            v.step(
                i,
                &id,
                "destructive",
                "a destructive step must come after a destructive confirmation (`kind: confirm` with `destructive: true`, the cluster name typed), with no other confirmation in between".into(),
            );
        }
        if s.destructive && s.kind == StepKind::Fix {
            match &s.requires_backup {
                None => v.step(i, &id, "requires_backup", "a destructive step must name a backup step (`requires_backup: <step id>`) that runs before it".into()),
                Some(b) if !backups.contains(b) => v.step(
                    i,
                    &id,
                    "requires_backup",
                    format!("`{b}` is not an earlier backup step of this runbook"),
                ),
                _ => {}
            }
            if s.precondition.is_none() {
                v.step(i, &id, "precondition", "a destructive step must state a precondition that is re-checked right before it runs".into());
            }
        } else if let Some(b) = &s.requires_backup {
            if !backups.contains(b) {
                v.step(
                    i,
                    &id,
                    "requires_backup",
                    format!("`{b}` is not an earlier backup step of this runbook"),
                );
            }
        }
        if s.backup.is_some() {
            backups.insert(id.clone());
        }
        if per_node || s.probe.is_some() {
            producers.insert(id.clone());
        }
        steps.push(Step {
            raw: s.clone(),
            order,
        });
    }
    for (name, var) in &raw.vars {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            v.top(
                "vars",
                format!("variable name `{name}` must be letters, digits and underscores"),
            );
        }
        let _ = var;
    }
    if !v.problems.is_empty() {
        return Err(InputProblems(v.problems));
    }
    Ok(Plan {
        id: raw.id,
        title: raw.title,
        cause: raw.cause,
        description: raw.description,
        vars: raw.vars,
        steps,
        source,
        sha256: crate::inventory::sha256_hex(text.as_bytes()),
        text: text.to_string(),
    })
}

struct RefCtx<'a> {
    producers: &'a BTreeSet<String>,
    vars: &'a BTreeMap<String, RawVar>,
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    problems: Vec<InputProblem>,
}

impl Validator<'_> {
    fn top(&mut self, field: &str, msg: String) {
        let (line, col) = locate_top(self.text, field);
        self.problems
            .push(InputProblem::new(self.path, msg).at(line, col).field(field));
    }

    fn step(&mut self, index: usize, id: &str, field: &str, msg: String) {
        let (line, col) = locate_step_field(self.text, index, field);
        self.problems.push(
            InputProblem::new(self.path, msg)
                .at(line, col)
                .step(id)
                .field(format!("steps[{index}].{field}")),
        );
    }

    fn check_shape(&mut self, i: usize, s: &RawStep, confirmed: bool) {
        let id = s.id.as_str();
        let actions: Vec<&str> = [
            ("probe", s.probe.is_some()),
            ("run", s.run.is_some()),
            ("http", s.http.is_some()),
            ("backup", s.backup.is_some()),
            ("wait_until", s.wait_until.is_some()),
            ("finding", s.finding.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
        if actions.len() > 1 {
            self.step(
                i,
                id,
                actions[1],
                format!(
                    "a step does one thing; this one has {} (split it into several steps)",
                    actions.join(" and ")
                ),
            );
        }
        let forbid = |v: &mut Self, field: &str, present: bool, why: &str| {
            if present {
                v.step(
                    i,
                    id,
                    field,
                    format!(
                        "`{field}` is not allowed in a {} step: {why}",
                        s.kind.as_str()
                    ),
                );
            }
        };
        match s.kind {
            StepKind::Diagnose => {
                if actions.is_empty() && s.message.is_none() && s.recommend.is_none() {
                    self.step(
                        i,
                        id,
                        "kind",
                        "a diagnose step needs one of probe, run, http, finding, message".into(),
                    );
                }
                forbid(
                    self,
                    "backup",
                    s.backup.is_some(),
                    "diagnose steps are read-only",
                );
                forbid(
                    self,
                    "wait_until",
                    s.wait_until.is_some(),
                    "use a verify step to wait",
                );
                forbid(
                    self,
                    "destructive",
                    s.destructive,
                    "diagnose steps are read-only",
                );
                forbid(self, "prompt", s.prompt.is_some(), "use a confirm step");
            }
            StepKind::Confirm => {
                if s.prompt.is_none() {
                    self.step(i, id, "prompt", "a confirm step needs a prompt".into());
                }
                for (f, p) in [
                    ("run", s.run.is_some()),
                    ("http", s.http.is_some()),
                    ("probe", s.probe.is_some()),
                    ("backup", s.backup.is_some()),
                    ("finding", s.finding.is_some()),
                    ("wait_until", s.wait_until.is_some()),
                ] {
                    forbid(self, f, p, "a confirmation only asks");
                }
            }
            StepKind::Fix => {
                if s.run.is_none() && s.backup.is_none() {
                    self.step(i, id, "run", "a fix step needs `run` or `backup`".into());
                }
                forbid(self, "probe", s.probe.is_some(), "use a diagnose step");
                forbid(self, "finding", s.finding.is_some(), "use a diagnose step");
                forbid(self, "http", s.http.is_some(), "fix steps run commands");
                forbid(
                    self,
                    "prompt",
                    s.prompt.is_some(),
                    "put the question in a confirm step before it",
                );
                if !confirmed {
                    self.step(i, id, "kind", "a fix step must come after a confirm step (nothing mutating runs without a recorded confirmation)".into());
                }
                if s.run.is_some() && !s.idempotent && s.check.is_none() {
                    self.step(i, id, "idempotent", "a fix step needs `idempotent: true` or a `check` so that resume after a crash is safe".into());
                }
            }
            StepKind::Verify => {
                if s.wait_until.is_none()
                    && s.run.is_none()
                    && s.http.is_none()
                    && s.probe.is_none()
                {
                    self.step(
                        i,
                        id,
                        "kind",
                        "a verify step needs wait_until, run, http or probe".into(),
                    );
                }
                forbid(
                    self,
                    "backup",
                    s.backup.is_some(),
                    "verify steps are read-only",
                );
                forbid(
                    self,
                    "destructive",
                    s.destructive,
                    "verify steps are read-only",
                );
                forbid(self, "finding", s.finding.is_some(), "use a diagnose step");
            }
        }
        if s.kind != StepKind::Fix {
            forbid(
                self,
                "idempotent",
                s.idempotent,
                "only fix steps change things",
            );
            forbid(
                self,
                "check",
                s.check.is_some(),
                "only fix steps change things",
            );
            forbid(
                self,
                "requires_backup",
                s.requires_backup.is_some(),
                "only fix steps change things",
            );
            forbid(
                self,
                "privileged",
                s.privileged && s.kind == StepKind::Confirm,
                "a confirmation runs nothing",
            );
        }
        if s.destructive && s.kind == StepKind::Fix && s.backup.is_some() {
            self.step(
                i,
                id,
                "destructive",
                "a backup step is not destructive".into(),
            );
        }
        if s.parse.is_some() && s.run.is_none() && s.http.is_none() {
            self.step(i, id, "parse", "`parse` needs `run` or `http`".into());
        }
        if s.gate.is_some()
            && !matches!(s.order, Some(RawOrder::Simple(ref o)) if o == "serial")
            && !matches!(s.order, Some(RawOrder::By(_)))
        {
            self.step(
                i,
                id,
                "gate",
                "a health gate needs a serial order (`order: serial` or `order: {serial_by: …}`)"
                    .into(),
            );
        }
        if s.on.is_some() && s.run.is_none() && s.http.is_none() && s.backup.is_none() {
            self.step(
                i,
                id,
                "on",
                "`on` selects nodes for run, http or backup".into(),
            );
        }
        let _ = (Probe::Nats, Parse::Text);
    }

    fn check_order(&mut self, i: usize, s: &RawStep) -> Order {
        match &s.order {
            None => Order::Parallel,
            Some(RawOrder::Simple(o)) => match o.as_str() {
                "parallel" => Order::Parallel,
                "serial" => Order::Serial,
                other => {
                    self.step(i, &s.id, "order", format!("unknown order `{other}`, expected `parallel`, `serial` or `{{serial_by: <expression>}}`"));
                    Order::Parallel
                }
            },
            Some(RawOrder::By(b)) => Order::SerialBy {
                expr: b.serial_by.clone(),
                descending: b.descending,
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn template(
        &mut self,
        i: usize,
        s: &RawStep,
        field: &str,
        src: &str,
        shell: bool,
        scope: Scope,
        ctx: &RefCtx<'_>,
    ) {
        match template::check_template(src, shell) {
            Err(p) => self.step(i, &s.id, field, format!("template error: {}", p.message)),
            Ok(vars) => self.references(i, s, field, vars, scope, ctx),
        }
    }

    fn expression(
        &mut self,
        i: usize,
        s: &RawStep,
        field: &str,
        src: &str,
        scope: Scope,
        ctx: &RefCtx<'_>,
    ) {
        match template::check_expression(src) {
            Err(p) => self.step(i, &s.id, field, format!("expression error: {}", p.message)),
            Ok(vars) => self.references(i, s, field, vars, scope, ctx),
        }
    }

    fn references(
        &mut self,
        i: usize,
        s: &RawStep,
        field: &str,
        vars: BTreeSet<String>,
        scope: Scope,
        ctx: &RefCtx<'_>,
    ) {
        for var in vars {
            let mut parts = var.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            if ROOTS.contains(&root) || FUNCTIONS.contains(&root) {
                if root == "steps" {
                    if let Some(sid) = second {
                        if !ctx.producers.contains(sid) {
                            self.step(
                                i,
                                &s.id,
                                field,
                                format!("`steps.{sid}` refers to no earlier step that runs a command or request (captures come from earlier `run`/`http`/`backup` steps)"),
                            );
                        }
                    }
                }
                if root == "vars" {
                    if let Some(name) = second {
                        if !ctx.vars.contains_key(name) {
                            self.step(
                                i,
                                &s.id,
                                field,
                                format!(
                                    "undefined variable `vars.{name}` (declare it under `vars:`)"
                                ),
                            );
                        }
                    }
                }
                continue;
            }
            if NODE_ROOTS.contains(&root) {
                if scope == Scope::Cluster {
                    self.step(i, &s.id, field, format!("`{root}` is only defined in per-node fields (run, check, http, backup, expect, order.serial_by)"));
                }
                continue;
            }
            if root == "result" && scope == Scope::Result {
                continue;
            }
            self.step(i, &s.id, field, format!("undefined variable `{root}` (known: facts, steps, vars, node, f, cluster, nodes, inventory, incident)"));
        }
    }
}

/// Line/column of a top-level key.
fn locate_top(text: &str, key: &str) -> (Option<usize>, Option<usize>) {
    for (n, line) in text.lines().enumerate() {
        if line.starts_with(&format!("{key}:")) {
            return (Some(n + 1), Some(1));
        }
    }
    (None, None)
}

/// Line/column of a step's field: the `index`-th item under `steps:`, then the first line
/// of that item that starts with `field:` (the step's own line when the field is absent).
fn locate_step_field(text: &str, index: usize, field: &str) -> (Option<usize>, Option<usize>) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(steps_line) = lines.iter().position(|l| l.starts_with("steps:")) else {
        return (None, None);
    };
    let mut item_indent: Option<usize> = None;
    let mut starts = Vec::new();
    for (n, l) in lines.iter().enumerate().skip(steps_line + 1) {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = l.len() - trimmed.len();
        if indent == 0 {
            break;
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            match item_indent {
                None => {
                    item_indent = Some(indent);
                    starts.push(n);
                }
                Some(ii) if ii == indent => starts.push(n),
                _ => {}
            }
        }
    }
    let Some(&start) = starts.get(index) else {
        return (None, None);
    };
    let end = starts.get(index + 1).copied().unwrap_or(lines.len());
    let key = field.split(['.', '[']).next().unwrap_or(field);
    for (n, l) in lines.iter().enumerate().take(end).skip(start) {
        let t = l.trim_start().trim_start_matches("- ");
        if t.starts_with(&format!("{key}:")) {
            let col = l.len() - t.len() + 1;
            return (Some(n + 1), Some(col));
        }
    }
    let l = lines[start];
    let col = l.len() - l.trim_start().len() + 1;
    (Some(start + 1), Some(col))
}
