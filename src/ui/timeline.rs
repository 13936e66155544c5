//! `journal list` and the `journal show` timeline.

use super::format::*;
use crate::journal::event::Event;
use crate::journal::record::Record;
use crate::journal::replay::replay;
use crate::journal::report::*;
use std::fmt::Write as _;

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => { let _ = writeln!($dst, $($arg)*); };
}

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
            ..
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
        Event::ActionLost {
            step, node, reason, ..
        } => (
            step.clone(),
            node.clone(),
            format!(
                "IN DOUBT: connection lost after sending ({})",
                one_line(reason)
            ),
        ),
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
        Event::CaptureAttached {
            path,
            sha256,
            captured_at,
            operator,
            ..
        } => (
            s(),
            s(),
            format!(
                "capture attached by {operator}: {path} sha256 {sha256} (captured {captured_at})"
            ),
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
