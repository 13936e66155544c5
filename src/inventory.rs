//! The cluster inventory (SPEC §2): which nodes exist, how to reach them over SSH, and where
//! each node keeps its NATS config, data and service commands.

use crate::duration;
use crate::input_error::{InputProblem, InputProblems};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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
            let user = s
                .user
                .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into()));
            let ssh = SshSettings {
                user,
                port: s.port.unwrap_or(22),
                identity_file: s.identity_file.as_deref().map(expand_tilde),
                known_hosts: expand_tilde(s.known_hosts.as_deref().unwrap_or("~/.ssh/known_hosts")),
                connect_timeout: s.connect_timeout.unwrap_or(Duration::from_secs(5)),
                command_timeout: s.command_timeout.unwrap_or(Duration::from_secs(60)),
                sudo: s.sudo.unwrap_or(false),
                accept_new_host_keys: s.accept_new_host_keys.unwrap_or(false),
            };
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
            };
            nodes.push(Node {
                name: rn.name,
                host: rn.host,
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
    }
}

fn merge_nats(d: &RawNats, o: &RawNats) -> RawNats {
    RawNats {
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
}
