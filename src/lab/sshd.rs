//! One sshd per namespace, with its own host key, listening on the node's address only; the
//! operator key pair and the known_hosts file the inventory points at.

use super::server::{pid_is_ours, read_pid, signal, wait_gone};
use super::state::{Host, LabState, NodeState};
use super::{io_err, run, run_in_ns, say};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

pub fn operator_key(st: &LabState) -> PathBuf {
    st.dir.join("id_ed25519")
}

pub fn known_hosts(st: &LabState) -> PathBuf {
    st.dir.join("known_hosts")
}

fn host_key(node_dir: &Path) -> PathBuf {
    node_dir.join("ssh_host_ed25519_key")
}

fn keygen(path: &Path, comment: &str) -> Result<()> {
    let p = path.to_string_lossy();
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(format!("{p}.pub"));
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &p],
    )?;
    Ok(())
}

/// The operator key pair and one host key per node.
pub fn write_keys(st: &LabState) -> Result<()> {
    keygen(
        &operator_key(st),
        &format!("nats-rescue-lab-{}-operator", st.name),
    )?;
    for n in st.hosts() {
        std::fs::create_dir_all(&n.node_dir)
            .map_err(|e| io_err(format!("cannot create {}", n.node_dir.display()), e))?;
        keygen(
            &host_key(&n.node_dir),
            &format!("nats-rescue-lab-{}-{}", st.name, n.name),
        )?;
    }
    Ok(())
}

/// `addr ssh-ed25519 AAAA…` for every node and the bastion (port 22: no `[addr]:port` form).
pub fn write_known_hosts(st: &LabState) -> Result<()> {
    let mut text = String::new();
    for n in st.hosts() {
        let pubp = host_key(&n.node_dir).with_extension("pub");
        let pub_key = std::fs::read_to_string(&pubp)
            .map_err(|e| io_err(format!("cannot read {}", pubp.display()), e))?;
        let mut parts = pub_key.split_whitespace();
        let (Some(kind), Some(key)) = (parts.next(), parts.next()) else {
            return Err(Error::Other(format!(
                "{} is not an OpenSSH public key",
                pubp.display()
            )));
        };
        text.push_str(&format!("{} {kind} {key}\n", n.addr));
    }
    let p = known_hosts(st);
    std::fs::write(&p, text).map_err(|e| io_err(format!("cannot write {}", p.display()), e))
}

/// `<dir>/ssh_config`: `ssh -F <dir>/ssh_config n1` logs in the way the inventory describes
/// (user, key, strict known_hosts, through the bastion when there is one).
pub fn ssh_config_path(st: &LabState) -> PathBuf {
    st.dir.join("ssh_config")
}

pub fn write_ssh_config(st: &LabState) -> Result<()> {
    let user = st.ssh_user.as_ref().map_or("root", |u| u.name.as_str());
    let mut text = format!(
        "# Written by `nats-rescue lab up`: `ssh -F {} n1` logs in as the inventory says.\n",
        ssh_config_path(st).display()
    );
    if let Some(b) = &st.bastion {
        text.push_str(&format!("Host bastion\n  HostName {}\n", b.addr));
    }
    for n in &st.nodes {
        text.push_str(&format!("Host {}\n  HostName {}\n", n.name, n.addr));
        if st.bastion.is_some() {
            text.push_str("  ProxyJump bastion\n");
        }
    }
    text.push_str(&format!(
        "Host *\n  User {user}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
         GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 5\n",
        operator_key(st).display(),
        known_hosts(st).display()
    ));
    let p = ssh_config_path(st);
    std::fs::write(&p, text).map_err(|e| io_err(format!("cannot write {}", p.display()), e))
}

