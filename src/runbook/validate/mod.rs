//! Lowers a [`RawRunbook`] into a [`Plan`]: every rule of the language checked, every
//! template compiled, every reference resolved, all problems reported at once with file,
//! line, column (from [`Spans`]), step and field.

use super::plan::{
    Action, BackupSpec, Confidence, ConfidenceSpec, ConfirmSpec, FindingSpec, Group, NatsSpec,
    NodeAction, Order, Plan, Request, RewriteRoutesSpec, Source, Step, WaitSpec,
};
use super::raw::{RawOrder, RawRunbook, RawStep, RawVar, RawWait, StepKind};
use super::spans::{Seg, Spans};
use super::template::{self, Expr, Template};
use crate::input_error::{InputProblem, InputProblems};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

mod rules;

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

/// Default timeout of a `wait_until` step.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default timeout of a `nats` request.
pub const DEFAULT_NATS_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of a health gate.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a template sits, which decides what it may reference.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Cluster,
    Node,
    /// `nats.expect`: cluster scope plus `reply` and `replies`.
    Reply,
    /// `expect`: node scope plus `result`.
    Result,
}

/// Parses and validates runbook text, collecting every problem.
pub fn parse(path: &Path, text: &str, source: Source) -> Result<Plan, InputProblems> {
    let raw: RawRunbook = match yaml_serde::from_str(text) {
        Ok(r) => r,
        Err(e) => return Err(InputProblems(vec![InputProblem::from_yaml(path, &e)])),
    };
    let mut l = Lowering {
        path,
        spans: Spans::parse(text),
        problems: Vec::new(),
        vars: &raw.vars,
        seen: BTreeSet::new(),
        producers: BTreeSet::new(),
        backups: BTreeSet::new(),
        confirmed: false,
        last_confirm_destructive: false,
        steps: Vec::new(),
        groups: Vec::new(),
    };
    l.runbook(&raw);
    let Lowering {
        problems,
        steps,
        groups,
        ..
    } = l;
    if !problems.is_empty() {
        return Err(InputProblems(problems));
    }
    Ok(Plan {
        id: raw.id.clone(),
        title: raw.title.clone(),
        cause: raw.cause.clone(),
        description: raw.description.clone(),
        vars: raw.vars.clone(),
        steps,
        groups,
        source,
        sha256: crate::inventory::sha256_hex(text.as_bytes()),
        text: text.to_string(),
    })
}

/// Where a step sits: its index path (`steps[i]` or `steps[i].steps[j]`).
#[derive(Clone, Copy)]
struct At<'s> {
    outer: usize,
    inner: Option<usize>,
    id: &'s str,
}

impl At<'_> {
    fn field_path(&self, field: &str) -> String {
        match self.inner {
            None => format!("steps[{}].{field}", self.outer),
            Some(j) => format!("steps[{}].steps[{j}].{field}", self.outer),
        }
    }
}

struct Lowering<'a> {
    path: &'a Path,
    spans: Spans<'a>,
    problems: Vec<InputProblem>,
    vars: &'a BTreeMap<String, RawVar>,
    seen: BTreeSet<String>,
    /// Steps that produce `steps.<id>` results, in order.
    producers: BTreeSet<String>,
    backups: BTreeSet<String>,
    confirmed: bool,
    /// Whether the latest confirm step is destructive (the one a destructive fix relies on).
    last_confirm_destructive: bool,
    steps: Vec<Step>,
    groups: Vec<Group>,
}

