//! Per node: the nats-server config, the data dir, and `nodes/nN/ctl`, the lab's `systemctl`.
//! The control script acts by PID file only (namespaces share one PID space, so a name-based
//! kill would hit every node). Also the inventory the lab writes.

use super::state::{ConfigStyle, LabState};
use super::{io_err, run_out, say, shell_quote};
use crate::error::{Error, Result};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

pub const CLIENT_PORT: u16 = 4222;
pub const CLUSTER_PORT: u16 = 6222;
pub const MONITOR_PORT: u16 = 8222;
pub const CLUSTER_NAME: &str = "lab";
pub const SYSTEM_ACCOUNT: &str = "SYS";
pub const APP_ACCOUNT: &str = "APP";
/// Written to the lab dir when `lab down` begins; `ctl start` refuses while it exists.
pub const DOWN_MARKER: &str = ".down";

/// `v2.15.1` from `nats-server --version`.
pub fn version(bin: &Path) -> Result<String> {
    let o = run_out(
        &bin.to_string_lossy(),
        &["--version"],
        Duration::from_secs(10),
    )?;
    let text = format!("{}{}", o.stdout, o.stderr);
    text.split_whitespace()
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(String::from)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} does not look like nats-server (`--version` said: {})",
                bin.display(),
                text.trim()
            ))
        })
}

/// The server config for node `i` in the lab's style, routes on port `route_port` by host name.
pub fn config_text(st: &LabState, i: usize, route_port: u16) -> String {
    match st.config_style {
        ConfigStyle::Classic => classic_config(st, i, route_port),
        ConfigStyle::Helm => helm_config(st, i, route_port),
    }
}

/// `scheme://[user:password@]host:port` for a route to `host`.
fn route_url(st: &LabState, scheme: &str, host: &str, port: u16) -> String {
    match &st.route_auth {
        Some(a) => format!("{scheme}://{}:{}@{host}:{port}", a.user, a.password),
        None => format!("{scheme}://{host}:{port}"),
    }
}

fn classic_config(st: &LabState, i: usize, route_port: u16) -> String {
    let n = &st.nodes[i];
    let routes: String = st
        .nodes
        .iter()
        .map(|p| {
            format!(
                "    \"{}\"\n",
                route_url(st, "nats-route", &p.name, route_port)
            )
        })
        .collect();
    let auth = match &st.route_auth {
        Some(a) => format!(
            "  authorization {{\n    user: \"{}\"\n    password: \"{}\"\n  }}\n",
            a.user, a.password
        ),
        None => String::new(),
    };
    let no_auth = if st.accounts {
        String::new()
    } else {
        format!("no_auth_user: {}\n", st.app_user)
    };
    format!(
        "# nats-rescue lab: node {name} of `{lab}` (namespace {ns})\n\
         server_name: {server_name}\n\
         listen: \"{addr}:{CLIENT_PORT}\"\n\
         http: \"{addr}:{MONITOR_PORT}\"\n\
         jetstream {{\n  store_dir: \"{store}\"\n}}\n\
         cluster {{\n  name: {CLUSTER_NAME}\n  listen: \"{addr}:{CLUSTER_PORT}\"\n{auth}  routes: [\n{routes}  ]\n}}\n\
         accounts {{\n  {SYSTEM_ACCOUNT}: {{ users: [ {{ user: \"{su}\", password: \"{sp}\" }} ] }}\n  \
         {APP_ACCOUNT}: {{ jetstream: enabled, users: [ {{ user: \"{au}\", password: \"{ap}\" }} ] }}\n}}\n\
         system_account: {SYSTEM_ACCOUNT}\n\
         {no_auth}",
        name = n.name,
        server_name = n.server_name(),
        lab = st.name,
        ns = n.netns,
        addr = n.addr,
        store = n.store_dir.display(),
        su = st.sys_user,
        sp = st.sys_password,
        au = st.app_user,
        ap = st.app_password,
    )
}

/// Placeholders for the two values the chart writes unquoted (not valid JSON, valid NATS).
const SERVER_NAME_VAR: &str = "\"<<$SERVER_NAME>>\"";
const MAX_FILE_STORE: &str = "\"<<10Gi>>\"";

