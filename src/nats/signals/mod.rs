//! Cause signals derived from [`ClusterFacts`]: the fingerprints of FACTS.md §3, scored so the
//! most likely cause comes first. A healthy cluster yields no signals.

use super::facts::{ClusterFacts, NodeFacts};
use serde::Serialize;

mod config;
mod converging;
mod partition;
use config::config;
pub use converging::{converging_wait_s, CONVERGING_WINDOW_S};
use partition::partition;

pub const INSUFFICIENT_NODES: &str = "insufficient-nodes";
pub const NETWORK_PARTITION: &str = "network-partition";
pub const CLUSTER_CONFIG: &str = "cluster-config";
pub const STALE_RAFT_STATE: &str = "stale-raft-state";
pub const RESOURCE_EXHAUSTION: &str = "resource-exhaustion";
pub const DNS_RESOLUTION: &str = "dns-resolution";
pub const STALE_PEERS: &str = "stale-peers";
/// Not a fault: servers started moments ago and are still electing (no runbook).
pub const CONVERGING: &str = "converging";

/// The signals this module computes (names a runbook finding can report with `signal:`), in tie-break order.
pub const SIGNALS: [&str; 8] = [
    CONVERGING,
    INSUFFICIENT_NODES,
    STALE_PEERS,
    NETWORK_PARTITION,
    CLUSTER_CONFIG,
    RESOURCE_EXHAUSTION,
    DNS_RESOLUTION,
    STALE_RAFT_STATE,
];

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Signal {
    /// One of [`SIGNALS`].
    pub cause: String,
    /// 0-100.
    pub score: u8,
    /// `high` | `medium` | `low`
    pub confidence: String,
    pub summary: String,
    /// Each names the node and the source.
    pub evidence: Vec<String>,
}

fn confidence(score: u8) -> &'static str {
    if score >= 75 {
        "high"
    } else if score >= 45 {
        "medium"
    } else {
        "low"
    }
}

fn sig(cause: &str, score: u8, summary: String, evidence: Vec<String>) -> Signal {
    let score = score.min(100);
    Signal {
        cause: cause.into(),
        score,
        confidence: confidence(score).into(),
        summary,
        evidence,
    }
}

fn raft_desc(n: &NodeFacts) -> String {
    let mut s = n
        .raft
        .state
        .clone()
        .unwrap_or_else(|| "state unknown".into());
    if let Some(t) = n.raft.term {
        s.push_str(&format!(" term {t}"));
    }
    if let Some(i) = n.raft.index {
        s.push_str(&format!(" index {i}"));
    }
    if let Some(src) = &n.raft.source {
        s.push_str(&format!(" ({src})"));
    }
    s
}

fn healthz_ev(n: &NodeFacts) -> Option<String> {
    let code = n.healthz.status?;
    if code == 200 {
        return None;
    }
    Some(format!(
        "{}: /healthz {code} \"{}\"",
        n.name,
        n.healthz.text.clone().unwrap_or_default()
    ))
}

fn down_reason(n: &NodeFacts) -> String {
    let mut parts = Vec::new();
    match n.service_exit {
        Some(0) => {}
        Some(c) => parts.push(format!("service status exit {c}")),
        None => {}
    }
    if n.process == "absent" {
        parts.push("nothing listens on the cluster/monitor port".into());
    }
    if n.monitor_error_kind.as_deref() == Some("refused") {
        parts.push("monitor connection refused".into());
    }
    if parts.is_empty() {
        parts.push(n.monitor.clone());
    }
    format!(
        "{}: nats-server is not running ({})",
        n.name,
        parts.join(", ")
    )
}

/// Signals, most likely first.
pub fn signals(f: &ClusterFacts) -> Vec<Signal> {
    if f.healthy {
        // Leader agreed by a majority, every server up with /healthz 200: nothing to explain.
        // (Drift, DNS or resource facts stay available in `facts` for runbooks.) The one
        // exception is a node whose own routes point nowhere (bad-routes A): the cluster only
        // formed because the others dial it, so it is reported, with low confidence.
        if f.route_mismatch.is_empty() {
            return Vec::new();
        }
        return config(f)
            .map(|mut s| {
                s.score = s.score.min(40);
                s.confidence = confidence(s.score).into();
                s.summary = format!("latent: {}", s.summary);
                vec![s]
            })
            .unwrap_or_default();
    }
    // Servers that started moments ago and reach each other look broken for a few seconds
    // (FACTS §12.2): that is not stale Raft state nor a partition, so nothing else is said.
    if let Some(c) = converging::converging(f) {
        return vec![c];
    }
    let mut out = Vec::new();
    out.extend(insufficient(f));
    out.extend(partition(f));
    out.extend(config(f));
    out.extend(resources(f));
    out.extend(dns(f));
    out.extend(stale(f));
    out.extend(stale_peers(f));
    sort(out)
}

