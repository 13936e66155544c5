//! Engine tests with the local transport: what runs, what is only printed, what is quoted.

use super::prompter::ScriptedPrompter;
use super::reporter::Reporter;
use super::*;
use crate::inventory::Inventory;
use crate::runbook::plan::{parse, Source};
use crate::transport::local::LocalTransport;
use crate::transport::recording::RecordingTransport;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn inventory(names: &[&str]) -> Inventory {
    let text = format!(
        "cluster: test\nnodes:\n{}",
        names
            .iter()
            .map(|n| format!(
                "  - {{name: {}, host: 127.0.0.1}}\n",
                serde_json::to_string(n).unwrap()
            ))
            .collect::<String>()
    );
    Inventory::parse(Path::new("inv.yaml"), &text).unwrap()
}

fn facts(down: &[&str]) -> Arc<Gather> {
    let down: Vec<String> = down.iter().map(|s| s.to_string()).collect();
    Arc::new(move |_inv: &Inventory| json!({"down": down, "has_leader": true, "nodes": {}}))
}

fn prompter(answers: &[bool]) -> ScriptedPrompter {
    ScriptedPrompter {
        answers: answers.iter().copied().collect(),
        in_doubt: None,
        asked: Vec::new(),
    }
}

const RUNBOOK: &str = r#"
id: t
title: t
cause: t
steps:
  - id: gather
    kind: diagnose
    probe: nats
  - id: look
    kind: diagnose
    run: "echo looking at {{ node.name }}"
  - id: ok
    kind: confirm
    prompt: "Touch markers on {{ facts.down | join(', ') }}?"
  - id: touch
    kind: fix
    on: "facts.down"
    run: "touch {{ vars.dir ~ '/' ~ node.name }}"
    idempotent: true
  - id: done
    kind: verify
    wait_until: "facts.has_leader"
    timeout: 5s
vars:
  dir: {}
"#;

fn run(
    rb: &str,
    inv: &Inventory,
    cfg: RunConfig,
    answers: &[bool],
    down: &[&str],
) -> (Outcome, Vec<(String, String)>, MemorySink) {
    let plan = parse(Path::new("t.yaml"), rb, Source::Builtin).unwrap_or_else(|e| panic!("{e}"));
    let t = RecordingTransport::new(LocalTransport);
    let transport: Arc<dyn crate::transport::Transport> = Arc::new(t.clone());
    let mut p = prompter(answers);
    let mut sink = MemorySink::default();
    let rep = Reporter::silent();
    let outcome = Engine::new(
        &plan,
        inv,
        transport,
        facts(down),
        &mut p,
        &mut sink,
        &rep,
        cfg,
    )
    .run();
    (outcome, t.commands(), sink)
}

fn cfg(dir: &Path, rehearsal: bool) -> RunConfig {
    let mut c = RunConfig::new("20260101T000000Z-t-0000");
    c.rehearsal = rehearsal;
    c.vars.insert("dir".into(), dir.display().to_string());
    c
}