/// The config as the official Helm chart (v1) renders it: a JSON document, listening on all
/// interfaces, `server_name: $SERVER_NAME` (exported by the ctl script, as the chart's pod
/// spec does), routes to every server including this one, `nats://` URLs.
fn helm_config(st: &LabState, i: usize, route_port: u16) -> String {
    let n = &st.nodes[i];
    let routes: Vec<String> = st
        .nodes
        .iter()
        .map(|p| route_url(st, "nats", &p.name, route_port))
        .collect();
    let mut cluster = json!({
        "name": CLUSTER_NAME, "no_advertise": true, "port": CLUSTER_PORT, "routes": routes,
    });
    if let Some(a) = &st.route_auth {
        cluster["authorization"] = json!({"user": a.user, "password": a.password});
    }
    let mut conf = json!({
        "cluster": cluster,
        "http_port": MONITOR_PORT,
        "jetstream": {
            "max_file_store": MAX_FILE_STORE.trim_matches('"'),
            "max_memory_store": 0,
            "store_dir": n.store_dir.to_string_lossy(),
        },
        "lame_duck_duration": "30s",
        "lame_duck_grace_period": "10s",
        "pid_file": n.server_pidfile.to_string_lossy(),
        "port": CLIENT_PORT,
        "server_name": SERVER_NAME_VAR.trim_matches('"'),
        "accounts": {
            SYSTEM_ACCOUNT: {"users": [{"user": st.sys_user, "password": st.sys_password}]},
            APP_ACCOUNT: {"jetstream": "enabled",
                          "users": [{"user": st.app_user, "password": st.app_password}]},
        },
        "system_account": SYSTEM_ACCOUNT,
    });
    if !st.accounts {
        conf["no_auth_user"] = json!(st.app_user);
    }
    let body = serde_json::to_string_pretty(&conf)
        .unwrap_or_default()
        .replace(SERVER_NAME_VAR, "$SERVER_NAME")
        .replace(MAX_FILE_STORE, "10Gi");
    format!(
        "# nats-rescue lab: node {} of `{}` (namespace {}), rendered like the NATS Helm chart v1\n{body}\n",
        n.name, st.name, n.netns
    )
}

fn ctl_text(st: &LabState, i: usize) -> String {
    let n = &st.nodes[i];
    let q = |p: &Path| shell_quote(&p.to_string_lossy());
    format!(
        r#"#!/usr/bin/env bash
# nats-rescue lab: control script for nats-server {name} (the lab's `systemctl`).
# ctl start|stop|status|reload|kill|pid   -- acts by PID file only.
# status exits 0 when the server process is alive (also when frozen), 3 when not (like systemctl).
set -u
# The server_name, for configs that read it from the environment (like the Helm chart's).
export SERVER_NAME={server_name}
NS={ns}
BIN={bin}
CONF={conf}
PIDF={pidf}
LOG={log}
OUT={out}
DOWN={down}
pid_of() {{ [ -s "$PIDF" ] && head -c 20 "$PIDF" | tr -dc 0-9; }}
alive() {{
  local p; p=$(pid_of) || return 1; [ -n "$p" ] || return 1
  [ -r "/proc/$p/stat" ] || return 1
  # a zombie is gone; a PID reused by another program is not ours
  [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ] || return 1
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$CONF"
}}
in_ns() {{ [ "$(ip netns identify 2>/dev/null)" = "$NS" ]; }}
cmd=${{1:-status}}
case "$cmd" in
  start|reload) in_ns || exec ip netns exec "$NS" "$0" "$@" ;;
esac
case "$cmd" in
  start)
    if [ -e "$DOWN" ]; then echo "{name}: the lab is being taken down ($DOWN); not starting" >&2; exit 1; fi
    if alive; then echo "{name}: nats-server already running (pid $(pid_of))"; exit 0; fi
    rm -f "$PIDF"
    setsid nohup "$BIN" -c "$CONF" -P "$PIDF" -l "$LOG" </dev/null >>"$OUT" 2>&1 &
    for _ in $(seq 1 100); do
      if alive; then
        sleep 0.2
        if alive; then echo "{name}: nats-server started (pid $(pid_of))"; exit 0; fi
      fi
      sleep 0.05
    done
    echo "{name}: nats-server did not start; last output:" >&2; tail -n 5 "$OUT" >&2; tail -n 5 "$LOG" >&2 2>/dev/null; exit 1 ;;
  stop)
    if ! alive; then echo "{name}: nats-server not running"; rm -f "$PIDF"; exit 0; fi
    p=$(pid_of); kill -TERM "$p"; kill -CONT "$p" 2>/dev/null   # like systemd: a stopped process must run to exit
    for _ in $(seq 1 300); do alive || {{ echo "{name}: nats-server stopped (pid $p)"; rm -f "$PIDF"; exit 0; }}; sleep 0.1; done
    echo "{name}: nats-server pid $p did not stop within 30s" >&2; exit 1 ;;
  kill)
    if ! alive; then echo "{name}: nats-server not running"; exit 0; fi
    p=$(pid_of); kill -KILL "$p"
    for _ in $(seq 1 100); do alive || {{ echo "{name}: nats-server killed (pid $p)"; rm -f "$PIDF"; exit 0; }}; sleep 0.05; done
    echo "{name}: pid $p still there after SIGKILL" >&2; exit 1 ;;
  status)
    if alive; then echo "active (pid $(pid_of))"; exit 0; else echo "inactive"; exit 3; fi ;;
  reload)
    if ! alive; then echo "{name}: nats-server not running" >&2; exit 1; fi
    "$BIN" --signal reload="$(pid_of)" || kill -HUP "$(pid_of)" ;;
  pid)
    if alive; then pid_of; echo; else exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|reload|kill|pid" >&2; exit 2 ;;
