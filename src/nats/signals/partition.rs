//! The network-partition signal.

use super::*;

// ---- network-partition ------------------------------------------------------------------

pub(super) fn partition(f: &ClusterFacts) -> Option<Signal> {
    let mut ev = Vec::new();
    let mut score: u32 = 0;
    // Timeouts to a peer whose process is running: packets dropped.
    let timeouts: Vec<_> = f
        .cut_links
        .iter()
        .filter(|l| l.result == "timeout" && running_per_ssh_or_monitor(f, &l.to))
        .collect();
    for l in &timeouts {
        ev.push(format!(
            "{} → {} ({}): timeout (packets dropped) while the process is running",
            l.from, l.to, l.address
        ));
    }
    let unreach: Vec<_> = f
        .cut_links
        .iter()
        .filter(|l| l.result == "unreachable" && running_per_ssh_or_monitor(f, &l.to))
        .collect();
    for l in &unreach {
        ev.push(format!(
            "{} → {} ({}): no route to host while the process is running",
            l.from, l.to, l.address
        ));
    }
    if !timeouts.is_empty() {
        score = 80;
    } else if !unreach.is_empty() {
        score = 70;
    }
    let mut fw = false;
    for n in &f.node_list {
        for r in n.firewall_rules.iter().filter(|r| {
            r.contains("DROP") || r.contains("REJECT") || r.contains("drop") || r.contains("reject")
        }) {
            fw = true;
            ev.push(format!(
                "{}: firewall rule on the cluster port: {r}",
                n.name
            ));
        }
    }
    if fw {
        score = if score > 0 { score + 10 } else { 55 };
    }

    // From the monitoring endpoints alone: nodes that run but disagree.
    let up_nodes: Vec<&NodeFacts> = f.up.iter().filter_map(|u| node(f, u)).collect();
    let with_leader: Vec<&&NodeFacts> = up_nodes
        .iter()
        .filter(|n| n.meta_leader.is_some())
        .collect();
    let leaderless: Vec<&&NodeFacts> = up_nodes
        .iter()
        .filter(|n| n.meta_leader.is_none())
        .collect();
    let config_ok = |n: &NodeFacts| !f.route_mismatch.iter().any(|m| m.node == n.name);
    let mut split = false;
    if up_nodes.len() >= 2 {
        // A node whose route host names do not resolve has no routes because of DNS, not
        // because packets are dropped: that is the dns-resolution signal's evidence.
        let dns_broken = |n: &NodeFacts| f.dns_failures.iter().any(|d| d.node == n.name);
        for n in &leaderless {
            if !config_ok(n) || dns_broken(n) {
                continue;
            }
            let peers_up: Vec<&String> = f.up.iter().filter(|u| *u != &n.name).collect();
            let listed: Vec<&&String> = peers_up
                .iter()
                .filter(|p| n.route_peers.contains(p))
                .collect();
            if !with_leader.is_empty() && !listed.is_empty() {
                // Routes still listed (they linger ~64 s) yet Raft does not hear the leader.
                split = true;
                ev.push(format!(
                    "{}: {} sees no leader while {} follow {}; its routes to {} are still listed (routes linger ~60 s after packets stop)",
                    n.name,
                    raft_desc(n),
                    with_leader.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", "),
                    f.leader_agreement.candidate.clone().unwrap_or_default(),
                    listed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ));
            } else if !peers_up.is_empty() && listed.is_empty() {
                split = true;
                ev.push(format!(
                    "{}: running ({}) but has no route to the running peers {}",
                    n.name,
                    raft_desc(n),
                    peers_up
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        // Peers that cannot see a running node in their routes either.
        for n in &with_leader {
            let missing: Vec<&String> =
                f.up.iter()
                    .filter(|u| *u != &n.name && !n.route_peers.contains(u))
                    .collect();
            if !missing.is_empty() && split {
                ev.push(format!(
                    "{}: no route to running {} (routez)",
                    n.name,
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if !f.leader_agreement.stale_leaders.is_empty() {
            split = true;
            for s in &f.leader_agreement.stale_leaders {
                if let Some(n) = node(f, s) {
                    ev.push(format!(
                        "{s}: still claims LEADER ({}) while the majority follows {}: an isolated ex-leader",
                        raft_desc(n),
                        f.leader_agreement.candidate.clone().unwrap_or_default()
                    ));
                }
            }
        }
    }
    if split {
        score = if score > 0 { score + 10 } else { 65 };
        for n in &leaderless {
            if let Some(h) = healthz_ev(n) {
                ev.push(h);
            }
        }
    }
    if score == 0 {
        return None;
    }
    let minority: Vec<String> = if f.has_leader {
        f.up.iter()
            .filter(|u| !f.leader_agreement.agree.contains(u))
            .cloned()
            .collect()
    } else {
        f.up.clone()
    };
    let summary = if f.has_leader {
        format!(
            "{} {} cut off from the majority (leader {}); running processes cannot reach each other",
            minority.join(", "),
            if minority.len() == 1 { "is" } else { "are" },
            f.leader.clone().unwrap_or_default()
        )
    } else {
        "running servers cannot reach each other; no side holds a quorum".to_string()
    };
    Some(sig(NETWORK_PARTITION, score.min(97) as u8, summary, ev))
}
