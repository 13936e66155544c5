//! Crash tests: the real binary over real SSH (`support::sshd`), SIGKILLed at points chosen
//! by watching its journal, then resumed. What counts is what happened ON THE NODE: every
//! fix appends one line to `effects-<node>`, so a repeated action shows as a second line,
//! whatever the journal claims.
//!
//! Runbook: `tests/fixtures/runbooks/crash-multi.yaml`, variants by `--var mode=`:
//! `parallel` / `serial` (idempotent, sleep then effect) and `checked` (not idempotent, a
//! `check`, effect then sleep). `crash-capture.yaml` backs the test of a check that uses an earlier
//! step's capture (resume must run the check as it was rendered with the intent).

use crate::support::cli::{bin, repo};
use crate::support::sshd::{free_port, Sshd, LISTEN};
use nats_rescue::inventory::sha256_hex;
use nats_rescue::journal::{Event, JournalWriter};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// How long any wait on the binary or the journal may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn runbook() -> PathBuf {
    repo().join("tests/fixtures/runbooks/crash-multi.yaml")
}

/// One sshd standing in for three nodes, and a scratch dir per case.
struct Rig {
    /// Kept alive for the rig's life (killed by PID on drop).
    _sshd: Sshd,
    tmp: TempDir,
    inventory: PathBuf,
    /// Where the node keeps receipts (`$HOME/.nats-rescue/receipts` of the ssh user).
    receipts: PathBuf,
    cases: usize,
}

/// One run of the runbook: its journal dir, effects dir and incident.
struct Case {
    name: String,
    dir: PathBuf,
    journals: PathBuf,
    effects: PathBuf,
    mode: &'static str,
}

impl Rig {
    fn new() -> Rig {
        let sshd = Sshd::start();
        let tmp = tempfile::tempdir().expect("tempdir");
        // Nothing listens here: monitoring fails fast (connection refused), as on a dead node.
        let closed = free_port(LISTEN);
        let nodes: String = NODES
            .iter()
            .map(|n| format!("  - {{ name: {n}, host: {LISTEN:?} }}\n"))
            .collect();
        let yaml = format!(
            "cluster: crash\ndefaults:\n  ssh:\n    user: {user:?}\n    port: {port}\n    identity_file: {key:?}\n    known_hosts: {kh:?}\n    \
             connect_timeout: 3s\n    command_timeout: 20s\n  nats:\n    monitor: direct\n    monitor_port: {closed}\nnodes:\n{nodes}",
            user = sshd.user,
            port = sshd.port,
            key = sshd.client_key.display().to_string(),
            kh = sshd.known_hosts(&["ed25519"]).display().to_string(),
        );
        let inventory = tmp.path().join("inventory.yaml");
        std::fs::write(&inventory, yaml).expect("inventory");
        let receipts = home_of(&sshd.user).join(".nats-rescue/receipts");
        Rig {
            _sshd: sshd,
            tmp,
            inventory,
            receipts,
            cases: 0,
        }
    }

    fn case(&mut self, name: &str, mode: &'static str) -> Case {
        self.cases += 1;
        let dir = self.tmp.path().join(format!("{:02}-{name}", self.cases));
        let journals = dir.join("journals");
        let effects = dir.join("effects");
        std::fs::create_dir_all(&effects).expect("effects dir");
        Case {
            name: name.into(),
            dir,
            journals,
            effects,
            mode,
        }
    }

