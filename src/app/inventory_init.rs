//! `inventory init --seed HOST`: connects to one server, reads how it runs (process, config,
//! monitoring, service), follows its routes to the others, checks each the same way, and
//! writes an inventory with a comment per field saying what was read and what is assumed.
//! Read-only on every host. Nothing secret is copied: passwords in the config stay there.

use crate::cli::{GlobalOpts, InventoryCommand, InventoryInitArgs};
use crate::error::{Error, Result};
use crate::inventory::discover::{self, ConfigChoice, ConfigDetails, ConfigRead, HostScan};
use crate::inventory::writer::{yaml_str, Document, Field, NodeEntry};
use crate::inventory::{Inventory, JumpHost, MonitorMode, Node};
use crate::ssh::SshTransport;
use crate::transport::{RemoteCommand, Transport, TransportError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// At most this many servers are followed (a loop of routes must end).
const MAX_SERVERS: usize = 64;
/// The variable `system_user.password_env` names.
pub const PASSWORD_ENV: &str = "NATS_SYS_PASSWORD";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

pub fn dispatch(g: &GlobalOpts, c: &InventoryCommand) -> Result<i32> {
    match c {
        InventoryCommand::Init(a) => init(g, a),
    }
}

/// The SSH settings from the command line, as inventory fields with their reasons.
fn ssh_fields(a: &InventoryInitArgs, seed: &JumpHost) -> Result<Vec<Field>> {
    let mut f = Vec::new();
    match (&seed.user, &a.ssh_user) {
        (Some(u), _) => f.push(Field::str("user", u, "from --seed USER@HOST")),
        (None, Some(u)) => f.push(Field::str("user", u, "--ssh-user")),
        (None, None) => {
            let u = std::env::var("USER").unwrap_or_else(|_| "root".into());
            f.push(Field::str(
                "user",
                u,
                "no --ssh-user: the user who ran `inventory init`",
            ));
        }
    }
    if let Some(p) = seed.port.or(a.ssh_port) {
        f.push(Field::int("port", u64::from(p), "SSH port of every server"));
    }
    let abs = |p: &Path, what: &str| -> Result<String> {
        std::path::absolute(p)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| Error::Usage(format!("{what} {}: {e}", p.display())))
    };
    if let Some(k) = &a.identity_file {
        if !k.exists() {
            return Err(Error::Usage(format!(
                "--identity-file {}: no such file",
                k.display()
            )));
        }
        f.push(Field::str(
            "identity_file",
            abs(k, "--identity-file")?,
            "--identity-file",
        ));
    }
    match &a.known_hosts {
        Some(k) => f.push(Field::str(
            "known_hosts",
            abs(k, "--known-hosts")?,
            "--known-hosts: holds the key of every server (and jump host)",
        )),
        None => f.push(Field::str(
            "known_hosts",
            "~/.ssh/known_hosts",
            "the default: holds the key of every server (and jump host)",
        )),
    }
    if a.sudo {
        f.push(Field::bool(
            "sudo",
            true,
            "--sudo: privileged steps and root-only reads run through `sudo -n`",
        ));
    }
    if let Some(j) = &a.proxy_jump {
        let hops = crate::inventory::parse_proxy_jump(j)
            .map_err(|e| Error::Usage(format!("--proxy-jump: {e}")))?;
        f.push(Field::str(
            "proxy_jump",
            crate::inventory::format_proxy_jump(&hops),
            "--proxy-jump: every server is reached through it",
        ));
    }
    Ok(f)
}

/// A node with the command line's SSH settings, through the inventory loader (so `~`,
/// defaults and proxy_jump mean what they mean in an inventory).
fn template_node(ssh: &[Field], host: &str) -> Result<Node> {
    let doc = Document {
        header: vec![],
        top: vec![
            Field::str("cluster", "init", ""),
            Field::map("defaults", vec![Field::map("ssh", ssh.to_vec(), "")], ""),
        ],
        nodes: vec![NodeEntry {
            comments: vec![],
            fields: vec![Field::str("name", host, ""), Field::str("host", host, "")],
        }],
    };
    let inv = Inventory::parse(Path::new("<command line>"), &doc.render())?;
    inv.nodes
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other("internal error: no node".into()))
}

/// What `/varz` said (only what the inventory uses).
#[derive(Debug, Clone, Default)]
struct Varz {
    server_name: Option<String>,
    cluster_name: Option<String>,
    cluster_port: Option<u16>,
    client_port: Option<u16>,
    store_dir: Option<String>,
    system_account: Option<String>,
    version: Option<String>,
    /// `cluster.urls`: the configured routes as `host:port` (credentials removed).
    route_urls: Vec<String>,
    /// `direct` or `ssh`.
    via: &'static str,
}

