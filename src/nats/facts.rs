//! Facts about one node ([`NodeFacts`]) and the whole cluster ([`ClusterFacts`]).
//!
//! `NodeFacts` is built in two halves so each is testable alone: [`NodeFacts::from_http`]
//! (monitoring endpoint bodies + status codes) and [`NodeFacts::apply_shell`] (the SSH probe
//! report). [`ClusterFacts::build`] judges them together; it is what runbook templates see as
//! `facts` (snake_case names, maps keyed by node name).

use super::monitor::{self, Healthz, Jsz, MetaCluster, Raftz, Routez, Varz};
use super::probe::ShellReport;
use super::signals::{self, Signal};
use crate::inventory::{Inventory, Node};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

/// One HTTP answer (any status) or why there was none.
pub type HttpResult = Result<(u16, String), String>;

/// Monitoring answers of one node. `None` = not requested.
#[derive(Debug, Clone, Default)]
pub struct HttpBodies {
    pub varz: Option<HttpResult>,
    /// `/jsz?accounts=true&streams=true` (holds `meta_cluster` too) or plain `/jsz`.
    pub jsz: Option<HttpResult>,
    pub raftz: Option<HttpResult>,
    pub routez: Option<HttpResult>,
    pub healthz: Option<HttpResult>,
}

impl HttpBodies {
    /// Reads a capture folder of `shared/nats/fixtures` (`NAME.json|txt` + `_http_status.txt`).
    /// `jsz` prefers `jsz_accounts_streams_consumers_raft` (it carries the streams).
    pub fn from_capture_dir(dir: &Path) -> std::io::Result<HttpBodies> {
        let status_text = std::fs::read_to_string(dir.join("_http_status.txt"))?;
        let mut codes: BTreeMap<String, u16> = BTreeMap::new();
        for line in status_text.lines() {
            let mut it = line.split_whitespace();
            if let (Some(name), Some("HTTP"), Some(code)) = (it.next(), it.next(), it.next()) {
                if let Ok(c) = code.parse() {
                    codes.insert(name.to_string(), c);
                }
            }
        }
        let read = |name: &str| -> Option<HttpResult> {
            let code = *codes.get(name)?;
            for ext in ["json", "txt"] {
                if let Ok(b) = std::fs::read_to_string(dir.join(format!("{name}.{ext}"))) {
                    return Some(Ok((code, b)));
                }
            }
            None
        };
        Ok(HttpBodies {
            varz: read("varz"),
            jsz: read("jsz_accounts_streams_consumers_raft").or_else(|| read("jsz")),
            raftz: read("raftz"),
            routez: read("routez"),
            healthz: read("healthz"),
        })
    }
}

