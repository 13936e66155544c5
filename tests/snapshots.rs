//! Snapshots (insta) of the human output an operator reads, from real data: the `status`
//! table and the `diagnose` findings built from the nats-server captures in
//! `tests/fixtures/nats`, and the `journal show` timeline of journals written by
//! `JournalWriter`. Review changes with `cargo insta review` (or read the `.snap` files).
//!
//! SSH-side facts (service state, TCP reachability of peers, firewall rules) are not in the
//! captures; the scenarios add them the way `src/nats/tests.rs` does.

use nats_rescue::app::status::diagnosis;
use nats_rescue::engine::Finding;
use nats_rescue::inventory::Inventory;
use nats_rescue::journal::{self, show, Event, JournalWriter, Record, GENESIS_HASH};
use nats_rescue::nats::probe::{ShellReport, TcpResult};
use nats_rescue::nats::{ClusterFacts, HttpBodies, NodeFacts};
use nats_rescue::runbook::Library;
use nats_rescue::transport::local::LocalTransport;
use nats_rescue::transport::recording::RecordingTransport;
use nats_rescue::transport::Transport;
use nats_rescue::ui::status::{render_findings, render_status};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// ------------------------------------------------------------------------------------------
// Facts from the captures

fn capture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nats")
        .join(rel)
}

/// The lab inventory the captures were taken from: n1..n3 on 127.0.0.1, per-version ports.
fn inv(version: &str) -> Inventory {
    let (cluster, monitor) = match version {
        "2.15.1" => (16222, 18222),
        "2.9.10" => (26222, 28222),
        v => panic!("no ports for {v}"),
    };
    let mut text =
        String::from("cluster: c1\ndefaults:\n  nats:\n    system_account: SYS\nnodes:\n");
    for i in 0..3u16 {
        text.push_str(&format!(
            "  - name: n{n}\n    host: 127.0.0.1\n    nats: {{cluster_port: {c}, monitor_port: {m}, store_dir: /srv/natslab/n{n}}}\n",
            n = i + 1,
            c = cluster + i,
            m = monitor + i,
        ));
    }
    Inventory::parse(Path::new("lab.yaml"), &text).expect("lab inventory parses")
}

