//! What `inventory init` learns from one host, as pure functions over what its two read-only
//! scripts printed: the nats-server processes of the host (`find.sh`), the config file an SRE
//! would pick (the process's `-c`, then the systemd unit's `ExecStart`, then the usual paths),
//! and that config read with [`crate::natsconf`] (`read.sh`). Secrets stay in the captured
//! text: [`ConfigDetails`] holds none (route credentials and passwords are left out).

use crate::nats::configfacts::CapturedConfig;
use crate::natsconf::{self, MemFs, Setting};
use std::collections::BTreeMap;
use std::path::Path;

/// Round 1: processes, units, usual config paths.
pub const FIND_SCRIPT: &str = include_str!("find.sh");
/// Round 2: the chosen config (and includes), name resolution, a lab control script.
const READ_SCRIPT: &str = include_str!("read.sh");

/// The usual config paths, in the order they are tried.
pub const COMMON_PATHS: [&str; 3] = [
    "/etc/nats/nats-server.conf",
    "/etc/nats-server.conf",
    "/etc/nats/nats.conf",
];

/// The round-2 script for `config_file`.
pub fn read_script(config_file: &str) -> String {
    let q = shlex::try_quote(config_file).map_or_else(|_| "''".into(), |q| q.into_owned());
    format!("CONFIG_FILE={q}\n{READ_SCRIPT}")
}

/// A running nats-server of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Its command line, one element per argument.
    pub args: Vec<String>,
    /// `/proc/PID/exe` (needs the same user or root).
    pub exe: Option<String>,
    pub cwd: Option<String>,
    /// The systemd unit whose cgroup holds it.
    pub unit: Option<String>,
    /// Its network namespace could not be read (another user's process without root): it
    /// may belong to another host sharing the PID space.
    pub ns_unknown: bool,
}

/// A systemd unit whose name starts with `nats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    /// `systemctl show -p ExecStart --value` as printed.
    pub exec_start: Option<String>,
    pub active: Option<String>,
    pub has_reload: bool,
}

/// What round 1 printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostScan {
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// The host's own addresses (routes to them are routes to itself).
    pub self_addrs: Vec<String>,
    pub systemd: bool,
    pub processes: Vec<Process>,
    pub units: Vec<Unit>,
    /// Usual config paths that exist.
    pub common: Vec<String>,
    /// The script ran to its end.
    pub complete: bool,
}

fn tag_rest(line: &str) -> (&str, &str) {
    line.split_once(' ').unwrap_or((line, ""))
}

fn pid_rest(rest: &str) -> Option<(u32, &str)> {
    let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((p.parse().ok()?, r))
}

