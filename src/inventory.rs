//! The cluster inventory (SPEC §2): which nodes exist, how to reach them over SSH, and where
//! each node keeps its NATS config, data and service commands.

use crate::duration;
use crate::input_error::{InputProblem, InputProblems};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A loaded, validated inventory. Every node has every field resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub cluster: String,
    pub nodes: Vec<Node>,
    /// Where it was read from.
    pub source: PathBuf,
    /// SHA-256 of the file's bytes (journaled when an incident opens).
    pub sha256: String,
}

/// One server of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Must equal the server's `server_name`.
    pub name: String,
    /// Address or hostname used for SSH and monitoring.
    pub host: String,
    pub ssh: SshSettings,
    pub nats: NatsSettings,
}

#[derive(Debug, Clone, Serialize)]
pub struct SshSettings {
    pub user: String,
    pub port: u16,
    /// Without it, ssh-agent is used.
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    #[serde(with = "ser_duration")]
    pub connect_timeout: Duration,
    #[serde(with = "ser_duration")]
    pub command_timeout: Duration,
    /// Privileged steps run through `sudo -n`.
    pub sudo: bool,
    /// Trust-on-first-use for unknown hosts (never for changed keys). Off unless set.
    pub accept_new_host_keys: bool,
    /// Jump hosts, first hop first (`ssh.proxy_jump`, OpenSSH `-J` syntax). Empty: connect
    /// directly. Every hop's host key is verified like the node's.
    pub proxy_jump: Vec<JumpHost>,
    /// An OpenSSH client config to read (`ssh.config`), `~` expanded.
    pub config: Option<PathBuf>,
    /// Connection attempts after the first one fails (`ssh.retries`, default 2).
    pub retries: u32,
}

/// Most connection retries an inventory may ask for: an unreachable node must cost a bounded
/// time (SPEC §5).
pub const MAX_SSH_RETRIES: u32 = 10;

/// One hop of `ssh.proxy_jump`: `[user@]host[:port]` (IPv6 addresses in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JumpHost {
    /// Without it, the node's `ssh.user` (an `ssh.config` entry for the hop may name one).
    pub user: Option<String>,
    pub host: String,
    /// Without it, 22.
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorMode {
    /// HTTP straight to host:monitor_port.
    Direct,
    /// HTTP through a port forward over the node's SSH session.
    Ssh,
    /// Direct first, SSH tunnel when direct fails.
    Auto,
}

#[derive(Debug, Clone, Serialize)]
pub struct NatsSettings {
    pub monitor_port: u16,
    pub monitor: MonitorMode,
    pub cluster_port: u16,
    pub config_file: String,
    pub store_dir: String,
    pub system_account: String,
    pub service: ServiceCommands,
    /// The address peers use in routes to this node, when it differs from `host`.
    pub cluster_host: Option<String>,
    /// The `nats-server` binary on the node (for `nats-server -t -c` checks). Default
    /// `nats-server` (found on the node's PATH).
    pub server_bin: String,
    /// Client port (default 4222).
    pub client_port: u16,
    /// How to authenticate to the system account: at most one of the three ways.
    pub system_user: Option<SystemUser>,
    /// A `.creds` file (JWT + seed) for the system account, `~` expanded.
    pub system_creds: Option<PathBuf>,
    /// An nkey seed file for the system account, `~` expanded.
    pub system_nkey_seed: Option<PathBuf>,
    /// TLS for client connections.
    pub client_tls: Option<ClientTls>,
}

/// A secret value: shown as `[REDACTED]` by `Debug` and `Serialize`; [`Secret::expose`] is the
/// only way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: for the one place that sends it, never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::journal::REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(crate::journal::REDACTED)
    }
}

/// `nats.system_user`: a user of the system account with a password.
#[derive(Debug, Clone, Serialize)]
pub struct SystemUser {
    pub user: String,
    pub password: SystemPassword,
}

/// Where the system user's password comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemPassword {
    /// `password:` written in the inventory.
    Literal(Secret),
    /// `password_env: VAR`, read when the inventory was loaded; `None` when the variable was
    /// unset or empty then (a command that needs it says so).
    Env { var: String, value: Option<Secret> },
}