esac
"#,
        name = n.name,
        server_name = shell_quote(n.server_name()),
        ns = shell_quote(&n.netns),
        bin = q(&st.nats_server),
        conf = q(&n.config),
        pidf = q(&n.server_pidfile),
        log = q(&n.server_log),
        out = q(&n.node_dir.join("nats-server.out")),
        down = q(&st.dir.join(DOWN_MARKER)),
    )
}

/// Data dir, config and control script of node `i`. Root-only, as on a real host where the
/// server runs as a service: an SSH user needs sudo to control it or read its store.
pub fn write_node_files(st: &LabState, i: usize) -> Result<()> {
    let n = &st.nodes[i];
    make_store_dir(&n.store_dir)?;
    chmod(&n.node_dir, 0o700)?;
    write_private(&n.config, &config_text(st, i, CLUSTER_PORT), 0o600)?;
    write_ctl(st, i)
}

/// (Re)writes node `i`'s control script (also after a rename: it exports the server_name).
pub fn write_ctl(st: &LabState, i: usize) -> Result<()> {
    let n = &st.nodes[i];
    write_private(&n.ctl, &ctl_text(st, i), 0o700)
}

/// An empty, root-only store dir.
pub fn make_store_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io_err(format!("cannot create {}", dir.display()), e))?;
    chmod(dir, 0o700)
}

fn chmod(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(format!("cannot chmod {}", p.display()), e))
}

/// Writes `text` to `p` with `mode` (set before the content is written).
pub(crate) fn write_private(p: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(p)?;
        f.write_all(text.as_bytes())
    };
    write().map_err(|e| io_err(format!("cannot write {}", p.display()), e))?;
    chmod(p, mode)
}

/// Runs `nodes/<node>/ctl <action>` (it enters the node's namespace itself where needed).
pub fn ctl(st: &LabState, node: &str, action: &str) -> Result<String> {
    let n = st.node(node)?;
    let o = run_out(&n.ctl.to_string_lossy(), &[action], Duration::from_secs(45))?;
    if o.ok {
        Ok(o.stdout)
    } else {
        Err(Error::Other(format!(
            "`{} {action}` failed: {}{}",
            n.ctl.display(),
            o.stdout.trim(),
            o.stderr.trim()
        )))
    }
}

/// `ctl status` exit 0.
pub fn is_running(st: &LabState, node: &str) -> bool {
    st.node(node)
        .ok()
        .and_then(|n| {
            run_out(
                &n.ctl.to_string_lossy(),
                &["status"],
                Duration::from_secs(10),
            )
            .ok()
        })
        .map(|o| o.ok)
        .unwrap_or(false)
}

/// Remembers the current server PID of `node` (for `down` after a crash).
pub fn record_pid(st: &mut LabState, node: &str) -> Result<()> {
    let (pidfile, config) = {
        let n = st.node(node)?;
        (n.server_pidfile.clone(), n.config.clone())
    };
    if let Some(p) = read_pid(&pidfile).filter(|p| pid_is_ours(*p, &config)) {
        let n = st.node_mut(node)?;
        if !n.server_pids.contains(&p) {
            n.server_pids.push(p);
        }
        st.save()?;
    }
    Ok(())
}

