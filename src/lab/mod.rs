//! The lab: a real local NATS JetStream cluster for rehearsals, end-to-end tests and the demo
//! (SPEC §6). Each node is a Linux network namespace with its own address, its own sshd and
//! its own nats-server; an inventory for them is written to the lab directory.
//!
//! Everything the lab makes is recorded in `<dir>/lab.json` before it is made ([`state`]), so
//! `lab down` can remove it after a crash, and `lab heal` undoes exactly what `lab break` did.

pub mod faults;
pub mod firewall;
pub mod monitor;
pub mod natsclient;
pub mod net;
pub mod seed;
pub mod server;
pub mod sshd;
pub mod state;
pub mod users;

use crate::cli::{LabCommand, LabUpArgs};
use crate::error::{Error, Result};
use state::LabState;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use seed::stream_messages;

/// Lab directory when `--dir` is not given.
pub const DEFAULT_DIR: &str = "/tmp/nats-rescue-lab";
/// Set to keep the lab directory (logs, data) after `lab down`.
pub const KEEP_ENV: &str = "NATS_RESCUE_LAB_KEEP";
/// How long `up` and `heal` wait for a meta leader.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one `lab` subcommand; returns the process exit code.
pub fn dispatch(cmd: &LabCommand) -> Result<i32> {
    match cmd {
        LabCommand::Up(args) => up(args),
        LabCommand::Break { fault, nodes, dir } => {
            require_root("lab break")?;
            let mut st = LabState::load(&dir_or_default(dir))?;
            faults::inject(&mut st, *fault, nodes)?;
            Ok(0)
        }
        LabCommand::Heal {
            dir,
            rebuild_destroyed,
        } => {
            require_root("lab heal")?;
            let mut st = LabState::load(&dir_or_default(dir))?;
            faults::heal(&mut st, *rebuild_destroyed)?;
            Ok(0)
        }
        LabCommand::Down { dir } => {
            require_root("lab down")?;
            down(&dir_or_default(dir))?;
            Ok(0)
        }
        LabCommand::Seed {
            messages,
            fresh,
            dir,
        } => {
            let st = LabState::load(&dir_or_default(dir))?;
            if *fresh {
                seed::delete_stream(&st)?;
            }
            seed::seed(&st, u64::from(*messages))?;
            Ok(0)
        }
        LabCommand::Status { dir } => {
            let st = LabState::load(&dir_or_default(dir))?;
            print_status(&st);
            Ok(0)
        }
    }
}

pub(crate) fn dir_or_default(dir: &Option<PathBuf>) -> PathBuf {
    let d = dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    absolute(&d)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Effective uid, read from /proc (no unsafe libc call).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub(crate) fn require_root(what: &str) -> Result<()> {
    match effective_uid() {
        Some(0) => Ok(()),
        _ => Err(Error::Usage(format!(
            "{what} needs root: it creates network namespaces, a bridge, veth pairs and iptables rules \
             (run it with sudo, or as root in a VM or container with CAP_NET_ADMIN)"
        ))),
    }
}

/// Output of a finished helper command.
pub(crate) struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a program with a hard timeout and captures its output.
pub(crate) fn run_out(prog: &str, args: &[&str], timeout: Duration) -> Result<Out> {
    use std::io::Read;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Other(format!("cannot run `{prog}`: {e}")))?;
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = so.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = se.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Error::Other(format!("waiting for `{prog}`: {e}"))),
        }
    };
    let stdout = t_out.join().unwrap_or_default();
    let mut stderr = t_err.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n(timed out after {}s)", timeout.as_secs()));
    }
    Ok(Out {
        ok: status.map(|s| s.success()).unwrap_or(false),
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    })
}

/// Runs a program that must succeed; the error names the command and its stderr.
pub(crate) fn run(prog: &str, args: &[&str]) -> Result<String> {
    let o = run_out(prog, args, Duration::from_secs(60))?;
    if o.ok {
        Ok(o.stdout)
    } else {
        Err(Error::Other(format!(
            "`{} {}` failed ({}): {}",
            prog,
            args.join(" "),
            o.code
                .map(|c| format!("exit {c}"))
                .unwrap_or_else(|| "killed".into()),
            o.stderr.trim()
        )))
    }
}