impl Varz {
    fn parse(body: &str, via: &'static str) -> Option<Varz> {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let s = |p: &serde_json::Value| p.as_str().filter(|s| !s.is_empty()).map(String::from);
        let port = |p: &serde_json::Value| p.as_u64().and_then(|n| u16::try_from(n).ok());
        Some(Varz {
            server_name: s(&v["server_name"]),
            cluster_name: s(&v["cluster"]["name"]),
            cluster_port: port(&v["cluster"]["cluster_port"]).or(port(&v["cluster"]["port"])),
            client_port: port(&v["port"]),
            // the server reports `<store_dir>/jetstream`; the inventory wants store_dir
            store_dir: s(&v["jetstream"]["config"]["store_dir"])
                .map(|d| d.strip_suffix("/jetstream").map(String::from).unwrap_or(d)),
            system_account: s(&v["system_account"]),
            version: s(&v["version"]),
            route_urls: v["cluster"]["urls"]
                .as_array()
                .map(|a| a.iter().filter_map(s).collect())
                .unwrap_or_default(),
            via,
        })
    }
}

/// Everything learned about one host.
#[derive(Debug)]
struct HostReport {
    /// Address or name used for SSH.
    host: String,
    /// How this host was found (for its comment).
    found_by: String,
    /// Route host names that point at this host (candidates for `cluster_host`).
    route_names: Vec<String>,
    ssh_error: Option<String>,
    scan: HostScan,
    choice: Option<ConfigChoice>,
    read: Option<ConfigRead>,
    details: Option<ConfigDetails>,
    /// Why there are no details.
    config_problem: Option<String>,
    monitor_port: u16,
    varz: Option<Varz>,
    varz_error: Option<String>,
    /// `$VAR` server_name read from the running process's environment.
    env_server_name: Option<(String, String)>,
    /// Route targets (the config's, else the route URLs in `/varz`), where they came from,
    /// and how this host resolves their names.
    routes: Vec<crate::natsconf::Endpoint>,
    routes_from: &'static str,
    resolved: std::collections::BTreeMap<String, Vec<String>>,
}

impl HostReport {
    fn new(host: &str, found_by: String) -> HostReport {
        HostReport {
            host: host.to_string(),
            found_by,
            route_names: Vec::new(),
            ssh_error: None,
            scan: HostScan::default(),
            choice: None,
            read: None,
            details: None,
            config_problem: None,
            monitor_port: 8222,
            varz: None,
            varz_error: None,
            env_server_name: None,
            routes: Vec::new(),
            routes_from: "config",
            resolved: std::collections::BTreeMap::new(),
        }
    }

    fn server_name(&self) -> Option<(String, String)> {
        if let Some(n) = self.varz.as_ref().and_then(|v| v.server_name.clone()) {
            return Some((n, "server_name from its /varz".into()));
        }
        if let Some((n, why)) = &self.env_server_name {
            return Some((n.clone(), why.clone()));
        }
        let file = self.choice.as_ref().map_or("", |c| c.path.as_str());
        match self.details.as_ref().and_then(|d| d.server_name.clone()) {
            Some(n) if !n.starts_with('$') => Some((n, format!("server_name in {file}"))),
            _ => None,
        }
    }

    /// What stops this host from being fully known (each makes the exit code 1).
    fn problems(&self, sudo: bool) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(e) = &self.ssh_error {
            p.push(format!("not checked: {e}"));
            return p;
        }
        if !self.scan.complete {
            p.push("the read-only discovery script did not finish".into());
        }
        let ambiguous = self.scan.ambiguous_processes();
        if ambiguous > 0 {
            p.push(format!(
                "{ambiguous} nats-server processes are visible and their network namespaces are not readable as {}: which one runs here is not known; run again with --sudo",
                self.scan.user.as_deref().unwrap_or("this user")
            ));
        } else if self.scan.own_processes().is_empty() {
            p.push("no nats-server is running on this host".into());
        }
        if let Some(c) = &self.config_problem {
            p.push(c.clone());
        }
        if let Some(read) = &self.read {
            if !read.unreadable.is_empty() {
                p.push(format!(
                    "{} is not readable as {}{}",
                    read.unreadable.join(", "),
                    self.scan.user.as_deref().unwrap_or("this user"),
                    if sudo { "" } else { ": run again with --sudo" }
                ));
            }
        }
        if self.varz.is_none() && !self.scan.processes.is_empty() {
            p.push(format!(
                "monitoring did not answer on port {}: {}",
                self.monitor_port,
                self.varz_error.as_deref().unwrap_or("no answer")
            ));
        }
        if self.server_name().is_none() {
            p.push("its server_name could not be read (the node name is a guess)".into());
        }
        p
    }
}

fn script_cmd(script: String, sudo: bool) -> RemoteCommand {
    let mut c = RemoteCommand::new(script, SCRIPT_TIMEOUT);
    c.sudo = sudo;
    c
}