fn config_text(st: &LabState, n: &NodeState) -> String {
    // With an SSH user, root cannot log in (as on most production hosts) and the user's key
    // lives in its own home: sshd reads authorized keys as the user, who cannot enter the
    // lab directory.
    let (root_login, user_block) = match &st.ssh_user {
        Some(u) => (
            "no",
            format!(
                "Match User {}\n    AuthorizedKeysFile {}\n",
                u.name,
                u.home.join(".ssh/authorized_keys").display()
            ),
        ),
        None => ("yes", String::new()),
    };
    format!(
        "# nats-rescue lab: sshd for node {name} in namespace {ns}\n\
         Port 22\n\
         ListenAddress {addr}:22\n\
         HostKey {hk}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {ak}\n\
         PermitRootLogin {root_login}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PrintMotd no\n\
         UseDNS no\n\
         MaxStartups 100:30:200\n\
         MaxSessions 50\n\
         # VERBOSE logs one `Starting session: command ...` line per command (sshd.log): the\n\
         # tests count the SSH rounds each node receives.\n\
         LogLevel VERBOSE\n\
         # bash sources ~/.bashrc for commands run by sshd unless SHLVL is set; root's rc on\n\
         # these machines runs `pyenv init` (~0.2 s CPU per command), which is the host's cost,\n\
         # not the cluster's. Real servers keep their own shell setup.\n\
         SetEnv SHLVL=1\n\
         Subsystem sftp internal-sftp\n\
         {user_block}",
        name = n.name,
        ns = n.netns,
        addr = n.addr,
        hk = host_key(&n.node_dir).display(),
        pid = n.sshd_pidfile.display(),
        ak = operator_key(st).with_extension("pub").display(),
    )
}

/// Starts one sshd inside each namespace (nodes, then the bastion) and records its PID.
pub fn start_all(st: &mut LabState) -> Result<()> {
    for h in st.host_ids() {
        start_one(st, h)?;
    }
    Ok(())
}

/// Starts the sshd of one host and records its PID.
pub fn start_one(st: &mut LabState, h: Host) -> Result<()> {
    std::fs::create_dir_all("/run/sshd").map_err(|e| {
        io_err(
            "cannot create /run/sshd (sshd's privilege separation dir)",
            e,
        )
    })?;
    let n = st
        .host(h)
        .cloned()
        .ok_or_else(|| Error::Other("internal error: no such lab host".into()))?;
    std::fs::write(&n.sshd_config, config_text(st, &n))
        .map_err(|e| io_err(format!("cannot write {}", n.sshd_config.display()), e))?;
    let _ = std::fs::remove_file(&n.sshd_pidfile);
    let log = n.node_dir.join("sshd.log");
    run_in_ns(
        &n.netns,
        &[
            SSHD,
            "-f",
            &n.sshd_config.to_string_lossy(),
            "-E",
            &log.to_string_lossy(),
        ],
    )?;
    // sshd daemonizes; its pid file appears once it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(p) = read_pid(&n.sshd_pidfile).filter(|p| pid_is_ours(*p, &n.sshd_config)) {
            break p;
        }
        if Instant::now() > deadline {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(Error::Other(format!(
                "sshd for {} did not start: {}",
                n.name,
                tail.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(n) = st.host_mut(h) {
        n.sshd_pid = Some(pid);
    }
    st.save()
}

/// Stops every recorded sshd, the bastion's too (by PID, checked against its command line).
pub fn stop_all(st: &mut LabState, problems: &mut Vec<String>) {
    for n in st.nodes.iter_mut().chain(st.bastion.iter_mut()) {
        stop_host(n, problems);
    }
    if problems.is_empty() {
        say("sshd servers stopped");
    }
}

/// Stops one host's sshd (the listener; sessions already open end with their clients).
pub fn stop_host(n: &mut NodeState, problems: &mut Vec<String>) {
    let mut pids: Vec<u32> = n.sshd_pid.into_iter().collect();
    if let Some(p) = read_pid(&n.sshd_pidfile) {
        if !pids.contains(&p) {
            pids.push(p);
        }
    }
    for p in pids {
        if !pid_is_ours(p, &n.sshd_config) {
            continue;
        }
        signal(p, "TERM");
        if !wait_gone(p, &n.sshd_config, Duration::from_secs(5)) {
            signal(p, "KILL");
            if !wait_gone(p, &n.sshd_config, Duration::from_secs(3)) {
                problems.push(format!("sshd pid {p} of {} survived SIGKILL", n.name));
            }
        }
    }
    n.sshd_pid = None;
}
