use super::*;
use crate::lab::state::NodeState;
use std::path::PathBuf;

fn lab(dir: &str) -> LabState {
    let dir = PathBuf::from(dir);
    LabState {
        name: "t".into(),
        dir: dir.clone(),
        subnet: "213.7".into(),
        nats_server: "/usr/sbin/nats-server".into(),
        nats_version: "v2.9.10".into(),
        sys_user: "sys".into(),
        sys_password: "s3cret".into(),
        app_user: "app".into(),
        app_password: "app-pw".into(),
        nodes: (1..=3)
            .map(|i| {
                let nd = dir.join("nodes").join(format!("n{i}"));
                NodeState {
                    name: format!("n{i}"),
                    netns: format!("t-n{i}"),
                    addr: format!("10.213.7.{}", 10 + i),
                    config: nd.join("nats-server.conf"),
                    store_dir: nd.join("data"),
                    ctl: nd.join("ctl"),
                    node_dir: nd,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn inventory_loads_and_points_at_the_lab() {
    for dir in ["/tmp/lab", "/tmp/a lab: with 'quotes'"] {
        let st = lab(dir);
        let text = inventory_text(&st);
        let inv =
            crate::inventory::Inventory::parse(Path::new("inventory.yaml"), &text).expect(&text);
        assert_eq!(inv.cluster, "lab");
        assert_eq!(inv.nodes.len(), 3);
        let n2 = &inv.nodes[1];
        assert_eq!(n2.host, "10.213.7.12");
        assert_eq!(n2.ssh.user, "root");
        assert_eq!(
            n2.ssh.identity_file.as_deref(),
            Some(Path::new(dir).join("id_ed25519").as_path())
        );
        assert_eq!(n2.nats.monitor, crate::inventory::MonitorMode::Direct);
        assert_eq!(n2.nats.system_account, "SYS");
        assert_eq!(n2.nats.store_dir, format!("{dir}/nodes/n2/data"));
        // the service commands are shell text: the ctl path is quoted when it needs it
        let words = shlex::split(&n2.nats.service.status).expect("shell words");
        assert_eq!(
            words,
            vec![format!("{dir}/nodes/n2/ctl"), "status".to_string()]
        );
    }
}

#[test]
fn config_routes_by_host_name() {
    let st = lab("/tmp/lab");
    let c = config_text(&st, 0, CLUSTER_PORT);
    assert!(c.contains("server_name: n1\n"));
    assert!(c.contains("\"nats-route://n3:6222\""));
    assert!(c.contains("listen: \"10.213.7.11:6222\""));
    assert!(c.contains("http: \"10.213.7.11:8222\""));
    assert!(c.contains("system_account: SYS"));
    assert!(c.contains("store_dir: \"/tmp/lab/nodes/n1/data\""));
}

fn shaped(dir: &str) -> LabState {
    let mut st = lab(dir);
    st.config_style = ConfigStyle::Helm;
    st.accounts = true;
    st.route_auth = Some(crate::lab::state::RouteAuth {
        user: "route".into(),
        password: "r0ute-pw".into(),
    });
    st.ssh_user = Some(crate::lab::state::SshUser {
        name: "ops".into(),
        home: "/home/ops".into(),
        sudoers: "/etc/sudoers.d/nats-rescue-lab-t".into(),
        comment: "nats-rescue lab t".into(),
    });
    st.bastion = Some(NodeState {
        name: "bastion".into(),
        addr: "10.213.7.10".into(),
        ..Default::default()
    });
    st.nodes[2].server_name = Some("n3b".into());
    st
}

#[test]
fn classic_config_with_route_auth_and_accounts() {
    let mut st = lab("/tmp/lab");
    st.route_auth = Some(crate::lab::state::RouteAuth {
        user: "route".into(),
        password: "r0ute-pw".into(),
    });
    let open = config_text(&st, 0, CLUSTER_PORT);
    assert!(open.contains("no_auth_user: app\n"), "{open}");
    assert!(
        open.contains("authorization {\n    user: \"route\"\n    password: \"r0ute-pw\"\n  }"),
        "{open}"
    );
    assert!(
        open.contains("\"nats-route://route:r0ute-pw@n2:6222\""),
        "{open}"
    );
    st.accounts = true;
    st.nodes[0].server_name = Some("n1b".into());
    let closed = config_text(&st, 0, CLUSTER_PORT);
    assert!(!closed.contains("no_auth_user"), "{closed}");
    assert!(closed.contains("server_name: n1b\n"), "{closed}");
}

#[test]
fn helm_config_is_the_charts_json() {
    let st = shaped("/tmp/lab");
    let c = config_text(&st, 2, CLUSTER_PORT);
    assert!(c.contains("\"server_name\": $SERVER_NAME,"), "{c}");
    assert!(c.contains("\"max_file_store\": 10Gi,"), "{c}");
    // Valid JSON once the two unquoted values are quoted, with every server in routes.
    let body: String = c
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let json: serde_json::Value = serde_json::from_str(
        &body
            .replace("$SERVER_NAME", "\"$SERVER_NAME\"")
            .replace("10Gi", "\"10Gi\""),
    )
    .expect(&c);
    let routes: Vec<&str> = json["cluster"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        routes,
        [
            "nats://route:r0ute-pw@n1:6222",
            "nats://route:r0ute-pw@n2:6222",
            "nats://route:r0ute-pw@n3:6222"
        ]
    );
    assert_eq!(json["cluster"]["authorization"]["password"], "r0ute-pw");
    assert_eq!(json["cluster"]["no_advertise"], true);
    assert_eq!(json["port"], CLIENT_PORT);
    assert_eq!(json["http_port"], MONITOR_PORT);
    assert_eq!(json["jetstream"]["store_dir"], "/tmp/lab/nodes/n3/data");
    assert!(
        json.get("no_auth_user").is_none(),
        "--accounts: everyone authenticates"
    );
    // The ctl script exports the (renamed) server_name the config reads.
    assert!(ctl_text(&st, 2).contains("export SERVER_NAME=n3b\n"));
}

#[test]
fn shaped_inventory_has_the_turn2_fields() {
    let st = shaped("/tmp/lab");
    let text = inventory_text(&st);
    let inv = crate::inventory::Inventory::parse(Path::new("inventory.yaml"), &text).expect(&text);
    let n = &inv.nodes[0];
    assert_eq!(n.ssh.user, "ops");
    assert!(n.ssh.sudo);
    assert_eq!(
        crate::inventory::format_proxy_jump(&n.ssh.proxy_jump),
        "ops@10.213.7.10"
    );
    assert_eq!(n.nats.monitor, crate::inventory::MonitorMode::Ssh);
    assert_eq!(n.nats.cluster_host.as_deref(), Some("n1"));
    assert_eq!(n.nats.client_port, CLIENT_PORT);
    assert_eq!(n.nats.server_bin, "/usr/sbin/nats-server");
    let u = n.nats.system_user.as_ref().expect("system_user");
    assert_eq!((u.user.as_str(), u.password()), ("sys", Some("s3cret")));
    assert_eq!(inv.secrets(), vec!["s3cret".to_string()]);
    // A renamed server is listed under its new name; its host name stays.
    assert_eq!(inv.nodes[2].name, "n3b");
    assert_eq!(inv.nodes[2].nats.cluster_host.as_deref(), Some("n3"));
    // Without options: root, direct monitoring, no system user, no jump.
    let plain = crate::inventory::Inventory::parse(
        Path::new("inventory.yaml"),
        &inventory_text(&lab("/tmp/lab")),
    )
    .unwrap();
    let p = &plain.nodes[0];
    assert!(p.ssh.proxy_jump.is_empty() && !p.ssh.sudo && p.nats.system_user.is_none());
}