/// Reads one host: the processes, the config, `/varz`.
fn check_host(t: &dyn Transport, template: &Node, host: &str, found_by: String) -> HostReport {
    let mut r = HostReport::new(host, found_by);
    let mut node = template.clone();
    node.host = host.to_string();
    node.name = host.to_string();
    let sudo = node.ssh.sudo;
    let out = match t.exec(&node, &script_cmd(discover::FIND_SCRIPT.into(), sudo)) {
        Ok(o) => o,
        Err(e) => {
            r.ssh_error = Some(describe_ssh_error(&e));
            return r;
        }
    };
    r.scan = HostScan::parse(&out.stdout.text);
    if !r.scan.complete {
        r.config_problem = Some(format!(
            "the discovery script failed (exit {}): {}",
            out.exit_code.map_or("none".into(), |c| c.to_string()),
            crate::natsconf::redact(out.stderr.text.trim())
        ));
    }
    r.choice = r.scan.choose_config();
    match &r.choice {
        None if r.scan.ambiguous_processes() > 0 => {}
        None => {
            r.config_problem = Some(format!(
                "no config found: no running nats-server with -c, no systemd unit naming one, none of {}",
                discover::COMMON_PATHS.join(", ")
            ));
        }
        Some(c) => match t.exec(&node, &script_cmd(discover::read_script(&c.path), sudo)) {
            Err(e) => r.config_problem = Some(format!("reading {}: {e}", c.path)),
            Ok(o) => {
                let read = ConfigRead::parse(&o.stdout.text);
                match read.details() {
                    Ok(d) => r.details = Some(d),
                    Err(e) if read.unreadable.is_empty() => {
                        r.config_problem = Some(format!("{}: {e}", c.path));
                    }
                    Err(_) => {}
                }
                r.read = Some(read);
            }
        },
    }
    if let Some(p) = r.details.as_ref().and_then(|d| d.monitor_port) {
        r.monitor_port = p;
    }
    node.nats.monitor_port = r.monitor_port;
    // Through a jump host the monitoring port is rarely reachable from here: SSH first.
    let modes = if node.ssh.proxy_jump.is_empty() {
        [MonitorMode::Direct, MonitorMode::Ssh]
    } else {
        [MonitorMode::Ssh, MonitorMode::Direct]
    };
    let mut errors = Vec::new();
    for mode in modes {
        node.nats.monitor = mode;
        let how = if mode == MonitorMode::Direct {
            "direct"
        } else {
            "through SSH"
        };
        match t.http_get(&node, "/varz", HTTP_TIMEOUT) {
            Ok(resp) if resp.status == 200 => match Varz::parse(&resp.body, resp.via) {
                Some(v) => {
                    r.varz = Some(v);
                    break;
                }
                None => errors.push(format!("{how}: /varz is not JSON")),
            },
            Ok(resp) => errors.push(format!("{how}: /varz answered HTTP {}", resp.status)),
            Err(e) => errors.push(format!("{how}: {e}")),
        }
    }
    if r.varz.is_none() {
        r.varz_error = Some(errors.join("; "));
    }
    if let (Some(d), Some(read)) = (&r.details, &r.read) {
        r.routes = d.routes.clone();
        r.resolved = read.resolved.clone();
    } else if let Some(v) = &r.varz {
        // The config could not be read: the servers' own list of its routes still names
        // the peers; this host resolves their names.
        r.routes_from = "/varz cluster.urls";
        for u in &v.route_urls {
            if let Ok(ep) = crate::natsconf::Endpoint::parse(u) {
                if !r.routes.contains(&ep) {
                    r.routes.push(ep);
                }
            }
        }
        let names: Vec<String> = r
            .routes
            .iter()
            .filter(|e| e.host.parse::<std::net::IpAddr>().is_err())
            .filter_map(|e| shlex::try_quote(&e.host).ok().map(|q| q.into_owned()))
            .collect();
        if !names.is_empty() {
            let script = format!(
                "for h in {}; do a=$(getent ahostsv4 \"$h\" 2>/dev/null | awk '{{print $1}}' | sort -u | tr '\\n' ' '); if [ -n \"$a\" ]; then echo \"RDNS $h ok $a\"; else echo \"RDNS $h failed\"; fi; done",
                names.join(" ")
            );
            if let Ok(o) = t.exec(&node, &script_cmd(script, false)) {
                r.resolved = ConfigRead::parse(&o.stdout.text).resolved;
            }
        }
    }
    // `server_name: $SERVER_NAME` (the Helm chart) and no monitoring: the process's own
    // environment has it. Only that one variable is printed.
    let var = r
        .details
        .as_ref()
        .and_then(|d| d.server_name.as_deref())
        .and_then(|n| n.strip_prefix('$'))
        .map(String::from);
    if let (None, Some(var), Some(p)) = (&r.varz, var, r.scan.own_processes().first().copied()) {
        if var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let script = format!(
                "tr '\\0' '\\n' < /proc/{}/environ 2>/dev/null | grep -m 1 '^{var}=' | cut -d= -f2-",
                p.pid
            );
            if let Ok(o) = t.exec(&node, &script_cmd(script, sudo)) {
                let v = o.stdout.text.trim().to_string();
                if !v.is_empty() {
                    r.env_server_name = Some((
                        v,
                        format!("${var} in the environment of nats-server pid {}", p.pid),
                    ));
                }
            }
        }
    }
    r
}