    fn cmd(&self, case: &Case, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(repo())
            .env_remove("NATS_RESCUE_INVENTORY")
            .env("NATS_RESCUE_JOURNAL_DIR", &case.journals)
            .env("NO_COLOR", "1")
            .arg("-i")
            .arg(&self.inventory)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Starts `run crash-multi --yes` in the background, output to files in the case dir.
    fn spawn_run(&self, case: &Case, nap: &str) -> Child {
        let mode = format!("mode={}", case.mode);
        let nap = format!("nap={nap}");
        self.spawn_runbook(case, &runbook(), &[&mode, &nap])
    }

    /// Starts `run <runbook> --yes --var dir=<effects> --var <extra>...` in the background.
    fn spawn_runbook(&self, case: &Case, rb: &std::path::Path, vars: &[&str]) -> Child {
        let dir_var = format!("dir={}", case.effects.display());
        let mut args = vec![
            "run",
            rb.to_str().expect("utf-8 path"),
            "--yes",
            "--var",
            &dir_var,
        ];
        for v in vars {
            args.extend(["--var", v]);
        }
        self.spawn(case, "run", &args)
    }

    fn spawn(&self, case: &Case, label: &str, args: &[&str]) -> Child {
        let out = File::create(case.dir.join(format!("{label}.stdout"))).expect("stdout file");
        let err = File::create(case.dir.join(format!("{label}.stderr"))).expect("stderr file");
        self.cmd(case, args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn nats-rescue")
    }

    /// Runs to the end; (exit code, stdout, stderr).
    fn run(&self, case: &Case, args: &[&str]) -> (i32, String, String) {
        let o = self.cmd(case, args).output().expect("run nats-rescue");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn receipt(&self, incident: &str, action: &str, ext: &str) -> PathBuf {
        self.receipts
            .join(incident)
            .join(format!("{}.{ext}", action.replace('@', "_at_")))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Receipts of this rig's incidents only (their ids are in the journal dirs).
        for case in std::fs::read_dir(self.tmp.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for j in std::fs::read_dir(case.path().join("journals"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Some(stem) = j.path().file_stem().and_then(|s| s.to_str()) {
                    if j.path().extension().is_some_and(|e| e == "jsonl") && !stem.is_empty() {
                        let _ = std::fs::remove_dir_all(self.receipts.join(stem));
                    }
                }
            }
        }
    }
}

fn home_of(user: &str) -> PathBuf {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[0] == user)
        .map(|f| PathBuf::from(f[5]))
        .unwrap_or_else(|| panic!("no passwd entry for {user}"))
}

impl Case {
    fn journal(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.journals)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
    }

    fn incident(&self) -> String {
        let j = self.journal().expect("a journal exists");
        j.file_stem()
            .and_then(|s| s.to_str())
            .expect("incident id")
            .to_string()
    }

    /// The journal's complete records (an unterminated or unparsable line is skipped).
    fn records(&self) -> Vec<Value> {
        let Some(path) = self.journal() else {
            return Vec::new();
        };
        let bytes = std::fs::read(path).unwrap_or_default();
        let complete = match bytes.iter().rposition(|b| *b == b'\n') {
            Some(i) => &bytes[..=i],
            None => return Vec::new(),
        };
        complete
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }

    fn effect_file(&self, node: &str) -> PathBuf {
        self.effects.join(format!("effects-{node}"))
    }

    fn effect_lines(&self, node: &str) -> Vec<String> {
        std::fs::read_to_string(self.effect_file(node))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn log(&self, label: &str) -> String {
        let r = |s: &str| {
            std::fs::read_to_string(self.dir.join(format!("{label}.{s}"))).unwrap_or_default()
        };
        format!(
            "--- {label} stdout\n{}\n--- {label} stderr\n{}",
            r("stdout"),
            r("stderr")
        )
    }
}

fn event(r: &Value) -> &str {
    r.get("event").and_then(Value::as_str).unwrap_or("")
}

fn field<'a>(r: &'a Value, k: &str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or("")
}

fn is_fix(r: &Value) -> bool {
    field(r, "step").starts_with("fix-")
}

fn fix_intents(recs: &[Value]) -> Vec<&Value> {
    recs.iter()
        .filter(|r| event(r) == "action_intent" && is_fix(r))
        .collect()
}

fn fix_results(recs: &[Value]) -> Vec<&Value> {
    recs.iter()
        .filter(|r| event(r) == "action_result" && is_fix(r))
        .collect()
}

/// Fix actions with an intent and no result: what resume will find in doubt.
fn unsettled(recs: &[Value]) -> Vec<String> {
    let done: BTreeSet<&str> = fix_results(recs)
        .iter()
        .map(|r| field(r, "action"))
        .collect();
    fix_intents(recs)
        .iter()
        .map(|r| field(r, "action"))
        .filter(|a| !done.contains(a))
        .map(String::from)
        .collect()
}

/// Where the process is SIGKILLed, recognised in its journal (and, mid-command, on the node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// Right after `incident_opened`.
    Opened,
    /// After the first fix `action_intent` (before the command's effect).
    FirstIntent,
    /// Every intent of the batch written and the node's receipt shows the command running;
    /// the remote command is left to finish on its own.
    MidCommand,
    /// As `MidCommand`, then the remote command is killed too, before it finishes.
    MidCommandRemoteKilled,
    /// After the first fix `action_result`.
    FirstResult,
    /// After every fix result, before `incident_closed`.
    AllResults,
    /// Once the journal holds at least this many records (a sweep over every boundary).
    AfterRecord(usize),
}

const ALL_POINTS: [KillPoint; 6] = [
    KillPoint::Opened,
    KillPoint::FirstIntent,
    KillPoint::MidCommand,
    KillPoint::MidCommandRemoteKilled,
    KillPoint::FirstResult,
    KillPoint::AllResults,
];

impl KillPoint {
    fn reached(self, rig: &Rig, case: &Case, recs: &[Value]) -> bool {
        match self {
            KillPoint::Opened => recs.iter().any(|r| event(r) == "incident_opened"),
            KillPoint::FirstIntent => !fix_intents(recs).is_empty(),
            KillPoint::MidCommand | KillPoint::MidCommandRemoteKilled => {
                // A parallel batch is all three nodes, a serial one the first node.
                let want = if case.mode == "serial" { 1 } else { 3 };
                let intents = fix_intents(recs);
                if intents.len() < want || !fix_results(recs).is_empty() {
                    return false;
                }
                let Some(incident) = recs.first().map(|r| field(r, "incident").to_string()) else {
                    return false;
                };
                intents.iter().all(|i| {
                    let running = rig.receipt(&incident, field(i, "action"), "pid").exists();
                    // `checked` makes its effect first: wait until it is on the node, so the
                    // kill lands in the sleep after it.
                    running
                        && (case.mode != "checked"
                            || !case.effect_lines(field(i, "node")).is_empty())
                })
            }
            KillPoint::FirstResult => !fix_results(recs).is_empty(),
            KillPoint::AllResults => fix_results(recs).len() == NODES.len(),
            KillPoint::AfterRecord(k) => recs.len() >= k,
        }
    }
}

/// Polls the journal until `point` is reached, then SIGKILLs the process. Returns the records
/// as they were after the kill.
fn kill_at(rig: &Rig, case: &Case, child: &mut Child, point: KillPoint) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let recs = case.records();
        if point.reached(rig, case, &recs) {
            child.kill().expect("SIGKILL nats-rescue");
            child.wait().expect("reap nats-rescue");
            return case.records();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{}: nats-rescue exited ({status}) before {point:?}\n{}",
                case.name,
                case.log("run")
            );
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{}: {point:?} not reached in {PATIENCE:?}\n{}",
            case.name,
            case.log("run")
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Pids of `root` and all its descendants, parents first.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// Kills, on the node, the commands of the given actions (the receipt's pid and everything
/// under it) before they can finish: a node-side crash or reboot.
fn kill_remote(rig: &Rig, incident: &str, actions: &[String]) {
    for a in actions {
        let pid_file = rig.receipt(incident, a, "pid");
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
            .trim()
            .parse()
            .expect("pid in the receipt");
        let tree = process_tree(pid);
        let ok = Command::new("kill")
            .arg("-KILL")
            .args(tree.iter().map(u32::to_string))
            .status()
            .expect("kill")
            .success();
        assert!(ok, "could not kill remote command {a} (pids {tree:?})");
        assert!(
            !rig.receipt(incident, a, "rc").exists(),
            "{a} finished before it could be killed"
        );
    }
}

/// Everything that must hold once the incident is resumed to its end.
fn assert_exactly_once(case: &Case) {
    for n in NODES {
        assert_eq!(
            case.effect_lines(n),
            vec![n.to_string()],
            "{}: effects-{n} must hold exactly one line (the action ran exactly once on the node)\njournal:\n{}",
            case.name,
            std::fs::read_to_string(case.journal().expect("journal")).unwrap_or_default()
        );
    }
}

fn decisions(recs: &[Value]) -> Vec<(String, String)> {
    recs.iter()
        .filter(|r| event(r) == "decision")
        .map(|r| {
            (
                field(r, "action").to_string(),
                field(r, "decision").to_string(),
            )
        })
        .collect()
}

/// One kill-and-resume case. Returns the records at the kill.
fn crash_and_resume(rig: &mut Rig, mode: &'static str, point: KillPoint, nap: &str) -> Vec<Value> {
    let case = rig.case(&format!("{mode}-{point:?}"), mode);
    let at_kill = if let KillPoint::AfterRecord(k) = point {
        // Exactly at the boundary: the binary aborts itself once record k is fsynced.
        let mode = format!("mode={}", case.mode);
        let nap = format!("nap={nap}");
        let dir_var = format!("dir={}", case.effects.display());
        let rb = runbook();
        let out = rig
            .cmd(
                &case,
                &[
                    "run",
                    rb.to_str().expect("utf-8 path"),
                    "--yes",
                    "--var",
                    &dir_var,
                    "--var",
                    &mode,
                    "--var",
                    &nap,
                ],
            )
            .env("NATS_RESCUE_TEST_CRASH_AFTER", k.to_string())
            .output()
            .expect("run nats-rescue");
        let recs = case.records();
        if !recs.iter().any(|r| event(r) == "incident_closed") {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(6),
                "{}: expected the crash hook to abort the run\n{}",
                case.name,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(recs.len(), k, "{}: the crash landed elsewhere", case.name);
        }
        recs
    } else {
        let mut child = rig.spawn_run(&case, nap);
        kill_at(rig, &case, &mut child, point)
    };
    let incident = case.incident();
    if matches!(point, KillPoint::AfterRecord(_))
        && at_kill.iter().any(|r| event(r) == "incident_closed")
    {
        // The sweep's last boundaries can be overtaken by the end of the run: then resume
        // has nothing to do, and nothing may happen twice either.
        let (code, out, err) = rig.run(&case, &["resume", "--yes", &incident]);
        assert_eq!(
            code, 0,
            "{}: resume of a closed incident\n{out}\n{err}",
            case.name
        );
        assert!(err.contains("nothing to resume"), "{}: {err}", case.name);
        assert_exactly_once(&case);
        let (code, out, err) = rig.run(&case, &["journal", "verify", &incident]);
        assert_eq!(code, 0, "{}: journal verify\n{out}\n{err}", case.name);
        return at_kill;
    }
    assert!(
        !at_kill.iter().any(|r| event(r) == "incident_closed"),
        "{}: the kill landed after incident_closed; the case proves nothing\n{}",
        case.name,
        case.log("run")
    );
    let in_doubt = unsettled(&at_kill);
    match point {
        KillPoint::MidCommand | KillPoint::MidCommandRemoteKilled => {
            assert!(!in_doubt.is_empty(), "{}: nothing in doubt", case.name);
        }
        KillPoint::AllResults => assert!(in_doubt.is_empty(), "{}: {in_doubt:?}", case.name),
        _ => {}
    }
    if point == KillPoint::MidCommandRemoteKilled {
        kill_remote(rig, &incident, &in_doubt);
        for a in &in_doubt {
            let node = a.split('@').nth(1).expect("node in action id");
            let expected = if mode == "checked" { 1 } else { 0 };
            assert_eq!(
                case.effect_lines(node).len(),
                expected,
                "{}: effect of {a} before resume",
                case.name
            );
        }
    }

    let (code, out, err) = rig.run(&case, &["resume", "--yes", &incident]);
    assert_eq!(
        code,
        0,
        "{}: resume\n--- stdout\n{out}\n--- stderr\n{err}\n{}",
        case.name,
        case.log("run")
    );
    assert_exactly_once(&case);

    let (code, out, err) = rig.run(&case, &["journal", "verify", &incident]);
    assert_eq!(code, 0, "{}: journal verify\n{out}\n{err}", case.name);

    let recs = case.records();
    assert_eq!(
        recs.iter().filter(|r| event(r) == "resumed").count(),
        1,
        "{}",
        case.name
    );
    assert_eq!(
        recs.last()
            .map(|r| (event(r).to_string(), field(r, "outcome").to_string())),
        Some(("incident_closed".into(), "recovered".into()))
    );
    let made = decisions(&recs);
    // Every action in doubt at the kill was settled by a decision, and the decision is the
    // one the rules call for.
    for a in &in_doubt {
        let d: Vec<&str> = made
            .iter()
            .filter(|(x, _)| x == a)
            .map(|(_, d)| d.as_str())
            .collect();
        assert!(
            !d.is_empty(),
            "{}: no decision for in-doubt {a}: {made:?}",
            case.name
        );
        let want = match (point, mode) {
            // The command kept running on the node after the client died: its receipt says
            // it finished, so it is not repeated.
            (KillPoint::MidCommand, _) => Some("receipt"),
            // Killed on the node: no exit status. Idempotent → re-run; checked → the check
            // sees the effect (made before the sleep) and it is not repeated.
            (KillPoint::MidCommandRemoteKilled, "checked") => Some("check-passed"),
            (KillPoint::MidCommandRemoteKilled, _) => Some("rerun-idempotent"),
            _ => None,
        };
        if let Some(want) = want {
            assert_eq!(d, vec![want], "{}: decision for {a}", case.name);
        }
    }
    eprintln!(
        "  {}: killed after record {} ({}); in doubt {:?}; resume decided {:?}",
        case.name,
        at_kill.len(),
        at_kill.last().map(event).unwrap_or(""),
        in_doubt,
        made
    );
    // Actions finished before the kill were never sent again.
    let resumed_at = recs
        .iter()
        .position(|r| event(r) == "resumed")
        .expect("resumed record");
    for r in fix_results(&at_kill) {
        let a = field(r, "action");
        assert!(
            !recs[resumed_at..]
                .iter()
                .any(|x| event(x) == "action_intent" && field(x, "action") == a),
            "{}: finished action {a} was sent again after resume",
            case.name
        );
    }
    at_kill
}

fn kill_matrix(mode: &'static str) {
    let started = Instant::now();
    let mut rig = Rig::new();
    for point in ALL_POINTS {
        let t = Instant::now();
        crash_and_resume(&mut rig, mode, point, "1");
        eprintln!("crash {mode} {point:?}: ok in {:?}", t.elapsed());
    }
    eprintln!("crash matrix {mode}: {:?}", started.elapsed());
}

/// A sweep: one clean run counts the records of the serial variant (intents and results
/// interleave node by node), then the process is killed once the journal holds k records,
/// for every k, and resumed.
#[test]
fn killed_at_every_record_boundary_serial_resumes_exactly_once() {
    let started = Instant::now();
    let mut rig = Rig::new();
    let clean = rig.case("serial-clean", "serial");
    let mut child = rig.spawn_run(&clean, "0");
    let status = child.wait().expect("clean run");
    assert_eq!(status.code(), Some(0), "clean run\n{}", clean.log("run"));
    assert_exactly_once(&clean);
    let total = clean.records().len();
    assert!(total > 10, "{total} records");
    let mut landed = BTreeSet::new();
    for k in 1..total {
        let at_kill = crash_and_resume(&mut rig, "serial", KillPoint::AfterRecord(k), "0");
        landed.insert(at_kill.len());
    }
    eprintln!("crash sweep serial: {total} records per clean run; kills landed after {landed:?} records; {:?}", started.elapsed());
    // Every boundary before the close was hit exactly.
    assert_eq!(
        landed,
        (1..total).collect::<BTreeSet<usize>>(),
        "kills landed after {landed:?} of {total} records"
    );
}

#[test]
fn killed_anywhere_parallel_idempotent_resumes_exactly_once() {
    kill_matrix("parallel");
}

#[test]
fn killed_anywhere_serial_idempotent_resumes_exactly_once() {
    kill_matrix("serial");
}

#[test]
fn killed_anywhere_checked_not_idempotent_resumes_exactly_once() {
    kill_matrix("checked");
}

#[test]
fn torn_last_line_is_reported_then_repaired_by_appending() {
    let mut rig = Rig::new();
    let case = rig.case("torn", "parallel");
    let mut child = rig.spawn_run(&case, "1");
    kill_at(&rig, &case, &mut child, KillPoint::FirstIntent);
    let incident = case.incident();
    let path = case.journal().expect("journal");
    let before = std::fs::read(&path).expect("journal bytes");
    assert_eq!(before.last(), Some(&b'\n'), "the kill left whole lines");
    let lines_before = before.iter().filter(|b| **b == b'\n').count();
    // Half a record, no newline: a crash in the middle of a write.
    let torn = format!(
        r#"{{"seq":{},"ts":"2026-11-27T23:00:00.000Z","incident":"{incident}","event":"action_res"#,
        lines_before + 1
    );
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open journal");
        f.write_all(torn.as_bytes()).expect("append torn bytes");
    }
    let torn_line = lines_before + 1;

