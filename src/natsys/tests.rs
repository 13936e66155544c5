//! Parsing and group facts over the real captures in tests/fixtures/nats (byte-identical
//! copies of shared/nats/fixtures: `sys-requests/`, `*/five-nodes/`, and the 3-node ones).

use super::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nats")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The replies of a `sys-requests/` capture (`+0.00s {json}` per line).
fn sys_replies(file: &str) -> Vec<ServerReply> {
    read(&format!("sys-requests/{file}"))
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, json)| json.trim()))
        .filter(|json| !json.is_empty())
        .map(|json| ServerReply::parse(json.as_bytes(), Duration::ZERO))
        .collect()
}

/// One view per server name: `dir/<name>/<file>` if it exists, else "did not answer".
fn views(dir: &str, file: &str, names: &[&str]) -> Vec<ServerJsz> {
    names
        .iter()
        .map(|n| {
            let p = fixture(&format!("{dir}/{n}/{file}"));
            ServerJsz {
                server: n.to_string(),
                jsz: p.exists().then(|| {
                    JszView::from_http(&std::fs::read_to_string(&p).unwrap())
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                }),
            }
        })
        .collect()
}

const FIVE: &[&str] = &["n1", "n2", "n3", "n4", "n5"];
const FIVE_FILE: &str = "jsz_accounts_streams_consumers_raft_config.json";
const THREE_FILE: &str = "jsz_accounts_streams_consumers_raft.json";

fn by_label<'a>(groups: &'a [GroupFacts], label: &str) -> &'a GroupFacts {
    groups
        .iter()
        .find(|g| g.label() == label)
        .unwrap_or_else(|| {
            let all: Vec<String> = groups.iter().map(GroupFacts::label).collect();
            panic!("no group {label:?} in {all:?}")
        })
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn ping_replies_parse_on_both_versions() {
    for (v, kinds) in [
        ("2.15.1", ["HEALTHZ", "JSZ", "RAFTZ", "STATSZ"].as_slice()),
        ("2.9.10", ["HEALTHZ", "JSZ", "STATSZ"].as_slice()),
    ] {
        for kind in kinds {
            let replies = sys_replies(&format!("v{v}_SYS_REQ_SERVER_PING_{kind}.txt"));
            assert_eq!(replies.len(), 3, "{v} {kind}");
            let mut names: Vec<&str> = replies.iter().map(|r| r.server.name.as_str()).collect();
            names.sort();
            assert_eq!(names, ["n1", "n2", "n3"], "{v} {kind}");
            for r in &replies {
                assert_eq!(r.error, None, "{v} {kind}");
                assert_eq!(r.server.version.as_deref(), Some(v));
                assert_eq!(r.server.cluster.as_deref(), Some("c1"));
                assert_eq!(r.server.id.len(), 56);
                assert!(r.data.is_object(), "{v} {kind}: data {:?}", r.data);
            }
        }
    }
    // STATSZ puts its body under "statsz", not "data".
    let st = sys_replies("v2.9.10_SYS_REQ_SERVER_PING_STATSZ.txt");
    assert!(st[0].data.get("routes").is_some());
    // 2.9.10 has no RAFTZ over the system account: the capture is empty (no responders).
    assert!(sys_replies("v2.9.10_SYS_REQ_SERVER_PING_RAFTZ.txt").is_empty());
    let healthz = sys_replies("v2.15.1_SYS_REQ_SERVER_PING_HEALTHZ.txt");
    assert_eq!(healthz[0].data["status"], "ok");
}