fn describe_ssh_error(e: &TransportError) -> String {
    match e {
        TransportError::HostKeyUnknown { host, offered, .. } => format!(
            "NEW HOST KEY for {host}: {offered}; not trusted (verify the fingerprint, then run again with --accept-new-host-keys to record it)"
        ),
        other => other.to_string(),
    }
}

/// A route's target, as this host resolves it: `(address for SSH, route host name)`.
fn route_targets(r: &HostReport) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ep in &r.routes {
        let addr = if ep.host.parse::<std::net::IpAddr>().is_ok() {
            ep.host.clone()
        } else {
            r.resolved
                .get(&ep.host)
                .and_then(|a| a.first().cloned())
                .unwrap_or_else(|| ep.host.clone())
        };
        if !out
            .iter()
            .any(|(a, n): &(String, String)| a == &addr && n == &ep.host)
        {
            out.push((addr, ep.host.clone()));
        }
    }
    out
}

/// Where a route of `r` leads: `r` itself (a route to self) or another address.
fn route_target(r: &HostReport, addr: &str) -> String {
    if addr == r.host || r.scan.self_addrs.iter().any(|a| a == addr) {
        r.host.clone()
    } else {
        addr.to_string()
    }
}

/// Seed first, then every server its routes (and theirs) lead to, each checked once.
fn walk(t: &dyn Transport, template: &Node, seed: &str) -> Vec<HostReport> {
    let mut reports: Vec<HostReport> = Vec::new();
    let mut queue: std::collections::VecDeque<(String, String)> =
        [(seed.to_string(), "the seed, --seed".to_string())].into();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some((host, found_by)) = queue.pop_front() {
        if reports.len() >= MAX_SERVERS || !seen.insert(host.clone()) {
            continue;
        }
        eprintln!("inventory init: checking {host} ({found_by})");
        let r = check_host(t, template, &host, found_by);
        let who = r.server_name().map_or(r.host.clone(), |(n, _)| n);
        for (addr, name) in route_targets(&r) {
            let target = route_target(&r, &addr);
            let known = seen.contains(&target)
                || reports.iter().any(|k| k.scan.self_addrs.contains(&target));
            if known || queue.iter().any(|(h, _)| h == &target) {
                continue;
            }
            let port = r
                .routes
                .iter()
                .find(|e| e.host == name)
                .map_or(0, |e| e.port);
            let resolved = if name == addr {
                String::new()
            } else {
                format!(", {name} resolves there to {addr}")
            };
            queue.push_back((
                target,
                format!("route {name}:{port} in {who}'s {}{resolved}", r.routes_from),
            ));
        }
        reports.push(r);
    }
    // The names routes use for each server (its `cluster_host` when not its address).
    let mut names: Vec<Vec<String>> = vec![Vec::new(); reports.len()];
    for r in &reports {
        for (addr, name) in route_targets(r) {
            let target = route_target(r, &addr);
            let i = reports
                .iter()
                .position(|k| k.host == target || k.scan.self_addrs.contains(&target));
            if let Some(i) = i {
                if !names[i].contains(&name) {
                    names[i].push(name);
                }
            }
        }
    }
    for (r, n) in reports.iter_mut().zip(names) {
        r.route_names = n;
    }
    reports
}

fn q(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| format!("'{s}'"), |q| q.into_owned())
}

