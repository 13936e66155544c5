//! `inventory init --seed HOST` on real labs (sshd and nats-server in network namespaces),
//! checked the way an operator would: the written inventory loads, names every server, and
//! `status` with it exits 0 on a healthy cluster; an unknown host key is refused with its
//! fingerprint and nothing is written; a stopped server is still written, with a comment,
//! and the exit code says so; no password of the config reaches the file or the terminal.

use crate::support::cli::bin;
use crate::support::lab::{legacy_server, modern_server, text, Lab};
use nats_rescue::inventory::Inventory;
use std::path::Path;
use std::process::{Command, Output};

struct Ran {
    code: i32,
    stdout: String,
    all: String,
}

fn nr(args: &[&str], jdir: &Path) -> Ran {
    let o: Output = Command::new("timeout")
        .arg("300")
        .arg(bin())
        .args(args)
        .env_remove("NATS_RESCUE_INVENTORY")
        .env_remove("NATS_SYS_PASSWORD")
        .env("NATS_RESCUE_JOURNAL_DIR", jdir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run nats-rescue");
    Ran {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        all: text(&o),
    }
}

/// `inventory init --seed <n1> --identity-file <lab key> --known-hosts KH EXTRA… -o OUT`.
fn init(lab: &Lab, known_hosts: &Path, out: &Path, extra: &[&str]) -> Ran {
    let seed = lab.addr("n1");
    let key = lab.dir.join("id_ed25519");
    let (k, kh, o) = (
        key.to_string_lossy().into_owned(),
        known_hosts.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    );
    let mut args = vec![
        "inventory",
        "init",
        "--seed",
        &seed,
        "--identity-file",
        &k,
        "--known-hosts",
        &kh,
        "-o",
        &o,
        "--force",
    ];
    args.extend_from_slice(extra);
    nr(&args, &lab.dir)
}

/// The written inventory, loaded as `status` loads it.
fn load(out: &Path) -> (Inventory, String) {
    let text = std::fs::read_to_string(out).expect("inventory written");
    let inv = Inventory::parse(out, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (inv, text)
}

/// Every server of the lab by server_name and address, each with the lab's config, store
/// dir and control script (the lab's servers are no systemd units).
fn assert_names_every_server(lab: &Lab, inv: &Inventory, text: &str) {
    let st = lab.state();
    let mut want: Vec<(String, String)> = st
        .nodes
        .iter()
        .map(|n| (n.server_name().to_string(), n.addr.clone()))
        .collect();
    let mut got: Vec<(String, String)> = inv
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.host.clone()))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{text}");
    assert_eq!(inv.cluster, "lab", "{text}");
    for n in &st.nodes {
        let node = inv.node(n.server_name()).expect("node");
        assert_eq!(node.nats.config_file, n.config.to_string_lossy(), "{text}");
        assert_eq!(node.nats.store_dir, n.store_dir.to_string_lossy(), "{text}");
        assert_eq!(
            node.nats.service.status,
            format!("{} status", n.ctl.display()),
            "{text}"
        );
        assert_eq!(node.nats.cluster_host.as_deref(), Some(n.name.as_str()));
    }
    assert!(text.contains("# n1: checked"), "{text}");
}

fn status(inventory: &Path, jdir: &Path) -> Ran {
    nr(
        &["-i", &inventory.to_string_lossy(), "status", "--json"],
        jdir,
    )
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("nats-rescue-invinit-")
        .tempdir()
        .expect("tempdir")
}