/// Runs a command inside a node's namespace (`ip netns exec NS ...`).
pub(crate) fn run_in_ns(netns: &str, args: &[&str]) -> Result<String> {
    let mut all = vec!["netns", "exec", netns];
    all.extend_from_slice(args);
    run("ip", &all)
}

pub(crate) fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> Error {
    Error::Other(format!("{what}: {e}"))
}

/// A printable progress line on stderr (stdout stays for the few machine-usable lines).
pub(crate) fn say(msg: impl std::fmt::Display) {
    eprintln!("lab: {msg}");
}

fn check_tools(nats_server: &Path, ssh_user: bool) -> Result<()> {
    let mut missing = Vec::new();
    if ssh_user {
        for (tool, pkg) in [
            ("sudo", "sudo"),
            ("visudo", "sudo"),
            ("useradd", "passwd"),
            ("userdel", "passwd"),
        ] {
            if which(tool).is_none() {
                missing.push(format!("`{tool}` for --ssh-user (apt-get install {pkg})"));
            }
        }
    }
    if !is_executable(nats_server) {
        missing.push(format!(
            "nats-server binary {} (run `bash scripts/setup.sh`, or `apt-get install nats-server`, \
             or pass --nats-server PATH)",
            nats_server.display()
        ));
    }
    if !is_executable(Path::new(sshd::SSHD)) {
        missing.push(format!("{} (apt-get install openssh-server)", sshd::SSHD));
    }
    for (tool, pkg) in [
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("ssh-keygen", "openssh-client"),
        ("setsid", "util-linux"),
    ] {
        if which(tool).is_none() {
            missing.push(format!("`{tool}` (apt-get install {pkg})"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "lab up: missing {}. `bash scripts/setup.sh` installs everything the lab needs.",
            missing.join("; ")
        )))
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(tool))
        .find(|p| is_executable(p))
}

fn default_nats_server() -> PathBuf {
    which("nats-server").unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

/// Validates `--name` and `--subnet`; returns the subnet's `(X, Y)`.
fn check_names(name: &str, subnet: &str) -> Result<(u8, u8)> {
    if name.is_empty()
        || name.len() > 6
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Err(Error::Usage(format!(
            "lab name `{name}`: use 1 to 6 lowercase letters or digits, starting with a letter \
             (it prefixes interface names, which are limited to 15 characters)"
        )));
    }
    let parts: Vec<&str> = subnet.split('.').collect();
    let parsed: Vec<Option<u8>> = parts.iter().map(|p| p.parse::<u8>().ok()).collect();
    match parsed.as_slice() {
        [Some(x), Some(y)] => Ok((*x, *y)),
        _ => Err(Error::Usage(format!(
            "--subnet `{subnet}`: expected X.Y for the lab's 10.X.Y.0/24, e.g. 213.7"
        ))),
    }
}