/// The `service:` block and its comment, or `None` (with why) when nothing was detected.
fn service_fields(r: &HostReport) -> std::result::Result<(Vec<Field>, String), String> {
    if let Some(u) = r.scan.managing_unit() {
        let how = match r
            .scan
            .own_processes()
            .into_iter()
            .find(|p| p.unit.as_deref() == Some(&u.name))
        {
            Some(p) => format!(
                "detected: nats-server pid {} runs in the systemd unit {}",
                p.pid, u.name
            ),
            None => format!(
                "detected: the systemd unit {} ({})",
                u.name,
                u.active.as_deref().unwrap_or("state unknown")
            ),
        };
        let mut f = vec![
            Field::str("start", format!("systemctl start {}", u.name), ""),
            Field::str("stop", format!("systemctl stop {}", u.name), ""),
            Field::str("status", format!("systemctl is-active {}", u.name), ""),
        ];
        if u.has_reload {
            f.push(Field::str(
                "reload",
                format!("systemctl reload {}", u.name),
                "",
            ));
        }
        let how = if u.has_reload {
            how
        } else {
            format!("{how}; it has no ExecReload, so no reload command")
        };
        return Ok((f, how));
    }
    if let Some(ctl) = r.read.as_ref().and_then(|x| x.lab_ctl.as_deref()) {
        let c = q(ctl);
        return Ok((
            ["start", "stop", "status", "reload"]
                .iter()
                .map(|a| Field::str(a, format!("{c} {a}"), ""))
                .collect(),
            format!("detected: not a systemd unit; the nats-rescue lab's control script {ctl} controls this config"),
        ));
    }
    let Some(p) = r.scan.own_processes().first().copied() else {
        if r.scan.ambiguous_processes() > 0 {
            return Err("service: NOT DETECTED (which nats-server runs here is not known): the inventory's defaults `systemctl start|stop|is-active nats-server` apply; write this node's `service:` commands".into());
        }
        return Err("service: NOT DETECTED (no running nats-server, no systemd unit): the inventory's defaults `systemctl start|stop|is-active nats-server` apply; write this node's `service:` commands".into());
    };
    let pid_file = discover::pid_file_from_args(&p.args)
        .or_else(|| r.details.as_ref().and_then(|d| d.pid_file.clone()));
    let Some(pid_file) = pid_file else {
        return Err(format!("service: NOT DETECTED: nats-server pid {} runs outside systemd with no pid file and no known control script: the inventory's defaults `systemctl start|stop|is-active nats-server` apply; write this node's `service:` commands", p.pid));
    };
    let pf = q(&pid_file);
    let mut args: Vec<String> = p.args.clone();
    if let (Some(exe), Some(first)) = (&p.exe, args.first_mut()) {
        *first = exe.clone();
    }
    let argv = args.iter().map(|a| q(a)).collect::<Vec<_>>().join(" ");
    let cd = p
        .cwd
        .as_deref()
        .map_or(String::new(), |d| format!("cd {} && ", q(d)));
    Ok((
        vec![
            Field::str(
                "start",
                format!("{cd}setsid nohup {argv} </dev/null >/dev/null 2>&1 &"),
                "",
            ),
            Field::str("stop", format!("kill -TERM \"$(cat {pf})\""), ""),
            Field::str("status", format!("kill -0 \"$(cat {pf})\" 2>/dev/null"), ""),
            Field::str("reload", format!("kill -HUP \"$(cat {pf})\""), ""),
        ],
        format!("ASSUMED, REVIEW BEFORE USE: pid {} runs outside systemd and no known control script; built from its command line and pid file {pid_file}", p.pid),
    ))
}