#[test]
fn malformed_and_error_replies_are_kept_with_the_reason() {
    let r = ServerReply::parse(b"not json", Duration::ZERO);
    assert!(
        matches!(r.error, Some(ReplyProblem::Malformed { .. })),
        "{r:?}"
    );
    let r = ServerReply::parse(br#"{"data":{}}"#, Duration::ZERO);
    assert!(r.error.unwrap().to_string().contains("no \"server\""));
    let r = ServerReply::parse(
        br#"{"server":{"name":"n1","id":"X"},"error":{"code":400,"description":"bad filter"}}"#,
        Duration::ZERO,
    );
    assert_eq!(
        r.error,
        Some(ReplyProblem::Api(ApiError {
            code: 400,
            err_code: None,
            description: "bad filter".into()
        }))
    );
    // The JetStream API error shape (FACTS §7.3) and a success.
    let rep = Reply::parse(
        br#"{"error":{"code":400,"err_code":10044,"description":"server is not a member of the cluster"}}"#,
        Duration::ZERO,
    );
    let e = rep.error.clone().unwrap();
    assert_eq!((e.code, e.err_code), (400, Some(10044)));
    assert_eq!(
        e.to_string(),
        "server is not a member of the cluster (code 400, err_code 10044)"
    );
    assert!(!rep.success());
    let ok = Reply::parse(
        br#"{"type":"io.nats.jetstream.api.v1.meta_leader_stepdown_response","success":true}"#,
        Duration::ZERO,
    );
    assert!(ok.success() && ok.error.is_none());
    assert_eq!(
        Reply::parse(b"", Duration::ZERO).body,
        serde_json::Value::Null
    );
}

#[test]
fn meta_cluster_from_ping_jsz_per_version() {
    let r15 = sys_replies("v2.15.1_SYS_REQ_SERVER_PING_JSZ.txt");
    let (views, errors) = ServerJsz::from_replies(&r15, &["n1", "n2", "n3", "n4"]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(views.len(), 4);
    assert!(views[3].jsz.is_none(), "n4 did not answer");
    for v in &views[..3] {
        let m = v.jsz.as_ref().unwrap().meta_cluster.as_ref().unwrap();
        assert_eq!(m.leader(), Some("n1"), "{}", v.server);
        assert_eq!((m.cluster_size, m.quorum_needed), (Some(3), Some(2)));
        // 2.15 lists replicas on followers too.
        assert_eq!(m.replicas.len(), 2, "{}", v.server);
    }
    let r29 = sys_replies("v2.9.10_SYS_REQ_SERVER_PING_JSZ.txt");
    let (views, _) = ServerJsz::from_replies(&r29, &["n1", "n2", "n3"]);
    let metas: Vec<_> = views
        .iter()
        .map(|v| v.jsz.as_ref().unwrap().meta_cluster.clone().unwrap())
        .collect();
    assert!(metas.iter().all(|m| m.leader() == Some("n3")));
    assert!(metas.iter().all(|m| m.quorum_needed.is_none()));
    // Before 2.15 only the leader lists replicas.
    let with_replicas: Vec<&str> = views
        .iter()
        .zip(&metas)
        .filter(|(_, m)| !m.replicas.is_empty())
        .map(|(v, _)| v.server.as_str())
        .collect();
    assert_eq!(with_replicas, ["n3"]);
    // These captures asked for no account details: no groups.
    assert!(combine(&views).is_empty());
}

#[test]
fn five_nodes_healthy_v2_15_1() {
    let g = combine(&views("v2.15.1/five-nodes/healthy", FIVE_FILE, FIVE));
    assert_eq!(g.len(), 2, "{g:#?}");
    let s = by_label(&g, "$G > ACCEPT");
    assert_eq!(s.leader.as_deref(), Some("n2"));
    assert!(s.leader_confirmed && s.healthy, "{s:#?}");
    assert_eq!(strs(&s.replicas), ["n1", "n2", "n3"]);
    assert_eq!(strs(&s.reported_by), ["n1", "n2", "n3"]);
    assert_eq!(s.raft_group.as_deref(), Some("S-R3F-Zv83lV5q"));
    assert_eq!(s.messages, Some(50));
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    // n1's and n3's views call each other not current (followers): the leader's view wins.
    assert!(s.peers.iter().all(|p| p.current == Some(true)));
    let c = by_label(&g, "$G > ACCEPT > PROC");
    assert_eq!(c.leader.as_deref(), Some("n1"));
    assert!(c.healthy, "{c:#?}");
    assert_eq!(c.raft_group.as_deref(), Some("C-R3F-VyjEAaaf"));
    assert_eq!(strs(&c.replicas), ["n1", "n2", "n3"]);
}

#[test]
fn five_nodes_stream_quorum_lost_v2_15_1() {
    // "stream ACCEPT: leader n2 replicas n1 n3; killing n2 n1"; n3's /healthz said 200.
    assert!(read("v2.15.1/five-nodes/stream-quorum-lost.txt").contains("killing n2 n1"));
    let g = combine(&views(
        "v2.15.1/five-nodes/stream-quorum-lost",
        FIVE_FILE,
        FIVE,
    ));
    for label in ["$G > ACCEPT", "$G > ACCEPT > PROC"] {
        let s = by_label(&g, label);
        assert_eq!(s.leader, None, "{label}");
        assert!(!s.healthy && !s.leader_confirmed, "{label}");
        assert_eq!(strs(&s.replicas), ["n1", "n2", "n3"], "{label}");
        assert_eq!(strs(&s.missing), ["n1", "n2"], "{label}");
        assert_eq!(strs(&s.reported_by), ["n3"], "{label}");
        assert!(
            s.not_current.is_empty(),
            "no leader, no current-ness: {label}"
        );
        assert_eq!(
            s.problems,
            [
                "no leader",
                "replicas missing: n1 (did not answer), n2 (did not answer)"
            ],
            "{label}"
        );
        let n3 = s.peers.iter().find(|p| p.name == "n3").unwrap();
        assert!(n3.answered && n3.holds && n3.current.is_none());
    }
    assert_eq!(by_label(&g, "$G > ACCEPT").messages, Some(50));
}

#[test]
fn five_nodes_v2_9_10_healthy_and_stream_quorum_lost() {
    let g = combine(&views("v2.9.10/five-nodes/healthy", FIVE_FILE, FIVE));
    let s = by_label(&g, "$G > ACCEPT");
    assert_eq!(s.leader.as_deref(), Some("n1"));
    assert!(s.healthy, "{s:#?}");
    // Followers n2/n3 report `lag: 51` on every peer; the leader reports none.
    assert!(s.lagging.is_empty(), "{:?}", s.lagging);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    // 2.9.10 sends no raft group names.
    assert_eq!(s.raft_group, None);
    let c = by_label(&g, "$G > ACCEPT > PROC");
    assert_eq!(c.leader.as_deref(), Some("n3"));
    assert!(c.healthy, "{c:#?}");

    // "stream ACCEPT: leader n1 replicas n2 n3; killing n1 n2"; n3 said 503, n4/n5 200.
    assert!(read("v2.9.10/five-nodes/stream-quorum-lost.txt").contains("killing n1 n2"));
    let g = combine(&views(
        "v2.9.10/five-nodes/stream-quorum-lost",
        FIVE_FILE,
        FIVE,
    ));
    for label in ["$G > ACCEPT", "$G > ACCEPT > PROC"] {
        let s = by_label(&g, label);
        assert_eq!(s.leader, None, "{label}");
        assert!(!s.healthy, "{label}");
        assert_eq!(strs(&s.replicas), ["n1", "n2", "n3"], "{label}");
        assert_eq!(strs(&s.missing), ["n1", "n2"], "{label}");
        // Every replica (n3 too) says current:false with a lag: not read without a leader.
        assert!(s.lagging.is_empty() && s.not_current.is_empty(), "{label}");
    }
}

#[test]
fn three_nodes_quorum_lost_every_version() {
    for (v, dir) in [
        ("2.15.1", "v2.15.1/quorum-lost/n1_at50s"),
        ("2.14.6", "v2.14.6/quorum-lost/n1"),
        ("2.10.25", "v2.10.25/quorum-lost/n1"),
        ("2.9.10", "v2.9.10/quorum-lost/n3_at10s"),
    ] {
        let survivor = if v == "2.9.10" { "n3" } else { "n1" };
        let p = fixture(&format!("{dir}/{THREE_FILE}"));
        let mut all: Vec<ServerJsz> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| ServerJsz {
                server: n.to_string(),
                jsz: None,
            })
            .collect();
        let idx = all.iter().position(|s| s.server == survivor).unwrap();
        all[idx].jsz = Some(JszView::from_http(&std::fs::read_to_string(p).unwrap()).unwrap());
        let g = combine(&all);
        assert_eq!(g.len(), 2, "{v}: {g:#?}");
        for grp in &g {
            assert_eq!(grp.account, "APP", "{v}");
            assert_eq!(grp.stream, "ORDERS", "{v}");
            assert_eq!(grp.leader, None, "{v} {}", grp.label());
            assert!(!grp.healthy);
            assert_eq!(strs(&grp.replicas), ["n1", "n2", "n3"], "{v}");
            let mut lost: Vec<&str> = vec!["n1", "n2", "n3"];
            lost.retain(|n| *n != survivor);
            assert_eq!(strs(&grp.missing), lost, "{v} {}", grp.label());
            assert!(grp.below_quorum, "{v}");
        }
    }
}

#[test]
fn a_stream_leader_that_lost_its_followers_is_not_healthy() {
    // 2.15.1, 10 s after n2 and n3 died: n1 still says it leads ORDERS (FACTS §2.1: a
    // surviving leader keeps the role for ~17 s), its consumer PROC already has no leader.
    let mut all = views("v2.15.1/quorum-lost", THREE_FILE, &["n1_at10s", "n2", "n3"]);
    all[0].server = "n1".into();
    let g = combine(&all);
    let s = by_label(&g, "APP > ORDERS");
    assert_eq!(s.leader.as_deref(), Some("n1"));
    assert!(s.leader_confirmed && !s.healthy && s.below_quorum);
    assert_eq!(strs(&s.not_current), ["n2", "n3"]);
    assert_eq!(
        s.problems,
        [
            "replicas missing: n2 (did not answer), n3 (did not answer)",
            "only 1 of 3 replicas current (quorum 2): the leader n1 cannot commit and will step down",
            "not current according to the leader n1: n2, n3",
        ]
    );
    let c = by_label(&g, "APP > ORDERS > PROC");
    assert_eq!(c.leader, None);
    assert!(c.below_quorum);
}

#[test]
fn three_nodes_healthy_every_version() {
    for v in ["2.15.1", "2.14.6", "2.10.25", "2.9.10"] {
        let g = combine(&views(
            &format!("v{v}/healthy"),
            THREE_FILE,
            &["n1", "n2", "n3"],
        ));
        assert_eq!(g.len(), 2, "{v}");
        for grp in &g {
            assert!(
                grp.healthy && !grp.below_quorum,
                "{v} {}: {:?}",
                grp.label(),
                grp.problems
            );
            assert!(grp.problems.is_empty(), "{v}: {:?}", grp.problems);
            assert_eq!(strs(&grp.replicas), ["n1", "n2", "n3"], "{v}");
        }
    }
}

#[test]
fn every_server_leading_alone_is_a_conflict() {
    // 2.15.1, every route wrong, 40 s in: each server runs ORDERS alone and claims it.
    let g = combine(&views(
        "v2.15.1/bad-routes",
        THREE_FILE,
        &[
            "C_all_bad_at40s_n1",
            "C_all_bad_at40s_n2",
            "C_all_bad_at40s_n3",
        ],
    ));
    // The folder names are not server names: map them.
    assert!(g.iter().all(|x| !x.healthy));
    let renamed: Vec<ServerJsz> = views(
        "v2.15.1/bad-routes",
        THREE_FILE,
        &[
            "C_all_bad_at40s_n1",
            "C_all_bad_at40s_n2",
            "C_all_bad_at40s_n3",
        ],
    )
    .into_iter()
    .map(|mut s| {
        s.server = s.server.rsplit('_').next().unwrap().to_string();
        s
    })
    .collect();
    let g = combine(&renamed);
    let s = by_label(&g, "APP > ORDERS");
    assert_eq!(s.leader, None);
    assert!(!s.healthy);
    assert_eq!(strs(&s.replicas), ["n1", "n2", "n3"]);
    assert_eq!(s.leader_claims.len(), 3);
    assert!(
        s.problems[0].starts_with("3 servers each say they lead it (n1, n2, n3)"),
        "{:?}",
        s.problems
    );
}

#[test]
fn placeholder_names_resolve_through_the_peer_id() {
    let body = |leader: &str, replicas: &str| {
        format!(
            r#"{{"account_details":[{{"name":"APP","stream_detail":[{{"name":"S",
               "cluster":{{"leader":"{leader}","replicas":{replicas}}}}}]}}]}}"#
        )
    };
    let unknown = format!(
        r#"[{{"name":"Server name unknown at this time (peerID: {id})","peer":"{id}","current":false,"offline":true,"active":0}},
            {{"name":"n3","current":true,"active":1000,"lag":4,"peer":"BXScrY9i"}}]"#,
        id = crate::nats::monitor::peer_id("n2")
    );
    let views = vec![
        ServerJsz {
            server: "n1".into(),
            jsz: Some(JszView::from_http(&body("n1", &unknown)).unwrap()),
        },
        ServerJsz {
            server: "n2".into(),
            jsz: None,
        },
    ];
    let g = combine(&views);
    let s = &g[0];
    assert_eq!(strs(&s.replicas), ["n1", "n2", "n3"]);
    assert_eq!(strs(&s.offline), ["n2"]);
    assert_eq!(strs(&s.not_current), ["n2"]);
    assert_eq!(s.lagging.get("n3"), Some(&4));
    // n3 is current per the leader but its server was not asked: missing; not healthy
    // because n2 is not current.
    assert_eq!(strs(&s.missing), ["n2", "n3"]);
    assert!(!s.healthy);
    assert_eq!(
        s.problems,
        [
            "replicas missing: n2 (did not answer), n3 (did not answer)",
            "not current according to the leader n1: n2",
            "behind the leader: n3 by 4",
            "reported offline: n2",
        ]
    );
}