/// Root, classic configs, nats-server 2.9.10: the whole cluster from one seed; a new host key
/// refused then recorded; a stopped server written with a comment and exit 1.
#[test]
fn init_as_root_host_keys_and_a_stopped_server() {
    let lab = Lab::up(&legacy_server(), 3);
    let tmp = tmpdir();
    let out = tmp.path().join("inventory.yaml");
    let kh = lab.dir.join("known_hosts");

    let r = init(&lab, &kh, &out, &[]);
    assert_eq!(r.code, 0, "{}", r.all);
    let (inv, text) = load(&out);
    assert_names_every_server(&lab, &inv, &text);
    assert!(inv
        .nodes
        .iter()
        .all(|n| n.ssh.user == "root" && !n.ssh.sudo));
    let s = status(&out, tmp.path());
    assert_eq!(s.code, 0, "status with the written inventory:\n{}", s.all);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).expect("status json");
    assert_eq!(v["healthy"], true, "{}", s.stdout);

    // An empty known_hosts: the seed's key is unknown, shown with its fingerprint, refused.
    let empty = tmp.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let out2 = tmp.path().join("new.yaml");
    let r = init(&lab, &empty, &out2, &[]);
    assert_eq!(r.code, 1, "{}", r.all);
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(lab.dir.join("nodes/n1/ssh_host_ed25519_key.pub"))
        .output()
        .expect("ssh-keygen -l");
    let fp = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    assert!(
        r.all.contains(&fp) && r.all.contains("NEW HOST KEY"),
        "{}",
        r.all
    );
    assert!(r.all.contains("nothing written"), "{}", r.all);
    assert!(
        !out2.exists(),
        "nothing may be written when the seed is refused"
    );
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "nothing recorded"
    );

    // With the flag: every server's key is recorded (and printed) and the inventory written.
    let r = init(&lab, &empty, &out2, &["--accept-new-host-keys"]);
    assert_eq!(r.code, 0, "{}", r.all);
    assert!(
        r.all.contains(&fp),
        "the recorded key is printed:\n{}",
        r.all
    );
    let recorded = std::fs::read_to_string(&empty).unwrap();
    for n in lab.node_names() {
        assert!(
            recorded.contains(&lab.addr(&n)),
            "{n} recorded:\n{recorded}"
        );
    }
    let (inv2, _) = load(&out2);
    assert_eq!(inv2.nodes.len(), 3);

    // A changed key (known_hosts names another key for n1): refused even with the flag,
    // both fingerprints shown, nothing written.
    let other = tmp.path().join("other_key");
    let g = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .expect("ssh-keygen");
    assert!(g.status.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(other.with_extension("pub"))
        .output()
        .expect("ssh-keygen -l");
    let other_fp = String::from_utf8_lossy(&other_fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let changed = tmp.path().join("changed_known_hosts");
    let line: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    std::fs::write(&changed, format!("{} {}\n", lab.addr("n1"), line.join(" "))).unwrap();
    let out_c = tmp.path().join("changed.yaml");
    let r = init(&lab, &changed, &out_c, &["--accept-new-host-keys"]);
    assert_eq!(r.code, 1, "{}", r.all);
    assert!(r.all.contains("HOST KEY CHANGED"), "{}", r.all);
    assert!(
        r.all.contains(&fp) && r.all.contains(&other_fp),
        "{}",
        r.all
    );
    assert!(!out_c.exists(), "nothing may be written for a changed key");
    assert_eq!(
        std::fs::read_to_string(&changed).unwrap().lines().count(),
        1,
        "a changed key is never recorded"
    );

    // n3 stopped (its sshd still answers): still written, with what failed; exit 1.
    let ctl = lab.state().nodes[2].ctl.clone();
    let stop = Command::new(&ctl).arg("stop").output().expect("ctl stop");
    assert!(
        stop.status.success(),
        "{}",
        crate::support::lab::text(&stop)
    );
    let out3 = tmp.path().join("stopped.yaml");
    let r = init(&lab, &kh, &out3, &[]);
    assert_eq!(r.code, 1, "{}", r.all);
    assert!(
        r.all.contains("n3") && r.all.contains("could not be fully checked"),
        "{}",
        r.all
    );
    let (inv3, text3) = load(&out3);
    let n3 = inv3
        .node("n3")
        .unwrap_or_else(|| panic!("n3 written:\n{text3}"));
    assert_eq!(n3.host, lab.addr("n3"));
    assert!(
        text3.contains("# n3: NEEDS ATTENTION: no nats-server is running on this host"),
        "{text3}"
    );
    assert!(text3.contains("NOT VERIFIED"), "{text3}");
    assert!(inv3.node("n1").is_some() && inv3.node("n2").is_some());

    // n2 destroyed (no sshd, all traffic dropped): written under the name n1's routes use,
    // with the SSH failure, not dropped.
    lab.lab_ok("break", &["destroy", "n2"]);
    let out4 = tmp.path().join("destroyed.yaml");
    let r = init(&lab, &kh, &out4, &[]);
    assert_eq!(r.code, 1, "{}", r.all);
    let (inv4, text4) = load(&out4);
    assert_eq!(inv4.nodes.len(), 3, "{text4}");
    let n2 = inv4
        .node("n2")
        .unwrap_or_else(|| panic!("n2 written:\n{text4}"));
    assert_eq!(n2.host, lab.addr("n2"));
    assert!(
        text4.contains("# n2: NEEDS ATTENTION: not checked:"),
        "{text4}"
    );
    assert!(r.all.contains("FAIL  n2"), "{}", r.all);
    lab.down();
}

/// An unprivileged SSH user with sudo, Helm-chart JSON configs (`server_name: $SERVER_NAME`,
/// routes to every server including itself), route and client authentication: without
/// --sudo the root-only configs cannot be read and the exit code says so; with it the
/// inventory names every server, `status` accepts it, and no password is copied anywhere.
#[test]
fn init_as_sudo_user_on_helm_configs_with_credentials() {
    let lab = Lab::up_with(
        &modern_server(),
        3,
        &[
            "--ssh-user",
            "{name}op",
            "--config-style",
            "helm",
            "--route-auth",
            "--accounts",
        ],
    );
    let st = lab.state();
    let user = st.ssh_user.as_ref().expect("ssh user").name.clone();
    let mut secrets = vec![st.sys_password.clone(), st.app_password.clone()];
    if let Some(a) = &st.route_auth {
        secrets.push(a.password.clone());
    }
    let tmp = tmpdir();
    let kh = lab.dir.join("known_hosts");

    let out = tmp.path().join("nosudo.yaml");
    let r = init(&lab, &kh, &out, &["--ssh-user", &user]);
    assert_eq!(r.code, 1, "{}", r.all);
    assert!(r.all.contains("run again with --sudo"), "{}", r.all);
    // the configs are root's, but /varz lists the routes: every server is still named
    let (inv, text) = load(&out);
    let mut names: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["n1", "n2", "n3"], "{text}");
    assert!(text.contains("/varz cluster.urls"), "{text}");

    let out = tmp.path().join("inventory.yaml");
    let r = init(&lab, &kh, &out, &["--ssh-user", &user, "--sudo"]);
    assert_eq!(r.code, 0, "{}", r.all);
    let (inv, text) = load(&out);
    assert_names_every_server(&lab, &inv, &text);
    for n in &inv.nodes {
        assert_eq!((n.ssh.user.as_str(), n.ssh.sudo), (user.as_str(), true));
        let u = n.nats.system_user.as_ref().expect("system user written");
        assert_eq!(u.user, st.sys_user);
        assert!(matches!(
            &u.password,
            nats_rescue::inventory::SystemPassword::Env { var, .. } if var == "NATS_SYS_PASSWORD"
        ));
    }
    assert!(text.contains("server_name from its /varz"), "{text}");
    assert!(text.contains("credentials: they were not copied"), "{text}");
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()),
            "a password in the inventory:\n{text}"
        );
        assert!(
            !r.all.contains(s.as_str()),
            "a password on the terminal:\n{}",
            r.all
        );
    }
    let s = status(&out, tmp.path());
    assert_eq!(s.code, 0, "status with the written inventory:\n{}", s.all);

    // stdout without -o: the same inventory (but for the time in its first line)
    let seed = lab.addr("n1");
    let key = lab.dir.join("id_ed25519").to_string_lossy().into_owned();
    let khs = kh.to_string_lossy().into_owned();
    let r = nr(
        &[
            "inventory",
            "init",
            "--seed",
            &seed,
            "--ssh-user",
            &user,
            "--sudo",
            "--identity-file",
            &key,
            "--known-hosts",
            &khs,
        ],
        tmp.path(),
    );
    assert_eq!(r.code, 0, "{}", r.all);
    let tail = |t: &str| t.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(tail(&r.stdout), tail(&text));

    // n2's monitoring port refuses (inside its namespace, loopback too): its Helm config says
    // `server_name: $SERVER_NAME`, so the name comes from the server process's environment;
    // the failed monitoring makes the exit code 1.
    let rule = "iptables -I INPUT -p tcp --dport 8222 -j REJECT --reject-with tcp-reset";
    let o = lab.in_ns("n2", rule);
    assert!(o.status.success(), "{}", crate::support::lab::text(&o));
    let out = tmp.path().join("nomonitor.yaml");
    let r = init(&lab, &kh, &out, &["--ssh-user", &user, "--sudo"]);
    assert_eq!(r.code, 1, "{}", r.all);
    let (inv, text) = load(&out);
    assert!(inv.node("n2").is_some(), "{text}");
    assert!(
        text.contains("name: n2  # $SERVER_NAME in the environment of nats-server pid"),
        "{text}"
    );
    assert!(
        text.contains("# n2: NEEDS ATTENTION: monitoring did not answer"),
        "{text}"
    );
    let o = lab.in_ns("n2", &rule.replace(" -I ", " -D "));
    assert!(o.status.success(), "{}", crate::support::lab::text(&o));
    lab.down();
}