/// Meta-group Raft state as one node knows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RaftFacts {
    /// FOLLOWER | LEADER | CANDIDATE | CLOSED; from jsz only LEADER/FOLLOWER; None = unknown.
    pub state: Option<String>,
    pub term: Option<u64>,
    /// Last log index (`pindex`); from disk: the best estimate (snapshot / commit.idx).
    pub index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    /// Term of the last log entry (`pterm`; from disk: the snapshot's term).
    pub log_term: Option<u64>,
    pub ever_had_leader: Option<bool>,
    /// The leader's PEER ID as raftz reports it.
    pub leader_peer: Option<String>,
    pub voted_for: Option<String>,
    pub peer_id: Option<String>,
    /// `raftz` | `jsz` | `disk`; None when nothing is known.
    pub source: Option<String>,
    /// `index` is a lower-bound estimate (disk).
    pub index_estimated: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HealthzFacts {
    /// HTTP status code; None when not fetched.
    pub status: Option<u16>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplicaFacts {
    pub name: Option<String>,
    pub peer: Option<String>,
    pub current: Option<bool>,
    pub offline: Option<bool>,
    pub active_ns: Option<u64>,
    pub lag: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DnsFacts {
    pub host: String,
    /// `ok` | `failed`
    pub status: String,
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LoadFacts {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub cpus: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemFacts {
    pub total_kb: u64,
    pub available_kb: u64,
    pub available_pct: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DiskFacts {
    pub path: String,
    pub total_kb: u64,
    pub used_kb: u64,
    pub available_kb: u64,
    pub used_pct: f64,
    pub mount: String,
}

/// Raft state found on disk under `<store_dir>/jetstream/<sys>/_js_/_meta_`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DiskRaftFacts {
    pub meta_dir_exists: Option<bool>,
    /// `tav.idx`: current term and vote.
    pub term: Option<u64>,
    pub vote: Option<String>,
    /// Newest `snapshots/snap.<term>.<index>`.
    pub snapshot_term: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// `commit.idx` (2.15.1+): commit index.
    pub commit_index: Option<u64>,
    /// `peers.idx`: cluster size and peer ids.
    pub peers_cluster_size: Option<u64>,
    pub peers: Vec<String>,
    pub wal_files: Option<u64>,
    pub wal_bytes: Option<u64>,
    /// Last record of the newest WAL block (= last log index), when readable.
    pub wal_last_index: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StreamFacts {
    pub account: String,
    pub name: String,
    pub messages: Option<u64>,
    pub bytes: Option<u64>,
    pub last_seq: Option<u64>,
    pub leader: Option<String>,
    pub raft_group: Option<String>,
}

/// Everything known about one node (SPEC §1 `nodes[]`, plus the raw material for signals).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    pub host: String,
    /// `ok` | `error: …` | `not probed`
    pub ssh: String,
    /// `active` | `inactive` | `unknown`
    pub service: String,
    pub service_exit: Option<i32>,
    /// `running` | `frozen` | `absent` | `unknown`
    pub process: String,
    pub pid: Option<u32>,
    /// `/proc/PID/stat` state letter (`T` = stopped).
    pub process_state: Option<String>,
    /// `ok` | `error: …`
    pub monitor: String,
    /// `refused` | `timeout` | `http` | `other` when the monitor failed.
    pub monitor_error_kind: Option<String>,
    pub server_name: Option<String>,
    pub server_id: Option<String>,
    pub version: Option<String>,
    pub cluster_name: Option<String>,
    /// The meta leader's server name as THIS node sees it.
    pub meta_leader: Option<String>,
    pub meta_leader_peer: Option<String>,
    pub raft: RaftFacts,
    pub cluster_size: Option<u64>,
    pub quorum_needed: Option<u64>,
    pub rescue: Option<bool>,
    pub replicas: Vec<ReplicaFacts>,
    /// Distinct route peers (server names; server ids on 2.9.10 unless mapped).
    pub route_peers: Vec<String>,
    /// Route connections (4 per peer from 2.10).
    pub num_routes: Option<u64>,
    /// Peers connected only by routes they dialled (`did_solicit:false,is_configured:false`).
    pub unsolicited_route_peers: Vec<String>,
    /// Configured route URLs (`host:port`).
    pub configured_routes: Vec<String>,
    /// `config` (the file, over SSH) | `varz` (`cluster.urls`)
    pub configured_routes_source: Option<String>,
    pub healthz: HealthzFacts,
    /// Peer name → `ok` | `refused` | `timeout` | `unresolved` | `unreachable` | `error: …`
    pub peer_tcp: BTreeMap<String, String>,
    /// Peer name → resolution from this node (IP-literal hosts are skipped).
    pub peer_dns: BTreeMap<String, DnsFacts>,
    /// Route host → resolution from this node (hostnames in the configured routes).
    pub route_dns: BTreeMap<String, DnsFacts>,
    pub load: Option<LoadFacts>,
    pub memory: Option<MemFacts>,
    pub disk: Option<DiskFacts>,
    pub store_dir_exists: Option<bool>,
    pub disk_raft: DiskRaftFacts,
    /// Term persisted in `tav.idx`.
    pub disk_term: Option<u64>,
    pub firewall_rules: Vec<String>,
    pub streams: Vec<StreamFacts>,
    /// `source: message` for everything that could not be read.
    pub errors: Vec<String>,
}

/// `refused` | `timeout` | `other` from a transport error text.
pub fn error_kind(msg: &str) -> &'static str {
    let m = msg.to_ascii_lowercase();
    if m.contains("refused") {
        "refused"
    } else if m.contains("timed out") || m.contains("timeout") {
        "timeout"
    } else {
        "other"
    }
}

impl NodeFacts {
    /// A node nothing is known about yet.
    pub fn new(name: &str) -> NodeFacts {
        NodeFacts {
            name: name.to_string(),
            ssh: "not probed".into(),
            service: "unknown".into(),
            process: "unknown".into(),
            monitor: "not probed".into(),
            ..Default::default()
        }
    }

    /// Facts from the monitoring endpoints alone.
    pub fn from_http(name: &str, b: &HttpBodies) -> NodeFacts {
        let mut f = NodeFacts::new(name);
        let mut answered = false;
        let mut first_err: Option<String> = None;
        let mut note_err = |f: &mut NodeFacts, ep: &str, e: &str| {
            f.errors.push(format!("monitor {ep}: {e}"));
            if first_err.is_none() {
                first_err = Some(e.to_string());
            }
        };

        let mut varz: Option<Varz> = None;
        match &b.varz {
            Some(Ok((200, body))) => {
                answered = true;
                match monitor::parse::<Varz>("/varz", body) {
                    Ok(v) => varz = Some(v),
                    Err(e) => f.errors.push(format!("monitor {e}")),
                }
            }
            Some(Ok((code, body))) => {
                answered = true;
                f.errors
                    .push(format!("monitor /varz: HTTP {code}: {}", short(body)));
            }
            Some(Err(e)) => note_err(&mut f, "/varz", e),
            None => {}
        }

        let mut jsz: Option<Jsz> = None;
        match &b.jsz {
            Some(Ok((200, body))) => {
                answered = true;
                match monitor::parse::<Jsz>("/jsz", body) {
                    Ok(j) => jsz = Some(j),
                    Err(e) => f.errors.push(format!("monitor {e}")),
                }
            }
            Some(Ok((code, body))) => {
                answered = true;
                f.errors
                    .push(format!("monitor /jsz: HTTP {code}: {}", short(body)));
            }
            Some(Err(e)) => note_err(&mut f, "/jsz", e),
            None => {}
        }

        let mut meta_raft = None;
        match &b.raftz {
            Some(Ok((200, body))) => {
                answered = true;
                match monitor::parse::<Raftz>("/raftz", body) {
                    Ok(r) => meta_raft = r.meta(None),
                    Err(e) => f.errors.push(format!("monitor {e}")),
                }
            }
            // 404 = no /raftz before 2.10.17: not an error.
            Some(Ok((404, _))) => answered = true,
            Some(Ok((code, body))) => {
                answered = true;
                f.errors
                    .push(format!("monitor /raftz: HTTP {code}: {}", short(body)));
            }
            Some(Err(e)) => note_err(&mut f, "/raftz", e),
            None => {}
        }

        let mut routez: Option<Routez> = None;
        match &b.routez {
            Some(Ok((200, body))) => {
                answered = true;
                match monitor::parse::<Routez>("/routez", body) {
                    Ok(r) => routez = Some(r),
                    Err(e) => f.errors.push(format!("monitor {e}")),
                }
            }
            Some(Ok((code, body))) => {
                answered = true;
                f.errors
                    .push(format!("monitor /routez: HTTP {code}: {}", short(body)));
            }
            Some(Err(e)) => note_err(&mut f, "/routez", e),
            None => {}
        }

        match &b.healthz {
            Some(Ok((code, body))) => {
                answered = true;
                let h = Healthz::from_response(*code, body);
                f.healthz = HealthzFacts {
                    status: Some(h.status),
                    text: Some(h.text),
                };
            }
            Some(Err(e)) => note_err(&mut f, "/healthz", e),
            None => {}
        }

        if answered {
            f.monitor = "ok".into();
        } else if let Some(e) = &first_err {
            f.monitor = format!("error: {e}");
            f.monitor_error_kind = Some(error_kind(e).to_string());
        }

        // identity
        if let Some(v) = &varz {
            f.server_name = v.server_name.clone();
            f.server_id = v.server_id.clone();
            f.version = v.version.clone();
            f.cluster_name = v.cluster.as_ref().and_then(|c| c.name.clone());
            if let Some(c) = &v.cluster {
                if !c.urls.is_empty() {
                    f.configured_routes = c.urls.clone();
                    f.configured_routes_source = Some("varz".into());
                }
            }
        }
        if f.server_name.is_none() {
            f.server_name = routez.as_ref().and_then(|r| r.server_name.clone());
        }
        if f.server_id.is_none() {
            f.server_id = jsz.as_ref().and_then(|j| j.server_id.clone());
        }

        // meta cluster as this node sees it (jsz first, varz.jetstream.meta as fallback)
        let meta: Option<MetaCluster> =
            jsz.as_ref()
                .and_then(|j| j.meta_cluster.clone())
                .or_else(|| {
                    varz.as_ref()
                        .and_then(|v| v.jetstream.as_ref())
                        .and_then(|j| j.meta.clone())
                });
        if let Some(m) = &meta {
            f.meta_leader = m.leader().map(str::to_string);
            f.meta_leader_peer = m.leader_peer().map(str::to_string);
            f.cluster_size = m.cluster_size;
            f.quorum_needed = m.quorum_needed;
            f.rescue = m.rescue;
            if f.cluster_name.is_none() {
                f.cluster_name = m.name.clone();
            }
            f.replicas = m
                .replicas
                .iter()
                .map(|r| ReplicaFacts {
                    name: r.known_name().map(str::to_string),
                    peer: r.peer.clone(),
                    current: r.current,
                    offline: r.offline,
                    active_ns: r.active,
                    lag: r.lag,
                })
                .collect();
        }

        // Raft
        if let Some(g) = &meta_raft {
            f.raft = RaftFacts {
                state: g.state.clone(),
                term: g.term,
                index: g.pindex,
                committed: g.committed,
                applied: g.applied,
                log_term: g.pterm,
                ever_had_leader: g.ever_had_leader,
                leader_peer: g.leader_peer().map(str::to_string),
                voted_for: g.voted_for.clone().filter(|s| !s.is_empty()),
                peer_id: g.id.clone(),
                source: Some("raftz".into()),
                index_estimated: false,
            };
            if f.cluster_size.is_none() {
                f.cluster_size = g.size;
            }
            if f.quorum_needed.is_none() {
                f.quorum_needed = g.quorum_needed;
            }
            // A leader known to raftz but not (yet) to jsz: map the peer id to a name.
            if f.meta_leader.is_none() {
                if let Some(lp) = g.leader_peer() {
                    let name = if Some(lp) == g.id.as_deref() {
                        f.server_name.clone()
                    } else {
                        g.peers
                            .get(lp)
                            .and_then(|p| p.name.clone())
                            .filter(|n| !n.is_empty())
                    };
                    f.meta_leader_peer = Some(lp.to_string());
                    f.meta_leader = name;
                }
            }
        } else if meta.is_some() {
            let state = match (&f.meta_leader, &f.server_name) {
                (Some(l), Some(me)) if l == me => Some("LEADER".to_string()),
                (Some(_), _) => Some("FOLLOWER".to_string()),
                _ => None,
            };
            f.raft = RaftFacts {
                state,
                source: Some("jsz".into()),
                leader_peer: f.meta_leader_peer.clone(),
                peer_id: f.server_name.as_deref().map(monitor::peer_id),
                ..Default::default()
            };
        }
        if f.quorum_needed.is_none() {
            f.quorum_needed = f.cluster_size.map(|s| s / 2 + 1);
        }

        // routes
        if let Some(r) = &routez {
            f.route_peers = r.distinct_peers();
            f.num_routes = r.num_routes.or(Some(r.routes.len() as u64));
            f.unsolicited_route_peers = r.unsolicited_peers();
        } else if let Some(v) = &varz {
            f.num_routes = v.routes;
        }

        // streams
        if let Some(j) = &jsz {
            for acc in &j.account_details {
                let account = acc
                    .name
                    .clone()
                    .or_else(|| acc.id.clone())
                    .unwrap_or_default();
                for s in &acc.stream_detail {
                    f.streams.push(StreamFacts {
                        account: account.clone(),
                        name: s.name.clone().unwrap_or_default(),
                        messages: s.state.as_ref().and_then(|st| st.messages),
                        bytes: s.state.as_ref().and_then(|st| st.bytes),
                        last_seq: s.state.as_ref().and_then(|st| st.last_seq),
                        leader: s.cluster.as_ref().and_then(|c| c.leader.clone()),
                        raft_group: s.cluster.as_ref().and_then(|c| c.raft_group.clone()),
                    });
                }
            }
        }

        if f.monitor == "ok" {
            f.process = "running".into();
        }
        f
    }

    /// Merges the SSH probe report (or its failure) into these facts.
    pub fn apply_shell(&mut self, report: Result<&ShellReport, &str>) {
        let r = match report {
            Ok(r) => r,
            Err(e) => {
                self.ssh = format!("error: {e}");
                self.errors.push(format!("ssh: {e}"));
                self.process = match (self.monitor.as_str(), self.monitor_error_kind.as_deref()) {
                    ("ok", _) => "running".into(),
                    // The host answered with a reset on the monitor port: the server is not there.
                    (_, Some("refused")) => "absent".into(),
                    _ => "unknown".into(),
                };
                return;
            }
        };
        self.ssh = "ok".into();
        for e in &r.errors {
            self.errors.push(format!("ssh probe: {e}"));
        }
        self.service_exit = r.service_exit;
        self.service = match r.service_exit {
            Some(0) => "active".into(),
            Some(_) => "inactive".into(),
            None => "unknown".into(),
        };
        self.pid = r.pid;
        self.process_state = r.proc_state.clone();
        let stopped = matches!(r.proc_state.as_deref(), Some("T") | Some("t"));
        let listening = r.listening.unwrap_or(false) || r.pid.is_some();
        self.process = if stopped {
            "frozen".into()
        } else if self.monitor != "ok"
            && listening
            && self.monitor_error_kind.as_deref() == Some("timeout")
        {
            // Something holds the port but the monitor does not answer in time.
            "frozen".into()
        } else if listening || self.monitor == "ok" {
            "running".into()
        } else if r.listening.is_some() {
            "absent".into()
        } else {
            "unknown".into()
        };

        for t in &r.tcp {
            self.peer_tcp.insert(t.peer.clone(), t.result.clone());
        }
        for d in &r.dns {
            self.peer_dns.insert(
                d.peer.clone(),
                DnsFacts {
                    host: d.host.clone(),
                    status: d.status.clone(),
                    addresses: d.addresses.clone(),
                },
            );
        }
        for d in &r.route_dns {
            self.route_dns.insert(
                d.host.clone(),
                DnsFacts {
                    host: d.host.clone(),
                    status: d.status.clone(),
                    addresses: d.addresses.clone(),
                },
            );
        }
        if let Some((l1, l5, l15)) = r.loadavg {
            self.load = Some(LoadFacts {
                load1: l1,
                load5: l5,
                load15: l15,
                cpus: r.nproc,
            });
        }
        if let (Some(t), Some(a)) = (r.mem_total_kb, r.mem_available_kb) {
            let pct = if t > 0 {
                a as f64 * 100.0 / t as f64
            } else {
                0.0
            };
            self.memory = Some(MemFacts {
                total_kb: t,
                available_kb: a,
                available_pct: round1(pct),
            });
        }
        if let Some(d) = &r.df {
            let denom = d.used_kb + d.available_kb;
            let pct = if denom > 0 {
                d.used_kb as f64 * 100.0 / denom as f64
            } else {
                0.0
            };
            self.disk = Some(DiskFacts {
                path: r.store_dir.clone(),
                total_kb: d.total_kb,
                used_kb: d.used_kb,
                available_kb: d.available_kb,
                used_pct: round1(pct),
                mount: d.mount.clone(),
            });
        }
        self.store_dir_exists = r.store_exists;
        let snap = r.snapshots.iter().max().copied();
        self.disk_raft = DiskRaftFacts {
            meta_dir_exists: r.meta_exists,
            term: r.tav.as_ref().map(|t| t.0),
            vote: r
                .tav
                .as_ref()
                .map(|t| t.1.clone())
                .filter(|v| !v.is_empty()),
            snapshot_term: snap.map(|s| s.0),
            snapshot_index: snap.map(|s| s.1),
            commit_index: r.commit_index,
            peers_cluster_size: r.peers_idx.as_ref().map(|p| p.0),
            peers: r
                .peers_idx
                .as_ref()
                .map(|p| p.1.clone())
                .unwrap_or_default(),
            wal_files: r.wal.map(|w| w.0),
            wal_bytes: r.wal.map(|w| w.1),
            wal_last_index: r.wal_last_index,
        };
        self.disk_term = self.disk_raft.term;

        if !r.config_routes.is_empty() {
            self.configured_routes = r.config_routes.clone();
            self.configured_routes_source = Some("config".into());
        }
        self.firewall_rules = r.firewall.clone();

        // Raft from disk when the server cannot tell us.
        let disk_index = [
            self.disk_raft.snapshot_index,
            self.disk_raft.commit_index,
            self.disk_raft.wal_last_index,
        ]
        .into_iter()
        .flatten()
        .max();
        match self.raft.source.as_deref() {
            Some("raftz") => {}
            Some("jsz") => {
                if self.raft.term.is_none() {
                    self.raft.term = self.disk_raft.term;
                }
                if self.raft.index.is_none() {
                    self.raft.index = disk_index;
                    self.raft.index_estimated = disk_index.is_some();
                }
                if self.raft.log_term.is_none() {
                    self.raft.log_term = self.disk_raft.snapshot_term;
                }
            }
            _ => {
                if self.disk_raft.term.is_some() || disk_index.is_some() {
                    self.raft.term = self.disk_raft.term;
                    self.raft.index = disk_index;
                    self.raft.index_estimated = disk_index.is_some();
                    self.raft.log_term = self.disk_raft.snapshot_term;
                    self.raft.voted_for = self.disk_raft.vote.clone();
                    self.raft.source = Some("disk".into());
                }
                if self.cluster_size.is_none() {
                    self.cluster_size = self.disk_raft.peers_cluster_size;
                }
            }
        }
    }

    /// The monitoring port answered.
    pub fn is_up(&self) -> bool {
        self.monitor == "ok" && self.process != "frozen"
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn short(body: &str) -> String {
    let t = body.trim();
    let s: String = t.chars().take(120).collect();
    if s.len() < t.len() {
        format!("{s}…")
    } else {
        s
    }
}

// ---- cluster ----------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LeaderClaim {
    pub node: String,
    /// The leader this node names (None = sees no leader).
    pub sees: Option<String>,
    pub state: Option<String>,
    pub term: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LeaderAgreement {
    /// The best-supported leader, even when not enough nodes agree.
    pub candidate: Option<String>,
    /// Nodes that name `candidate`.
    pub agree: Vec<String>,
    pub count: usize,
    /// Agreeing nodes needed (the inventory's quorum).
    pub needed: usize,
    /// Nodes whose monitor answered.
    pub responding: usize,
    /// What every responding node says.
    pub claims: Vec<LeaderClaim>,
    /// Nodes that say they are LEADER but lost to `candidate` (stale ex-leaders).
    pub stale_leaders: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RankEntry {
    pub node: String,
    pub log_term: Option<u64>,
    pub index: Option<u64>,
    pub term: Option<u64>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PeerSetDrift {
    pub node: String,
    pub cluster_size: u64,
    pub expected: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CutLink {
    pub from: String,
    pub to: String,
    /// `host:cluster_port` of `to`.
    pub address: String,
    pub result: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DnsFailure {
    pub node: String,
    pub peer: String,
    pub host: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RouteMismatch {
    pub node: String,
    pub configured: Vec<String>,
    pub expected: Vec<String>,
    /// Configured routes that point at no inventory node.
    pub unknown: Vec<String>,
    /// Peers no configured route points at.
    pub missing: Vec<String>,
    /// `config` | `varz`
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ResourcePressure {
    pub node: String,
    /// `load` | `memory` | `disk`
    pub kind: String,
    pub value: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StreamSummary {
    pub account: String,
    pub name: String,
    pub max_messages: Option<u64>,
    /// Node → messages it reports.
    pub messages_by_node: BTreeMap<String, u64>,
}

/// The whole cluster, judged across all nodes. Runbooks see it as `facts`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ClusterFacts {
    pub cluster: String,
    /// Servers in the inventory.
    pub size: usize,
    /// Majority of `size`.
    pub quorum: usize,
    pub nodes: BTreeMap<String, NodeFacts>,
    pub node_list: Vec<NodeFacts>,
    /// Server running and answering its monitoring port.
    pub up: Vec<String>,
    /// Server process not running (service inactive / nothing listening / connection refused).
    pub down: Vec<String>,
    /// Neither SSH nor monitoring answers.
    pub unreachable: Vec<String>,
    /// Process exists but is stopped (state T) or does not answer.
    pub frozen: Vec<String>,
    /// Frozen nodes whose process is not stopped by a signal (state T): starved or hung,
    /// so resuming will not help and a restart is needed.
    pub unresponsive: Vec<String>,
    /// Inventory nodes that were not probed (left out by `nodes_limit`): no verdict on them.
    pub not_probed: Vec<String>,
    /// Up nodes that see no meta leader.
    pub leaderless: Vec<String>,
    pub has_leader: bool,
    pub leader: Option<String>,
    pub leader_agreement: LeaderAgreement,
    pub healthy: bool,
    pub max_term: Option<u64>,
    pub min_term: Option<u64>,
    pub term_spread: Option<u64>,
    pub index_spread: Option<u64>,
    /// Node → term (raftz when up, disk when down).
    pub terms: BTreeMap<String, u64>,
    /// Node with the most complete log: highest log term (pterm), then index, then term.
    pub most_up_to_date: Option<String>,
    pub up_to_date_ranking: Vec<RankEntry>,
    pub peer_set_drift: Vec<PeerSetDrift>,
    pub cut_links: Vec<CutLink>,
    pub dns_failures: Vec<DnsFailure>,
    pub route_mismatch: Vec<RouteMismatch>,
    pub resource_pressure: Vec<ResourcePressure>,
    pub streams: Vec<StreamSummary>,
    /// Derived causes, most likely first.
    pub signals: Vec<Signal>,
    /// cause → signal.
    pub signal: BTreeMap<String, Signal>,
}

/// `host:port` of a route URL (`nats://user:pw@host:port` → `host:port`), lowercased.
pub fn route_host_port(url: &str) -> Option<(String, u16)> {
    let s = url
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == ',');
    let s = s.split("://").nth(1).unwrap_or(s);
    let s = s.rsplit('@').next().unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (h, p) = s.rsplit_once(':')?;
    let h = h
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    Some((h, p.parse().ok()?))
}

fn is_ip(h: &str) -> bool {
    h.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

fn is_loopback_name(h: &str) -> bool {
    h == "localhost"
        || h.parse::<IpAddr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
}

/// When load, memory or disk count as pressure. Knowledge of the `resource-exhaustion`
/// runbook: its variables (`load_per_cpu`, `memory_available_pct`, `disk_used_pct`) set
/// them, these are the defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Load average above this many times the CPU count.
    pub load_per_cpu: f64,
    /// Available memory below this percentage.
    pub memory_available_pct: f64,
    /// The store dir's filesystem used above this percentage.
    pub disk_used_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            load_per_cpu: 2.0,
            memory_available_pct: 5.0,
            disk_used_pct: 95.0,
        }
    }
}

impl Thresholds {
    /// From runbook variables (resolved, as strings); a missing or unparsable one keeps its
    /// default.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Thresholds {
        let d = Thresholds::default();
        let get = |k: &str, dflt: f64| {
            vars.get(k)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite())
                .unwrap_or(dflt)
        };
        Thresholds {
            load_per_cpu: get("load_per_cpu", d.load_per_cpu),
            memory_available_pct: get("memory_available_pct", d.memory_available_pct),
            disk_used_pct: get("disk_used_pct", d.disk_used_pct),
        }
    }
}

impl ClusterFacts {
    /// [`ClusterFacts::build_with`] the default thresholds.
    pub fn build(inv: &Inventory, nodes: Vec<NodeFacts>) -> ClusterFacts {
        Self::build_with(inv, nodes, &Thresholds::default())
    }

    /// Judges the nodes' facts together. `nodes` may be in any order and may lack some
    /// inventory nodes (they are then treated as not probed).
    pub fn build_with(inv: &Inventory, nodes: Vec<NodeFacts>, th: &Thresholds) -> ClusterFacts {
        let size = inv.nodes.len();
        let quorum = inv.quorum();
        let mut by_name: BTreeMap<String, NodeFacts> =
            nodes.into_iter().map(|n| (n.name.clone(), n)).collect();

        // 2.9.10 routes name server ids: map them to names via the nodes' varz.server_id.
        let id_to_name: BTreeMap<String, String> = by_name
            .values()
            .filter_map(|n| {
                Some((
                    n.server_id.clone()?,
                    n.server_name.clone().unwrap_or_else(|| n.name.clone()),
                ))
            })
            .collect();
        // Raft peer id → name: derived from every inventory name (FACTS §1).
        let peer_to_name: BTreeMap<String, String> = inv
            .nodes
            .iter()
            .map(|n| (monitor::peer_id(&n.name), n.name.clone()))
            .collect();
        for n in by_name.values_mut() {
            let mut peers: Vec<String> = n
                .route_peers
                .iter()
                .map(|p| id_to_name.get(p).cloned().unwrap_or_else(|| p.clone()))
                .collect();
            peers.sort();
            peers.dedup();
            n.route_peers = peers;
            let mut uns: Vec<String> = n
                .unsolicited_route_peers
                .iter()
                .map(|p| id_to_name.get(p).cloned().unwrap_or_else(|| p.clone()))
                .collect();
            uns.sort();
            uns.dedup();
            n.unsolicited_route_peers = uns;
            if n.meta_leader.is_none() {
                if let Some(lp) = &n.meta_leader_peer {
                    n.meta_leader = peer_to_name.get(lp).cloned();
                }
            }
            if n.host.is_empty() {
                if let Some(node) = inv.node(&n.name) {
                    n.host = node.host.clone();
                }
            }
        }

        let order: Vec<String> = inv
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .chain(
                by_name
                    .keys()
                    .filter(|k| inv.node(k).is_none())
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .collect();

        let mut f = ClusterFacts {
            cluster: inv.cluster.clone(),
            size,
            quorum,
            ..Default::default()
        };

        for name in &order {
            let Some(n) = by_name.get(name) else { continue };
            if n.ssh == "not probed" && n.monitor == "not probed" {
                f.not_probed.push(name.clone());
            } else if n.process == "frozen" {
                f.frozen.push(name.clone());
                if !matches!(n.process_state.as_deref(), Some("T") | Some("t")) {
                    f.unresponsive.push(name.clone());
                }
            } else if n.monitor == "ok" {
                f.up.push(name.clone());
            } else if n.process == "absent"
                || n.service == "inactive"
                || n.monitor_error_kind.as_deref() == Some("refused")
            {
                f.down.push(name.clone());
            } else if n.ssh.starts_with("error") || n.ssh == "not probed" {
                f.unreachable.push(name.clone());
            } else {
                // SSH works, process state unknown, monitor does not answer: treat as down
                // only when nothing listens; otherwise unreachable (monitor firewalled?).
                f.unreachable.push(name.clone());
            }
        }
        // Inventory nodes left out of the gather (`nodes_limit`).
        for n in &inv.nodes {
            if !by_name.contains_key(&n.name) {
                f.not_probed.push(n.name.clone());
            }
        }

        // ---- leadership, judged across all nodes ----
        let responding: Vec<&NodeFacts> = order
            .iter()
            .filter_map(|n| by_name.get(n))
            .filter(|n| n.is_up())
            .collect();
        let claims: Vec<LeaderClaim> = responding
            .iter()
            .map(|n| LeaderClaim {
                node: n.name.clone(),
                sees: n.meta_leader.clone(),
                state: n.raft.state.clone(),
                term: n.raft.term,
            })
            .collect();
        let mut support: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in &claims {
            if let Some(l) = &c.sees {
                support.entry(l.clone()).or_default().push(c.node.clone());
            }
        }
        // The claimed leader's own term (or the best term among its supporters).
        let term_of = |leader: &str, supporters: &[String]| -> u64 {
            by_name
                .get(leader)
                .filter(|n| n.is_up())
                .and_then(|n| n.raft.term)
                .or_else(|| {
                    supporters
                        .iter()
                        .filter_map(|s| by_name.get(s).and_then(|n| n.raft.term))
                        .max()
                })
                .unwrap_or(0)
        };
        let best = support
            .iter()
            .max_by(|a, b| {
                a.1.len()
                    .cmp(&b.1.len())
                    .then_with(|| term_of(a.0, a.1).cmp(&term_of(b.0, b.1)))
            })
            .map(|(l, s)| (l.clone(), s.clone()));
        let mut agreement = LeaderAgreement {
            needed: quorum,
            responding: responding.len(),
            claims: claims.clone(),
            ..Default::default()
        };
        if let Some((l, s)) = best {
            agreement.count = s.len();
            agreement.agree = s;
            agreement.candidate = Some(l.clone());
            // A node that says it leads but is not the candidate is a stale ex-leader.
            agreement.stale_leaders = claims
                .iter()
                .filter(|c| c.sees.as_deref() == Some(c.node.as_str()) && c.node != l)
                .map(|c| c.node.clone())
                .collect();
        }
        f.has_leader = agreement.count >= quorum && agreement.count * 2 > responding.len();
        f.leader = if f.has_leader {
            agreement.candidate.clone()
        } else {
            None
        };
        f.leader_agreement = agreement;
        f.leaderless = responding
            .iter()
            .filter(|n| n.meta_leader.is_none())
            .map(|n| n.name.clone())
            .collect();

        let all_health_ok = inv.nodes.iter().all(|n| {
            by_name
                .get(&n.name)
                .map(|f| f.healthz.status == Some(200))
                .unwrap_or(false)
        });
        f.healthy = f.has_leader && all_health_ok && f.up.len() == size;

        // ---- terms and logs ----
        let mut ranking = Vec::new();
        for name in &order {
            let Some(n) = by_name.get(name) else { continue };
            if let Some(t) = n.raft.term {
                f.terms.insert(name.clone(), t);
            }
            if n.raft.term.is_some() || n.raft.index.is_some() {
                ranking.push(RankEntry {
                    node: name.clone(),
                    log_term: n.raft.log_term,
                    index: n.raft.index,
                    term: n.raft.term,
                    source: n.raft.source.clone(),
                });
            }
        }
        f.max_term = f.terms.values().max().copied();
        f.min_term = f.terms.values().min().copied();
        f.term_spread = match (f.max_term, f.min_term) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        let idx: Vec<u64> = ranking.iter().filter_map(|r| r.index).collect();
        f.index_spread = match (idx.iter().max(), idx.iter().min()) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        // Raft's "up to date": last log term, then last index. The current term alone misleads:
        // a partitioned candidate inflates it without gaining log entries.
        ranking.sort_by(|a, b| {
            let ka = (
                a.log_term.or(a.term).unwrap_or(0),
                a.index.unwrap_or(0),
                a.term.unwrap_or(0),
            );
            let kb = (
                b.log_term.or(b.term).unwrap_or(0),
                b.index.unwrap_or(0),
                b.term.unwrap_or(0),
            );
            kb.cmp(&ka)
        });
        f.most_up_to_date = ranking.first().map(|r| r.node.clone());
        f.up_to_date_ranking = ranking;

        // ---- peer set ----
        for name in &order {
            let Some(n) = by_name.get(name) else { continue };
            if let Some(cs) = n.cluster_size {
                if cs as usize != size {
                    f.peer_set_drift.push(PeerSetDrift {
                        node: name.clone(),
                        cluster_size: cs,
                        expected: size,
                    });
                }
            }
        }

        // ---- links, DNS ----
        for name in &order {
            let Some(n) = by_name.get(name) else { continue };
            for (peer, res) in &n.peer_tcp {
                if res != "ok" {
                    let address = inv
                        .node(peer)
                        .map(|p| format!("{}:{}", p.host, p.nats.cluster_port))
                        .unwrap_or_default();
                    f.cut_links.push(CutLink {
                        from: name.clone(),
                        to: peer.clone(),
                        address,
                        result: res.clone(),
                    });
                }
            }
            for (peer, d) in &n.peer_dns {
                if d.status != "ok" {
                    f.dns_failures.push(DnsFailure {
                        node: name.clone(),
                        peer: peer.clone(),
                        host: d.host.clone(),
                    });
                }
            }
            for (host, d) in &n.route_dns {
                if d.status != "ok" && !n.peer_dns.values().any(|p| &p.host == host) {
                    // Name the inventory node this route host stands for (same name or host).
                    let peer = inv
                        .nodes
                        .iter()
                        .find(|p| &p.name == host || &p.host == host)
                        .map(|p| p.name.clone())
                        .unwrap_or_default();
                    f.dns_failures.push(DnsFailure {
                        node: name.clone(),
                        peer,
                        host: host.clone(),
                    });
                }
            }
        }

        // ---- configured routes vs inventory ----
        for name in &order {
            let Some(n) = by_name.get(name) else { continue };
            if n.configured_routes.is_empty() {
                continue;
            }
            if let Some(m) = route_mismatch(inv, n) {
                f.route_mismatch.push(m);
            }
        }

        // ---- resources ----
        for name in &order {
            let Some(n) = by_name.get(name) else { continue };
            if let Some(l) = &n.load {
                if let Some(c) = l.cpus.filter(|c| *c > 0) {
                    if l.load1 > th.load_per_cpu * c as f64 {
                        f.resource_pressure.push(ResourcePressure {
                            node: name.clone(),
                            kind: "load".into(),
                            value: l.load1,
                            detail: format!(
                                "load {:.2} on {c} CPUs (> {}× CPUs)",
                                l.load1, th.load_per_cpu
                            ),
                        });
                    }
                }
            }
            if let Some(m) = &n.memory {
                if m.total_kb > 0 && m.available_pct < th.memory_available_pct {
                    f.resource_pressure.push(ResourcePressure {
                        node: name.clone(),
                        kind: "memory".into(),
                        value: m.available_pct,
                        detail: format!(
                            "MemAvailable {} MiB of {} MiB ({:.1}%)",
                            m.available_kb / 1024,
                            m.total_kb / 1024,
                            m.available_pct
                        ),
                    });
                }
            }
            if let Some(d) = &n.disk {
                if d.used_pct > th.disk_used_pct {
                    f.resource_pressure.push(ResourcePressure {
                        node: name.clone(),
                        kind: "disk".into(),
                        value: d.used_pct,
                        detail: format!(
                            "{} is {:.1}% full ({} MiB free on {})",
                            d.path,
                            d.used_pct,
                            d.available_kb / 1024,
                            d.mount
                        ),
                    });
                }
            }
        }

        // ---- streams ----
        let mut streams: BTreeMap<(String, String), StreamSummary> = BTreeMap::new();
        for name in &order {
            let Some(n) = by_name.get(name) else { continue };
            for s in &n.streams {
                let e = streams
                    .entry((s.account.clone(), s.name.clone()))
                    .or_insert_with(|| StreamSummary {
                        account: s.account.clone(),
                        name: s.name.clone(),
                        ..Default::default()
                    });
                if let Some(m) = s.messages {
                    e.messages_by_node.insert(name.clone(), m);
                    e.max_messages = Some(e.max_messages.map_or(m, |x| x.max(m)));
                }
            }
        }
        f.streams = streams.into_values().collect();

        // Healthy means nothing left to explain: every server agrees on the leader (an isolated
        // ex-leader can still answer /healthz 200 for ~13 s), and every node reaches every peer.
        f.healthy = f.healthy
            && f.leader_agreement.stale_leaders.is_empty()
            && f.leader_agreement.agree.len() == f.up.len()
            && !f.cut_links.iter().any(|l| l.result != "ok");
        f.node_list = order
            .iter()
            .filter_map(|n| by_name.get(n).cloned())
            .collect();
        f.nodes = by_name;
        f.signals = signals::signals(&f);
        f.signal = f
            .signals
            .iter()
            .map(|s| (s.cause.clone(), s.clone()))
            .collect();
        f
    }

    pub fn node(&self, name: &str) -> Option<&NodeFacts> {
        self.nodes.get(name)
    }
}

/// Compares one node's configured routes with the inventory. None when they agree.
fn route_mismatch(inv: &Inventory, n: &NodeFacts) -> Option<RouteMismatch> {
    let expected: Vec<String> = inv
        .nodes
        .iter()
        .map(|x| format!("{}:{}", x.host, x.nats.cluster_port))
        .collect();
    let mut matched_peers: BTreeSet<String> = BTreeSet::new();
    let mut unknown = Vec::new();
    for url in &n.configured_routes {
        let Some((h, p)) = route_host_port(url) else {
            unknown.push(url.clone());
            continue;
        };
        let hits: Vec<&Node> = inv
            .nodes
            .iter()
            .filter(|x| route_matches(n, &h, p, x))
            .collect();
        if hits.is_empty() {
            unknown.push(url.clone());
        }
        for x in hits {
            matched_peers.insert(x.name.clone());
        }
    }
    let missing: Vec<String> = inv
        .nodes
        .iter()
        .filter(|x| x.name != n.name && !matched_peers.contains(&x.name))
        .map(|x| x.name.clone())
        .collect();
    let reaches_peer = matched_peers.iter().any(|p| p != &n.name);
    // Routes need not list every peer (the cluster gossips), so `missing` alone is fine as long
    // as something valid is configured. Routes pointing nowhere are always suspicious.
    if unknown.is_empty() && (reaches_peer || inv.nodes.len() <= 1) {
        return None;
    }
    Some(RouteMismatch {
        node: n.name.clone(),
        configured: n.configured_routes.clone(),
        expected,
        unknown,
        missing,
        source: n.configured_routes_source.clone(),
    })
}

/// Does route `h:p` (as configured on node `on`) point at inventory node `x`?
fn route_matches(on: &NodeFacts, h: &str, p: u16, x: &Node) -> bool {
    if p != x.nats.cluster_port {
        return false;
    }
    let xh = x.host.to_ascii_lowercase();
    if h == xh {
        return true;
    }
    if is_loopback_name(h) && is_loopback_name(&xh) {
        return true;
    }
    // Resolve both sides with what the node told us.
    let route_addrs: Option<&Vec<String>> = on
        .route_dns
        .get(h)
        .filter(|d| d.status == "ok")
        .map(|d| &d.addresses);
    let peer_addrs: Vec<String> = if is_ip(&xh) {
        vec![xh.clone()]
    } else {
        on.peer_dns
            .get(&x.name)
            .filter(|d| d.status == "ok")
            .map(|d| d.addresses.clone())
            .unwrap_or_default()
    };
    let route_set: Vec<String> = if is_ip(h) {
        vec![h.to_string()]
    } else {
        route_addrs.cloned().unwrap_or_default()
    };
    if !route_set.is_empty() && !peer_addrs.is_empty() {
        return route_set.iter().any(|a| peer_addrs.contains(a));
    }
    // One side is a hostname we could not resolve: cannot tell, do not accuse.
    !(is_ip(h) && is_ip(&xh))
}
