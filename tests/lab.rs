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

    lab.lab_ok("seed", &["--messages", "60"]);
    assert_eq!(lab.stream_messages(), 60);
    // --fresh: the stream is deleted and created anew, so 100 messages, not 160.
    let out = lab.lab_ok("seed", &["--fresh", "--messages", "100"]);
    assert!(out.contains("stream ORDERS deleted"), "{out}");
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

// ---- production shapes and the turn-2 faults -------------------------------------------------

/// `ip netns exec NS bash -c '</dev/tcp/ADDR/PORT'` from `from`'s namespace, bounded: true when
/// the TCP connection opens within 2 s.
fn tcp_open(lab: &Lab, from: &str, addr: &str, port: u16) -> bool {
    tcp_within(lab, from, addr, port, 2)
}

/// The port does not accept a connection within 1 s (dropped packets never answer: the wait
/// is the signal, so keep it short).
fn tcp_blocked(lab: &Lab, from: &str, addr: &str, port: u16) -> bool {
    !tcp_within(lab, from, addr, port, 1)
}

fn tcp_within(lab: &Lab, from: &str, addr: &str, port: u16, secs: u32) -> bool {
    lab.in_ns(
        from,
        &format!("timeout {secs} bash -c '</dev/tcp/{addr}/{port}' 2>/dev/null"),
    )
    .status
    .success()
}