impl HostScan {
    pub fn parse(stdout: &str) -> HostScan {
        let mut s = HostScan::default();
        let proc_of = |s: &mut HostScan, pid: u32| -> usize {
            match s.processes.iter().position(|p| p.pid == pid) {
                Some(i) => i,
                None => {
                    s.processes.push(Process {
                        pid,
                        ..Default::default()
                    });
                    s.processes.len() - 1
                }
            }
        };
        let unit_of = |s: &mut HostScan, name: &str| -> usize {
            match s.units.iter().position(|u| u.name == name) {
                Some(i) => i,
                None => {
                    s.units.push(Unit {
                        name: name.to_string(),
                        ..Default::default()
                    });
                    s.units.len() - 1
                }
            }
        };
        let nonempty = |r: &str| (!r.trim().is_empty()).then(|| r.trim().to_string());
        for line in stdout.lines() {
            let (tag, rest) = tag_rest(line);
            match tag {
                "USER" => s.user = nonempty(rest),
                "HOSTNAME" => s.hostname = nonempty(rest),
                "SELFADDR" => {
                    let a = rest.trim().to_string();
                    if !a.is_empty() && !s.self_addrs.contains(&a) {
                        s.self_addrs.push(a);
                    }
                }
                "SYSTEMD" => s.systemd = rest.trim() == "yes",
                "PNSUNKNOWN" => {
                    if let Ok(p) = rest.trim().parse() {
                        let i = proc_of(&mut s, p);
                        s.processes[i].ns_unknown = true;
                    }
                }
                "PROC" => {
                    if let Ok(p) = rest.trim().parse() {
                        proc_of(&mut s, p);
                    }
                }
                "PARG" | "PEXE" | "PCWD" | "PUNIT" => {
                    let Some((pid, r)) = pid_rest(rest) else {
                        continue;
                    };
                    let i = proc_of(&mut s, pid);
                    let p = &mut s.processes[i];
                    match tag {
                        "PARG" => p.args.push(r.to_string()),
                        "PEXE" => p.exe = nonempty(r),
                        "PCWD" => p.cwd = nonempty(r),
                        _ => p.unit = nonempty(r),
                    }
                }
                "UNIT" => {
                    unit_of(&mut s, rest.trim());
                }
                "UEXEC" | "UACTIVE" | "URELOAD" => {
                    let (name, r) = tag_rest(rest);
                    let i = unit_of(&mut s, name);
                    let u = &mut s.units[i];
                    match tag {
                        "UEXEC" => u.exec_start = nonempty(r),
                        "UACTIVE" => u.active = nonempty(r),
                        _ => u.has_reload = r.trim() == "yes",
                    }
                }
                "COMMON" => s.common.push(rest.trim().to_string()),
                "NRI_END" => s.complete = true,
                _ => {}
            }
        }
        s
    }

    /// This host's nats-server processes: those in its network namespace; when no
    /// namespace could be read, the one process there is (several are ambiguous: none).
    pub fn own_processes(&self) -> Vec<&Process> {
        let known: Vec<&Process> = self.processes.iter().filter(|p| !p.ns_unknown).collect();
        if !known.is_empty() {
            return known;
        }
        match self.processes.as_slice() {
            [one] => vec![one],
            _ => Vec::new(),
        }
    }

    /// Several processes whose network namespace could not be read, none known to be ours.
    pub fn ambiguous_processes(&self) -> usize {
        if self.own_processes().is_empty() {
            self.processes.len()
        } else {
            0
        }
    }

    /// The config an SRE would look at, and where that choice came from.
    pub fn choose_config(&self) -> Option<ConfigChoice> {
        let own = self.own_processes();
        if own.is_empty() && !self.processes.is_empty() {
            // running, but which one is ours is not known: a unit or usual path would be a guess
            return None;
        }
        let own_units: Vec<&str> = own.iter().filter_map(|p| p.unit.as_deref()).collect();
        for p in own {
            if let Some(path) = config_from_args(&p.args, p.cwd.as_deref()) {
                return Some(ConfigChoice {
                    path,
                    source: ConfigSource::Process(p.pid),
                });
            }
        }
        // The process's unit first, then any unit.
        let mut units: Vec<&Unit> = self.units.iter().collect();
        units.sort_by_key(|u| !own_units.contains(&u.name.as_str()));
        for u in units {
            let args = u.exec_start.as_deref().map(exec_start_args);
            if let Some(path) = args.and_then(|a| config_from_args(&a, None)) {
                return Some(ConfigChoice {
                    path,
                    source: ConfigSource::Unit(u.name.clone()),
                });
            }
        }
        COMMON_PATHS
            .iter()
            .find(|c| self.common.iter().any(|x| x == *c))
            .map(|c| ConfigChoice {
                path: (*c).to_string(),
                source: ConfigSource::CommonPath,
            })
    }

