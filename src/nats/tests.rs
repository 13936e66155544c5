//! Tests over the real captures (tests/fixtures/nats, byte-identical copies of
//! shared/nats/fixtures). SSH-side facts are simulated where a scenario needs them.
#![allow(clippy::unwrap_used)]

use super::facts::{ClusterFacts, HttpBodies, NodeFacts};
use super::probe::{ShellReport, TcpResult};
use super::signals::*;
use crate::inventory::Inventory;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let local = root.join("tests/fixtures/nats").join(rel);
    if local.exists() {
        return local;
    }
    root.join("../shared/nats/fixtures").join(rel)
}

/// The lab inventory of a version: n1..n3 on 127.0.0.1 with that version's ports.
fn inv(version: &str) -> Inventory {
    let (cluster, monitor) = match version {
        "2.15.1" => (16222, 18222),
        "2.9.10" => (26222, 28222),
        "2.10.25" => (36222, 38222),
        "2.14.6" => (46222, 48222),
        _ => panic!("unknown version"),
    };
    let mut text =
        String::from("cluster: c1\ndefaults:\n  nats:\n    system_account: SYS\nnodes:\n");
    for i in 0..3 {
        text.push_str(&format!(
            "  - name: n{}\n    host: 127.0.0.1\n    nats: {{cluster_port: {}, monitor_port: {}, store_dir: /srv/natslab/n{}}}\n",
            i + 1,
            cluster + i,
            monitor + i,
            i + 1
        ));
    }
    Inventory::parse(Path::new("lab.yaml"), &text).unwrap()
}