    let (code, out, err) = rig.run(&case, &["journal", "verify", &incident]);
    assert_eq!(code, 5, "verify of a torn journal\n{out}\n{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains(&format!("line {torn_line}")),
        "verify names the torn line {torn_line}: {said}"
    );

    let (code, out, err) = rig.run(&case, &["resume", "--yes", &incident]);
    assert_eq!(code, 0, "resume\n{out}\n{err}");
    assert!(
        err.contains("torn") && err.contains(&format!("line {torn_line}")),
        "resume reports the repair: {err}"
    );
    assert_exactly_once(&case);

    let after = std::fs::read(&path).expect("journal bytes");
    assert!(
        after.starts_with(&before),
        "history before the torn bytes is untouched"
    );
    let mut torn_then_newline = torn.clone().into_bytes();
    torn_then_newline.push(b'\n');
    assert!(
        after[before.len()..].starts_with(&torn_then_newline),
        "the torn bytes are still there, ended by a newline"
    );
    let repair = case
        .records()
        .into_iter()
        .find(|r| event(r) == "torn_tail_repaired")
        .expect("a torn_tail_repaired record");
    assert_eq!(
        repair.get("line").and_then(Value::as_u64),
        Some(torn_line as u64)
    );
    assert_eq!(
        repair.get("bytes").and_then(Value::as_u64),
        Some(torn.len() as u64)
    );

