//! `lab break FAULT` and `lab heal`. Every fault is recorded in lab.json with what is needed to
//! undo it (exact iptables rules, original files, frozen PIDs) before it is injected.

mod destroy;
mod flap;
mod rename;
mod stream_quorum;

pub use stream_quorum::{stream_servers, streams_named};

use super::firewall;
use super::monitor;
use super::say;
use super::seed;
use super::server::{self, CLUSTER_PORT};
use super::state::{FaultRecord, IptablesRule, LabState};
use crate::cli::Fault;
use crate::error::{Error, Result};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Route port written by the bad-routes fault: nothing listens there.
pub const BAD_ROUTE_PORT: u16 = 6299;

/// Injects `fault` on `nodes` (or the fault's default nodes).
pub fn inject(st: &mut LabState, fault: Fault, args: &[String]) -> Result<()> {
    if fault == Fault::Flap {
        // NODE SECONDS [ssh|cluster|all]: not a node list.
        return flap::inject(st, args);
    }
    // Nodes may be named by lab name (n3) or current server_name (n3b); records keep lab names.
    let nodes: Vec<String> = args
        .iter()
        .map(|n| st.node(n).map(|x| x.name.clone()))
        .collect::<Result<_>>()?;
    let destroyed = st.destroyed();
    if let Some(d) = nodes.iter().find(|n| destroyed.contains(n)) {
        return Err(Error::Usage(format!(
            "{d} is destroyed; `lab heal --rebuild-destroyed` brings it back first"
        )));
    }
    let nodes = &nodes[..];
    let named = |default: Vec<String>| {
        if nodes.is_empty() {
            default
        } else {
            nodes.to_vec()
        }
    };
    match fault {
        Fault::QuorumLoss => {
            let first = st.nodes[0].name.clone();
            let targets = named(
                st.node_names()
                    .into_iter()
                    .filter(|n| *n != first)
                    .collect(),
            );
            if targets.is_empty() {
                return Err(Error::Usage(
                    "quorum-loss needs at least 2 nodes (it kills all but n1)".into(),
                ));
            }
            st.faults.push(FaultRecord::QuorumLoss {
                nodes: targets.clone(),
            });
            st.save()?;
            for n in &targets {
                let out = server::ctl(st, n, "kill")?;
                say(out.trim());
            }
            let left = st.nodes.len() - targets.len();
            println!(
                "quorum-loss: SIGKILLed {} ({} of {} servers left; quorum needs {}). A surviving follower drops its leader within ~10 s, a surviving leader after ~17-30 s.",
                targets.join(", "),
                left,
                st.nodes.len(),
                st.nodes.len() / 2 + 1
            );
        }
        Fault::Partition => {
            let targets = named(vec![
                current_leader(st).unwrap_or_else(|| st.nodes[0].name.clone())
            ]);
            let mut rules = Vec::new();
            for n in &targets {
                rules.extend(cluster_port_rules(&st.node(n)?.netns));
            }
            st.faults.push(FaultRecord::Partition {
                nodes: targets.clone(),
                rules: rules.clone(),
            });
            firewall::insert_recorded(st, &rules)?;
            for r in &rules {
                say(r.display());
            }
            println!(
                "partition: {} cut off from the cluster port {CLUSTER_PORT} (its client and monitoring ports still answer). The majority elects a leader within ~5-10 s; routes stay listed for ~60 s.",
                targets.join(", ")
            );
        }
        Fault::BadRoutes => {
            let targets = named(st.node_names());
            let mut originals = Vec::new();
            for n in &targets {
                let conf = st.node(n)?.config.clone();
                let text = std::fs::read_to_string(&conf)
                    .map_err(|e| super::io_err(format!("cannot read {}", conf.display()), e))?;
                originals.push((n.clone(), text));
            }
            st.faults.push(FaultRecord::BadRoutes {
                originals: originals.clone(),
            });
            st.save()?;
            for (n, text) in &originals {
                let conf = st.node(n)?.config.clone();
                std::fs::write(&conf, bad_routes(text))
                    .map_err(|e| super::io_err(format!("cannot write {}", conf.display()), e))?;
            }
            restart(st, &targets)?;
            println!("bad-routes: routes of {} now point at port {BAD_ROUTE_PORT}; servers restarted. With every node wrong: num_routes 0, no leader.", targets.join(", "));
        }
        Fault::Dns => {
            let targets = named(st.node_names());
            let mut originals = Vec::new();
            for n in &targets {
                let hosts = hosts_file(st, n)?;
                let text = std::fs::read_to_string(&hosts)
                    .map_err(|e| super::io_err(format!("cannot read {}", hosts.display()), e))?;
                originals.push((n.clone(), text));
            }
            st.faults.push(FaultRecord::Dns { originals });
            st.save()?;
            for n in &targets {
                // Truncate in place: sshd's namespace bind-mounts this very inode over /etc/hosts.
                std::fs::write(hosts_file(st, n)?, "")
                    .map_err(|e| super::io_err("cannot empty the hosts file", e))?;
            }
            restart(st, &targets)?;
            println!("dns: /etc/hosts emptied in the namespaces of {}; servers restarted (routes by host name no longer resolve there).", targets.join(", "));
        }
        Fault::Frozen => {
            let targets = named(vec![
                current_leader(st).unwrap_or_else(|| st.nodes[0].name.clone())
            ]);
            let mut pids = Vec::new();
            for n in &targets {
                let node = st.node(n)?;
                let pid = server::read_pid(&node.server_pidfile)
                    .filter(|p| server::pid_is_ours(*p, &node.config))
                    .ok_or_else(|| {
                        Error::Usage(format!("frozen: nats-server of {n} is not running"))
                    })?;
                pids.push((n.clone(), pid));
            }
            st.faults.push(FaultRecord::Frozen { pids: pids.clone() });
            st.save()?;
            for (n, pid) in &pids {
                if !server::signal(*pid, "STOP") {
                    return Err(Error::Other(format!("kill -STOP {pid} ({n}) failed")));
                }
            }
            let list: Vec<String> = pids.iter().map(|(n, p)| format!("{n} (pid {p})")).collect();
            let majority = pids.len() > st.nodes.len() / 2;
            println!(
                "frozen: SIGSTOPped {}: the process exists (state T) but its monitoring port does not answer. {}",
                list.join(", "),
                if majority {
                    "A majority is frozen: no leader."
                } else {
                    "The others keep or elect a leader; freeze a majority for a leaderless cluster."
                }
            );
        }
        Fault::Diverged => diverge(st, nodes)?,
        Fault::Destroy => destroy::inject(st, nodes)?,
        Fault::Rename => rename::inject(st, nodes)?,
        Fault::StreamQuorum => stream_quorum::inject(st, nodes)?,
        Fault::Flap => unreachable!("handled above"),
    }
    Ok(())
}

