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

/// One node: its namespace, links, files and processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeState {
    /// `n1` … `nN`: server_name and hostname.
    pub name: String,
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

    pub fn node(&self, name: &str) -> Result<&NodeState> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| self.unknown_node(name))
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut NodeState> {
        let err = self.unknown_node(name);
        self.nodes.iter_mut().find(|n| n.name == name).ok_or(err)
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
