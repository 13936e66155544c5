//! Inventory parsing: every field, its errors and positions, and secrets never shown.
use super::*;

const SPEC_EXAMPLE: &str = r#"
cluster: prod-east
defaults:
  ssh:
    user: nats-admin
    port: 22
    identity_file: ~/.ssh/id_ed25519
    known_hosts: ~/.ssh/known_hosts
    connect_timeout: 5s
    command_timeout: 60s
    sudo: false
  nats:
    monitor_port: 8222
    monitor: auto
    cluster_port: 6222
    config_file: /etc/nats/nats-server.conf
    store_dir: /var/lib/nats
    system_account: $SYS
    service:
      start: systemctl start nats-server
      stop: systemctl stop nats-server
      status: systemctl is-active nats-server
      reload: systemctl reload nats-server
nodes:
  - name: n1
    host: 10.0.0.11
  - name: n2
    host: nats-2.internal
    ssh: { port: 2222 }
"#;

#[test]
fn spec_example_loads_with_overrides() {
    let inv = Inventory::parse(Path::new("inv.yaml"), SPEC_EXAMPLE).unwrap();
    assert_eq!(inv.cluster, "prod-east");
    assert_eq!(inv.nodes.len(), 2);
    assert_eq!(inv.nodes[0].ssh.port, 22);
    assert_eq!(inv.nodes[1].ssh.port, 2222);
    assert_eq!(inv.nodes[1].ssh.user, "nats-admin");
    assert_eq!(inv.nodes[1].ssh.command_timeout, Duration::from_secs(60));
    assert!(inv.nodes[0]
        .ssh
        .identity_file
        .as_ref()
        .unwrap()
        .ends_with(".ssh/id_ed25519"));
    assert!(!inv.nodes[0]
        .ssh
        .identity_file
        .as_ref()
        .unwrap()
        .starts_with("~"));
    assert_eq!(inv.nodes[0].nats.monitor, MonitorMode::Auto);
    assert_eq!(
        inv.nodes[0].nats.service.reload.as_deref(),
        Some("systemctl reload nats-server")
    );
    assert_eq!(inv.quorum(), 2);
}

#[test]
fn unknown_field_has_line_and_column() {
    let text = "cluster: c\nnodes:\n  - name: n1\n    hots: 10.0.0.1\n";
    let err = Inventory::parse(Path::new("inv.yaml"), text).unwrap_err();
    let p = &err.0[0];
    assert_eq!(p.line, Some(4), "{p}");
    assert!(p.column.is_some());
    assert!(p.message.contains("unknown field `hots`"), "{p}");
    assert!(err.to_string().starts_with("inv.yaml:4:"), "{err}");
}

#[test]
fn bad_duration_is_reported() {
    let text = "cluster: c\ndefaults:\n  ssh:\n    connect_timeout: 5 seconds\nnodes:\n  - {name: n1, host: h}\n";
    let err = Inventory::parse(Path::new("i.yaml"), text).unwrap_err();
    assert!(err.to_string().contains("invalid duration"), "{err}");
    assert_eq!(err.0[0].line, Some(4));
}

#[test]
fn duplicate_names_and_missing_cluster() {
    let text = "nodes:\n  - {name: n1, host: a}\n  - {name: n1, host: b}\n";
    let err = Inventory::parse(Path::new("i.yaml"), text).unwrap_err();
    let s = err.to_string();
    assert!(s.contains("cluster name is required"), "{s}");
    assert!(s.contains("duplicate node name `n1`"), "{s}");
}

const TURN2: &str = r#"
cluster: prod-east
defaults:
  ssh:
    user: ops
    proxy_jump: ops@bastion:2222,jump2
    config: ~/.ssh/config
    retries: 3
  nats:
    server_bin: /usr/sbin/nats-server
    client_port: 4223
    system_user: { user: sys, password: "hunter2-sys" }
    client_tls: { ca_file: /etc/nats/ca.pem, cert_file: ~/c.pem, key_file: ~/k.pem }
nodes:
  - name: n1
    host: 10.0.0.11
    nats: { cluster_host: 10.1.0.11 }
  - name: n2
    host: 10.0.0.12
    ssh: { proxy_jump: none, retries: 0 }
    nats: { system_creds: ~/sys.creds }
  - name: n3
    host: 10.0.0.13
    nats:
      system_nkey_seed: /etc/nats/sys.nk
      client_tls: { ca_file: /etc/nats/other-ca.pem }