fn sort(mut v: Vec<Signal>) -> Vec<Signal> {
    let rank = |c: &str| {
        SIGNALS
            .iter()
            .position(|x| *x == c)
            .unwrap_or(SIGNALS.len())
    };
    v.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| rank(&a.cause).cmp(&rank(&b.cause)))
    });
    v
}

fn node<'a>(f: &'a ClusterFacts, name: &str) -> Option<&'a NodeFacts> {
    f.nodes.get(name)
}

fn running_per_ssh_or_monitor(f: &ClusterFacts, name: &str) -> bool {
    node(f, name)
        .map(|n| n.process == "running" || n.monitor == "ok")
        .unwrap_or(false)
}

// ---- insufficient-nodes -----------------------------------------------------------------

/// Stream and consumer groups that lost their leader or replicas because servers holding
/// them are not available: one evidence line each (`ACCOUNT > STREAM [> CONSUMER]`, which
/// replicas are missing and why), and whether any of them cannot elect a leader.
fn group_losses(f: &ClusterFacts) -> (Vec<String>, bool) {
    let unavailable = |n: &str| {
        f.down.iter().any(|d| d == n)
            || f.unreachable.iter().any(|d| d == n)
            || f.frozen.iter().any(|d| d == n)
    };
    let mut ev = Vec::new();
    let mut stuck = false;
    for g in f.groups.iter().filter(|g| !g.healthy) {
        let gone: Vec<&str> = g
            .missing
            .iter()
            .map(String::as_str)
            .filter(|m| unavailable(m))
            .collect();
        if gone.is_empty() {
            continue;
        }
        let why: Vec<String> = gone
            .iter()
            .map(|m| {
                let state = if f.down.iter().any(|d| d == m) {
                    "down"
                } else if f.frozen.iter().any(|d| d == m) {
                    "frozen"
                } else {
                    "unreachable"
                };
                format!("{m} ({state})")
            })
            .collect();
        let leader = match &g.leader {
            Some(l) if g.leader_confirmed => format!("leader {l}"),
            _ => "NO LEADER".to_string(),
        };
        if g.leader.is_none() || !g.leader_confirmed || g.below_quorum {
            stuck = true;
        }
        ev.push(format!(
            "{}: {leader}{}; replicas {}; missing {} (jsz)",
            g.label(),
            if g.below_quorum { ", below quorum" } else { "" },
            g.replicas.join(", "),
            why.join(", ")
        ));
    }
    (ev, stuck)
}

