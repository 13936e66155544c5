//! Confirmations: the question with what the next fix steps will run on each node, asked
//! through the [`super::Prompter`], answered once per incident.

use super::context::names;
use super::prompter::{Answer, ConfirmRequest};
use super::{Engine, Outcome, StepResult, Stop, UiEvent};
use crate::journal::Event;
use crate::runbook::{Action, ConfirmSpec, Request, Step, StepKind};

impl<'a> Engine<'a> {
    /// Renders what the fix steps up to the next confirmation would run, per node.
    fn preview(&self, confirm_index: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let ctx = self.ctx();
        for s in &self.plan.steps[confirm_index + 1..] {
            if s.kind == StepKind::Confirm {
                break;
            }
            if s.kind != StepKind::Fix {
                continue;
            }
            if let Some(w) = &s.when {
                match w.eval_bool(&ctx) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        lines.push(format!(
                            "step `{}`: cannot evaluate `when` ({e}); it will stop there",
                            s.id
                        ));
                        continue;
                    }
                }
            }
            let (order, request, backup) = match &s.action {
                Action::Nodes(a) => (a.order.is_serial(), Some(&a.request), None),
                Action::Backup(b) => (false, None, Some(b)),
                Action::RewriteRoutes(_) => (false, None, None),
                _ => continue,
            };
            let targets = match self.targets(s) {
                Ok(t) => t,
                Err(Stop(o)) => {
                    lines.push(o.detail().unwrap_or_default());
                    continue;
                }
            };
            lines.push(format!(
                "step `{}` on {} ({}):",
                s.id,
                if targets.is_empty() {
                    "no node".into()
                } else {
                    names(&targets)
                },
                if order {
                    "one node at a time"
                } else {
                    "all at once"
                }
            ));
            let ordered = match self.ordered(s, targets) {
                Ok(o) => o,
                Err(Stop(o)) => {
                    lines.push(o.detail().unwrap_or_default());
                    continue;
                }
            };
            for n in ordered {
                let ctx = self.node_ctx(&n, None);
                let cmd = match (request, backup) {
                    (Some(Request::Shell(t) | Request::Http(t)), _) => t
                        .render(&ctx)
                        .unwrap_or_else(|e| format!("(render error: {e})")),
                    (None, Some(b)) => format!(
                        "archive {} (tar.gz, verified, SHA-256 journaled)",
                        b.path.render(&ctx).unwrap_or_default()
                    ),
                    _ => super::routes::preview(self.inv, &n),
                };
                lines.push(format!("    {}: {}", n.name, cmd));
            }
        }
        lines
    }

    pub(super) fn confirm(&mut self, index: usize, step: &Step, c: &ConfirmSpec) -> StepResult {
        let id = step.id.as_str();
        let ctx = self.ctx();
        let question = self.text(id, "`prompt`", &c.prompt, &ctx)?;
        let mut details = Vec::new();
        for d in &c.details {
            let line = self.text(id, "`details`", d, &ctx)?;
            if !line.trim().is_empty() {
                details.push(line);
            }
        }
        details.extend(self.preview(index));
        let confirmation = |approved: bool, how: &str| Event::Confirmation {
            step: id.into(),
            question: question.clone(),
            destructive: c.destructive,
            approved,
            how: how.into(),
        };
        if self.cfg.rehearsal {
            self.note(format!(
                "would ask{}: {question}",
                if c.destructive {
                    " (DESTRUCTIVE, cluster name typed)"
                } else {
                    ""
                }
            ));
            for d in &details {
                self.note(format!("  {d}"));
            }
            return self.journal(confirmation(true, "rehearsal"));
        }
        if self.prior.confirmations.get(id) == Some(&true) {
            self.note(format!("approved earlier in this incident: {question}"));
            return self.journal(confirmation(
                true,
                "journal (approved before the interruption)",
            ));
        }
        let req = ConfirmRequest {
            step: id.into(),
            question: question.clone(),
            details,
            destructive: c.destructive,
            cluster: self.inv.cluster.clone(),
        };
        match self.prompter.confirm(&req) {
            Answer::Approved { how } => {
                self.last_approval = Some((id.into(), c.destructive));
                self.ui(UiEvent::Good(format!("approved ({how})")));
                self.journal(confirmation(true, &how))
            }
            Answer::Declined { how } => {
                self.journal(confirmation(false, &how))?;
                Err(self.interrupted(&format!("the operator declined step `{id}`")))
            }
            Answer::Unavailable { reason } => {
                self.journal(Event::Interrupted {
                    reason: format!("no decision for step `{id}`: {reason}"),
                })?;
                Err(Stop(Outcome::NeedDecision(reason)))
            }
        }
    }
}
