//! Production shapes on the lab (nats-server 2.15.1), checked the way an operator would:
//! `status` / `diagnose` exit codes and verdicts, runbooks recovering the cluster with every
//! seeded message, through
//! - an unprivileged SSH user with NOPASSWD sudo (`lab up --ssh-user`), and the same user
//!   once its sudoers entry is gone (sudo needs a password);
//! - a bastion that is the only way to the nodes' SSH and monitoring (`lab up --bastion`),
//!   and the same bastion presenting a changed host key.
//!
//! One lab per shape, shared by its steps; every wait polls for the signal.

use crate::support::cli::bin;
use crate::support::lab::{modern_server, text, Lab};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SEEDED: u64 = 100;
/// The inventory's `cluster:` in every lab.
const CLUSTER: &str = "lab";

struct Ran {
    code: i32,
    stdout: String,
    all: String,
    took: Duration,
}

/// `nats-rescue -i <lab inventory> ARGS`, journals in `jdir`, bounded by `timeout 300`.
fn nr(lab: &Lab, jdir: &Path, args: &[&str]) -> Ran {
    nr_with(&lab.inventory, jdir, args)
}

fn nr_with(inventory: &Path, jdir: &Path, args: &[&str]) -> Ran {
    let t = Instant::now();
    let o = Command::new("timeout")
        .arg("300")
        .arg(bin())
        .arg("-i")
        .arg(inventory)
        .args(args)
        .env_remove("NATS_RESCUE_INVENTORY")
        .env("NATS_RESCUE_JOURNAL_DIR", jdir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run nats-rescue");
    Ran {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        all: text(&o),
        took: t.elapsed(),
    }
}

/// Polls `diagnose --json` until the first finding is `cause` (exit 1); returns the JSON.
fn diagnosed(lab: &Lab, jdir: &Path, cause: &str) -> Value {
    let (v, took) = lab.wait_for(
        &format!("diagnose naming {cause} first"),
        Duration::from_secs(90),
        || {
            let r = nr(lab, jdir, &["diagnose", "--json"]);
            let v: Value = serde_json::from_str(&r.stdout).ok()?;
            (r.code == 1 && v["findings"][0]["cause"] == cause).then_some(v)
        },
    );
    eprintln!(
        "shapes: diagnose → {cause} after {:.1}s",
        took.as_secs_f64()
    );
    v
}

/// Every node agrees on a leader, answers /healthz 200, and ORDERS holds every message.
fn assert_recovered(lab: &Lab, what: &str) {
    let names = lab.node_names();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let (leader, took) = lab.wait_for(
        &format!("{what}: a leader agreed by all and /healthz ok everywhere"),
        Duration::from_secs(60),
        || {
            let l = lab.agreed_leader(&all)?;
            all.iter()
                .all(|n| {
                    lab.monitor(n, "/healthz")
                        .is_some_and(|h| h["status"] == "ok")
                })
                .then_some(l)
        },
    );
    let (msgs, _) = lab.wait_for(
        &format!("{what}: ORDERS holds {SEEDED} messages"),
        Duration::from_secs(30),
        || {
            nats_rescue::lab::stream_messages(&lab.dir, "ORDERS")
                .ok()
                .filter(|n| *n == SEEDED)
        },
    );
    eprintln!(
        "shapes: {what}: leader {leader}, {msgs} messages ({:.1}s)",
        took.as_secs_f64()
    );
}

fn status_healthy(lab: &Lab, jdir: &Path, what: &str) {
    let r = nr(lab, jdir, &["status"]);
    assert_eq!(r.code, 0, "{what}: status must exit 0:\n{}", r.all);
    assert!(r.stdout.contains("HEALTHY"), "{what}:\n{}", r.all);
    eprintln!(
        "shapes: {what}: status healthy in {:.1}s",
        r.took.as_secs_f64()
    );
}

/// `lab break FAULT`, wait for diagnose to name `cause`, `run RUNBOOK --yes EXTRA`, check the
/// recovery, `lab heal`.
fn break_and_recover(lab: &Lab, jdir: &Path, fault: &str, cause: &str, run: &[&str]) {
    lab.lab_ok("break", &[fault]);
    diagnosed(lab, jdir, cause);
    let mut args = vec!["run"];
    args.extend_from_slice(run);
    args.push("--yes");
    let r = nr(lab, jdir, &args);
    assert_eq!(
        r.code,
        0,
        "{fault}: `{}` must exit 0:\n{}",
        args.join(" "),
        r.all
    );
    eprintln!(
        "shapes: {fault}: `{}` exit 0 in {:.1}s",
        args.join(" "),
        r.took.as_secs_f64()
    );
    assert_recovered(lab, fault);
    lab.lab_ok("heal", &[]);
}

#[test]
fn sudo_operator_status_recovery_and_a_sudo_that_needs_a_password() {
    let t0 = Instant::now();
    let lab = Lab::up_with(&modern_server(), 3, &["--ssh-user", "{name}op"]);
    let jd = tempfile::tempdir().expect("journal dir");
    let jdir = jd.path();
    lab.lab_ok("seed", &["--messages", &SEEDED.to_string()]);
    status_healthy(&lab, jdir, "ssh user with sudo");

    break_and_recover(
        &lab,
        jdir,
        "quorum-loss",
        "insufficient-nodes",
        &["insufficient-nodes"],
    );
    break_and_recover(
        &lab,
        jdir,
        "frozen",
        "resource-exhaustion",
        &["resource-exhaustion"],
    );
    break_and_recover(
        &lab,
        jdir,
        "diverged",
        "stale-raft-state",
        &["reset-option-b", "--confirm-destructive", CLUSTER],
    );
    status_healthy(&lab, jdir, "after three recoveries");

    // The sudoers entry goes away: sudo -n now wants a password on every node.
    let st = lab.state();
    let user = st.ssh_user.clone().expect("ssh user recorded");
    // Same directory (a rename), and sudo ignores drop-ins whose name has a dot.
    let aside = user.sudoers.with_extension("aside");
    std::fs::rename(&user.sudoers, &aside).expect("move the sudoers entry aside");
    let line = format!("{} ALL=(root) NOPASSWD: ALL", user.name);
    let r = nr(&lab, jdir, &["status"]);
    let diag = nr(&lab, jdir, &["diagnose"]);
    let status_json = nr(&lab, jdir, &["status", "--json"]);
    let journals_before = std::fs::read_dir(jdir).map(|d| d.count()).unwrap_or(0);
    let run = nr(&lab, jdir, &["run", "insufficient-nodes", "--yes"]);
    let journals_after = std::fs::read_dir(jdir).map(|d| d.count()).unwrap_or(0);
    std::fs::rename(&aside, &user.sudoers).expect("put the sudoers entry back");

    assert_eq!(
        r.code, 1,
        "status must exit 1 when sudo needs a password:\n{}",
        r.all
    );
    let verdict = r.stdout.replace("\n  ", " ");
    assert!(
        verdict.contains("CANNOT MANAGE n1, n2, n3: sudo needs a password"),
        "the verdict names the nodes and the reason:\n{}",
        r.all
    );
    assert!(
        verdict.contains(&line),
        "the verdict names `{line}`:\n{}",
        r.all
    );
    assert_eq!(diag.code, 1, "diagnose must exit 1 too:\n{}", diag.all);
    assert!(
        diag.stdout.replace("\n  ", " ").contains(&line),
        "diagnose names `{line}`:\n{}",
        diag.all
    );
    let v: Value = serde_json::from_str(&status_json.stdout).expect("status --json");
    assert_eq!(v["healthy"], false);
    assert_eq!(v["unmanageable"].as_array().map(Vec::len), Some(3), "{v:#}");
    assert_eq!(v["has_leader"], true, "NATS itself is fine: {v:#}");
    // What the unprivileged probe could not see is said, not silently missing.
    let errors = v["nodes"][0]["errors"].to_string();
    assert!(errors.contains("not seen without root"), "{errors}");
    // A run refuses before its first change (no journal either).
    assert_eq!(run.code, 1, "run must refuse:\n{}", run.all);
    assert!(
        run.all.contains("Nothing was run") && run.all.contains(&line),
        "{}",
        run.all
    );
    assert_eq!(journals_before, journals_after, "no incident opened");
    status_healthy(&lab, jdir, "sudoers entry restored");
    lab.down();
    eprintln!(
        "shapes: sudo operator: {:.1}s in all",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn bastion_status_recovery_and_a_changed_bastion_host_key() {
    let t0 = Instant::now();
    let lab = Lab::up_with(&modern_server(), 3, &["--bastion"]);
    let jd = tempfile::tempdir().expect("journal dir");
    let jdir = jd.path();
    lab.lab_ok("seed", &["--messages", &SEEDED.to_string()]);
    // Only the bastion reaches the nodes: a healthy status proves the jump (SSH and
    // `monitor: ssh` through it).
    status_healthy(&lab, jdir, "through the bastion");

    break_and_recover(
        &lab,
        jdir,
        "quorum-loss",
        "insufficient-nodes",
        &["insufficient-nodes"],
    );

    // The bastion now presents a key known_hosts does not have for it.
    let st = lab.state();
    let bastion = st.bastion.clone().expect("bastion recorded");
    let kh = lab.dir.join("known_hosts");
    let original = std::fs::read_to_string(&kh).expect("known_hosts");
    let n1_key = original
        .lines()
        .find(|l| l.starts_with(&format!("{} ", lab.addr("n1"))))
        .and_then(|l| l.split_once(' ').map(|(_, k)| k.to_string()))
        .expect("n1 in known_hosts");
    let changed: String = original
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{} ", bastion.addr)) {
                format!("{} {n1_key}\n", bastion.addr)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&kh, changed).expect("rewrite known_hosts");
    let r = nr(&lab, jdir, &["status"]);
    let diag = nr(&lab, jdir, &["diagnose"]);
    std::fs::write(&kh, &original).expect("restore known_hosts");
    assert_eq!(diag.code, 1, "diagnose must exit 1:\n{}", diag.all);
    assert!(diag.stdout.contains("CANNOT MANAGE"), "{}", diag.all);
    assert_eq!(r.code, 1, "status must exit 1:\n{}", r.all);
    let verdict = r.stdout.replace("\n  ", " ");
    assert!(
        verdict
            .contains("CANNOT MANAGE n1, n2, n3: host key refused: HOST KEY CHANGED for jump host")
            && verdict.contains(&bastion.addr),
        "the verdict names the bastion and the refusal:\n{}",
        r.all
    );
    status_healthy(&lab, jdir, "known_hosts restored");

    // The same cluster described by the lab's OpenSSH client config instead: hosts are the
    // aliases n1..n3, and HostName, User, IdentityFile, UserKnownHostsFile and the
    // ProxyJump to the `bastion` alias all come from `ssh.config`.
    let text = std::fs::read_to_string(&lab.inventory).expect("inventory");
    let mut by_config = String::new();
    for line in text.lines() {
        let dropped = [
            "user: ",
            "port: ",
            "identity_file: ",
            "known_hosts: ",
            "proxy_jump: ",
        ];
        if dropped
            .iter()
            .any(|k| line.starts_with(&format!("    {k}")))
        {
            continue;
        }
        by_config.push_str(line);
        by_config.push('\n');
        if line == "  ssh:" {
            by_config.push_str(&format!(
                "    config: {:?}\n",
                lab.dir.join("ssh_config").display().to_string()
            ));
        }
    }
    for n in lab.node_names() {
        by_config = by_config.replace(
            &format!("    host: {}\n", lab.addr(&n)),
            &format!("    host: {n}\n"),
        );
    }
    let inv2 = jdir.join("inventory-by-ssh-config.yaml");
    std::fs::write(&inv2, &by_config).expect("write inventory");
    let r = nr_with(&inv2, jdir, &["status"]);
    assert_eq!(
        r.code, 0,
        "status with ssh.config must exit 0:\n{}\n--- inventory\n{by_config}",
        r.all
    );
    assert!(r.stdout.contains("HEALTHY"), "{}", r.all);
    eprintln!(
        "shapes: ssh.config inventory: status healthy in {:.1}s",
        r.took.as_secs_f64()
    );
    lab.down();
    eprintln!("shapes: bastion: {:.1}s in all", t0.elapsed().as_secs_f64());
}