/// DROP of the cluster port, both directions and both ends of a connection (which side dialled
/// a route is not fixed).
fn cluster_port_rules(netns: &str) -> Vec<IptablesRule> {
    let port = CLUSTER_PORT.to_string();
    let mut rules = Vec::new();
    for chain in ["INPUT", "OUTPUT"] {
        for dir in ["--dport", "--sport"] {
            rules.push(firewall::rule(
                netns,
                chain,
                &["-p", "tcp", dir, &port, "-j", "DROP"],
            ));
        }
    }
    rules
}

/// The lab name of the meta leader any node reports (the agreed one first).
pub fn current_leader(st: &LabState) -> Option<String> {
    let l = monitor::agreed_leader(st, &st.node_names()).or_else(|| {
        monitor::leaders(st, &st.node_names(), Duration::from_millis(800))
            .into_iter()
            .find_map(|(_, l)| l)
    })?;
    // The leader is a server_name; after a rename it differs from the lab's name.
    Some(st.node(&l).map(|n| n.name.clone()).unwrap_or(l))
}

fn bad_routes(conf: &str) -> String {
    conf.lines()
        .map(|l| {
            if l.contains("nats-route://") || l.contains("nats://") {
                l.replace(
                    &format!(":{CLUSTER_PORT}\""),
                    &format!(":{BAD_ROUTE_PORT}\""),
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn hosts_file(st: &LabState, node: &str) -> Result<std::path::PathBuf> {
    let n = st.node(node)?;
    let etc = n
        .netns_etc
        .clone()
        .ok_or_else(|| Error::Other(format!("{node} has no /etc/netns directory recorded")))?;
    Ok(etc.join("hosts"))
}

/// Stops all `nodes` first, then starts them (so a restart of several nodes is one event).
fn restart(st: &mut LabState, nodes: &[String]) -> Result<()> {
    server::stop_many(st, nodes)?;
    server::start_many(st, nodes)?;
    Ok(())
}

/// Meta term persisted in `<store_dir>/jetstream/<SYS>/_js_/_meta_/tav.idx` (first u64, LE).
pub fn meta_term(store_dir: &Path) -> Option<u64> {
    let p = store_dir
        .join("jetstream")
        .join(server::SYSTEM_ACCOUNT)
        .join("_js_")
        .join("_meta_")
        .join("tav.idx");
    let b = std::fs::read(p).ok()?;
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

/// Stale Raft state: one node stops; the others create and delete a stream (the meta log grows)
/// and step the meta leader down (the term grows); then every server is stopped, so the disks
/// disagree on term and index.
fn diverge(st: &mut LabState, nodes: &[String]) -> Result<()> {
    let all = st.node_names();
    let (leader, _) = monitor::wait_leader(st, &all, Instant::now(), Duration::from_secs(30))
        .map_err(|e| Error::Usage(format!("diverged needs a healthy cluster first: {e}")))?;
    let stale = match nodes.first() {
        Some(n) => n.clone(),
        None => all
            .iter()
            .rev()
            .find(|n| **n != leader)
            .cloned()
            .unwrap_or_else(|| all[0].clone()),
    };
    if all.len() < 3 {
        return Err(Error::Usage(
            "diverged needs at least 3 nodes (the others must keep quorum)".into(),
        ));
    }
    st.faults.push(FaultRecord::Diverged {
        stale: stale.clone(),
    });
    st.save()?;
    server::stop(st, &stale)?;
    let others: Vec<String> = all.iter().filter(|n| **n != stale).cloned().collect();
    monitor::wait_leader(st, &others, Instant::now(), Duration::from_secs(30))?;

    // Meta log entries the stale node will miss.
    let skip = vec![stale.clone()];
    seed::retry(Duration::from_secs(20), || {
        let mut c = seed::connect_any(st, false, &skip)?;
        let cfg = json!({"name": "LAB_DIVERGED", "subjects": ["lab.diverged.>"], "storage": "file", "num_replicas": 1});
        c.js_request(
            "$JS.API.STREAM.CREATE.LAB_DIVERGED",
            &cfg,
            Duration::from_secs(5),
        )?;
        c.js_request(
            "$JS.API.STREAM.DELETE.LAB_DIVERGED",
            &json!({}),
            Duration::from_secs(5),
        )?;
        Ok(())
    })?;
    // A higher term the stale node will miss.
    let before = current_leader(st);
    seed::retry(Duration::from_secs(20), || {
        let mut c = seed::connect_any(st, true, &skip)?;
        c.js_request(
            "$JS.API.META.LEADER.STEPDOWN",
            &json!({}),
            Duration::from_secs(5),
        )
        .map(|_| ())
    })?;
    let t0 = Instant::now();
    // Wait until the others agree on a leader again (possibly a different one).
    let (after, _) = monitor::wait_leader(st, &others, t0, Duration::from_secs(30))?;
    say(format!(
        "meta leader stepped down: {} -> {after}",
        before.unwrap_or_else(|| "?".into())
    ));
    server::stop_many(st, &others)?;
    let terms: Vec<String> = st
        .nodes
        .iter()
        .map(|n| {
            format!(
                "{}={}",
                n.name,
                meta_term(&n.store_dir)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "?".into())
            )
        })
        .collect();
    println!(
        "diverged: {stale} stopped first and missed a stream create/delete and a leader step-down; all servers are now stopped. Meta terms on disk: {}",
        terms.join(" ")
    );
    Ok(())
}

/// What `lab status` adds after a fault's line.
pub fn status_note(st: &LabState, f: &FaultRecord) -> String {
    match f {
        // Someone (a runbook, say) may have repaired it already; `lab heal` is still safe.
        FaultRecord::QuorumLoss { nodes } | FaultRecord::StreamQuorum { nodes, .. }
            if nodes.iter().all(|n| server::is_running(st, n)) =>
        {
            " (those servers run again; `lab heal` forgets it)".into()
        }
        FaultRecord::Destroy { .. } => {
            " (permanent; `lab heal --rebuild-destroyed` brings the host back with an empty data dir)"
                .into()
        }
        FaultRecord::Rename { from, to, .. } => format!(" ({from} -> {to})"),
        FaultRecord::Flap {
            node,
            what,
            pid,
            until,
            ..
        } => match pid {
            Some(p) if flap::restorer_running(st, node, *p) => format!(
                " ({what}, restored in {}s by pid {p})",
                until.saturating_sub(flap::now_unix())
            ),
            _ => format!(" ({what}, over; `lab heal` forgets it)"),
        },
        _ => String::new(),
    }
}

/// Stops the detached restorers of `flap` faults (by PID, checked; their whole process group).
pub fn stop_restorers(st: &LabState, problems: &mut Vec<String>) {
    for f in &st.faults {
        if let FaultRecord::Flap {
            node,
            pid: Some(pid),
            ..
        } = f
        {
            if let Err(e) = flap::stop_restorer(st, node, *pid) {
                problems.push(e.to_string());
            }
        }
    }
}

/// Undoes every recorded fault (newest first), starts every stopped server and waits for a
/// meta leader. Destroyed nodes stay destroyed (their data is lost for good) unless
/// `rebuild_destroyed`: then they come back reachable, with an empty data dir.
pub fn heal(st: &mut LabState, rebuild_destroyed: bool) -> Result<()> {
    let t0 = Instant::now();
    let faults: Vec<FaultRecord> = st.faults.iter().rev().cloned().collect();
    if faults.is_empty() {
        say("no recorded faults; making sure every server runs");
    }
    let mut restart_nodes: Vec<String> = Vec::new();
    let mut stale_peers: Vec<String> = Vec::new();
    for f in &faults {
        match f {
            FaultRecord::QuorumLoss { .. }
            | FaultRecord::Diverged { .. }
            | FaultRecord::StreamQuorum { .. } => {}
            FaultRecord::Partition { rules, .. } => {
                firewall::remove_recorded(st, rules)?;
                say(format!("removed {} iptables rule(s)", rules.len()));
            }
            FaultRecord::BadRoutes { originals } => {
                for (n, text) in originals {
                    let conf = st.node(n)?.config.clone();
                    std::fs::write(&conf, text).map_err(|e| {
                        super::io_err(format!("cannot restore {}", conf.display()), e)
                    })?;
                    restart_nodes.push(n.clone());
                }
                say("restored the original configs");
            }
            FaultRecord::Dns { originals } => {
                for (n, text) in originals {
                    std::fs::write(hosts_file(st, n)?, text)
                        .map_err(|e| super::io_err("cannot restore the hosts file", e))?;
                    restart_nodes.push(n.clone());
                }
                say("restored the namespaces' hosts files");
            }
            FaultRecord::Frozen { pids } => {
                for (n, pid) in pids {
                    let conf = st.node(n)?.config.clone();
                    if server::pid_is_ours(*pid, &conf) {
                        server::signal(*pid, "CONT");
                        say(format!("{n}: SIGCONT pid {pid}"));
                    }
                }
            }
            FaultRecord::Destroy { nodes, rules } => {
                if !rebuild_destroyed {
                    say(format!(
                        "{} stay{} destroyed: the data is gone for good (`lab heal --rebuild-destroyed` brings {} back with an EMPTY data dir)",
                        nodes.join(", "),
                        if nodes.len() == 1 { "s" } else { "" },
                        if nodes.len() == 1 { "it" } else { "them" }
                    ));
                    continue; // the record stays: the loss is permanent
                }
                destroy::rebuild(st, nodes, rules)?;
            }
            FaultRecord::Rename { node, from, to } => {
                rename::undo(st, node, from)?;
                restart_nodes.push(node.clone());
                stale_peers.push(to.clone());
            }
            FaultRecord::Flap {
                node, rules, pid, ..
            } => {
                if let Some(pid) = pid {
                    flap::stop_restorer(st, node, *pid)?;
                }
                firewall::remove_recorded(st, rules)?;
                say(format!("{node}: flap rules removed"));
            }
        }
        // Each undone fault is forgotten at once: a crash mid-heal does not undo it twice.
        st.faults
            .retain(|x| x.kind() != f.kind() || x.nodes() != f.nodes());
        st.save()?;
    }
    let destroyed = st.destroyed();
    restart_nodes.retain(|n| !destroyed.contains(n));
    restart_nodes.sort();
    restart_nodes.dedup();
    let running: Vec<String> = restart_nodes
        .iter()
        .filter(|n| server::is_running(st, n))
        .cloned()
        .collect();
    server::stop_many(st, &running)?;
    let alive: Vec<String> = st
        .node_names()
        .into_iter()
        .filter(|n| !destroyed.contains(n))
        .collect();
    let stopped: Vec<String> = alive
        .iter()
        .filter(|n| !server::is_running(st, n))
        .cloned()
        .collect();
    server::start_many(st, &stopped)?;
    let quorum = st.nodes.len() / 2 + 1;
    if alive.len() < quorum {
        // Permanent loss of a majority: no leader can come back by itself (unless a recovery
        // already shrank the peer set, which a quick look tells).
        match monitor::wait_leader(st, &alive, t0, Duration::from_secs(5)) {
            Ok((leader, _)) => println!(
                "healed what can be healed: meta leader {leader} agreed by the {} remaining node(s); destroyed: {}",
                alive.len(),
                destroyed.join(", ")
            ),
            Err(_) => println!(
                "healed what can be healed: {} of {} servers remain ({} destroyed), fewer than the quorum of {quorum}: no meta leader until a recovery (runbook permanent-loss) or `lab heal --rebuild-destroyed`",
                alive.len(),
                st.nodes.len(),
                destroyed.join(", ")
            ),
        }
        return Ok(());
    }
    let (leader, took) = monitor::wait_leader(st, &alive, t0, super::LEADER_TIMEOUT)?;
    for peer in &stale_peers {
        rename::remove_peer(st, peer);
    }
    if destroyed.is_empty() {
        println!(
            "healed: meta leader {leader} agreed by all {} nodes, {:.2}s after `lab heal` began",
            st.nodes.len(),
            took.as_secs_f64()
        );
    } else {
        println!(
            "healed: meta leader {leader} agreed by the {} remaining nodes, {:.2}s after `lab heal` began; destroyed: {}",
            alive.len(),
            took.as_secs_f64(),
            destroyed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_routes_changes_only_route_ports() {
        let conf = "cluster {\n  listen: \"10.1.2.11:6222\"\n  routes: [\n    \"nats-route://n1:6222\"\n    \"nats-route://n2:6222\"\n  ]\n}\n";
        let bad = bad_routes(conf);
        assert!(bad.contains("listen: \"10.1.2.11:6222\""));
        assert!(bad.contains("\"nats-route://n1:6299\""));
        assert!(bad.contains("\"nats-route://n2:6299\""));
        assert!(!bad.contains("n2:6222"));
    }

    #[test]
    fn bad_routes_also_rewrites_helm_json_routes() {
        let conf = "{\n  \"cluster\": {\n    \"port\": 6222,\n    \"routes\": [\n      \"nats://route:pw@n1:6222\",\n      \"nats://route:pw@n2:6222\"\n    ]\n  }\n}\n";
        let bad = bad_routes(conf);
        assert!(bad.contains("\"nats://route:pw@n1:6299\","), "{bad}");
        assert!(bad.contains("\"nats://route:pw@n2:6299\"\n"), "{bad}");
        assert!(bad.contains("\"port\": 6222,"), "{bad}");
    }

    #[test]
    fn new_fault_records_round_trip() {
        let f = FaultRecord::Flap {
            node: "n2".into(),
            what: "ssh".into(),
            seconds: 5,
            rules: vec![],
            pid: Some(42),
            until: 1,
        };
        let j = serde_json::to_string(&f).expect("json");
        assert!(j.contains("\"fault\":\"flap\""), "{j}");
        let back: FaultRecord = serde_json::from_str(&j).expect("back");
        assert_eq!(
            (back.kind(), back.nodes()),
            ("flap", vec!["n2".to_string()])
        );
        let r = FaultRecord::Rename {
            node: "n3".into(),
            from: "n3".into(),
            to: "n3b".into(),
        };
        let back: FaultRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.kind(), "rename");
        // A lab.json written before these options existed still loads.
        let old = r#"{"name":"l","dir":"/tmp/l","subnet":"1.2","nats_server":"/x","nats_version":"v2.9.10",
            "created_dir":true,"bridge":null,"bridge_addr":"10.1.2.1","sys_user":"sys","sys_password":"p",
            "app_user":"app","app_password":"q","nodes":[]}"#;
        let st: LabState = serde_json::from_str(old).expect("old lab.json");
        assert!(st.bastion.is_none() && st.ssh_user.is_none() && !st.accounts);
    }

    #[test]
    fn fault_records_round_trip() {
        let f = FaultRecord::Partition {
            nodes: vec!["n1".into()],
            rules: vec![IptablesRule {
                netns: "l-n1".into(),
                chain: "INPUT".into(),
                spec: vec!["-p".into(), "tcp".into()],
            }],
        };
        let j = serde_json::to_string(&f).expect("json");
        assert!(j.contains("\"fault\":\"partition\""), "{j}");
        let back: FaultRecord = serde_json::from_str(&j).expect("back");
        assert_eq!(back.kind(), "partition");
        assert_eq!(back.nodes(), vec!["n1".to_string()]);
    }
}
