//! `lab break flap NODE SECONDS [ssh|cluster|all]`: a node's SSH port, cluster port or whole
//! link drops packets for SECONDS, then comes back by itself. The rules are recorded and
//! inserted, then a restorer (`sleep SECONDS; iptables -D …`) is started with setsid inside the
//! node's namespace and recorded by PID; the command returns at once. `lab heal` and `lab down`
//! stop a restorer that is still waiting (by PID, checked against its command line, with its
//! process group) and remove the rules themselves.

use super::super::firewall;
use super::super::server;
use super::super::state::{FaultRecord, IptablesRule, LabState, NodeState};
use super::super::{io_err, say, shell_quote};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Longest flap: a rehearsal fault, not an outage to forget about.
pub const MAX_SECONDS: u64 = 3600;

fn usage(why: &str) -> Error {
    Error::Usage(format!(
        "flap: {why}; usage: `lab break flap NODE SECONDS [ssh|cluster|all]` (e.g. `lab break flap n2 10 ssh`)"
    ))
}

pub fn inject(st: &mut LabState, args: &[String]) -> Result<()> {
    let (node, secs, what) = match args {
        [n, s] => (n, s, "all"),
        [n, s, w] => (n, s, w.as_str()),
        _ => return Err(usage("expected a node and a number of seconds")),
    };
    let node = st.node(node)?.name.clone();
    if st.destroyed().contains(&node) {
        return Err(usage(&format!("{node} is destroyed")));
    }
    let seconds: u64 = match secs.parse() {
        Ok(s) if (1..=MAX_SECONDS).contains(&s) => s,
        _ => {
            return Err(usage(&format!(
                "`{secs}` is not a number of seconds from 1 to {MAX_SECONDS}"
            )))
        }
    };
    let n = st.node(&node)?.clone();
    let rules = flap_rules(&n, &st.subnet, what)?;
    let until = now_unix() + seconds;
    st.faults.push(FaultRecord::Flap {
        node: node.clone(),
        what: what.to_string(),
        seconds,
        rules: rules.clone(),
        pid: None,
        until,
    });
    firewall::insert_recorded(st, &rules)?;
    let pid = spawn_restorer(&n, seconds, &rules)?;
    for f in st.faults.iter_mut().rev() {
        if let FaultRecord::Flap {
            node: fnode,
            pid: p @ None,
            ..
        } = f
        {
            if *fnode == node {
                *p = Some(pid);
                break;
            }
        }
    }
    st.save()?;
    println!(
        "flap: {what} traffic of {node} dropped for {seconds}s; restored by itself (restorer pid {pid}); `lab heal` restores it now."
    );
    Ok(())
}

/// The rules of a flap. Each names the interface (and `all` the lab's subnet), so that none has
/// the spec of a standing rule (the bastion's DROP of port 22) or of another fault (partition,
/// destroy): `iptables -C`/`-D` by spec then always find the flap's own rule.
fn flap_rules(n: &NodeState, subnet: &str, what: &str) -> Result<Vec<IptablesRule>> {
    let ns = n.netns.as_str();
    let cluster = super::CLUSTER_PORT.to_string();
    let net = format!("10.{subnet}.0/24");
    Ok(match what {
        // Both directions: dropping only what arrives would still let the node's answer
        // (output, exit status) reach the client.
        "ssh" => vec![
            firewall::rule(
                ns,
                "INPUT",
                &["-i", "eth0", "-p", "tcp", "--dport", "22", "-j", "DROP"],
            ),
            firewall::rule(
                ns,
                "OUTPUT",
                &["-o", "eth0", "-p", "tcp", "--sport", "22", "-j", "DROP"],
            ),
        ],
        "cluster" => {
            let mut v = Vec::new();
            for (chain, iface) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
                for dir in ["--dport", "--sport"] {
                    v.push(firewall::rule(
                        ns,
                        chain,
                        &[iface, "eth0", "-p", "tcp", dir, &cluster, "-j", "DROP"],
                    ));
                }
            }
            v
        }
        "all" => vec![
            firewall::rule(ns, "INPUT", &["-i", "eth0", "-s", &net, "-j", "DROP"]),
            firewall::rule(ns, "OUTPUT", &["-o", "eth0", "-d", &net, "-j", "DROP"]),
        ],
        other => return Err(usage(&format!("`{other}`: choose ssh, cluster or all"))),
    })
}

/// Seconds since the epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The restorer's log; its path is also the marker that identifies the restorer's process.
fn marker(n: &NodeState) -> PathBuf {
    n.node_dir.join("flap.log")
}

/// `setsid ip netns exec NS bash -c 'sleep N; iptables -D …'`: neither `setsid` (our child is
/// not a group leader) nor `ip netns exec` forks, so the PID is bash's, which leads its own
/// session and process group.
fn spawn_restorer(n: &NodeState, seconds: u64, rules: &[IptablesRule]) -> Result<u32> {
    let log = marker(n);
    let mut script = format!(
        "# nats-rescue lab flap restorer, log {}\nsleep {seconds}\n",
        log.display()
    );
    for r in rules {
        let spec: Vec<String> = r.spec.iter().map(|w| shell_quote(w)).collect();
        let rule = format!("{} {}", r.chain, spec.join(" "));
        script.push_str(&format!(
            "iptables -w 5 -D {rule} && echo \"$(date -u +%FT%TZ) removed: {rule}\"\n"
        ));
    }
    let out = std::fs::File::create(&log)
        .map_err(|e| io_err(format!("cannot create {}", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| io_err("cannot duplicate the restorer's log", e))?;
    let child = Command::new("setsid")
        .args(["ip", "netns", "exec", &n.netns, "bash", "-c", &script])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::Other(format!("cannot start the flap restorer: {e}")))?;
    // Not waited for: it outlives this command (init adopts it).
    Ok(child.id())
}

/// Stops a restorer still waiting (SIGTERM to its process group, so its `sleep` goes too).
pub fn stop_restorer(st: &LabState, node: &str, pid: u32) -> Result<()> {
    let n = st.node(node)?;
    if server::pid_is_ours(pid, &marker(n)) {
        server::signal_group(pid, "TERM");
        say(format!("{node}: flap restorer pid {pid} stopped"));
    }
    Ok(())
}

/// A restorer is still waiting.
pub fn restorer_running(st: &LabState, node: &str, pid: u32) -> bool {
    st.node(node)
        .map(|n| server::pid_is_ours(pid, &marker(n)))
        .unwrap_or(false)
}
