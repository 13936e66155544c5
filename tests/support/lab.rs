//! The lab as a test fixture: [`Lab::up`] builds a real cluster (network namespaces, sshd,
//! nats-server) with a unique prefix, subnet and directory, and `lab down` runs on drop.
//! Shared by the lab tests and the end-to-end tests of the engine and runbooks.
#![allow(dead_code)]

use nats_rescue::lab::monitor;
use nats_rescue::lab::state::LabState;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Fails loudly (CI runs as root): lab tests must never skip silently.
pub fn require_root() {
    assert_eq!(
        nats_rescue::lab::effective_uid(),
        Some(0),
        "the lab tests need root (network namespaces, veth, iptables); run `cargo test` as root"
    );
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// nats-server 2.15.x: `$NATS_RESCUE_MODERN_SERVER`, else `.tools/nats-server-2.15.1/nats-server`.
pub fn modern_server() -> PathBuf {
    let p = std::env::var_os("NATS_RESCUE_MODERN_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join(".tools/nats-server-2.15.1/nats-server"));
    assert!(
        p.exists(),
        "modern nats-server not found at {} (run `bash scripts/setup.sh`)",
        p.display()
    );
    p
}

/// Debian's nats-server 2.9.10.
pub fn legacy_server() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/nats-server");
    assert!(
        p.exists(),
        "nats-server 2.9.10 not found at {} (run `bash scripts/setup.sh`)",
        p.display()
    );
    p
}

/// Runs `nats-rescue ARGS` (the real binary).
pub fn nats_rescue_cmd(args: &[&str]) -> Output {
    nats_rescue_command(&[], args)
        .output()
        .expect("run nats-rescue")
}

/// The command for `nats-rescue ARGS`, optionally behind a wrapper (e.g. `setpriv ...`).
pub fn nats_rescue_command(wrapper: &[&str], args: &[&str]) -> Command {
    let bin = env!("CARGO_BIN_EXE_nats-rescue");
    let mut c = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    c.args(args);
    c
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running lab; `lab down` on drop (the directory is kept when the test panicked).
pub struct Lab {
    pub name: String,
    pub subnet: String,
    pub dir: PathBuf,
    pub inventory: PathBuf,
    /// Seconds from `lab up` start to an agreed meta leader, as `lab up` printed it.
    pub up_to_leader: f64,
    pub up_output: String,
    tmp: Option<tempfile::TempDir>,
    down: bool,
}

impl Lab {
    /// `lab up --nodes N --nats-server SERVER` with a unique name, subnet and directory.
    pub fn up(server: &Path, nodes: usize) -> Lab {
        Lab::up_with(server, nodes, &[])
    }

    /// Like [`Lab::up`] with more `lab up` options; `{name}` in them becomes the lab's unique
    /// name (e.g. `--ssh-user {name}op` for a user no other lab has).
    pub fn up_with(server: &Path, nodes: usize, extra: &[&str]) -> Lab {
        require_root();
        let k = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id() as usize;
        let mut last = String::new();
        for attempt in 0..8 {
            let name = format!(
                "t{:04x}{}",
                (pid + attempt * 977) & 0xffff,
                std::char::from_digit((k % 36) as u32, 36).unwrap_or('z')
            );
            let subnet = format!(
                "{}.{}",
                100 + (pid + attempt * 13) % 100,
                (k * 17 + attempt * 3) % 250 + 1
            );
            let tmp = tempfile::Builder::new()
                .prefix("nats-rescue-lab-test-")
                .tempdir()
                .expect("tempdir");
            let dir = tmp.path().join("lab");
            let srv = server.to_string_lossy().into_owned();
            let d = dir.to_string_lossy().into_owned();
            let n = nodes.to_string();
            let extra: Vec<String> = extra.iter().map(|a| a.replace("{name}", &name)).collect();
            let mut args = vec![
                "lab",
                "up",
                "--nodes",
                &n,
                "--nats-server",
                &srv,
                "--dir",
                &d,
                "--name",
                &name,
                "--subnet",
                &subnet,
            ];
            args.extend(extra.iter().map(String::as_str));
            let o = nats_rescue_cmd(&args);
            let out = text(&o);
            if o.status.success() {
                let stdout = String::from_utf8_lossy(&o.stdout);
                let up_to_leader = stdout
                    .split(" after ")
                    .nth(1)
                    .and_then(|r| r.split('s').next())
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(f64::NAN);
                return Lab {
                    name,
                    subnet,
                    inventory: dir.join("inventory.yaml"),
                    dir,
                    up_to_leader,
                    up_output: out,
                    tmp: Some(tmp),
                    down: false,
                };
            }
            if out.contains("refusing") || out.contains("exists already") {
                last = out;
                continue; // name or subnet in use by another lab on this machine: next candidate
            }
            panic!("lab up failed:\n{out}");
        }
        panic!("no free lab name/subnet found; last attempt:\n{last}");
    }

    pub fn dir_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// `nats-rescue lab <sub> ARGS --dir DIR`.
    pub fn lab(&self, sub: &str, args: &[&str]) -> Output {
        let d = self.dir_str();
        let mut all = vec!["lab", sub];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--dir", &d]);
        nats_rescue_cmd(&all)
    }

    /// Like [`Lab::lab`], asserting success.
    pub fn lab_ok(&self, sub: &str, args: &[&str]) -> String {
        let o = self.lab(sub, args);
        let t = text(&o);
        assert!(o.status.success(), "lab {sub} {args:?} failed:\n{t}");
        t
    }

    pub fn state(&self) -> LabState {
        LabState::load(&self.dir).expect("lab state")
    }

    pub fn addr(&self, node: &str) -> String {
        self.state().node(node).expect("node").addr.clone()
    }

    pub fn node_names(&self) -> Vec<String> {
        self.state().node_names()
    }

    /// `/jsz` of a node (None when it does not answer within 1 s).
    pub fn jsz(&self, node: &str) -> Option<Value> {
        self.monitor(node, "/jsz")
    }

    /// Any monitoring path as JSON, the way the lab reaches it (from inside the node's
    /// namespace when a bastion firewalls the port).
    pub fn monitor(&self, node: &str, path: &str) -> Option<Value> {
        monitor::node_json(&self.state(), node, path, Duration::from_secs(1)).ok()
    }

    pub fn leader_seen_by(&self, node: &str) -> Option<String> {
        self.jsz(node).and_then(|j| monitor::leader_of(&j))
    }

    /// The meta leader all of `nodes` agree on.
    pub fn agreed_leader(&self, nodes: &[&str]) -> Option<String> {
        let ls: Vec<Option<String>> = nodes.iter().map(|n| self.leader_seen_by(n)).collect();
        let first = ls.first()?.clone()?;
        ls.iter()
            .all(|l| l.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    /// The meta leader every node agrees on, waiting up to `timeout` (panics after).
    pub fn wait_leader(&self, timeout: Duration) -> String {
        let names = self.node_names();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.wait_for("an agreed meta leader", timeout, || {
            self.agreed_leader(&refs)
        })
        .0
    }

    /// Polls `f` every 200 ms until it returns Some; panics with `what` after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> (T, Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(v) = f() {
                return (v, t0.elapsed());
            }
            assert!(
                t0.elapsed() < timeout,
                "timed out after {}s waiting for: {what}",
                timeout.as_secs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs a shell command inside a node's namespace.
    pub fn in_ns(&self, node: &str, script: &str) -> Output {
        let ns = self.state().node(node).expect("node").netns.clone();
        Command::new("ip")
            .args(["netns", "exec", &ns, "bash", "-c", script])
            .output()
            .expect("ip netns exec")
    }

    /// Runs a command on a node over SSH with the lab's key and known_hosts (host key checked).
    pub fn ssh(&self, node: &str, script: &str) -> Output {
        let addr = self.addr(node);
        Command::new("ssh")
            .args([
                "-i",
                &self.dir.join("id_ed25519").to_string_lossy(),
                "-o",
                &format!(
                    "UserKnownHostsFile={}",
                    self.dir.join("known_hosts").display()
                ),
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=3",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                &format!("root@{addr}"),
                script,
            ])
            .output()
            .expect("ssh")
    }

    /// `ssh -F <lab>/ssh_config HOST SCRIPT [-o OPTION…]`: as the inventory describes it (its
    /// user, key, strict known_hosts, through the bastion when there is one), bounded in time.
    pub fn ssh_cfg(&self, host: &str, options: &[&str], script: &str) -> Output {
        let cfg = self.dir.join("ssh_config");
        let mut c = Command::new("timeout");
        c.args(["10", "ssh", "-F", &cfg.to_string_lossy()]);
        for o in options {
            c.args(["-o", o]);
        }
        c.args([host, script]).output().expect("ssh")
    }

    pub fn stream_messages(&self) -> u64 {
        nats_rescue::lab::stream_messages(&self.dir, "ORDERS").expect("stream message count")
    }

    /// `lab down`, then asserts that nothing of the lab remains.
    pub fn down(mut self) {
        let st = self.state();
        self.down = true;
        let o = self.lab("down", &[]);
        assert!(o.status.success(), "lab down failed:\n{}", text(&o));
        assert_nothing_left(&st);
        let again = self.lab("down", &[]);
        assert!(
            again.status.success(),
            "a second lab down must be a no-op:\n{}",
            text(&again)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        let panicking = std::thread::panicking();
        let d = self.dir_str();
        let mut c = nats_rescue_command(&[], &["lab", "down", "--dir", &d]);
        if panicking {
            c.env(nats_rescue::lab::KEEP_ENV, "1");
            if let Some(t) = self.tmp.take() {
                eprintln!("lab kept for inspection: {}", t.keep().display());
            }
        }
        let _ = c.output();
    }
}

/// Nothing of the lab may remain: namespaces, links, /etc/netns dirs, processes, iptables rules.
pub fn assert_nothing_left(st: &LabState) {
    let ns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip")
            .stdout,
    )
    .into_owned();
    assert!(
        !ns.lines().any(|l| l.starts_with(&format!("{}-", st.name))),
        "namespaces left:\n{ns}"
    );
    let links = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .expect("ip")
            .stdout,
    )
    .into_owned();
    assert!(
        !links.contains(&format!(" {}-", st.name)),
        "links left:\n{links}"
    );
    let addrs = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "-4", "addr"])
            .output()
            .expect("ip")
            .stdout,
    )
    .into_owned();
    assert!(
        !addrs.contains(&format!("10.{}.", st.subnet)),
        "addresses left:\n{addrs}"
    );
    if let Some(u) = &st.ssh_user {
        let o = Command::new("getent")
            .args(["passwd", &u.name])
            .output()
            .expect("getent");
        assert!(!o.status.success(), "user {} left", u.name);
        assert!(!u.home.exists(), "{} left", u.home.display());
        assert!(!u.sudoers.exists(), "{} left", u.sudoers.display());
    }
    for n in st.nodes.iter().chain(st.bastion.iter()) {
        assert!(
            !Path::new("/etc/netns").join(&n.netns).exists(),
            "/etc/netns/{} left",
            n.netns
        );
        for p in n.server_pids.iter().chain(n.sshd_pid.iter()) {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            assert!(
                !cmd.contains(&*st.dir.to_string_lossy()),
                "pid {p} still runs: {cmd}"
            );
        }
    }
    // No process of ours at all: scan /proc for our directory in any command line.
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
            {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                assert!(
                    !cmd.contains(&*st.dir.to_string_lossy()),
                    "process {:?} of the lab still runs: {cmd}",
                    e.file_name()
                );
            }
        }
    }
    let rules = String::from_utf8_lossy(
        &Command::new("iptables")
            .args(["-S"])
            .output()
            .expect("iptables")
            .stdout,
    )
    .into_owned();
    assert!(
        !rules.contains(&format!("10.{}.", st.subnet)) && !rules.contains(&st.name),
        "iptables rules left:\n{rules}"
    );
}
