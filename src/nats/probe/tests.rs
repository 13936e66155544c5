#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn parses_a_probe_output() {
    let out = "NRS_BEGIN 1\nSERVICE 3\nLISTEN 6222 no\nLISTEN 8222 no\n\
TCP n2 10.0.0.12 6222 timeout\nTCP n3 nats-3 6222 refused\nDNS n3 nats-3 ok 10.0.0.13 \n\
LOADAVG 0.50 0.40 0.30 1/200 1234\nNPROC 2\nMEM MemTotal:        8000000 kB\nMEM MemAvailable:   200000 kB\n\
STORE yes\nDF /dev/sda1 100000 97000 3000 98% /var\nMETADIR yes\n\
TAVHEX 34 00 00 00 00 00 00 00 42 58 53 63 72 59 39 69 \n\
COMMITHEX 19 00 00 00 00 00 00 00 \n\
PEERSHEX 03 00 00 00 03 00 00 00 42 58 53 63 72 59 39 69 66 6a 46 79 45 6a 63 31 34 34 6a 7a 6b 56 39 44 00 00 \n\
SNAP snap.2.7\nSNAP snap.52.25\nWAL 1 116\nCONFIG yes\nCFGFILE /etc/nats.conf\nCFGL cluster {\nCFGL   routes = [\nCFGL     nats://127.0.0.1:16223 # n2\nCFGL     \"nats://u:p@nats-3:6222\"\nCFGL   ]\nCFGL }\nCFGEND\n\
FW -A INPUT -p tcp -m tcp --dport 6222 -j DROP\nFW -A INPUT -p tcp --dport 16222 -j DROP\nNRS_END\n";
    let r = ShellReport::parse(out, "/var/lib/nats", 6222);
    assert!(r.complete);
    assert_eq!(r.service_exit, Some(3));
    assert_eq!(r.listening, Some(false));
    assert_eq!(r.tcp.len(), 2);
    assert_eq!(r.tcp[0].result, "timeout");
    assert_eq!(r.dns[0].addresses, vec!["10.0.0.13"]);
    assert_eq!(r.tav, Some((52, "BXScrY9i".into())));
    assert_eq!(r.commit_index, Some(25));
    assert_eq!(
        r.peers_idx,
        Some((
            3,
            vec!["BXScrY9i".into(), "fjFyEjc1".into(), "44jzkV9D".into()]
        ))
    );
    assert_eq!(r.snapshots.iter().max(), Some(&(52, 25)));
    assert_eq!(
        r.config_routes,
        vec!["nats://127.0.0.1:16223", "nats://u:[REDACTED]@nats-3:6222"]
    );
    assert_eq!(
        r.config.as_ref().unwrap().routes_file.as_deref(),
        Some("/etc/nats.conf")
    );
    assert_eq!(
        r.firewall,
        vec!["-A INPUT -p tcp -m tcp --dport 6222 -j DROP"]
    );
    assert_eq!(r.df.as_ref().unwrap().used_kb, 97000);
    assert_eq!(r.wal_last_index, None);
    assert_eq!(r.mem_available_kb, Some(200000));
}

#[test]
fn last_wal_record() {
    // 2.9.10 _meta_/msgs/1.blk from a fresh cluster: records 1..3 (95 + 98 + 98 bytes)
    let mut b = vec![0u8; 291];
    for (off, rl, seq) in [(0usize, 95u32, 1u64), (95, 98, 2), (193, 98, 3)] {
        b[off..off + 4].copy_from_slice(&rl.to_le_bytes());
        b[off + 4..off + 12].copy_from_slice(&seq.to_le_bytes());
    }
    assert_eq!(last_record_seq(&b), Some(3));
    assert_eq!(last_record_seq(&b[..200]), None);
    assert_eq!(last_record_seq(&[]), None);
}