/// The inventory entry for one host, and what is wrong with it.
fn node_entry(
    r: &HostReport,
    sudo: bool,
    used_names: &BTreeSet<String>,
) -> (NodeEntry, Vec<String>) {
    let problems = r.problems(sudo);
    let mut e = NodeEntry::default();
    let (name, name_note) = match r.server_name() {
        Some((n, why)) => (n, why),
        None => {
            let guess = r
                .route_names
                .iter()
                .find(|n| n.parse::<std::net::IpAddr>().is_err())
                .cloned()
                .unwrap_or_else(|| r.host.clone());
            (
                guess,
                "NOT VERIFIED: the server could not be asked; this must equal its server_name"
                    .into(),
            )
        }
    };
    let name = if used_names.contains(&name) {
        format!("{name}-{}", r.host)
    } else {
        name
    };
    e.comments.push(format!(
        "{name}: {}",
        if problems.is_empty() {
            "checked".to_string()
        } else {
            format!("NEEDS ATTENTION: {}", problems.join("; "))
        }
    ));
    e.fields.push(Field::str("name", &name, name_note));
    e.fields.push(Field::str(
        "host",
        &r.host,
        format!("SSH address: {}", r.found_by),
    ));
    let mut n = Vec::new();
    if let Some(ch) = r.route_names.iter().find(|h| **h != r.host) {
        n.push(Field::str(
            "cluster_host",
            ch,
            "the name the routes use for this server",
        ));
    }
    if let Some(c) = &r.choice {
        n.push(Field::str("config_file", &c.path, c.describe()));
    }
    let d = r.details.clone().unwrap_or_default();
    let file = r
        .choice
        .as_ref()
        .map_or("the config".to_string(), |c| c.path.clone());
    match (
        &d.store_dir,
        r.varz.as_ref().and_then(|v| v.store_dir.as_ref()),
    ) {
        (Some(s), _) => n.push(Field::str(
            "store_dir",
            s,
            format!("jetstream store_dir in {file}"),
        )),
        (None, Some(s)) => n.push(Field::str(
            "store_dir",
            s,
            "from /varz (jetstream.config.store_dir without /jetstream)",
        )),
        (None, None) => {}
    }
    let mon_note = match d.monitor_port {
        Some(_) if d.monitor_tls => format!(
            "https monitoring in {file} (nats-rescue reads monitoring over http: check it answers)"
        ),
        Some(_) => format!("http_port in {file}"),
        None if r.varz.is_some() => {
            "the default (the config names none, or was not read); its /varz answered on it".into()
        }
        None => "ASSUMED: the default (the config names none, or was not read)".into(),
    };
    n.push(Field::int(
        "monitor_port",
        u64::from(r.monitor_port),
        mon_note,
    ));
    if let Some(v) = &r.varz {
        let (mode, why) = match v.via {
            "direct" => ("direct", "it answered directly from here"),
            _ => ("ssh", "it answered through the SSH session"),
        };
        n.push(Field::str("monitor", mode, why));
    }
    match (d.cluster_port, r.varz.as_ref().and_then(|v| v.cluster_port)) {
        (Some(p), _) => n.push(Field::int(
            "cluster_port",
            u64::from(p),
            format!("cluster port in {file}"),
        )),
        (None, Some(p)) => n.push(Field::int("cluster_port", u64::from(p), "from /varz")),
        _ => {}
    }
    match (d.client_port, r.varz.as_ref().and_then(|v| v.client_port)) {
        (Some(p), _) => n.push(Field::int(
            "client_port",
            u64::from(p),
            format!("port in {file}"),
        )),
        (None, Some(p)) => n.push(Field::int("client_port", u64::from(p), "from /varz")),
        _ => {}
    }
    if let Some(p) = r.scan.own_processes().first().copied() {
        let bin = p.exe.clone().or_else(|| p.args.first().cloned());
        if let Some(b) = bin {
            let why = if p.exe.is_some() {
                format!("the running binary (/proc/{}/exe)", p.pid)
            } else {
                format!("argv[0] of pid {}", p.pid)
            };
            let why = match r.varz.as_ref().and_then(|v| v.version.as_deref()) {
                Some(ver) => format!("{why}, v{ver}"),
                None => why,
            };
            n.push(Field::str("server_bin", b, why));
        }
    }
    let sys = d
        .system_account
        .clone()
        .or_else(|| r.varz.as_ref().and_then(|v| v.system_account.clone()));
    if let Some(s) = &sys {
        let why = if d.system_account.is_some() {
            format!("system_account in {file}")
        } else {
            "from /varz".into()
        };
        n.push(Field::str("system_account", s, why));
    }
    if let Some(u) = d.system_users.first() {
        n.push(Field::map(
            "system_user",
            vec![
                Field::str("user", u, format!("a user of the system account in {file}")),
                Field::str("password_env", PASSWORD_ENV, "its password is NOT copied: export it in this variable to use the system account"),
            ],
            "",
        ));
    }
    match service_fields(r) {
        Ok((f, why)) => n.push(Field::map("service", f, why)),
        Err(why) if r.ssh_error.is_none() => e.comments.push(why),
        Err(_) => {}
    }
    if r.ssh_error.is_some() {
        e.comments.push("its config, store and service were not read: the inventory's defaults apply until you fill them in".into());
    }
    if !n.is_empty() {
        e.fields.push(Field::map("nats", n, ""));
    }
    (e, problems)
}

fn cluster_field(reports: &[HostReport]) -> Field {
    for r in reports {
        let who = r.server_name().map_or(r.host.clone(), |(n, _)| n);
        if let Some(c) = r.varz.as_ref().and_then(|v| v.cluster_name.clone()) {
            return Field::str(
                "cluster",
                c,
                format!("cluster name from {who}'s /varz; typed to approve destructive steps"),
            );
        }
        if let Some(c) = r.details.as_ref().and_then(|d| d.cluster_name.clone()) {
            return Field::str(
                "cluster",
                c,
                format!("cluster.name in {who}'s config; typed to approve destructive steps"),
            );
        }
    }
    Field::str(
        "cluster",
        "CHANGE-ME",
        "ASSUMED: no cluster name found; it is typed to approve destructive steps, name it",
    )
}

