//! Waiting for a condition: re-gather facts, evaluate, sleep, until it holds or the
//! timeout passes (verify steps and the health gates of serial steps).

use super::context::list;
use super::{interrupt, Engine, Outcome, StepResult, Stop, UiEvent};
use crate::inventory::Node;
use crate::journal::Event;
use crate::runbook::{Step, StepKind, WaitSpec};
use std::time::{Duration, Instant};

impl Engine<'_> {
    /// Polls until `w.until` holds (with `node` in scope for health gates). Ok(false) when
    /// the timeout passed.
    pub(super) fn wait_for(
        &mut self,
        step_id: &str,
        w: &WaitSpec,
        node: Option<&Node>,
    ) -> Result<bool, Stop> {
        let start = Instant::now();
        let interval = w.interval.unwrap_or(self.cfg.poll_interval);
        self.ui(UiEvent::WaitStart {
            what: w.until.source().to_string(),
            timeout: w.timeout,
        });
        let result = loop {
            self.poll_facts();
            let ctx = match node {
                Some(n) => self.node_ctx(n, None),
                None => self.ctx(),
            };
            match self.condition(step_id, "the condition", &w.until, &ctx) {
                Ok(true) => break Ok(true),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            if start.elapsed() >= w.timeout || interrupt::requested() {
                break Ok(false);
            }
            let f = self.facts.typed();
            let line = format!(
                "waiting for {}: leader {}, down {} ({}s / {}s)",
                w.until.source(),
                f.leader.as_deref().unwrap_or("none"),
                list(&f.down),
                start.elapsed().as_secs(),
                w.timeout.as_secs()
            );
            self.ui(UiEvent::WaitProgress(line));
            let left = w.timeout.saturating_sub(start.elapsed());
            std::thread::sleep(interval.min(left).max(Duration::from_millis(50)));
        };
        self.ui(UiEvent::WaitEnd);
        self.journal(Event::FactsGathered {
            step: step_id.into(),
            summary: super::context::facts_summary(self.facts.typed()),
        })?;
        let ok = result?;
        if interrupt::requested() && !ok {
            return Err(self.interrupted("interrupted by the operator (Ctrl-C) while waiting"));
        }
        Ok(ok)
    }

    pub(super) fn wait(&mut self, step: &Step, w: &WaitSpec) -> StepResult {
        let src = w.until.source();
        if self.cfg.rehearsal {
            let now = self.condition(&step.id, "the condition", &w.until, &self.ctx())?;
            self.note(format!(
                "would wait up to {} for: {src} (now: {now})",
                crate::duration::format(w.timeout)
            ));
            return Ok(());
        }
        if step.kind == StepKind::Verify {
            self.verify_steps_run += 1;
        }
        if self.wait_for(&step.id, w, None)? {
            self.ui(UiEvent::Good(src.to_string()));
            Ok(())
        } else {
            let mut msg = format!(
                "step `{}`: `{src}` did not hold within {}",
                step.id,
                crate::duration::format(w.timeout)
            );
            let why = &self.facts.typed().not_healthy;
            if src.contains("healthy") && !why.is_empty() {
                msg.push_str(&format!(" (not healthy: {})", why.join("; ")));
            }
            self.ui(UiEvent::Bad(msg.clone()));
            Err(Stop(if step.kind == StepKind::Verify {
                Outcome::VerifyFailed(msg)
            } else {
                Outcome::Failed(msg)
            }))
        }
    }
}
