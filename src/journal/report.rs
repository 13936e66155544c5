//! `journal list`, `journal show`, `journal export` and finding incidents by id or prefix.
//!
//! Reports are built once into a [`ReportData`] and rendered twice: Markdown for a ticket
//! and JSON (its serde form) for tools, so the two always carry the same content.

use super::error::JournalError;
use super::event::Event;
use super::record::Record;
use super::replay::{replay, Replay};
use super::verify::{load, load_lenient, TornInfo, VerifyReport};
use super::writer::check_incident_id;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One line of `journal list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentSummary {
    pub id: String,
    pub path: PathBuf,
    pub runbook: String,
    pub cluster: String,
    /// RFC 3339 of the first record (empty if none).
    pub started: String,
    pub operator: String,
    /// `open`, `interrupted`, or the close outcome (`recovered`, `stopped`, ...).
    pub outcome: String,
    pub rehearsal: bool,
    pub records: usize,
    /// `ok`, `torn tail at line N`, or `BROKEN at line N (kind)`.
    pub integrity: String,
    /// Not closed with a final outcome: `resume` can continue it.
    pub resumable: bool,
}

/// Every incident journal in `dir`, newest first. Unreadable or damaged journals are listed
/// with what could be read and their integrity state.
pub fn list(dir: &Path) -> Vec<IncidentSummary> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<IncidentSummary> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.is_file())
        .map(|p| summarize(&p))
        .collect();
    out.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.id.cmp(&a.id)));
    out
}

fn summarize(path: &Path) -> IncidentSummary {
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (records, integrity) = match load(path) {
        Ok((records, report)) => {
            let integrity = match report.torn_tail {
                Some(t) => format!("torn tail at line {}", t.line),
                None => "ok".to_string(),
            };
            (records, integrity)
        }
        Err(JournalError::Integrity { line, kind, .. }) => (
            load_lenient(path).unwrap_or_default(),
            format!("BROKEN at line {line} ({kind})"),
        ),
        Err(e) => (Vec::new(), format!("unreadable: {e}")),
    };
    let state = replay(&records);
    let opened = state.opened.as_ref();
    IncidentSummary {
        id,
        path: path.to_path_buf(),
        runbook: opened.map(|o| o.runbook.clone()).unwrap_or_default(),
        cluster: opened.map(|o| o.cluster.clone()).unwrap_or_default(),
        started: records.first().map(|r| r.ts.clone()).unwrap_or_default(),
        operator: opened.map(|o| o.operator.clone()).unwrap_or_default(),
        outcome: state.status(),
        rehearsal: state.is_rehearsal(),
        records: records.len(),
        integrity,
        resumable: !state.is_finished(),
    }
}

/// Finds a journal: an existing file path, an incident id, or a unique id prefix.
pub fn resolve(dir: &Path, incident_or_path: &str) -> Result<PathBuf, JournalError> {
    let q = incident_or_path.trim();
    let as_path = Path::new(q);
    if (q.contains('/') || q.ends_with(".jsonl")) && as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let unknown = |hint: String| JournalError::UnknownIncident {
        query: q.to_string(),
        hint,
    };
    if q.is_empty() || check_incident_id(q.trim_end_matches(".jsonl")).is_err() {
        return Err(unknown(format!(
            "no such file, and not an incident id in {}",
            dir.display()
        )));
    }
    let id = q.trim_end_matches(".jsonl");
    let exact = super::writer::journal_path(dir, id);
    if exact.is_file() {
        return Ok(exact);
    }
    let mut matches: Vec<String> = ids(dir).into_iter().filter(|i| i.starts_with(id)).collect();
    matches.sort();
    match matches.len() {
        1 => Ok(super::writer::journal_path(dir, &matches[0])),
        0 => Err(unknown(format!(
            "no journal in {} (see `nats-rescue journal list`)",
            dir.display()
        ))),
        n => Err(unknown(format!(
            "ambiguous, {n} incidents match: {}",
            matches.join(", ")
        ))),
    }
}

fn ids(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".jsonl").map(String::from)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The newest incident `resume` can continue (not closed with a final outcome). Rehearsals
/// are skipped: resuming a `--dry-run` must be asked for by id.
pub fn latest_unfinished(dir: &Path) -> Option<String> {
    list(dir)
        .into_iter()
        .find(|i| i.resumable && !i.rehearsal && i.records > 0)
        .map(|i| i.id)
}

// ---------------------------------------------------------------------------------------
// The report model

/// Everything a post-incident report says, in the order it says it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub incident: String,
    pub rehearsal: bool,
    pub summary: Summary,
    pub findings: Vec<FindingEntry>,
    pub confirmations: Vec<ConfirmationEntry>,
    pub steps: Vec<StepEntry>,
    pub nodes: Vec<NodeEntry>,
    pub backups: Vec<BackupEntry>,
    pub host_keys: Vec<HostKeyEntry>,
    /// Captures attached with `capture --incident`.
    pub captures: Vec<CaptureEntry>,
    pub resumes: Vec<ResumeEntry>,
    pub decisions: Vec<DecisionEntry>,
    pub interruptions: Vec<Stamped>,
    pub in_doubt: Vec<String>,
    pub integrity: Integrity,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub cluster: String,
    pub runbook: String,
    pub runbook_sha256: String,
    pub runbook_source: String,
    pub inventory: String,
    pub inventory_sha256: String,
    pub operator: String,
    pub tool_version: String,
    pub started: String,
    /// Close time, or the last record's time while still open.
    pub ended: String,
    pub duration_ms: Option<i64>,
    pub outcome: String,
    pub outcome_detail: Option<String>,
    pub vars: std::collections::BTreeMap<String, String>,
    pub node_limit: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingEntry {
    pub ts: String,
    pub step: String,
    pub cause: String,
    pub confidence: String,
    pub summary: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfirmationEntry {
    pub ts: String,
    pub step: String,
    pub question: String,
    pub destructive: bool,
    pub approved: bool,
    pub how: String,
    /// The operator running the tool at that moment (the opener, or the latest resumer).
    pub operator: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepEntry {
    pub step: String,
    pub kind: String,
    pub started: Option<String>,
    /// `ok`, `failed`, `timeout`, `rehearsed`, `skipped`, or empty while unfinished.
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeEntry {
    pub node: String,
    pub actions: Vec<ActionEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionEntry {
    pub action: String,
    pub step: String,
    pub command: String,
    pub ts: String,
    pub mutating: bool,
    pub idempotent: bool,
    pub check: Option<String>,
    /// `--dry-run`: printed, not sent.
    pub rehearsed: bool,
    pub result: Option<ResultEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResultEntry {
    pub ts: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub stdout: String,
    pub stdout_bytes: u64,
    pub stdout_sha256: String,
    pub stderr: String,
    pub stderr_bytes: u64,
    pub stderr_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupEntry {
    pub ts: String,
    pub step: String,
    pub node: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureEntry {
    pub ts: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub captured_at: String,
    pub operator: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostKeyEntry {
    pub ts: String,
    pub node: String,
    pub host: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResumeEntry {
    pub ts: String,
    pub operator: String,
    pub in_doubt: Vec<String>,
    pub repaired_torn_tail: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionEntry {
    pub ts: String,
    pub action: String,
    pub node: String,
    pub decision: String,
    pub how: String,
    pub detail: Option<String>,
    pub operator: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stamped {
    pub ts: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    pub records: usize,
    pub head_hash: String,
    pub torn_tail: Option<TornInfo>,
    pub repaired: Vec<TornInfo>,
    pub verify_command: String,
}

/// Builds the report model from verified records.
pub fn report_data(records: &[Record], verify: &VerifyReport) -> ReportData {
    let state: Replay = replay(records);
    let incident = records
        .first()
        .map(|r| r.incident.clone())
        .or_else(|| verify.incident.clone())
        .unwrap_or_default();
    let opened = state.opened.clone();
    let started = records.first().map(|r| r.ts.clone()).unwrap_or_default();
    let (ended, outcome_detail) = records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::IncidentClosed { detail, .. } if state.closed.is_some() => {
                Some((r.ts.clone(), detail.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| {
            (
                records.last().map(|r| r.ts.clone()).unwrap_or_default(),
                None,
            )
        });
    let duration_ms = match (records.first().and_then(Record::time), parse_ts(&ended)) {
        (Some(a), Some(b)) => Some((b - a).num_milliseconds()),
        _ => None,
    };

    let mut data = ReportData {
        incident: incident.clone(),
        rehearsal: state.is_rehearsal(),
        summary: Summary {
            cluster: opened
                .as_ref()
                .map(|o| o.cluster.clone())
                .unwrap_or_default(),
            runbook: opened
                .as_ref()
                .map(|o| o.runbook.clone())
                .unwrap_or_default(),
            runbook_sha256: opened
                .as_ref()
                .map(|o| o.runbook_sha256.clone())
                .unwrap_or_default(),
            runbook_source: opened
                .as_ref()
                .map(|o| o.runbook_source.clone())
                .unwrap_or_default(),
            inventory: opened
                .as_ref()
                .map(|o| o.inventory.clone())
                .unwrap_or_default(),
            inventory_sha256: opened
                .as_ref()
                .map(|o| o.inventory_sha256.clone())
                .unwrap_or_default(),
            operator: opened
                .as_ref()
                .map(|o| o.operator.clone())
                .unwrap_or_default(),
            tool_version: opened
                .as_ref()
                .map(|o| o.tool_version.clone())
                .unwrap_or_default(),
            started,
            ended,
            duration_ms,
            outcome: state.status(),
            outcome_detail,
            vars: opened.as_ref().map(|o| o.vars.clone()).unwrap_or_default(),
            node_limit: opened
                .as_ref()
                .map(|o| o.node_limit.clone())
                .unwrap_or_default(),
        },
        findings: Vec::new(),
        confirmations: Vec::new(),
        steps: Vec::new(),
        nodes: Vec::new(),
        backups: Vec::new(),
        host_keys: Vec::new(),
        captures: Vec::new(),
        resumes: Vec::new(),
        decisions: Vec::new(),
        interruptions: Vec::new(),
        in_doubt: state.in_doubt.iter().map(|a| a.action.clone()).collect(),
        integrity: Integrity {
            records: verify.records,
            head_hash: verify.head_hash.clone(),
            torn_tail: verify.torn_tail,
            repaired: verify.repaired.clone(),
            verify_command: format!("nats-rescue journal verify {incident}"),
        },
    };

    let mut operator = data.summary.operator.clone();
    for rec in records {
        let ts = rec.ts.clone();
        match &rec.event {
            Event::IncidentOpened { operator: o, .. } => operator = o.clone(),
            Event::Resumed { operator: o, in_doubt, repaired_torn_tail } => {
                operator = o.clone();
                data.resumes.push(ResumeEntry {
                    ts,
                    operator: o.clone(),
                    in_doubt: in_doubt.clone(),
                    repaired_torn_tail: *repaired_torn_tail,
                });
            }
            Event::StepTargets { .. } => {}
            Event::StepStarted { step, kind } => data.steps.push(StepEntry {
                step: step.clone(),
                kind: kind.clone(),
                started: Some(ts),
                outcome: String::new(),
                detail: None,
            }),
            Event::StepSkipped { step, reason } => data.steps.push(StepEntry {
                step: step.clone(),
                kind: String::new(),
                started: None,
                outcome: "skipped".into(),
                detail: Some(reason.clone()),
            }),
            Event::StepFinished { step, outcome, detail } => {
                match data.steps.iter_mut().rev().find(|s| &s.step == step && s.outcome.is_empty()) {
                    Some(s) => {
                        s.outcome = outcome.clone();
                        s.detail = detail.clone();
                    }
                    None => data.steps.push(StepEntry {
                        step: step.clone(),
                        kind: String::new(),
                        started: None,
                        outcome: outcome.clone(),
                        detail: detail.clone(),
                    }),
                }
            }
            Event::FactsGathered { .. } => {}
            Event::Finding { step, cause, confidence, summary, evidence, .. } => data.findings.push(FindingEntry {
                ts,
                step: step.clone(),
                cause: cause.clone(),
                confidence: confidence.clone(),
                summary: summary.clone(),
                evidence: evidence.clone(),
            }),
            Event::Confirmation { step, question, destructive, approved, how } => {
                data.confirmations.push(ConfirmationEntry {
                    ts,
                    step: step.clone(),
                    question: question.clone(),
                    destructive: *destructive,
                    approved: *approved,
                    how: how.clone(),
                    operator: operator.clone(),
                })
            }
            Event::ActionIntent { action, step, node, command, mutating, idempotent, check } => {
                node_entry(&mut data.nodes, node).actions.push(ActionEntry {
                    action: action.clone(),
                    step: step.clone(),
                    command: command.clone(),
                    ts,
                    mutating: *mutating,
                    idempotent: *idempotent,
                    check: check.clone(),
                    rehearsed: false,
                    result: None,
                })
            }
            Event::ActionRehearsed { action, step, node, command } => {
                node_entry(&mut data.nodes, node).actions.push(ActionEntry {
                    action: action.clone(),
                    step: step.clone(),
                    command: command.clone(),
                    ts,
                    mutating: true,
                    idempotent: false,
                    check: None,
                    rehearsed: true,
                    result: None,
                })
            }
            Event::ActionResult {
                action,
                step,
                node,
                exit_code,
                timed_out,
                error,
                stdout,
                stdout_bytes,
                stdout_sha256,
                stderr,
                stderr_bytes,
                stderr_sha256,
                duration_ms,
            } => {
                let result = ResultEntry {
                    ts: ts.clone(),
                    exit_code: *exit_code,
                    timed_out: *timed_out,
                    error: error.clone(),
                    duration_ms: *duration_ms,
                    stdout: stdout.clone(),
                    stdout_bytes: *stdout_bytes,
                    stdout_sha256: stdout_sha256.clone(),
                    stderr: stderr.clone(),
                    stderr_bytes: *stderr_bytes,
                    stderr_sha256: stderr_sha256.clone(),
                };
                let entry = node_entry(&mut data.nodes, node);
                match entry.actions.iter_mut().rev().find(|a| &a.action == action && a.result.is_none() && !a.rehearsed) {
                    Some(a) => a.result = Some(result),
                    // A result without an intent cannot come from our writer; show it anyway.
                    None => entry.actions.push(ActionEntry {
                        action: action.clone(),
                        step: step.clone(),
                        command: "(no intent recorded)".into(),
                        ts,
                        mutating: false,
                        idempotent: false,
                        check: None,
                        rehearsed: false,
                        result: Some(result),
                    }),
                }
            }
            Event::BackupMade { step, node, path, size, sha256, source } => data.backups.push(BackupEntry {
                ts,
                step: step.clone(),
                node: node.clone(),
                path: path.clone(),
                size: *size,
                sha256: sha256.clone(),
                source: source.clone(),
            }),
            Event::CaptureAttached { path, sha256, size, captured_at, operator } => data.captures.push(CaptureEntry {
                ts: ts.clone(),
                path: path.clone(),
                sha256: sha256.clone(),
                size: *size,
                captured_at: captured_at.clone(),
                operator: operator.clone(),
            }),
            Event::HostKeyAccepted { node, host, fingerprint } => data.host_keys.push(HostKeyEntry {
                ts,
                node: node.clone(),
                host: host.clone(),
                fingerprint: fingerprint.clone(),
            }),
            Event::Decision { action, node, decision, how, detail } => data.decisions.push(DecisionEntry {
                ts,
                action: action.clone(),
                node: node.clone(),
                decision: decision.clone(),
                how: how.clone(),
                detail: detail.clone(),
                operator: operator.clone(),
            }),
            Event::Interrupted { reason } => data.interruptions.push(Stamped { ts, text: reason.clone() }),
            Event::ActionLost { action, node, reason, .. } => data.interruptions.push(Stamped {
                ts,
                text: format!("{action} on {node}: connection lost after sending, outcome in doubt ({reason})"),
            }),
            Event::TornTailRepaired { line, bytes } => data.interruptions.push(Stamped {
                ts,
                text: format!("torn journal line {line} ({bytes} bytes, crash mid-write) repaired by appending"),
            }),
            Event::IncidentClosed { .. } => {}
        }
    }
    data
}

fn node_entry<'a>(nodes: &'a mut Vec<NodeEntry>, node: &str) -> &'a mut NodeEntry {
    let idx = match nodes.iter().position(|n| n.node == node) {
        Some(i) => i,
        None => {
            nodes.push(NodeEntry {
                node: node.to_string(),
                actions: Vec::new(),
            });
            nodes.len() - 1
        }
    };
    &mut nodes[idx]
}

/// The report as JSON: [`ReportData`]'s serde form.
pub fn export_json(records: &[Record], verify: &VerifyReport) -> serde_json::Value {
    serde_json::to_value(report_data(records, verify)).unwrap_or(serde_json::Value::Null)
}

/// A record timestamp (RFC 3339).
pub(crate) fn parse_ts(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}
