//! Faults during recovery: a node's SSH traffic is dropped while its mutating command runs
//! (the command completes on the node). The action is IN DOUBT, never "failed"; the node's
//! receipt settles it — live when the node comes back within the step's window, by `resume`
//! otherwise — and every node's effect happens exactly once (counted on the nodes).

use crate::support::lab::{modern_server, nats_rescue_command, text, Lab};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Case {
    tmp: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::Builder::new()
            .prefix("nats-rescue-flap-")
            .tempdir()
            .expect("tmp");
        std::fs::create_dir_all(tmp.path().join("effects")).expect("effects dir");
        std::fs::create_dir_all(tmp.path().join("journals")).expect("journals dir");
        Case { tmp }
    }
    fn effects(&self) -> PathBuf {
        self.tmp.path().join("effects")
    }
    fn journals(&self) -> PathBuf {
        self.tmp.path().join("journals")
    }
    fn lines(&self, node: &str) -> Vec<String> {
        std::fs::read_to_string(self.effects().join(format!("effects-{node}")))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
    fn journal(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.journals())
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
    }
    fn records(&self) -> Vec<Value> {
        self.journal()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
    fn cmd(&self, lab: &Lab, args: &[&str]) -> std::process::Command {
        let inv = lab.inventory.to_string_lossy().into_owned();
        let mut all = vec!["-i", inv.as_str()];
        all.extend_from_slice(args);
        let mut c = nats_rescue_command(&[], &all);
        c.env("NATS_RESCUE_JOURNAL_DIR", self.journals())
            .env("NO_COLOR", "1")
            .current_dir(repo())
            .stdin(Stdio::null());
        c
    }
    fn spawn_run(&self, lab: &Lab) -> Child {
        let rb = repo().join("tests/fixtures/runbooks/flap-serial.yaml");
        let dir = format!("dir={}", self.effects().display());
        self.cmd(lab, &["run", &rb.to_string_lossy(), "--yes", "--var", &dir])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn run")
    }
    fn run(&self, lab: &Lab, args: &[&str]) -> Output {
        self.cmd(lab, args).output().expect("run nats-rescue")
    }
}

fn event(r: &Value) -> &str {
    r["event"].as_str().unwrap_or("")
}

