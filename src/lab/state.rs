//! `lab.json`: the record of everything the lab made, written BEFORE each thing is made, so
//! that `lab down` can undo it after a crash, and `lab heal` knows exactly which faults to undo.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the state record inside the lab directory.
pub const STATE_FILE: &str = "lab.json";

/// Everything one lab made on this machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LabState {
    /// Prefix of the namespaces and links (`<name>-n1`, `<name>-br`).
    pub name: String,
    pub dir: PathBuf,
    /// `X.Y` of the lab's `10.X.Y.0/24`.
    pub subnet: String,
    pub nats_server: PathBuf,
    /// `nats-server --version`, e.g. `v2.15.1`.
    pub nats_version: String,
    /// The lab directory did not exist (or was empty) before `lab up`: `down` removes it.
    pub created_dir: bool,
    /// Bridge in the root namespace, once its creation was attempted.
    pub bridge: Option<String>,
    pub bridge_addr: String,
    pub sys_user: String,
    pub sys_password: String,
    pub app_user: String,
    pub app_password: String,
    /// `--config-style`: how the server configs are written.
    #[serde(default)]
    pub config_style: ConfigStyle,
    /// `--accounts`: every client must authenticate (no `no_auth_user`), and the inventory
    /// carries the system user.
    #[serde(default)]
    pub accounts: bool,
    /// `--route-auth`: the cluster's route credentials (also in every route URL).
    #[serde(default)]
    pub route_auth: Option<RouteAuth>,
    /// `--ssh-user`: the local user the lab created, recorded before it is created.
    #[serde(default)]
    pub ssh_user: Option<SshUser>,
    /// `--bastion`: the jump host, a namespace with only sshd. Only its namespace, link,
    /// address and sshd fields are used.
    #[serde(default)]
    pub bastion: Option<NodeState>,
    pub nodes: Vec<NodeState>,
    /// Every iptables rule inserted, in insertion order (removed with `-D`).
    #[serde(default)]
    pub iptables: Vec<IptablesRule>,
    /// Faults injected and not yet healed, in injection order.
    #[serde(default)]
    pub faults: Vec<FaultRecord>,
    /// `lab down` finished.
    #[serde(default)]
    pub down: bool,
}

/// How `lab up --config-style` writes each server's config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ConfigStyle {
    /// The classic NATS format (`key: value`, blocks), listening on the node's address.
    #[default]
    Classic,
    /// JSON as the official Helm chart v1 renders it: `server_name` from `$SERVER_NAME`,
    /// every server in `routes` (itself too), `nats://` route URLs, all interfaces.
    Helm,
}

/// Route credentials (`cluster.authorization`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteAuth {
    pub user: String,
    pub password: String,
}

/// The unprivileged SSH user the lab created (and `down` removes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SshUser {
    pub name: String,
    pub home: PathBuf,
    /// The sudoers drop-in that gives it NOPASSWD sudo.
    pub sudoers: PathBuf,
    /// The GECOS comment `useradd` was given: `down` removes a user only when its passwd
    /// entry still carries it.
    pub comment: String,
}

/// One host namespace of the lab: a node by index, or the bastion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Node(usize),
    Bastion,
}

impl Host {
    /// Suffix of its veth names: the node's number, or `b`.
    pub fn tag(self) -> String {
        match self {
            Host::Node(i) => (i + 1).to_string(),
            Host::Bastion => "b".into(),
        }
    }
}

/// One node: its namespace, links, files and processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeState {
    /// `n1` … `nN`: the lab's name for the node (namespace, directory, hostname) and its
    /// server_name unless renamed.
    pub name: String,
    /// The server_name it runs under after `lab break rename`.
    #[serde(default)]
    pub server_name: Option<String>,
    pub netns: String,
    pub addr: String,
    /// Host end of the veth pair (in the root namespace, enslaved to the bridge).
    pub veth_host: Option<String>,
    /// `/etc/netns/<netns>`, once created.
    pub netns_etc: Option<PathBuf>,
    pub node_dir: PathBuf,
    pub config: PathBuf,
    pub store_dir: PathBuf,
    pub ctl: PathBuf,
    pub server_pidfile: PathBuf,
    pub server_log: PathBuf,
    pub sshd_config: PathBuf,
    pub sshd_pidfile: PathBuf,
    /// Every nats-server PID this lab started for the node (the pid file holds the current one).
    #[serde(default)]
    pub server_pids: Vec<u32>,
    pub sshd_pid: Option<u32>,
}

/// An iptables rule inserted inside a node's namespace: `iptables -I <chain> <spec...>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IptablesRule {
    pub netns: String,
    pub chain: String,
    pub spec: Vec<String>,
}

impl NodeState {
    /// The server_name it runs under.
    pub fn server_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.name)
    }
}

impl IptablesRule {
    pub fn display(&self) -> String {
        format!(
            "ip netns exec {} iptables -I {} {}",
            self.netns,
            self.chain,
            self.spec.join(" ")
        )
    }
}