#[test]
fn dry_run_sends_no_mutating_command() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(&["n1", "n2", "n3"]);
    let (outcome, cmds, sink) = run(RUNBOOK, &inv, cfg(dir.path(), true), &[], &["n2", "n3"]);
    assert_eq!(outcome, Outcome::Rehearsed);
    // Read-only steps ran for real on every node...
    assert_eq!(
        cmds.iter()
            .filter(|(_, c)| c.starts_with("echo looking"))
            .count(),
        3
    );
    // ...and nothing else was sent.
    assert!(cmds.iter().all(|(_, c)| !c.contains("touch")), "{cmds:?}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a marker file was created"
    );
    // The rehearsal shows each mutating command, fully rendered, per node.
    let rehearsed: Vec<_> = sink
        .0
        .iter()
        .filter_map(|e| match e {
            crate::journal::Event::ActionRehearsed { node, command, .. } => {
                Some((node.clone(), command.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(rehearsed.len(), 2);
    assert_eq!(rehearsed[0].1, format!("touch {}/n2", dir.path().display()));
}

#[test]
fn real_run_asks_then_acts_and_journals_intent_before_result() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(&["n1", "n2", "n3"]);
    let (outcome, _cmds, sink) = run(
        RUNBOOK,
        &inv,
        cfg(dir.path(), false),
        &[true],
        &["n2", "n3"],
    );
    assert_eq!(outcome, Outcome::Recovered);
    assert!(dir.path().join("n2").exists() && dir.path().join("n3").exists());
    assert!(!dir.path().join("n1").exists());
    let names: Vec<&str> = sink.0.iter().map(|e| e.name()).collect();
    let first_intent = names.iter().position(|n| *n == "action_intent").unwrap();
    let confirm = names.iter().position(|n| *n == "confirmation").unwrap();
    assert!(confirm < names.iter().rposition(|n| *n == "action_intent").unwrap());
    assert!(first_intent < names.iter().position(|n| *n == "action_result").unwrap());
}

#[test]
fn declining_stops_with_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(&["n1", "n2"]);
    let (outcome, cmds, _) = run(RUNBOOK, &inv, cfg(dir.path(), false), &[false], &["n2"]);
    assert!(matches!(outcome, Outcome::Stopped(_)), "{outcome:?}");
    assert_eq!(outcome.exit_code(), crate::exit_codes::STOPPED);
    assert!(cmds.iter().all(|(_, c)| !c.contains("touch")));
}

#[test]
fn no_answer_is_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(&["n1", "n2"]);
    let (outcome, _, _) = run(RUNBOOK, &inv, cfg(dir.path(), false), &[], &["n2"]);
    assert_eq!(outcome.exit_code(), crate::exit_codes::NEED_DECISION);
}

#[test]
fn node_names_and_captured_output_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let evil = format!("n1; touch {}/pwned1", dir.path().display());
    let inv = inventory(&[&evil]);
    let rb = r#"
id: q
title: q
cause: q
vars:
  dir: {}
steps:
  - id: emit
    kind: diagnose
    run: "printf '%s' '$(touch {{ vars.dir | raw }}/pwned2)'"
  - id: ok
    kind: confirm
    prompt: go
  - id: use
    kind: fix
    run: "echo {{ node.name }} {{ steps.emit.nodes[node.name].stdout }} > {{ vars.dir ~ '/out' }}"
    idempotent: true
"#;
    let (outcome, _, _) = run(rb, &inv, cfg(dir.path(), false), &[true], &[]);
    assert_eq!(outcome, Outcome::Completed);
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    assert_eq!(
        out.trim(),
        format!("{evil} $(touch {}/pwned2)", dir.path().display())
    );
    assert!(!dir.path().join("pwned1").exists());
    assert!(!dir.path().join("pwned2").exists());
}

#[test]
fn resume_skips_finished_and_settles_in_doubt_by_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("HOME", home.path());
    let inv = inventory(&["n1", "n2"]);
    let c = cfg(dir.path(), false);
    // First run: n1 finished; n2 was sent (receipt written by the node) but the tool died
    // before journaling the result.
    let wrapped = receipt::wrap(
        &c.incident,
        "touch@n2",
        &format!("touch {}/n2", dir.path().display()),
    );
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(&wrapped)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(dir.path().join("n2")).unwrap();
    let mut prior = Prior::default();
    prior.finished.insert("touch@n1".into());
    prior.confirmations.insert("ok".into(), true);
    prior.in_doubt.push(InDoubt {
        action: "touch@n2".into(),
        step: "touch".into(),
        node: "n2".into(),
        command: "touch".into(),
        mutating: true,
        idempotent: false,
        check: None,
        seq: 0,
    });
    let plan = parse(Path::new("t.yaml"), RUNBOOK, Source::Builtin).unwrap();
    let t = RecordingTransport::new(LocalTransport);
    let transport: Arc<dyn crate::transport::Transport> = Arc::new(t.clone());
    let mut p = prompter(&[]);
    let mut sink = MemorySink::default();
    let rep = Reporter::silent();
    let outcome = Engine::new(
        &plan,
        &inv,
        transport,
        facts(&["n1", "n2"]),
        &mut p,
        &mut sink,
        &rep,
        c,
    )
    .with_prior(prior)
    .run();
    assert_eq!(outcome, Outcome::Recovered, "{:?}", sink.0);
    // Neither node's action ran again: n1 was journaled finished, n2's receipt says exit 0.
    assert!(
        t.commands().iter().all(|(_, c)| !c.contains("touch ")),
        "{:?}",
        t.commands()
    );
    assert!(!dir.path().join("n1").exists() && !dir.path().join("n2").exists());
    assert!(sink.0.iter().any(
        |e| matches!(e, crate::journal::Event::Decision { decision, .. } if decision == "receipt")
    ));
    // The approval given before the crash was reused, not asked again.
    assert!(p.asked.is_empty());
}
