//! `runbooks list | validate | show`.

use crate::cli::RunbooksCommand;
use crate::error::{Error, Result};
use crate::input_error::InputProblems;
use crate::runbook::{source, Library, LoadError, Plan, StepKind};
use std::io::Write;

pub fn dispatch(cmd: &RunbooksCommand, lib: &Library, json: bool) -> Result<i32> {
    match cmd {
        RunbooksCommand::List => list(lib, json),
        RunbooksCommand::Validate { files } => validate(lib, files, json),
        RunbooksCommand::Show { runbook } => show(lib, runbook, json),
    }
}

pub fn load(lib: &Library, name: &str) -> Result<Plan> {
    lib.load(name).map_err(|e| match e {
        LoadError::Unknown { .. } => Error::Usage(e.to_string()),
        LoadError::Invalid(p) => Error::Input(p),
    })
}

fn list(lib: &Library, json: bool) -> Result<i32> {
    let all = lib.all();
    if json {
        let v: Vec<_> = all
            .iter()
            .map(|r| match r {
                Ok(p) => serde_json::json!({"id": p.id, "title": p.title, "cause": p.cause, "source": p.source.describe(), "valid": true}),
                Err(e) => serde_json::json!({"valid": false, "problems": e.0}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    for r in &all {
        match r {
            Ok(p) => {
                let _ = writeln!(out, "{:<22} {}", p.id, p.title);
                let _ = writeln!(out, "{:<22} {}", "", p.cause);
            }
            Err(e) => {
                let _ = writeln!(out, "(invalid) {e}");
            }
        }
    }
    Ok(0)
}

fn validate(lib: &Library, files: &[std::path::PathBuf], json: bool) -> Result<i32> {
    let results: Vec<(String, std::result::Result<Plan, InputProblems>)> = if files.is_empty() {
        lib.all()
            .into_iter()
            .map(|r| {
                let name = match &r {
                    Ok(p) => p.id.clone(),
                    Err(e) => {
                        e.0.first()
                            .map(|p| p.file.display().to_string())
                            .unwrap_or_default()
                    }
                };
                (name, r)
            })
            .collect()
    } else {
        files
            .iter()
            .map(|f| (f.display().to_string(), source::load_file(f)))
            .collect()
    };
    let mut problems = 0;
    let mut report = Vec::new();
    for (name, r) in &results {
        match r {
            Ok(p) => {
                if !json {
                    eprintln!("ok    {name} ({} steps)", p.steps.len());
                }
                report.push(serde_json::json!({"runbook": name, "ok": true}));
            }
            Err(e) => {
                problems += e.0.len();
                if !json {
                    println!("{e}");
                }
                report.push(serde_json::json!({"runbook": name, "ok": false, "problems": e.0}));
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if problems > 0 {
        if !json {
            eprintln!("{problems} problem(s) found");
        }
        return Ok(crate::exit_codes::USAGE);
    }
    Ok(0)
}

fn show(lib: &Library, name: &str, json: bool) -> Result<i32> {
    let p = load(lib, name)?;
    if json {
        let steps: Vec<_> = p
            .steps
            .iter()
            .map(|s| serde_json::json!({"id": s.id(), "kind": s.kind().as_str(), "title": s.raw.title, "when": s.raw.when,
                "on": s.raw.on, "run": s.raw.run, "destructive": s.raw.destructive, "idempotent": s.raw.idempotent,
                "check": s.raw.check, "wait_until": s.raw.wait_until}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"id": p.id, "title": p.title, "cause": p.cause, "sha256": p.sha256, "steps": steps})).unwrap_or_default());
        return Ok(0);
    }
    let mut o = String::new();
    o.push_str(&format!("{} — {}\n{}\n", p.id, p.title, p.cause));
    if let Some(d) = &p.description {
        o.push('\n');
        for l in d.lines() {
            o.push_str(&format!("  {l}\n"));
        }
    }
    if !p.vars.is_empty() {
        o.push_str("\nvariables (--var KEY=VALUE):\n");
        for (k, v) in &p.vars {
            o.push_str(&format!(
                "  {k} = {} {}\n",
                v.default.as_deref().unwrap_or("(required)"),
                v.description
                    .as_deref()
                    .map(|d| format!("— {d}"))
                    .unwrap_or_default()
            ));
        }
    }
    o.push('\n');
    for (i, s) in p.steps.iter().enumerate() {
        let r = &s.raw;
        let tag = match (s.kind(), r.destructive) {
            (StepKind::Fix, true) => "fix, DESTRUCTIVE",
            (k, _) => k.as_str(),
        };
        o.push_str(&format!(
            "{:>2}. [{tag}] {}{}\n",
            i + 1,
            r.id,
            r.title
                .as_deref()
                .map(|t| format!(" — {t}"))
                .unwrap_or_default()
        ));
        if let Some(w) = &r.when {
            o.push_str(&format!("      when: {w}\n"));
        }
        if let Some(x) = &r.probe {
            o.push_str(&format!(
                "      gathers facts: {x:?} (monitoring endpoints + node checks, read-only)\n"
            ));
        }
        if let Some(f) = &r.finding {
            o.push_str(&format!("      finding when: {}\n", f.when));
        }
        if let Some(x) = &r.prompt {
            o.push_str(&format!(
                "      asks: {x}{}\n",
                if r.destructive {
                    " (type the cluster name)"
                } else {
                    ""
                }
            ));
        }
        if let Some(x) = &r.on {
            o.push_str(&format!("      on: {x}\n"));
        }
        if let Some(x) = &r.run {
            let kind = if s.is_mutating() {
                "runs"
            } else {
                "runs (read-only)"
            };
            o.push_str(&format!(
                "      {kind}: {}\n",
                x.trim().replace('\n', "\n            ")
            ));
        }
        if let Some(b) = &r.backup {
            o.push_str(&format!(
                "      backs up: {} → {}\n",
                b.path,
                b.dest.as_deref().unwrap_or("/var/backups/nats-rescue")
            ));
        }
        if let Some(x) = &r.precondition {
            o.push_str(&format!("      re-checks before running: {x}\n"));
        }
        if let Some(x) = &r.requires_backup {
            o.push_str(&format!("      requires backup: {x}\n"));
        }
        if s.order != crate::runbook::Order::Parallel {
            o.push_str(&format!("      order: {:?}\n", s.order));
        }
        if let Some(g) = &r.gate {
            o.push_str(&format!(
                "      health gate after each node: {}\n",
                g.wait_until
            ));
        }
        if let Some(x) = &r.check {
            o.push_str(&format!("      resume check: {x}\n"));
        }
        if r.idempotent {
            o.push_str("      idempotent: safe to repeat after a crash\n");
        }
        if let Some(x) = &r.wait_until {
            o.push_str(&format!(
                "      waits until: {x} (timeout {})\n",
                crate::duration::format(r.timeout.unwrap_or(std::time::Duration::from_secs(60)))
            ));
        }
    }
    print!("{o}");
    Ok(0)
}
