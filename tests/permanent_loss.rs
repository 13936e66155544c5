//! `permanent-loss` on a real cluster that lost two of its three servers for good
//! (`lab break destroy n2 n3`): refused with nothing changed when no server is named, refused
//! without `--confirm-destructive`, and with both the survivor is rescued (`META.RESCUE`,
//! then `SERVER.REMOVE` of each lost server), leads, serves every seeded message and accepts
//! new ones; every request and reply is journaled and the system password appears nowhere.
//! On 2.9.10 the same loss changes nothing and the guidance for that version is printed.

use crate::pty::{Term, KEY_WAIT};
use crate::support::journal::{assert_secret_absent, journal_in, records_in};
use crate::support::lab::{legacy_server, modern_server, nats_rescue_command, text, Lab};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn nr(journals: &Path, args: &[&str]) -> Output {
    let mut c = nats_rescue_command(&[], args);
    c.env("NATS_RESCUE_JOURNAL_DIR", journals)
        .env("NO_COLOR", "1");
    c.output().expect("run nats-rescue")
}

/// `-i INV run permanent-loss --yes EXTRA…`
fn permanent_loss(journals: &Path, inv: &str, extra: &[&str]) -> Output {
    let mut args = vec!["-i", inv, "run", "permanent-loss", "--yes"];
    args.extend_from_slice(extra);
    nr(journals, &args)
}

/// Destroys n2 and n3 and waits until n1 sees no leader.
fn lose_majority(lab: &Lab) {
    lab.lab_ok("break", &["destroy", "n2", "n3"]);
    lab.wait_for("n1 without a meta leader", Duration::from_secs(30), || {
        lab.leader_seen_by("n1").is_none().then_some(())
    });
}

fn no_mutation(dir: &Path) {
    let recs = records_in(dir);
    assert!(
        !recs.iter().any(|r| r["event"] == "action_intent"),
        "something was sent: {recs:?}"
    );
}