fn init(g: &GlobalOpts, a: &InventoryInitArgs) -> Result<i32> {
    if a.seed.trim().is_empty() || a.seed.contains(',') {
        return Err(Error::Usage(format!(
            "--seed `{}`: name one server (host, user@host or host:port)",
            a.seed
        )));
    }
    let seed = JumpHost::parse(&a.seed).map_err(|e| Error::Usage(format!("--seed: {e}")))?;
    if let Some(o) = &a.output {
        if o.exists() && !a.force {
            return Err(Error::Usage(format!(
                "{} exists: choose another -o or pass --force to replace it",
                o.display()
            )));
        }
    }
    let ssh = ssh_fields(a, &seed)?;
    let template = template_node(&ssh, &seed.host)?;
    let transport = Arc::new(SshTransport::new(g.accept_new_host_keys));
    let t = super::run::retrying(&transport);
    let reports = walk(&*t, &template, &seed.host);
    for k in transport.take_accepted_host_keys() {
        eprintln!(
            "inventory init: NEW HOST KEY recorded for {}: {} {} in {}",
            k.host,
            k.key_type,
            k.fingerprint,
            k.known_hosts.display()
        );
    }
    let Some(first) = reports.first() else {
        return Err(Error::Other("internal error: nothing was checked".into()));
    };
    if let Some(e) = &first.ssh_error {
        return Err(Error::Other(format!(
            "cannot read the seed {}: {e}; nothing written",
            first.host
        )));
    }
    let mut doc = Document {
        header: vec![
            format!("Written by `nats-rescue inventory init --seed {}` on {}.", a.seed, chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")),
            "Each comment says where its value was read, or that it is ASSUMED: review those before a runbook relies on them.".into(),
            "No secret is copied: passwords stay in the servers' configs.".into(),
        ],
        top: vec![
            cluster_field(&reports),
            Field::map("defaults", vec![Field::map("ssh", ssh, "")], ""),
        ],
        nodes: Vec::new(),
    };
    let mut names = BTreeSet::new();
    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for r in &reports {
        let (entry, problems) = node_entry(r, a.sudo, &names);
        let name = entry.get_str("name").unwrap_or_default().to_string();
        names.insert(name.clone());
        if problems.is_empty() {
            summary.push(format!("  ok    {name} ({})", r.host));
        } else {
            summary.push(format!(
                "  FAIL  {name} ({}): {}",
                r.host,
                problems.join("; ")
            ));
            failed.push(name);
        }
        doc.nodes.push(entry);
    }
    if reports.iter().any(|r| {
        r.details
            .as_ref()
            .is_some_and(|d| d.routes_have_credentials)
    }) {
        doc.header.push("The routes carry credentials: they were not copied (cluster-config keeps them when it rewrites routes).".into());
    }
    if reports.len() >= MAX_SERVERS {
        doc.header.push(format!(
            "Stopped after {MAX_SERVERS} servers: more routes were not followed."
        ));
    }
    let text = doc.render();
    let out_name = a
        .output
        .as_ref()
        .map_or_else(|| PathBuf::from("<stdout>"), Clone::clone);
    Inventory::parse(&out_name, &text).map_err(|e| {
        Error::Other(format!(
            "internal error: the written inventory does not load: {e}"
        ))
    })?;
    match &a.output {
        None => crate::ui::out(&text),
        Some(p) => write_file(p, &text)?,
    }
    eprintln!("inventory init: {} server(s):", reports.len());
    for s in &summary {
        eprintln!("{s}");
    }
    if let Some(p) = &a.output {
        eprintln!("inventory: {}", p.display());
        eprintln!(
            "next: nats-rescue -i {} status",
            yaml_str(&p.to_string_lossy())
        );
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "inventory init: {} of {} server(s) could not be fully checked ({}): they are written with a comment saying what failed",
            failed.len(),
            reports.len(),
            failed.join(", ")
        );
        Ok(crate::exit_codes::PROBLEMS)
    }
}

