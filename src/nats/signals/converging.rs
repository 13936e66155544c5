//! `converging`: servers that started moments ago, reach each other and are still electing
//! (FACTS §12.2). For a few seconds after a restart one server can be CANDIDATE with index
//! 0, the meta group can report the wrong size and /healthz can be 503: that is NATS's own
//! timers at work (election timeout 4–9 s, lost-quorum check 10 s), not a fault. Once the
//! youngest server is older than [`CONVERGING_WINDOW_S`] the state has outlived those timers
//! and the other causes are judged as usual.

use super::{sig, ClusterFacts, Signal, CONVERGING};

/// How long after the youngest server started a not-yet-healthy cluster counts as
/// converging: two election timeouts (9 s each) plus a margin, and more than the 10 s
/// lost-quorum check.
pub const CONVERGING_WINDOW_S: u64 = 20;

/// Seconds to wait before re-running, given the youngest server's uptime.
pub fn converging_wait_s(min_uptime_s: u64) -> u64 {
    CONVERGING_WINDOW_S.saturating_sub(min_uptime_s).max(5)
}

pub(super) fn converging(f: &ClusterFacts) -> Option<Signal> {
    let youngest = f.min_uptime_s?;
    if youngest >= CONVERGING_WINDOW_S
        || f.up.len() != f.size
        || !(f.down.is_empty()
            && f.unreachable.is_empty()
            && f.frozen.is_empty()
            && f.not_probed.is_empty())
        || f.cut_links.iter().any(|l| l.result != "ok")
    {
        return None;
    }
    let mut ev = Vec::new();
    for name in &f.up {
        let n = f.nodes.get(name)?;
        let up = n.uptime_s?;
        // Progress: routes to peers (a server a second old may not have them yet).
        if n.route_peers.is_empty() && up >= 5 {
            return None;
        }
        ev.push(format!(
            "{name}: started {up} s ago (varz), routes to {} peer(s){}",
            n.route_peers.len(),
            match (&n.meta_leader, &n.raft.state) {
                (Some(l), _) => format!(", sees meta leader {l}"),
                (None, Some(s)) => format!(", {s} with no leader yet"),
                (None, None) => ", no leader yet".to_string(),
            }
        ));
    }
    for g in f.groups.iter().filter(|g| !g.healthy) {
        ev.push(format!(
            "{}: {} (jsz)",
            g.label(),
            match &g.leader {
                Some(l) => format!("leader {l}, replicas catching up"),
                None => "electing a leader".to_string(),
            }
        ));
    }
    let wait = converging_wait_s(youngest);
    Some(sig(
        CONVERGING,
        97,
        format!(
            "servers started {youngest} s ago and reach each other; Raft groups are still electing and catching up: wait {wait} s and re-run"
        ),
        ev,
    ))
}