#[test]
fn permanent_loss_rescues_the_survivor_on_2_15() {
    let lab = Lab::up_with(&modern_server(), 3, &["--accounts"]);
    let password = lab.state().sys_password;
    assert!(password.len() >= 8, "{password}");
    let inv = lab.inventory.to_string_lossy().into_owned();
    lab.lab_ok("seed", &["--messages", "50"]);
    assert_eq!(lab.stream_messages(), 50);
    lose_majority(&lab);
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = String::new();

    // 1. No server named: refused, nothing sent, still no leader.
    let dir = tmp.path().join("unnamed");
    let o = permanent_loss(&dir, &inv, &["--confirm-destructive", "lab"]);
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("No lost server is named"), "{}", text(&o));
    no_mutation(&dir);

    // 2. A named server that answers is not lost.
    let dir = tmp.path().join("alive");
    let o = permanent_loss(
        &dir,
        &inv,
        &["--var", "lost=n1,n2", "--confirm-destructive", "lab"],
    );
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("n1 still answers"), "{}", text(&o));
    no_mutation(&dir);

    // 3. Named, but no --confirm-destructive: a decision is needed (exit 4), nothing run.
    let dir = tmp.path().join("unconfirmed");
    std::fs::create_dir_all(&dir).unwrap();
    let o = permanent_loss(&dir, &inv, &["--var", "lost=n2,n3"]);
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lab.leader_seen_by("n1"),
        None,
        "a refused run changed the cluster"
    );

    // 3b. On a terminal, with `lost` unset: the servers that are gone are offered from the
    //     facts (n2, n3; never the survivor) and chosen with the multi-select; the typed
    //     confirmation then names them, and an empty answer stops: no rescue sent.
    let dir = tmp.path().join("asked");
    std::fs::create_dir_all(&dir).unwrap();
    let args = ["-i", inv.as_str(), "run", "permanent-loss"];
    let mut cmd = nats_rescue_command(&[], &args);
    cmd.env("NATS_RESCUE_JOURNAL_DIR", &dir)
        .env("NO_COLOR", "1");
    let os_args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    let mut t = Term::spawn(cmd, &os_args);
    t.expect(KEY_WAIT);
    t.expect("Choose lost (space selects, enter accepts)");
    t.expect("[ ] n2");
    t.expect("[ ] n3");
    for keys in [" ", "\x1b[B", " ", "\r"] {
        t.s.send(keys).expect("keys");
    }
    t.s.flush().expect("flush");
    t.expect("Type the cluster name `lab` to proceed (empty to stop)");
    t.send_line("");
    let (code, out) = t.finish();
    outputs.push_str(&out);
    assert_eq!(code, 3, "{out}");
    assert!(
        !out.contains("] n1"),
        "the survivor was offered as lost:\n{out}"
    );
    let recs = records_in(&dir);
    assert_eq!(recs[0]["vars"]["lost"], "n2,n3", "{:?}", recs[0]);
    assert!(
        !recs.iter().any(|r| r["event"] == "action_intent"
            && r["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("rescue"))),
        "the rescue was sent without the typed name: {recs:?}"
    );
    assert_eq!(
        lab.leader_seen_by("n1"),
        None,
        "a stopped run changed the cluster"
    );

    // 4. Named and confirmed, and the process killed right after the rescue's replies were
    //    journaled (a leader is being elected): resume neither refuses ("there is a meta
    //    leader" is the rescue's own result) nor sends the rescue again, and finishes.
    let cluster = String::from("lab");
    let dir = tmp.path().join("run");
    let started = std::time::Instant::now();
    let mut c = nats_rescue_command(
        &[],
        &[
            "-i",
            &inv,
            "run",
            "permanent-loss",
            "--yes",
            "--var",
            "lost=n2,n3",
            "--confirm-destructive",
            &cluster,
        ],
    );
    c.env("NATS_RESCUE_JOURNAL_DIR", &dir)
        .env("NO_COLOR", "1")
        .env(
            "NATS_RESCUE_TEST_CRASH_AFTER",
            "action_result:rescue@cluster",
        );
    let o = c.output().expect("run nats-rescue");
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), None, "the crash hook aborts\n{}", text(&o));
    assert_eq!(records_in(&dir).last().unwrap()["action"], "rescue@cluster");
    let incident = journal_in(&dir)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let o = nr(&dir, &["resume", &incident, "--yes"]);
    outputs.push_str(&text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!(
        "rescue run + resume took {:?}\n{}",
        started.elapsed(),
        text(&o)
    );
    let intents = records_in(&dir)
        .iter()
        .filter(|r| r["event"] == "action_intent" && r["action"] == "rescue@cluster")
        .count();
    assert_eq!(intents, 1, "the rescue was sent once");
    assert!(
        records_in(&dir).iter().any(|r| r["event"] == "step_skipped"
            && r["step"] == "has-leader"
            && r["reason"]
                .as_str()
                .unwrap_or("")
                .contains("guard checked before")),
        "the has-leader guard is not re-checked on resume"
    );
    assert_eq!(lab.leader_seen_by("n1").as_deref(), Some("n1"));
    assert_eq!(lab.stream_messages(), 50, "the seeded messages survived");
    lab.lab_ok("seed", &["--messages", "10"]);
    assert_eq!(lab.stream_messages(), 60, "the stream accepts new messages");

    // Every request and its reply are journaled.
    let recs = records_in(&dir);
    for action in [
        "jsz@cluster",
        "rescue@cluster",
        "remove-1@cluster",
        "remove-2@cluster",
    ] {
        let result = recs
            .iter()
            .find(|r| r["event"] == "action_result" && r["action"] == action)
            .unwrap_or_else(|| panic!("no reply journaled for {action}"));
        if action != "jsz@cluster" {
            assert!(
                recs.iter()
                    .any(|r| r["event"] == "action_intent" && r["action"] == action),
                "no intent for {action}"
            );
        }
        let stdout = result["stdout"].as_str().unwrap_or("");
        if action == "rescue@cluster" {
            assert!(stdout.contains("meta_rescue_response"), "{result}");
        }
        if action.starts_with("remove") {
            assert!(stdout.contains("\"success\":true"), "{result}");
        }
    }
    let v = nr(&dir, &["journal", "verify", &incident]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));

    // The meta group is n1 alone now.
    let jsz = lab.jsz("n1").expect("n1 jsz");
    assert_eq!(jsz["meta_cluster"]["cluster_size"], 1, "{jsz}");

    // The password is in no journal and no output.
    assert_secret_absent(
        &password,
        &[
            tmp.path().join("unnamed"),
            tmp.path().join("alive"),
            tmp.path().join("unconfirmed"),
            tmp.path().join("asked"),
            tmp.path().join("run"),
        ],
        &outputs,
    );
    lab.down();
}

