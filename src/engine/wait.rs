//! Waiting for a condition: re-gather facts, evaluate, sleep, until it holds or the
//! timeout passes (verify steps and the health gates of serial steps).

use super::context::list;
use super::{interrupt, Engine, Outcome, StepResult, Stop, UiEvent};
use crate::inventory::Node;
use crate::journal::Event;
use crate::nats::light;
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
        // Light polling (issue #17): a condition over monitoring facts only is polled from
        // the monitoring endpoints; the full gather runs when it holds (and at the end), and
        // the full facts decide. Should the two ever disagree, the rest of the wait polls in
        // full, as without a light gather.
        let mut light = self
            .light_gather
            .clone()
            .and_then(|g| Some((g, light::level_for(w.until.source(), w.until.paths())?)));
        let result = loop {
            match &light {
                Some((g, level)) => {
                    let f = g(self.inv, &self.thresholds, *level);
                    self.facts.set(f);
                }
                None => self.poll_facts(),
            }
            match self.holds(step_id, w, node) {
                Ok(true) if light.is_some() => {
                    self.poll_facts();
                    match self.holds(step_id, w, node) {
                        Ok(true) => break Ok(true),
                        Ok(false) => light = None,
                        Err(e) => break Err(e),
                    }
                }
                Ok(true) => break Ok(true),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            if start.elapsed() >= w.timeout || interrupt::requested() {
                if light.is_some() {
                    // The last word is the full gather's: it is what is journaled and what
                    // later steps see.
                    self.poll_facts();
                    match self.holds(step_id, w, node) {
                        Ok(true) => break Ok(true),
                        Ok(false) => {}
                        Err(e) => break Err(e),
                    }
                }
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

    /// The wait's condition over the latest facts.
    fn holds(&self, step_id: &str, w: &WaitSpec, node: Option<&Node>) -> Result<bool, Stop> {
        let ctx = match node {
            Some(n) => self.node_ctx(n, None),
            None => self.ctx(),
        };
        self.condition(step_id, "the condition", &w.until, &ctx)
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