fn up(args: &LabUpArgs) -> Result<i32> {
    require_root("lab up")?;
    let t0 = Instant::now();
    let (x, y) = check_names(&args.name, &args.subnet)?;
    if args.nodes == 0 || args.nodes > 9 {
        return Err(Error::Usage(format!(
            "--nodes {}: the lab supports 1 to 9 nodes",
            args.nodes
        )));
    }
    let nats_server = absolute(&args.nats_server.clone().unwrap_or_else(default_nats_server));
    check_tools(&nats_server, args.ssh_user.is_some())?;
    let dir = dir_or_default(&args.dir);
    if dir
        .to_string_lossy()
        .chars()
        .any(|c| c.is_whitespace() || "\"'\\$`#;".contains(c))
    {
        return Err(Error::Usage(format!(
            "--dir {}: choose a directory path without spaces, quotes or shell characters (it is written into sshd and nats-server configs)",
            dir.display()
        )));
    }
    let previous = LabState::load_opt(&dir)?;
    if let Some(old) = &previous {
        if !old.down {
            return Err(Error::Usage(format!(
                "a lab is already recorded in {} (name {}); run `nats-rescue lab down --dir {}` first",
                dir.display(),
                old.name,
                dir.display()
            )));
        }
    }
    let subnet = format!("{x}.{y}");
    net::check_free(&args.name, &subnet, args.nodes)?;
    // Refused before anything is made when the user or its home exists.
    let ssh_user = match &args.ssh_user {
        Some(u) => Some(users::plan(&args.name, u)?),
        None => None,
    };
    let version = server::version(&nats_server)?;

    let _ = std::fs::remove_file(dir.join(server::DOWN_MARKER));
    if let Some(old) = &previous {
        // A lab that was taken down with its directory kept: start from empty data dirs, or the
        // new cluster would recover the old one's JetStream state.
        remove_lab_files(&dir)?;
        if old.created_dir {
            let _ = std::fs::remove_file(LabState::path(&dir));
        }
    }
    let created_dir = match std::fs::read_dir(&dir) {
        Err(_) => true,
        Ok(mut it) => it.all(|e| {
            e.map(|e| e.file_name() == state::STATE_FILE)
                .unwrap_or(false)
        }),
    } || previous.as_ref().map(|o| o.created_dir).unwrap_or(false);
    std::fs::create_dir_all(&dir)
        .map_err(|e| io_err(format!("cannot create {}", dir.display()), e))?;
    let mut st = LabState {
        name: args.name.clone(),
        dir: dir.clone(),
        subnet: subnet.clone(),
        nats_server: nats_server.clone(),
        nats_version: version.clone(),
        created_dir,
        bridge: None,
        bridge_addr: format!("10.{subnet}.1"),
        sys_user: "sys".into(),
        sys_password: random_hex(12),
        app_user: "app".into(),
        app_password: random_hex(12),
        nodes: (1..=args.nodes)
            .map(|i| {
                let name = format!("n{i}");
                let node_dir = dir.join("nodes").join(&name);
                state::NodeState {
                    server_name: None,
                    netns: format!("{}-{name}", args.name),
                    addr: format!("10.{subnet}.{}", 10 + i),
                    veth_host: None,
                    netns_etc: None,
                    config: node_dir.join("nats-server.conf"),
                    store_dir: node_dir.join("data"),
                    ctl: node_dir.join("ctl"),
                    server_pidfile: node_dir.join("nats-server.pid"),
                    server_log: node_dir.join("nats-server.log"),
                    sshd_config: node_dir.join("sshd_config"),
                    sshd_pidfile: node_dir.join("sshd.pid"),
                    server_pids: Vec::new(),
                    sshd_pid: None,
                    node_dir,
                    name,
                }
            })
            .collect(),
        config_style: args.config_style,
        accounts: args.accounts,
        ssh_user,
        route_auth: args.route_auth.then(|| state::RouteAuth {
            user: "route".into(),
            password: random_hex(12),
        }),
        bastion: args.bastion.then(|| {
            let bdir = dir.join("bastion");
            state::NodeState {
                name: "bastion".into(),
                netns: net::bastion_netns(&args.name),
                addr: net::bastion_addr(&subnet),
                sshd_config: bdir.join("sshd_config"),
                sshd_pidfile: bdir.join("sshd.pid"),
                node_dir: bdir,
                ..Default::default()
            }
        }),
        ..Default::default()
    };
    st.save()?;
    say(format!(
        "building {} node(s) `{}` on 10.{subnet}.0/24 with nats-server {version} in {}{}",
        args.nodes,
        args.name,
        dir.display(),
        shape_note(&st)
    ));
    match build(&mut st) {
        Ok(()) => {}
        Err(e) => {
            say(format!("lab up failed: {e}"));
            say("removing what was made");
            if let Err(e2) = teardown(&mut st) {
                say(format!("cleanup after the failure also failed: {e2}"));
            }
            return Err(e);
        }
    }
    let (leader, took) = match monitor::wait_leader(&st, &st.node_names(), t0, LEADER_TIMEOUT) {
        Ok(v) => v,
        Err(e) => {
            say(format!("the servers are running but no meta leader appeared: {e}; the lab is left up for inspection (logs: {}/nodes/*/nats-server.log)", dir.display()));
            return Err(e);
        }
    };
    let inv = st.inventory_path();
    println!(
        "lab `{}` is up: {} nodes, nats-server {}, meta leader {leader} after {:.2}s",
        st.name,
        st.nodes.len(),
        st.nats_version,
        took.as_secs_f64()
    );
    println!("inventory: {}", inv.display());
    println!(
        "next: nats-rescue -i {} status",
        shell_quote(&inv.to_string_lossy())
    );
    Ok(0)
}

