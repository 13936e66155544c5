//! One SSH round per node: `status` and `diagnose` send each node exactly one command (the
//! probe), whatever the cluster's state. Counted on the nodes themselves: the lab's sshd logs
//! `Starting session: command ...` once per command it runs (LogLevel VERBOSE).

use crate::support::lab::{modern_server, nats_rescue_cmd, text, Lab};
use std::collections::BTreeMap;

/// Commands each node's sshd has started so far.
pub(crate) fn commands_per_node(lab: &Lab) -> BTreeMap<String, usize> {
    lab.state()
        .nodes
        .iter()
        .map(|n| {
            let log = std::fs::read_to_string(n.node_dir.join("sshd.log")).unwrap_or_default();
            let count = log
                .lines()
                .filter(|l| l.contains("Starting session: command"))
                .count();
            (n.name.clone(), count)
        })
        .collect()
}

/// Runs `nats-rescue -i INV ARGS` and returns how many commands each node received.
fn rounds(lab: &Lab, args: &[&str], want_code: i32) -> BTreeMap<String, usize> {
    let before = commands_per_node(lab);
    let inv = lab.inventory.to_string_lossy().into_owned();
    let mut all = vec!["-i", inv.as_str()];
    all.extend_from_slice(args);
    let o = nats_rescue_cmd(&all);
    assert_eq!(o.status.code(), Some(want_code), "{args:?}\n{}", text(&o));
    let after = commands_per_node(lab);
    after
        .into_iter()
        .map(|(n, c)| {
            let b = before.get(&n).copied().unwrap_or(0);
            (n, c - b)
        })
        .collect()
}

fn assert_one_each(what: &str, got: &BTreeMap<String, usize>, nodes: &[String]) {
    assert_eq!(got.len(), nodes.len(), "{what}: {got:?}");
    for n in nodes {
        assert_eq!(
            got.get(n),
            Some(&1),
            "{what}: {n} received {:?} SSH commands, want exactly 1 (all: {got:?})",
            got.get(n)
        );
    }
}

#[test]
fn status_and_diagnose_send_one_command_per_node_healthy_and_broken() {
    let lab = Lab::up(&modern_server(), 3);
    let nodes = lab.node_names();
    // The log must count what it claims to: a direct command shows up once.
    let before = commands_per_node(&lab);
    let o = lab.ssh("n1", "true");
    assert!(o.status.success(), "{}", text(&o));
    let after = commands_per_node(&lab);
    assert_eq!(
        after["n1"],
        before["n1"] + 1,
        "sshd.log does not count commands"
    );

    assert_one_each("status (healthy)", &rounds(&lab, &["status"], 0), &nodes);
    assert_one_each(
        "diagnose (healthy)",
        &rounds(&lab, &["diagnose"], 0),
        &nodes,
    );
    assert_one_each(
        "diagnose --json (healthy)",
        &rounds(&lab, &["--json", "diagnose"], 0),
        &nodes,
    );
    // A partitioned node: network-partition's firewall listing comes from the probe too.
    lab.lab_ok("break", &["partition", "n3"]);
    assert_one_each(
        "diagnose (partition)",
        &rounds(&lab, &["diagnose"], 1),
        &nodes,
    );
    lab.lab_ok("heal", &[]);
    lab.lab_ok("break", &["quorum-loss"]);
    assert_one_each(
        "status (quorum lost)",
        &rounds(&lab, &["status"], 1),
        &nodes,
    );
    assert_one_each(
        "diagnose (quorum lost)",
        &rounds(&lab, &["diagnose"], 1),
        &nodes,
    );
    lab.down();
}
