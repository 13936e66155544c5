//! Facts about one node ([`NodeFacts`]); the cluster-wide judgement is in `cluster`.
//!
//! `NodeFacts` is built in two halves so each is testable alone: [`NodeFacts::from_http`]
//! (monitoring endpoint bodies + status codes) and [`NodeFacts::apply_shell`] (the SSH probe
//! report). [`ClusterFacts::build`] judges them together; it is what runbook templates see as
//! `facts` (snake_case names, maps keyed by node name).

use super::monitor::{self, Healthz, Jsz, MetaCluster, Raftz, Routez, Varz};
use super::probe::ShellReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One HTTP answer (any status) or why there was none.
pub type HttpResult = Result<(u16, String), String>;

/// Monitoring answers of one node. `None` = not requested.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// Why nats-rescue cannot manage this node although it may be up: host key refused,
    /// authentication failed, sudo needs a password, jump host down. `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmanageable: Option<String>,
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
    /// Seconds since the server started (`/varz` `now - start`).
    pub uptime_s: Option<u64>,
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
    /// The config file read over SSH and parsed (secrets removed; see `configfacts`).
    pub config: Option<super::configfacts::ConfigFacts>,
    /// The config file is writable by the probe's user (false on a read-only config map).
    pub config_writable: Option<bool>,
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
    /// The parsed `/jsz` (with stream and consumer groups), for the cluster-wide group
    /// judgement (`ClusterFacts::groups`); not shown itself.
    #[serde(skip)]
    pub jsz: Option<Jsz>,
    /// Where the monitoring values came from: `http` (this node's monitor port) or `system`
    /// (the system account, when the monitor port did not answer); None when neither did.
    pub source: Option<String>,
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
            f.uptime_s = uptime_s(v.start.as_deref(), v.now.as_deref());
            if let Some(c) = &v.cluster {
                if !c.urls.is_empty() {
                    // `host:port` as servers print them; any credentials are taken out.
                    f.configured_routes = c
                        .urls
                        .iter()
                        .map(|u| {
                            crate::natsconf::RouteUrl::parse(u)
                                .map_or_else(|_| crate::natsconf::redact(u), |r| r.redacted())
                        })
                        .collect();
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
                        name: s.name.clone(),
                        messages: s.state.as_ref().and_then(|st| st.messages),
                        bytes: s.state.as_ref().and_then(|st| st.bytes),
                        last_seq: s.state.as_ref().and_then(|st| st.last_seq),
                        leader: s.cluster.as_ref().and_then(|c| c.leader.clone()),
                        raft_group: s.cluster.as_ref().and_then(|c| c.raft_group.clone()),
                    });
                }
            }
        }

        f.jsz = jsz;
        if f.monitor == "ok" {
            f.process = "running".into();
            f.source = Some("http".into());
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
        self.config = r.config.clone();
        self.config_writable = r.config_writable;
        if let Some(e) = r.config.as_ref().and_then(|c| c.error.as_ref()) {
            self.errors.push(format!("config: {e}"));
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

/// Whole seconds between `/varz` `start` and `now` (both RFC 3339, the server's clock).
pub fn uptime_s(start: Option<&str>, now: Option<&str>) -> Option<u64> {
    let p = |t: &str| chrono::DateTime::parse_from_rfc3339(t.trim()).ok();
    let (a, b) = (p(start?)?, p(now?)?);
    u64::try_from((b - a).num_seconds()).ok()
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

pub use super::cluster::*;
pub use super::routes::route_host_port;