    let (code, out, err) = rig.run(&case, &["journal", "verify", &incident]);
    assert_eq!(code, 0, "verify after the repair\n{out}\n{err}");
    assert!(out.contains("repaired"), "{out}");
}

#[test]
fn concurrent_resumes_one_proceeds_the_other_is_locked_out() {
    let mut rig = Rig::new();
    let case = rig.case("lock", "parallel");
    // Each fix command sleeps 3 s: the first resume holds the lock for that long.
    let mut child = rig.spawn_run(&case, "3");
    kill_at(&rig, &case, &mut child, KillPoint::Opened);
    let incident = case.incident();

    let mut first = rig.spawn(&case, "resume-1", &["resume", "--yes", &incident]);
    // The first resume holds the lock once its `resumed` record is written.
    let start = Instant::now();
    while !case.records().iter().any(|r| event(r) == "resumed") {
        if let Ok(Some(s)) = first.try_wait() {
            panic!(
                "first resume ended ({s}) before it was seen holding the lock\n{}",
                case.log("resume-1")
            );
        }
        assert!(
            start.elapsed() < PATIENCE,
            "first resume never wrote `resumed`\n{}",
            case.log("resume-1")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, out, err) = rig.run(&case, &["resume", "--yes", &incident]);
    assert!(
        first.try_wait().expect("try_wait").is_none(),
        "the first resume must still be running for this to test anything"
    );
    assert_eq!(code, 6, "second resume\n{out}\n{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "names the holder's pid {}: {err}",
        first.id()
    );
    let operator = case.records()[0]
        .get("operator")
        .and_then(Value::as_str)
        .expect("operator")
        .to_string();
    assert!(
        err.contains(&format!("operator {operator}")),
        "names the holder's operator {operator}: {err}"
    );

    let status = first.wait().expect("first resume");
    assert_eq!(
        status.code(),
        Some(0),
        "first resume\n{}",
        case.log("resume-1")
    );
    assert_exactly_once(&case);
    let (code, out, err) = rig.run(&case, &["journal", "verify", &incident]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Only the first resume touched the journal.
    assert_eq!(
        case.records()
            .iter()
            .filter(|r| event(r) == "resumed")
            .count(),
        1
    );
}

/// An in-doubt action that is neither idempotent nor checkable, under `--yes`: exit 4 and
/// nothing is sent. The runbook language cannot produce one (the validator refuses a fix
/// step without `idempotent: true` or `check`, and backups are journaled as idempotent), so
/// the intent is written here with the crate's own journal writer, as a tool with a laxer
/// validator would have written it.
#[test]
fn in_doubt_without_check_or_idempotent_needs_a_human_exit_4() {
    let mut rig = Rig::new();
    let case = rig.case("neither", "parallel");
    let rb = runbook();
    let text = std::fs::read(&rb).expect("runbook");
    let inv = std::fs::read(&rig.inventory).expect("inventory");
    let incident = "20261127T230000Z-crash-multi-0b4d";
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("dir".to_string(), case.effects.display().to_string());
    vars.insert("mode".to_string(), "parallel".to_string());
    let opened = Event::IncidentOpened {
        operator: "tester@crash".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        runbook: "crash-multi".into(),
        runbook_sha256: sha256_hex(&text),
        runbook_source: rb.display().to_string(),
        inventory: rig.inventory.display().to_string(),
        inventory_sha256: sha256_hex(&inv),
        cluster: "crash".into(),
        rehearsal: false,
        vars,
        node_limit: vec![],
    };
    let mut w = JournalWriter::create(&case.journals, incident, opened).expect("journal");
    w.append(Event::Confirmation {
        step: "approve".into(),
        question: "Append?".into(),
        destructive: false,
        approved: true,
        how: "--yes".into(),
    })
    .expect("append");
    let command = format!("sleep 1; echo n1 >> {}", case.effect_file("n1").display());
    w.append(Event::ActionIntent {
        action: "fix-parallel@n1".into(),
        step: "fix-parallel".into(),
        node: "n1".into(),
        command,
        mutating: true,
        idempotent: false,
        check: None,
    })
    .expect("append");
    drop(w);

    let (code, out, err) = rig.run(&case, &["resume", "--yes", incident]);
    assert_eq!(code, 4, "resume\n{out}\n{err}");
    assert!(
        err.contains("fix-parallel@n1") && err.contains("in doubt"),
        "{err}"
    );
    for n in NODES {
        assert!(
            case.effect_lines(n).is_empty(),
            "nothing may run before a human decides ({n})"
        );
    }
    let recs = case.records();
    assert!(
        !recs.iter().any(|r| event(r) == "decision"),
        "no decision was made for the operator"
    );
    assert_eq!(
        recs.iter().filter(|r| event(r) == "action_intent").count(),
        1,
        "nothing new was sent"
    );
    let (code, out, err) = rig.run(&case, &["journal", "verify", incident]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// An in-doubt action's `check` uses an earlier step's capture: resume must run the check as
/// it was rendered with the intent (re-rendering before the earlier steps ran again would make
/// `grep -qF {{ steps.read... }}` into `grep -qF ''`, which matches any line).
#[test]
fn in_doubt_check_that_uses_a_capture_decides_on_the_captured_value() {
    let mut rig = Rig::new();
    let case = rig.case("capture", "capture");
    for n in NODES {
        std::fs::write(
            case.effects.join(format!("want-{n}")),
            format!("setting-{n}\n"),
        )
        .expect("want file");
        // The file the fix appends to already has content (a config file has).
        std::fs::write(case.effect_file(n), "# managed file\n").expect("effects file");
    }
    let rb = repo().join("tests/fixtures/runbooks/crash-capture.yaml");
    let mut child = rig.spawn_runbook(&case, &rb, &["nap=1"]);
    let at_kill = kill_at(&rig, &case, &mut child, KillPoint::MidCommandRemoteKilled);
    let incident = case.incident();
    let in_doubt = unsettled(&at_kill);
    assert_eq!(in_doubt.len(), 3, "{in_doubt:?}");
    kill_remote(&rig, &incident, &in_doubt);
    let (code, out, err) = rig.run(&case, &["resume", "--yes", &incident]);
    assert_eq!(code, 0, "resume\n{out}\n{err}");
    let recs = case.records();
    let made: Vec<(&str, &str, &str)> = recs
        .iter()
        .filter(|r| event(r) == "decision")
        .map(|r| (field(r, "action"), field(r, "decision"), field(r, "detail")))
        .collect();
    let sent: Vec<&str> = fix_intents(&at_kill)
        .iter()
        .map(|r| field(r, "check"))
        .collect();
    eprintln!("checks journaled with the intents: {sent:?}\nresume decided: {made:?}");
    for n in NODES {
        assert_eq!(
            case.effect_lines(n),
            vec!["# managed file".to_string(), format!("setting-{n}")],
            "the setting must be applied exactly once on {n}; resume decided {made:?}"
        );
    }
}
