//! The cluster-config signal.

use super::*;

// ---- cluster-config ---------------------------------------------------------------------

pub(super) fn config(f: &ClusterFacts) -> Option<Signal> {
    let mut ev = Vec::new();
    let mut score: u32 = 0;
    for m in &f.route_mismatch {
        ev.push(format!(
            "{}: configured routes [{}] ({}) do not match the inventory's cluster addresses [{}]{}",
            m.node,
            m.configured.join(", "),
            m.source.clone().unwrap_or_default(),
            m.expected.join(", "),
            if m.unknown.is_empty() {
                String::new()
            } else {
                format!("; pointing nowhere: {}", m.unknown.join(", "))
            }
        ));
    }
    for n in &f.node_list {
        if !n.unsolicited_route_peers.is_empty()
            && n.unsolicited_route_peers.len() == n.route_peers.len()
        {
            ev.push(format!(
                "{}: every route was dialled by the peers (did_solicit:false, is_configured:false) to {}: its own routes do not work",
                n.name,
                n.unsolicited_route_peers.join(", ")
            ));
        }
        if let Some(sn) = &n.server_name {
            if sn != &n.name {
                score = score.max(70);
                ev.push(format!(
                    "{}: server_name is {sn:?}, the inventory says {:?}; a renamed server is a new Raft peer",
                    n.name, n.name
                ));
            }
        }
    }
    let names: std::collections::BTreeSet<&String> = f
        .node_list
        .iter()
        .filter_map(|n| n.cluster_name.as_ref())
        .collect();
    if names.len() > 1 {
        score = score.max(70);
        ev.push(format!(
            "cluster names differ between nodes: {}",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mismatched = f.route_mismatch.len();
    let up = f.up.len();
    let no_routes_everywhere = up >= 2
        && f.up
            .iter()
            .filter_map(|u| node(f, u))
            .all(|n| n.route_peers.is_empty() && n.num_routes.unwrap_or(0) == 0);
    if mismatched > 0 {
        if mismatched >= f.quorum && !f.has_leader {
            score = score.max(88);
        } else if !f.has_leader {
            score = score.max(70);
        } else {
            // One node wrong: the cluster still forms because the others dial it.
            score = score.max(50);
        }
    }
    if no_routes_everywhere && !f.has_leader {
        ev.push(format!(
            "num_routes is 0 on every running server ({})",
            f.up.join(", ")
        ));
        score = if score > 0 { score + 5 } else { 60 };
        for n in f.up.iter().filter_map(|u| node(f, u)) {
            if n.raft.state.as_deref() == Some("FOLLOWER") && n.raft.ever_had_leader == Some(false)
            {
                ev.push(format!(
                    "{}: FOLLOWER, ever_had_leader false, term {} static: Raft waits for routes (raftz)",
                    n.name,
                    n.raft.term.map_or("?".into(), |t| t.to_string())
                ));
            }
            if let Some(t) = &n.healthz.text {
                if t.contains("still recovering meta layer") {
                    ev.push(format!(
                        "{}: /healthz {} \"{t}\"",
                        n.name,
                        n.healthz.status.unwrap_or(0)
                    ));
                }
            }
        }
    }
    if score == 0 && ev.is_empty() {
        return None;
    }
    if score == 0 {
        score = 35;
    }
    let summary = if mismatched > 0 && !f.has_leader {
        format!(
            "{mismatched} of {} servers have routes that do not point at the cluster; without routes Raft never starts",
            f.size
        )
    } else if mismatched > 0 {
        format!(
            "{} {} wrong routes (the cluster formed only because the others dial {})",
            f.route_mismatch
                .iter()
                .map(|m| m.node.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if mismatched == 1 { "has" } else { "have" },
            if mismatched == 1 { "it" } else { "them" }
        )
    } else if no_routes_everywhere {
        "no server has a route to any other; check the cluster block (routes, ports, auth, TLS)"
            .to_string()
    } else {
        "the cluster configuration is inconsistent".to_string()
    };
    Some(sig(CLUSTER_CONFIG, score.min(95) as u8, summary, ev))
}
