//! What the nodes answered, as they answered it: the raw material of [`ClusterFacts`].
//!
//! The gather ([`super::probe::observe`]) produces one [`NodeObservation`] per node (every
//! monitoring endpoint's status and body or error, the probe script's stdout/stderr/exit, why
//! it could not run) plus the system account's view; [`facts_from`] turns them into facts.
//! Live `status`/`diagnose` and a capture read back offline (`--from`) go through the same
//! [`facts_from`], so the two cannot drift.

use super::facts::{ClusterFacts, HttpBodies, NodeFacts, Thresholds};
use super::probe::ShellReport;
use super::sysfacts::SystemView;
use crate::inventory::{Inventory, Node};

/// What the probe's SSH exec returned, unparsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeRun {
    pub stdout: String,
    pub stderr: String,
    /// None when killed by a signal or the timeout.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The timeout the script ran under (named when it timed out).
    pub timeout_ms: u64,
}

/// The probe script on one node: it ran (perhaps without sudo), or why it did not.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeObservation {
    Ran {
        run: ProbeRun,
        /// `sudo -n` wanted a password, so the script ran as the login user: the reason.
        sudo_refused: Option<String>,
    },
    NotRun {
        error: String,
        /// Why the node cannot be managed (host key refused, authentication, jump host, sudo).
        unmanageable: Option<String>,
    },
}

/// Everything one node answered.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeObservation {
    pub name: String,
    pub http: HttpBodies,
    pub probe: ProbeObservation,
}

/// One gather of the whole cluster.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// In inventory order.
    pub nodes: Vec<NodeObservation>,
    /// The system account's view, when it was asked.
    pub system: Option<SystemView>,
}

/// The probe report of one node and why it cannot be managed, from what the probe returned.
pub fn shell_from(
    node: &Node,
    p: &ProbeObservation,
) -> (Result<ShellReport, String>, Option<String>) {
    match p {
        ProbeObservation::NotRun {
            error,
            unmanageable,
        } => (Err(error.clone()), unmanageable.clone()),
        ProbeObservation::Ran { run, sudo_refused } => {
            let mut r = read_probe_output(run, node);
            if let (Some(reason), Ok(r)) = (sudo_refused, &mut r) {
                // The service command may need root too: its answer proves nothing.
                r.service_exit = None;
                r.errors.insert(
                    0,
                    format!("{reason}; the probe ran without sudo, so what needs root is missing"),
                );
            }
            (r, sudo_refused.clone())
        }
    }
}

fn read_probe_output(run: &ProbeRun, node: &Node) -> Result<ShellReport, String> {
    let mut r = ShellReport::parse(&run.stdout, &node.nats.store_dir, node.nats.cluster_port);
    if run.timed_out {
        r.errors.push(format!(
            "probe script timed out after {}",
            crate::duration::format(std::time::Duration::from_millis(run.timeout_ms))
        ));
    }
    if !run.stdout.contains("NRS_BEGIN") {
        let err = run.stderr.trim();
        return Err(format!(
            "probe script did not run (exit {}){}",
            run.exit_code.map_or("none".to_string(), |c| c.to_string()),
            if err.is_empty() {
                String::new()
            } else {
                format!(": {}", err.chars().take(200).collect::<String>())
            }
        ));
    }
    Ok(r)
}

/// One node's facts from its answers. When its HTTP monitoring did not answer at all and the
/// system account has its view (`system`), that view is used instead (`source: system`), and
/// the HTTP failure stays in `errors`.
pub fn node_facts(node: &Node, obs: &NodeObservation, system: Option<&HttpBodies>) -> NodeFacts {
    node_facts_via(node, obs, system, "")
}

/// [`node_facts`], naming where the system account was reached (`via`, if not empty) in the
/// note that says the facts were read over it.
pub fn node_facts_via(
    node: &Node,
    obs: &NodeObservation,
    system: Option<&HttpBodies>,
    via: &str,
) -> NodeFacts {
    let (shell, unmanageable) = shell_from(node, &obs.probe);
    let bodies = &obs.http;
    let http_failed = matches!(&bodies.varz, Some(Err(_)));
    let mut f = match system {
        Some(sys) if http_failed && matches!(&sys.varz, Some(Ok(_))) => {
            let mut f = NodeFacts::from_http(&node.name, sys);
            if let Some(Err(e)) = &bodies.varz {
                let at = if via.is_empty() {
                    String::new()
                } else {
                    format!(" at {via}")
                };
                f.errors.insert(
                    0,
                    format!(
                        "monitor /varz: {e} (monitoring facts read over the system account{at})"
                    ),
                );
            }
            f.source = Some("system".into());
            f
        }
        _ => NodeFacts::from_http(&node.name, bodies),
    };
    f.host = node.host.clone();
    f.unmanageable = unmanageable;
    match &shell {
        Ok(r) => f.apply_shell(Ok(r)),
        Err(e) => f.apply_shell(Err(e)),
    }
    if let Some(sn) = &f.server_name {
        if sn != &node.name {
            f.errors.push(format!(
                "varz: server_name is {sn:?} but the inventory calls this node {:?} (names must never change)",
                node.name
            ));
        }
    }
    f
}

/// The cluster's facts from one gather's observations (nodes the inventory does not name are
/// left out: a capture's inventory always names them).
pub fn facts_from(inv: &Inventory, obs: &Observations, th: &Thresholds) -> ClusterFacts {
    let mut facts: Vec<NodeFacts> = obs
        .nodes
        .iter()
        .filter_map(|o| {
            let n = inv.nodes.iter().find(|n| n.name == o.name)?;
            let sys = obs.system.as_ref().and_then(|v| v.by_server.get(&n.name));
            let via = obs.system.as_ref().map_or("", |v| v.via.as_str());
            Some(node_facts_via(n, o, sys, via))
        })
        .collect();
    if let Some(v) = &obs.system {
        // Why the second source could not help, on the first node that needed it.
        if let Some(f) = facts.iter_mut().find(|f| f.monitor != "ok") {
            f.errors.extend(v.errors.iter().cloned());
        }
    }
    ClusterFacts::build_with(inv, facts, th)
}
