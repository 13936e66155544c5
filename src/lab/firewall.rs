//! iptables rules inside the lab's namespaces: the bastion's restriction (`lab up --bastion`)
//! and the faults that drop traffic. Every rule is recorded in lab.json before it is inserted
//! and removed with `-D` by its exact spec; nothing outside the lab's own namespaces is touched.

use super::run_out;
use super::server::MONITOR_PORT;
use super::state::{IptablesRule, LabState, NodeState};
use crate::error::Result;
use std::time::Duration;

/// A rule in `netns`: `iptables -I <chain> <spec…>`.
pub fn rule(netns: &str, chain: &str, spec: &[&str]) -> IptablesRule {
    IptablesRule {
        netns: netns.to_string(),
        chain: chain.to_string(),
        spec: spec.iter().map(|s| s.to_string()).collect(),
    }
}

/// `iptables -w 5 OP CHAIN SPEC` inside the rule's namespace (`-I` inserts at the top).
pub fn apply(r: &IptablesRule, op: &str) -> Result<()> {
    let mut args = vec![
        "netns",
        "exec",
        r.netns.as_str(),
        "iptables",
        "-w",
        "5",
        op,
        r.chain.as_str(),
    ];
    args.extend(r.spec.iter().map(String::as_str));
    super::run("ip", &args).map(|_| ())
}

/// The rule is in place (`iptables -C`).
pub fn present(r: &IptablesRule) -> bool {
    let mut args = vec![
        "netns",
        "exec",
        r.netns.as_str(),
        "iptables",
        "-w",
        "5",
        "-C",
        r.chain.as_str(),
    ];
    args.extend(r.spec.iter().map(String::as_str));
    run_out("ip", &args, Duration::from_secs(10))
        .map(|o| o.ok)
        .unwrap_or(false)
}

/// Removes the rule when it is there; an absent rule is fine. True when one was removed.
pub fn remove(r: &IptablesRule) -> Result<bool> {
    if present(r) {
        apply(r, "-D")?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Records `rules` in lab.json, then inserts them in order (each at the top of its chain, so
/// the last one inserted is matched first).
pub fn insert_recorded(st: &mut LabState, rules: &[IptablesRule]) -> Result<()> {
    st.iptables.extend(rules.iter().cloned());
    st.save()?;
    for r in rules {
        apply(r, "-I")?;
    }
    Ok(())
}

/// Removes `rules` (those still there) and forgets them.
pub fn remove_recorded(st: &mut LabState, rules: &[IptablesRule]) -> Result<()> {
    for r in rules {
        remove(r)?;
        st.iptables.retain(|x| x != r);
    }
    st.save()
}

/// Every packet through the node's link (`eth0`), both ways: the host is gone from the network.
/// Its loopback keeps working.
pub fn drop_all(n: &NodeState) -> Vec<IptablesRule> {
    vec![
        rule(&n.netns, "INPUT", &["-i", "eth0", "-j", "DROP"]),
        rule(&n.netns, "OUTPUT", &["-o", "eth0", "-j", "DROP"]),
    ]
}

/// SSH (22) and monitoring of a node answer only the bastion and the node itself; the cluster
/// and client ports stay open. In insertion order: the DROPs first, so the ACCEPTs, inserted
/// above them, are matched first.
pub fn bastion_rules(n: &NodeState, bastion_addr: &str) -> Vec<IptablesRule> {
    let mut out = Vec::new();
    for port in ["22".to_string(), MONITOR_PORT.to_string()] {
        let p = port.as_str();
        out.push(rule(
            &n.netns,
            "INPUT",
            &["-p", "tcp", "--dport", p, "-j", "DROP"],
        ));
        out.push(rule(
            &n.netns,
            "INPUT",
            &["-i", "lo", "-p", "tcp", "--dport", p, "-j", "ACCEPT"],
        ));
        out.push(rule(
            &n.netns,
            "INPUT",
            &[
                "-s",
                bastion_addr,
                "-p",
                "tcp",
                "--dport",
                p,
                "-j",
                "ACCEPT",
            ],
        ));
    }
    out
}

/// Removes every recorded rule (used by `down`; the namespaces go away anyway).
pub fn remove_all(st: &mut LabState, problems: &mut Vec<String>) {
    let existing = super::net::netns_list();
    for r in std::mem::take(&mut st.iptables) {
        // Absent already is fine: only a rule that is still there and cannot go is a problem.
        if existing.contains(&r.netns) {
            if let Err(e) = remove(&r) {
                problems.push(e.to_string());
            }
        }
    }
}