/// Starts a node's server and records its PID.
pub fn start(st: &mut LabState, node: &str) -> Result<()> {
    let out = ctl(st, node, "start")?;
    say(out.trim());
    record_pid(st, node)
}

pub fn stop(st: &LabState, node: &str) -> Result<()> {
    let out = ctl(st, node, "stop")?;
    say(out.trim());
    Ok(())
}

/// Runs `ctl ACTION` for several nodes at once (servers of a cluster start together, as
/// they would on separate machines); the first failure is returned after all finished.
fn ctl_parallel(st: &LabState, nodes: &[String], action: &str) -> Result<()> {
    let results: Vec<Result<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| s.spawn(move || ctl(st, n, action)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Other(format!("ctl {action}: thread panicked"))))
            })
            .collect()
    });
    let mut first_err = None;
    for r in results {
        match r {
            Ok(out) => say(out.trim()),
            Err(e) => {
                say(&e);
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Starts several nodes' servers in parallel and records their PIDs.
pub fn start_many(st: &mut LabState, nodes: &[String]) -> Result<()> {
    let r = ctl_parallel(st, nodes, "start");
    for n in nodes {
        record_pid(st, n)?;
    }
    r
}

/// Stops several nodes' servers in parallel.
pub fn stop_many(st: &LabState, nodes: &[String]) -> Result<()> {
    ctl_parallel(st, nodes, "stop")
}

pub fn read_pid(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

/// The process exists, is not a zombie, and its command line names `marker` (our config path):
/// never signal a PID that was reused by another program.
pub fn pid_is_ours(pid: u32, marker: &Path) -> bool {
    if matches!(proc_state(pid), None | Some('Z') | Some('X')) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    text.contains(&*marker.to_string_lossy())
}

/// The state letter from /proc/PID/stat (R, S, D, T, Z, …).
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

pub fn signal(pid: u32, sig: &str) -> bool {
    run_out(
        "kill",
        &[&format!("-{sig}"), &pid.to_string()],
        Duration::from_secs(5),
    )
    .map(|o| o.ok)
    .unwrap_or(false)
}

/// Signals the process group led by `pgid` (a session leader the lab started with setsid).
pub fn signal_group(pgid: u32, sig: &str) -> bool {
    run_out(
        "kill",
        &[&format!("-{sig}"), "--", &format!("-{pgid}")],
        Duration::from_secs(5),
    )
    .map(|o| o.ok)
    .unwrap_or(false)
}

/// Waits until `pid` no longer runs our program.
pub fn wait_gone(pid: u32, marker: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !pid_is_ours(pid, marker) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !pid_is_ours(pid, marker)
}

/// `down`: every server PID ever recorded plus the current pid files; SIGCONT (a frozen server
/// cannot exit), SIGTERM, then SIGKILL.
pub fn stop_all_for_down(st: &mut LabState, problems: &mut Vec<String>) {
    let mut victims = Vec::new();
    for n in &st.nodes {
        let mut pids = n.server_pids.clone();
        if let Some(p) = read_pid(&n.server_pidfile) {
            if !pids.contains(&p) {
                pids.push(p);
            }
        }
        for p in pids {
            if pid_is_ours(p, &n.config) {
                signal(p, "TERM");
                signal(p, "CONT");
                victims.push((n.name.clone(), p, n.config.clone()));
            }
        }
    }
    for (name, p, conf) in &victims {
        if !wait_gone(*p, conf, Duration::from_secs(10)) {
            signal(*p, "KILL");
            if !wait_gone(*p, conf, Duration::from_secs(3)) {
                problems.push(format!("nats-server pid {p} of {name} survived SIGKILL"));
            }
        }
    }
    for n in &mut st.nodes {
        n.server_pids.clear();
        let _ = std::fs::remove_file(&n.server_pidfile);
    }
    if !victims.is_empty() {
        say(format!("{} nats-server process(es) stopped", victims.len()));
    }
}

/// The inventory for the lab (SPEC §2), checked by the inventory loader before it is kept.
pub fn inventory_text(st: &LabState) -> String {
    let q = |p: &Path| yaml_str(&p.to_string_lossy());
    let user = st.ssh_user.as_ref().map_or("root", |u| u.name.as_str());
    let mut ssh_extra = String::new();
    if st.ssh_user.is_some() {
        ssh_extra.push_str("    sudo: true\n");
    }
    if let Some(b) = &st.bastion {
        ssh_extra.push_str(&format!(
            "    proxy_jump: {}\n",
            yaml_str(&format!("{user}@{}", b.addr))
        ));
    }
    let mut nats_extra = String::new();
    if st.accounts {
        // The lab writes the password itself (this file is 0600): the printed `status`
        // command then works as is. Real inventories should prefer `password_env`.
        nats_extra.push_str(&format!(
            "    system_user: {{ user: {}, password: {} }}\n",
            yaml_str(&st.sys_user),
            serde_json::to_string(&st.sys_password).unwrap_or_default()
        ));
    }
    let mut shape = Vec::new();
    if let Some(u) = &st.ssh_user {
        shape.push(format!("SSH as `{}` with sudo", u.name));
    }
    if let Some(b) = &st.bastion {
        shape.push(format!(
            "SSH and monitoring only through the bastion {}",
            b.addr
        ));
    }
    if st.route_auth.is_some() {
        shape.push("routes authenticate".to_string());
    }
    if st.accounts {
        shape.push("clients authenticate".to_string());
    }
    if st.config_style == ConfigStyle::Helm {
        shape.push("Helm-style JSON configs".to_string());
    }
    let shape = if shape.is_empty() {
        String::new()
    } else {
        format!("# Shape: {}.\n", shape.join("; "))
    };
    let mut s = format!(
        "# Written by `nats-rescue lab up`: local rehearsal cluster `{name}` (nats-server {ver}),\n\
         # {n} nodes in network namespaces {name}-n1..{name}-n{n} on 10.{subnet}.0/24. Remove with\n\
         # `nats-rescue lab down --dir {dir}`. `ssh -F {dir}/ssh_config n1` logs in the same way.\n\
         {shape}\
         cluster: {CLUSTER_NAME}\n\
         defaults:\n  ssh:\n    user: {user}\n    port: 22\n    identity_file: {key}\n    known_hosts: {kh}\n    \
         connect_timeout: 10s\n    command_timeout: 60s\n{ssh_extra}  \
         nats:\n    monitor_port: {MONITOR_PORT}\n    monitor: {monitor}\n    cluster_port: {CLUSTER_PORT}\n    \
         client_port: {CLIENT_PORT}\n    server_bin: {bin}\n    system_account: {SYSTEM_ACCOUNT}\n{nats_extra}\
         nodes:\n",
        name = st.name,
        ver = st.nats_version,
        n = st.nodes.len(),
        subnet = st.subnet,
        dir = st.dir.display(),
        user = yaml_str(user),
        key = q(&super::sshd::operator_key(st)),
        kh = q(&super::sshd::known_hosts(st)),
        monitor = if st.bastion.is_some() { "ssh" } else { "direct" },
        bin = q(&st.nats_server),
    );
    for n in &st.nodes {
        let ctl = shell_quote(&n.ctl.to_string_lossy());
        s.push_str(&format!(
            "  - name: {name}\n    host: {addr}\n    nats:\n      cluster_host: {host}\n      config_file: {conf}\n      store_dir: {store}\n      \
             service:\n        start: {start}\n        stop: {stop}\n        status: {status}\n        reload: {reload}\n",
            name = yaml_str(n.server_name()),
            addr = n.addr,
            host = yaml_str(&n.name),
            conf = q(&n.config),
            store = q(&n.store_dir),
            start = yaml_str(&format!("{ctl} start")),
            stop = yaml_str(&format!("{ctl} stop")),
            status = yaml_str(&format!("{ctl} status")),
            reload = yaml_str(&format!("{ctl} reload")),
        ));
    }
    s
}

/// A YAML scalar: plain when safe, double-quoted (JSON rules are valid YAML) otherwise.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._- ".contains(c))
        && !s.starts_with(['-', ' '])
        && !s.ends_with(' ');
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

pub fn write_inventory(st: &LabState) -> Result<()> {
    let text = inventory_text(st);
    let path = st.inventory_path();
    crate::inventory::Inventory::parse(&path, &text).map_err(|e| {
        Error::Other(format!(
            "internal error: the lab inventory does not load: {e}"
        ))
    })?;
    // 0600: with --accounts it holds the system user's password.
    write_private(&path, &text, 0o600)
}

#[cfg(test)]
mod tests;