impl<'a> Lowering<'a> {
    fn runbook(&mut self, raw: &'a RawRunbook) {
        if raw.id.is_empty()
            || !raw
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            self.top(
                "id",
                format!(
                    "runbook id `{}` must be lowercase letters, digits and dashes",
                    raw.id
                ),
            );
        }
        if raw.steps.is_empty() {
            self.top("steps", "a runbook needs at least one step".to_string());
        }
        for (i, s) in raw.steps.iter().enumerate() {
            let at = At {
                outer: i,
                inner: None,
                id: &s.id,
            };
            if s.kind == StepKind::Group {
                self.group(at, s);
            } else {
                if s.steps.is_some() {
                    self.problem(
                        at,
                        "steps",
                        "`steps` belongs to a `kind: group` step".into(),
                    );
                }
                self.step(at, s, None);
            }
        }
        for (name, var) in &raw.vars {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.top(
                    "vars",
                    format!("variable name `{name}` must be letters, digits and underscores"),
                );
            }
            if let Some(ask) = &var.ask {
                if let Err(e) = super::template::Expr::compile(ask) {
                    self.top(
                        "vars",
                        format!("vars.{name}.ask: not an expression: {}", e.message),
                    );
                }
            }
        }
    }

    fn top(&mut self, field: &str, msg: String) {
        let (line, col) = split(self.spans.locate(&[Seg::Key(field)]));
        self.problems
            .push(InputProblem::new(self.path, msg).at(line, col).field(field));
    }

    fn problem(&mut self, at: At<'_>, field: &str, msg: String) {
        let key = field.split(['.', '[']).next().unwrap_or(field);
        let mut path = vec![Seg::Key("steps"), Seg::Index(at.outer)];
        if let Some(j) = at.inner {
            path.extend([Seg::Key("steps"), Seg::Index(j)]);
        }
        path.push(Seg::Key(key));
        let (line, col) = split(self.spans.locate(&path));
        self.problems.push(
            InputProblem::new(self.path, msg)
                .at(line, col)
                .step(at.id)
                .field(at.field_path(field)),
        );
    }

    fn check_id(&mut self, at: At<'_>) {
        let id = at.id;
        if !self.seen.insert(id.to_string()) {
            self.problem(at, "id", format!("duplicate step id `{id}` (ids must be unique: the journal and resume refer to steps by id)"));
        }
        if id.is_empty()
            || id.contains('@')
            || id.contains('/')
            || id.chars().any(char::is_whitespace)
        {
            self.problem(
                at,
                "id",
                "step id must be non-empty, without spaces, `@` or `/`".into(),
            );
        }
    }

    fn group(&mut self, at: At<'_>, s: &'a RawStep) {
        self.check_id(at);
        let allowed_empty = s.on.is_none()
            && s.probe.is_none()
            && s.run.is_none()
            && s.http.is_none()
            && s.finding.is_none()
            && s.prompt.is_none()
            && s.backup.is_none()
            && s.rewrite_routes.is_none()
            && s.wait_until.is_none()
            && s.check.is_none()
            && s.order.is_none()
            && s.gate.is_none()
            && s.message.is_none()
            && s.recommend.is_none()
            && s.refuse.is_none()
            && s.details.is_empty()
            && !s.destructive
            && !s.idempotent
            && !s.privileged;
        if !allowed_empty {
            self.problem(
                at,
                "kind",
                "a group only has an id, a title, a `when` and its `steps`".into(),
            );
        }
        let title = s
            .title
            .as_deref()
            .and_then(|t| self.template(at, "title", t, false, Scope::Cluster));
        let when = s
            .when
            .as_deref()
            .and_then(|w| self.expression(at, "when", w, Scope::Cluster));
        let Some(children) = &s.steps else {
            self.problem(at, "steps", "a group needs `steps`".into());
            return;
        };
        if children.is_empty() {
            self.problem(at, "steps", "a group needs at least one step".into());
        }
        let g = self.groups.len();
        self.groups.push(Group {
            id: s.id.clone(),
            title,
            when,
        });
        for (j, c) in children.iter().enumerate() {
            let cat = At {
                outer: at.outer,
                inner: Some(j),
                id: &c.id,
            };
            if c.kind == StepKind::Group || c.steps.is_some() {
                self.problem(cat, "kind", "groups do not nest".into());
                continue;
            }
            self.step(cat, c, Some(g));
        }
    }

    fn step(&mut self, at: At<'_>, s: &'a RawStep, group: Option<usize>) {
        self.check_id(at);
        self.check_shape(at, s);
        let per_node =
            s.run.is_some() || s.http.is_some() || s.backup.is_some() || s.rewrite_routes.is_some();
        let scope = if per_node {
            Scope::Node
        } else {
            Scope::Cluster
        };
        let title = self.opt_template(at, "title", s.title.as_deref(), Scope::Cluster);
        let message = self.opt_template(at, "message", s.message.as_deref(), Scope::Cluster);
        let recommend = self.opt_template(at, "recommend", s.recommend.as_deref(), Scope::Cluster);
        let when = s
            .when
            .as_deref()
            .and_then(|w| self.expression(at, "when", w, Scope::Cluster));
        let on =
            s.on.as_deref()
                .and_then(|w| self.expression(at, "on", w, Scope::Cluster));
        let action = self.action(at, s, scope, on);
        self.safety_rules(at, s);
        if s.kind == StepKind::Confirm {
            self.confirmed = true;
            self.last_confirm_destructive = s.destructive;
        }
        if s.backup.is_some() {
            self.backups.insert(s.id.clone());
        }
        if per_node || s.probe.is_some() {
            self.producers.insert(s.id.clone());
        }
        if let Some(action) = action {
            self.steps.push(Step {
                id: s.id.clone(),
                kind: s.kind,
                title,
                when,
                group,
                message,
                recommend,
                action,
            });
        }
    }

    /// The step's one action, typed. `None` when a problem was recorded.
    fn action(
        &mut self,
        at: At<'_>,
        s: &'a RawStep,
        scope: Scope,
        on: Option<Expr>,
    ) -> Option<Action> {
        if s.probe.is_some() {
            return Some(Action::Probe);
        }
        if let Some(f) = &s.finding {
            return self.finding(at, f).map(Action::Finding);
        }
        if let Some(r) = &s.refuse {
            return self
                .template(at, "refuse", r, false, Scope::Cluster)
                .map(Action::Refuse);
        }
        if s.kind == StepKind::Confirm {
            let prompt = self.template(
                at,
                "prompt",
                s.prompt.as_deref().unwrap_or("Proceed?"),
                false,
                Scope::Cluster,
            );
            let details: Vec<Template> = s
                .details
                .iter()
                .filter_map(|d| self.template(at, "details", d, false, Scope::Cluster))
                .collect();
            return Some(Action::Confirm(ConfirmSpec {
                prompt: prompt?,
                details,
                destructive: s.destructive,
            }));
        }
        if let Some(w) = &s.wait_until {
            let until = self.expression(at, "wait_until", w, Scope::Cluster)?;
            return Some(Action::Wait(WaitSpec {
                until,
                timeout: s.timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT),
                interval: s.interval,
            }));
        }
        if let Some(b) = &s.backup {
            let path = self.template(at, "backup.path", &b.path, true, Scope::Node);
            let dest = b
                .dest
                .as_deref()
                .and_then(|d| self.template(at, "backup.dest", d, true, Scope::Node));
            return Some(Action::Backup(BackupSpec {
                path: path?,
                dest,
                on,
                timeout: s.timeout,
                privileged: s.privileged,
            }));
        }
        if let Some(n) = &s.nats {
            let subject = self.template(at, "nats.request", &n.request, false, Scope::Cluster);
            let body = n
                .body
                .as_deref()
                .and_then(|b| self.template(at, "nats.body", b, false, Scope::Cluster));
            let expect = n
                .expect
                .as_deref()
                .and_then(|e| self.expression(at, "nats.expect", e, Scope::Reply));
            let check = n
                .check
                .as_deref()
                .and_then(|c| self.expression(at, "nats.check", c, Scope::Cluster));
            return Some(Action::Nats(NatsSpec {
                subject: subject?,
                body,
                timeout: n.timeout.unwrap_or(DEFAULT_NATS_TIMEOUT),
                broadcast: n.broadcast,
                expect,
                read_only: n.read_only || s.kind != StepKind::Fix,
                check,
                idempotent: s.idempotent,
            }));
        }
        if let Some(r) = &s.rewrite_routes {
            let config_file = match r.config_file.as_deref() {
                Some(c) => {
                    Some(self.template(at, "rewrite_routes.config_file", c, false, Scope::Node)?)
                }
                None => None,
            };
            return Some(Action::RewriteRoutes(RewriteRoutesSpec {
                config_file,
                on,
                timeout: s.timeout,
                privileged: s.privileged,
            }));
        }
        if s.run.is_some() || s.http.is_some() {
            let request = match (&s.run, &s.http) {
                (Some(r), _) => Request::Shell(self.template(at, "run", r, true, scope)?),
                (None, Some(h)) => Request::Http(self.template(at, "http", h, true, scope)?),
                (None, None) => return None,
            };
            let check = s
                .check
                .as_deref()
                .and_then(|c| self.template(at, "check", c, true, scope));
            let expect = s
                .expect
                .as_deref()
                .and_then(|e| self.expression(at, "expect", e, Scope::Result));
            let gate = s.gate.as_ref().and_then(|g| self.gate(at, g));
            let precondition = s
                .precondition
                .as_deref()
                .and_then(|p| self.expression(at, "precondition", p, Scope::Cluster));
            let order = self.order(at, s)?;
            return Some(Action::Nodes(NodeAction {
                request,
                on,
                parse: s.parse,
                order,
                gate,
                timeout: s.timeout,
                expect,
                idempotent: s.idempotent,
                check,
                privileged: s.privileged,
                destructive: s.destructive,
                requires_backup: s.requires_backup.clone(),
                precondition,
            }));
        }
        Some(Action::Note)
    }

    fn gate(&mut self, at: At<'_>, g: &RawWait) -> Option<WaitSpec> {
        let until = self.expression(at, "gate.wait_until", &g.wait_until, Scope::Node)?;
        Some(WaitSpec {
            until,
            timeout: g.timeout.unwrap_or(DEFAULT_GATE_TIMEOUT),
            interval: g.interval,
        })
    }

    fn finding(&mut self, at: At<'_>, f: &super::raw::RawFinding) -> Option<FindingSpec> {
        if let Some(sig) = &f.signal {
            if !crate::nats::SIGNALS.contains(&sig.as_str()) {
                self.problem(
                    at,
                    "finding.signal",
                    format!(
                        "unknown signal `{sig}`; known signals: {}",
                        crate::nats::SIGNALS.join(", ")
                    ),
                );
            }
        } else {
            if f.when.is_none() {
                self.problem(
                    at,
                    "finding.when",
                    "a finding needs `when` (or a `signal`)".into(),
                );
            }
            if f.summary.is_none() {
                self.problem(
                    at,
                    "finding.summary",
                    "a finding needs a `summary` (or a `signal`)".into(),
                );
            }
        }
        let when = f
            .when
            .as_deref()
            .and_then(|w| self.expression(at, "finding.when", w, Scope::Cluster));
        let summary = f
            .summary
            .as_deref()
            .and_then(|t| self.template(at, "finding.summary", t, false, Scope::Cluster));
        let evidence = f
            .evidence
            .iter()
            .filter_map(|e| self.template(at, "finding.evidence", e, false, Scope::Cluster))
            .collect();
        let evidence_from = f
            .evidence_from
            .as_deref()
            .and_then(|e| self.expression(at, "finding.evidence_from", e, Scope::Cluster));
        let confidence = match &f.confidence {
            None => None,
            Some(c) if template::is_template(c) => self
                .template(at, "finding.confidence", c, false, Scope::Cluster)
                .map(ConfidenceSpec::Computed),
            Some(c) => match Confidence::parse(c) {
                Some(c) => Some(ConfidenceSpec::Fixed(c)),
                None => {
                    self.problem(
                        at,
                        "finding.confidence",
                        format!("confidence `{c}` must be high, medium or low"),
                    );
                    None
                }
            },
        };
        let score = f
            .score
            .as_deref()
            .and_then(|t| self.template(at, "finding.score", t, false, Scope::Cluster));
        Some(FindingSpec {
            signal: f.signal.clone(),
            when,
            summary,
            confidence,
            score,
            evidence,
            evidence_from,
        })
    }

    fn order(&mut self, at: At<'_>, s: &RawStep) -> Option<Order> {
        match &s.order {
            None => Some(Order::Parallel),
            Some(RawOrder::Simple(o)) => match o.as_str() {
                "parallel" => Some(Order::Parallel),
                "serial" => Some(Order::Serial),
                other => {
                    self.problem(at, "order", format!("unknown order `{other}`, expected `parallel`, `serial` or `{{serial_by: <expression>}}`"));
                    None
                }
            },
            Some(RawOrder::By(b)) => {
                let expr = self.expression(at, "order.serial_by", &b.serial_by, Scope::Node)?;
                Some(Order::SerialBy {
                    expr,
                    descending: b.descending,
                })
            }
        }
    }

    fn opt_template(
        &mut self,
        at: At<'_>,
        field: &str,
        src: Option<&str>,
        scope: Scope,
    ) -> Option<Template> {
        src.and_then(|t| self.template(at, field, t, false, scope))
    }

    fn template(
        &mut self,
        at: At<'_>,
        field: &str,
        src: &str,
        shell: bool,
        scope: Scope,
    ) -> Option<Template> {
        match Template::compile(src, shell) {
            Err(p) => {
                self.problem(at, field, format!("template error: {}", p.message));
                None
            }
            Ok((t, vars)) => self.references(at, field, &vars, scope).then_some(t),
        }
    }

    fn expression(&mut self, at: At<'_>, field: &str, src: &str, scope: Scope) -> Option<Expr> {
        match Expr::compile(src) {
            Err(p) => {
                self.problem(at, field, format!("expression error: {}", p.message));
                None
            }
            Ok((e, vars)) => self.references(at, field, &vars, scope).then_some(e),
        }
    }

    /// Checks every variable a template uses; true when all resolve.
    fn references(
        &mut self,
        at: At<'_>,
        field: &str,
        vars: &BTreeSet<String>,
        scope: Scope,
    ) -> bool {
        let before = self.problems.len();
        for var in vars {
            let mut parts = var.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            if ROOTS.contains(&root) || FUNCTIONS.contains(&root) {
                if root == "steps" {
                    if let Some(sid) = second {
                        if !self.producers.contains(sid) {
                            self.problem(
                                at,
                                field,
                                format!("`steps.{sid}` refers to no earlier step that runs a command or request (captures come from earlier `run`/`http`/`backup` steps)"),
                            );
                        }
                    }
                }
                if root == "vars" {
                    if let Some(name) = second {
                        if !self.vars.contains_key(name) {
                            self.problem(
                                at,
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
                    self.problem(at, field, format!("`{root}` is only defined in per-node fields (run, check, http, backup, expect, order.serial_by)"));
                }
                continue;
            }
            if root == "result" && scope == Scope::Result {
                continue;
            }
            if (root == "reply" || root == "replies") && scope == Scope::Reply {
                continue;
            }
            self.problem(at, field, format!("undefined variable `{root}` (known: facts, steps, vars, node, f, cluster, nodes, inventory, incident)"));
        }
        self.problems.len() == before
    }
}

fn split(p: Option<(usize, usize)>) -> (Option<usize>, Option<usize>) {
    match p {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    }
}