/// Nodes reachable only through a bastion (SSH and monitoring): `--proxy-jump` reaches every
/// server through it, monitoring is read through the SSH session and written as `monitor: ssh`.
#[test]
fn init_through_a_bastion() {
    let lab = Lab::up_with(&modern_server(), 3, &["--bastion"]);
    let st = lab.state();
    let bastion = format!("root@{}", st.bastion.as_ref().expect("bastion").addr);
    let tmp = tmpdir();
    let out = tmp.path().join("inventory.yaml");
    let r = init(
        &lab,
        &lab.dir.join("known_hosts"),
        &out,
        &["--proxy-jump", &bastion],
    );
    assert_eq!(r.code, 0, "{}", r.all);
    let (inv, text) = load(&out);
    assert_names_every_server(&lab, &inv, &text);
    for n in &inv.nodes {
        assert_eq!(
            n.nats.monitor,
            nats_rescue::inventory::MonitorMode::Ssh,
            "{text}"
        );
        assert_eq!(n.ssh.proxy_jump.len(), 1, "{text}");
    }
    let s = status(&out, tmp.path());
    assert_eq!(s.code, 0, "status with the written inventory:\n{}", s.all);
    lab.down();
}

/// Bad input is refused before any connection, with exit 2 and what to fix.
#[test]
fn bad_input_is_refused_with_what_to_fix() {
    let tmp = tmpdir();
    let existing = tmp.path().join("inventory.yaml");
    std::fs::write(&existing, "keep me").unwrap();
    let e = existing.to_string_lossy().into_owned();
    for (args, want) in [
        (vec!["--seed", ""], "name one server"),
        (vec!["--seed", "a,b"], "name one server"),
        (vec!["--seed", "h:99999"], "invalid port"),
        (vec!["--seed", "h", "--proxy-jump", "x@"], "--proxy-jump"),
        (
            vec!["--seed", "h", "--identity-file", "/nonexistent/key"],
            "no such file",
        ),
        (vec!["--seed", "h", "-o", &e], "pass --force"),
    ] {
        let mut all = vec!["inventory", "init"];
        all.extend(args.iter().copied());
        let r = nr(&all, tmp.path());
        assert_eq!(r.code, 2, "{args:?}: {}", r.all);
        assert!(r.all.contains(want), "{args:?}: {}", r.all);
    }
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
}