impl SystemUser {
    /// The password, when there is one (`None`: `password_env` names an unset variable).
    pub fn password(&self) -> Option<&str> {
        match &self.password {
            SystemPassword::Literal(p) => Some(p.expose()),
            SystemPassword::Env { value, .. } => value.as_ref().map(Secret::expose),
        }
    }
}

/// `nats.client_tls`: files for TLS client connections, `~` expanded. `cert_file` and
/// `key_file` come together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// Operator-written shell commands that control the server on a node. They are commands,
/// not values: runbooks interpolate them unquoted.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceCommands {
    pub start: String,
    pub stop: String,
    pub status: String,
    pub reload: Option<String>,
}

mod ser_duration {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::duration::format(*d))
    }
}

// ---- raw, as written -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    cluster: Option<String>,
    #[serde(default)]
    defaults: RawNodeSettings,
    nodes: Option<Vec<RawNode>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeSettings {
    #[serde(default)]
    ssh: RawSsh,
    #[serde(default)]
    nats: RawNats,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    host: String,
    #[serde(default)]
    ssh: RawSsh,
    #[serde(default)]
    nats: RawNats,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<String>,
    known_hosts: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    connect_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    command_timeout: Option<Duration>,
    sudo: Option<bool>,
    accept_new_host_keys: Option<bool>,
    proxy_jump: Option<ProxyJump>,
    config: Option<String>,
    retries: Option<u32>,
}

/// `ssh.proxy_jump` as written, checked while it is read (so errors carry line and column).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
struct ProxyJump(Vec<JumpHost>);

