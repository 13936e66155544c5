//! The lab against real servers (root: network namespaces, sshd, nats-server 2.9.10 and
//! 2.15.x): up, seed, every fault with its signature from the monitoring endpoints, heal, down.
//! One lab per server version is shared by all fault checks to keep the suite short.

use crate::support::lab::{
    legacy_server, modern_server, nats_rescue_cmd, nats_rescue_command, require_root, text, Lab,
};
use nats_rescue::lab::{faults, monitor, server};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn lab_fault_tour_nats_2_15() {
    fault_tour(&modern_server(), "2.15");
}

#[test]
fn lab_fault_tour_nats_2_9() {
    fault_tour(&legacy_server(), "2.9.10");
}

#[test]
fn lab_refuses_without_root() {
    require_root(); // the test itself needs root to drop to another user
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("lab").to_string_lossy().into_owned();
    let o = nats_rescue_command(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &["lab", "up", "--dir", &d],
    )
    .output()
    .expect("setpriv");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("needs root"), "{t}");
    assert!(!Path::new(&d).exists(), "nothing may be made without root");
}

#[test]
fn lab_commands_without_a_lab_are_usage_errors() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("nolab").to_string_lossy().into_owned();
    let o = nats_rescue_cmd(&["lab", "status", "--dir", &d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no lab in"), "{}", text(&o));
    // missing tools are named with the way to install them; nothing is made
    let o = nats_rescue_cmd(&[
        "lab",
        "up",
        "--dir",
        &d,
        "--nats-server",
        "/nonexistent/nats-server",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("scripts/setup.sh"), "{}", text(&o));
    assert!(
        !Path::new(&d).exists(),
        "nothing may be made when a tool is missing"
    );
    // down is idempotent: nothing recorded, nothing to do
    let o = nats_rescue_cmd(&["lab", "down", "--dir", &d]);
    assert!(o.status.success(), "{}", text(&o));
}

fn ctl_status(lab: &Lab, node: &str) -> i32 {
    let st = lab.state();
    let n = st.node(node).expect("node");
    std::process::Command::new(&n.ctl)
        .arg("status")
        .output()
        .expect("ctl")
        .status
        .code()
        .unwrap_or(-1)
}

fn step(label: &str, t0: Instant, what: &str) {
    eprintln!("[{label} +{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
}

fn heal(lab: &Lab, label: &str, t0: Instant) {
    let out = lab.lab_ok("heal", &[]);
    let all = lab.node_names();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let (l, _) = lab.wait_for(
        "an agreed meta leader after heal",
        Duration::from_secs(60),
        || lab.agreed_leader(&all),
    );
    assert!(lab.state().faults.is_empty(), "heal must forget the faults");
    step(
        label,
        t0,
        &format!(
            "healed, leader {l}: {}",
            out.lines().find(|l| l.contains("healed")).unwrap_or("")
        ),
    );
}

fn fault_tour(server_bin: &Path, label: &str) {
    require_root();
    let t0 = Instant::now();
    let lab = Lab::up(server_bin, 3);
    step(
        label,
        t0,
        &format!(
            "lab `{}` up on 10.{}.0/24, leader after {:.2}s",
            lab.name, lab.subnet, lab.up_to_leader
        ),
    );
    let all = ["n1", "n2", "n3"];
    let (leader, _) = lab.wait_for("an agreed meta leader", Duration::from_secs(30), || {
        lab.agreed_leader(&all)
    });

    // The inventory loads and describes the lab.
    let inv =
        nats_rescue::inventory::Inventory::load(&lab.inventory).expect("the lab inventory loads");
    assert_eq!(inv.cluster, "lab");
    assert_eq!(inv.nodes.len(), 3);
    assert_eq!(inv.nodes[1].host, lab.addr("n2"));
    assert_eq!(inv.nodes[0].nats.system_account, "SYS");

    // SSH with the operator key and a strict known_hosts; commands run inside the namespace and
    // the inventory's service commands work there.
    let o = lab.ssh(
        "n2",
        &format!("ip netns identify; {}", inv.nodes[1].nats.service.status),
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!("{}-n2", lab.name)) && t.contains("active"),
        "{t}"
    );

    // A second lab on the same names or addresses is refused.
    let other = tempfile::tempdir().expect("tempdir");
    let od = other.path().join("lab").to_string_lossy().into_owned();
    let o = nats_rescue_cmd(&[
        "lab",
        "up",
        "--dir",
        &od,
        "--name",
        &lab.name,
        "--subnet",
        &lab.subnet,
        "--nats-server",
        &server_bin.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("refusing"), "{}", text(&o));

    lab.lab_ok("seed", &["--messages", "100"]);
    assert_eq!(lab.stream_messages(), 100);
    let status = lab.lab_ok("status", &[]);
    assert!(
        status.contains("stream ORDERS: 100 messages") && status.contains("faults: none"),
        "{status}"
    );
    step(label, t0, "seeded 100 messages");

    // partition: the leader is cut off; it cannot reach a peer's cluster port, the majority elects.
    lab.lab_ok("break", &["partition", &leader]);
    let others: Vec<&str> = all.iter().copied().filter(|n| *n != leader).collect();
    let peer = lab.addr(others[0]);
    let o = lab.in_ns(
        &leader,
        &format!("timeout 3 bash -c '</dev/tcp/{peer}/6222'"),
    );
    assert!(
        !o.status.success(),
        "the isolated node still reaches {peer}:6222"
    );
    let o = lab.in_ns(
        others[1],
        &format!("timeout 3 bash -c '</dev/tcp/{peer}/6222'"),
    );
    assert!(
        o.status.success(),
        "the majority must still reach each other: {}",
        text(&o)
    );
    assert_eq!(
        lab.state().iptables.len(),
        4,
        "the exact rules are recorded"
    );
    let (nl, took) = lab.wait_for(
        "the majority agrees on a leader other than the isolated node",
        Duration::from_secs(40),
        || lab.agreed_leader(&others).filter(|l| *l != leader),
    );
    step(
        label,
        t0,
        &format!(
            "partition of {leader}: majority elected {nl} in {:.1}s",
            took.as_secs_f64()
        ),
    );
    heal(&lab, label, t0);
    let rules = lab.in_ns(&leader, "iptables -S");
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("DROP"),
        "rules left: {}",
        text(&rules)
    );
    assert!(lab.state().iptables.is_empty());

    // frozen: the process exists in state T; its monitoring port does not answer.
    let leader = lab.agreed_leader(&all).expect("leader");
    lab.lab_ok("break", &["frozen"]);
    let st = lab.state();
    let n = st.node(&leader).expect("node");
    let pid = server::read_pid(&n.server_pidfile).expect("pid");
    assert_eq!(
        server::proc_state(pid),
        Some('T'),
        "the frozen server is stopped (T)"
    );
    assert!(
        monitor::http_get(&n.addr, 8222, "/varz", Duration::from_secs(2)).is_err(),
        "a frozen server must not answer"
    );
    assert_eq!(
        ctl_status(&lab, &leader),
        0,
        "a frozen server still counts as running"
    );
    let status = lab.lab_ok("status", &[]);
    assert!(
        status.contains(&format!("frozen pid {pid}")) && status.contains("fault: frozen"),
        "{status}"
    );
    step(
        label,
        t0,
        &format!("frozen {leader} (pid {pid}): state T, monitor silent"),
    );
    heal(&lab, label, t0);

    // dns: inside every namespace the peers' names no longer resolve (also over SSH); no routes.
    lab.lab_ok("break", &["dns"]);
    for node in all {
        let o = lab.in_ns(node, "getent hosts n2");
        assert!(
            !o.status.success(),
            "{node}: n2 still resolves: {}",
            text(&o)
        );
    }
    let o = lab.ssh("n1", "getent hosts n3");
    assert!(
        !o.status.success(),
        "over SSH n3 still resolves: {}",
        text(&o)
    );
    lab.wait_for(
        "no leader and no routes anywhere (dns)",
        Duration::from_secs(30),
        || {
            all.iter()
                .all(|n| lab.leader_seen_by(n).is_none() && num_routes(&lab, n) == Some(0))
                .then_some(())
        },
    );
    step(label, t0, "dns: names do not resolve, no routes, no leader");
    heal(&lab, label, t0);
    assert!(lab.in_ns("n1", "getent hosts n2").status.success());

    // bad-routes: every config points at a dead port; num_routes 0 and no leader.
    lab.lab_ok("break", &["bad-routes"]);
    let conf =
        std::fs::read_to_string(&lab.state().node("n1").expect("n1").config).expect("config");
    assert!(
        conf.contains(&format!(":{}\"", faults::BAD_ROUTE_PORT)),
        "{conf}"
    );
    lab.wait_for(
        "num_routes 0 and no leader everywhere (bad-routes)",
        Duration::from_secs(30),
        || {
            all.iter()
                .all(|n| lab.leader_seen_by(n).is_none() && num_routes(&lab, n) == Some(0))
                .then_some(())
        },
    );
    step(label, t0, "bad-routes: num_routes 0, no leader");
    heal(&lab, label, t0);
    let conf =
        std::fs::read_to_string(&lab.state().node("n1").expect("n1").config).expect("config");
    assert!(
        !conf.contains(&format!(":{}\"", faults::BAD_ROUTE_PORT)),
        "config not restored: {conf}"
    );

    // quorum-loss: all but n1 killed; the survivor loses its leader.
    lab.lab_ok("break", &["quorum-loss"]);
    assert_eq!(ctl_status(&lab, "n2"), 3);
    assert_eq!(ctl_status(&lab, "n3"), 3);
    let (_, took) = lab.wait_for(
        "the survivor n1 reports no meta leader",
        Duration::from_secs(40),
        || {
            lab.jsz("n1")
                .filter(|j| monitor::leader_of(j).is_none())
                .map(|_| ())
        },
    );
    step(
        label,
        t0,
        &format!(
            "quorum-loss: survivor leaderless after {:.1}s",
            took.as_secs_f64()
        ),
    );
    heal(&lab, label, t0);
    assert_eq!(lab.stream_messages(), 100, "the data survived quorum loss");

    // diverged: all stopped; the stale node's term/index on disk differ from the others'.
    lab.lab_ok("break", &["diverged"]);
    for node in all {
        assert_eq!(ctl_status(&lab, node), 3, "{node} must be stopped");
    }
    let st = lab.state();
    let terms: Vec<Option<u64>> = st
        .nodes
        .iter()
        .map(|n| faults::meta_term(&n.store_dir))
        .collect();
    assert!(
        terms.iter().all(Option::is_some),
        "tav.idx readable on every node: {terms:?}"
    );
    assert!(
        terms.iter().any(|t| *t != terms[0]),
        "terms must differ: {terms:?}"
    );
    step(
        label,
        t0,
        &format!("diverged: all stopped, meta terms on disk {terms:?}"),
    );
    heal(&lab, label, t0);
    assert_eq!(lab.stream_messages(), 100, "the data survived");

    let st = lab.state();
    lab.down();
    step(label, t0, &format!("lab `{}` down, nothing left", st.name));
}

fn num_routes(lab: &Lab, node: &str) -> Option<u64> {
    lab.monitor(node, "/varz")
        .and_then(|v| v.get("routes").and_then(serde_json::Value::as_u64))
}