/// `, with …` naming the options the lab was built with (none: empty).
fn shape_note(st: &LabState) -> String {
    let mut parts = Vec::new();
    if let Some(u) = &st.ssh_user {
        parts.push(format!("ssh user {}", u.name));
    }
    if let Some(b) = &st.bastion {
        parts.push(format!("bastion {}", b.addr));
    }
    if st.route_auth.is_some() {
        parts.push("route auth".into());
    }
    if st.accounts {
        parts.push("accounts".into());
    }
    if st.config_style == state::ConfigStyle::Helm {
        parts.push("helm-style configs".into());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", with {}", parts.join(", "))
    }
}

fn build(st: &mut LabState) -> Result<()> {
    sshd::write_keys(st)?;
    net::create(st)?;
    users::create(st, &sshd::operator_key(st).with_extension("pub"))?;
    for i in 0..st.nodes.len() {
        server::write_node_files(st, i)?;
    }
    sshd::start_all(st)?;
    sshd::write_known_hosts(st)?;
    sshd::write_ssh_config(st)?;
    if let Some(b) = st.bastion.clone() {
        let rules: Vec<_> = st
            .nodes
            .iter()
            .flat_map(|n| firewall::bastion_rules(n, &b.addr))
            .collect();
        firewall::insert_recorded(st, &rules)?;
        say(format!(
            "SSH and monitoring of every node answer only the bastion {}",
            b.addr
        ));
    }
    server::write_inventory(st)?;
    let names = st.node_names();
    server::start_many(st, &names)?;
    Ok(())
}

/// `lab down`: removes everything recorded. Idempotent; tolerant of partial state.
pub fn down(dir: &Path) -> Result<()> {
    let mut st = match LabState::load_opt(dir)? {
        Some(s) => s,
        None => {
            say(format!(
                "no lab recorded in {}; nothing to remove",
                dir.display()
            ));
            return Ok(());
        }
    };
    teardown(&mut st)
}

fn teardown(st: &mut LabState) -> Result<()> {
    let mut problems = Vec::new();
    // From here on `ctl start` refuses (a `ctl start` racing with `down`, e.g. from an
    // interrupted `up`, must not leave a server behind).
    let marker = st.dir.join(server::DOWN_MARKER);
    if st.dir.exists() {
        let _ = std::fs::write(&marker, "lab down in progress\n");
    }
    faults::stop_restorers(st, &mut problems);
    server::stop_all_for_down(st, &mut problems);
    sshd::stop_all(st, &mut problems);
    firewall::remove_all(st, &mut problems);
    net::destroy(st, &mut problems);
    // A second pass for a server whose `ctl start` passed the marker check just before it
    // was written.
    server::stop_all_for_down(st, &mut problems);
    users::remove(st, &mut problems);
    st.faults.clear();
    st.down = true;
    let keep = keep_requested();
    if st.created_dir && !keep && problems.is_empty() {
        if let Err(e) = std::fs::remove_dir_all(&st.dir) {
            problems.push(format!("cannot remove {}: {e}", st.dir.display()));
        }
    } else if st.dir.exists() {
        st.save()?;
    }
    if problems.is_empty() {
        say(format!("lab `{}` removed", st.name));
        Ok(())
    } else {
        Err(Error::Other(format!(
            "lab down left things behind:\n  {}",
            problems.join("\n  ")
        )))
    }
}