/// Written whole or not at all (a temporary file renamed over the target).
fn write_file(p: &Path, text: &str) -> Result<()> {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        p.file_name()
            .map_or("inventory".into(), |f| f.to_string_lossy().into_owned()),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, p))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::Other(format!("cannot write {}: {e}", p.display()))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(find: &str, read: &str, varz: Option<&str>) -> HostReport {
        let mut r = HostReport::new("10.0.1.11", "the seed, --seed".into());
        r.scan = HostScan::parse(find);
        r.choice = r.scan.choose_config();
        let read = ConfigRead::parse(read);
        r.details = read.details().ok();
        r.routes = r
            .details
            .as_ref()
            .map(|d| d.routes.clone())
            .unwrap_or_default();
        r.resolved = read.resolved.clone();
        r.read = Some(read);
        r.varz = varz.and_then(|v| Varz::parse(v, "direct"));
        r.route_names = vec!["nats-1".into()];
        r
    }

    fn render(r: &HostReport) -> (Inventory, String, Vec<String>) {
        let (entry, problems) = node_entry(r, true, &BTreeSet::new());
        let doc = Document {
            header: vec![],
            top: vec![cluster_field(std::slice::from_ref(r))],
            nodes: vec![entry],
        };
        let text = doc.render();
        let inv =
            Inventory::parse(Path::new("t.yaml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        (inv, text, problems)
    }

    const CONF: &str = "NRI_BEGIN
CFGFILE /etc/nats/nats-server.conf
CFGL server_name: nats-1
CFGL http: 127.0.0.1:8222
CFGL jetstream { store_dir: /var/lib/nats }
CFGL system_account: SYS
CFGL accounts { SYS { users: [ { user: sys, password: TopSecretSys } ] } }
CFGL cluster { name: prod, port: 6222, routes: [ nats-route://r:TopSecretRoute@nats-2:6222 ] }
CFGEND
RDNS nats-2 ok 10.0.1.12
NRI_END
";

    #[test]
    fn a_systemd_server_gets_its_units_commands_and_no_secret() {
        let find = "NRI_BEGIN\nSYSTEMD yes\nPROC 812\nPARG 812 /usr/sbin/nats-server\nPARG 812 -c\nPARG 812 /etc/nats/nats-server.conf\nPEXE 812 /usr/sbin/nats-server\nPUNIT 812 nats.service\nUNIT nats.service\nUEXEC nats.service /usr/sbin/nats-server -c /etc/nats/nats-server.conf\nUACTIVE nats.service active\nURELOAD nats.service yes\nNRI_END\n";
        let varz = r#"{"server_name":"nats-1","version":"2.10.24","port":4222,"cluster":{"name":"prod","cluster_port":6222},"jetstream":{"config":{"store_dir":"/var/lib/nats/jetstream"}}}"#;
        let r = report(find, CONF, Some(varz));
        let (inv, text, problems) = render(&r);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(inv.cluster, "prod");
        let n = &inv.nodes[0];
        assert_eq!(n.name, "nats-1");
        assert_eq!(n.nats.service.start, "systemctl start nats.service");
        assert_eq!(n.nats.service.status, "systemctl is-active nats.service");
        assert_eq!(
            n.nats.service.reload.as_deref(),
            Some("systemctl reload nats.service")
        );
        assert_eq!(n.nats.store_dir, "/var/lib/nats");
        assert_eq!(n.nats.server_bin, "/usr/sbin/nats-server");
        assert_eq!(n.nats.cluster_host.as_deref(), Some("nats-1"));
        assert_eq!(n.nats.system_account, "SYS");
        assert!(
            text.contains("pid 812 runs in the systemd unit nats.service"),
            "{text}"
        );
        assert!(!text.contains("TopSecret"), "{text}");
        let targets = route_targets(&r);
        assert_eq!(
            targets,
            vec![("10.0.1.12".to_string(), "nats-2".to_string())]
        );
    }

    #[test]
    fn a_server_outside_systemd_gets_assumed_pid_file_commands() {
        let find = "NRI_BEGIN\nSYSTEMD no\nPROC 44\nPARG 44 nats-server\nPARG 44 -c\nPARG 44 /etc/nats/nats-server.conf\nPARG 44 -P\nPARG 44 /run/nats/n.pid\nPEXE 44 /opt/nats/nats-server\nPCWD 44 /opt/nats\nNRI_END\n";
        let (inv, text, problems) = render(&report(find, CONF, None));
        let n = &inv.nodes[0];
        assert_eq!(
            n.nats.service.start,
            "cd /opt/nats && setsid nohup /opt/nats/nats-server -c /etc/nats/nats-server.conf -P /run/nats/n.pid </dev/null >/dev/null 2>&1 &"
        );
        assert_eq!(n.nats.service.stop, "kill -TERM \"$(cat /run/nats/n.pid)\"");
        assert!(text.contains("ASSUMED, REVIEW BEFORE USE"), "{text}");
        // no /varz: the name comes from the config, and the failed monitoring is a problem
        assert_eq!(n.name, "nats-1");
        assert!(
            text.contains("server_name in /etc/nats/nats-server.conf"),
            "{text}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("monitoring did not answer")),
            "{problems:?}"
        );
        // `http: 127.0.0.1:8222` is the port; nothing answered, so no `monitor:` is claimed
        assert_eq!(n.nats.monitor_port, 8222);
        assert!(!text.contains("monitor: "), "{text}");
    }

    #[test]
    fn an_unreachable_server_is_written_with_why_and_a_guessed_name() {
        let mut r = HostReport::new("10.0.1.13", "route nats-3:6222 in nats-1's config".into());
        r.ssh_error = Some("cannot connect to 10.0.1.13:22: Connection refused".into());
        r.route_names = vec!["nats-3".into()];
        let (inv, text, problems) = render(&r);
        assert_eq!(inv.nodes[0].name, "nats-3");
        assert_eq!(inv.cluster, "CHANGE-ME");
        assert_eq!(problems.len(), 1);
        assert!(
            text.contains("# nats-3: NEEDS ATTENTION: not checked: cannot connect"),
            "{text}"
        );
        assert!(text.contains("NOT VERIFIED"), "{text}");
    }

    #[test]
    fn varz_store_dir_drops_the_jetstream_suffix() {
        let v = Varz::parse(
            r#"{"jetstream":{"config":{"store_dir":"/data/jetstream"}}}"#,
            "ssh",
        )
        .unwrap();
        assert_eq!(v.store_dir.as_deref(), Some("/data"));
        assert!(Varz::parse("not json", "ssh").is_none());
    }
}