#[test]
fn followers_naming_an_absent_leader_do_not_confirm_it() {
    let follower = r#"{"account_details":[{"name":"APP","stream_detail":[{"name":"S",
        "cluster":{"leader":"n1","replicas":[{"name":"n1","current":true},{"name":"n3","current":false}]}}]}]}"#;
    let views = vec![
        ServerJsz {
            server: "n1".into(),
            jsz: None,
        },
        ServerJsz {
            server: "n2".into(),
            jsz: Some(JszView::from_http(follower).unwrap()),
        },
    ];
    let g = combine(&views);
    assert_eq!(g[0].leader.as_deref(), Some("n1"));
    assert!(!g[0].leader_confirmed && !g[0].healthy);
    assert!(
        g[0].problems[0].contains("n1 did not answer"),
        "{:?}",
        g[0].problems
    );
    assert_eq!(strs(&g[0].missing), ["n1", "n3"]);
}

#[test]
fn a_leader_calling_dead_peers_current_is_not_believed() {
    // Seconds after n2 and n3 died the leader n1 still lists them `current: true`
    // (seen on 2.15.1 for a consumer group in tests/natsys.rs).
    let leader = r#"{"account_details":[{"name":"APP","stream_detail":[{"name":"S",
        "cluster":{"leader":"n1","replicas":[{"name":"n2","current":true,"active":900000000},
                                             {"name":"n3","current":true,"active":900000000}]}}]}]}"#;
    let mut views = vec![ServerJsz {
        server: "n1".into(),
        jsz: Some(JszView::from_http(leader).unwrap()),
    }];
    for n in ["n2", "n3"] {
        views.push(ServerJsz {
            server: n.into(),
            jsz: None,
        });
    }
    let g = combine(&views);
    assert!(g[0].leader_confirmed);
    assert!(g[0].not_current.is_empty());
    assert!(!g[0].healthy);
    assert_eq!(strs(&g[0].missing), ["n2", "n3"]);
    assert_eq!(
        g[0].problems,
        ["replicas missing: n2 (did not answer), n3 (did not answer)"]
    );
}