"#;

fn parse(text: &str) -> Result<Inventory, InputProblems> {
    Inventory::parse(Path::new("inv.yaml"), text)
}

fn one_node(ssh: &str, nats: &str) -> String {
    format!(
        "cluster: c\nnodes:\n  - name: n1\n    host: h\n    ssh: {{{ssh}}}\n    nats: {{{nats}}}\n"
    )
}

#[test]
fn ssh_config_fills_what_the_inventory_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        "Host bastion\n  HostName 203.0.113.10\n  Port 2222\n  User jumper\n\
             Host nats-*\n  HostName %h.prod.example\n  User nats-admin\n  Port 2200\n  \
             ProxyJump bastion\n  IdentityFile /keys/nats\n  UserKnownHostsFile /kh/prod\n",
    )
    .unwrap();
    let text = format!(
            "cluster: c\ndefaults: {{ssh: {{config: {}}}}}\nnodes:\n  - name: n1\n    host: nats-1\n  - name: n2\n    host: nats-2\n    ssh: {{user: ops, port: 22, proxy_jump: none, known_hosts: /kh/mine}}\n  - name: n3\n    host: 10.9.9.9\n",
            cfg.display()
        );
    let inv = parse(&text).unwrap();
    let n1 = &inv.nodes[0];
    assert_eq!(n1.host, "nats-1.prod.example");
    assert_eq!((n1.ssh.user.as_str(), n1.ssh.port), ("nats-admin", 2200));
    assert_eq!(
        n1.ssh.identity_file.as_deref(),
        Some(Path::new("/keys/nats"))
    );
    assert_eq!(n1.ssh.known_hosts, Path::new("/kh/prod"));
    assert_eq!(
        n1.ssh.proxy_jump,
        vec![JumpHost {
            user: Some("jumper".into()),
            host: "203.0.113.10".into(),
            port: Some(2222),
        }],
        "the hop alias resolves through the same config"
    );
    // Explicit inventory fields win.
    let n2 = &inv.nodes[1];
    assert_eq!(n2.host, "nats-2.prod.example");
    assert_eq!((n2.ssh.user.as_str(), n2.ssh.port), ("ops", 22));
    assert!(n2.ssh.proxy_jump.is_empty());
    assert_eq!(n2.ssh.known_hosts, Path::new("/kh/mine"));
    // A host the config does not mention keeps the inventory's values.
    assert_eq!(inv.nodes[2].host, "10.9.9.9");
    assert!(inv.nodes[2].ssh.proxy_jump.is_empty());

    let missing = one_node("config: /nonexistent/ssh_config", "");
    let e = parse(&missing).unwrap_err().to_string();
    assert!(
        e.contains("cannot read ssh config /nonexistent/ssh_config"),
        "{e}"
    );
}

#[test]
fn turn2_fields_parse_in_defaults_and_per_node() {
    let inv = parse(TURN2).unwrap();
    let [n1, n2, n3] = &inv.nodes[..] else {
        panic!("three nodes")
    };
    assert_eq!(
        n1.ssh.proxy_jump,
        vec![
            JumpHost {
                user: Some("ops".into()),
                host: "bastion".into(),
                port: Some(2222)
            },
            JumpHost {
                user: None,
                host: "jump2".into(),
                port: None
            }
        ]
    );
    assert_eq!(
        format_proxy_jump(&n1.ssh.proxy_jump),
        "ops@bastion:2222,jump2"
    );
    assert!(
        n2.ssh.proxy_jump.is_empty(),
        "`none` overrides the defaults"
    );
    assert!(n1.ssh.config.as_ref().unwrap().ends_with(".ssh/config"));
    assert!(!n1.ssh.config.as_ref().unwrap().starts_with("~"));
    assert_eq!((n1.ssh.retries, n2.ssh.retries), (3, 0));
    assert_eq!(n1.nats.cluster_host.as_deref(), Some("10.1.0.11"));
    assert_eq!(n2.nats.cluster_host, None);
    assert_eq!(n3.nats.server_bin, "/usr/sbin/nats-server");
    assert_eq!(n3.nats.client_port, 4223);
    // n1 inherits the system user; n2 and n3 replace it with another way.
    let u = n1.nats.system_user.as_ref().unwrap();
    assert_eq!(
        (u.user.as_str(), u.password()),
        ("sys", Some("hunter2-sys"))
    );
    assert!(n2.nats.system_user.is_none() && n3.nats.system_user.is_none());
    assert!(n2
        .nats
        .system_creds
        .as_ref()
        .unwrap()
        .ends_with("sys.creds"));
    assert_eq!(
        n3.nats.system_nkey_seed.as_deref(),
        Some(Path::new("/etc/nats/sys.nk"))
    );
    let tls = n1.nats.client_tls.as_ref().unwrap();
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new("/etc/nats/ca.pem")));
    assert!(tls.key_file.as_ref().unwrap().ends_with("k.pem"));
    assert_eq!(
        n3.nats.client_tls,
        Some(ClientTls {
            ca_file: Some("/etc/nats/other-ca.pem".into()),
            cert_file: None,
            key_file: None
        }),
        "a node's client_tls replaces the defaults' as a whole"
    );
}