fn insufficient(f: &ClusterFacts) -> Option<Signal> {
    let missing = f.down.len() + f.unreachable.len() + f.frozen.len();
    if missing == 0 {
        return None;
    }
    let available = f.up.len();
    let (group_ev, groups_stuck) = group_losses(f);
    let mut ev = Vec::new();
    for d in &f.down {
        if let Some(n) = node(f, d) {
            ev.push(down_reason(n));
        }
    }
    // Peers see connection refused (not a timeout): the process is gone, not the network.
    for l in f
        .cut_links
        .iter()
        .filter(|l| l.result == "refused" && f.down.contains(&l.to))
    {
        ev.push(format!(
            "{} → {} ({}): connection refused (tcp probe)",
            l.from, l.to, l.address
        ));
    }
    for u in &f.unreachable {
        if let Some(n) = node(f, u) {
            ev.push(format!(
                "{}: unreachable (ssh {}; monitor {})",
                u, n.ssh, n.monitor
            ));
        } else {
            ev.push(format!("{u}: not probed"));
        }
    }
    for z in &f.frozen {
        ev.push(format!("{z}: process is frozen/stopped, it cannot vote"));
    }
    for u in &f.up {
        if let Some(n) = node(f, u) {
            if n.meta_leader.is_none() || f.leader_agreement.stale_leaders.contains(u) {
                ev.push(format!("{u}: {} with no leader (raft)", raft_desc(n)));
            } else if !f.has_leader && n.meta_leader.as_deref() == Some(u.as_str()) {
                ev.push(format!(
                    "{u}: still says LEADER ({}) but only {} of {} servers answer; an ex-leader drops leadership ~18 s after losing quorum",
                    raft_desc(n),
                    available,
                    f.size
                ));
            }
            if let Some(h) = healthz_ev(n) {
                ev.push(h);
            }
        }
    }
    // The real peer set decides (5 peers with 3 alive is not 3 of 3): stale peers count
    // toward the quorum and never vote.
    let quorum = f.meta_quorum.max(f.quorum);
    if !f.stale_peers.is_empty() {
        ev.push(stale_peer_arithmetic(f));
    }
    let lost_quorum = available < quorum;
    let (score, summary) = if lost_quorum && !f.has_leader {
        // Starting the stopped servers alone would restore a quorum: the classic case.
        let score = if f.down.len() + available >= quorum {
            92
        } else if f.down.len() + f.frozen.len() > 0 {
            80
        } else {
            // Only unreachable nodes: could as well be our view of the network.
            55
        };
        let score = if f.up.is_empty() && f.down.len() == f.size {
            95
        } else {
            score
        };
        let quorum_text = match f.meta_size {
            Some(m) if m > f.size => format!("quorum needs {quorum} of the meta group's {m} peers"),
            _ => format!("quorum needs {quorum}"),
        };
        (
            score,
            format!(
                "{} of {} servers are not available ({} down, {} unreachable, {} frozen); {quorum_text}",
                missing,
                f.size,
                f.down.len(),
                f.unreachable.len(),
                f.frozen.len(),
            ),
        )
    } else if groups_stuck {
        // The meta group may be fine, but streams/consumers whose replicas were on the
        // missing servers cannot elect: starting those servers is the fix (FACTS §12.1).
        let names: Vec<String> = f
            .groups
            .iter()
            .filter(|g| !g.healthy && (g.leader.is_none() || g.below_quorum))
            .map(|g| g.label())
            .collect();
        (
            88,
            format!(
                "{} lost quorum: {missing} of {} servers are not available ({}){}",
                names.join(", "),
                f.size,
                f.down
                    .iter()
                    .chain(&f.unreachable)
                    .chain(&f.frozen)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                match &f.leader {
                    Some(l) => format!("; the meta group still has a leader ({l})"),
                    None => String::new(),
                }
            ),
        )
    } else if !f.has_leader {
        (
            35,
            format!("{missing} of {} servers are not available; the remaining {available} could form a quorum", f.size),
        )
    } else {
        (
            40,
            format!(
                "{missing} of {} servers are not available; the cluster still has a leader ({}), but {} more failure(s) lose quorum",
                f.size,
                f.leader.clone().unwrap_or_default(),
                (available + 1).saturating_sub(f.quorum)
            ),
        )
    };
    let mut all = group_ev;
    all.extend(ev);
    Some(sig(INSUFFICIENT_NODES, score, summary, all))
}

// ---- resource-exhaustion ----------------------------------------------------------------

fn resources(f: &ClusterFacts) -> Option<Signal> {
    let mut ev = Vec::new();
    let mut score: u32 = 0;
    for z in &f.frozen {
        if let Some(n) = node(f, z) {
            let how = match n.process_state.as_deref() {
                Some(s @ ("T" | "t")) => {
                    format!("/proc/{}/stat state {s} (stopped)", n.pid.unwrap_or(0))
                }
                _ => format!("port held but the monitor does not answer ({})", n.monitor),
            };
            ev.push(format!(
                "{z}: nats-server process exists but is frozen: {how}"
            ));
            score = score.max(85);
        }
    }
    for p in &f.resource_pressure {
        ev.push(format!("{}: {} pressure: {}", p.node, p.kind, p.detail));
        // A high load average alone starves nothing that still answers, and on shared hosts
        // (or a lab) every node reports the same number: weak evidence.
        let s = match p.kind.as_str() {
            "disk" => 80,
            "memory" => 70,
            _ => 35,
        };
        let s = if f.up.contains(&p.node) { s - 10 } else { s };
        score = score.max(s);
    }
    if score == 0 {
        return None;
    }
    let mut who: Vec<String> = f.frozen.clone();
    for p in &f.resource_pressure {
        if !who.contains(&p.node) {
            who.push(p.node.clone());
        }
    }
    let summary = if !f.frozen.is_empty() {
        format!(
            "nats-server is frozen on {} (process present, not answering)",
            f.frozen.join(", ")
        )
    } else {
        format!("resource pressure on {}", who.join(", "))
    };
    Some(sig(RESOURCE_EXHAUSTION, score as u8, summary, ev))
}

// ---- dns-resolution ---------------------------------------------------------------------