#[test]
fn permanent_loss_changes_nothing_before_2_15() {
    let lab = Lab::up_with(&legacy_server(), 3, &["--accounts"]);
    let inv = lab.inventory.to_string_lossy().into_owned();
    lab.lab_ok("seed", &["--messages", "20"]);
    lose_majority(&lab);
    let tmp = tempfile::tempdir().unwrap();
    // diagnose names permanent-loss as a path, never as the first finding.
    let o = nr(
        &tmp.path().join("diag"),
        &["-i", &inv, "--json", "diagnose"],
    );
    let d: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let causes: Vec<&str> = d["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["cause"].as_str())
        .collect();
    assert!(causes.len() >= 2, "{causes:?}");
    assert_ne!(causes[0], "permanent-loss", "{causes:?}");
    assert_eq!(causes.last(), Some(&"permanent-loss"), "{causes:?}");
    let cluster = String::from("lab");
    let dir = tmp.path().join("old");
    let o = nr(
        &dir,
        &[
            "-i",
            &inv,
            "run",
            "permanent-loss",
            "--yes",
            "--var",
            "lost=n2,n3",
            "--confirm-destructive",
            &cluster,
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("needs 2.15 or later"), "{t}");
    assert!(t.contains("ORIGINAL server_name"), "{t}");
    assert!(t.contains("temporary extra server"), "{t}");
    assert!(t.contains("restore from backup"), "{t}");
    no_mutation(&dir);
    assert_eq!(lab.leader_seen_by("n1"), None);
    lab.down();
}

/// `stale-peers`: a server renamed leaves its old name in the meta peer set; the runbook
/// peer-removes it through the leader after a destructive confirmation.
#[test]
fn stale_peers_removes_a_renamed_servers_old_name() {
    let lab = Lab::up_with(&modern_server(), 3, &["--accounts"]);
    let inv = lab.inventory.to_string_lossy().into_owned();
    let all = lab.node_names();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let (leader, _) = lab.wait_for("a leader", Duration::from_secs(20), || {
        lab.agreed_leader(&refs)
    });
    let target = all.iter().rev().find(|n| **n != leader).unwrap().clone();
    lab.lab_ok("break", &["rename", &target]);
    let new = format!("{target}b");
    lab.wait_for(
        "the leader lists the old name",
        Duration::from_secs(30),
        || {
            let j = lab.jsz(&leader)?;
            let names: Vec<String> = j["meta_cluster"]["replicas"]
                .as_array()?
                .iter()
                .filter_map(|r| r["name"].as_str().map(String::from))
                .collect();
            (names.contains(&target) && names.contains(&new)).then_some(())
        },
    );
    let tmp = tempfile::tempdir().unwrap();

    // With one more server down the inventory's arithmetic says "2 of 3 up, quorum 2", the
    // meta group's says 2 of 4, quorum 3: no leader. Diagnose puts bringing it back first and
    // names the stale peer; after insufficient-nodes there is a leader again.
    let other = all
        .iter()
        .find(|n| **n != leader && **n != target)
        .unwrap()
        .clone();
    lab.lab_ok("break", &["quorum-loss", &other]);
    lab.wait_for("no meta leader", Duration::from_secs(60), || {
        lab.leader_seen_by(&leader).is_none().then_some(())
    });
    let o = nr(
        &tmp.path().join("diag-down"),
        &["-i", &inv, "--json", "diagnose"],
    );
    let d: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let findings = d["findings"].as_array().unwrap();
    assert_eq!(findings[0]["cause"], "insufficient-nodes", "{d}");
    let summary = findings[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("quorum needs 3 of the meta group's 4 peers"),
        "{summary}"
    );
    let stale = findings
        .iter()
        .find(|f| f["cause"] == "stale-peers")
        .unwrap_or_else(|| panic!("no stale-peers finding: {d}"));
    let s = stale["summary"].as_str().unwrap();
    assert!(
        s.contains(&format!("also counts {target}"))
            && s.contains(&format!("Bring back {other} first")),
        "{s}"
    );
    let st = nr(&tmp.path().join("status-down"), &["-i", &inv, "status"]);
    // The verdict is wrapped to the terminal's width.
    let flat = text(&st).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!(
            "the meta group counts 4 peers ({target} not in the inventory), quorum needs 3"
        )),
        "{}",
        text(&st)
    );
    let o = nr(
        &tmp.path().join("start"),
        &["-i", &inv, "run", "insufficient-nodes", "--yes"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A leader elected moments ago may not know every peer's name yet (`facts.stale_peers`
    // skips unnamed ones): wait until it lists the old name, as an operator would re-run.
    lab.wait_for(
        "the new leader lists the old name",
        Duration::from_secs(30),
        || {
            // Some server knows the old name (a renamed leader lists its own old peer as
            // "Server name unknown"; the others name it).
            lab.agreed_leader(&refs)?;
            refs.iter()
                .any(|h| {
                    lab.jsz(h).is_some_and(|j| {
                        j["meta_cluster"]["replicas"]
                            .as_array()
                            .is_some_and(|rs| rs.iter().any(|r| r["name"] == target.as_str()))
                    })
                })
                .then_some(())
        },
    );

    let o = nr(
        &tmp.path().join("diag"),
        &["-i", &inv, "--json", "diagnose"],
    );
    let d: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert!(
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["cause"] == "stale-peers"),
        "{d}"
    );
    let dir = tmp.path().join("run");
    let o = nr(
        &dir,
        &[
            "-i",
            &inv,
            "run",
            "stale-peers",
            "--yes",
            "--confirm-destructive",
            "lab",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Healthy after, as `status` judges it (every server current, no stale peer left).
    let st = tmp.path().join("status-after");
    lab.wait_for("status exits 0", Duration::from_secs(30), || {
        (nr(&st, &["-i", &inv, "status"]).status.code() == Some(0)).then_some(())
    });
    let d: Value = serde_json::from_slice(&nr(&st, &["-i", &inv, "--json", "status"]).stdout)
        .expect("status --json");
    assert_eq!(d["healthy"], true, "{d}");
    let j = lab.jsz(&leader).expect("jsz");
    assert_eq!(j["meta_cluster"]["cluster_size"], 3, "{j}");
    let recs = records_in(&dir);
    assert!(recs.iter().any(|r| r["event"] == "action_result"
        && r["action"] == "remove-1@cluster"
        && r["stdout"]
            .as_str()
            .unwrap_or("")
            .contains("\"success\":true")));
    lab.down();
}
