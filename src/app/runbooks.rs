//! `runbooks list | validate | show`.

use crate::cli::RunbooksCommand;
use crate::error::{Error, Result};
use crate::input_error::InputProblems;
use crate::runbook::{source, Action, Library, LoadError, Plan, Request, Step, StepKind};
use crate::ui;

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
        ui::out_json(&serde_json::Value::Array(v));
        return Ok(0);
    }
    for r in &all {
        match r {
            Ok(p) => {
                ui::outln(&format!("{:<22} {}", p.id, p.title));
                ui::outln(&format!("{:<22} {}", "", p.cause));
            }
            Err(e) => ui::outln(&format!("(invalid) {e}")),
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
                    ui::outln(&format!("ok    {name} ({} steps)", p.steps.len()));
                }
                report.push(serde_json::json!({"runbook": name, "ok": true}));
            }
            Err(e) => {
                problems += e.0.len();
                if !json {
                    ui::outln(&e.to_string());
                }
                report.push(serde_json::json!({"runbook": name, "ok": false, "problems": e.0}));
            }
        }
    }
    if json {
        ui::out_json(&serde_json::Value::Array(report));
    }
    if problems > 0 {
        if !json {
            ui::outln(&format!("{problems} problem(s) found"));
        }
        return Ok(crate::exit_codes::USAGE);
    }
    Ok(0)
}

fn show(lib: &Library, name: &str, json: bool) -> Result<i32> {
    let p = load(lib, name)?;
    if json {
        let steps: Vec<_> = p.steps.iter().map(step_json).collect();
        ui::out_json(
            &serde_json::json!({"id": p.id, "title": p.title, "cause": p.cause, "sha256": p.sha256, "steps": steps}),
        );
        return Ok(0);
    }
    ui::out(&render(&p));
    Ok(0)
}

fn src(t: Option<&crate::runbook::Template>) -> Option<&str> {
    t.map(crate::runbook::Template::source)
}

fn step_json(s: &Step) -> serde_json::Value {
    let (run, check, idempotent, wait_until) = match &s.action {
        Action::Nodes(a) => (
            Some(match &a.request {
                Request::Shell(t) | Request::Http(t) => t.source(),
            }),
            src(a.check.as_ref()),
            a.idempotent,
            None,
        ),
        Action::Wait(w) => (None, None, false, Some(w.until.source())),
        _ => (None, None, false, None),
    };
    serde_json::json!({"id": s.id(), "kind": s.kind().as_str(), "title": src(s.title.as_ref()),
        "when": s.when.as_ref().map(crate::runbook::Expr::source), "group": s.group,
        "on": s.on().map(crate::runbook::Expr::source), "run": run, "destructive": s.is_destructive(),
        "idempotent": idempotent, "check": check, "wait_until": wait_until})
}

/// The steps as the operator will meet them.
fn render(p: &Plan) -> String {
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
    let mut group = None;
    for (i, s) in p.steps.iter().enumerate() {
        if s.group != group {
            group = s.group;
            if let Some(g) = s.group.and_then(|g| p.groups.get(g)) {
                o.push_str(&format!(
                    "    group {}{}{}\n",
                    g.id,
                    src(g.title.as_ref())
                        .map(|t| format!(" — {t}"))
                        .unwrap_or_default(),
                    g.when
                        .as_ref()
                        .map(|w| format!(" (when: {})", w.source()))
                        .unwrap_or_default()
                ));
            }
        }
        let tag = match (s.kind(), s.is_destructive()) {
            (StepKind::Fix, true) => "fix, DESTRUCTIVE",
            (k, _) => k.as_str(),
        };
        o.push_str(&format!(
            "{:>2}. [{tag}] {}{}\n",
            i + 1,
            s.id,
            src(s.title.as_ref())
                .map(|t| format!(" — {t}"))
                .unwrap_or_default()
        ));
        if let Some(w) = &s.when {
            o.push_str(&format!("      when: {}\n", w.source()));
        }
        match &s.action {
            Action::Refuse(t) => o.push_str(&format!(
                "      refuses (stops, nothing changed): {}\n",
                t.source().lines().next().unwrap_or_default()
            )),
            Action::Probe => o.push_str(
                "      gathers facts: Nats (monitoring endpoints + node checks, read-only)\n",
            ),
            Action::Finding(f) => {
                if let Some(sig) = &f.signal {
                    o.push_str(&format!("      finding: the `{sig}` signal\n"));
                }
                if let Some(w) = &f.when {
                    o.push_str(&format!("      finding when: {}\n", w.source()));
                }
            }
            Action::Confirm(c) => o.push_str(&format!(
                "      asks: {}{}\n",
                c.prompt.source(),
                if c.destructive {
                    " (type the cluster name)"
                } else {
                    ""
                }
            )),
            Action::Wait(w) => o.push_str(&format!(
                "      waits until: {} (timeout {})\n",
                w.until.source(),
                crate::duration::format(w.timeout)
            )),
            Action::Backup(b) => {
                if let Some(on) = &b.on {
                    o.push_str(&format!("      on: {}\n", on.source()));
                }
                o.push_str(&format!(
                    "      backs up: {} → {}\n",
                    b.path.source(),
                    src(b.dest.as_ref()).unwrap_or(crate::engine::DEFAULT_BACKUP_DEST)
                ));
            }
            Action::RewriteRoutes(r) => {
                if let Some(on) = &r.on {
                    o.push_str(&format!("      on: {}\n", on.source()));
                }
                o.push_str(&format!(
                    "      rewrites cluster.routes of {} to the inventory's peers (tested with nats-server -t, replaced atomically)\n",
                    src(r.config_file.as_ref()).unwrap_or("{{ node.config_file }}")
                ));
            }
            Action::Nodes(a) => render_nodes(&mut o, s, a),
            Action::Nats(n) => {
                o.push_str(&format!(
                    "      {}: NATS request {}{}\n",
                    if n.read_only {
                        "asks (read-only)"
                    } else {
                        "sends"
                    },
                    n.subject.source(),
                    n.body
                        .as_ref()
                        .map(|b| format!(" {}", b.source()))
                        .unwrap_or_default()
                ));
                if let Some(c) = &n.check {
                    o.push_str(&format!("      resume check: {}\n", c.source()));
                }
            }
            Action::Note => {}
        }
    }
    o
}

fn render_nodes(o: &mut String, s: &Step, a: &crate::runbook::NodeAction) {
    if let Some(x) = &a.on {
        o.push_str(&format!("      on: {}\n", x.source()));
    }
    let (Request::Shell(t) | Request::Http(t)) = &a.request;
    let kind = if s.is_mutating() {
        "runs"
    } else {
        "runs (read-only)"
    };
    o.push_str(&format!(
        "      {kind}: {}\n",
        t.source().trim().replace('\n', "\n            ")
    ));
    if let Some(x) = &a.precondition {
        o.push_str(&format!("      re-checks before running: {}\n", x.source()));
    }
    if let Some(x) = &a.requires_backup {
        o.push_str(&format!("      requires backup: {x}\n"));
    }
    if a.order.is_serial() {
        o.push_str(&format!("      order: {}\n", a.order.describe()));
    }
    if let Some(g) = &a.gate {
        o.push_str(&format!(
            "      health gate after each node: {}\n",
            g.until.source()
        ));
    }
    if let Some(x) = &a.check {
        o.push_str(&format!("      resume check: {}\n", x.source()));
    }
    if a.idempotent {
        o.push_str("      idempotent: safe to repeat after a crash\n");
    }
}
