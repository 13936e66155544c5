//! The operator's terminal, end to end: the real binary in a real pty (rexpect), running
//! runbooks (`tests/fixtures/runbooks/pty-*.yaml`) over SSH against a real sshd. No NATS:
//! the monitoring port is closed, and every effect is a line a remote command appends to a
//! file in the test's temp dir, so effects are counted on the node side.
//!
//! What a user checks is what is asserted: the prompt and its per-node preview, the exit
//! code, the files the commands wrote, and the journal through `journal show/verify/export`.

use crate::support::cli::{bin, repo, Cli, Ran};
use crate::support::sshd::{Sshd, LISTEN};
use rexpect::process::wait::WaitStatus;
use rexpect::session::{spawn_command, PtySession};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Generous: a loaded 2-core machine builds while these run. Nothing sleeps this long; every
/// wait ends as soon as the text (or file) that signals the moment appears.
const TIMEOUT_MS: u64 = 30_000;
const CLUSTER: &str = "pty-test";
/// dialoguer hides the cursor right before it waits for a key: a Ctrl-C sent after this
/// reaches the prompt, not the moment before it.
pub(crate) const KEY_WAIT: &str = "\x1b[?25l";

/// One sshd, an inventory with two nodes (n1, n2) on it, a journal dir and a work dir (the
/// runbooks' `dir` variable) in one temp dir.
struct Rig {
    sshd: Sshd,
    tmp: TempDir,
}

impl Rig {
    fn new() -> Rig {
        let sshd = Sshd::start();
        let tmp = tempfile::tempdir().expect("tempdir");
        // Nothing listens here, so every node's monitoring is "refused": no server is up.
        // Port 1 rather than a just-freed ephemeral port, which a parallel test may take.
        let closed = 1;
        let inventory = format!(
            "cluster: {CLUSTER}\n\
             defaults:\n  ssh: {{ user: {user:?}, port: {port}, identity_file: {key:?}, known_hosts: {kh:?}, \
             connect_timeout: 5s, command_timeout: 30s }}\n  nats: {{ monitor: direct, monitor_port: {closed} }}\n\
             nodes:\n  - name: n1\n    host: {LISTEN}\n  - name: n2\n    host: {LISTEN}\n",
            user = sshd.user,
            port = sshd.port,
            key = sshd.client_key.display().to_string(),
            kh = sshd.known_hosts(&["ed25519"]).display().to_string(),
        );
        std::fs::write(tmp.path().join("inventory.yaml"), inventory).expect("write inventory");
        std::fs::create_dir(tmp.path().join("work")).expect("mkdir work");
        Rig { sshd, tmp }
    }

    fn inventory(&self) -> PathBuf {
        self.tmp.path().join("inventory.yaml")
    }

    fn journal_dir(&self) -> PathBuf {
        self.tmp.path().join("journal")
    }

    /// The runbooks' `dir`: where the remote commands leave their traces.
    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// `-i <inventory> run <abs path of the fixture runbook> --var dir=<work>` + `extra`.
    fn run_args(&self, runbook: &str, extra: &[&str]) -> Vec<OsString> {
        let mut dir = OsString::from("dir=");
        dir.push(self.work());
        let mut a: Vec<OsString> = vec![
            "-i".into(),
            self.inventory().into(),
            "run".into(),
            fixture(runbook).into(),
            "--var".into(),
            dir,
        ];
        a.extend(extra.iter().map(OsString::from));
        a
    }

    /// The binary without a terminal (stdin, stdout, stderr are pipes).
    fn cli(&self) -> Cli {
        Cli::new().journal_dir(&self.journal_dir())
    }

    /// The binary in a fresh pty, as an operator starts it.
    fn spawn(&self, args: &[OsString]) -> Term {
        let mut cmd = Command::new(bin());
        cmd.args(args);
        Term::spawn(self.env(cmd), args)
    }

