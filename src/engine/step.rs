//! The walk over steps: groups and `when`, what an earlier run of the incident already
//! decided, the step's journal frame, and the dispatch to its one action.

use super::context::list;
use super::{Engine, Mode, Outcome, StepResult, Stop, UiEvent};
use crate::inventory::Node;
use crate::journal::{Event, StepOutcome};
use crate::runbook::{Action, Step, StepKind};

impl<'a> Engine<'a> {
    pub(super) fn step(&mut self, index: usize, step: &'a Step) -> StepResult {
        let id = step.id.as_str();
        // Resume: what an earlier run of this incident decided and did stands. A fix step that
        // finished is done; a confirm or fix step that started keeps its `when` (it was true)
        // and its nodes, whatever the facts say now (a leader may exist again half-way).
        let changes = matches!(step.kind, StepKind::Fix | StepKind::Confirm);
        if step.kind == StepKind::Fix && self.prior.finished_steps.contains(id) {
            self.ui(UiEvent::StepHeader {
                kind: step.kind,
                id: id.into(),
                title: None,
            });
            self.note("finished before the interruption (journal): not run again");
            if step.is_backup() {
                self.restore_archives(id);
            }
            return self.journal(Event::StepSkipped {
                step: id.into(),
                reason: "finished before the interruption (journal)".into(),
            });
        }
        // A verify step that passed before the interruption, with later steps already under
        // way, checked a moment that has passed (e.g. "every server is stopped" before the
        // servers were started again): it is not checked again.
        if step.kind == StepKind::Verify
            && self.prior.finished_steps.contains(id)
            && self.plan.steps[index + 1..]
                .iter()
                .any(|s| self.prior.started_steps.contains(&s.id))
        {
            return self.journal(Event::StepSkipped {
                step: id.into(),
                reason: "passed before the interruption, later steps already ran (journal)".into(),
            });
        }
        // A `refuse` guard stands before the changes: once later steps ran, the cluster it
        // would check now is the one those changes made (permanent-loss resumed after the
        // rescue: "there is a meta leader" is the rescue's result, not a reason to refuse).
        if matches!(step.action, Action::Refuse(_))
            && self.plan.steps[index + 1..]
                .iter()
                .any(|s| self.prior.started_steps.contains(&s.id))
        {
            return self.journal(Event::StepSkipped {
                step: id.into(),
                reason: "guard checked before the interruption, later steps already ran (journal)"
                    .into(),
            });
        }
        if let Some(g) = step.group {
            if !self.enter_group(g)? {
                let gid = self.plan.groups[g].id.clone();
                return self.journal(Event::StepSkipped {
                    step: id.into(),
                    reason: format!("group `{gid}` is not entered"),
                });
            }
        }
        let sticky = changes && self.prior.started_steps.contains(id);
        if let (false, Some(w)) = (sticky, &step.when) {
            if !self.condition(id, "`when`", w, &self.ctx())? {
                self.ui(UiEvent::Skipped {
                    step: id.into(),
                    reason: format!("`when` is false: {}", w.source()),
                });
                return self.journal(Event::StepSkipped {
                    step: id.into(),
                    reason: format!("when: {} is false", w.source()),
                });
            }
        }
        let ctx = self.ctx();
        let title = match &step.title {
            Some(t) => Some(self.text(id, "the title", t, &ctx)?),
            None => None,
        };
        self.ui(UiEvent::StepHeader {
            kind: step.kind,
            id: id.into(),
            title,
        });
        self.journal(Event::StepStarted {
            step: id.into(),
            kind: step.kind.as_str().into(),
        })?;
        let r = self.step_body(index, step, sticky);
        if let Some(rec) = &step.recommend {
            let text = self.text(id, "`recommend`", rec, &self.ctx())?;
            if !text.trim().is_empty() {
                self.ui(UiEvent::Recommendation(text.trim().to_string()));
            }
        }
        match r {
            Ok(()) => {
                let outcome = if self.cfg.rehearsal && step.is_mutating() {
                    StepOutcome::Rehearsed
                } else {
                    StepOutcome::Ok
                };
                self.journal(Event::StepFinished {
                    step: id.into(),
                    outcome: outcome.as_str().into(),
                    detail: None,
                })
            }
            Err(Stop(o)) => {
                let _ = self.journal(Event::StepFinished {
                    step: id.into(),
                    outcome: o.step_outcome().as_str().into(),
                    detail: o.detail(),
                });
                Err(Stop(o))
            }
        }
    }

