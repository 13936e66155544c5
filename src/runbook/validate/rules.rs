//! The language's rules about what a step may hold (its shape) and the safety rules for
//! destructive steps.

use super::{At, Lowering};
use crate::runbook::raw::{RawOrder, RawStep, StepKind};

impl Lowering<'_> {
    pub(super) fn safety_rules(&mut self, at: At<'_>, s: &RawStep) {
        if s.destructive && s.kind == StepKind::Fix && !self.last_confirm_destructive {
            self.problem(
                at,
                "destructive",
                "a destructive step must come after a destructive confirmation (`kind: confirm` with `destructive: true`, the cluster name typed), with no other confirmation in between".into(),
            );
        }
        if s.destructive && s.kind == StepKind::Fix {
            match &s.requires_backup {
                None => self.problem(at, "requires_backup", "a destructive step must name a backup step (`requires_backup: <step id>`) that runs before it".into()),
                Some(b) if !self.backups.contains(b) => self.problem(
                    at,
                    "requires_backup",
                    format!("`{b}` is not an earlier backup step of this runbook"),
                ),
                _ => {}
            }
            if s.precondition.is_none() {
                self.problem(at, "precondition", "a destructive step must state a precondition that is re-checked right before it runs".into());
            }
        } else if let Some(b) = &s.requires_backup {
            if !self.backups.contains(b) {
                self.problem(
                    at,
                    "requires_backup",
                    format!("`{b}` is not an earlier backup step of this runbook"),
                );
            }
        }
    }

    #[allow(clippy::too_many_lines)]
    pub(super) fn check_shape(&mut self, at: At<'_>, s: &RawStep) {
        let actions: Vec<&str> = [
            ("probe", s.probe.is_some()),
            ("run", s.run.is_some()),
            ("http", s.http.is_some()),
            ("backup", s.backup.is_some()),
            ("rewrite_routes", s.rewrite_routes.is_some()),
            ("nats", s.nats.is_some()),
            ("wait_until", s.wait_until.is_some()),
            ("finding", s.finding.is_some()),
            ("refuse", s.refuse.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
        if actions.len() > 1 {
            self.problem(
                at,
                actions[1],
                format!(
                    "a step does one thing; this one has {} (split it into several steps)",
                    actions.join(" and ")
                ),
            );
        }
        let kind = s.kind.as_str();
        let forbid = |v: &mut Self, field: &str, present: bool, why: &str| {
            if present {
                v.problem(
                    at,
                    field,
                    format!("`{field}` is not allowed in a {kind} step: {why}"),
                );
            }
        };
        if s.kind != StepKind::Diagnose {
            forbid(
                self,
                "refuse",
                s.refuse.is_some(),
                "only a diagnose step refuses (before anything changed)",
            );
        }
        match s.kind {
            StepKind::Diagnose => {
                if actions.is_empty() && s.message.is_none() && s.recommend.is_none() {
                    self.problem(
                        at,
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
                    "rewrite_routes",
                    s.rewrite_routes.is_some(),
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
                    self.problem(at, "prompt", "a confirm step needs a prompt".into());
                }
                for (f, p) in [
                    ("run", s.run.is_some()),
                    ("http", s.http.is_some()),
                    ("probe", s.probe.is_some()),
                    ("backup", s.backup.is_some()),
                    ("rewrite_routes", s.rewrite_routes.is_some()),
                    ("nats", s.nats.is_some()),
                    ("finding", s.finding.is_some()),
                    ("wait_until", s.wait_until.is_some()),
                ] {
                    forbid(self, f, p, "a confirmation only asks");
                }
            }
            StepKind::Fix => {
                if s.run.is_none()
                    && s.backup.is_none()
                    && s.rewrite_routes.is_none()
                    && s.nats.is_none()
                {
                    self.problem(
                        at,
                        "run",
                        "a fix step needs `run`, `backup`, `rewrite_routes` or `nats`".into(),
                    );
                }
                if let Some(n) = &s.nats {
                    if !n.read_only && !s.idempotent && n.check.is_none() {
                        self.problem(at, "nats", "a mutating `nats` request needs `idempotent: true` or a `nats.check` (an expression over fresh facts that is true once it took effect) so that resume is safe".into());
                    }
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
                if !self.confirmed {
                    self.problem(at, "kind", "a fix step must come after a confirm step (nothing mutating runs without a recorded confirmation)".into());
                }
                if s.run.is_some() && !s.idempotent && s.check.is_none() {
                    self.problem(at, "idempotent", "a fix step needs `idempotent: true` or a `check` so that resume after a crash is safe".into());
                }
            }
            StepKind::Verify => {
                if s.wait_until.is_none()
                    && s.run.is_none()
                    && s.http.is_none()
                    && s.probe.is_none()
                    && s.nats.is_none()
                {
                    self.problem(
                        at,
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
                    "rewrite_routes",
                    s.rewrite_routes.is_some(),
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
            StepKind::Group => {}
        }
        if s.kind != StepKind::Fix && s.nats.as_ref().is_some_and(|n| !n.read_only) {
            self.problem(
                at,
                "nats",
                format!(
                    "a {} step only reads: mark the request `read_only: true`, or make it a fix step",
                    s.kind.as_str()
                ),
            );
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
            self.problem(at, "destructive", "a backup step is not destructive".into());
        }
        if s.parse.is_some() && s.run.is_none() && s.http.is_none() {
            self.problem(at, "parse", "`parse` needs `run` or `http`".into());
        }
        let serial = matches!(s.order, Some(RawOrder::Simple(ref o)) if o == "serial")
            || matches!(s.order, Some(RawOrder::By(_)));
        if s.gate.is_some() && !serial {
            self.problem(
                at,
                "gate",
                "a health gate needs a serial order (`order: serial` or `order: {serial_by: …}`)"
                    .into(),
            );
        }
        if s.on.is_some()
            && s.run.is_none()
            && s.http.is_none()
            && s.backup.is_none()
            && s.rewrite_routes.is_none()
        {
            self.problem(
                at,
                "on",
                "`on` selects nodes for run, http, backup or rewrite_routes".into(),
            );
        }
        if s.expect.is_some() && s.run.is_none() && s.http.is_none() {
            self.problem(
                at,
                "expect",
                "`expect` judges the result of `run` or `http`".into(),
            );
        }
        if s.precondition.is_some() && s.run.is_none() {
            self.problem(
                at,
                "precondition",
                "`precondition` guards a `run` step".into(),
            );
        }
    }
}