    /// The binary in a pty whose stdin is /dev/null (stderr still a terminal): the case in
    /// which dialoguer would quietly read /dev/tty.
    fn spawn_stdin_null(&self, args: &[OsString]) -> Term {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("exec \"$0\" \"$@\" </dev/null")
            .arg(bin())
            .args(args);
        Term::spawn(self.env(cmd), args)
    }

    fn env(&self, mut cmd: Command) -> Command {
        cmd.current_dir(repo())
            .env_remove("NATS_RESCUE_INVENTORY")
            .env("NATS_RESCUE_JOURNAL_DIR", self.journal_dir())
            .env("NO_COLOR", "1")
            .env("TERM", "xterm");
        cmd
    }

    /// The one incident in this test's journal dir.
    fn incident(&self) -> String {
        let mut ids: Vec<String> = std::fs::read_dir(self.journal_dir())
            .expect("journal dir exists")
            .filter_map(std::result::Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(ids.len(), 1, "expected exactly one incident, found {ids:?}");
        ids.remove(0)
    }

    /// Lines of `<work>/<name>`; empty when the file does not exist.
    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.work().join(name))
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default()
    }

    fn count(&self, file: &str, node: &str) -> usize {
        self.lines(file).iter().filter(|l| *l == node).count()
    }

    /// `journal verify` passes.
    fn verify(&self, incident: &str) -> Ran {
        let r = self.cli().args(["journal", "verify", incident]).run();
        r.code(0);
        assert!(
            r.stdout.contains("ok: ") || r.stderr.contains("ok: "),
            "journal verify did not say ok\n{}\n{}",
            r.stdout,
            r.stderr
        );
        r
    }

    fn show(&self, incident: &str) -> String {
        let r = self.cli().args(["journal", "show", incident]).run();
        r.code(0);
        r.stdout
    }

    fn export(&self, incident: &str) -> Value {
        let r = self
            .cli()
            .args(["journal", "export", incident, "--format", "json"])
            .run();
        r.code(0);
        r.json()
    }

    fn resume_yes(&self, incident: &str) -> Ran {
        self.cli().args(["resume", "--yes", incident]).run()
    }

    /// `<work>/data-n1`, `<work>/data-n2`, each with one file: what the destructive runbook
    /// archives and then deletes.
    fn make_data(&self) {
        for n in ["n1", "n2"] {
            let d = self.work().join(format!("data-{n}"));
            std::fs::create_dir(&d).expect("mkdir data");
            std::fs::write(d.join("state"), format!("raft state of {n}\n")).expect("write data");
        }
    }

    fn data_intact(&self) -> bool {
        ["n1", "n2"].iter().all(|n| {
            std::fs::read_to_string(self.work().join(format!("data-{n}/state")))
                .is_ok_and(|t| t == format!("raft state of {n}\n"))
        })
    }

    /// Waits until `<work>/<file>` has a line `line` (a remote command got that far).
    fn wait_for_line(&self, file: &str, line: &str) {
        let until = Instant::now() + Duration::from_millis(TIMEOUT_MS);
        while !self.lines(file).iter().any(|l| l == line) {
            assert!(
                Instant::now() < until,
                "no line {line:?} in {file} after {TIMEOUT_MS} ms; sshd log:\n{}",
                self.sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn fixture(runbook: &str) -> PathBuf {
    repo()
        .join("tests/fixtures/runbooks")
        .join(format!("{runbook}.yaml"))
}

/// How the engine shows a path inside a rendered command (shell-quoted when needed).
fn q(p: &Path) -> String {
    let s = p.display().to_string();
    shlex::try_quote(&s).expect("no NUL").into_owned()
}

/// A pty session plus everything it printed so far (for failure messages and assertions).
/// rexpect reads the pty byte by byte into `char`s (Latin-1), so needles must be ASCII and
/// the transcript is decoded as UTF-8 before anyone reads it.
pub(crate) struct Term {
    pub(crate) s: PtySession,
    seen: String,
    what: String,
}

impl Term {
    pub(crate) fn spawn(cmd: Command, args: &[OsString]) -> Term {
        let what = format!(
            "nats-rescue {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let s =
            spawn_command(cmd, Some(TIMEOUT_MS)).unwrap_or_else(|e| panic!("spawn in a pty: {e}"));
        Term {
            s,
            seen: String::new(),
            what,
        }
    }

    /// Waits for `needle` (bounded by the session timeout).
    pub(crate) fn expect(&mut self, needle: &str) {
        assert!(
            needle.is_ascii(),
            "rexpect matches bytes as Latin-1: use an ASCII needle, not {needle:?}"
        );
        match self.s.exp_string(needle) {
            Ok(before) => {
                self.seen.push_str(&before);
                self.seen.push_str(needle);
            }
            Err(e) => panic!(
                "{}: waiting for {needle:?}: {}\n--- terminal so far:\n{}",
                self.what,
                utf8(&e.to_string()),
                utf8(&self.seen)
            ),
        }
    }

    pub(crate) fn send_line(&mut self, line: &str) {
        self.s.send_line(line).expect("write to the pty");
        self.s.flush().expect("flush the pty");
    }

    pub(crate) fn ctrl_c(&mut self) {
        self.s.send_control('c').expect("send Ctrl-C");
    }

    /// Reads to the end and reaps the process: (exit code, the whole transcript).
    pub(crate) fn finish(mut self) -> (i32, String) {
        match self.s.exp_eof() {
            Ok(rest) => self.seen.push_str(&rest),
            Err(e) => panic!(
                "{}: did not exit: {}\n--- terminal so far:\n{}",
                self.what,
                utf8(&e.to_string()),
                utf8(&self.seen)
            ),
        }
        let seen = utf8(&self.seen);
        let status = self.s.process.wait().expect("wait for nats-rescue");
        let code = match status {
            WaitStatus::Exited(_, c) => c,
            other => panic!("{}: ended with {other:?}\n--- terminal:\n{seen}", self.what),
        };
        // The terminal speaks CRLF.
        (code, seen.replace("\r\n", "\n"))
    }
}

/// Undoes rexpect's byte-per-char reading.
fn utf8(latin1: &str) -> String {
    let bytes: Vec<u8> = latin1
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn confirmations(export: &Value) -> Vec<(String, bool, String, bool)> {
    export["confirmations"]
        .as_array()
        .expect("confirmations")
        .iter()
        .map(|c| {
            (
                c["step"].as_str().unwrap_or_default().to_string(),
                c["approved"].as_bool().expect("approved"),
                c["how"].as_str().unwrap_or_default().to_string(),
                c["destructive"].as_bool().expect("destructive"),
            )
        })
        .collect()
}

fn interruptions(export: &Value) -> Vec<String> {
    export["interruptions"]
        .as_array()
        .expect("interruptions")
        .iter()
        .map(|i| i["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// (action, exit code) of every action the journal holds for `node`.
fn actions(export: &Value, node: &str) -> Vec<(String, Option<i64>)> {
    export["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["node"] == node)
        .flat_map(|n| n["actions"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            (
                a["action"].as_str().unwrap_or_default().to_string(),
                a["result"]["exit_code"].as_i64(),
            )
        })
        .collect()
}

fn outcome(export: &Value) -> &str {
    export["summary"]["outcome"].as_str().unwrap_or_default()
}

// ------------------------------------------------------------------------------------------
// 1. An ordinary confirmation answered `y`

#[test]
fn confirm_yes_shows_the_commands_per_node_then_runs_them_everywhere() {
    let rig = Rig::new();
    let effects = rig.work().join("effects");
    let mut t = rig.spawn(&rig.run_args("pty-confirm", &[]));
    t.expect("[confirm] approve");
    // The details and the per-node preview come before the question.
    t.expect(&format!(
        "Each node appends its name to {}/effects.",
        rig.work().display()
    ));
    t.expect("step `mark` on n1, n2 (all at once):");
    t.expect(&format!("n1: echo n1 >> {}", q(&effects)));
    t.expect(&format!("n2: echo n2 >> {}", q(&effects)));
    t.expect("Record an effect on n1, n2? [y/N]");
    assert!(
        rig.lines("effects").is_empty(),
        "something ran before the operator answered"
    );
    t.send_line("y");
    t.expect("approved (tty)");
    let (code, out) = t.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("n1: run (mutating): echo n1 >>"), "{out}");
    assert!(out.contains("\ncompleted\n"), "{out}");

    assert_eq!(rig.count("effects", "n1"), 1, "{:?}", rig.lines("effects"));
    assert_eq!(rig.count("effects", "n2"), 1, "{:?}", rig.lines("effects"));
    assert_eq!(rig.lines("effects").len(), 2);

    let inc = rig.incident();
    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(
        confirmations(&ex),
        vec![("approve".into(), true, "tty".into(), false)]
    );
    assert_eq!(outcome(&ex), "completed");
    assert_eq!(actions(&ex, "n1"), vec![("mark@n1".into(), Some(0))]);
    assert_eq!(actions(&ex, "n2"), vec![("mark@n2".into(), Some(0))]);
    let show = rig.show(&inc);
    assert!(
        show.contains("APPROVED \"Record an effect on n1, n2?\" via tty"),
        "{show}"
    );
}

// ------------------------------------------------------------------------------------------
// 2. An ordinary confirmation answered `n`, then resumed without a terminal

#[test]
fn confirm_no_stops_with_3_and_resume_yes_completes_it_exactly_once() {
    let rig = Rig::new();
    let mut t = rig.spawn(&rig.run_args("pty-confirm", &[]));
    t.expect("Record an effect on n1, n2? [y/N]");
    t.send_line("n");
    let (code, out) = t.finish();
    assert_eq!(code, 3, "{out}");
    let inc = rig.incident();
    assert!(
        out.contains("stopped: the operator declined step `approve`"),
        "{out}"
    );
    assert!(
        out.contains(&format!("nats-rescue resume {inc}")),
        "the way back is named\n{out}"
    );
    assert!(
        rig.lines("effects").is_empty(),
        "declined, yet something ran: {:?}",
        rig.lines("effects")
    );

    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(
        confirmations(&ex),
        vec![("approve".into(), false, "tty".into(), false)]
    );
    assert_eq!(outcome(&ex), "stopped");
    let int = interruptions(&ex);
    assert!(
        int.iter().any(|i| i.contains("declined step `approve`")),
        "{int:?}"
    );
    assert!(rig
        .show(&inc)
        .contains("DECLINED \"Record an effect on n1, n2?\" via tty"));

    // Later, from a script: no terminal, --yes.
    let r = rig.resume_yes(&inc);
    r.code(0)
        .stderr_has("approved (--yes)")
        .stderr_has("completed");
    assert_eq!(rig.count("effects", "n1"), 1, "{:?}", rig.lines("effects"));
    assert_eq!(rig.count("effects", "n2"), 1, "{:?}", rig.lines("effects"));
    assert_eq!(rig.lines("effects").len(), 2);

    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(
        confirmations(&ex),
        vec![
            ("approve".into(), false, "tty".into(), false),
            ("approve".into(), true, "--yes".into(), false)
        ]
    );
    assert_eq!(outcome(&ex), "completed");
    assert_eq!(
        ex["resumes"].as_array().map(Vec::len),
        Some(1),
        "{}",
        ex["resumes"]
    );
    // Resuming a closed incident changes nothing.
    rig.resume_yes(&inc).code(0);
    assert_eq!(rig.lines("effects").len(), 2);
}

#[test]
fn enter_alone_takes_the_default_which_is_no() {
    let rig = Rig::new();
    let mut t = rig.spawn(&rig.run_args("pty-confirm", &[]));
    t.expect("Record an effect on n1, n2? [y/N]");
    t.send_line("");
    let (code, out) = t.finish();
    assert_eq!(code, 3, "{out}");
    assert!(rig.lines("effects").is_empty());
    let ex = rig.export(&rig.incident());
    assert_eq!(
        confirmations(&ex),
        vec![("approve".into(), false, "tty".into(), false)]
    );
}

// ------------------------------------------------------------------------------------------
// 3. A destructive confirmation: the cluster name must be typed

#[test]
fn destructive_step_asks_again_on_a_wrong_name_and_proceeds_on_the_right_one() {
    let rig = Rig::new();
    rig.make_data();
    let mut t = rig.spawn(&rig.run_args("pty-destructive", &[]));
    t.expect("[confirm] approve-wipe");
    t.expect("step `backup` on n1, n2 (all at once):");
    t.expect(&format!(
        "n1: archive {} (tar.gz, verified, SHA-256 journaled)",
        q(&rig.work().join("data-n1"))
    ));
    t.expect("step `wipe` on n1, n2 (all at once):");
    t.expect(&format!(
        "n2: rm -rf -- {} && echo n2",
        q(&rig.work().join("data-n2"))
    ));
    t.expect("DESTRUCTIVE STEP");
    let prompt = format!("Type the cluster name `{CLUSTER}` to proceed (empty to stop)");
    t.expect(&prompt);
    t.send_line("prod-east");
    t.expect(&format!("`prod-east` is not `{CLUSTER}`; try again."));
    t.expect(&prompt);
    assert!(
        rig.data_intact(),
        "data touched before the name was typed right"
    );
    assert!(
        !rig.work().join("backups").exists(),
        "backup made before approval"
    );
    t.send_line(CLUSTER);
    t.expect("approved (typed)");
    let (code, out) = t.finish();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("precondition holds: facts.up | length == 0"),
        "{out}"
    );

    for n in ["n1", "n2"] {
        assert!(
            !rig.work().join(format!("data-{n}")).exists(),
            "data-{n} still there\n{out}"
        );
        assert_eq!(rig.count("effects", n), 1);
    }
    let inc = rig.incident();
    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(
        confirmations(&ex),
        vec![("approve-wipe".into(), true, "typed".into(), true)]
    );
    assert_eq!(outcome(&ex), "completed");
    // The backups the journal vouches for are the files on the node, byte for byte.
    let backups = ex["backups"].as_array().expect("backups");
    assert_eq!(backups.len(), 2, "{backups:?}");
    for b in backups {
        let path = b["path"].as_str().expect("path");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("backup {path}: {e}"));
        assert_eq!(b["size"].as_u64(), Some(bytes.len() as u64), "{b}");
        assert_eq!(
            b["sha256"].as_str(),
            Some(hex::encode(Sha256::digest(&bytes)).as_str()),
            "{b}"
        );
        let node = b["node"].as_str().expect("node");
        let list = Command::new("tar")
            .arg("-tzf")
            .arg(path)
            .output()
            .expect("tar -t");
        assert!(
            String::from_utf8_lossy(&list.stdout).contains(&format!("data-{node}/state")),
            "{path} lacks data-{node}/state"
        );
    }
    assert!(rig.show(&inc).contains("APPROVED (destructive)"));
}

// ------------------------------------------------------------------------------------------
// 4. Ctrl-C while a command runs on n1

#[test]
fn ctrl_c_mid_run_stops_at_the_next_safe_point_and_resume_finishes_without_repeating() {
    let rig = Rig::new();
    let mut t = rig.spawn(&rig.run_args("pty-interrupt", &[]));
    t.expect("one node at a time? [y/N]");
    t.send_line("y");
    t.expect("n1: run (mutating):");
    // n1's command is running on the node (it wrote its first line, then sleeps ~3 s).
    rig.wait_for_line("started", "n1");
    let pressed = Instant::now();
    t.ctrl_c();
    t.expect("interrupt received; stopping at the next safe point");
    let (code, out) = t.finish();
    let took = pressed.elapsed();
    assert_eq!(code, 3, "{out}");
    // Bounded by n1's command (~3 s) and far below its 20 s timeout: no hang, no kill.
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} to stop\n{out}"
    );
    assert!(
        out.contains("n1: exit 0"),
        "n1's command should finish normally\n{out}"
    );
    assert!(
        out.contains("stopped: interrupted by the operator (Ctrl-C)"),
        "{out}"
    );
    assert_eq!(
        rig.lines("started"),
        ["n1"],
        "n2 must not start after Ctrl-C"
    );
    assert_eq!(rig.lines("effects"), ["n1"], "n1's command ran to its end");

    let inc = rig.incident();
    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(outcome(&ex), "stopped");
    assert!(
        interruptions(&ex).iter().any(|i| i.contains("Ctrl-C")),
        "{:?}",
        interruptions(&ex)
    );
    assert_eq!(actions(&ex, "n1"), vec![("slow@n1".into(), Some(0))]);
    assert!(actions(&ex, "n2").is_empty(), "{:?}", actions(&ex, "n2"));
    assert_eq!(
        ex["in_doubt"].as_array().map(Vec::len),
        Some(0),
        "{}",
        ex["in_doubt"]
    );

    let r = rig.resume_yes(&inc);
    r.code(0)
        .stderr_has("n1: already done in this incident (journal), not repeated")
        .stderr_has("approved earlier in this incident");
    assert_eq!(
        rig.lines("started"),
        ["n1", "n2"],
        "n1's command was sent again"
    );
    assert_eq!(rig.lines("effects"), ["n1", "n2"]);
    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(outcome(&ex), "completed");
    assert_eq!(actions(&ex, "n1"), vec![("slow@n1".into(), Some(0))]);
    assert_eq!(actions(&ex, "n2"), vec![("slow@n2".into(), Some(0))]);
}

#[test]
fn ctrl_c_twice_exits_at_once_and_resume_settles_n1_from_the_node_receipt() {
    let rig = Rig::new();
    let mut t = rig.spawn(&rig.run_args("pty-interrupt", &[]));
    t.expect("one node at a time? [y/N]");
    t.send_line("y");
    t.expect("n1: run (mutating):");
    rig.wait_for_line("started", "n1");
    t.ctrl_c();
    t.expect("press Ctrl-C again to exit now");
    t.ctrl_c();
    t.expect("interrupted twice, exiting now");
    let (code, out) = t.finish();
    assert_eq!(code, 3, "{out}");
    // It did not wait for n1's ~3 s command, which goes on running on the node.
    assert!(
        rig.lines("effects").is_empty(),
        "exited only after n1's command ended\n{out}"
    );

    let inc = rig.incident();
    rig.verify(&inc);
    let ex = rig.export(&inc);
    let in_doubt: Vec<&str> = ex["in_doubt"]
        .as_array()
        .expect("in_doubt")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(in_doubt, ["slow@n1"], "{}", ex["in_doubt"]);

    // The node's receipt settles n1: it waits for the command, sees exit 0, does not resend it.
    let r = rig.resume_yes(&inc);
    r.code(0)
        .stderr_has("n1: finished before the interruption (exit 0), not repeated");
    assert_eq!(
        rig.lines("started"),
        ["n1", "n2"],
        "n1's command was sent again"
    );
    assert_eq!(rig.lines("effects"), ["n1", "n2"]);
    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(outcome(&ex), "completed");
    let decisions: Vec<&str> = ex["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter_map(|d| d["decision"].as_str())
        .collect();
    assert_eq!(decisions, ["receipt"], "{}", ex["decisions"]);
}

#[test]
fn ctrl_c_at_the_prompt_is_a_no_and_nothing_runs() {
    let rig = Rig::new();
    let mut t = rig.spawn(&rig.run_args("pty-confirm", &[]));
    t.expect("Record an effect on n1, n2? [y/N]");
    t.expect(KEY_WAIT);
    t.ctrl_c();
    let (code, out) = t.finish();
    assert_eq!(code, 3, "{out}");
    assert!(rig.lines("effects").is_empty());
    let inc = rig.incident();
    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(
        confirmations(&ex),
        vec![(
            "approve".into(),
            false,
            "tty (Ctrl-C or end of input)".into(),
            false
        )]
    );
    assert_eq!(outcome(&ex), "stopped");
}

/// dialoguer hides the cursor while it waits for y/N and does not show it again on Ctrl-C;
/// the prompter must give the operator's shell its cursor back.
#[test]
fn ctrl_c_at_the_prompt_gives_the_cursor_back() {
    let rig = Rig::new();
    let mut t = rig.spawn(&rig.run_args("pty-confirm", &[]));
    t.expect("Record an effect on n1, n2? [y/N]");
    t.expect(KEY_WAIT);
    t.ctrl_c();
    let (code, out) = t.finish();
    assert_eq!(code, 3, "{out}");
    let hidden = out.rfind("\x1b[?25l");
    let shown = out.rfind("\x1b[?25h");
    assert!(
        hidden.is_none() || shown > hidden,
        "cursor left hidden: {out:?}"
    );
}

// ------------------------------------------------------------------------------------------
// 5. No terminal to ask

#[test]
fn no_terminal_and_no_yes_exits_4_naming_yes() {
    let rig = Rig::new();
    let r = rig.cli().args(rig.run_args("pty-confirm", &[])).run();
    r.code(4).stderr_has("pass --yes");
    assert!(rig.lines("effects").is_empty());
    let inc = rig.incident();
    rig.verify(&inc);
    let ex = rig.export(&inc);
    assert_eq!(outcome(&ex), "needs-decision");
    assert!(
        confirmations(&ex).is_empty(),
        "nothing was approved or declined"
    );
}

#[test]
fn stdin_redirected_in_a_terminal_is_not_a_terminal_to_ask() {
    // stderr is the pty, stdin is /dev/null: the tool must not read the pty behind stdin's back.
    let rig = Rig::new();
    let t = rig.spawn_stdin_null(&rig.run_args("pty-confirm", &[]));
    let (code, out) = t.finish();
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("pass --yes"), "{out}");
    assert!(
        !out.contains("[y/N]"),
        "prompted although stdin is not a terminal\n{out}"
    );
    assert!(rig.lines("effects").is_empty());
}

#[test]
fn destructive_step_with_only_yes_exits_4_naming_confirm_destructive() {
    let rig = Rig::new();
    rig.make_data();
    let r = rig
        .cli()
        .args(rig.run_args("pty-destructive", &["--yes"]))
        .run();
    r.code(4)
        .stderr_has(&format!("--confirm-destructive {CLUSTER}"))
        .stderr_has("--yes does not approve destructive steps");
    assert!(rig.data_intact());
    assert!(!rig.work().join("backups").exists());
    assert!(rig.lines("effects").is_empty());
    // Refused before anything ran: no step, no incident.
    r.stderr_has("Nothing was run");
    assert!(
        !rig.journal_dir().exists()
            || std::fs::read_dir(rig.journal_dir())
                .map(std::iter::Iterator::count)
                .unwrap_or(0)
                == 0
    );
}

#[test]
fn destructive_step_with_a_wrong_cluster_name_is_refused_and_nothing_changes() {
    let rig = Rig::new();
    rig.make_data();
    let r = rig
        .cli()
        .args(rig.run_args(
            "pty-destructive",
            &["--yes", "--confirm-destructive", "wrong"],
        ))
        .run();
    r.code(4)
        .stderr_has("does not match the inventory's cluster name");
    assert!(rig.data_intact());
    assert!(!rig.work().join("backups").exists());
    assert!(rig.lines("effects").is_empty());
    r.stderr_has("Nothing was run");
    assert!(
        !rig.journal_dir().exists()
            || std::fs::read_dir(rig.journal_dir())
                .map(std::iter::Iterator::count)
                .unwrap_or(0)
                == 0
    );
}

#[test]
fn destructive_step_with_the_right_cluster_name_runs_without_a_terminal() {
    let rig = Rig::new();
    rig.make_data();
    let r = rig
        .cli()
        .args(rig.run_args("pty-destructive", &["--confirm-destructive", CLUSTER]))
        .run();
    r.code(0).stderr_has("approved (--confirm-destructive)");
    assert!(!rig.work().join("data-n1").exists() && !rig.work().join("data-n2").exists());
    let ex = rig.export(&rig.incident());
    assert_eq!(
        confirmations(&ex),
        vec![(
            "approve-wipe".into(),
            true,
            "--confirm-destructive".into(),
            true
        )]
    );
    assert_eq!(ex["backups"].as_array().map(Vec::len), Some(2));
}

/// SPEC §5: a destructive step needs the cluster name (typed, or `--confirm-destructive`).
/// A runbook whose destructive fix step sits behind an ordinary confirmation is rejected by
/// validation, so `--yes` alone can never reach it.
#[test]
fn destructive_fix_behind_an_ordinary_confirmation_is_not_approved_by_yes() {
    let rig = Rig::new();
    rig.make_data();
    let text = std::fs::read_to_string(fixture("pty-destructive")).expect("fixture");
    let unmarked = text
        .replacen(
            "    kind: confirm\n    destructive: true\n",
            "    kind: confirm\n",
            1,
        )
        .replacen("id: pty-destructive", "id: pty-destructive-unmarked", 1);
    assert_ne!(unmarked, text);
    let path = rig.tmp.path().join("pty-destructive-unmarked.yaml");
    std::fs::write(&path, unmarked).expect("write runbook");
    let v = Cli::new()
        .args(["runbooks", "validate"])
        .arg_path(&path)
        .run();
    // Refused where it is cheapest: such a runbook does not validate, so it cannot run.
    v.code(2)
        .stdout_has("step `wipe`")
        .stdout_has("must come after a destructive confirmation");
    let mut dir = OsString::from("dir=");
    dir.push(rig.work());
    let r = rig
        .cli()
        .args([
            OsString::from("-i"),
            rig.inventory().into(),
            "run".into(),
            path.into(),
        ])
        .args([OsString::from("--var"), dir, "--yes".into()])
        .run();
    r.code(2);
    assert!(rig.data_intact(), "the data was touched");
}

// ------------------------------------------------------------------------------------------
// A runbook variable with `ask:` (permanent-loss's `lost`): offered on the terminal from the
// gathered facts when --var leaves it unset, chosen with a multi-select, journaled like --var.

#[test]
fn a_variable_with_ask_is_chosen_on_the_terminal_from_the_facts() {
    let rig = Rig::new();
    let mut t = rig.spawn(&rig.run_args("pty-ask", &["--yes"]));
    // Both nodes are down (nothing listens on their monitoring port): both are offered.
    t.expect("picked: the servers to mark");
    // The multi-select hides the cursor before it draws, then waits for keys.
    t.expect(KEY_WAIT);
    t.expect("Choose picked (space selects, enter accepts)");
    t.expect("[ ] n1");
    t.expect("[ ] n2");
    assert!(rig.lines("effects").is_empty(), "ran before the choice");
    // Down to n2, select it, accept.
    t.s.send("\x1b[B").expect("arrow down");
    t.s.send(" ").expect("space");
    t.s.send("\r").expect("enter");
    t.s.flush().expect("flush");
    let (code, out) = t.finish();
    assert_eq!(code, 0, "{out}");
    assert_eq!(rig.lines("effects"), vec!["n2".to_string()], "{out}");
    let inc = rig.incident();
    rig.verify(&inc);
    let journal =
        std::fs::read_to_string(rig.journal_dir().join(format!("{inc}.jsonl"))).expect("journal");
    let opened: Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(opened["vars"]["picked"], "n2", "{opened}");

    // Without a terminal nothing is asked: the default stands and nothing is marked.
    let rig = Rig::new();
    let r = rig.cli().args(rig.run_args("pty-ask", &["--yes"])).run();
    let all = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{all}");
    assert!(rig.lines("effects").is_empty(), "{all}");
    assert!(!all.contains("Choose picked"), "{all}");
}
