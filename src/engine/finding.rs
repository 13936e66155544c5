//! Diagnose steps' findings: a runbook's evidence for its cause, from a built-in signal
//! (`finding: {signal: …}`) or from its own condition and texts.

use super::{Engine, StepResult};
use crate::journal::Event;
use crate::runbook::{Confidence, ConfidenceSpec, FindingSpec, Step};
use minijinja::value::Value;

/// A finding made by a diagnose step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub cause: String,
    pub runbook: String,
    pub confidence: Confidence,
    pub score: i64,
    pub summary: String,
    pub evidence: Vec<String>,
}

impl Finding {
    /// The finding a journal record holds.
    pub fn from_event(ev: &Event) -> Option<Finding> {
        match ev {
            Event::Finding {
                cause,
                confidence,
                score,
                summary,
                evidence,
                ..
            } => Some(Finding {
                cause: cause.clone(),
                runbook: cause.clone(),
                confidence: Confidence::parse(confidence).unwrap_or(Confidence::Low),
                score: score.unwrap_or(50),
                summary: summary.clone(),
                evidence: evidence.clone(),
            }),
            _ => None,
        }
    }
}

/// Ranks findings most likely first: confidence, then score.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| a.confidence.cmp(&b.confidence).then(b.score.cmp(&a.score)));
}

impl Engine<'_> {
    pub(super) fn finding(&mut self, step: &Step, f: &FindingSpec) -> StepResult {
        let id = step.id.as_str();
        let ctx = self.ctx();
        let signal = f
            .signal
            .as_deref()
            .and_then(|s| self.facts.typed().signal.get(s).cloned());
        let hit = match (&f.when, &f.signal) {
            (Some(w), _) => self.condition(id, "`finding.when`", w, &ctx)?,
            (None, Some(_)) => signal.is_some(),
            (None, None) => false,
        };
        if !hit {
            return Ok(());
        }
        let summary = match (&f.summary, &signal) {
            (Some(t), _) => self.text(id, "`finding.summary`", t, &ctx)?,
            (None, Some(s)) => s.summary.clone(),
            (None, None) => String::new(),
        };
        let confidence = match (&f.confidence, &signal) {
            (Some(ConfidenceSpec::Fixed(c)), _) => *c,
            (Some(ConfidenceSpec::Computed(t)), _) => {
                let text = self.text(id, "`finding.confidence`", t, &ctx)?;
                Confidence::parse(&text).ok_or_else(|| {
                    self.runbook_error(
                        id,
                        "`finding.confidence`",
                        t.source(),
                        &format!("gave `{text}`, expected high, medium or low"),
                    )
                })?
            }
            (None, Some(s)) => Confidence::parse(&s.confidence).unwrap_or(Confidence::Medium),
            (None, None) => Confidence::Medium,
        };
        let score = match (&f.score, &signal) {
            (Some(t), _) => {
                let text = self.text(id, "`finding.score`", t, &ctx)?;
                text.trim()
                    .parse::<f64>()
                    .map(|x| x.round() as i64)
                    .map_err(|_| {
                        self.runbook_error(
                            id,
                            "`finding.score`",
                            t.source(),
                            &format!("gave `{text}`, expected a number"),
                        )
                    })?
            }
            (None, Some(s)) => i64::from(s.score),
            (None, None) => 50,
        };
        let mut evidence: Vec<String> = match &signal {
            Some(s) if f.evidence.is_empty() && f.evidence_from.is_none() => s.evidence.clone(),
            _ => Vec::new(),
        };
        for e in &f.evidence {
            let line = self.text(id, "`finding.evidence`", e, &ctx)?;
            if !line.trim().is_empty() {
                evidence.push(line);
            }
        }
        if let Some(ef) = &f.evidence_from {
            let v = ef
                .eval(&ctx)
                .map_err(|e| self.runbook_error(id, "`finding.evidence_from`", ef.source(), &e))?;
            if !v.is_undefined() && !v.is_none() {
                let it = v.try_iter().map_err(|e| {
                    self.runbook_error(id, "`finding.evidence_from`", ef.source(), &e.to_string())
                })?;
                evidence.extend(
                    it.map(|x: Value| x.as_str().map_or_else(|| x.to_string(), String::from)),
                );
            }
        }
        self.journal(Event::Finding {
            step: id.into(),
            cause: self.plan.id.clone(),
            confidence: confidence.as_str().into(),
            score: Some(score),
            summary,
            evidence,
        })
    }
}