    fn step_body(&mut self, index: usize, step: &'a Step, sticky: bool) -> StepResult {
        let targets = if step.is_per_node() {
            let t = self.planned_targets(step, sticky)?;
            self.journal(Event::StepTargets {
                step: step.id.clone(),
                nodes: t.iter().map(|n| n.name.clone()).collect(),
            })?;
            t
        } else {
            Vec::new()
        };
        if let Some(m) = &step.message {
            let text = self.text(&step.id, "`message`", m, &self.ctx())?;
            self.note(text);
        }
        match &step.action {
            Action::Probe => self.probe(step),
            Action::Finding(f) => self.finding(step, f),
            Action::Confirm(c) => self.confirm(index, step, c),
            Action::Wait(w) => self.wait(step, w),
            Action::Backup(b) => self.backup(step, b, targets),
            Action::RewriteRoutes(r) => self.rewrite_routes(step, r, targets),
            Action::Nodes(a) => self.nodes(step, a, targets),
            Action::Nats(n) => self.nats(step, n),
            // `diagnose` ranks causes: a run's guard has nothing to refuse there.
            Action::Refuse(_) if self.cfg.mode == Mode::Diagnose => Ok(()),
            Action::Refuse(t) => {
                let text = self.text(&step.id, "`refuse`", t, &self.ctx())?;
                let text = text.trim().to_string();
                self.ui(UiEvent::Bad(text.clone()));
                Err(Stop(Outcome::Failed(format!(
                    "refused (nothing was changed): {text}"
                ))))
            }
            Action::Note => Ok(()),
        }
    }

    /// The captures of a backup step that finished before an interruption, from the
    /// journal's `backup_made` records.
    fn restore_archives(&mut self, step: &str) {
        self.reset_capture(step);
        let archives: Vec<_> = self
            .prior
            .archives
            .iter()
            .filter(|a| a.step == step)
            .cloned()
            .collect();
        for a in archives {
            self.capture(
                step,
                &a.node,
                serde_json::json!({"ok": true, "path": a.path, "size": a.size, "sha256": a.sha256, "resumed": true}),
            );
        }
    }

    /// A group's `when` is decided once, when its first step is reached (or was decided
    /// before an interruption), and holds for all its steps.
    fn enter_group(&mut self, g: usize) -> Result<bool, Stop> {
        if let Some(&entered) = self.groups.get(&g) {
            return Ok(entered);
        }
        let group = &self.plan.groups[g];
        let gid = group.id.clone();
        let entered = if self.prior.started_steps.contains(&gid) {
            true
        } else if let Some(w) = &group.when {
            self.condition(&gid, "`when`", w, &self.ctx())?
        } else {
            true
        };
        self.groups.insert(g, entered);
        if entered {
            self.journal(Event::StepStarted {
                step: gid,
                kind: StepKind::Group.as_str().into(),
            })?;
        } else {
            let src = group.when.as_ref().map(|w| w.source().to_string());
            self.ui(UiEvent::Skipped {
                step: gid.clone(),
                reason: format!("`when` is false: {}", src.clone().unwrap_or_default()),
            });
            self.journal(Event::StepSkipped {
                step: gid,
                reason: format!("when: {} is false", src.unwrap_or_default()),
            })?;
        }
        Ok(entered)
    }

    /// The nodes a step runs on: those journaled when it started (resume), else `on`.
    fn planned_targets(&mut self, step: &Step, sticky: bool) -> Result<Vec<Node>, Stop> {
        if sticky {
            if let Some(names) = self.prior.step_targets.get(&step.id) {
                return Ok(self
                    .inv
                    .nodes
                    .iter()
                    .filter(|n| names.contains(&n.name))
                    .cloned()
                    .collect());
            }
        }
        self.targets(step)
    }

    /// Nodes a per-node step applies to: `on` (default all), limited by `--node` for fixes.
    pub(super) fn targets(&self, step: &Step) -> Result<Vec<Node>, Stop> {
        let mut nodes: Vec<Node> = match step.on() {
            None => self.inv.nodes.clone(),
            Some(expr) => {
                let names = expr
                    .eval_names(&self.ctx())
                    .map_err(|e| self.runbook_error(&step.id, "`on`", expr.source(), &e))?;
                self.inv
                    .nodes
                    .iter()
                    .filter(|n| names.contains(&n.name))
                    .cloned()
                    .collect()
            }
        };
        if step.kind == StepKind::Fix && !self.cfg.node_limit.is_empty() {
            nodes.retain(|n| self.cfg.node_limit.contains(&n.name));
        }
        Ok(nodes)
    }

    fn probe(&mut self, step: &Step) -> StepResult {
        if self.cfg.mode == Mode::Diagnose && self.facts.gathered() {
            self.capture_facts(&step.id);
            return Ok(());
        }
        self.gather_facts(&step.id)?;
        self.capture_facts(&step.id);
        let f = self.facts.typed();
        let line = format!(
            "leader: {}; up: {}; down: {}; unreachable: {}",
            f.leader.as_deref().unwrap_or("none"),
            list(&f.up),
            list(&f.down),
            list(&f.unreachable),
        );
        self.note(line);
        Ok(())
    }
}
