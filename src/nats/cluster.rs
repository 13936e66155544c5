//! The whole cluster judged across its nodes ([`ClusterFacts`]): membership, the leader a
//! majority agrees on, terms and logs, links, DNS, routes, resources, streams, and the
//! derived signals. Each section of [`ClusterFacts::build_with`] is its own function.

use super::facts::NodeFacts;
use super::monitor;
use super::routes::route_mismatch;
use super::signals::{self, Signal};
use crate::inventory::Inventory;
use crate::natsys::groups::{combine, GroupFacts, ServerJsz};
use serde::Serialize;
use std::collections::BTreeMap;

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

/// A meta peer that matches no server of the inventory: the old name of a renamed or
/// replaced server (FACTS §9). It counts toward the quorum and can never vote.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StalePeer {
    pub name: String,
    pub peer: Option<String>,
    /// Some server reports it offline.
    pub offline: bool,
    /// Seconds since a server last heard from it; `None`: not since that server started.
    pub last_seen_s: Option<u64>,
    /// The servers whose meta peer list names it.
    pub reported_by: Vec<String>,
}

/// A node nats-rescue cannot manage (SSH refused, sudo needs a password, jump host down),
/// whatever NATS says about it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Unmanageable {
    pub node: String,
    pub reason: String,
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
    /// Why `healthy` is false, one short sentence each (empty when healthy): what a failed
    /// verify reports, so "did not hold within 2m" comes with its reason.
    pub not_healthy: Vec<String>,
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
    /// The meta group's size as the answering servers count it (the largest `cluster_size`
    /// they report): the real peer set, which can be larger than the inventory.
    pub meta_size: Option<usize>,
    /// Votes a meta leader needs: a majority of `meta_size` (never less than `quorum`).
    pub meta_quorum: usize,
    /// Meta peers that match no inventory server (renamed or replaced servers' old names).
    pub stale_peers: Vec<StalePeer>,
    pub cut_links: Vec<CutLink>,
    pub dns_failures: Vec<DnsFailure>,
    pub route_mismatch: Vec<RouteMismatch>,
    pub resource_pressure: Vec<ResourcePressure>,
    pub streams: Vec<StreamSummary>,
    /// Nodes that cannot be managed; the cluster is not healthy while any is listed.
    pub unmanageable: Vec<Unmanageable>,
    /// Stream and consumer Raft groups judged across every server's `/jsz` (FACTS §12.1),
    /// sorted by account, stream, consumer.
    pub groups: Vec<GroupFacts>,
    /// Groups without a leader or with a replica that is missing or not current.
    pub unhealthy_groups: Vec<String>,
    /// The youngest answering server's uptime in seconds (`/varz`).
    pub min_uptime_s: Option<u64>,
    /// Derived causes, most likely first.
    pub signals: Vec<Signal>,
    /// cause → signal.
    pub signal: BTreeMap<String, Signal>,
}

/// Nodes whose facts say they cannot be managed, in inventory order.
fn unmanageable(order: &[String], by_name: &BTreeMap<String, NodeFacts>) -> Vec<Unmanageable> {
    order
        .iter()
        .filter_map(|n| {
            let reason = by_name.get(n)?.unmanageable.clone()?;
            Some(Unmanageable {
                node: n.clone(),
                reason,
            })
        })
        .collect()
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

        let scope = Scope {
            inv,
            by_name: &by_name,
            order: &order,
            size,
            quorum,
            th,
        };
        leadership(&mut f, &scope);
        terms_and_logs(&mut f, &scope);
        peer_set(&mut f, &scope);
        links_and_dns(&mut f, &scope);
        configured_routes(&mut f, &scope);
        resources(&mut f, &scope);
        streams(&mut f, &scope);
        groups(&mut f, &scope);
        f.min_uptime_s =
            f.up.iter()
                .filter_map(|n| by_name.get(n).and_then(|x| x.uptime_s))
                .min();

        // Healthy means nothing left to explain: every server agrees on the leader (an isolated
        // ex-leader can still answer /healthz 200 for ~13 s), and every node reaches every peer.
        f.unmanageable = unmanageable(&order, &by_name);
        f.not_healthy = not_healthy(&f, &scope);
        f.healthy = f.healthy
            && f.unmanageable.is_empty()
            && f.leader_agreement.stale_leaders.is_empty()
            && f.leader_agreement.agree.len() == f.up.len()
            && !f.cut_links.iter().any(|l| l.result != "ok")
            && f.unhealthy_groups.is_empty();
        if f.healthy {
            f.not_healthy.clear();
        } else if f.not_healthy.is_empty() {
            f.not_healthy.push("not every check passed".into());
        }
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

/// What every section of [`ClusterFacts::build_with`] reads.
struct Scope<'a> {
    inv: &'a Inventory,
    by_name: &'a BTreeMap<String, NodeFacts>,
    /// Inventory order, then nodes the inventory does not know.
    order: &'a [String],
    size: usize,
    quorum: usize,
    th: &'a Thresholds,
}