#[test]
fn script_quotes_node_values() {
    let text = "cluster: c\ndefaults:\n  nats:\n    store_dir: \"/data/it's here\"\n    service:\n      status: systemctl is-active nats-server\nnodes:\n  - {name: n1, host: 10.0.0.1}\n  - {name: n2, host: \"nats-2; rm -rf /\"}\n";
    let inv = Inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
    let s = render_probe_script(&inv, &inv.nodes[0]).unwrap();
    assert!(
        s.contains("SVC_STATUS='systemctl is-active nats-server'"),
        "{s}"
    );
    assert!(
        s.contains(r#"STORE_DIR="/data/it's here""#)
            || s.contains(r#"STORE_DIR='/data/it'\''s here'"#),
        "{s}"
    );
    assert!(s.contains("set -- n2 'nats-2; rm -rf /' 6222 name"), "{s}");
    assert!(!s.contains("set -- n1"));
}

#[test]
fn script_is_valid_posix_sh() {
    let text =
        "cluster: c\nnodes:\n  - {name: n1, host: 127.0.0.1}\n  - {name: n2, host: localhost}\n";
    let inv = Inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
    let s = render_probe_script(&inv, &inv.nodes[0]).unwrap();
    let st = std::process::Command::new("sh")
        .arg("-n")
        .arg("-c")
        .arg(&s)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn script_prints_the_config_and_its_includes_for_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("nats.conf");
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        &main,
        "server_name: n1\n  include \"conf.d/cluster.conf\" # routes live here\n",
    )
    .unwrap();
    std::fs::write(
            dir.path().join("conf.d/cluster.conf"),
            "cluster {\n  port: 1\n  authorization { user: r, password: \"s3cr3t-pw\" }\n  routes = [\n    nats-route://r:s3cr3t-pw@127.0.0.1:1\n  ]\n}\n",
        )
        .unwrap();
    let text = format!(
            "cluster: c\ndefaults:\n  nats:\n    cluster_port: 1\n    monitor_port: 2\n    store_dir: /nonexistent-nrs\n    config_file: {}\n    service:\n      status: \"false\"\nnodes:\n  - {{name: n1, host: 127.0.0.1}}\n  - {{name: n2, host: 127.0.0.1}}\n",
            main.display()
        );
    let inv = Inventory::parse(std::path::Path::new("i.yaml"), &text).unwrap();
    let t = crate::transport::local::LocalTransport::default();
    let r = run_shell_probe(&t, &inv, &inv.nodes[0], Duration::from_secs(5)).unwrap();
    let c = r.config.clone().unwrap();
    assert_eq!(c.files.len(), 2, "{c:?}");
    assert_eq!(
        c.routes_file.as_deref(),
        Some(dir.path().join("conf.d/cluster.conf").to_str().unwrap())
    );
    assert_eq!(c.routes, vec!["nats-route://r:[REDACTED]@127.0.0.1:1"]);
    assert!(c.cluster_authorization && c.routes_have_credentials);
    assert_eq!(c.server_name.as_deref(), Some("n1"));
    assert_eq!(r.config_writable, Some(true));
    assert!(!format!("{c:?}").contains("s3cr3t-pw"));
}

#[test]
fn script_runs_locally_without_crashing() {
    // Runs the real script on this machine against a closed port: every line parses.
    let text = "cluster: c\ndefaults:\n  nats:\n    cluster_port: 1\n    monitor_port: 2\n    store_dir: /nonexistent-nrs\n    config_file: /nonexistent-nrs.conf\n    service:\n      status: \"false\"\nnodes:\n  - {name: n1, host: 127.0.0.1}\n  - {name: n2, host: 127.0.0.1}\n";
    let inv = Inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
    let t = crate::transport::local::LocalTransport::default();
    let r = run_shell_probe(&t, &inv, &inv.nodes[0], Duration::from_secs(5)).unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(r.service_exit, Some(1));
    assert_eq!(r.store_exists, Some(false));
    // The peer n2 was checked (bash and timeout are on every machine this runs on).
    let tcp = r
        .tcp
        .first()
        .unwrap_or_else(|| panic!("no TCP result for n2: {r:?}"));
    assert_eq!(tcp.peer, "n2");
    assert_eq!(tcp.result, "refused", "{r:?}");
}

#[test]
fn which_ssh_failures_make_a_node_unmanageable() {
    let e = |s: &str| s.to_string();
    let changed = TransportError::HostKeyChanged {
        host: e("jump host ops@10.0.0.10 (10.0.0.10)"),
        known_hosts: e("/k"),
        known: e("ssh-ed25519 SHA256:a"),
        offered: e("ssh-ed25519 SHA256:b"),
    };
    let why = unmanageable_reason(&changed).unwrap();
    assert!(
        why.starts_with("host key refused: HOST KEY CHANGED for jump host"),
        "{why}"
    );
    let auth = TransportError::Auth {
        user: e("ops"),
        host: e("n1"),
        reason: e("key rejected"),
    };
    assert!(unmanageable_reason(&auth)
        .unwrap()
        .contains("authentication failed"));
    let jump_down = TransportError::Connect {
        addr: e("jump host ops@10.0.0.10 (10.0.0.10:22)"),
        reason: e("Connection refused"),
    };
    assert!(unmanageable_reason(&jump_down)
        .unwrap()
        .starts_with("jump host unusable"));
    // The bastion is fine but the node behind it does not answer: down, not unmanageable.
    let behind = TransportError::Connect {
        addr: e("n1 (10.0.0.11:22) through the jump host ops@10.0.0.10"),
        reason: e("the jump host cannot open a connection to 10.0.0.11:22"),
    };
    assert_eq!(unmanageable_reason(&behind), None);
    // A node that is simply off is down, not unmanageable.
    let off = TransportError::Connect {
        addr: e("10.0.0.11:22"),
        reason: e("Connection refused"),
    };
    assert_eq!(unmanageable_reason(&off), None);
    let inv = Inventory::parse(
            std::path::Path::new("i.yaml"),
            "cluster: c\ndefaults: {ssh: {user: nats-admin, sudo: true}}\nnodes:\n  - {name: n1, host: 10.0.0.11}\n",
        )
        .unwrap();
    assert_eq!(
        sudoers_line(&inv.nodes[0]),
        "nats-admin ALL=(root) NOPASSWD: ALL"
    );
    assert!(sudo_refused(&inv.nodes[0]).contains("for nats-admin (sudo -n refused)"));
}

#[test]
fn system_view_stands_in_for_a_silent_monitor_port() {
    let text = "cluster: c\nnodes:\n  - {name: n1, host: 127.0.0.1}\n";
    let inv = Inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
    let node = &inv.nodes[0];
    let http = HttpBodies {
        varz: Some(Err("operation timed out".into())),
        ..Default::default()
    };
    let sys = HttpBodies {
        varz: Some(Ok((
            200,
            r#"{"server_name":"n1","version":"2.15.1"}"#.into(),
        ))),
        healthz: Some(Ok((200, r#"{"status":"ok"}"#.into()))),
        ..Default::default()
    };
    let obs = |http: &HttpBodies| crate::nats::observe::NodeObservation {
        name: "n1".into(),
        http: http.clone(),
        probe: crate::nats::observe::ProbeObservation::NotRun {
            error: "ssh: refused".into(),
            unmanageable: None,
        },
    };
    let assemble = |_: &crate::inventory::Node, http: &HttpBodies, sys: Option<&HttpBodies>| {
        crate::nats::observe::node_facts(node, &obs(http), sys)
    };
    let f = assemble(node, &http, Some(&sys));
    assert_eq!(f.source.as_deref(), Some("system"));
    assert_eq!(f.monitor, "ok");
    assert_eq!(f.version.as_deref(), Some("2.15.1"));
    assert!(f.errors[0].contains("timed out") && f.errors[0].contains("system account"));
    // HTTP answered: the system view is not used.
    let ok = HttpBodies {
        varz: Some(Ok((
            200,
            r#"{"server_name":"n1","version":"2.9.10"}"#.into(),
        ))),
        ..Default::default()
    };
    let f = assemble(node, &ok, Some(&sys));
    assert_eq!(f.source.as_deref(), Some("http"));
    assert_eq!(f.version.as_deref(), Some("2.9.10"));
    // Neither answered.
    let f = assemble(node, &http, None);
    assert_eq!(f.source, None);
    assert_ne!(f.monitor, "ok");
}