/// An HTTP GET through a shell on `host` (bash `/dev/tcp`), over SSH as the inventory says.
fn get_via_ssh(lab: &Lab, host: &str, addr: &str, path: &str) -> String {
    let o = lab.ssh_cfg(
        host,
        &[],
        &format!(
            "timeout 3 bash -c 'exec 3<>/dev/tcp/{addr}/8222; printf \"GET {path} HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'"
        ),
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Every production option at once on 2.15 (SSH user with sudo, bastion, route auth,
/// accounts, Helm-style configs), then a flap of a node's SSH.
#[test]
fn lab_production_shape_nats_2_15() {
    require_root();
    let label = "shape 2.15";
    let t0 = Instant::now();
    let lab = Lab::up_with(
        &modern_server(),
        3,
        &[
            "--ssh-user",
            "{name}op",
            "--route-auth",
            "--accounts",
            "--bastion",
            "--config-style",
            "helm",
        ],
    );
    let st = lab.state();
    let user = st.ssh_user.clone().expect("ssh user recorded").name;
    let bastion = st.bastion.clone().expect("bastion recorded");
    let route_pw = st.route_auth.clone().expect("route auth recorded").password;
    step(
        label,
        t0,
        &format!(
            "lab up (user {user}, bastion {}) leader after {:.2}s",
            bastion.addr, lab.up_to_leader
        ),
    );

    // The inventory describes the shape.
    let inv = nats_rescue::inventory::Inventory::load(&lab.inventory).expect("inventory loads");
    let n1 = &inv.nodes[0];
    assert_eq!(n1.ssh.user, user);
    assert!(n1.ssh.sudo);
    assert_eq!(
        nats_rescue::inventory::format_proxy_jump(&n1.ssh.proxy_jump),
        format!("{user}@{}", bastion.addr)
    );
    assert_eq!(n1.nats.monitor, nats_rescue::inventory::MonitorMode::Ssh);
    assert_eq!(n1.nats.cluster_host.as_deref(), Some("n1"));
    let sys = n1.nats.system_user.as_ref().expect("system_user");
    assert_eq!(sys.password(), Some(st.sys_password.as_str()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&lab.inventory)
        .expect("inventory")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the inventory holds a password: 0600");

    // --ssh-user: SSH as the user (through the bastion) works, sudo -n works, the ctl script
    // and the store are root's.
    let ctl = st
        .node("n1")
        .expect("n1")
        .ctl
        .to_string_lossy()
        .into_owned();
    let store = st
        .node("n1")
        .expect("n1")
        .store_dir
        .to_string_lossy()
        .into_owned();
    let o = lab.ssh_cfg(
        "n1",
        &[],
        "id -un; ip netns identify; sudo -n true && echo sudo-ok",
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        vec![user.as_str(), &format!("{}-n1", lab.name), "sudo-ok"],
        "{t}"
    );
    assert!(!t.contains("unable to resolve host"), "{t}");
    let o = lab.ssh_cfg("n1", &[], &format!("{ctl} status"));
    assert_eq!(
        o.status.code(),
        Some(126),
        "ctl must not run without sudo: {}",
        text(&o)
    );
    let o = lab.ssh_cfg("n1", &[], &format!("ls {store}"));
    assert!(
        !o.status.success(),
        "the store must not be readable without sudo: {}",
        text(&o)
    );
    let o = lab.ssh_cfg(
        "n1",
        &[],
        &format!("sudo -n {ctl} status && sudo -n ls {store}"),
    );
    assert!(
        o.status.success() && stdout(&o).contains("active") && stdout(&o).contains("jetstream"),
        "{}",
        text(&o)
    );
    let o = lab.ssh_cfg("n2", &["User=root"], "true");
    assert!(!o.status.success(), "root may not log in: {}", text(&o));
    step(
        label,
        t0,
        "ssh user: login, sudo -n, root-only ctl and store, no root login",
    );

    // --bastion: a node's SSH and monitoring do not answer from here; through the bastion they do.
    let a1 = lab.addr("n1");
    let o = lab.ssh_cfg("n1", &["ProxyJump=none", "ConnectTimeout=1"], "true");
    assert!(!o.status.success(), "direct SSH must fail: {}", text(&o));
    assert!(text(&o).contains("timed out"), "{}", text(&o));
    assert!(
        monitor::http_get(&a1, 8222, "/varz", Duration::from_secs(1)).is_err(),
        "direct monitoring must not answer"
    );
    let varz = get_via_ssh(&lab, "bastion", &a1, "/varz");
    assert!(
        varz.contains("\"server_name\": \"n1\""),
        "via the bastion: {varz}"
    );
    let varz = get_via_ssh(&lab, "n1", &a1, "/varz");
    assert!(
        varz.contains("\"server_name\": \"n1\""),
        "on the node itself: {varz}"
    );
    // The cluster and client ports stay open between nodes.
    assert!(tcp_open(&lab, "n2", &a1, 6222));
    assert!(tcp_open(&lab, "n2", &a1, 4222));
    assert!(
        tcp_blocked(&lab, "n2", &a1, 22),
        "a node is no jump host for another"
    );
    step(
        label,
        t0,
        "bastion: direct SSH/monitoring blocked, through the bastion fine",
    );

    // --route-auth: routes are up with the per-lab password, which is in every config and
    // lab.json and was never printed.
    for n in ["n1", "n2", "n3"] {
        let conf = std::fs::read_to_string(&st.node(n).expect("node").config).expect("config");
        assert!(
            conf.contains(&format!("\"password\": \"{route_pw}\"")),
            "{conf}"
        );
        assert!(
            conf.contains(&format!("\"nats://route:{route_pw}@{n}:6222\"")),
            "routes list the server itself: {conf}"
        );
    }
    assert!(std::fs::read_to_string(lab.dir.join("lab.json"))
        .expect("lab.json")
        .contains(&route_pw));
    assert!(!lab.up_output.contains(&route_pw), "{}", lab.up_output);
    let routes = lab
        .monitor("n1", "/varz")
        .and_then(|v| v["routes"].as_u64());
    assert!(routes.unwrap_or(0) >= 2, "routes up: {routes:?}");

    // --config-style helm: both servers accept the config with SERVER_NAME set, neither without.
    let conf = st.node("n2").expect("n2").config.clone();
    for bin in [modern_server(), legacy_server()] {
        let ok = std::process::Command::new(&bin)
            .args(["-t", "-c"])
            .arg(&conf)
            .env("SERVER_NAME", "n2")
            .output()
            .expect("nats-server -t");
        assert!(ok.status.success(), "{}: {}", bin.display(), text(&ok));
        let bad = std::process::Command::new(&bin)
            .args(["-t", "-c"])
            .arg(&conf)
            .env_remove("SERVER_NAME")
            .output()
            .expect("nats-server -t");
        assert!(
            !bad.status.success() && text(&bad).contains("SERVER_NAME"),
            "{}",
            text(&bad)
        );
    }
    assert_eq!(
        lab.monitor("n2", "/varz")
            .and_then(|v| v["server_name"].as_str().map(String::from)),
        Some("n2".into()),
        "server_name comes from $SERVER_NAME"
    );

    // --accounts: no anonymous clients; the inventory's system user reaches the system account;
    // seed writes as the application user.
    let anon =
        nats_rescue::lab::natsclient::Client::connect(&a1, 4222, None, Duration::from_secs(2));
    assert!(anon.is_err(), "an anonymous client must be refused");
    let mut c = nats_rescue::lab::natsclient::Client::connect(
        &a1,
        4222,
        Some((&sys.user, sys.password().expect("password"))),
        Duration::from_secs(2),
    )
    .expect("system user connects");
    let m = c
        .request("$SYS.REQ.SERVER.PING", b"", Duration::from_secs(3))
        .expect("a server answers the system account");
    assert!(String::from_utf8_lossy(&m.payload).contains("\"server\""));
    lab.lab_ok("seed", &["--messages", "20"]);
    assert_eq!(lab.stream_messages(), 20);
    step(
        label,
        t0,
        "route auth, helm config (-t on both versions), accounts, seed",
    );

    let status = lab.lab_ok("status", &[]);
    assert!(
        status.contains(&format!("bastion {}", bastion.addr)),
        "{status}"
    );
    assert!(status.contains(&format!("ssh user: {user}")), "{status}");
    assert!(
        status.contains(
            "firewall: SSH and monitoring of every node answer only the bastion (18 rules)"
        ),
        "{status}"
    );

    // flap: n2's SSH drops for 3 s and comes back by itself; `lab break` returns at once.
    let t = Instant::now();
    let out = lab.lab_ok("break", &["flap", "n2", "3", "ssh"]);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "flap must return at once: {out}"
    );
    let o = lab.ssh_cfg("n2", &["ConnectTimeout=1"], "true");
    assert!(!o.status.success(), "SSH during the flap: {}", text(&o));
    let (_, took) = lab.wait_for("SSH to n2 after the flap", Duration::from_secs(15), || {
        lab.ssh_cfg("n2", &["ConnectTimeout=1"], "true")
            .status
            .success()
            .then_some(())
    });
    assert!(t.elapsed() >= Duration::from_secs(3), "back too early");
    step(
        label,
        t0,
        &format!(
            "flap ssh 3s: back {:.1}s after it began",
            t.elapsed().as_secs_f64()
        ),
    );
    let _ = took;
    let status = lab.lab_ok("status", &[]);
    assert!(status.contains("fault: flap on n2 (ssh, over"), "{status}");
    heal(&lab, label, t0);
    // The bastion's own rules survive the flap and the heal.
    let o = lab.ssh_cfg("n2", &["ProxyJump=none", "ConnectTimeout=1"], "true");
    assert!(
        !o.status.success(),
        "direct SSH must still fail: {}",
        text(&o)
    );
    assert!(lab.ssh_cfg("n2", &[], "true").status.success());

    // A flap still waiting when the lab goes down: down stops its restorer (assert_nothing_left
    // looks for any process naming the lab directory) and the namespaces go.
    lab.lab_ok("break", &["flap", "n3", "60", "cluster"]);
    lab.down();
    step(
        label,
        t0,
        &format!("down: user {user}, sudoers, bastion and namespaces gone"),
    );
}

#[test]
fn lab_five_node_faults_nats_2_15() {
    five_node_tour(
        &modern_server(),
        "5x2.15",
        &["--config-style", "helm"],
        "all",
    );
}

#[test]
fn lab_five_node_faults_nats_2_9() {
    five_node_tour(&legacy_server(), "5x2.9.10", &[], "cluster");
}

/// The meta group's view from its leader: (leader, cluster_size, replica names).
fn meta_view(lab: &Lab, nodes: &[String]) -> Option<(String, u64, Vec<String>)> {
    let leader = lab.agreed_leader(&nodes.iter().map(String::as_str).collect::<Vec<_>>())?;
    let j = lab.jsz(&leader)?;
    let m = &j["meta_cluster"];
    let names = m["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();
    Some((leader, m["cluster_size"].as_u64()?, names))
}

/// stream-quorum, rename, destroy and flap on 5 nodes with route auth and accounts.
fn five_node_tour(server_bin: &Path, label: &str, style: &[&str], flap: &str) {
    require_root();
    let t0 = Instant::now();
    let mut opts = vec!["--route-auth", "--accounts"];
    opts.extend_from_slice(style);
    let lab = Lab::up_with(server_bin, 5, &opts);
    let all = lab.node_names();
    step(
        label,
        t0,
        &format!("5 nodes up, leader after {:.2}s", lab.up_to_leader),
    );
    lab.lab_ok("seed", &["--messages", "50"]);

    // stream-quorum: two of ORDERS' three servers killed; the stream has no leader, the meta
    // group keeps one.
    let out = lab.lab_ok("break", &["stream-quorum"]);
    let st = lab.state();
    let killed = st.faults[0].nodes();
    assert_eq!(killed.len(), 2, "{out}");
    let alive: Vec<String> = all
        .iter()
        .filter(|n| !killed.contains(n))
        .cloned()
        .collect();
    for n in &killed {
        assert_eq!(ctl_status(&lab, n), 3, "{n} must be down");
    }
    let (survivor, took) = lab.wait_for(
        "a surviving replica of ORDERS without a stream leader, while the meta group has one",
        Duration::from_secs(40),
        || {
            lab.agreed_leader(&alive.iter().map(String::as_str).collect::<Vec<_>>())?;
            alive.iter().find_map(|n| {
                let j = lab.monitor(n, "/jsz?accounts=true&streams=true")?;
                let s = faults::streams_named(&j, "ORDERS")
                    .into_iter()
                    .next()?
                    .clone();
                s["cluster"].get("leader").is_none().then(|| n.clone())
            })
        },
    );
    step(
        label,
        t0,
        &format!(
            "stream-quorum: killed {killed:?}; {survivor}'s ORDERS has no leader after {:.1}s, meta leader kept",
            took.as_secs_f64()
        ),
    );
    heal(&lab, label, t0);
    assert_eq!(lab.stream_messages(), 50);

    // rename: one server comes back as <name>b; the old name stays in the meta peer set. A
    // server without a replica of ORDERS: a renamed server drops the replicas it holds (they
    // are not assigned to the new name), and 2.9.10 never refills them after the name returns.
    let holders = faults::stream_servers(&lab.state(), "ORDERS").expect("ORDERS servers");
    let leader = lab
        .agreed_leader(&all.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("leader");
    let target = all
        .iter()
        .rev()
        .find(|n| !holders.contains(*n) && **n != leader)
        .expect("a server without ORDERS")
        .clone();
    let out = lab.lab_ok("break", &["rename", &target]);
    let st = lab.state();
    let renamed = st
        .nodes
        .iter()
        .find(|n| n.server_name.is_some())
        .expect("a renamed node");
    let (old, new) = (renamed.name.clone(), renamed.server_name().to_string());
    assert_eq!(new, format!("{old}b"), "{out}");
    let inv = nats_rescue::inventory::Inventory::load(&lab.inventory).expect("inventory");
    assert!(
        inv.node(&new).is_some() && inv.node(&old).is_none(),
        "inventory rewritten"
    );
    let (view, _) = lab.wait_for(
        "the meta leader lists both the old and the new name (6 peers)",
        Duration::from_secs(30),
        || {
            let v = meta_view(&lab, &all)?;
            (v.1 == 6 && v.2.contains(&old) && v.2.contains(&new)).then_some(v)
        },
    );
    assert_eq!(
        lab.monitor(&old, "/varz")
            .and_then(|v| v["server_name"].as_str().map(String::from)),
        Some(new.clone())
    );
    step(
        label,
        t0,
        &format!(
            "rename {old} -> {new}: meta leader {} sees {:?} (size {})",
            view.0, view.2, view.1
        ),
    );
    heal(&lab, label, t0);
    let (view, _) = lab.wait_for(
        "the stale name peer-removed after heal (5 peers)",
        Duration::from_secs(30),
        || meta_view(&lab, &all).filter(|v| v.1 == 5 && !v.2.contains(&new)),
    );
    assert!(lab.state().nodes.iter().all(|n| n.server_name.is_none()));
    let inv = nats_rescue::inventory::Inventory::load(&lab.inventory).expect("inventory");
    assert!(inv.node(&old).is_some(), "inventory back to {old}");
    step(label, t0, &format!("rename healed: peers {:?}", view.2));

    // destroy: the host is gone (no server, no data, no SSH, no traffic); heal leaves it so.
    let leader = lab
        .agreed_leader(&all.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("leader");
    let victim = all
        .iter()
        .rev()
        .find(|n| holders.contains(*n) && **n != leader)
        .expect("a replica of ORDERS that does not lead the meta group")
        .clone();
    lab.lab_ok("break", &["destroy", &victim]);
    let st = lab.state();
    let v = st.node(&victim).expect("victim");
    assert!(!v.store_dir.exists(), "data dir deleted");
    assert_eq!(ctl_status(&lab, &victim), 3);
    let peer = all.iter().find(|n| **n != victim).expect("peer");
    assert!(tcp_blocked(&lab, peer, &v.addr, 22), "sshd gone / dropped");
    assert!(tcp_blocked(&lab, peer, &v.addr, 6222), "traffic dropped");
    let rest: Vec<String> = all.iter().filter(|n| **n != victim).cloned().collect();
    let out = lab.lab_ok("heal", &[]);
    assert!(out.contains(&format!("destroyed: {victim}")), "{out}");
    assert_eq!(
        lab.state().destroyed(),
        vec![victim.clone()],
        "the loss is permanent"
    );
    assert!(!v.store_dir.exists(), "heal does not bring data back");
    lab.wait_for("a leader among the others", Duration::from_secs(30), || {
        lab.agreed_leader(&rest.iter().map(String::as_str).collect::<Vec<_>>())
    });
    step(
        label,
        t0,
        &format!("destroy {victim}: gone, heal keeps it destroyed"),
    );
    lab.lab_ok("heal", &["--rebuild-destroyed"]);
    assert!(lab.state().faults.is_empty());
    assert!(v.store_dir.exists(), "an empty data dir again");
    lab.wait_for(
        "all 5 agree on a leader after the rebuild",
        Duration::from_secs(60),
        || lab.agreed_leader(&all.iter().map(String::as_str).collect::<Vec<_>>()),
    );
    assert!(tcp_open(&lab, peer, &v.addr, 22), "sshd back");
    // The meta leader is agreed before ORDERS has settled on its own leader after the
    // rebuild (2.9.10 answered 0 once, in CI-like conditions, right after the meta
    // agreement): the data must be served within the wait, or it did not survive.
    let t = std::time::Instant::now();
    let last = loop {
        let n = nats_rescue::lab::stream_messages(&lab.dir, "ORDERS");
        if matches!(n, Ok(50)) || t.elapsed() > Duration::from_secs(30) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        matches!(last, Ok(50)),
        "R3 data survived one destroyed replica: ORDERS answers {last:?}, not 50 messages"
    );
    step(
        label,
        t0,
        &format!("rebuilt {victim} with an empty data dir"),
    );

    // flap: the port(s) drop for 2 s and come back by themselves.
    let (probe_port, from) = match flap {
        "all" => (4222, "n1"),
        _ => (6222, "n1"),
    };
    let a2 = lab.addr("n2");
    let t = Instant::now();
    lab.lab_ok("break", &["flap", "n2", "2", flap]);
    assert!(
        tcp_blocked(&lab, from, &a2, probe_port),
        "port {probe_port} during the flap"
    );
    lab.wait_for("the flapped port back", Duration::from_secs(15), || {
        tcp_open(&lab, from, &a2, probe_port).then_some(())
    });
    assert!(t.elapsed() >= Duration::from_secs(2));
    let rules = lab.in_ns("n2", "iptables -S");
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("DROP"),
        "{}",
        text(&rules)
    );
    step(
        label,
        t0,
        &format!(
            "flap {flap} 2s: back after {:.1}s",
            t.elapsed().as_secs_f64()
        ),
    );
    heal(&lab, label, t0);

    lab.down();
    step(label, t0, "down");
}