/// A fault injected by `lab break`, with what is needed to undo it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultRecord {
    /// Servers SIGKILLed.
    QuorumLoss { nodes: Vec<String> },
    /// Cluster-port traffic dropped inside these nodes' namespaces.
    Partition {
        nodes: Vec<String>,
        rules: Vec<IptablesRule>,
    },
    /// Configs rewritten; `originals` holds (node, original config text).
    BadRoutes { originals: Vec<(String, String)> },
    /// Hosts files emptied; `originals` holds (node, original hosts text).
    Dns { originals: Vec<(String, String)> },
    /// Servers SIGSTOPped: (node, pid).
    Frozen { pids: Vec<(String, u32)> },
    /// All servers stopped after `stale` missed the others' progress.
    Diverged { stale: String },
    /// Servers killed, data dirs deleted, sshd stopped, all traffic dropped: permanent loss.
    Destroy {
        nodes: Vec<String>,
        rules: Vec<IptablesRule>,
    },
    /// `node` restarted under server_name `to` (it was `from`).
    Rename {
        node: String,
        from: String,
        to: String,
    },
    /// Two of the stream's three replicas killed; the meta group keeps quorum.
    StreamQuorum { stream: String, nodes: Vec<String> },
    /// Traffic of `node` dropped for `seconds`; `pid` (a session leader started with setsid
    /// inside the namespace) removes the rules by itself when the time is up.
    Flap {
        node: String,
        what: String,
        seconds: u64,
        rules: Vec<IptablesRule>,
        pid: Option<u32>,
        /// Unix time (s) when the rules go away.
        until: u64,
    },
}

impl FaultRecord {
    pub fn kind(&self) -> &'static str {
        match self {
            FaultRecord::QuorumLoss { .. } => "quorum-loss",
            FaultRecord::Partition { .. } => "partition",
            FaultRecord::BadRoutes { .. } => "bad-routes",
            FaultRecord::Dns { .. } => "dns",
            FaultRecord::Frozen { .. } => "frozen",
            FaultRecord::Diverged { .. } => "diverged",
            FaultRecord::Destroy { .. } => "destroy",
            FaultRecord::Rename { .. } => "rename",
            FaultRecord::StreamQuorum { .. } => "stream-quorum",
            FaultRecord::Flap { .. } => "flap",
        }
    }

    pub fn nodes(&self) -> Vec<String> {
        match self {
            FaultRecord::QuorumLoss { nodes } | FaultRecord::Partition { nodes, .. } => {
                nodes.clone()
            }
            FaultRecord::BadRoutes { originals } | FaultRecord::Dns { originals } => {
                originals.iter().map(|(n, _)| n.clone()).collect()
            }
            FaultRecord::Frozen { pids } => pids.iter().map(|(n, _)| n.clone()).collect(),
            FaultRecord::Diverged { stale } => vec![stale.clone()],
            FaultRecord::Destroy { nodes, .. } | FaultRecord::StreamQuorum { nodes, .. } => {
                nodes.clone()
            }
            FaultRecord::Rename { node, .. } | FaultRecord::Flap { node, .. } => {
                vec![node.clone()]
            }
        }
    }
}

impl LabState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads `<dir>/lab.json`; `Ok(None)` when there is none.
    pub fn load_opt(dir: &Path) -> Result<Option<LabState>> {
        let p = Self::path(dir);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Other(format!("cannot read {}: {e}", p.display()))),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Other(format!("{} is not a lab state file: {e}", p.display())))
    }

    /// Reads the state of a lab that is up.
    pub fn load(dir: &Path) -> Result<LabState> {
        match Self::load_opt(dir)? {
            Some(s) if !s.down => Ok(s),
            _ => Err(Error::Usage(format!(
                "no lab in {} (no {STATE_FILE}); start one with `nats-rescue lab up --dir {}`",
                dir.display(),
                dir.display()
            ))),
        }
    }

    /// Writes the state atomically (temp file + rename) and syncs it: a crash leaves either
    /// the old or the new record, never a torn one.
    pub fn save(&self) -> Result<()> {
        use std::io::Write;
        let p = Self::path(&self.dir);
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        };
        write().map_err(|e| Error::Other(format!("cannot write {}: {e}", p.display())))
    }

    /// A node by its lab name (`n3`) or by the server_name it runs under now (`n3b`).
    pub fn node(&self, name: &str) -> Result<&NodeState> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .or_else(|| self.nodes.iter().find(|n| n.server_name() == name))
            .ok_or_else(|| self.unknown_node(name))
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut NodeState> {
        let err = self.unknown_node(name);
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .or_else(|| self.nodes.iter().position(|n| n.server_name() == name))
            .ok_or(err)?;
        Ok(&mut self.nodes[i])
    }

    /// Lab names of the nodes destroyed by `lab break destroy` and not rebuilt.
    pub fn destroyed(&self) -> Vec<String> {
        self.faults
            .iter()
            .filter_map(|f| match f {
                FaultRecord::Destroy { nodes, .. } => Some(nodes.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Every host namespace the lab made: the nodes, then the bastion.
    pub fn hosts(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter().chain(self.bastion.iter())
    }

    /// The ids of [`LabState::hosts`].
    pub fn host_ids(&self) -> Vec<Host> {
        (0..self.nodes.len())
            .map(Host::Node)
            .chain(self.bastion.iter().map(|_| Host::Bastion))
            .collect()
    }

    pub fn host(&self, h: Host) -> Option<&NodeState> {
        match h {
            Host::Node(i) => self.nodes.get(i),
            Host::Bastion => self.bastion.as_ref(),
        }
    }

    pub fn host_mut(&mut self, h: Host) -> Option<&mut NodeState> {
        match h {
            Host::Node(i) => self.nodes.get_mut(i),
            Host::Bastion => self.bastion.as_mut(),
        }
    }

    fn unknown_node(&self, name: &str) -> Error {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        Error::Usage(format!(
            "unknown lab node `{name}` (this lab has {})",
            names.join(", ")
        ))
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    pub fn inventory_path(&self) -> PathBuf {
        self.dir.join("inventory.yaml")
    }
}
