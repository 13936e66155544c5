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
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => { let _ = writeln!($dst, $($arg)*); };
}

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

/// `journal list` as a table.
pub fn render_list(incidents: &[IncidentSummary]) -> String {
    let mut out = String::new();
    if incidents.is_empty() {
        out.push_str("no incidents\n");
        return out;
    }
    let rows: Vec<[String; 6]> = incidents
        .iter()
        .map(|i| {
            let mut outcome = i.outcome.clone();
            if i.rehearsal {
                outcome.push_str(" [REHEARSAL]");
            }
            if i.integrity != "ok" {
                outcome.push_str(&format!(" ({})", i.integrity));
            }
            [
                i.id.clone(),
                i.runbook.clone(),
                i.started.clone(),
                i.operator.clone(),
                outcome,
                i.records.to_string(),
            ]
        })
        .collect();
    let header = [
        "INCIDENT", "RUNBOOK", "STARTED", "OPERATOR", "OUTCOME", "RECORDS",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    w!(out, "{}", line(header.to_vec()));
    for row in &rows {
        w!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
    out
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
            Event::Finding { step, cause, confidence, summary, evidence } => data.findings.push(FindingEntry {
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

// ---------------------------------------------------------------------------------------
// Rendering helpers

fn parse_ts(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `850 ms`, `2.2 s`, `3m 12s`, `1h 02m 03s`.
pub fn fmt_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!(
            "{}h {:02}m {:02}s",
            ms / 3_600_000,
            (ms / 60_000) % 60,
            (ms / 1000) % 60
        )
    }
}

/// `+12.345s`, `+3m12.345s`, `+1h02m03s` from the first record.
fn fmt_offset(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("+{}.{:03}s", ms / 1000, ms % 1000)
    } else if ms < 3_600_000 {
        format!("+{}m{:02}.{:03}s", ms / 60_000, (ms / 1000) % 60, ms % 1000)
    } else {
        format!(
            "+{}h{:02}m{:02}s",
            ms / 3_600_000,
            (ms / 60_000) % 60,
            (ms / 1000) % 60
        )
    }
}

fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {} ({n} bytes)", UNITS[u])
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A Markdown table cell: no pipes or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\r', "").replace('\n', " ⏎ ")
}

/// Inline code that survives backticks in the content.
fn code(s: &str) -> String {
    let longest = longest_backtick_run(s);
    let ticks = "`".repeat(longest + 1);
    if longest > 0 {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Inline code inside a table cell.
fn tcode(s: &str) -> String {
    cell(&code(s))
}

/// A fenced block that survives fences in the content.
fn fence(out: &mut String, lang: &str, content: &str) {
    let ticks = "`".repeat(longest_backtick_run(content).max(2) + 1);
    w!(out, "{ticks}{lang}");
    w!(out, "{}", content.trim_end_matches('\n'));
    w!(out, "{ticks}");
}

const EXCERPT_LINES: usize = 40;
const EXCERPT_CHARS: usize = 4000;

/// The first lines of an output, and how much was left out.
fn excerpt(text: &str, total_bytes: u64) -> (String, Option<String>) {
    let mut out: String = text
        .lines()
        .take(EXCERPT_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    if out.chars().count() > EXCERPT_CHARS {
        out = out.chars().take(EXCERPT_CHARS).collect();
    }
    let shown = out.len() as u64;
    let note = if shown + 1 < total_bytes || shown < text.trim_end().len() as u64 {
        Some(format!("excerpt: {shown} of {total_bytes} bytes"))
    } else {
        None
    };
    (out, note)
}

fn exit_text(r: &ResultEntry) -> String {
    if let Some(e) = &r.error {
        format!("error: {e}")
    } else if r.timed_out {
        "timed out".to_string()
    } else {
        match r.exit_code {
            Some(c) => format!("exit {c}"),
            None => "no exit code".to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// show

/// One line per record: offset from the start, seq, event, step, node and what happened.
pub fn show(records: &[Record]) -> String {
    let state = replay(records);
    let rehearsal = state.is_rehearsal();
    let mut out = String::new();
    let incident = records
        .first()
        .map(|r| r.incident.as_str())
        .unwrap_or("(empty journal)");
    w!(
        out,
        "Incident {incident}{}",
        if rehearsal { "  [REHEARSAL]" } else { "" }
    );
    if let Some(o) = &state.opened {
        w!(
            out,
            "  runbook   {} ({}, sha256 {})",
            o.runbook,
            o.runbook_source,
            short(&o.runbook_sha256)
        );
        w!(
            out,
            "  cluster   {}   inventory {} (sha256 {})",
            o.cluster,
            o.inventory,
            short(&o.inventory_sha256)
        );
        w!(out, "  operator  {}   tool {}", o.operator, o.tool_version);
        if !o.vars.is_empty() {
            let vars: Vec<String> = o.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
            w!(out, "  vars      {}", vars.join(" "));
        }
        if !o.node_limit.is_empty() {
            w!(out, "  nodes     {}", o.node_limit.join(", "));
        }
    }
    w!(
        out,
        "  started   {}",
        records.first().map(|r| r.ts.as_str()).unwrap_or("-")
    );
    w!(
        out,
        "  status    {}   records {}   head {}",
        state.status(),
        records.len(),
        state.head_hash
    );
    if !state.in_doubt.is_empty() {
        let ids: Vec<&str> = state.in_doubt.iter().map(|a| a.action.as_str()).collect();
        w!(out, "  IN DOUBT  {}", ids.join(", "));
    }
    out.push('\n');

    let t0 = records.first().and_then(Record::time);
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| {
            let offset = match (t0, r.time()) {
                (Some(a), Some(b)) => fmt_offset((b - a).num_milliseconds()),
                _ => r.ts.clone(),
            };
            let (step, node, text) = describe(&r.event, rehearsal);
            [
                offset,
                format!("#{}", r.seq),
                r.event.name().to_string(),
                step,
                node,
                text,
            ]
        })
        .collect();
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let [w0, w1, w2, w3, w4] = widths;
    for [offset, seq, event, step, node, text] in &rows {
        let line =
            format!("{offset:>w0$}  {seq:<w1$}  {event:<w2$}  {step:<w3$}  {node:<w4$}  {text}");
        w!(out, "{}", line.trim_end());
    }
    out
}

/// (step, node, text) for the timeline.
fn describe(ev: &Event, rehearsal: bool) -> (String, String, String) {
    let mark = if rehearsal { " [REHEARSAL]" } else { "" };
    let s = String::new;
    match ev {
        Event::IncidentOpened {
            operator,
            runbook,
            cluster,
            rehearsal,
            ..
        } => (
            s(),
            s(),
            format!(
                "{runbook} on {cluster} by {operator}{}",
                if *rehearsal { " [REHEARSAL]" } else { "" }
            ),
        ),
        Event::StepStarted { step, kind } => (step.clone(), s(), kind.clone()),
        Event::StepTargets { step, nodes } => {
            (step.clone(), s(), format!("on {}", nodes.join(", ")))
        }
        Event::StepSkipped { step, reason } => (step.clone(), s(), format!("skipped: {reason}")),
        Event::StepFinished {
            step,
            outcome,
            detail,
        } => (
            step.clone(),
            s(),
            match detail {
                Some(d) => format!("{outcome}: {d}"),
                None => outcome.clone(),
            },
        ),
        Event::FactsGathered { step, summary } => {
            let list = |k: &str| {
                summary
                    .get(k)
                    .and_then(|v| v.as_array())
                    .filter(|a| !a.is_empty())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_else(|| "-".into())
            };
            let leader = summary
                .get("leader")
                .and_then(|v| v.as_str())
                .unwrap_or("none");
            let healthy = if summary.get("healthy").and_then(|v| v.as_bool()) == Some(true) {
                ", healthy"
            } else {
                ""
            };
            (
                step.clone(),
                s(),
                format!(
                    "facts: leader {leader}{healthy}; up {}; down {}; unreachable {}; frozen {}",
                    list("up"),
                    list("down"),
                    list("unreachable"),
                    list("frozen")
                ),
            )
        }
        Event::Finding {
            step,
            cause,
            confidence,
            summary,
            evidence,
        } => (
            step.clone(),
            s(),
            format!(
                "{cause} ({confidence}): {summary} [{} evidence]",
                evidence.len()
            ),
        ),
        Event::Confirmation {
            step,
            question,
            destructive,
            approved,
            how,
        } => (
            step.clone(),
            s(),
            format!(
                "{}{} \"{}\" via {how}",
                if *approved { "APPROVED" } else { "DECLINED" },
                if *destructive { " (destructive)" } else { "" },
                one_line(question)
            ),
        ),
        Event::ActionIntent {
            step,
            node,
            command,
            mutating,
            idempotent,
            check,
            ..
        } => {
            let mut flags = Vec::new();
            if *mutating {
                flags.push("mutating".to_string());
            }
            if *idempotent {
                flags.push("idempotent".to_string());
            }
            if let Some(c) = check {
                flags.push(format!("check: {}", one_line(c)));
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            (
                step.clone(),
                node.clone(),
                format!("$ {}{flags}{mark}", one_line(command)),
            )
        }
        Event::ActionResult {
            step,
            node,
            exit_code,
            timed_out,
            error,
            stdout_bytes,
            stderr_bytes,
            duration_ms,
            ..
        } => {
            let what = if let Some(e) = error {
                format!("error: {}", one_line(e))
            } else if *timed_out {
                "TIMED OUT".to_string()
            } else {
                exit_code
                    .map(|c| format!("exit {c}"))
                    .unwrap_or_else(|| "no exit code".into())
            };
            (
                step.clone(),
                node.clone(),
                format!(
                    "{what}  {}  (stdout {stdout_bytes} B, stderr {stderr_bytes} B)",
                    fmt_duration_ms(*duration_ms as i64)
                ),
            )
        }
        Event::ActionRehearsed {
            step,
            node,
            command,
            ..
        } => (
            step.clone(),
            node.clone(),
            format!("[REHEARSAL] not run: $ {}", one_line(command)),
        ),
        Event::BackupMade {
            step,
            node,
            path,
            size,
            sha256,
            ..
        } => (
            step.clone(),
            node.clone(),
            format!("{path} {} sha256 {}", fmt_bytes(*size), short(sha256)),
        ),
        Event::HostKeyAccepted {
            node,
            host,
            fingerprint,
        } => (
            s(),
            node.clone(),
            format!("accepted host key of {host}: {fingerprint}"),
        ),
        Event::Resumed {
            operator,
            in_doubt,
            repaired_torn_tail,
        } => (
            s(),
            s(),
            format!(
                "resumed by {operator}; in doubt: {}{}",
                if in_doubt.is_empty() {
                    "none".to_string()
                } else {
                    in_doubt.join(", ")
                },
                if *repaired_torn_tail {
                    "; torn tail repaired"
                } else {
                    ""
                }
            ),
        ),
        Event::Decision {
            action,
            node,
            decision,
            how,
            detail,
        } => (
            s(),
            node.clone(),
            format!(
                "{action}: {decision} via {how}{}",
                detail
                    .as_ref()
                    .map(|d| format!(" ({})", one_line(d)))
                    .unwrap_or_default()
            ),
        ),
        Event::Interrupted { reason } => (s(), s(), one_line(reason)),
        Event::TornTailRepaired { line, bytes } => (
            s(),
            s(),
            format!("torn line {line} ({bytes} bytes) repaired by appending"),
        ),
        Event::IncidentClosed { outcome, detail } => (
            s(),
            s(),
            match detail {
                Some(d) => format!("{outcome}: {}", one_line(d)),
                None => outcome.clone(),
            },
        ),
    }
}

fn one_line(s: &str) -> String {
    let flat = s.replace('\n', " ⏎ ");
    if flat.chars().count() > 160 {
        let cut: String = flat.chars().take(157).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

// ---------------------------------------------------------------------------------------
// export markdown

/// The post-incident report an SRE pastes into a ticket.
pub fn export_markdown(records: &[Record], verify: &VerifyReport) -> String {
    let d = report_data(records, verify);
    let mut out = String::new();
    let s = &d.summary;

    if d.rehearsal {
        w!(out, "# Incident {} [REHEARSAL]\n", d.incident);
        w!(out, "> **Rehearsal (`--dry-run`)**: read-only steps ran; no mutating command was sent to any node.\n");
    } else {
        w!(out, "# Incident {}\n", d.incident);
    }

    w!(out, "## Summary\n");
    w!(out, "| | |");
    w!(out, "|---|---|");
    w!(out, "| Cluster | {} |", cell(&s.cluster));
    w!(
        out,
        "| Runbook | {} ({}) |",
        tcode(&s.runbook),
        cell(&s.runbook_source)
    );
    w!(out, "| Runbook SHA-256 | `{}` |", s.runbook_sha256);
    w!(
        out,
        "| Inventory | {} (SHA-256 `{}`) |",
        tcode(&s.inventory),
        s.inventory_sha256
    );
    w!(out, "| Operator | {} |", cell(&s.operator));
    if !d.resumes.is_empty() {
        let who: Vec<String> = d
            .resumes
            .iter()
            .map(|r| format!("{} ({})", r.operator, r.ts))
            .collect();
        w!(out, "| Resumed by | {} |", cell(&who.join(", ")));
    }
    w!(out, "| Tool version | {} |", cell(&s.tool_version));
    w!(out, "| Started | {} |", s.started);
    w!(
        out,
        "| Ended | {} |",
        if d.summary.outcome == "open" || d.summary.outcome == "interrupted" {
            format!("{} (last record; not closed)", s.ended)
        } else {
            s.ended.clone()
        }
    );
    w!(
        out,
        "| Duration | {} |",
        s.duration_ms
            .map(fmt_duration_ms)
            .unwrap_or_else(|| "-".into())
    );
    let outcome = match &s.outcome_detail {
        Some(detail) => format!("**{}**: {}", s.outcome, cell(detail)),
        None => format!("**{}**", s.outcome),
    };
    w!(out, "| Outcome | {outcome} |");
    w!(
        out,
        "| Mode | {} |",
        if d.rehearsal {
            "REHEARSAL (`--dry-run`)"
        } else {
            "live"
        }
    );
    if !s.vars.is_empty() {
        let vars: Vec<String> = s
            .vars
            .iter()
            .map(|(k, v)| tcode(&format!("{k}={v}")))
            .collect();
        w!(out, "| Variables | {} |", cell(&vars.join(", ")));
    }
    if !s.node_limit.is_empty() {
        w!(out, "| Node limit | {} |", cell(&s.node_limit.join(", ")));
    }
    w!(out, "| Journal records | {} |", d.integrity.records);
    w!(out, "");

    if !d.in_doubt.is_empty() {
        w!(out, "> **In doubt:** {} — an intent was journaled and no result; `nats-rescue resume {}` decides.\n",
            d.in_doubt.iter().map(|a| code(a)).collect::<Vec<_>>().join(", "), d.incident);
    }

    w!(out, "## Findings\n");
    if d.findings.is_empty() {
        w!(out, "No findings recorded.\n");
    }
    for (i, f) in d.findings.iter().enumerate() {
        w!(
            out,
            "{}. **{}** ({} confidence, step {}): {}",
            i + 1,
            f.cause,
            f.confidence,
            code(&f.step),
            f.summary.trim()
        );
        for e in &f.evidence {
            w!(out, "   - {}", e.replace('\n', " "));
        }
    }
    if !d.findings.is_empty() {
        w!(out, "");
    }

    w!(out, "## Decisions and confirmations\n");
    if d.confirmations.is_empty() {
        w!(out, "No confirmations recorded.\n");
    } else {
        w!(out, "| Time | Step | Question | Answer | How | By |");
        w!(out, "|---|---|---|---|---|---|");
        for c in &d.confirmations {
            let answer = match (c.approved, c.destructive) {
                (true, true) => "approved (destructive)",
                (true, false) => "approved",
                (false, true) => "**declined** (destructive)",
                (false, false) => "**declined**",
            };
            w!(
                out,
                "| {} | {} | {} | {answer} | {} | {} |",
                c.ts,
                tcode(&c.step),
                cell(&c.question),
                tcode(&c.how),
                cell(&c.operator)
            );
        }
        w!(out, "");
    }

    if !d.steps.is_empty() {
        w!(out, "## Steps\n");
        w!(out, "| Step | Kind | Started | Outcome | Detail |");
        w!(out, "|---|---|---|---|---|");
        for st in &d.steps {
            w!(
                out,
                "| {} | {} | {} | {} | {} |",
                tcode(&st.step),
                cell(&st.kind),
                st.started.clone().unwrap_or_default(),
                if st.outcome.is_empty() {
                    "(unfinished)".to_string()
                } else {
                    cell(&st.outcome)
                },
                cell(st.detail.as_deref().unwrap_or(""))
            );
        }
        w!(out, "");
    }

    w!(out, "## Commands per node\n");
    if d.nodes.is_empty() {
        w!(out, "No commands were sent.\n");
    }
    for n in &d.nodes {
        w!(out, "### {}\n", n.node);
        for a in &n.actions {
            let status = if a.rehearsed {
                "[REHEARSAL] not run".to_string()
            } else {
                match &a.result {
                    Some(r) => format!(
                        "{}, {}",
                        exit_text(r),
                        fmt_duration_ms(r.duration_ms as i64)
                    ),
                    None => "**IN DOUBT** (no result recorded)".to_string(),
                }
            };
            let mut flags = Vec::new();
            if a.mutating && !a.rehearsed {
                flags.push("mutating");
            }
            if a.idempotent {
                flags.push("idempotent");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            };
            w!(out, "#### Step {} — {status}{flags}\n", code(&a.step));
            w!(
                out,
                "{} {}{}:\n",
                if a.rehearsed {
                    "Rehearsed (not sent)"
                } else {
                    "Sent"
                },
                a.ts,
                if d.rehearsal && !a.rehearsed {
                    " [REHEARSAL, read-only]"
                } else {
                    ""
                }
            );
            fence(&mut out, "sh", &a.command);
            if let Some(c) = &a.check {
                w!(out, "\nCheck: {}", code(c));
            }
            if let Some(r) = &a.result {
                for (name, text, bytes, sha) in [
                    ("stdout", &r.stdout, r.stdout_bytes, &r.stdout_sha256),
                    ("stderr", &r.stderr, r.stderr_bytes, &r.stderr_sha256),
                ] {
                    if bytes == 0 && text.is_empty() {
                        continue;
                    }
                    let (ex, note) = excerpt(text, bytes);
                    let sha = if sha.is_empty() {
                        String::new()
                    } else {
                        format!(", sha256 `{}`", sha)
                    };
                    w!(
                        out,
                        "\n{name} ({bytes} bytes{sha}){}:\n",
                        note.map(|n| format!(", {n}")).unwrap_or_default()
                    );
                    fence(&mut out, "text", &ex);
                }
            }
            w!(out, "");
        }
    }

    w!(out, "## Backups\n");
    if d.backups.is_empty() {
        w!(out, "No backups recorded.\n");
    } else {
        w!(
            out,
            "| Node | Step | Path | Size | SHA-256 | Source | Time |"
        );
        w!(out, "|---|---|---|---|---|---|---|");
        for b in &d.backups {
            w!(
                out,
                "| {} | {} | {} | {} | `{}` | {} | {} |",
                cell(&b.node),
                tcode(&b.step),
                tcode(&b.path),
                fmt_bytes(b.size),
                b.sha256,
                tcode(&b.source),
                b.ts
            );
        }
        w!(out, "");
    }

    if !d.host_keys.is_empty() {
        w!(out, "## Host keys accepted on first use\n");
        w!(out, "| Node | Host | Fingerprint | Time |");
        w!(out, "|---|---|---|---|");
        for h in &d.host_keys {
            w!(
                out,
                "| {} | {} | `{}` | {} |",
                cell(&h.node),
                cell(&h.host),
                h.fingerprint,
                h.ts
            );
        }
        w!(out, "");
    }

    w!(out, "## Interruptions, resumes and in-doubt decisions\n");
    if d.interruptions.is_empty() && d.resumes.is_empty() && d.decisions.is_empty() {
        w!(out, "Ran without interruption.\n");
    } else {
        let mut items: Vec<(String, String)> = Vec::new();
        for i in &d.interruptions {
            items.push((i.ts.clone(), format!("interrupted: {}", i.text)));
        }
        for r in &d.resumes {
            let doubt = if r.in_doubt.is_empty() {
                "nothing in doubt".to_string()
            } else {
                format!(
                    "in doubt: {}",
                    r.in_doubt
                        .iter()
                        .map(|a| code(a))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            items.push((
                r.ts.clone(),
                format!(
                    "resumed by {}; {doubt}{}",
                    r.operator,
                    if r.repaired_torn_tail {
                        "; torn journal tail repaired"
                    } else {
                        ""
                    }
                ),
            ));
        }
        for dc in &d.decisions {
            items.push((
                dc.ts.clone(),
                format!(
                    "decision on {} ({}): **{}** via {} by {}{}",
                    code(&dc.action),
                    dc.node,
                    dc.decision,
                    code(&dc.how),
                    dc.operator,
                    dc.detail
                        .as_ref()
                        .map(|x| format!(" — {}", x.replace('\n', " ")))
                        .unwrap_or_default()
                ),
            ));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (ts, text) in items {
            w!(out, "- {ts} {text}");
        }
        w!(out, "");
    }

    w!(out, "## Journal integrity\n");
    w!(out, "- Records: {}", d.integrity.records);
    w!(out, "- Head hash: `{}`", d.integrity.head_hash);
    for r in &d.integrity.repaired {
        w!(
            out,
            "- Torn line {} ({} bytes, crash mid-write) repaired by appending",
            r.line,
            r.bytes
        );
    }
    if let Some(t) = &d.integrity.torn_tail {
        w!(out, "- **Torn tail at line {} ({} bytes) not yet repaired** (`nats-rescue resume` repairs it)", t.line, t.bytes);
    }
    w!(
        out,
        "\nVerify with `{}`: it must print the head hash above.",
        d.integrity.verify_command
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_offsets() {
        assert_eq!(fmt_duration_ms(850), "850 ms");
        assert_eq!(fmt_duration_ms(2200), "2.2 s");
        assert_eq!(fmt_duration_ms(192_000), "3m 12s");
        assert_eq!(fmt_duration_ms(3_723_000), "1h 02m 03s");
        assert_eq!(fmt_offset(1234), "+1.234s");
        assert_eq!(fmt_offset(62_005), "+1m02.005s");
    }

    #[test]
    fn fences_survive_backticks() {
        let mut out = String::new();
        fence(&mut out, "text", "a ``` b");
        assert!(out.starts_with("````text\n"));
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(cell("a|b\nc"), "a\\|b ⏎ c");
    }

    #[test]
    fn resolve_by_id_prefix_and_path() {
        let tmp = tempfile::tempdir().expect("tmp");
        for id in [
            "20260101T000000Z-a-0001",
            "20260101T000000Z-a-0002",
            "20260202T000000Z-b-0003",
        ] {
            std::fs::write(tmp.path().join(format!("{id}.jsonl")), "").expect("write");
        }
        let d = tmp.path();
        assert!(resolve(d, "20260101T000000Z-a-0001")
            .expect("id")
            .ends_with("20260101T000000Z-a-0001.jsonl"));
        assert!(resolve(d, "20260202")
            .expect("prefix")
            .ends_with("20260202T000000Z-b-0003.jsonl"));
        let amb = resolve(d, "20260101").expect_err("ambiguous");
        assert!(amb.to_string().contains("ambiguous"));
        assert_eq!(amb.exit_code(), 2);
        assert!(matches!(
            resolve(d, "2027"),
            Err(JournalError::UnknownIncident { .. })
        ));
        let p = d.join("20260202T000000Z-b-0003.jsonl");
        assert_eq!(resolve(d, &p.to_string_lossy()).expect("path"), p);
        assert!(resolve(d, "../x").is_err());
    }
}