/// Leadership, judged across all nodes.
fn leadership(f: &mut ClusterFacts, s: &Scope<'_>) {
    let responding: Vec<&NodeFacts> = s
        .order
        .iter()
        .filter_map(|n| s.by_name.get(n))
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
        s.by_name
            .get(leader)
            .filter(|n| n.is_up())
            .and_then(|n| n.raft.term)
            .or_else(|| {
                supporters
                    .iter()
                    .filter_map(|x| s.by_name.get(x).and_then(|n| n.raft.term))
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
        needed: s.quorum,
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
    f.has_leader = agreement.count >= s.quorum && agreement.count * 2 > responding.len();
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

    let all_health_ok = s.inv.nodes.iter().all(|n| {
        s.by_name
            .get(&n.name)
            .map(|f| f.healthz.status == Some(200))
            .unwrap_or(false)
    });
    f.healthy = f.has_leader && all_health_ok && f.up.len() == s.size;
}

/// The reasons behind `healthy == false`, in the order an operator would look at them.
fn not_healthy(f: &ClusterFacts, s: &Scope<'_>) -> Vec<String> {
    let mut why = Vec::new();
    if !f.has_leader {
        why.push("no meta leader".to_string());
    }
    for n in &s.inv.nodes {
        let Some(x) = s.by_name.get(&n.name) else {
            why.push(format!("{}: not probed", n.name));
            continue;
        };
        if !f.up.contains(&n.name) {
            why.push(format!("{}: not up", n.name));
        } else if x.healthz.status != Some(200) {
            let status = x
                .healthz
                .status
                .map_or_else(|| "no answer".to_string(), |c| c.to_string());
            let text = x.healthz.text.as_deref().unwrap_or("").trim();
            why.push(
                format!("{}: /healthz {status} {text}", n.name)
                    .trim_end()
                    .to_string(),
            );
        }
    }
    for u in &f.unmanageable {
        why.push(format!("{}: cannot be managed ({})", u.node, u.reason));
    }
    for l in &f.leader_agreement.stale_leaders {
        why.push(format!("{l}: still claims to lead"));
    }
    if f.has_leader {
        let leader = f.leader.as_deref().unwrap_or("?");
        for n in
            f.up.iter()
                .filter(|n| !f.leader_agreement.agree.contains(n))
        {
            why.push(format!("{n}: does not name the leader {leader}"));
        }
    }
    for l in f.cut_links.iter().filter(|l| l.result != "ok") {
        why.push(format!("{} cannot reach {} ({})", l.from, l.to, l.result));
    }
    for g in f.groups.iter().filter(|g| !g.healthy) {
        if g.problems.is_empty() {
            why.push(format!("{}: not healthy", g.label()));
        } else {
            why.push(format!("{}: {}", g.label(), g.problems.join("; ")));
        }
    }
    why
}

/// Terms and logs.
fn terms_and_logs(f: &mut ClusterFacts, s: &Scope<'_>) {
    let mut ranking = Vec::new();
    for name in s.order {
        let Some(n) = s.by_name.get(name) else {
            continue;
        };
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
}

/// Peer set: drift per node, the real meta size and quorum, and the stale peers.
fn peer_set(f: &mut ClusterFacts, s: &Scope<'_>) {
    let known: Vec<String> = s
        .inv
        .nodes
        .iter()
        .flat_map(|n| {
            let server = s.by_name.get(&n.name).and_then(|x| x.server_name.clone());
            std::iter::once(n.name.clone()).chain(server)
        })
        .collect();
    f.meta_quorum = s.quorum;
    // A server may list a peer as "Server name unknown at this time (peerID: X)" (a renamed
    // server that leads does not know its own old name): another server's name for X counts.
    let mut names_by_peer: BTreeMap<String, String> = BTreeMap::new();
    for n in s.order.iter().filter_map(|name| s.by_name.get(name)) {
        for r in &n.replicas {
            if let (Some(id), Some(rn)) = (&r.peer, &r.name) {
                names_by_peer
                    .entry(id.clone())
                    .or_insert_with(|| rn.clone());
            }
        }
    }
    let mut stale: BTreeMap<String, StalePeer> = BTreeMap::new();
    for name in s.order {
        let Some(n) = s.by_name.get(name) else {
            continue;
        };
        // Only servers that answer now: a stopped server's disk view may be old.
        if n.monitor == "ok" {
            if let Some(cs) = n.cluster_size {
                let cs = usize::try_from(cs).unwrap_or(usize::MAX);
                f.meta_size = Some(f.meta_size.map_or(cs, |m| m.max(cs)));
            }
            for r in &n.replicas {
                let resolved = r.name.clone().or_else(|| {
                    r.peer
                        .as_ref()
                        .and_then(|id| names_by_peer.get(id).cloned())
                });
                let Some(rn) = resolved.as_deref().filter(|x| !x.is_empty()) else {
                    continue;
                };
                if known.iter().any(|k| k == rn) {
                    continue;
                }
                let e = stale.entry(rn.to_string()).or_insert_with(|| StalePeer {
                    name: rn.to_string(),
                    peer: r.peer.clone(),
                    ..StalePeer::default()
                });
                e.offline |= r.offline == Some(true);
                let seen = r.active_ns.filter(|a| *a > 0).map(|a| a / 1_000_000_000);
                e.last_seen_s = match (e.last_seen_s, seen) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                e.reported_by.push(name.clone());
            }
        }
        if let Some(cs) = n.cluster_size {
            if cs as usize != s.size {
                f.peer_set_drift.push(PeerSetDrift {
                    node: name.clone(),
                    cluster_size: cs,
                    expected: s.size,
                });
            }
        }
    }
    if let Some(m) = f.meta_size {
        f.meta_quorum = f.meta_quorum.max(m / 2 + 1);
    }
    f.stale_peers = stale.into_values().collect();
}

/// Links, DNS.
fn links_and_dns(f: &mut ClusterFacts, s: &Scope<'_>) {
    for name in s.order {
        let Some(n) = s.by_name.get(name) else {
            continue;
        };
        for (peer, res) in &n.peer_tcp {
            if res != "ok" {
                let address = s
                    .inv
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
                let peer = s
                    .inv
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
}

/// Configured routes vs inventory.
fn configured_routes(f: &mut ClusterFacts, s: &Scope<'_>) {
    for name in s.order {
        let Some(n) = s.by_name.get(name) else {
            continue;
        };
        if n.configured_routes.is_empty() {
            continue;
        }
        if let Some(m) = route_mismatch(s.inv, n) {
            f.route_mismatch.push(m);
        }
    }
}

/// Resources.
fn resources(f: &mut ClusterFacts, s: &Scope<'_>) {
    for name in s.order {
        let Some(n) = s.by_name.get(name) else {
            continue;
        };
        if let Some(l) = &n.load {
            if let Some(c) = l.cpus.filter(|c| *c > 0) {
                if l.load1 > s.th.load_per_cpu * c as f64 {
                    f.resource_pressure.push(ResourcePressure {
                        node: name.clone(),
                        kind: "load".into(),
                        value: l.load1,
                        detail: format!(
                            "load {:.2} on {c} CPUs (> {}× CPUs)",
                            l.load1, s.th.load_per_cpu
                        ),
                    });
                }
            }
        }
        if let Some(m) = &n.memory {
            if m.total_kb > 0 && m.available_pct < s.th.memory_available_pct {
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
            if d.used_pct > s.th.disk_used_pct {
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
}

/// Streams.
fn streams(f: &mut ClusterFacts, s: &Scope<'_>) {
    let mut streams: BTreeMap<(String, String), StreamSummary> = BTreeMap::new();
    for name in s.order {
        let Some(n) = s.by_name.get(name) else {
            continue;
        };
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
}

/// Stream and consumer groups: every server's view combined (a server that holds no replica
/// reports healthy, and only a group's leader knows its replicas' state). Servers whose
/// `/jsz` did not answer count as "did not answer", so their replicas are `missing`.
fn groups(f: &mut ClusterFacts, s: &Scope<'_>) {
    let views: Vec<ServerJsz> = s
        .order
        .iter()
        .filter_map(|name| {
            let n = s.by_name.get(name)?;
            Some(ServerJsz {
                server: n.server_name.clone().unwrap_or_else(|| name.clone()),
                jsz: n.jsz.clone(),
            })
        })
        .collect();
    if views.iter().all(|v| v.jsz.is_none()) {
        return;
    }
    f.groups = combine(&views);
    f.unhealthy_groups = f
        .groups
        .iter()
        .filter(|g| !g.healthy)
        .map(GroupFacts::label)
        .collect();
}
