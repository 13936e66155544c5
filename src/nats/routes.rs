//! Routes as configured and as the inventory expects them: `host:port` of a route URL,
//! and the comparison of a node's configured routes with its peers' cluster addresses.

use super::cluster::RouteMismatch;
use super::facts::NodeFacts;
use crate::inventory::{Inventory, Node};
use std::collections::BTreeSet;
use std::net::IpAddr;

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

pub(super) fn is_ip(h: &str) -> bool {
    h.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

pub(super) fn is_loopback_name(h: &str) -> bool {
    h == "localhost"
        || h.parse::<IpAddr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
}

/// Compares one node's configured routes with the inventory. None when they agree.
pub(super) fn route_mismatch(inv: &Inventory, n: &NodeFacts) -> Option<RouteMismatch> {
    let expected: Vec<String> = inv
        .nodes
        .iter()
        .map(|x| format!("{}:{}", route_host(x), x.nats.cluster_port))
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

/// The address peers use in their routes to `x`: `nats.cluster_host` when the inventory sets
/// it, else `host`.
pub fn route_host(x: &Node) -> &str {
    x.nats.cluster_host.as_deref().unwrap_or(&x.host)
}

/// Does route `h:p` (as configured on node `on`) point at inventory node `x`? A route to the
/// node itself is normal (the Helm chart lists every server; the server skips its own).
fn route_matches(on: &NodeFacts, h: &str, p: u16, x: &Node) -> bool {
    if p != x.nats.cluster_port {
        return false;
    }
    if x.nats.cluster_host.is_some() && h.eq_ignore_ascii_case(route_host(x)) {
        return true;
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
