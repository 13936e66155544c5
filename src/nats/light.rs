//! Light gathering for waits (issue #17 part 2): while a wait's condition reads only facts the
//! monitoring endpoints decide, it is polled from those endpoints alone (no SSH probe); the
//! full gather runs once when the light condition holds, and the full condition decides.
//!
//! A fact belongs to a level only when the light gather computes it exactly as the full one
//! does, so a condition over such facts has the same value either way:
//! - `has_leader`, `leader`, `up`, `leaderless`: from each node's `meta_cluster` (plain
//!   `/jsz`); a frozen server does not answer HTTP, so it is not `up` in either.
//! - `healthy` is not exact (the SSH probe adds cut links and unmanageable nodes), but it can
//!   only be *more* true from HTTP alone; so `facts.healthy` by itself (no negation) is polled
//!   with every monitoring endpoint and confirmed by the full gather.
//!
//! Where a node's monitoring does not answer (other than a refused connection: it is down)
//! and the inventory has system-account credentials, the system account's view stands in,
//! as in the full gather.

use super::facts::{ClusterFacts, HttpBodies, NodeFacts, Thresholds};
use super::probe::{fetch_http, DEFAULT_TIMEOUT};
use crate::inventory::{Inventory, Node};
use crate::transport::Transport;
use std::collections::BTreeSet;
use std::time::Duration;

/// What a light poll fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LightLevel {
    /// One plain `/jsz` per node.
    Jsz,
    /// The monitoring endpoints of the full gather (`/varz`, `/jsz` with groups, `/raftz`,
    /// `/routez`, `/healthz`), without the SSH probe.
    Http,
}

/// Facts paths the plain `/jsz` decides exactly (see the module text).
const JSZ_EXACT: &[&str] = &[
    "facts.has_leader",
    "facts.leader",
    "facts.up",
    "facts.leaderless",
];

/// Roots that are not facts (the inventory, variables, captures, the node in scope).
const NOT_FACTS: &[&str] = &[
    "node",
    "inventory",
    "vars",
    "cluster",
    "nodes",
    "incident",
    "rehearsal",
    "steps",
];

/// The light level a condition can be polled at, from its source and the variable paths it
/// reads (`facts.has_leader`, `node.name`, …). `None`: it needs the full gather every poll.
pub fn level_for(source: &str, paths: &BTreeSet<String>) -> Option<LightLevel> {
    if source.trim() == "facts.healthy" {
        return Some(LightLevel::Http);
    }
    let mut reads_facts = false;
    for p in paths {
        let root = p.split('.').next().unwrap_or(p);
        if NOT_FACTS.contains(&root) {
            continue;
        }
        // `facts.up` covers `facts.up.0`; `facts` alone (the whole map) is not light.
        let exact = JSZ_EXACT
            .iter()
            .any(|k| p == k || p.strip_prefix(k).is_some_and(|r| r.starts_with('.')));
        if !exact {
            return None;
        }
        reads_facts = true;
    }
    reads_facts.then_some(LightLevel::Jsz)
}

/// One light poll of every inventory node, in parallel. Never fails: what did not answer is
/// evidence, as in [`super::probe::gather`]. Nodes get `ssh: not probed`.
pub fn gather_light(
    t: &dyn Transport,
    inv: &Inventory,
    th: &Thresholds,
    level: LightLevel,
) -> ClusterFacts {
    gather_light_with_timeout(t, inv, th, level, DEFAULT_TIMEOUT)
}

pub fn gather_light_with_timeout(
    t: &dyn Transport,
    inv: &Inventory,
    th: &Thresholds,
    level: LightLevel,
    timeout: Duration,
) -> ClusterFacts {
    let bodies: Vec<(&Node, HttpBodies)> =
        super::parallel::map_bounded(&inv.nodes, super::parallel::MAX_PARALLEL_NODES, |n| {
            fetch_light(t, n, level, timeout)
        })
        .into_iter()
        .zip(&inv.nodes)
        .map(|(b, n)| (n, b.unwrap_or_default()))
        .collect();
    let failed = |b: &HttpBodies| {
        let first = match level {
            LightLevel::Jsz => &b.jsz,
            LightLevel::Http => &b.varz,
        };
        match first {
            Some(Err(e)) => super::facts::error_kind(e) != "refused",
            None => true,
            Some(Ok(_)) => false,
        }
    };
    let system = if bodies.iter().any(|(_, b)| failed(b)) {
        let order: Vec<&Node> = bodies.iter().map(|(n, _)| *n).collect();
        super::sysfacts::gather(t, &order, timeout)
    } else {
        None
    };
    let facts: Vec<NodeFacts> = bodies
        .iter()
        .map(|(n, b)| {
            let sys = system
                .as_ref()
                .and_then(|v| v.by_server.get(&n.name))
                .filter(|_| failed(b));
            let mut f = match sys {
                Some(s) if level == LightLevel::Jsz => NodeFacts::from_http(
                    &n.name,
                    &HttpBodies {
                        jsz: s.jsz.clone(),
                        ..Default::default()
                    },
                ),
                Some(s) => NodeFacts::from_http(&n.name, s),
                None => NodeFacts::from_http(&n.name, b),
            };
            if sys.is_some() {
                f.source = Some("system".into());
            }
            f.host = n.host.clone();
            f
        })
        .collect();
    ClusterFacts::build_with(inv, facts, th)
}

fn fetch_light(t: &dyn Transport, node: &Node, level: LightLevel, timeout: Duration) -> HttpBodies {
    match level {
        LightLevel::Jsz => HttpBodies {
            jsz: Some(
                t.http_get(node, "/jsz", timeout)
                    .map(|r| (r.status, r.body))
                    .map_err(|e| crate::transport::error_chain(&e)),
            ),
            ..Default::default()
        },
        LightLevel::Http => fetch_http(t, node, timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(src: &str) -> BTreeSet<String> {
        crate::runbook::template::Expr::compile(src).unwrap().1
    }

    fn level(src: &str) -> Option<LightLevel> {
        level_for(src, &paths(src))
    }

    #[test]
    fn leader_and_up_conditions_are_polled_over_jsz() {
        assert_eq!(level("facts.has_leader"), Some(LightLevel::Jsz));
        assert_eq!(
            level("node.name in facts.up and facts.has_leader"),
            Some(LightLevel::Jsz)
        );
        assert_eq!(
            level("facts.up | length == inventory.size"),
            Some(LightLevel::Jsz)
        );
        assert_eq!(level("facts.leader == 'n1'"), Some(LightLevel::Jsz));
    }

    #[test]
    fn healthy_alone_is_polled_over_http() {
        assert_eq!(level("facts.healthy"), Some(LightLevel::Http));
        assert_eq!(level("  facts.healthy "), Some(LightLevel::Http));
    }

    #[test]
    fn conditions_reading_ssh_facts_need_the_full_gather() {
        for src in [
            "facts.down | length == 0",
            "not facts.healthy",
            "facts.healthy and not (facts.streams | streams_lost(steps.gather.facts.streams))",
            "facts.cut_links | length == 0",
            "facts.has_leader and f.service == 'active'",
            "facts",
            "facts.up_to_date",
            "facts.nodes.n1.process == 'running'",
            "facts.up | length == 0 and facts.frozen | length == 0",
            "inventory.size > 0",
        ] {
            assert_eq!(level(src), None, "{src}");
        }
    }
}
