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

pub mod discover;
mod raw;
pub mod writer;
use raw::*;
pub use raw::{expand_tilde, format_proxy_jump, parse_proxy_jump};

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
mod tests;