fn print_status(st: &LabState) {
    println!(
        "lab `{}` in {} — nats-server {} ({}), subnet 10.{}.0/24",
        st.name,
        st.dir.display(),
        st.nats_version,
        st.nats_server.display(),
        st.subnet
    );
    println!("inventory: {}", st.inventory_path().display());
    println!(
        "{:<4} {:<12} {:<14} {:<22} {:<14} {:<10}",
        "NODE", "NETNS", "ADDRESS", "NATS-SERVER", "SSHD", "LEADER"
    );
    for n in &st.nodes {
        let server = match server::read_pid(&n.server_pidfile)
            .filter(|p| server::pid_is_ours(*p, &n.config))
        {
            Some(p) if server::proc_state(p) == Some('T') => format!("frozen pid {p}"),
            Some(p) => format!("running pid {p}"),
            None => "stopped".into(),
        };
        let sshd = match n
            .sshd_pid
            .filter(|p| server::pid_is_ours(*p, &n.sshd_config))
        {
            Some(p) => format!("pid {p}"),
            None => "not running".into(),
        };
        let leader = match monitor::node_json(st, &n.name, "/jsz", Duration::from_millis(800)) {
            Ok(j) => monitor::leader_of(&j).unwrap_or_else(|| "(none)".into()),
            Err(_) => "(no answer)".into(),
        };
        let name = match &n.server_name {
            Some(s) => format!("{} (as {s})", n.name),
            None => n.name.clone(),
        };
        println!(
            "{:<4} {:<12} {:<14} {:<22} {:<14} {:<10}",
            name, n.netns, n.addr, server, sshd, leader
        );
    }
    if let Some(b) = &st.bastion {
        let sshd = match b
            .sshd_pid
            .filter(|p| server::pid_is_ours(*p, &b.sshd_config))
        {
            Some(p) => format!("pid {p}"),
            None => "not running".into(),
        };
        println!("bastion {} ({}): sshd {sshd}", b.addr, b.netns);
    }
    if let Some(u) = &st.ssh_user {
        println!(
            "ssh user: {} (NOPASSWD sudo via {})",
            u.name,
            u.sudoers.display()
        );
    }
    match seed::stream_messages_now(st, seed::STREAM) {
        Ok(n) => println!("stream {}: {n} messages", seed::STREAM),
        Err(e) => println!("stream {}: {e}", seed::STREAM),
    }
    if st.faults.is_empty() {
        println!("faults: none");
    } else {
        for f in &st.faults {
            println!(
                "fault: {} on {}{}",
                f.kind(),
                f.nodes().join(", "),
                faults::status_note(st, f)
            );
        }
    }
    let standing: Vec<state::IptablesRule> = st
        .bastion
        .as_ref()
        .map(|b| {
            st.nodes
                .iter()
                .flat_map(|n| firewall::bastion_rules(n, &b.addr))
                .collect()
        })
        .unwrap_or_default();
    let n_standing = st.iptables.iter().filter(|r| standing.contains(r)).count();
    if n_standing > 0 {
        println!(
            "firewall: SSH and monitoring of every node answer only the bastion ({n_standing} rules)"
        );
    }
    // A flap's restorer removes its rules by itself: show what is really in place.
    for r in st
        .iptables
        .iter()
        .filter(|r| !standing.contains(r) && firewall::present(r))
    {
        println!("iptables: {}", r.display());
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)) {
        Ok(()) => hex::encode(buf),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{:x}{:x}", t, std::process::id())
        }
    }
}

pub(crate) fn shell_quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| s.to_string())
}

/// `NATS_RESCUE_LAB_KEEP` set to anything but empty or `0`.
fn keep_requested() -> bool {
    std::env::var_os(KEEP_ENV)
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

/// The files and node directories a previous lab left in `dir` (nothing else there).
fn remove_lab_files(dir: &Path) -> Result<()> {
    for f in [
        "id_ed25519",
        "id_ed25519.pub",
        "known_hosts",
        "ssh_config",
        "inventory.yaml",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    for sub in ["nodes", "bastion"] {
        let d = dir.join(sub);
        if d.exists() {
            std::fs::remove_dir_all(&d)
                .map_err(|e| io_err(format!("cannot remove the old {}", d.display()), e))?;
        }
    }
    Ok(())
}