#[test]
fn turn2_defaults() {
    let inv = parse("cluster: c\nnodes:\n  - {name: n1, host: h}\n").unwrap();
    let n = &inv.nodes[0];
    assert!(n.ssh.proxy_jump.is_empty());
    assert_eq!(n.ssh.config, None);
    assert_eq!(n.ssh.retries, 2);
    assert_eq!(n.nats.cluster_host, None);
    assert_eq!(n.nats.server_bin, "nats-server");
    assert_eq!(n.nats.client_port, 4222);
    assert!(n.nats.system_user.is_none() && n.nats.system_creds.is_none());
    assert!(n.nats.system_nkey_seed.is_none() && n.nats.client_tls.is_none());
    assert!(inv.secrets().is_empty());
}

#[test]
fn proxy_jump_syntax() {
    type Hop<'a> = (Option<&'a str>, &'a str, Option<u16>);
    let ok: &[(&str, &[Hop])] = &[
        ("bastion", &[(None, "bastion", None)]),
        (
            "ops@10.0.0.1:2222",
            &[(Some("ops"), "10.0.0.1", Some(2222))],
        ),
        (
            "a@j1, j2:23 ,c@j3",
            &[
                (Some("a"), "j1", None),
                (None, "j2", Some(23)),
                (Some("c"), "j3", None),
            ],
        ),
        ("ssh://u@h:22", &[(Some("u"), "h", Some(22))]),
        ("[fd00::1]:2222", &[(None, "fd00::1", Some(2222))]),
        ("u@[fe80::1]", &[(Some("u"), "fe80::1", None)]),
        ("ad@corp@bastion", &[(Some("ad@corp"), "bastion", None)]),
        ("none", &[]),
    ];
    for (text, want) in ok {
        let got = parse_proxy_jump(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let got: Vec<_> = got
            .iter()
            .map(|h| (h.user.as_deref(), h.host.as_str(), h.port))
            .collect();
        assert_eq!(&got, want, "{text}");
    }
    assert_eq!(
        format_proxy_jump(&parse_proxy_jump("u@[fd00::1]:2,h").unwrap()),
        "u@[fd00::1]:2,h"
    );
    let bad = [
        ("", "empty"),
        ("a,,b", "hop 2: empty"),
        ("a,", "hop 2: empty"),
        ("u@", "no host"),
        ("@h", "empty user"),
        ("h:0", "invalid port"),
        ("h:65536", "invalid port"),
        ("h:ssh", "invalid port"),
        ("fd00::1", "brackets"),
        ("[fd00::1", "without `]`"),
        ("-oProxyCommand=evil", "invalid host"),
        ("-x@h", "invalid user"),
        ("a b", "white space"),
    ];
    for (text, want) in bad {
        let e = parse_proxy_jump(text).expect_err(text);
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn proxy_jump_error_has_line_and_column() {
    let text = "cluster: c\ndefaults:\n  ssh:\n    proxy_jump: ops@bastion:99999\nnodes:\n  - {name: n1, host: h}\n";
    let err = parse(text).unwrap_err();
    let p = &err.0[0];
    assert_eq!(p.line, Some(4), "{p}");
    assert!(p.column.is_some(), "{p}");
    assert!(p.message.contains("invalid port `99999`"), "{p}");
}

#[test]
fn unknown_turn2_fields_are_errors_with_position() {
    for (text, field, line) in [
            (
                "cluster: c\ndefaults:\n  ssh:\n    proxyjump: b\nnodes:\n  - {name: n1, host: h}\n",
                "proxyjump",
                4,
            ),
            (
                "cluster: c\nnodes:\n  - name: n1\n    host: h\n    nats:\n      system_user: {user: s, pass: x}\n",
                "pass",
                6,
            ),
            (
                "cluster: c\nnodes:\n  - name: n1\n    host: h\n    nats:\n      client_tls:\n        ca: x\n",
                "ca",
                7,
            ),
        ] {
            let err = parse(text).unwrap_err();
            let p = &err.0[0];
            assert!(p.message.contains(&format!("unknown field `{field}`")), "{p}");
            assert_eq!(p.line, Some(line), "{p}");
            assert!(p.column.is_some(), "{p}");
        }
}

#[test]
fn system_user_needs_exactly_one_password_source() {
    for (nats, want) in [
        (
            "system_user: {user: s, password: x, password_env: V}",
            "not both",
        ),
        ("system_user: {user: s}", "is required"),
        ("system_user: {user: '', password: x}", "`user` is empty"),
        (
            "system_user: {user: s, password_env: 'NOT A VAR'}",
            "not an environment variable name",
        ),
    ] {
        let err = parse(&one_node("", nats)).unwrap_err();
        assert!(err.to_string().contains(want), "{nats}: {err}");
        assert_eq!(err.0[0].line, Some(6), "{err}");
    }
}

#[test]
fn other_turn2_validation() {
    for (ssh, nats, want) in [
        (
            "",
            "system_user: {user: s, password: x}, system_creds: /c",
            "choose one way",
        ),
        (
            "",
            "system_creds: /c, system_nkey_seed: /k",
            "system_creds and system_nkey_seed",
        ),
        ("", "client_tls: {cert_file: c}", "cert_file needs key_file"),
        ("", "client_tls: {key_file: k}", "key_file needs cert_file"),
        ("", "client_tls: {}", "at least one"),
        ("", "cluster_host: ''", "cluster_host is empty"),
        ("", "cluster_host: 'a b'", "white space"),
        ("", "server_bin: ''", "server_bin is empty"),
        ("", "client_port: 70000", "client_port"),
        ("retries: 11", "", "too many"),
        ("config: ''", "", "ssh.config is empty"),
    ] {
        let err = parse(&one_node(ssh, nats)).unwrap_err();
        assert!(err.to_string().contains(want), "{ssh} {nats}: {err}");
    }
}

#[test]
fn password_env_is_read_at_load() {
    let var = format!("NATS_RESCUE_INV_TEST_{}", std::process::id());
    let text = one_node(
        "",
        &format!("system_user: {{user: sys, password_env: {var}}}"),
    );
    let inv = parse(&text).unwrap();
    let u = inv.nodes[0].nats.system_user.as_ref().unwrap();
    assert_eq!(u.password(), None, "unset: no password, not an error");
    assert!(inv.secrets().is_empty());
    std::env::set_var(&var, "from-the-env-9f3");
    let inv = parse(&text).unwrap();
    std::env::remove_var(&var);
    let u = inv.nodes[0].nats.system_user.as_ref().unwrap();
    assert_eq!(u.password(), Some("from-the-env-9f3"));
    assert_eq!(inv.secrets(), vec!["from-the-env-9f3".to_string()]);
    let json = serde_json::to_string(&inv).unwrap();
    assert!(!json.contains("from-the-env-9f3"), "{json}");
    assert!(
        json.contains(&var),
        "the variable's name is not secret: {json}"
    );
}

#[test]
fn serialize_and_debug_never_show_a_password() {
    let inv = parse(TURN2).unwrap();
    assert_eq!(inv.secrets(), vec!["hunter2-sys".to_string()]);
    let json = serde_json::to_string(&inv).unwrap();
    assert!(!json.contains("hunter2"), "{json}");
    assert!(json.contains("[REDACTED]"), "{json}");
    let yaml = yaml_serde::to_string(&inv).unwrap();
    assert!(!yaml.contains("hunter2"), "{yaml}");
    let debug = format!("{inv:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