fn http(name: &str, rel: &str) -> NodeFacts {
    let b = HttpBodies::from_capture_dir(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut f = NodeFacts::from_http(name, &b);
    f.host = "127.0.0.1".into();
    f
}

fn refused(port: u16) -> String {
    format!("cannot connect to 127.0.0.1:{port}: error sending request: tcp connect error: Connection refused (os error 111)")
}

/// A node whose server is stopped: service inactive (exit 3), nothing listens, monitor refused.
fn dead(name: &str, monitor_port: u16) -> NodeFacts {
    let b = HttpBodies {
        varz: Some(Err(refused(monitor_port))),
        healthz: Some(Err(refused(monitor_port))),
        ..Default::default()
    };
    let mut f = NodeFacts::from_http(name, &b);
    f.host = "127.0.0.1".into();
    let r = ShellReport {
        service_exit: Some(3),
        listening: Some(false),
        store_exists: Some(true),
        meta_exists: Some(true),
        complete: true,
        ..Default::default()
    };
    f.apply_shell(Ok(&r));
    f
}

/// SSH facts of a running node: service active, listening, TCP results to peers.
fn alive_shell(f: &mut NodeFacts, tcp: &[(&str, &str)], firewall: &[&str]) {
    let r = ShellReport {
        service_exit: Some(0),
        listening: Some(true),
        pid: Some(4242),
        proc_state: Some("S".into()),
        tcp: tcp
            .iter()
            .map(|(p, res)| TcpResult {
                peer: p.to_string(),
                host: "127.0.0.1".into(),
                port: 0,
                result: res.to_string(),
            })
            .collect(),
        firewall: firewall.iter().map(|s| s.to_string()).collect(),
        complete: true,
        ..Default::default()
    };
    f.apply_shell(Ok(&r));
}

fn causes(f: &ClusterFacts) -> Vec<&str> {
    f.signals.iter().map(|s| s.cause.as_str()).collect()
}

const VERSIONS: [(&str, &str); 4] = [
    ("2.9.10", "n1"),
    ("2.10.25", "n2"),
    ("2.14.6", "n3"),
    ("2.15.1", "n3"),
];

#[test]
fn healthy_all_versions_have_a_leader_and_no_signals() {
    for (v, leader) in VERSIONS {
        let nodes: Vec<NodeFacts> = (1..=3)
            .map(|i| http(&format!("n{i}"), &format!("v{v}/healthy/n{i}")))
            .collect();
        let f = ClusterFacts::build(&inv(v), nodes);
        assert!(f.has_leader, "{v}: {:?}", f.leader_agreement);
        assert_eq!(f.leader.as_deref(), Some(leader), "{v}");
        assert!(f.healthy, "{v}");
        assert!(f.not_healthy.is_empty(), "{v}: {:?}", f.not_healthy);
        assert!(f.signals.is_empty(), "{v}: {:?}", f.signals);
        assert!(f.signal.is_empty());
        assert_eq!(f.up, vec!["n1", "n2", "n3"]);
        for n in &f.node_list {
            assert_eq!(n.monitor, "ok", "{v} {}", n.name);
            assert_eq!(n.version.as_deref(), Some(v));
            assert_eq!(n.server_name.as_deref(), Some(n.name.as_str()));
            assert_eq!(n.meta_leader.as_deref(), Some(leader), "{v} {}", n.name);
            // distinct peers by name, even on 2.9.10 (remote_id mapped through varz.server_id)
            let others: Vec<String> = (1..=3)
                .map(|i| format!("n{i}"))
                .filter(|x| x != &n.name)
                .collect();
            assert_eq!(n.route_peers, others, "{v} {}", n.name);
            assert_eq!(n.healthz.status, Some(200));
            assert!(n.errors.is_empty(), "{v} {}: {:?}", n.name, n.errors);
            assert!(!n.streams.is_empty(), "{v} {}: streams", n.name);
            if v == "2.9.10" {
                assert_eq!(n.raft.source.as_deref(), Some("jsz"));
                assert_eq!(n.num_routes, Some(2));
            } else {
                assert_eq!(n.raft.source.as_deref(), Some("raftz"));
                assert!(n.raft.term.is_some());
                assert_eq!(
                    n.num_routes,
                    Some(8),
                    "{v}: pooling gives 4 routes per peer"
                );
            }
            let expect_state = if n.name == leader {
                "LEADER"
            } else {
                "FOLLOWER"
            };
            assert_eq!(
                n.raft.state.as_deref(),
                Some(expect_state),
                "{v} {}",
                n.name
            );
        }
        assert_eq!(f.streams.len(), 1);
        assert_eq!(f.streams[0].name, "ORDERS");
        assert!(f.streams[0].max_messages.unwrap() > 0);
        assert!(crate::ui::status::verdict(&f).starts_with("HEALTHY"));
    }
}

#[test]
fn num_routes_8_is_2_distinct_peers_on_2_15_1() {
    let n = http("n1", "v2.15.1/healthy/n1");
    assert_eq!(n.num_routes, Some(8));
    assert_eq!(n.route_peers, vec!["n2", "n3"]);
}

#[test]
fn raftz_404_on_2_9_10_is_not_an_error() {
    let n = http("n3", "v2.9.10/quorum-lost/n3_at10s");
    assert!(n.errors.is_empty(), "{:?}", n.errors);
    assert_eq!(n.raft.source.as_deref(), Some("jsz"));
    assert_eq!(n.raft.state, None);
}

#[test]
fn bogus_empty_peer_is_not_a_leader() {
    for (v, rel) in [
        ("2.9.10", "v2.9.10/quorum-lost/n3_at10s"),
        ("2.10.25", "v2.10.25/quorum-lost/n1"),
        ("2.14.6", "v2.14.6/quorum-lost/n1"),
    ] {
        let n = http("nX", rel);
        assert_eq!(n.meta_leader, None, "{v}");
        assert_eq!(n.meta_leader_peer, None, "{v}: fqA4S4SK must be ignored");
        assert_eq!(n.cluster_size, Some(3));
        assert_eq!(n.quorum_needed, Some(2), "{v}: derived from cluster_size");
    }
}

/// (version, survivor folder, survivor name, dead names)
const QUORUM_LOST: [(&str, &str, &str, [&str; 2]); 6] = [
    ("2.9.10", "v2.9.10/quorum-lost/n3_at10s", "n3", ["n1", "n2"]),
    ("2.9.10", "v2.9.10/quorum-lost/n3_at40s", "n3", ["n1", "n2"]),
    ("2.10.25", "v2.10.25/quorum-lost/n1", "n1", ["n2", "n3"]),
    ("2.14.6", "v2.14.6/quorum-lost/n1", "n1", ["n2", "n3"]),
    ("2.15.1", "v2.15.1/quorum-lost/n1_at10s", "n1", ["n2", "n3"]),
    ("2.15.1", "v2.15.1/quorum-lost/n1_at50s", "n1", ["n2", "n3"]),
];

fn monitor_port(inv: &Inventory, name: &str) -> u16 {
    inv.node(name).unwrap().nats.monitor_port
}

#[test]
fn quorum_lost_survivor_gives_insufficient_nodes_first() {
    for (v, rel, survivor, deadn) in QUORUM_LOST {
        let inv = inv(v);
        let mut s = http(survivor, rel);
        alive_shell(&mut s, &[(deadn[0], "refused"), (deadn[1], "refused")], &[]);
        let mut nodes = vec![s];
        for d in deadn {
            nodes.push(dead(d, monitor_port(&inv, d)));
        }
        let f = ClusterFacts::build(&inv, nodes);
        assert!(!f.has_leader, "{rel}");
        assert!(!f.healthy);
        // What a failed verify says: no leader first, then each server in inventory order.
        assert_eq!(
            f.not_healthy[0], "no meta leader",
            "{rel}: {:?}",
            f.not_healthy
        );
        for d in deadn {
            assert!(
                f.not_healthy.contains(&format!("{d}: not up")),
                "{rel}: {:?}",
                f.not_healthy
            );
        }
        assert!(
            f.not_healthy.contains(&format!(
                "{survivor}: /healthz 503 JetStream has not established contact with a meta leader"
            )),
            "{rel}: {:?}",
            f.not_healthy
        );
        assert_eq!(f.up, vec![survivor]);
        assert_eq!(f.down.len(), 2, "{rel}");
        assert_eq!(causes(&f)[0], INSUFFICIENT_NODES, "{rel}: {:?}", f.signals);
        let sig = &f.signal[INSUFFICIENT_NODES];
        assert_eq!(sig.confidence, "high");
        assert!(
            sig.evidence.iter().any(|e| e.contains(&format!(
                "{}: nats-server is not running (service status exit 3",
                deadn[0]
            ))),
            "{rel}: {:?}",
            sig.evidence
        );
        assert!(
            sig.evidence
                .iter()
                .any(|e| e.contains("connection refused")),
            "{:?}",
            sig.evidence
        );
        assert!(
            !f.signal.contains_key(NETWORK_PARTITION),
            "{rel}: {:?}",
            f.signals
        );
        let sn = &f.nodes[survivor];
        assert_eq!(sn.meta_leader, None);
        assert_eq!(sn.healthz.status, Some(503));
        assert_eq!(
            sn.healthz.text.as_deref(),
            Some("JetStream has not established contact with a meta leader")
        );
        if v != "2.9.10" {
            assert_eq!(sn.raft.state.as_deref(), Some("CANDIDATE"), "{rel}");
        }
        assert!(crate::ui::status::verdict(&f).contains("insufficient-nodes"));
    }
}

#[test]
fn quorum_lost_without_any_ssh_still_insufficient_nodes() {
    for (v, rel, survivor, deadn) in QUORUM_LOST {
        let inv = inv(v);
        let mut s = http(survivor, rel);
        s.apply_shell(Err("cannot connect to 127.0.0.1:22: Connection refused"));
        let mut nodes = vec![s];
        for d in deadn {
            let p = monitor_port(&inv, d);
            let b = HttpBodies {
                varz: Some(Err(refused(p))),
                healthz: Some(Err(refused(p))),
                ..Default::default()
            };
            let mut n = NodeFacts::from_http(d, &b);
            n.apply_shell(Err("cannot connect to 127.0.0.1:22: Connection refused"));
            nodes.push(n);
        }
        let f = ClusterFacts::build(&inv, nodes);
        assert_eq!(f.down.len(), 2, "{rel}: refused monitor = process down");
        assert_eq!(causes(&f)[0], INSUFFICIENT_NODES, "{rel}: {:?}", f.signals);
    }
}

#[test]
fn quorum_lost_2_15_1_term_rises_between_captures() {
    let a = http("n1", "v2.15.1/quorum-lost/n1_at10s");
    let b = http("n1", "v2.15.1/quorum-lost/n1_at50s");
    assert!(b.raft.term.unwrap() > a.raft.term.unwrap());
    assert_eq!(a.raft.index, b.raft.index);
    assert_eq!(
        a.replicas.len(),
        3,
        "2.15 lists all peers incl. self when leaderless"
    );
}

#[test]
fn leader_survivor_alone_is_not_has_leader() {
    for (v, rel, name) in [
        ("2.15.1", "v2.15.1/healthy/n3", "n3"),
        ("2.9.10", "v2.9.10/healthy/n1", "n1"),
    ] {
        let inv = inv(v);
        let mut s = http(name, rel);
        let others: Vec<&str> = ["n1", "n2", "n3"]
            .into_iter()
            .filter(|x| *x != name)
            .collect();
        alive_shell(
            &mut s,
            &[(others[0], "refused"), (others[1], "refused")],
            &[],
        );
        assert_eq!(s.meta_leader.as_deref(), Some(name));
        let mut nodes = vec![s];
        for d in &others {
            nodes.push(dead(d, monitor_port(&inv, d)));
        }
        let f = ClusterFacts::build(&inv, nodes);
        assert!(!f.has_leader, "{v}: a lone ex-leader is not a leader");
        assert_eq!(f.leader, None);
        assert_eq!(f.leader_agreement.candidate.as_deref(), Some(name));
        assert_eq!(f.leader_agreement.count, 1);
        assert_eq!(causes(&f)[0], INSUFFICIENT_NODES, "{:?}", f.signals);
        assert!(!f.healthy);
    }
}

#[test]
fn two_leaders_higher_term_wins() {
    // n2 still says LEADER (old term 38) while n1 leads at term 39 (partition timeline 20:36:16).
    let inv = inv("2.15.1");
    let n1 = http("n1", "v2.15.1/partition/at15s_n1");
    let n3 = http("n3", "v2.15.1/partition/at15s_n3");
    let mut n2 = http("n2", "v2.15.1/partition/at15s_n2");
    n2.meta_leader = Some("n2".into());
    n2.raft.state = Some("LEADER".into());
    n2.raft.term = Some(38);
    // Tie on support: n1 backed by itself only, n2 by itself only → higher term wins.
    let f = ClusterFacts::build(&inv, vec![n1.clone(), n2.clone()]);
    assert_eq!(f.leader_agreement.candidate.as_deref(), Some("n1"));
    assert_eq!(f.leader_agreement.stale_leaders, vec!["n2"]);
    let f = ClusterFacts::build(&inv, vec![n1, n2, n3]);
    assert!(f.has_leader);
    assert_eq!(f.leader.as_deref(), Some("n1"));
    assert_eq!(f.leader_agreement.stale_leaders, vec!["n2"]);
    assert_eq!(causes(&f)[0], NETWORK_PARTITION, "{:?}", f.signals);
}

fn partition(at: &str, ssh: bool) -> ClusterFacts {
    let inv = inv("2.15.1");
    let mut n: Vec<NodeFacts> = (1..=3)
        .map(|i| http(&format!("n{i}"), &format!("v2.15.1/partition/{at}_n{i}")))
        .collect();
    if ssh {
        alive_shell(&mut n[0], &[("n2", "timeout"), ("n3", "ok")], &[]);
        alive_shell(
            &mut n[1],
            &[("n1", "timeout"), ("n3", "timeout")],
            &[
                "-A INPUT -p tcp -m tcp --dport 16223 -j DROP",
                "-A OUTPUT -p tcp -m tcp --sport 16223 -j DROP",
            ],
        );
        alive_shell(&mut n[2], &[("n1", "ok"), ("n2", "timeout")], &[]);
    }
    ClusterFacts::build(&inv, n)
}

#[test]
fn partition_at_15s_and_75s_gives_network_partition_first() {
    for at in ["at15s", "at75s"] {
        for ssh in [true, false] {
            let f = partition(at, ssh);
            assert!(f.has_leader, "{at}: the majority side has leader n1");
            assert_eq!(f.leader.as_deref(), Some("n1"));
            assert!(!f.healthy);
            assert_eq!(f.leaderless, vec!["n2"]);
            assert_eq!(
                causes(&f)[0],
                NETWORK_PARTITION,
                "{at} ssh={ssh}: {:?}",
                f.signals
            );
            let s = &f.signal[NETWORK_PARTITION];
            if ssh {
                assert_eq!(s.confidence, "high");
                assert!(
                    s.evidence
                        .iter()
                        .any(|e| e.contains("n1 → n2 (127.0.0.1:16223): timeout")),
                    "{:?}",
                    s.evidence
                );
                assert!(
                    s.evidence.iter().any(|e| e.contains("n2: firewall rule")),
                    "{:?}",
                    s.evidence
                );
                assert_eq!(f.cut_links.len(), 4);
            }
            assert!(s.summary.contains("n2"), "{}", s.summary);
            assert!(
                !f.signal.contains_key(INSUFFICIENT_NODES),
                "{:?}",
                f.signals
            );
            assert!(!f.signal.contains_key(CLUSTER_CONFIG), "{:?}", f.signals);
        }
    }
    // At 15 s the routes are still listed on the isolated node although Raft lost the leader.
    let f = partition("at15s", false);
    assert_eq!(f.nodes["n2"].route_peers, vec!["n1", "n3"]);
    assert_eq!(f.nodes["n2"].num_routes, Some(8));
    assert!(f.signal[NETWORK_PARTITION]
        .evidence
        .iter()
        .any(|e| e.contains("still listed")));
    // At 75 s they are gone.
    let f = partition("at75s", false);
    assert!(f.nodes["n2"].route_peers.is_empty());
    // Most up-to-date is the majority side, not the candidate with the inflated term.
    assert_eq!(f.max_term, Some(49));
    assert_ne!(f.most_up_to_date.as_deref(), Some("n2"));
}

#[test]
fn bad_routes_everywhere_gives_cluster_config_first() {
    for prefix in ["C_all_bad", "C_all_bad_at40s"] {
        let inv = inv("2.15.1");
        let n: Vec<NodeFacts> = (1..=3)
            .map(|i| {
                http(
                    &format!("n{i}"),
                    &format!("v2.15.1/bad-routes/{prefix}_n{i}"),
                )
            })
            .collect();
        let f = ClusterFacts::build(&inv, n);
        assert!(!f.has_leader);
        assert_eq!(f.route_mismatch.len(), 3, "{prefix}");
        assert_eq!(causes(&f)[0], CLUSTER_CONFIG, "{prefix}: {:?}", f.signals);
        let s = &f.signal[CLUSTER_CONFIG];
        assert_eq!(s.confidence, "high");
        assert!(
            s.evidence.iter().any(|e| e.contains("127.0.0.1:16232")),
            "{:?}",
            s.evidence
        );
        assert!(
            s.evidence
                .iter()
                .any(|e| e.contains("ever_had_leader false")),
            "{:?}",
            s.evidence
        );
        assert!(
            s.evidence
                .iter()
                .any(|e| e.contains("still recovering meta layer")),
            "{:?}",
            s.evidence
        );
        assert!(!f.signal.contains_key(NETWORK_PARTITION), "{:?}", f.signals);
        for n in &f.node_list {
            assert_eq!(n.raft.state.as_deref(), Some("FOLLOWER"));
            assert_eq!(n.num_routes, Some(0));
        }
    }
}

#[test]
fn bad_routes_on_one_node_flags_that_node() {
    let inv = inv("2.15.1");
    let n1 = http("n1", "v2.15.1/bad-routes/A_n1");
    let n3 = http("n3", "v2.15.1/bad-routes/A_n3_badroutes_others_ok");
    assert_eq!(n3.unsolicited_route_peers, vec!["n1", "n2"]);
    assert!(n1.unsolicited_route_peers.is_empty());
    let f = ClusterFacts::build(&inv, vec![n1, n3]);
    assert_eq!(f.route_mismatch.len(), 1);
    assert_eq!(f.route_mismatch[0].node, "n3");
    let s = &f.signal[CLUSTER_CONFIG];
    assert!(
        s.summary.starts_with("n3 has wrong routes"),
        "{}",
        s.summary
    );
    assert!(
        s.evidence
            .iter()
            .any(|e| e.starts_with("n3: every route was dialled by the peers")),
        "{:?}",
        s.evidence
    );
    assert!(
        !s.evidence.iter().any(|e| e.starts_with("n1:")),
        "{:?}",
        s.evidence
    );
}

#[test]
fn configured_routes_from_the_config_file_win_over_varz() {
    let inv = inv("2.15.1");
    let mut n1 = http("n1", "v2.15.1/healthy/n1");
    let r = ShellReport {
        service_exit: Some(0),
        listening: Some(true),
        config_routes: vec![
            "nats://127.0.0.1:16223".into(),
            "nats://nats-9.internal:16224".into(),
        ],
        route_dns: vec![super::probe::DnsResult {
            peer: String::new(),
            host: "nats-9.internal".into(),
            status: "failed".into(),
            addresses: vec![],
        }],
        complete: true,
        ..Default::default()
    };
    n1.apply_shell(Ok(&r));
    assert_eq!(n1.configured_routes_source.as_deref(), Some("config"));
    let f = ClusterFacts::build(&inv, vec![n1]);
    // An unresolvable host name: cannot tell, so no accusation of a wrong route…
    assert!(f.route_mismatch.is_empty(), "{:?}", f.route_mismatch);
    // …but the DNS failure is evidence.
    assert_eq!(f.dns_failures.len(), 1);
    assert!(f.signal.contains_key(DNS_RESOLUTION));
}

#[test]
fn dns_failures_for_peers_by_name() {
    let text = "cluster: c\nnodes:\n  - {name: n1, host: nats-1}\n  - {name: n2, host: nats-2}\n  - {name: n3, host: nats-3}\n";
    let inv = Inventory::parse(Path::new("i.yaml"), text).unwrap();
    let mut nodes = Vec::new();
    for me in ["n1", "n2", "n3"] {
        let b = HttpBodies {
            varz: Some(Ok((
                200,
                format!(
                    r#"{{"server_name":"{me}","cluster":{{"name":"c","urls":["nats-1:6222","nats-2:6222","nats-3:6222"]}}}}"#
                ),
            ))),
            jsz: Some(Ok((
                200,
                r#"{"meta_cluster":{"name":"c","cluster_size":3}}"#.into(),
            ))),
            routez: Some(Ok((200, r#"{"num_routes":0,"routes":[]}"#.into()))),
            healthz: Some(Ok((
                503,
                r#"{"status":"unavailable","error":"JetStream is still recovering meta layer"}"#
                    .into(),
            ))),
            ..Default::default()
        };
        let mut n = NodeFacts::from_http(me, &b);
        let mut r = ShellReport {
            service_exit: Some(0),
            listening: Some(true),
            complete: true,
            ..Default::default()
        };
        for p in ["n1", "n2", "n3"].into_iter().filter(|p| *p != me) {
            let host = format!("nats-{}", &p[1..]);
            r.tcp.push(TcpResult {
                peer: p.into(),
                host: host.clone(),
                port: 6222,
                result: "unresolved".into(),
            });
            r.dns.push(super::probe::DnsResult {
                peer: p.into(),
                host,
                status: "failed".into(),
                addresses: vec![],
            });
        }
        r.config_routes = vec![
            "nats://nats-1:6222".into(),
            "nats://nats-2:6222".into(),
            "nats://nats-3:6222".into(),
        ];
        n.apply_shell(Ok(&r));
        nodes.push(n);
    }
    let f = ClusterFacts::build(&inv, nodes);
    assert_eq!(f.dns_failures.len(), 6);
    assert!(f.route_mismatch.is_empty());
    assert_eq!(causes(&f)[0], DNS_RESOLUTION, "{:?}", f.signals);
    assert_eq!(f.signal[DNS_RESOLUTION].confidence, "high");
}

#[test]
fn frozen_process_is_resource_exhaustion() {
    let inv = inv("2.15.1");
    let mut n1 = http("n1", "v2.15.1/partition/at15s_n1");
    let mut n3 = http("n3", "v2.15.1/partition/at15s_n3");
    alive_shell(&mut n1, &[("n2", "timeout"), ("n3", "ok")], &[]);
    alive_shell(&mut n3, &[("n1", "ok"), ("n2", "timeout")], &[]);
    // n2: port held, monitor times out, process state T.
    let to = "connection to 127.0.0.1:18223 timed out after 5s".to_string();
    let b = HttpBodies {
        varz: Some(Err(to.clone())),
        healthz: Some(Err(to)),
        ..Default::default()
    };
    let mut n2 = NodeFacts::from_http("n2", &b);
    let r = ShellReport {
        service_exit: Some(0),
        listening: Some(true),
        pid: Some(777),
        proc_state: Some("T".into()),
        loadavg: Some((9.5, 8.0, 7.0)),
        nproc: Some(2),
        complete: true,
        ..Default::default()
    };
    n2.apply_shell(Ok(&r));
    assert_eq!(n2.process, "frozen");
    let f = ClusterFacts::build(&inv, vec![n1, n2, n3]);
    assert_eq!(f.frozen, vec!["n2"]);
    assert!(f.has_leader);
    assert_eq!(causes(&f)[0], RESOURCE_EXHAUSTION, "{:?}", f.signals);
    assert!(f
        .resource_pressure
        .iter()
        .any(|p| p.kind == "load" && p.node == "n2"));
    assert!(f.signal[RESOURCE_EXHAUSTION]
        .evidence
        .iter()
        .any(|e| e.contains("state T")));
}

#[test]
fn all_stopped_insufficient_then_stale_and_disk_ranking() {
    let inv = inv("2.15.1");
    let mut nodes = Vec::new();
    for (name, term, snap_idx) in [("n1", 52u64, 25u64), ("n2", 50, 22), ("n3", 52, 24)] {
        let mut n = dead(name, monitor_port(&inv, name));
        let r = ShellReport {
            service_exit: Some(3),
            listening: Some(false),
            tav: Some((term, "BXScrY9i".into())),
            snapshots: vec![(2, 7), (term, snap_idx)],
            peers_idx: Some((3, vec![])),
            complete: true,
            ..Default::default()
        };
        n.apply_shell(Ok(&r));
        assert_eq!(n.raft.source.as_deref(), Some("disk"));
        nodes.push(n);
    }
    let f = ClusterFacts::build(&inv, nodes);
    assert_eq!(f.down.len(), 3);
    // Logs differ on disk: the start order matters, so stale-raft-state (Option B) ranks first.
    assert_eq!(
        causes(&f),
        vec![STALE_RAFT_STATE, INSUFFICIENT_NODES],
        "{:?}",
        f.signals
    );
    assert!(
        f.signal[STALE_RAFT_STATE].summary.contains("n1"),
        "{:?}",
        f.signal[STALE_RAFT_STATE]
    );
    assert_eq!(f.most_up_to_date.as_deref(), Some("n1"));
    assert_eq!(f.max_term, Some(52));
    assert_eq!(f.term_spread, Some(2));
    assert_eq!(f.nodes["n2"].disk_term, Some(50));
}

#[test]
fn all_stopped_with_identical_logs_is_insufficient_nodes_first() {
    let inv = inv("2.15.1");
    let mut nodes = Vec::new();
    for name in ["n1", "n2", "n3"] {
        let mut n = dead(name, monitor_port(&inv, name));
        let r = ShellReport {
            service_exit: Some(3),
            listening: Some(false),
            tav: Some((52, "BXScrY9i".into())),
            snapshots: vec![(52, 25)],
            peers_idx: Some((3, vec![])),
            complete: true,
            ..Default::default()
        };
        n.apply_shell(Ok(&r));
        nodes.push(n);
    }
    let f = ClusterFacts::build(&inv, nodes);
    assert_eq!(
        causes(&f),
        vec![INSUFFICIENT_NODES, STALE_RAFT_STATE],
        "{:?}",
        f.signals
    );
}

#[test]
fn up_and_connected_without_leader_is_stale_raft_state() {
    // Synthetic: every server runs and routes to the others, nobody has a leader, and the
    // meta group believes it has 5 peers (nats-io/nats-server#6403) without naming others.
    let f = leaderless_with_stale_peers(5, &[]);
    assert_eq!(f.peer_set_drift.len(), 3);
    assert!(f.stale_peers.is_empty());
    assert_eq!(causes(&f)[0], STALE_RAFT_STATE, "{:?}", f.signals);
    assert_eq!(f.signal[STALE_RAFT_STATE].confidence, "high");
}

#[test]
fn recovered_clusters_are_healthy() {
    for v in ["2.15.1", "2.9.10"] {
        let nodes: Vec<NodeFacts> = (1..=3)
            .map(|i| http(&format!("n{i}"), &format!("v{v}/recovered/n{i}")))
            .collect();
        let f = ClusterFacts::build(&inv(v), nodes);
        assert!(f.has_leader, "{v}");
        assert!(f.signals.is_empty(), "{v}: {:?}", f.signals);
    }
}

#[test]
fn a_node_that_cannot_be_managed_makes_a_healthy_cluster_unhealthy() {
    let v = "2.15.1";
    let mut nodes: Vec<NodeFacts> = (1..=3)
        .map(|i| http(&format!("n{i}"), &format!("v{v}/healthy/n{i}")))
        .collect();
    let reason = "sudo needs a password for ops on n2 (sudo -n refused); add `ops ALL=(root) NOPASSWD: ALL` to /etc/sudoers.d/";
    nodes[1].unmanageable = Some(reason.into());
    let f = ClusterFacts::build(&inv(v), nodes);
    assert!(f.has_leader, "NATS itself is fine");
    assert!(!f.healthy, "but n2 cannot be managed");
    assert_eq!(f.unmanageable.len(), 1);
    assert_eq!(f.unmanageable[0].node, "n2");
    assert_eq!(
        f.not_healthy,
        vec![format!("n2: cannot be managed ({reason})")],
        "the only reason"
    );
    let verdict = crate::ui::status::verdict(&f);
    assert!(
        verdict.starts_with("CANNOT MANAGE n2: sudo needs a password"),
        "{verdict}"
    );
    assert!(
        verdict.contains("ops ALL=(root) NOPASSWD: ALL"),
        "{verdict}"
    );
    let st = crate::ui::status::status_json(&f);
    assert_eq!(st["unmanageable"][0]["node"], "n2");
    assert_eq!(st["healthy"], false);
}

#[test]
fn rescue_flag_is_parsed() {
    let n = http("n1", "v2.15.1/rescue-experiment/2_n1_after_rescue");
    assert_eq!(n.rescue, Some(true));
    assert_eq!(n.quorum_needed, Some(1));
    assert_eq!(n.meta_leader.as_deref(), Some("n1"));
}

#[test]
fn raftz_leader_peer_id_is_mapped_to_a_name() {
    let b = HttpBodies {
        varz: Some(Ok((200, r#"{"server_name":"n3"}"#.into()))),
        raftz: Some(Ok((
            200,
            std::fs::read_to_string(fixture("v2.15.1/partition/at15s_n3/raftz.json")).unwrap(),
        ))),
        ..Default::default()
    };
    let n = NodeFacts::from_http("n3", &b);
    assert_eq!(n.meta_leader_peer.as_deref(), Some("fjFyEjc1"));
    // raftz peers of a follower name the leader
    assert_eq!(n.meta_leader.as_deref(), Some("n1"));
    // and the inventory derivation maps it when raftz has no name (e.g. empty names)
    let mut m = n.clone();
    m.meta_leader = None;
    let f = ClusterFacts::build(&inv("2.15.1"), vec![m]);
    assert_eq!(f.nodes["n3"].meta_leader.as_deref(), Some("n1"));
}

#[test]
fn unreachable_node_is_evidence_not_a_crash() {
    let inv = inv("2.15.1");
    let mut n: Vec<NodeFacts> = (1..=2)
        .map(|i| http(&format!("n{i}"), &format!("v2.15.1/healthy/n{i}")))
        .collect();
    let to = "connection to 127.0.0.1:18224 timed out after 5s".to_string();
    let mut n3 = NodeFacts::from_http(
        "n3",
        &HttpBodies {
            varz: Some(Err(to.clone())),
            healthz: Some(Err(to)),
            ..Default::default()
        },
    );
    n3.apply_shell(Err("connection to 127.0.0.1:22 timed out after 5s"));
    n.push(n3);
    let f = ClusterFacts::build(&inv, n);
    assert_eq!(f.unreachable, vec!["n3"]);
    assert!(
        f.has_leader,
        "n1+n2 agree on n3 … which is unreachable, still 2 of 3 agree"
    );
    assert!(f.nodes["n3"].errors.iter().any(|e| e.starts_with("ssh:")));
    assert!(f.nodes["n3"]
        .errors
        .iter()
        .any(|e| e.starts_with("monitor /varz:")));
    let _ = crate::ui::status::render_status(&f, true, 80);
}

#[test]
fn table_fits_80_columns_and_json_shapes() {
    let inv = inv("2.15.1");
    let mut s = http("n1", "v2.15.1/quorum-lost/n1_at50s");
    alive_shell(&mut s, &[("n2", "refused"), ("n3", "refused")], &[]);
    let f = ClusterFacts::build(&inv, vec![s, dead("n2", 18223), dead("n3", 18224)]);
    let t = crate::ui::status::render_status(&f, false, 80);
    for line in t.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} cols: {line}",
            line.chars().count()
        );
    }
    assert!(t.contains("CANDIDATE t10 i5"), "{t}");
    // The healthz text is not cut: it is a note under the table.
    assert!(
        t.contains("n1: /healthz 503: JetStream has not established contact with a meta leader"),
        "{t}"
    );
    assert!(t.lines().any(|l| l.starts_with("NO META LEADER")), "{t}");
    let colored = crate::ui::status::render_status(&f, true, 80);
    assert!(console::strip_ansi_codes(&colored)
        .lines()
        .all(|l| l.chars().count() <= 80));

    let findings: Vec<crate::engine::Finding> = f
        .signals
        .iter()
        .map(|s| crate::engine::Finding {
            cause: s.cause.clone(),
            runbook: s.cause.clone(),
            confidence: crate::runbook::Confidence::parse(&s.confidence).unwrap(),
            score: i64::from(s.score),
            summary: s.summary.clone(),
            evidence: s.evidence.clone(),
        })
        .collect();
    let d = crate::ui::status::diagnose_json(&f, &findings);
    assert_eq!(d["cluster"], "c1");
    assert_eq!(d["healthy"], false);
    assert!(d["meta_leader"].is_null());
    let n1 = &d["nodes"][0];
    for k in [
        "name",
        "ssh",
        "service",
        "monitor",
        "server_name",
        "meta_leader",
        "raft",
        "route_peers",
        "healthz",
    ] {
        assert!(n1.get(k).is_some(), "missing {k}");
    }
    assert_eq!(n1["raft"]["state"], "CANDIDATE");
    assert_eq!(n1["raft"]["term"], 10);
    assert_eq!(n1["raft"]["index"], 5);
    assert_eq!(
        n1["healthz"],
        "JetStream has not established contact with a meta leader"
    );
    assert_eq!(d["findings"][0]["cause"], "insufficient-nodes");
    assert_eq!(d["findings"][0]["runbook"], "insufficient-nodes");
    assert_eq!(d["findings"][0]["confidence"], "high");
    assert!(d["findings"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("quorum needs 2"));

    let st = crate::ui::status::status_json(&f);
    assert_eq!(st["nodes"].as_array().unwrap().len(), 3);
    // facts serialize for templates with the documented names
    let v = serde_json::to_value(&f).unwrap();
    for k in [
        "cluster",
        "size",
        "quorum",
        "nodes",
        "node_list",
        "up",
        "down",
        "unreachable",
        "frozen",
        "has_leader",
        "leader",
        "leader_agreement",
        "healthy",
        "max_term",
        "term_spread",
        "most_up_to_date",
        "peer_set_drift",
        "cut_links",
        "dns_failures",
        "route_mismatch",
        "resource_pressure",
        "streams",
        "signals",
        "signal",
    ] {
        assert!(v.get(k).is_some(), "facts.{k} missing");
    }
    assert!(v["signal"].get("insufficient-nodes").is_some());
    assert_eq!(v["nodes"]["n2"]["service"], "inactive");
    assert_eq!(v["nodes"]["n2"]["process"], "absent");
}

/// Serves capture folders over the `Transport` trait; exec returns a canned probe output.
struct FakeTransport {
    dirs: std::collections::BTreeMap<String, Option<PathBuf>>,
    shell: std::collections::BTreeMap<String, String>,
    delay: std::time::Duration,
    log: std::sync::Mutex<Vec<(String, String)>>,
}

impl crate::transport::Transport for FakeTransport {
    fn exec(
        &self,
        node: &crate::inventory::Node,
        cmd: &crate::transport::RemoteCommand,
    ) -> Result<crate::transport::ExecOutput, crate::transport::TransportError> {
        std::thread::sleep(self.delay);
        assert!(cmd.script.contains("NRS_BEGIN"));
        self.log
            .lock()
            .unwrap()
            .push((node.name.clone(), "exec".into()));
        match self.shell.get(&node.name) {
            Some(out) => Ok(crate::transport::ExecOutput {
                exit_code: Some(0),
                stdout: crate::transport::Captured::from_bytes(out.as_bytes(), 65536),
                stderr: Default::default(),
                duration: self.delay,
                timed_out: false,
                lost: false,
            }),
            None => Err(crate::transport::TransportError::ConnectTimeout {
                addr: format!("{}:22", node.host),
                after: std::time::Duration::from_secs(5),
            }),
        }
    }

    fn http_get(
        &self,
        node: &crate::inventory::Node,
        path: &str,
        _timeout: std::time::Duration,
    ) -> Result<crate::transport::HttpResponse, crate::transport::TransportError> {
        std::thread::sleep(self.delay);
        self.log
            .lock()
            .unwrap()
            .push((node.name.clone(), path.to_string()));
        let Some(dir) = self.dirs.get(&node.name).cloned().flatten() else {
            return Err(crate::transport::TransportError::Connect {
                addr: format!("{}:{}", node.host, node.nats.monitor_port),
                reason: "tcp connect error: Connection refused (os error 111)".into(),
            });
        };
        let b = HttpBodies::from_capture_dir(&dir).unwrap();
        let r = match path.split('?').next().unwrap() {
            "/varz" => b.varz,
            "/jsz" => b.jsz,
            "/raftz" => b.raftz,
            "/routez" => b.routez,
            "/healthz" => b.healthz,
            _ => None,
        };
        let (status, body) = r.unwrap().unwrap();
        Ok(crate::transport::HttpResponse {
            status,
            body,
            via: "direct",
        })
    }

    fn name(&self) -> &'static str {
        "fake"
    }
}

#[test]
fn gather_probes_in_parallel_over_the_transport() {
    for v in ["2.9.10", "2.15.1"] {
        let inv = inv(v);
        let rel = if v == "2.9.10" {
            "v2.9.10/quorum-lost/n3_at10s"
        } else {
            "v2.15.1/quorum-lost/n1_at10s"
        };
        let survivor = if v == "2.9.10" { "n3" } else { "n1" };
        let mut dirs = std::collections::BTreeMap::new();
        let mut shell = std::collections::BTreeMap::new();
        for n in ["n1", "n2", "n3"] {
            if n == survivor {
                dirs.insert(n.to_string(), Some(fixture(rel)));
                let peers: Vec<&str> = ["n1", "n2", "n3"].into_iter().filter(|p| *p != n).collect();
                shell.insert(
                    n.to_string(),
                    format!(
                        "NRS_BEGIN 1\nSERVICE 0\nLISTEN 16222 yes\nPROC 100 S\nTCP {} 127.0.0.1 1 refused\nTCP {} 127.0.0.1 1 refused\nTAVHEX 0a 00 00 00 00 00 00 00 66 6a 46 79 45 6a 63 31\nNRS_END\n",
                        peers[0], peers[1]
                    ),
                );
            } else {
                dirs.insert(n.to_string(), None);
                shell.insert(
                    n.to_string(),
                    "NRS_BEGIN 1\nSERVICE 3\nLISTEN 16222 no\nLISTEN 18222 no\nNRS_END\n".into(),
                );
            }
        }
        let t = FakeTransport {
            dirs,
            shell,
            delay: std::time::Duration::from_millis(150),
            log: Default::default(),
        };
        let start = std::time::Instant::now();
        let f = super::probe::gather(&t, &inv, None, &Default::default());
        let took = start.elapsed();
        // survivor: 5 (2.9.10: 4) sequential requests ≈ 0.75 s; serial over nodes would be far more.
        assert!(
            took < std::time::Duration::from_millis(1400),
            "{v}: took {took:?}"
        );
        let log = t.log.lock().unwrap().clone();
        let survivor_paths: Vec<&str> = log
            .iter()
            .filter(|(n, _)| n == survivor)
            .map(|(_, p)| p.as_str())
            .collect();
        assert_eq!(
            survivor_paths
                .iter()
                .filter(|p| p.starts_with("/healthz"))
                .count(),
            1,
            "{survivor_paths:?}"
        );
        assert_eq!(
            survivor_paths.iter().any(|p| p.starts_with("/raftz")),
            v != "2.9.10",
            "{survivor_paths:?}"
        );
        assert_eq!(f.down.len(), 2, "{v}: {:?}", f.node_list);
        assert_eq!(causes(&f)[0], INSUFFICIENT_NODES);
        let s = &f.nodes[survivor];
        assert_eq!(s.ssh, "ok");
        assert_eq!(s.service, "active");
        assert_eq!(s.process, "running");
        assert_eq!(s.disk_term, Some(10));
        if v == "2.9.10" {
            // no raftz: the term comes from disk
            assert_eq!(s.raft.source.as_deref(), Some("jsz"));
            assert_eq!(s.raft.term, Some(10));
        }
        // limited gather
        let only = vec![survivor.to_string()];
        let f = super::probe::gather(&t, &inv, Some(&only), &Default::default());
        assert_eq!(f.node_list.len(), 1);
        assert_eq!(f.not_probed.len(), 2);
        assert!(f.unreachable.is_empty() && f.down.is_empty());
    }
}

#[test]
fn healthy_cluster_with_one_wrong_route_list_is_a_low_latent_signal() {
    let mut nodes: Vec<NodeFacts> = (1..=3)
        .map(|i| http(&format!("n{i}"), &format!("v2.15.1/healthy/n{i}")))
        .collect();
    // n3 configured like bad-routes A (its varz.cluster.urls there)
    nodes[2].configured_routes = vec![
        "127.0.0.1:16232".into(),
        "127.0.0.1:16233".into(),
        "127.0.0.1:16234".into(),
    ];
    let f = ClusterFacts::build(&inv("2.15.1"), nodes);
    assert!(f.healthy);
    assert_eq!(causes(&f), vec![CLUSTER_CONFIG]);
    assert_eq!(f.signals[0].confidence, "low");
    assert!(
        f.signals[0]
            .summary
            .starts_with("latent: n3 has wrong routes"),
        "{}",
        f.signals[0].summary
    );
}

/// The 5-server captures of FACTS §12.1 (file names differ from the 3-node captures).
fn five_node_http(name: &str, dir: &Path) -> NodeFacts {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let ok = |f: &str| read(f).map(|b| Ok((200, b)));
    let b = HttpBodies {
        varz: ok("varz.json"),
        jsz: ok("jsz_accounts_streams_consumers_raft_config.json"),
        raftz: ok("raftz.json"),
        routez: None,
        healthz: read("healthz.json").map(|b| {
            let code = if b.contains("\"ok\"") { 200 } else { 503 };
            Ok((code, b))
        }),
    };
    let mut f = NodeFacts::from_http(name, &b);
    f.host = "127.0.0.1".into();
    f
}

fn five_nodes_inv() -> Inventory {
    let mut text = String::from("cluster: c1\nnodes:\n");
    for i in 1..=5 {
        text.push_str(&format!(
            "  - {{name: n{i}, host: 127.0.0.1, nats: {{monitor_port: {}}}}}\n",
            18220 + i
        ));
    }
    Inventory::parse(Path::new("lab.yaml"), &text).unwrap()
}

#[test]
fn stream_below_quorum_is_insufficient_nodes_and_names_the_group() {
    for version in ["2.15.1", "2.9.10"] {
        let dir = fixture(&format!("v{version}/five-nodes/stream-quorum-lost"));
        let killed_txt = std::fs::read_to_string(fixture(&format!(
            "v{version}/five-nodes/stream-quorum-lost.txt"
        )))
        .unwrap();
        let dead_names: Vec<&str> = ["n1", "n2", "n3", "n4", "n5"]
            .into_iter()
            .filter(|n| killed_txt.split("killing").nth(1).unwrap().contains(n))
            .collect();
        assert_eq!(dead_names.len(), 2, "{version}: {killed_txt}");

        let nodes: Vec<NodeFacts> = (1..=5)
            .map(|i| {
                let n = format!("n{i}");
                if dead_names.contains(&n.as_str()) {
                    dead(&n, 18220 + i)
                } else {
                    five_node_http(&n, &dir.join(&n))
                }
            })
            .collect();
        let f = ClusterFacts::build(&five_nodes_inv(), nodes);
        assert!(f.has_leader, "{version}: the meta group keeps a leader");
        assert!(!f.healthy, "{version}");
        let g = f
            .groups
            .iter()
            .find(|g| g.stream == "ACCEPT" && g.consumer.is_none())
            .unwrap_or_else(|| panic!("{version}: {:?}", f.groups));
        assert_eq!(g.account, "$G");
        assert!(g.leader.is_none(), "{version}: {g:?}");
        assert!(f.unhealthy_groups.contains(&"$G > ACCEPT".to_string()));
        let s = &f.signals[0];
        assert_eq!(s.cause, INSUFFICIENT_NODES, "{version}: {:?}", f.signals);
        assert!(s.score >= 75, "{version}: {s:?}");
        assert!(s.summary.contains("$G > ACCEPT"), "{}", s.summary);
        let line = s
            .evidence
            .iter()
            .find(|e| e.starts_with("$G > ACCEPT:"))
            .unwrap();
        for d in &dead_names {
            assert!(line.contains(&format!("{d} (down)")), "{line}");
        }
        assert!(!causes(&f).contains(&CONVERGING));
    }
}

#[test]
fn healthy_five_nodes_have_healthy_groups() {
    for version in ["2.15.1", "2.9.10"] {
        let dir = fixture(&format!("v{version}/five-nodes/healthy"));
        let nodes: Vec<NodeFacts> = (1..=5)
            .map(|i| five_node_http(&format!("n{i}"), &dir.join(format!("n{i}"))))
            .collect();
        let f = ClusterFacts::build(&five_nodes_inv(), nodes);
        assert!(!f.groups.is_empty(), "{version}");
        assert!(f.unhealthy_groups.is_empty(), "{version}: {:?}", f.groups);
        assert!(
            f.healthy,
            "{version}: up {:?} agree {:?} cut {:?} nodes {:?}",
            f.up,
            f.leader_agreement,
            f.cut_links,
            f.node_list
                .iter()
                .map(|n| (&n.name, &n.healthz, &n.errors))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn just_restarted_and_routed_is_converging_then_judged_as_usual() {
    // 2.9.10 healthy capture: uptime 7 s. Make one server's /healthz 503 as right after a
    // restart (FACTS §12.2): converging, nothing else, until the window has passed.
    let build = |uptime: Option<u64>| {
        let mut nodes: Vec<NodeFacts> = (1..=3)
            .map(|i| http(&format!("n{i}"), &format!("v2.9.10/healthy/n{i}")))
            .collect();
        nodes[0].healthz.status = Some(503);
        nodes[0].healthz.text = Some("JetStream is not current with the meta leader".into());
        if let Some(u) = uptime {
            for n in &mut nodes {
                n.uptime_s = Some(u);
            }
        }
        ClusterFacts::build(&inv("2.9.10"), nodes)
    };
    let f = build(None);
    assert_eq!(f.min_uptime_s, Some(7));
    assert!(!f.healthy);
    assert_eq!(causes(&f), vec![CONVERGING], "{:?}", f.signals);
    assert!(
        f.signals[0].summary.contains("wait 13 s and re-run"),
        "{}",
        f.signals[0].summary
    );
    let later = build(Some(CONVERGING_WINDOW_S + 1));
    assert!(!causes(&later).contains(&CONVERGING), "{:?}", later.signals);
}

#[test]
fn routes_by_cluster_host_including_self_are_fine_and_wrong_ports_are_not() {
    // Inventory with `cluster_host` (the lab's shape: SSH by address, routes by host name),
    // routes as the Helm chart writes them (every server, this one included), with
    // credentials (redacted by the config reading).
    let text = "cluster: c\ndefaults:\n  nats: {cluster_port: 6222}\nnodes:\n  - {name: n1, host: 10.9.0.11, nats: {cluster_host: nats-1}}\n  - {name: n2, host: 10.9.0.12, nats: {cluster_host: nats-2}}\n  - {name: n3, host: 10.9.0.13, nats: {cluster_host: nats-3}}\n";
    let inv = Inventory::parse(Path::new("i.yaml"), text).unwrap();
    let node = |routes: &[&str]| {
        let mut n = NodeFacts::new("n1");
        n.configured_routes = routes.iter().map(|s| s.to_string()).collect();
        n.configured_routes_source = Some("config".into());
        n
    };
    let good = node(&[
        "nats://route:[REDACTED]@nats-1:6222",
        "nats://route:[REDACTED]@NATS-2:6222",
        "nats://route:[REDACTED]@nats-3:6222",
    ]);
    assert_eq!(super::routes::route_mismatch(&inv, &good), None);
    let bad = node(&[
        "nats://route:[REDACTED]@nats-1:6299",
        "nats://route:[REDACTED]@nats-2:6299",
    ]);
    let m = super::routes::route_mismatch(&inv, &bad).unwrap();
    assert_eq!(
        m.expected,
        vec!["nats-1:6222", "nats-2:6222", "nats-3:6222"]
    );
    assert_eq!(m.unknown.len(), 2);
    assert_eq!(m.missing, vec!["n2", "n3"]);
}

/// Three servers up and routed, no leader, and the meta group counts `size` peers of which
/// `stale` match no server (2.15 lists every peer in a leaderless jsz).
fn leaderless_with_stale_peers(size: u64, stale: &[&str]) -> ClusterFacts {
    let inv = inv("2.15.1");
    let mut replicas: Vec<String> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| format!(r#"{{"name":"{n}","current":false,"active":0,"peer":"p{n}"}}"#))
        .collect();
    replicas.extend(stale.iter().map(|n| {
        format!(r#"{{"name":"{n}","current":false,"offline":true,"active":0,"peer":"p{n}"}}"#)
    }));
    let mut nodes = Vec::new();
    for (i, me) in ["n1", "n2", "n3"].iter().enumerate() {
        let peers: Vec<String> = ["n1", "n2", "n3"]
            .iter()
            .filter(|p| *p != me)
            .map(|p| format!(r#"{{"remote_name":"{p}","did_solicit":true,"is_configured":true}}"#))
            .collect();
        let b = HttpBodies {
            varz: Some(Ok((
                200,
                format!(
                    r#"{{"server_name":"{me}","version":"2.15.1","cluster":{{"name":"c1","urls":["127.0.0.1:16222","127.0.0.1:16223","127.0.0.1:16224"]}}}}"#
                ),
            ))),
            jsz: Some(Ok((
                200,
                format!(
                    r#"{{"meta_cluster":{{"name":"c1","cluster_size":{size},"quorum_needed":{},"replicas":[{}]}}}}"#,
                    size / 2 + 1,
                    replicas.join(",")
                ),
            ))),
            raftz: Some(Ok((
                200,
                format!(
                    r#"{{"SYS":{{"_meta_":{{"state":"CANDIDATE","term":{},"pindex":40,"ever_had_leader":true,"size":{size}}}}}}}"#,
                    1000 + i
                ),
            ))),
            routez: Some(Ok((200, format!(r#"{{"num_routes":8,"routes":[{}]}}"#, peers.join(","))))),
            healthz: Some(Ok((
                503,
                r#"{"status":"unavailable","error":"JetStream has not established contact with a meta leader"}"#.into(),
            ))),
        };
        let mut n = NodeFacts::from_http(me, &b);
        let tcp: Vec<(&str, &str)> = ["n1", "n2", "n3"]
            .into_iter()
            .filter(|p| p != me)
            .map(|p| (p, "ok"))
            .collect();
        alive_shell(&mut n, &tcp, &[]);
        nodes.push(n);
    }
    ClusterFacts::build(&inv, nodes)
}

#[test]
fn stale_peers_holding_the_quorum_hand_over_to_permanent_loss() {
    // Every server renamed once: 6 peers, quorum 4, 3 servers exist.
    let f = leaderless_with_stale_peers(6, &["o1", "o2", "o3"]);
    assert!(!f.has_leader);
    assert_eq!(f.meta_size, Some(6));
    assert_eq!(f.meta_quorum, 4);
    let names: Vec<&str> = f.stale_peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["o1", "o2", "o3"]);
    assert!(f
        .stale_peers
        .iter()
        .all(|p| p.offline && p.last_seen_s.is_none()));
    assert_eq!(f.stale_peers[0].reported_by, ["n1", "n2", "n3"]);
    assert_eq!(causes(&f)[0], STALE_PEERS, "{:?}", f.signals);
    let s = &f.signal[STALE_PEERS];
    assert_eq!(s.confidence, "high");
    assert!(
        s.summary.contains("counts 6 peers (quorum 4)"),
        "{}",
        s.summary
    );
    assert!(
        s.summary.contains("permanent-loss --var lost=o1,o2,o3"),
        "{}",
        s.summary
    );
    let verdict = crate::ui::status::verdict(&f);
    assert!(
        verdict.starts_with(
            "NO META LEADER: 3 of 3 servers up; the meta group counts 6 peers (o1, o2, o3 not in the inventory), quorum needs 4"
        ),
        "{verdict}"
    );
}

#[test]
fn a_stale_peer_with_a_server_down_puts_bringing_it_back_first() {
    // A server renamed (its old name `old3` stays): 4 peers, quorum 3; then n2 stops.
    let mut f = leaderless_with_stale_peers(4, &["old3"]);
    assert_eq!(f.meta_quorum, 3);
    // Rebuild with n2 down (its monitor refused): the inventory's 2 of 3 looks like a
    // quorum, the meta group's 2 of 4 is not.
    let mut nodes = f.node_list.clone();
    let port = monitor_port(&inv("2.15.1"), "n2");
    nodes[1] = dead("n2", port);
    f = ClusterFacts::build(&inv("2.15.1"), nodes);
    assert_eq!(f.up, ["n1", "n3"]);
    assert_eq!(causes(&f)[0], INSUFFICIENT_NODES, "{:?}", f.signals);
    let ins = &f.signal[INSUFFICIENT_NODES];
    assert!(
        ins.summary
            .contains("quorum needs 3 of the meta group's 4 peers"),
        "{}",
        ins.summary
    );
    assert!(
        ins.evidence
            .iter()
            .any(|e| e.contains("old3 matches no server")),
        "{:?}",
        ins.evidence
    );
    let s = &f.signal[STALE_PEERS];
    assert!(s.summary.contains("Bring back n2 first"), "{}", s.summary);
    assert!(s.summary.contains("run stale-peers"), "{}", s.summary);
}