/// A node's facts from its monitoring capture.
fn http(name: &str, rel: &str) -> NodeFacts {
    let b = HttpBodies::from_capture_dir(&capture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut f = NodeFacts::from_http(name, &b);
    f.host = "127.0.0.1".into();
    f
}

/// A stopped server: service inactive (exit 3), nothing listening, monitoring refused.
fn dead(name: &str, monitor_port: u16) -> NodeFacts {
    let refused = format!(
        "cannot connect to 127.0.0.1:{monitor_port}: error sending request: tcp connect error: Connection refused (os error 111)"
    );
    let b = HttpBodies {
        varz: Some(Err(refused.clone())),
        healthz: Some(Err(refused)),
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

/// A running server as SSH sees it: service active, listening, peers' cluster ports as given.
fn alive(mut f: NodeFacts, tcp: &[(&str, &str)], firewall: &[&str]) -> NodeFacts {
    let r = ShellReport {
        service_exit: Some(0),
        listening: Some(true),
        pid: Some(4242),
        proc_state: Some("S".into()),
        tcp: tcp
            .iter()
            .map(|(peer, result)| TcpResult {
                peer: peer.to_string(),
                host: "127.0.0.1".into(),
                port: 0,
                result: result.to_string(),
            })
            .collect(),
        firewall: firewall
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        complete: true,
        ..Default::default()
    };
    f.apply_shell(Ok(&r));
    f
}

fn port(inv: &Inventory, name: &str) -> u16 {
    inv.node(name).expect("node").nats.monitor_port
}

fn healthy_2_15_1() -> (Inventory, ClusterFacts) {
    let inv = inv("2.15.1");
    let nodes = (1..=3)
        .map(|i| {
            let others: Vec<(String, &str)> = (1..=3)
                .filter(|j| *j != i)
                .map(|j| (format!("n{j}"), "ok"))
                .collect();
            let tcp: Vec<(&str, &str)> = others.iter().map(|(p, r)| (p.as_str(), *r)).collect();
            alive(
                http(&format!("n{i}"), &format!("v2.15.1/healthy/n{i}")),
                &tcp,
                &[],
            )
        })
        .collect();
    let f = ClusterFacts::build(&inv, nodes);
    (inv, f)
}

/// One survivor (its capture), the two others stopped.
fn quorum_lost(
    version: &str,
    rel: &str,
    survivor: &str,
    down: [&str; 2],
) -> (Inventory, ClusterFacts) {
    let inv = inv(version);
    let mut nodes = vec![alive(
        http(survivor, rel),
        &[(down[0], "refused"), (down[1], "refused")],
        &[],
    )];
    for d in down {
        nodes.push(dead(d, port(&inv, d)));
    }
    let f = ClusterFacts::build(&inv, nodes);
    (inv, f)
}

/// n2 cut off by iptables DROP rules on the cluster port, 15 s after the cut.
fn partition_2_15_1() -> (Inventory, ClusterFacts) {
    let inv = inv("2.15.1");
    let n = |i: u32| http(&format!("n{i}"), &format!("v2.15.1/partition/at15s_n{i}"));
    let nodes = vec![
        alive(n(1), &[("n2", "timeout"), ("n3", "ok")], &[]),
        alive(
            n(2),
            &[("n1", "timeout"), ("n3", "timeout")],
            &[
                "-A INPUT -p tcp -m tcp --dport 16223 -j DROP",
                "-A OUTPUT -p tcp -m tcp --sport 16223 -j DROP",
            ],
        ),
        alive(n(3), &[("n1", "ok"), ("n2", "timeout")], &[]),
    ];
    let f = ClusterFacts::build(&inv, nodes);
    (inv, f)
}

/// Every node's `routes` point at wrong ports: nothing ever formed (captures only, no SSH).
fn bad_routes_2_15_1() -> (Inventory, ClusterFacts) {
    let inv = inv("2.15.1");
    let nodes = (1..=3)
        .map(|i| {
            http(
                &format!("n{i}"),
                &format!("v2.15.1/bad-routes/C_all_bad_n{i}"),
            )
        })
        .collect();
    let f = ClusterFacts::build(&inv, nodes);
    (inv, f)
}

fn assert_fits(text: &str, width: usize) {
    for l in text.lines() {
        assert!(l.chars().count() <= width, "line longer than {width}:\n{l}");
    }
}

// ------------------------------------------------------------------------------------------
// `status`

fn status(name: &str, f: &ClusterFacts) {
    let text = render_status(f, false, 80);
    assert_fits(&text, 100);
    assert!(
        !text.contains('\u{1b}'),
        "escape codes without colour:\n{text}"
    );
    insta::assert_snapshot!(name, text);
}

#[test]
fn status_healthy_2_15_1() {
    let (_, f) = healthy_2_15_1();
    assert!(f.healthy);
    status("status-healthy-2.15.1", &f);
}

#[test]
fn status_quorum_lost_2_15_1() {
    let (_, f) = quorum_lost("2.15.1", "v2.15.1/quorum-lost/n1_at50s", "n1", ["n2", "n3"]);
    status("status-quorum-lost-2.15.1", &f);
}

#[test]
fn status_quorum_lost_2_9_10() {
    let (_, f) = quorum_lost("2.9.10", "v2.9.10/quorum-lost/n3_at40s", "n3", ["n1", "n2"]);
    status("status-quorum-lost-2.9.10", &f);
}

#[test]
fn status_partition_2_15_1() {
    let (_, f) = partition_2_15_1();
    status("status-partition-2.15.1", &f);
}

// ------------------------------------------------------------------------------------------
// `diagnose`: the findings, as the command prints them

/// Runs every built-in runbook's diagnose steps over these facts, the way `diagnose` does.
/// Facts come from the captures; no diagnose step sends anything to a node (everything they
/// need is in the probe's facts), which the recording transport proves.
fn diagnose(inv: &Inventory, f: &ClusterFacts) -> (Vec<Finding>, Vec<(String, String)>) {
    let rec = RecordingTransport::new(LocalTransport::default());
    let transport: Arc<dyn Transport> = Arc::new(rec.clone());
    let d = diagnosis(&Library::new(None), inv, transport, f);
    assert!(
        d.errors.is_empty(),
        "runbooks failed to evaluate: {:?}",
        d.errors
    );
    (d.findings, rec.commands())
}

fn diagnosed(name: &str, inv: &Inventory, f: &ClusterFacts) -> Vec<Finding> {
    let (found, commands) = diagnose(inv, f);
    assert!(
        commands.is_empty(),
        "diagnose steps sent commands beyond the probe: {commands:?}"
    );
    let text = render_findings(f.healthy, &found);
    assert!(!text.contains('\u{1b}'));
    insta::assert_snapshot!(name, text);
    found
}

fn causes(found: &[Finding]) -> Vec<&str> {
    found.iter().map(|f| f.cause.as_str()).collect()
}

#[test]
fn diagnose_healthy_2_15_1() {
    let (inv, f) = healthy_2_15_1();
    let found = diagnosed("diagnose-healthy-2.15.1", &inv, &f);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn diagnose_quorum_lost_2_15_1() {
    let (inv, f) = quorum_lost("2.15.1", "v2.15.1/quorum-lost/n1_at50s", "n1", ["n2", "n3"]);
    let found = diagnosed("diagnose-quorum-lost-2.15.1", &inv, &f);
    assert_eq!(
        causes(&found).first(),
        Some(&"insufficient-nodes"),
        "{found:?}"
    );
}

#[test]
fn diagnose_quorum_lost_2_9_10() {
    let (inv, f) = quorum_lost("2.9.10", "v2.9.10/quorum-lost/n3_at40s", "n3", ["n1", "n2"]);
    let found = diagnosed("diagnose-quorum-lost-2.9.10", &inv, &f);
    assert_eq!(
        causes(&found).first(),
        Some(&"insufficient-nodes"),
        "{found:?}"
    );
}

#[test]
fn diagnose_partition_2_15_1() {
    let (inv, f) = partition_2_15_1();
    let found = diagnosed("diagnose-partition-2.15.1", &inv, &f);
    assert_eq!(
        causes(&found).first(),
        Some(&"network-partition"),
        "{found:?}"
    );
}

#[test]
fn diagnose_bad_routes_2_15_1() {
    let (inv, f) = bad_routes_2_15_1();
    let found = diagnosed("diagnose-bad-routes-2.15.1", &inv, &f);
    assert_eq!(causes(&found).first(), Some(&"cluster-config"), "{found:?}");
}

// ------------------------------------------------------------------------------------------
// `journal show`

const INCIDENT_A: &str = "20261127T031205Z-insufficient-nodes-7c2e";
const INCIDENT_B: &str = "20261127T041500Z-reset-option-a-19fd";

fn sha(s: &str) -> String {
    nats_rescue::inventory::sha256_hex(s.as_bytes())
}

fn opened(runbook: &str, operator: &str, vars: &[(&str, &str)]) -> Event {
    Event::IncidentOpened {
        operator: operator.into(),
        tool_version: "0.1.0".into(),
        runbook: runbook.into(),
        runbook_sha256: sha(runbook),
        runbook_source: "builtin".into(),
        inventory: "/etc/nats-rescue/prod-east.yaml".into(),
        inventory_sha256: sha("prod-east inventory"),
        cluster: "prod-east".into(),
        rehearsal: false,
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        node_limit: vec![],
    }
}

fn started(step: &str, kind: &str) -> Event {
    Event::StepStarted {
        step: step.into(),
        kind: kind.into(),
    }
}

fn finished(step: &str, outcome: &str, detail: Option<&str>) -> Event {
    Event::StepFinished {
        step: step.into(),
        outcome: outcome.into(),
        detail: detail.map(String::from),
    }
}

fn facts(step: &str, up: &[&str], down: &[&str], leader: Option<&str>) -> Event {
    Event::FactsGathered {
        step: step.into(),
        summary: serde_json::json!({
            "has_leader": leader.is_some(), "leader": leader, "healthy": leader.is_some() && down.is_empty(),
            "up": up, "down": down, "unreachable": [], "frozen": [], "nodes": {},
        }),
    }
}

fn confirmation(step: &str, question: &str, destructive: bool, approved: bool, how: &str) -> Event {
    Event::Confirmation {
        step: step.into(),
        question: question.into(),
        destructive,
        approved,
        how: how.into(),
    }
}

fn intent(step: &str, node: &str, command: &str, check: Option<&str>) -> Event {
    Event::ActionIntent {
        action: format!("{step}@{node}"),
        step: step.into(),
        node: node.into(),
        command: command.into(),
        mutating: true,
        idempotent: true,
        check: check.map(String::from),
    }
}

fn result(step: &str, node: &str, exit: Option<i32>, stdout: &str, stderr: &str, ms: u64) -> Event {
    Event::ActionResult {
        action: format!("{step}@{node}"),
        step: step.into(),
        node: node.into(),
        exit_code: exit,
        timed_out: exit.is_none(),
        error: None,
        stdout: stdout.into(),
        stdout_bytes: stdout.len() as u64,
        stdout_sha256: sha(stdout),
        stderr: stderr.into(),
        stderr_bytes: stderr.len() as u64,
        stderr_sha256: sha(stderr),
        duration_ms: ms,
    }
}

fn unreachable(step: &str, node: &str, error: &str) -> Event {
    Event::ActionResult {
        action: format!("{step}@{node}"),
        step: step.into(),
        node: node.into(),
        exit_code: None,
        timed_out: false,
        error: Some(error.into()),
        stdout: String::new(),
        stdout_bytes: 0,
        stdout_sha256: sha(""),
        stderr: String::new(),
        stderr_bytes: 0,
        stderr_sha256: sha(""),
        duration_ms: 5003,
    }
}

/// Writes `events` with the real writer (redaction, hash chain, fsync), reads the file back
/// and re-seals it with fixed timestamps: `offsets_ms[i]` after 03:12:05 for record i+1.
/// The chain stays valid (checked), and the snapshot no longer depends on the clock.
fn journal(incident: &str, events: Vec<(u64, Event)>) -> Vec<Record> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut it = events.into_iter();
    let (_, first) = it.next().expect("an incident_opened event");
    let mut offsets = vec![0];
    let mut w = JournalWriter::create(dir.path(), incident, first).expect("create journal");
    for (at, ev) in it {
        w.append(ev).expect("append");
        offsets.push(at);
    }
    let path = w.path().to_path_buf();
    drop(w);
    let (records, report) = journal::load(&path).expect("journal loads");
    assert!(report.exit_code() == 0, "{}", report.describe());
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-27T03:12:05.000Z").expect("t0");
    let mut prev = GENESIS_HASH.to_string();
    let resealed: Vec<Record> = records
        .into_iter()
        .zip(offsets)
        .map(|(r, at)| {
            let ts = (t0 + chrono::Duration::milliseconds(at as i64))
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            let r = Record::seal(r.seq, ts, &r.incident, r.event, &prev);
            prev = r.hash.clone();
            r
        })
        .collect();
    let bytes: String = resealed
        .iter()
        .map(|r| format!("{}\n", r.to_line()))
        .collect();
    let v = journal::verify_bytes(bytes.as_bytes()).expect("verify");
    assert_eq!(v.exit_code(), 0, "{}", v.describe());
    resealed
}

/// insufficient-nodes: approved on the terminal, Ctrl-C while the servers start, resumed by
/// a colleague (the node's receipt settles the action in doubt), recovered.
#[test]
fn journal_show_interrupted_and_resumed() {
    let q = "Start nats-server on n2, n3?";
    let records = journal(
        INCIDENT_A,
        vec![
            (0, opened("insufficient-nodes", "alice@bastion-1", &[])),
            (4, started("gather", "diagnose")),
            (1180, facts("gather", &["n1"], &["n2", "n3"], None)),
            (1181, finished("gather", "ok", None)),
            (1183, started("quorum-lost", "diagnose")),
            (
                1190,
                Event::Finding {
                    step: "quorum-lost".into(),
                    cause: "insufficient-nodes".into(),
                    confidence: "high".into(),
                    score: None,
                    summary: "2 of 3 servers are down; quorum needs 2".into(),
                    evidence: vec![
                        "n2: nats-server is not running (service status exit 3)".into(),
                        "n3: nats-server is not running (service status exit 3)".into(),
                    ],
                },
            ),
            (1191, finished("quorum-lost", "ok", None)),
            (
                1192,
                Event::StepSkipped {
                    step: "unreachable".into(),
                    reason: "when: facts.unreachable | length > 0 is false".into(),
                },
            ),
            (1195, started("approve-start", "confirm")),
            (9870, confirmation("approve-start", q, false, true, "tty")),
            (9871, finished("approve-start", "ok", None)),
            (9873, started("start", "fix")),
            (
                9880,
                intent(
                    "start",
                    "n2",
                    "systemctl start nats-server",
                    Some("systemctl is-active nats-server"),
                ),
            ),
            (
                9884,
                intent(
                    "start",
                    "n3",
                    "systemctl start nats-server",
                    Some("systemctl is-active nats-server"),
                ),
            ),
            (11322, result("start", "n2", Some(0), "", "", 1438)),
            (
                11330,
                Event::Interrupted {
                    reason: "interrupted by the operator (Ctrl-C)".into(),
                },
            ),
            (
                11331,
                finished(
                    "start",
                    "stopped",
                    Some("interrupted by the operator (Ctrl-C)"),
                ),
            ),
            (
                11333,
                Event::IncidentClosed {
                    outcome: "stopped".into(),
                    detail: Some("interrupted by the operator (Ctrl-C)".into()),
                },
            ),
            (
                187_402,
                Event::Resumed {
                    operator: "bob@bastion-2".into(),
                    in_doubt: vec!["start@n3 (systemctl start nats-server)".into()],
                    repaired_torn_tail: false,
                },
            ),
            (
                187_650,
                Event::Decision {
                    action: "start@n3".into(),
                    node: "n3".into(),
                    decision: "receipt".into(),
                    how: "node receipt".into(),
                    detail: Some("the command finished on the node with exit code 0".into()),
                },
            ),
            (187_655, started("approve-start", "confirm")),
            (
                187_656,
                confirmation(
                    "approve-start",
                    q,
                    false,
                    true,
                    "journal (approved before the interruption)",
                ),
            ),
            (187_657, finished("approve-start", "ok", None)),
            (187_659, started("start", "fix")),
            (187_661, finished("start", "ok", None)),
            (187_662, started("leader", "verify")),
            (
                193_870,
                facts("leader", &["n1", "n2", "n3"], &[], Some("n1")),
            ),
            (193_871, finished("leader", "ok", None)),
            (
                193_874,
                Event::IncidentClosed {
                    outcome: "recovered".into(),
                    detail: None,
                },
            ),
        ],
    );
    let text = show(&records);
    assert!(!text.contains('\u{1b}'));
    insta::assert_snapshot!("journal-show-interrupted-resumed", text);
}

/// reset-option-a: a secret variable (redacted by the writer), a host key accepted on first
/// contact, verified backups, a typed destructive confirmation, then one node unreachable and
/// one timed out.
#[test]
fn journal_show_destructive_with_backups_and_failures() {
    let q = "DELETE the JetStream Raft state on every server? Streams will be orphaned and DELETED about 30 s after the servers start; the backups just made are the only way back.";
    let store = |n: &str| format!("/var/lib/nats/{n}");
    let raft = |n: &str| format!("/var/lib/nats/{n}/jetstream/SYS/_js_");
    let mut events = vec![
        (
            0,
            opened(
                "reset-option-a",
                "carol@ops-3",
                &[
                    ("backup_dir", "/srv/backups"),
                    ("api_token", "s3cr3t-t0ken"),
                ],
            ),
        ),
        (
            310,
            Event::HostKeyAccepted {
                node: "n3".into(),
                host: "nats-3.internal".into(),
                fingerprint: "SHA256:Vd9bWqzY3m1m0a0x0E6pXc8hB9yJ3m8cTq2q8mCwQ4k".into(),
            },
        ),
        (312, started("backup", "fix")),
    ];
    let nodes = ["n1", "n2", "n3"];
    for (i, n) in nodes.iter().enumerate() {
        let script = format!(
            "set -e\nsrc={}\ndest=/srv/backups\nmkdir -p \"$dest\"",
            store(n)
        );
        events.push((315 + i as u64, intent("backup", n, &script, None)));
    }
    for (i, n) in nodes.iter().enumerate() {
        let at = 3620 + 250 * i as u64;
        let path = format!("/srv/backups/{INCIDENT_B}-{n}.tar.gz");
        let size = 48_213 + 1_000 * i as u64;
        let out = format!(
            "path={path}\nsize={size}\nsha256={}\nsource={}\n",
            sha(n),
            store(n)
        );
        events.push((at, result("backup", n, Some(0), &out, "", at - 315)));
        events.push((
            at + 1,
            Event::BackupMade {
                step: "backup".into(),
                node: n.to_string(),
                path,
                size,
                sha256: sha(n),
                source: store(n),
            },
        ));
    }
    events.extend([
        (4200, finished("backup", "ok", None)),
        (4203, started("approve-wipe", "confirm")),
        (41_002, confirmation("approve-wipe", q, true, true, "typed")),
        (41_004, finished("approve-wipe", "ok", None)),
        (41_010, started("wipe", "fix")),
        (41_012, facts("wipe", &[], &["n1", "n2", "n3"], None)),
    ]);
    for (i, n) in nodes.iter().enumerate() {
        let cmd = format!("rm -rf -- {} && echo removed {}", raft(n), raft(n));
        let check = format!("[ ! -e {} ]", raft(n));
        events.push((41_015 + i as u64, intent("wipe", n, &cmd, Some(&check))));
    }
    events.extend([
        (
            41_140,
            result(
                "wipe",
                "n1",
                Some(0),
                &format!("removed {}\n", raft("n1")),
                "",
                124,
            ),
        ),
        (
            46_020,
            unreachable(
                "wipe",
                "n2",
                "connection to nats-2.internal:22 timed out after 5s",
            ),
        ),
        (71_030, result("wipe", "n3", None, "", "", 30_012)),
        (
            71_031,
            finished("wipe", "failed", Some("step `wipe` failed on n2, n3")),
        ),
        (
            71_040,
            Event::IncidentClosed {
                outcome: "failed".into(),
                detail: Some("step `wipe` failed on n2, n3".into()),
            },
        ),
    ]);
    let records = journal(INCIDENT_B, events);
    let text = show(&records);
    assert!(
        !text.contains("s3cr3t"),
        "a secret reached the journal:\n{text}"
    );
    assert!(!text.contains('\u{1b}'));
    insta::assert_snapshot!("journal-show-destructive-failures", text);
}