fn dns(f: &ClusterFacts) -> Option<Signal> {
    if f.dns_failures.is_empty() && !f.cut_links.iter().any(|l| l.result == "unresolved") {
        return None;
    }
    let mut ev = Vec::new();
    for d in &f.dns_failures {
        if d.peer.is_empty() {
            ev.push(format!(
                "{}: getent hosts {} failed (a configured route host, not in the inventory)",
                d.node, d.host
            ));
        } else {
            ev.push(format!(
                "{}: cannot resolve {} (route host of peer {}; getent hosts failed)",
                d.node, d.host, d.peer
            ));
        }
    }
    for l in f.cut_links.iter().filter(|l| l.result == "unresolved") {
        ev.push(format!(
            "{} → {}: cannot resolve the peer's host name (tcp probe)",
            l.from, l.to
        ));
    }
    // Do the routes use host names at all?
    let routes_by_name = f.node_list.iter().any(|n| {
        n.configured_routes.iter().any(|u| {
            super::facts::route_host_port(u)
                .map(|(h, _)| h.parse::<std::net::IpAddr>().is_err())
                .unwrap_or(false)
        })
    });
    // Every leaderless node without routes is one that cannot resolve its route hosts: DNS
    // explains the outage completely.
    let explains_all = !f.has_leader
        && !f.leaderless.is_empty()
        && f.leaderless
            .iter()
            .all(|n| f.dns_failures.iter().any(|d| &d.node == n));
    let score = if routes_by_name && explains_all {
        95
    } else if routes_by_name && !f.has_leader {
        85
    } else if routes_by_name {
        60
    } else if !f.has_leader {
        55
    } else {
        35
    };
    if routes_by_name {
        ev.push("the configured routes use host names".into());
    }
    let nodes: std::collections::BTreeSet<&String> =
        f.dns_failures.iter().map(|d| &d.node).collect();
    let summary = format!(
        "peer host names do not resolve on {}",
        nodes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Some(sig(DNS_RESOLUTION, score, summary, ev))
}

// ---- stale-peers --------------------------------------------------------------------------

fn stale_names(f: &ClusterFacts) -> String {
    f.stale_peers
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "the meta group counts 4 peers (quorum 3); n3 matches no server of the inventory …"
fn stale_peer_arithmetic(f: &ClusterFacts) -> String {
    let m = f.meta_size.unwrap_or(f.size);
    let voters = f.up.len();
    format!(
        "the meta group counts {m} peers (quorum {}); {} match{} no server of the inventory \
         (old names of renamed or replaced servers: they count and never vote); {voters} \
         server{} answer{} (jsz meta_cluster)",
        f.meta_quorum,
        stale_names(f),
        if f.stale_peers.len() == 1 { "es" } else { "" },
        if voters == 1 { "" } else { "s" },
        if voters == 1 { "s" } else { "" },
    )
}

/// Stale peers while there is no leader. (With a leader the `stale-peers` runbook's own
/// finding reports them: the cluster works and they are a latent risk.)
fn stale_peers(f: &ClusterFacts) -> Option<Signal> {
    if f.has_leader || f.stale_peers.is_empty() {
        return None;
    }
    let mut ev = vec![stale_peer_arithmetic(f)];
    for p in &f.stale_peers {
        ev.push(format!(
            "{}: {}, last seen {} (reported by {})",
            p.name,
            if p.offline {
                "offline"
            } else {
                "not answering"
            },
            p.last_seen_s.map_or_else(
                || "not since those servers started".into(),
                |s| format!("{s} s ago")
            ),
            p.reported_by.join(", ")
        ));
    }
    let missing: Vec<&String> = f
        .down
        .iter()
        .chain(&f.unreachable)
        .chain(&f.frozen)
        .collect();
    let possible = f.up.len() + f.down.len() + f.frozen.len();
    let (score, summary) = if !missing.is_empty() && possible >= f.meta_quorum {
        // Bringing back the servers that exist restores the quorum: that comes first.
        (
            50,
            format!(
                "the meta group also counts {} (no such server): {} peers, quorum {}. Bring \
                 back {} first (insufficient-nodes), then peer-remove {}: `nats-rescue run \
                 stale-peers`",
                stale_names(f),
                f.meta_size.unwrap_or(f.size),
                f.meta_quorum,
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                stale_names(f)
            ),
        )
    } else {
        // Every server that exists cannot make the quorum: the stale peers hold it hostage.
        (
            90,
            format!(
                "stale peers hold the quorum: the meta group counts {} peers (quorum {}) and \
                 only {} servers exist; {} can never vote. On 2.15+: `nats-rescue run \
                 permanent-loss --var lost={}` (destructive); before 2.15 the old names must \
                 come back (see that runbook)",
                f.meta_size.unwrap_or(f.size),
                f.meta_quorum,
                f.size,
                stale_names(f),
                f.stale_peers
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
    };
    Some(sig(STALE_PEERS, score, summary, ev))
}

// ---- stale-raft-state -------------------------------------------------------------------

fn stale(f: &ClusterFacts) -> Option<Signal> {
    let mut ev = Vec::new();
    for d in &f.peer_set_drift {
        ev.push(format!(
            "{}: the meta group has cluster_size {} but the inventory has {} servers (jsz/raftz)",
            d.node, d.cluster_size, d.expected
        ));
    }
    let drift = !f.peer_set_drift.is_empty();

    // All servers stopped: start them; stale state is only a secondary suspicion.
    if f.up.is_empty() && f.down.len() == f.size && f.size > 0 {
        let mut ev = ev;
        if let Some(m) = &f.most_up_to_date {
            ev.push(format!("most up-to-date log on disk: {m}"));
        }
        for r in &f.up_to_date_ranking {
            ev.push(format!(
                "{}: term {} log term {} index {}{} ({})",
                r.node,
                r.term.map_or("?".into(), |t| t.to_string()),
                r.log_term.map_or("?".into(), |t| t.to_string()),
                r.index.map_or("?".into(), |t| t.to_string()),
                "",
                r.source.clone().unwrap_or_default()
            ));
        }
        // Logs that differ on disk: which server starts first matters (Option B starts the
        // most up-to-date one first), so this outranks "start them all" (95).
        let diverged =
            f.term_spread.is_some_and(|s| s > 0) || f.index_spread.is_some_and(|s| s > 0);
        if diverged {
            return Some(sig(
                STALE_RAFT_STATE,
                97,
                format!(
                    "every server is stopped and their Raft logs differ on disk (terms {}); restart from the most up-to-date node ({}) first",
                    f.terms.iter().map(|(n, t)| format!("{n}={t}")).collect::<Vec<_>>().join(", "),
                    f.most_up_to_date.clone().unwrap_or_else(|| "unknown".into())
                ),
                ev,
            ));
        }
        return Some(sig(
            STALE_RAFT_STATE,
            30,
            "every server is stopped; if they cannot elect a leader after a start, the Raft state may be stale".into(),
            ev,
        ));
    }

    let all_up = f.up.len() == f.size && f.size > 0;
    let connected = all_up
        && f.cut_links.is_empty()
        && f.up.iter().filter_map(|u| node(f, u)).all(|n| {
            f.up.iter()
                .all(|p| p == &n.name || n.route_peers.contains(p))
        });

    if f.has_leader {
        if drift {
            return Some(sig(
                STALE_RAFT_STATE,
                45,
                "the meta group's peer set differs from the inventory (peer-remove the stale peers with the leader)"
                    .into(),
                ev,
            ));
        }
        return None;
    }
    if !connected {
        if drift {
            return Some(sig(
                STALE_RAFT_STATE,
                40,
                "the meta group's peer set differs from the inventory".into(),
                ev,
            ));
        }
        return None;
    }
    // All processes up and connected, yet no leader.
    ev.push(format!(
        "all {} servers run and have routes to each other, yet no meta leader",
        f.size
    ));
    let mut score = 60;
    if let Some(s) = f.term_spread.filter(|s| *s > 0) {
        score += 10;
        ev.push(format!(
            "terms differ by {s} ({})",
            f.terms
                .iter()
                .map(|(n, t)| format!("{n}={t}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(s) = f.index_spread.filter(|s| *s > 0) {
        score += 5;
        ev.push(format!("last log indexes differ by {s}"));
    }
    if drift {
        score += 15;
    }
    for n in f.up.iter().filter_map(|u| node(f, u)) {
        if n.raft.ever_had_leader == Some(false) {
            score += 5;
            ev.push(format!(
                "{}: ever_had_leader false with routes up ({})",
                n.name,
                raft_desc(n)
            ));
        }
        if let Some(h) = healthz_ev(n) {
            ev.push(h);
        }
    }
    Some(sig(
        STALE_RAFT_STATE,
        score.min(90),
        "servers are up and connected but cannot elect a meta leader: diverged or stale Raft state"
            .into(),
        ev,
    ))
}
