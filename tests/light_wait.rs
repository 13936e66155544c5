//! Light waits (issue #17 part 2): while a verify step waits for a leader, nats-rescue polls
//! the servers' `/jsz` over HTTP and sends no SSH command; it runs the full probe once when a
//! leader is there. Counted on the nodes: SSH commands in the lab sshd's log (LogLevel
//! VERBOSE, as in `rounds`), HTTP requests in n1's own `/varz` `http_req_stats`.

use crate::rounds::commands_per_node;
use crate::support::lab::{modern_server, nats_rescue_command, text, Lab};
use std::collections::BTreeMap;
use std::time::Duration;

/// `/jsz` requests n1 has answered so far (its own counter; n1 is never killed here).
fn jsz_requests(lab: &Lab) -> u64 {
    let v = lab.monitor("n1", "/varz").expect("n1 /varz");
    v["http_req_stats"]["/jsz"]
        .as_u64()
        .expect("http_req_stats./jsz")
}

fn diff(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    b.iter()
        .map(|(n, c)| (n.clone(), c - a.get(n).copied().unwrap_or(0)))
        .collect()
}

/// Quorum lost and noticed by the survivor (a surviving leader can take ~30 s to step down).
fn lose_quorum(lab: &Lab) {
    lab.lab_ok("break", &["quorum-loss"]);
    lab.wait_for("n1 to lose its leader", Duration::from_secs(90), || {
        lab.leader_seen_by("n1").is_none().then_some(())
    });
}

/// Runs a one-step runbook waiting for `until` (every 250 ms) while quorum is lost; the
/// servers are started (inside their namespaces, not over SSH) 3 s into the wait. Returns
/// the SSH commands per node and n1's `/jsz` requests during the run.
fn wait_through_recovery(lab: &Lab, until: &str) -> (BTreeMap<String, usize>, u64) {
    lose_quorum(lab);
    let rb = lab.dir.join("wait-leader.yaml");
    std::fs::write(
        &rb,
        format!(
            "id: wait-leader\ntitle: Wait for a leader\ncause: insufficient-nodes\nsteps:\n  - id: leader\n    kind: verify\n    wait_until: {until:?}\n    timeout: 90s\n    interval: 250ms\n"
        ),
    )
    .unwrap();
    let ssh_before = commands_per_node(lab);
    let http_before = jsz_requests(lab);
    let inv = lab.inventory.to_string_lossy().into_owned();
    let rbs = rb.to_string_lossy().into_owned();
    let child = nats_rescue_command(&[], &["-i", &inv, "run", &rbs, "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    lab.lab_ok("heal", &[]);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ssh = diff(&ssh_before, &commands_per_node(lab));
    (ssh, jsz_requests(lab) - http_before)
}

#[test]
fn leader_wait_polls_jsz_not_ssh_and_probes_once_when_it_holds() {
    let lab = Lab::up(&modern_server(), 3);
    let nodes = lab.node_names();
    lab.wait_for("a leader", Duration::from_secs(60), || {
        lab.agreed_leader(&["n1", "n2", "n3"])
    });

    // Light: at least 3 s of polls every 250 ms went to /jsz; SSH saw the full probe once
    // (when the leader was there), and nothing else.
    let (ssh, jsz) = wait_through_recovery(&lab, "facts.has_leader");
    eprintln!("light wait: SSH commands {ssh:?}, n1 /jsz requests {jsz}");
    for n in &nodes {
        assert_eq!(
            ssh.get(n),
            Some(&1),
            "light wait: {n} received {:?} SSH commands, want 1 (all: {ssh:?}, n1 /jsz: {jsz})",
            ssh.get(n)
        );
    }
    assert!(jsz >= 8, "light wait: n1 answered only {jsz} /jsz requests");

    // The same wait over a fact only the SSH probe knows polls in full: the counter sees it.
    let (ssh, jsz) = wait_through_recovery(&lab, "facts.has_leader and facts.down | length == 0");
    eprintln!("full wait: SSH commands {ssh:?}, n1 /jsz requests {jsz}");
    assert!(
        ssh["n1"] >= 8,
        "full wait: n1 received only {} SSH commands in 3+ s of 250 ms polls ({ssh:?})",
        ssh["n1"]
    );
    lab.down();
}

#[test]
fn insufficient_nodes_recovery_probes_a_bounded_number_of_times() {
    let lab = Lab::up(&modern_server(), 3);
    lab.wait_for("a leader", Duration::from_secs(60), || {
        lab.agreed_leader(&["n1", "n2", "n3"])
    });
    lose_quorum(&lab);
    let before = commands_per_node(&lab);
    let inv = lab.inventory.to_string_lossy().into_owned();
    let o = nats_rescue_command(&[], &["-i", &inv, "run", "insufficient-nodes", "--yes"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ssh = diff(&before, &commands_per_node(&lab));
    eprintln!("insufficient-nodes: SSH commands {ssh:?}");
    // Whatever the election takes: the probe before the plan, one when the leader wait held
    // and one when the health wait held; n2 and n3 also get the idempotent start (status
    // before, start, status after). Polling in full, each second of waiting added one more.
    assert!(ssh["n1"] <= 3, "n1: {ssh:?}\n{}", text(&o));
    for n in ["n2", "n3"] {
        assert!(ssh[n] <= 6, "{n}: {ssh:?}\n{}", text(&o));
    }
    // And the cluster is healthy for the user's own eyes: one agreed leader.
    lab.wait_for("an agreed leader", Duration::from_secs(30), || {
        lab.agreed_leader(&["n1", "n2", "n3"])
    });
    lab.down();
}
