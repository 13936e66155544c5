//! Engine tests with the local transport: what runs, what is only printed, what is quoted,
//! and that the journal, the terminal and the collectors hear one event stream.

use super::prompter::ScriptedPrompter;
use super::*;
use crate::inventory::Inventory;
use crate::journal::Event;
use crate::runbook::{parse, Source};
use crate::transport::local::LocalTransport;
use crate::transport::recording::RecordingTransport;
use crate::ui::{Settings, TerminalReporter};
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
    Arc::new(
        move |_: &Inventory, _: &crate::nats::Thresholds| ClusterFacts {
            down: down.clone(),
            has_leader: true,
            ..Default::default()
        },
    )
}

fn prompter(answers: &[bool]) -> ScriptedPrompter {
    ScriptedPrompter {
        answers: answers.iter().copied().collect(),
        ..Default::default()
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
) -> (Outcome, Vec<(String, String)>, Vec<Event>) {
    run_with(
        rb,
        inv,
        cfg,
        answers,
        down,
        LocalTransport::default(),
        Prior::default(),
    )
}

fn run_with(
    rb: &str,
    inv: &Inventory,
    cfg: RunConfig,
    answers: &[bool],
    down: &[&str],
    local: LocalTransport,
    prior: Prior,
) -> (Outcome, Vec<(String, String)>, Vec<Event>) {
    let plan = parse(Path::new("t.yaml"), rb, Source::Builtin).unwrap_or_else(|e| panic!("{e}"));
    let t = RecordingTransport::new(local);
    let transport: Arc<dyn crate::transport::Transport> = Arc::new(t.clone());
    let mut p = prompter(answers);
    let mut rec = Recorder::default();
    let outcome = Engine::new(
        &plan,
        inv,
        transport,
        facts(down),
        &mut p,
        vec![&mut rec],
        cfg,
    )
    .with_prior(prior)
    .run();
    let events = rec.journal().into_iter().cloned().collect();
    (outcome, t.commands(), events)
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
        .iter()
        .filter_map(|e| match e {
            Event::ActionRehearsed { node, command, .. } => Some((node.clone(), command.clone())),
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
    // Every mutating intent comes after the confirmation, and before its own result (the
    // read-only `look` step's intents come earlier and prove nothing here).
    let confirm = sink
        .iter()
        .position(|e| matches!(e, Event::Confirmation { approved: true, .. }))
        .unwrap();
    let mutating: Vec<(usize, String)> = sink
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::ActionIntent {
                action,
                mutating: true,
                ..
            } => Some((i, action.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        mutating.iter().map(|m| m.1.as_str()).collect::<Vec<_>>(),
        ["touch@n2", "touch@n3"]
    );
    for (i, action) in &mutating {
        assert!(*i > confirm, "{action} intent before the confirmation");
        let result = sink
            .iter()
            .position(|e| matches!(e, Event::ActionResult { action: a, .. } if a == action))
            .unwrap();
        assert!(*i < result, "{action}: result before intent");
    }
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
        .env("HOME", home.path())
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
    let (outcome, cmds, events) = run_with(
        RUNBOOK,
        &inv,
        c,
        &[],
        &["n1", "n2"],
        LocalTransport::with_home(home.path()),
        prior,
    );
    assert_eq!(outcome, Outcome::Recovered, "{events:?}");
    // Neither node's action ran again: n1 was journaled finished, n2's receipt says exit 0.
    assert!(cmds.iter().all(|(_, c)| !c.contains("touch ")), "{cmds:?}");
    assert!(!dir.path().join("n1").exists() && !dir.path().join("n2").exists());
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Decision { decision, .. } if decision == "receipt")));
    // The approval given before the crash was reused, not asked again.
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Confirmation { how, .. } if how.starts_with("journal"))));
}

/// The journal file, the terminal and the `--json` collector are three readers of one
/// event sequence: what the journal holds is exactly what a recording listener heard, and
/// every line the operator saw comes from those events.
#[test]
fn journal_terminal_and_collector_hear_one_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = tempfile::tempdir().unwrap();
    let inv = inventory(&["n1", "n2", "n3"]);
    let c = cfg(dir.path(), false);
    let plan = parse(Path::new("t.yaml"), RUNBOOK, Source::Builtin).unwrap();
    let opened = Event::IncidentOpened {
        operator: "o@h".into(),
        tool_version: "t".into(),
        runbook: plan.id.clone(),
        runbook_sha256: plan.sha256.clone(),
        runbook_source: "builtin".into(),
        inventory: "inv.yaml".into(),
        inventory_sha256: inv.sha256.clone(),
        cluster: inv.cluster.clone(),
        rehearsal: false,
        vars: Default::default(),
        node_limit: vec![],
    };
    let mut writer =
        crate::journal::JournalWriter::create(jdir.path(), &c.incident, opened).unwrap();
    struct Journal<'a>(&'a mut crate::journal::JournalWriter);
    impl Listener for Journal<'_> {
        fn on_event(&mut self, ev: &EngineEvent) -> Result<(), String> {
            match ev {
                EngineEvent::Journal(e) => self
                    .0
                    .append(e.clone())
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                EngineEvent::Ui(_) => Ok(()),
            }
        }
    }
    let mut terminal = TerminalReporter::buffered(Settings::plain());
    let mut rec = Recorder::default();
    let mut p = prompter(&[true]);
    let transport: Arc<dyn crate::transport::Transport> = Arc::new(LocalTransport::default());
    let outcome = {
        let mut j = Journal(&mut writer);
        Engine::new(
            &plan,
            &inv,
            transport,
            facts(&["n2", "n3"]),
            &mut p,
            vec![&mut j, &mut terminal, &mut rec],
            c.clone(),
        )
        .run()
    };
    assert_eq!(outcome, Outcome::Recovered);
    let path = writer.path().to_path_buf();
    drop(writer);
    let on_disk: Vec<Event> = crate::journal::load(&path)
        .unwrap()
        .0
        .into_iter()
        .skip(1) // incident_opened, written by the command, not the engine
        .map(|r| r.event)
        .collect();
    let heard: Vec<Event> = rec.journal().into_iter().cloned().collect();
    assert!(heard.len() > 10, "{heard:?}");
    assert_eq!(on_disk, heard);
    // The terminal rendered the same run: each step header and each mutating command.
    let text = terminal.text();
    for step in [
        "[diagnose] gather",
        "[confirm] ok",
        "[fix] touch",
        "[verify] done",
    ] {
        assert!(text.contains(step), "{step} missing from:\n{text}");
    }
    for n in ["n2", "n3"] {
        let cmd = format!("{n}: run (mutating): touch {}/{n}", dir.path().display());
        assert!(text.contains(&cmd), "{cmd} missing from:\n{text}");
    }
    assert!(text.contains("approved ("), "{text}");
}