/// One server's `/jsz` with stream `APP > ORDERS` at `last_seq`, stored `idle_s` before `now`,
/// with `leader` and the leader's replica view (`(name, current)`).
fn orders_view(
    server: &str,
    leader: &str,
    last_seq: u64,
    idle_s: i64,
    peers: &[(&str, bool)],
) -> ServerJsz {
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T05:00:00Z").unwrap();
    let last = now - chrono::Duration::seconds(idle_s);
    let replicas: Vec<serde_json::Value> = peers
        .iter()
        .map(|(n, c)| serde_json::json!({"name": n, "current": c, "active": 1_000_000}))
        .collect();
    let body = serde_json::json!({
        "now": now.to_rfc3339(),
        "account_details": [{"name": "APP", "stream_detail": [{"name": "ORDERS",
            "state": {"messages": last_seq, "first_seq": 1, "last_seq": last_seq, "last_ts": last.to_rfc3339()},
            "cluster": {"name": "lab", "leader": leader, "replicas": replicas}}]}]
    });
    ServerJsz {
        server: server.into(),
        jsz: Some(JszView::from_http(&body.to_string()).unwrap()),
    }
}

#[test]
fn a_replica_short_of_an_idle_leaders_last_message_is_not_healthy_even_when_called_current() {
    // Seen on nats-server 2.9.10 after a partition healed (lab, 2026-12-02): the leader n1
    // calls n2 current, but n2 stays at 100 while n1 and n3 hold 101.
    let views = vec![
        orders_view("n1", "n1", 101, 45, &[("n2", true), ("n3", true)]),
        orders_view("n2", "n1", 100, 60, &[("n1", true), ("n3", false)]),
        orders_view("n3", "n1", 101, 45, &[("n1", true), ("n2", false)]),
    ];
    let g = combine(&views);
    let s = by_label(&g, "APP > ORDERS");
    assert_eq!(s.leader.as_deref(), Some("n1"));
    assert!(s.not_current.is_empty(), "the leader's view: all current");
    assert_eq!(s.behind_own.get("n2"), Some(&1));
    assert_eq!(s.behind_own.len(), 1);
    assert!(!s.healthy);
    assert_eq!(
        s.problems,
        [
            "by their own count, replicas lack messages the leader n1 stored 45s ago: n2 at 100 \
          (1 behind) (leader at 101); the leader calls n2 current: a log that diverged from the \
          leader's (nats-server 2.9 can keep one after a partition heals; with the account's \
          credentials, `nats stream cluster peer-remove ORDERS n2` makes the stream replace \
          it with a fresh copy from the leader)"
        ]
    );
}

#[test]
fn followers_a_moment_behind_a_busy_leader_are_healthy() {
    // Under traffic a follower's own count trails the leader's by what arrived between the
    // two answers: the leader stored its last message 0.2 s ago, so that is not a problem.
    let views = vec![
        orders_view("n1", "n1", 5000, 0, &[("n2", true), ("n3", true)]),
        orders_view("n2", "n1", 4990, 0, &[]),
        orders_view("n3", "n1", 4996, 0, &[]),
    ];
    let g = combine(&views);
    let s = by_label(&g, "APP > ORDERS");
    assert!(s.behind_own.is_empty());
    assert!(s.healthy, "{:?}", s.problems);
    // A stream idle long enough, every replica at the leader's sequence: healthy too.
    let views = vec![
        orders_view("n1", "n1", 100, 600, &[("n2", true), ("n3", true)]),
        orders_view("n2", "n1", 100, 600, &[]),
        orders_view("n3", "n1", 100, 600, &[]),
    ];
    assert!(combine(&views)[0].healthy);
}