/// Waits until n2's command runs on the node (its receipt wrapper wrote the pid file; the
/// lab's nodes share root's home), then drops n2's SSH.
fn flap_n2_while_its_command_runs(lab: &Lab, case: &Case, seconds: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    loop {
        let running = case
            .records()
            .first()
            .and_then(|r| r["incident"].as_str().map(String::from))
            .is_some_and(|inc| {
                home.join(".nats-rescue/receipts")
                    .join(inc)
                    .join("apply_at_n2.pid")
                    .exists()
            });
        if running {
            break;
        }
        assert!(Instant::now() < deadline, "n2's command was never sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.lab_ok("break", &["flap", "n2", &seconds.to_string(), "ssh"]);
}

fn assert_exactly_once(case: &Case) {
    for n in ["n1", "n2", "n3"] {
        assert_eq!(case.lines(n), vec![n.to_string()], "effects-{n}");
    }
}

fn assert_lost_then_receipt(recs: &[Value]) {
    let lost = recs
        .iter()
        .position(|r| event(r) == "action_lost" && r["action"] == "apply@n2")
        .expect("an action_lost record for apply@n2");
    assert!(
        !recs[..lost]
            .iter()
            .any(|r| event(r) == "action_result" && r["action"] == "apply@n2"),
        "n2 was journaled as finished before its answer was lost"
    );
    assert!(
        recs[lost..].iter().any(|r| event(r) == "decision"
            && r["action"] == "apply@n2"
            && r["decision"] == "receipt"),
        "the doubt was not settled by the node's receipt"
    );
}

#[test]
fn ssh_dropped_while_a_command_runs_is_in_doubt_and_settled_by_the_receipt() {
    let lab = Lab::up(&modern_server(), 3);

    // 1. The node comes back within the step's window: settled live, the run goes on.
    let case = Case::new();
    let child = case.spawn_run(&lab);
    flap_n2_while_its_command_runs(&lab, &case, 12);
    let o = child.wait_with_output().expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in doubt"), "{err}");
    assert!(!err.contains("n2: timed out"), "{err}");
    assert_exactly_once(&case);
    assert_lost_then_receipt(&case.records());
    let incident = case
        .journal()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .expect("incident");
    let v = case.run(&lab, &["journal", "verify", &incident]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    lab.lab_ok("heal", &[]);

    // 2. The node stays away past the window: the run stops with the action in doubt
    //    (not failed, not repeated); after the flap, resume settles it from the receipt.
    let case = Case::new();
    let child = case.spawn_run(&lab);
    flap_n2_while_its_command_runs(&lab, &case, 40);
    let o = child.wait_with_output().expect("run");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("IN DOUBT"), "{err}");
    assert!(
        case.lines("n3").is_empty(),
        "the run went on past a node in doubt"
    );
    // The command completed on n2 even though its answer was lost.
    assert_eq!(case.lines("n2"), vec!["n2".to_string()]);
    lab.lab_ok("heal", &[]); // ends the flap now
    let incident = case
        .journal()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .expect("incident");
    let r = case.run(&lab, &["resume", "--yes", &incident]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    assert_exactly_once(&case);
    assert_lost_then_receipt(&case.records());
    let v = case.run(&lab, &["journal", "verify", &incident]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let show = case.run(&lab, &["journal", "show", &incident]);
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("IN DOUBT"),
        "{}",
        text(&show)
    );
    lab.down();
}

/// A node dies mid-runbook: Option B's first server (the most up-to-date one) will not
/// start. The run stops there — no other server is started — says which node and what to do,
/// and once the node is fixed, `resume` completes the recovery.
#[test]
fn option_b_stops_safely_when_its_first_server_cannot_start_then_resume_completes() {
    let lab = Lab::up(&modern_server(), 3);
    let case = Case::new();
    lab.lab_ok("break", &["diverged"]);
    let dry = case.run(&lab, &["run", "reset-option-b", "--dry-run"]);
    let out = String::from_utf8_lossy(&dry.stderr).into_owned();
    let first = out
        .split("The most up-to-date node is ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .map(str::trim)
        .filter(|s| s.starts_with('n'))
        .unwrap_or_else(|| panic!("no most up-to-date node in the dry run:\n{out}"))
        .to_string();
    let st = lab.state();
    let node = st.nodes.iter().find(|n| n.name == first).expect("node");
    let good = std::fs::read_to_string(&node.config).expect("config");
    std::fs::write(
        &node.config,
        format!("{good}\nthis is not {{ a valid config\n"),
    )
    .expect("break");

    let r = case.run(
        &lab,
        &[
            "run",
            "reset-option-b",
            "--yes",
            "--confirm-destructive",
            "lab",
        ],
    );
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains(&format!("failed on {first}")), "{err}");
    assert!(err.contains(&format!("Fix the cause on {first}")), "{err}");
    assert!(err.contains("nats-rescue resume"), "{err}");
    // Safe point: the others were stopped and not started behind the failed one.
    for n in lab.node_names() {
        assert!(
            lab.monitor(&n, "/varz").is_none(),
            "{n} is running after the stop at {first}"
        );
    }
    std::fs::write(&node.config, good).expect("fix");
    // No id: resume takes the latest unfinished incident (never the rehearsal above).
    let r = case.run(&lab, &["resume", "--yes", "--confirm-destructive", "lab"]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    // The runbook's verify saw a leader; every server agrees on it once the last one,
    // started moments ago, has heard from it.
    let names = lab.node_names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = Instant::now();
    while lab.agreed_leader(&refs).is_none() {
        let views: Vec<(String, Option<String>)> = names
            .iter()
            .map(|n| (n.clone(), lab.leader_seen_by(n)))
            .collect();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no leader agreed by every server 30 s after resume: {views:?}\n{}",
            text(&r)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    lab.down();
}

/// A 2 s flap while `diagnose` connects: the node is probed once its SSH answers again (well
/// inside the connect timeout) — never a hang, never a crash.
#[test]
fn a_flap_while_diagnose_connects_is_probed_within_the_bound() {
    let lab = Lab::up(&modern_server(), 3);
    let case = Case::new();
    lab.lab_ok("break", &["flap", "n2", "2", "ssh"]);
    let t = Instant::now();
    let o = case.run(&lab, &["--json", "diagnose"]);
    let took = t.elapsed();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let n2 = v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == "n2"))
        .cloned()
        .unwrap_or_else(|| panic!("no n2 in {v}"));
    // The lab's connect timeout is 10 s: a 2 s flap is ridden out, not reported.
    assert_eq!(n2["ssh"], "ok", "{n2}\n{}", text(&o));
    assert!(took < Duration::from_secs(20), "diagnose took {took:?}");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    lab.down();
}