    /// The systemd unit that manages the server: the running process's unit, else the one
    /// unit whose `ExecStart` runs nats-server, else the only `nats*` unit.
    pub fn managing_unit(&self) -> Option<&Unit> {
        if !self.systemd {
            return None;
        }
        let own = self.own_processes();
        if let Some(name) = own.iter().find_map(|p| p.unit.as_deref()) {
            return self.units.iter().find(|u| u.name == name);
        }
        if !own.is_empty() || !self.processes.is_empty() {
            // Running, but outside any unit: a unit file that exists is not what runs it.
            return None;
        }
        let running_server: Vec<&Unit> = self
            .units
            .iter()
            .filter(|u| {
                u.exec_start
                    .as_deref()
                    .map(exec_start_args)
                    .and_then(|a| a.first().cloned())
                    .is_some_and(|b| b.ends_with("nats-server"))
            })
            .collect();
        match running_server.as_slice() {
            [one] => Some(one),
            _ if self.units.len() == 1 => self.units.first(),
            _ => None,
        }
    }
}

/// Where the config path came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `-c` on the command line of this running process.
    Process(u32),
    /// `-c` in this systemd unit's `ExecStart`.
    Unit(String),
    /// A usual path that exists.
    CommonPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChoice {
    pub path: String,
    pub source: ConfigSource,
}

impl ConfigChoice {
    /// For the inventory's comment.
    pub fn describe(&self) -> String {
        match &self.source {
            ConfigSource::Process(pid) => format!("-c of the running nats-server (pid {pid})"),
            ConfigSource::Unit(u) => format!("-c in ExecStart of the systemd unit {u}"),
            ConfigSource::CommonPath => {
                "a usual path (no running server or unit named a config)".into()
            }
        }
    }
}

/// The value of `-c`/`--config` (also `-c=FILE`, `-config FILE`: Go's flag syntax) in a
/// nats-server command line; a relative path is taken from `cwd`.
pub fn config_from_args(args: &[String], cwd: Option<&str>) -> Option<String> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name != "c" && name != "config" {
            continue;
        }
        let v = match inline {
            Some(v) => v,
            None => it.next()?.clone(),
        };
        if v.is_empty() {
            return None;
        }
        return Some(match cwd {
            Some(d) if !v.starts_with('/') => Path::new(d).join(&v).to_string_lossy().into_owned(),
            _ => v,
        });
    }
    None
}

/// The command line of a unit's `ExecStart`, from `systemctl show`'s
/// `{ path=… ; argv[]=/usr/sbin/nats-server -c /etc/nats/nats-server.conf ; … }` or from the
/// unit file's own `ExecStart=-/usr/sbin/nats-server …` form.
pub fn exec_start_args(exec_start: &str) -> Vec<String> {
    let t = exec_start.trim();
    let t = t.strip_prefix("ExecStart=").unwrap_or(t);
    let cmd = match t.split_once("argv[]=") {
        Some((_, rest)) => rest.split(" ;").next().unwrap_or(rest),
        None => t.trim_start_matches(['-', '@', '+', '!', ':']),
    };
    shlex::split(cmd).unwrap_or_else(|| cmd.split_whitespace().map(String::from).collect())
}

/// The value of `-P`/`--pid` (the pid file) in a nats-server command line.
pub fn pid_file_from_args(args: &[String]) -> Option<String> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        match flag.split_once('=') {
            Some(("P" | "pid", v)) if !v.is_empty() => return Some(v.to_string()),
            None if flag == "P" || flag == "pid" => return it.next().cloned(),
            _ => {}
        }
    }
    None
}

/// What round 2 printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigRead {
    /// Holds secrets: parsed here, never printed.
    pub capture: CapturedConfig,
    /// Files that exist but this user cannot read.
    pub unreadable: Vec<String>,
    /// Host names in the config's URLs and the addresses they resolve to on the host
    /// (empty: they did not resolve).
    pub resolved: BTreeMap<String, Vec<String>>,
    /// The nats-rescue lab's control script for this config.
    pub lab_ctl: Option<String>,
    pub complete: bool,
}

