//! `journal export --format markdown`: the post-incident report for a ticket.

use super::format::*;
use crate::journal::record::Record;
use crate::journal::report::*;
use crate::journal::verify::VerifyReport;
use std::fmt::Write as _;

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => { let _ = writeln!($dst, $($arg)*); };
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
                        format!(", sha256 `{sha}`")
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

    if !d.captures.is_empty() {
        w!(out, "## Captures attached\n");
        w!(
            out,
            "| Captured | File | SHA-256 | Size | Attached by | Time |"
        );
        w!(out, "|---|---|---|---|---|---|");
        for c in &d.captures {
            w!(
                out,
                "| {} | {} | `{}` | {} | {} | {} |",
                c.captured_at,
                cell(&c.path),
                c.sha256,
                c.size,
                cell(&c.operator),
                c.ts
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