impl TryFrom<String> for ProxyJump {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_proxy_jump(&s).map(ProxyJump)
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNats {
    monitor_port: Option<u16>,
    monitor: Option<MonitorMode>,
    cluster_port: Option<u16>,
    config_file: Option<String>,
    store_dir: Option<String>,
    system_account: Option<String>,
    #[serde(default)]
    service: RawService,
    cluster_host: Option<String>,
    server_bin: Option<String>,
    client_port: Option<u16>,
    system_user: Option<RawSystemUser>,
    system_creds: Option<String>,
    system_nkey_seed: Option<String>,
    client_tls: Option<RawClientTls>,
}

/// `nats.system_user` as written: `{user, password}` or `{user, password_env}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSystemUserFields")]
struct RawSystemUser {
    user: String,
    password: RawPassword,
}

#[derive(Debug, Clone)]
enum RawPassword {
    Literal(String),
    Env(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystemUserFields {
    user: String,
    password: Option<String>,
    password_env: Option<String>,
}

impl TryFrom<RawSystemUserFields> for RawSystemUser {
    type Error = String;
    fn try_from(f: RawSystemUserFields) -> Result<Self, String> {
        if f.user.trim().is_empty() {
            return Err("system_user: `user` is empty".into());
        }
        let password = match (f.password, f.password_env) {
            (Some(p), None) => RawPassword::Literal(p),
            (None, Some(v)) => {
                if v.is_empty()
                    || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || v.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(format!(
                        "system_user: password_env `{v}` is not an environment variable name"
                    ));
                }
                RawPassword::Env(v)
            }
            (Some(_), Some(_)) => {
                return Err(
                    "system_user: give either `password` or `password_env`, not both".into(),
                )
            }
            (None, None) => return Err(
                "system_user: `password` or `password_env` (an environment variable) is required"
                    .into(),
            ),
        };
        Ok(RawSystemUser {
            user: f.user,
            password,
        })
    }
}

/// `nats.client_tls` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawClientTlsFields")]
struct RawClientTls {
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientTlsFields {
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
}

impl TryFrom<RawClientTlsFields> for RawClientTls {
    type Error = String;
    fn try_from(f: RawClientTlsFields) -> Result<Self, String> {
        match (&f.ca_file, &f.cert_file, &f.key_file) {
            (None, None, None) => {
                return Err("client_tls: name at least one of ca_file, cert_file, key_file".into())
            }
            (_, Some(_), None) => {
                return Err("client_tls: cert_file needs key_file (its private key)".into())
            }
            (_, None, Some(_)) => {
                return Err("client_tls: key_file needs cert_file (its certificate)".into())
            }
            _ => {}
        }
        for (k, v) in [
            ("ca_file", &f.ca_file),
            ("cert_file", &f.cert_file),
            ("key_file", &f.key_file),
        ] {
            if v.as_deref().is_some_and(|p| p.trim().is_empty()) {
                return Err(format!("client_tls: {k} is empty"));
            }
        }
        Ok(RawClientTls {
            ca_file: f.ca_file,
            cert_file: f.cert_file,
            key_file: f.key_file,
        })
    }
}

/// Parses OpenSSH `-J` syntax: `[user@]host[:port][,[user@]host[:port]…]`, also
/// `ssh://[user@]host[:port]` hops; `none` means no jump host (to override `defaults`).
pub fn parse_proxy_jump(text: &str) -> Result<Vec<JumpHost>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("proxy_jump is empty (write `none` for no jump host)".into());
    }
    if t == "none" {
        return Ok(Vec::new());
    }
    let hops: Vec<&str> = t.split(',').collect();
    hops.iter()
        .enumerate()
        .map(|(i, hop)| {
            JumpHost::parse(hop).map_err(|e| match hops.len() {
                1 => format!("proxy_jump: {e}"),
                _ => format!("proxy_jump `{t}`: hop {}: {e}", i + 1),
            })
        })
        .collect()
}

impl JumpHost {
    /// One hop: `[user@]host[:port]`, `[user@][v6addr][:port]`, or `ssh://…`.
    pub fn parse(hop: &str) -> Result<JumpHost, String> {
        let h = hop.trim();
        if h.is_empty() {
            return Err("empty (two commas in a row, or a trailing comma?)".into());
        }
        let h = h.strip_prefix("ssh://").unwrap_or(h);
        let h = h.strip_suffix('/').unwrap_or(h);
        if h.chars().any(char::is_whitespace) {
            return Err(format!("`{h}` contains white space"));
        }
        let (user, rest) = match h.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, h),
        };
        if let Some(u) = user {
            if u.is_empty() {
                return Err(format!("`{h}`: empty user name before `@`"));
            }
            if u.starts_with('-') || u.contains(['/', ':']) {
                return Err(format!("`{h}`: invalid user name `{u}`"));
            }
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{h}`: `[` without `]`"))?;
            match after {
                "" => (addr, None),
                p => (
                    addr,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| format!("`{h}`: expected `:port` after `]`"))?,
                    ),
                ),
            }
        } else {
            match rest.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(format!(
                        "`{h}`: write an IPv6 address in brackets, e.g. `[{rest}]:22`"
                    ))
                }
                Some((a, p)) => (a, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{h}`: no host"));
        }
        if host.starts_with('-') || host.contains(['/', '@', '[', ']']) {
            return Err(format!("`{h}`: invalid host `{host}`"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(format!("`{h}`: invalid port `{p}` (1-65535)")),
            },
        };
        Ok(JumpHost {
            user: user.map(String::from),
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for JumpHost {
    /// As OpenSSH `-J` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// A chain of hops as one `-J` argument (`a,b`).
pub fn format_proxy_jump(hops: &[JumpHost]) -> String {
    hops.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    start: Option<String>,
    stop: Option<String>,
    status: Option<String>,
    reload: Option<String>,
}

/// Expands a leading `~` to `$HOME`.
/// Each `ssh.config` file is read once per inventory.
fn load_ssh_config(
    cache: &mut BTreeMap<PathBuf, crate::ssh::config::SshConfig>,
    path: &Path,
) -> Result<crate::ssh::config::SshConfig, String> {
    if let Some(c) = cache.get(path) {
        return Ok(c.clone());
    }
    let c = crate::ssh::config::SshConfig::load(path)?;
    cache.insert(path.to_path_buf(), c.clone());
    Ok(c)
}

pub fn expand_tilde(p: &str) -> PathBuf {
    if p == "~" {
        return home_dir();
    }
    if let Some(rest) = p.strip_prefix("~/") {
        return home_dir().join(rest);
    }
    PathBuf::from(p)
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

impl Inventory {
    /// Reads and validates an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InputProblems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InputProblems(vec![InputProblem::new(
                path,
                format!("cannot read inventory: {e}"),
            )])
        })?;
        Self::parse(path, &text)
    }

    /// Parses inventory text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Inventory, InputProblems> {
        let raw: RawInventory = yaml_serde::from_str(text)
            .map_err(|e| InputProblems(vec![InputProblem::from_yaml(path, &e)]))?;
        let mut problems = Vec::new();
        let cluster = match raw.cluster {
            Some(c) if !c.trim().is_empty() => c,
            _ => {
                problems.push(
                    InputProblem::new(
                        path,
                        "the cluster name is required (it is typed to approve destructive steps)",
                    )
                    .field("cluster"),
                );
                String::new()
            }
        };
        let raw_nodes = raw.nodes.unwrap_or_default();
        if raw_nodes.is_empty() {
            problems.push(InputProblem::new(path, "at least one node is required").field("nodes"));
        }
        let mut nodes = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut ssh_configs = BTreeMap::new();
        for (i, rn) in raw_nodes.into_iter().enumerate() {
            if !seen.insert(rn.name.clone()) {
                problems.push(
                    InputProblem::new(path, format!("duplicate node name `{}`", rn.name))
                        .field(format!("nodes[{i}].name")),
                );
            }
            if rn.name.trim().is_empty() {
                problems.push(
                    InputProblem::new(path, "node name is empty").field(format!("nodes[{i}].name")),
                );
            }
            if rn.host.trim().is_empty() {
                problems.push(
                    InputProblem::new(path, "node host is empty").field(format!("nodes[{i}].host")),
                );
            }
            let s = merge_ssh(&raw.defaults.ssh, &rn.ssh);
            let n = merge_nats(&raw.defaults.nats, &rn.nats);
            // `ssh.config`: what an OpenSSH client config says for this host; the inventory's
            // own fields win.
            let (cfg, host_cfg) = match s.config.as_deref().filter(|c| !c.trim().is_empty()) {
                None => (None, crate::ssh::config::HostConfig::default()),
                // Like OpenSSH, a missing ~/.ssh/config is no config at all; any other
                // named file must exist.
                Some(c) if c.trim() == "~/.ssh/config" && !expand_tilde(c).exists() => {
                    (None, crate::ssh::config::HostConfig::default())
                }
                Some(c) => match load_ssh_config(&mut ssh_configs, &expand_tilde(c))
                    .and_then(|cfg| Ok((cfg.lookup(&rn.host)?, cfg)))
                {
                    Ok((h, cfg)) => (Some(cfg), h),
                    Err(e) => {
                        problems.push(
                            InputProblem::new(path, e).field(format!("nodes[{i}].ssh.config")),
                        );
                        (None, crate::ssh::config::HostConfig::default())
                    }
                },
            };
            let user = s
                .user
                .or(host_cfg.user)
                .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into()));
            let proxy_jump = match (s.proxy_jump, host_cfg.proxy_jump.as_deref()) {
                (Some(j), _) => j.0,
                (None, None) => Vec::new(),
                (None, Some(text)) => match parse_proxy_jump(text) {
                    Ok(hops) => hops,
                    Err(e) => {
                        problems.push(
                            InputProblem::new(
                                path,
                                format!("ssh config ProxyJump for {}: {e}", rn.host),
                            )
                            .field(format!("nodes[{i}].ssh.config")),
                        );
                        Vec::new()
                    }
                },
            };
            // Hops named by alias resolve through the same config (`ProxyJump bastion`).
            let proxy_jump = match &cfg {
                None => proxy_jump,
                Some(cfg) => proxy_jump
                    .into_iter()
                    .map(|hop| match cfg.lookup(&hop.host) {
                        Ok(h) => JumpHost {
                            user: hop.user.or(h.user),
                            port: hop.port.or(h.port),
                            host: h.host_name.unwrap_or(hop.host),
                        },
                        Err(_) => hop,
                    })
                    .collect(),
            };
            let ssh = SshSettings {
                user,
                port: s.port.or(host_cfg.port).unwrap_or(22),
                identity_file: s
                    .identity_file
                    .or(host_cfg.identity_file)
                    .as_deref()
                    .map(expand_tilde),
                known_hosts: expand_tilde(
                    s.known_hosts
                        .as_deref()
                        .or(host_cfg.user_known_hosts_file.as_deref())
                        .unwrap_or("~/.ssh/known_hosts"),
                ),
                connect_timeout: s.connect_timeout.unwrap_or(Duration::from_secs(5)),
                command_timeout: s.command_timeout.unwrap_or(Duration::from_secs(60)),
                sudo: s.sudo.unwrap_or(false),
                accept_new_host_keys: s.accept_new_host_keys.unwrap_or(false),
                proxy_jump,
                config: s.config.as_deref().map(expand_tilde),
                retries: s.retries.unwrap_or(2),
            };
            if ssh.retries > MAX_SSH_RETRIES {
                problems.push(
                    InputProblem::new(
                        path,
                        format!(
                            "ssh.retries {} is too many (at most {MAX_SSH_RETRIES}: an unreachable node must cost a bounded time)",
                            ssh.retries
                        ),
                    )
                    .field(format!("nodes[{i}].ssh.retries")),
                );
            }
            let ways: Vec<&str> = [
                ("system_user", n.system_user.is_some()),
                ("system_creds", n.system_creds.is_some()),
                ("system_nkey_seed", n.system_nkey_seed.is_some()),
            ]
            .into_iter()
            .filter_map(|(k, set)| set.then_some(k))
            .collect();
            if ways.len() > 1 {
                problems.push(
                    InputProblem::new(
                        path,
                        format!(
                            "node `{}` has {}: choose one way to authenticate to the system account",
                            rn.name,
                            ways.join(" and ")
                        ),
                    )
                    .field(format!("nodes[{i}].nats")),
                );
            }
            for (k, v) in [
                ("cluster_host", &n.cluster_host),
                ("server_bin", &n.server_bin),
                ("system_creds", &n.system_creds),
                ("system_nkey_seed", &n.system_nkey_seed),
                ("config", &s.config),
            ] {
                if v.as_deref().is_some_and(|t| t.trim().is_empty()) {
                    let section = if k == "config" { "ssh" } else { "nats" };
                    problems.push(
                        InputProblem::new(path, format!("{section}.{k} is empty"))
                            .field(format!("nodes[{i}].{section}.{k}")),
                    );
                }
            }
            if let Some(h) = n.cluster_host.as_deref() {
                if h.chars().any(char::is_whitespace) {
                    problems.push(
                        InputProblem::new(
                            path,
                            format!("nats.cluster_host `{h}` contains white space"),
                        )
                        .field(format!("nodes[{i}].nats.cluster_host")),
                    );
                }
            }
            let nats = NatsSettings {
                monitor_port: n.monitor_port.unwrap_or(8222),
                monitor: n.monitor.unwrap_or(MonitorMode::Auto),
                cluster_port: n.cluster_port.unwrap_or(6222),
                config_file: n
                    .config_file
                    .unwrap_or_else(|| "/etc/nats/nats-server.conf".into()),
                store_dir: n.store_dir.unwrap_or_else(|| "/var/lib/nats".into()),
                system_account: n.system_account.unwrap_or_else(|| "$SYS".into()),
                service: ServiceCommands {
                    start: n
                        .service
                        .start
                        .unwrap_or_else(|| "systemctl start nats-server".into()),
                    stop: n
                        .service
                        .stop
                        .unwrap_or_else(|| "systemctl stop nats-server".into()),
                    status: n
                        .service
                        .status
                        .unwrap_or_else(|| "systemctl is-active nats-server".into()),
                    reload: n.service.reload,
                },
                cluster_host: n.cluster_host,
                server_bin: n.server_bin.unwrap_or_else(|| "nats-server".into()),
                client_port: n.client_port.unwrap_or(4222),
                system_user: n.system_user.map(|u| SystemUser {
                    user: u.user,
                    password: match u.password {
                        RawPassword::Literal(p) => SystemPassword::Literal(Secret(p)),
                        RawPassword::Env(var) => SystemPassword::Env {
                            value: std::env::var(&var)
                                .ok()
                                .filter(|v| !v.is_empty())
                                .map(Secret),
                            var,
                        },
                    },
                }),
                system_creds: n.system_creds.as_deref().map(expand_tilde),
                system_nkey_seed: n.system_nkey_seed.as_deref().map(expand_tilde),
                client_tls: n.client_tls.map(|t| ClientTls {
                    ca_file: t.ca_file.as_deref().map(expand_tilde),
                    cert_file: t.cert_file.as_deref().map(expand_tilde),
                    key_file: t.key_file.as_deref().map(expand_tilde),
                }),
            };
            nodes.push(Node {
                name: rn.name,
                // An alias in the config names its real address (`HostName`).
                host: host_cfg.host_name.unwrap_or(rn.host),
                ssh,
                nats,
            });
        }
        if !problems.is_empty() {
            return Err(InputProblems(problems));
        }
        Ok(Inventory {
            cluster,
            nodes,
            source: path.to_path_buf(),
            sha256: sha256_hex(text.as_bytes()),
        })
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Majority of the inventory's servers.
    pub fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// Every secret value the inventory holds (system passwords, also those read from the
    /// environment), once each: callers add them to their redactor.
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in &self.nodes {
            if let Some(p) = n.nats.system_user.as_ref().and_then(SystemUser::password) {
                if !out.iter().any(|s| s == p) {
                    out.push(p.to_string());
                }
            }
        }
        out
    }
}