impl ConfigRead {
    pub fn parse(stdout: &str) -> ConfigRead {
        let mut r = ConfigRead::default();
        let mut cur: Option<(String, String)> = None;
        for line in stdout.lines() {
            let (tag, rest) = tag_rest(line);
            match tag {
                "CFGFILE" => cur = Some((rest.to_string(), String::new())),
                "CFGL" => {
                    if let Some((_, t)) = cur.as_mut() {
                        t.push_str(rest);
                        t.push('\n');
                    }
                }
                "CFGEND" => {
                    if let Some(f) = cur.take() {
                        if !r.capture.files.iter().any(|(p, _)| p == &f.0) {
                            r.capture.files.push(f);
                        }
                    }
                }
                "CFGMISSING" => r.capture.missing.push(rest.to_string()),
                "CFGUNREADABLE" => r.unreadable.push(rest.to_string()),
                "RDNS" => {
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    if let Some(h) = f.first() {
                        let addrs = match f.get(1) {
                            Some(&"ok") => f[2..].iter().map(|s| s.to_string()).collect(),
                            _ => Vec::new(),
                        };
                        r.resolved.insert(h.to_string(), addrs);
                    }
                }
                "LABCTL" => r.lab_ctl = Some(rest.trim().to_string()),
                "NRI_END" => r.complete = true,
                _ => {}
            }
        }
        r
    }

    /// The parsed config's settings (no secrets), or why it could not be parsed.
    pub fn details(&self) -> Result<ConfigDetails, String> {
        let Some((main, _)) = self.capture.files.first() else {
            return Err("no config was read".into());
        };
        let mut fs = MemFs::new();
        for (p, t) in &self.capture.files {
            fs.insert(p.clone(), t.clone());
        }
        let conf = natsconf::parse_file(Path::new(main), &fs)
            .map_err(|e| natsconf::redact(&e.to_string()))?;
        Ok(ConfigDetails::of(&conf))
    }
}

/// The settings `inventory init` writes, as the config gives them. No secrets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigDetails {
    /// `server_name`: the name, or `$VAR` when the environment gives it.
    pub server_name: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_port: Option<u16>,
    /// Route targets (host and port only: credentials left out).
    pub routes: Vec<natsconf::Endpoint>,
    /// The routes carry `user:password@` (not copied).
    pub routes_have_credentials: bool,
    pub store_dir: Option<String>,
    pub monitor_port: Option<u16>,
    /// Monitoring is `https`.
    pub monitor_tls: bool,
    pub client_port: Option<u16>,
    pub system_account: Option<String>,
    /// User names in the system account's `users` (their passwords are not copied).
    pub system_users: Vec<String>,
    pub pid_file: Option<String>,
}

fn known_or_var(s: Option<Setting<String>>) -> Option<String> {
    match s? {
        Setting::Known(v) => Some(v),
        Setting::Unresolved(v) => Some(format!("${v}")),
        Setting::Invalid(_) => None,
    }
}

impl ConfigDetails {
    pub fn of(conf: &natsconf::Config) -> ConfigDetails {
        let mut d = ConfigDetails {
            server_name: known_or_var(conf.server_name()),
            store_dir: conf.store_dir().and_then(Setting::into_known),
            client_port: conf.client_port(),
            system_account: conf.system_account().and_then(Setting::into_known),
            pid_file: conf
                .get(&["pid_file"])
                .and_then(|v| v.resolved())
                .and_then(|v| v.as_str())
                .map(str::to_string),
            ..Default::default()
        };
        if let Some(m) = conf.monitoring() {
            d.monitor_port = Some(m.port);
            d.monitor_tls = m.tls;
        }
        if let Some(c) = conf.cluster() {
            d.cluster_name = c.name().and_then(Setting::into_known);
            d.cluster_port = c.effective_port();
            if let Some(Setting::Known(r)) = c.routes() {
                for u in r.urls() {
                    d.routes_have_credentials |= u.userinfo.is_some();
                    if let Some(ep) = u.endpoint() {
                        if !d.routes.contains(&ep) {
                            d.routes.push(ep);
                        }
                    }
                }
            }
        }
        if let Some(sys) = &d.system_account {
            d.system_users = conf
                .accounts()
                .into_iter()
                .find(|a| &a.name == sys)
                .map(|a| a.users)
                .unwrap_or_default();
        }
        d
    }
}

#[cfg(test)]
mod tests;
