//! The system account through SSH (`monitor: ssh` behind a bastion): a node whose HTTP
//! monitoring answers nobody, not even itself on loopback, still gets its facts over the
//! system account reached through an SSH tunnel, and a runbook's `nats:` requests go the
//! same way. Every node's client port is closed to the outside for the whole test, so
//! nothing can pass by connecting directly. The system password appears nowhere.

use crate::support::journal::{assert_secret_absent, records_in};
use crate::support::lab::{modern_server, nats_rescue_command, require_root, text, Lab};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn nr(jdir: &Path, outputs: &mut String, args: &[&str]) -> Output {
    let mut c = nats_rescue_command(&[], args);
    c.env("NATS_RESCUE_JOURNAL_DIR", jdir).env("NO_COLOR", "1");
    let o = c.output().expect("run nats-rescue");
    outputs.push_str(&text(&o));
    o
}

fn system_password(lab: &Lab) -> String {
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    inv.lines()
        .find_map(|l| {
            l.split_once("password:").map(|(_, p)| {
                p.trim()
                    .trim_end_matches('}')
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_string()
            })
        })
        .unwrap_or_else(|| panic!("no system password in the lab inventory:\n{inv}"))
}

fn ns_ok(lab: &Lab, node: &str, script: &str) {
    let o = lab.in_ns(node, script);
    assert!(o.status.success(), "{node}: {script}: {}", text(&o));
}

#[test]
fn system_account_through_ssh_behind_a_bastion() {
    require_root();
    let lab = Lab::up_with(&modern_server(), 3, &["--bastion", "--accounts"]);
    let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    assert!(inventory.contains("monitor: ssh"), "{inventory}");
    lab.lab_ok("seed", &["--messages", "10"]);
    let inv = nats_rescue::inventory::Inventory::load(&lab.inventory).unwrap();
    let n2 = inv.node("n2").unwrap();
    let (monitor_port, client_port) = (n2.nats.monitor_port, n2.nats.client_port);
    let password = system_password(&lab);
    assert!(password.len() >= 8, "{password}");
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = String::new();
    let inv_arg = lab.inventory.to_string_lossy().into_owned();

    // Client ports answer only on the nodes themselves; n2's monitoring answers nobody
    // (inserted first, so it is matched before the bastion's loopback ACCEPT).
    let client_rule = format!("INPUT -i eth0 -p tcp --dport {client_port} -j DROP");
    let monitor_rule = format!("INPUT -p tcp --dport {monitor_port} -j DROP");
    for n in lab.node_names() {
        ns_ok(&lab, &n, &format!("iptables -I {client_rule}"));
    }
    ns_ok(&lab, "n2", &format!("iptables -I {monitor_rule}"));

    // 1. status: n2's facts over the system account, through SSH; a healthy cluster.
    let sdir = tmp.path().join("status");
    let o = nr(&sdir, &mut outputs, &["-i", &inv_arg, "status", "--json"]);
    ns_ok(&lab, "n2", &format!("iptables -D {monitor_rule}"));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}", text(&o)));
    let nodes = v["nodes"].as_array().unwrap();
    let node = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap().clone();
    let f2 = node("n2");
    assert_eq!(f2["source"], "system", "{f2}");
    assert_eq!(f2["server_name"], "n2", "{f2}");
    assert!(f2["meta_leader"].is_string(), "{f2}");
    assert_eq!(f2["healthz_status"], 200, "{f2}");
    assert!(
        f2.to_string().contains(":4222 through SSH"),
        "the note names the tunnel: {f2}"
    );
    assert_eq!(node("n1")["source"], "http", "{}", node("n1"));
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // 2. A runbook's system-account requests (a broadcast ping, then a meta leader
    //    stepdown) through SSH as well.
    let before = lab.wait_leader(Duration::from_secs(30));
    let rb = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runbooks/nats-stepdown.yaml");
    let rb = rb.to_string_lossy().into_owned();
    let var = format!("leader={before}");
    let rdir = tmp.path().join("run");
    let o = nr(
        &rdir,
        &mut outputs,
        &["-i", &inv_arg, "run", &rb, "--yes", "--var", &var],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let recs = records_in(&rdir);
    let who = recs
        .iter()
        .find(|r| r["event"] == "action_result" && r["action"] == "who@cluster")
        .expect("the ping's replies");
    let replies: Vec<Value> = serde_json::from_str(who["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(replies.len(), 3, "{who}");
    let stepdown = recs
        .iter()
        .find(|r| r["event"] == "action_result" && r["action"] == "stepdown@cluster")
        .expect("the stepdown's reply");
    assert!(
        stepdown["stdout"]
            .as_str()
            .unwrap_or("")
            .contains("\"success\":true"),
        "{stepdown}"
    );
    assert_ne!(
        lab.wait_leader(Duration::from_secs(30)),
        before,
        "the stepdown did not move the leader"
    );

    for n in lab.node_names() {
        ns_ok(&lab, &n, &format!("iptables -D {client_rule}"));
    }

    // 3. The system password is in no journal and no output.
    assert_secret_absent(&password, &[sdir.clone(), rdir.clone()], &outputs);
    lab.down();
}