fn merge_ssh(d: &RawSsh, o: &RawSsh) -> RawSsh {
    RawSsh {
        user: o.user.clone().or_else(|| d.user.clone()),
        port: o.port.or(d.port),
        identity_file: o.identity_file.clone().or_else(|| d.identity_file.clone()),
        known_hosts: o.known_hosts.clone().or_else(|| d.known_hosts.clone()),
        connect_timeout: o.connect_timeout.or(d.connect_timeout),
        command_timeout: o.command_timeout.or(d.command_timeout),
        sudo: o.sudo.or(d.sudo),
        accept_new_host_keys: o.accept_new_host_keys.or(d.accept_new_host_keys),
        proxy_jump: o.proxy_jump.clone().or_else(|| d.proxy_jump.clone()),
        config: o.config.clone().or_else(|| d.config.clone()),
        retries: o.retries.or(d.retries),
    }
}

fn merge_nats(d: &RawNats, o: &RawNats) -> RawNats {
    // The three ways to reach the system account are one choice: a node that names any of
    // them replaces the defaults' choice instead of adding a second way.
    let auth =
        if o.system_user.is_some() || o.system_creds.is_some() || o.system_nkey_seed.is_some() {
            o
        } else {
            d
        };
    RawNats {
        cluster_host: o.cluster_host.clone().or_else(|| d.cluster_host.clone()),
        server_bin: o.server_bin.clone().or_else(|| d.server_bin.clone()),
        client_port: o.client_port.or(d.client_port),
        system_user: auth.system_user.clone(),
        system_creds: auth.system_creds.clone(),
        system_nkey_seed: auth.system_nkey_seed.clone(),
        client_tls: o.client_tls.clone().or_else(|| d.client_tls.clone()),
        monitor_port: o.monitor_port.or(d.monitor_port),
        monitor: o.monitor.or(d.monitor),
        cluster_port: o.cluster_port.or(d.cluster_port),
        config_file: o.config_file.clone().or_else(|| d.config_file.clone()),
        store_dir: o.store_dir.clone().or_else(|| d.store_dir.clone()),
        system_account: o
            .system_account
            .clone()
            .or_else(|| d.system_account.clone()),
        service: RawService {
            start: o.service.start.clone().or_else(|| d.service.start.clone()),
            stop: o.service.stop.clone().or_else(|| d.service.stop.clone()),
            status: o
                .service
                .status
                .clone()
                .or_else(|| d.service.status.clone()),
            reload: o
                .service
                .reload
                .clone()
                .or_else(|| d.service.reload.clone()),
        },
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
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
        format!("cluster: c\nnodes:\n  - name: n1\n    host: h\n    ssh: {{{ssh}}}\n    nats: {{{nats}}}\n")
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
}
