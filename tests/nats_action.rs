//! The `nats:` runbook action on a real cluster with a system account: `--dry-run` shows the
//! request and sends nothing, a run journals the intent before the request and the reply
//! after, and a crash between the two is settled on resume by the step's check (the request
//! is sent again only because the check says it never took effect). The system password
//! appears nowhere.

use crate::support::journal::{assert_secret_absent, journal_in, records_in};
use crate::support::lab::{modern_server, nats_rescue_command, text, Lab};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn nr(journals: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut c = nats_rescue_command(&[], args);
    c.env("NATS_RESCUE_JOURNAL_DIR", journals)
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run nats-rescue")
}

#[test]
fn nats_requests_are_rehearsed_journaled_and_settled_by_their_check() {
    let lab = Lab::up_with(&modern_server(), 3, &["--accounts"]);
    let inventory_text = std::fs::read_to_string(&lab.inventory).unwrap();
    let password = inventory_text
        .lines()
        .find_map(|l| {
            l.split_once("password:").map(|(_, p)| {
                p.trim()
                    .trim_end_matches('}')
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_string()
            })
        })
        .expect("the lab inventory carries the system password");
    assert!(password.len() >= 8, "{password}");
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab.inventory.to_string_lossy().into_owned();
    let rb = repo().join("tests/fixtures/runbooks/nats-stepdown.yaml");
    let rb = rb.to_string_lossy().into_owned();
    let mut outputs = String::new();

    // 1. Rehearsal: the request is shown, not sent.
    let before = lab.wait_leader(Duration::from_secs(20));
    let var = format!("leader={before}");
    let dir = tmp.path().join("dry");
    let o = nr(
        &dir,
        &[],
        &["-i", &inv, "run", &rb, "--dry-run", "--var", &var],
    );
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("WOULD RUN (mutating, not sent): NATS request $JS.API.META.LEADER.STEPDOWN"),
        "{err}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lab.wait_leader(Duration::from_secs(20)),
        before,
        "the rehearsal moved the leader"
    );

    // 2. A run: intent, then the reply, then the leader has moved.
    let dir = tmp.path().join("run");
    let o = nr(&dir, &[], &["-i", &inv, "run", &rb, "--yes", "--var", &var]);
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let recs = records_in(&dir);
    let intent = recs
        .iter()
        .position(|r| r["event"] == "action_intent" && r["action"] == "stepdown@cluster")
        .expect("the request's intent");
    let result = recs
        .iter()
        .position(|r| r["event"] == "action_result" && r["action"] == "stepdown@cluster")
        .expect("the request's reply");
    assert!(intent < result);
    assert!(
        recs[result]["stdout"]
            .as_str()
            .unwrap_or("")
            .contains("\"success\":true"),
        "{}",
        recs[result]
    );
    // The read-only broadcast in a diagnose step collected every server's reply.
    let who = recs
        .iter()
        .find(|r| r["event"] == "action_result" && r["action"] == "who@cluster")
        .expect("the ping's replies");
    let replies: Vec<Value> = serde_json::from_str(who["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(replies.len(), 3, "{who}");
    let moved = lab.wait_leader(Duration::from_secs(20));
    assert_ne!(moved, before);

    // 3. Killed right after the intent was fsynced (the request never left): resume asks the
    //    check, which says it did not take effect, and only then sends it.
    let k = recs[intent]["seq"].as_u64().unwrap();
    let var = format!("leader={moved}");
    let dir = tmp.path().join("crash");
    let o = nr(
        &dir,
        &[("NATS_RESCUE_TEST_CRASH_AFTER", k.to_string())],
        &["-i", &inv, "run", &rb, "--yes", "--var", &var],
    );
    outputs.push_str(&text(&o));
    assert_eq!(
        o.status.code(),
        None,
        "expected the crash hook to abort\n{}",
        text(&o)
    );
    let at_crash = records_in(&dir);
    assert_eq!(at_crash.last().unwrap()["event"], "action_intent");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lab.wait_leader(Duration::from_secs(20)),
        moved,
        "the request left before the crash"
    );
    let incident = journal_in(&dir)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let o = nr(&dir, &[], &["-i", &inv, "resume", "--yes", &incident]);
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let recs = records_in(&dir);
    assert!(
        recs.iter().any(|r| r["event"] == "decision"
            && r["action"] == "stepdown@cluster"
            && r["decision"] == "check-failed"),
        "the doubt was not settled by the check"
    );
    assert_ne!(
        lab.wait_leader(Duration::from_secs(20)),
        moved,
        "resume did not send the request"
    );
    let v = nr(&dir, &[], &["journal", "verify", &incident]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));

    // 4. The system password is in no journal and no output.
    assert_secret_absent(
        &password,
        &[
            tmp.path().join("dry"),
            tmp.path().join("run"),
            tmp.path().join("crash"),
        ],
        &outputs,
    );
    lab.down();
}
