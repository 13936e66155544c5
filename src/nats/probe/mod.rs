//! Gathering facts from the nodes: monitoring endpoints over HTTP and ONE read-only shell
//! script over SSH per node, all nodes in parallel.

use super::facts::{ClusterFacts, HttpBodies, HttpResult, NodeFacts, Thresholds};
use super::monitor;
use super::observe::{
    facts_from, node_facts, shell_from, NodeObservation, Observations, ProbeObservation, ProbeRun,
};
use crate::inventory::{Inventory, Node};
use crate::transport::{RemoteCommand, Transport, TransportError};
use std::net::IpAddr;
use std::time::Duration;

/// Per-request HTTP timeout used by [`gather`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The read-only probe. Node-specific values are prepended as shell-quoted assignments and
/// `set --` arguments (peer name, host, cluster port, `ip`|`name`, repeated). Every output line
/// starts with a tag; [`ShellReport::parse`] reads them. Nothing here changes the node.
pub const PROBE_SCRIPT: &str = include_str!("probe.sh");

/// Renders the probe for one node: quoted assignments, the peer list, then [`PROBE_SCRIPT`].
pub fn render_probe_script(inv: &Inventory, node: &Node) -> Result<String, String> {
    let q = |s: &str| -> Result<String, String> {
        shlex::try_quote(s)
            .map(|c| c.into_owned())
            .map_err(|e| format!("cannot quote {s:?}: {e}"))
    };
    let mut out = String::new();
    out.push_str(&format!("SVC_STATUS={}\n", q(&node.nats.service.status)?));
    out.push_str(&format!("CLUSTER_PORT={}\n", node.nats.cluster_port));
    out.push_str(&format!("MONITOR_PORT={}\n", node.nats.monitor_port));
    out.push_str(&format!("STORE_DIR={}\n", q(&node.nats.store_dir)?));
    out.push_str(&format!("SYS_ACCOUNT={}\n", q(&node.nats.system_account)?));
    out.push_str(&format!("CONFIG_FILE={}\n", q(&node.nats.config_file)?));
    out.push_str("set --");
    for p in inv.nodes.iter().filter(|p| p.name != node.name) {
        let kind = if p
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
        {
            "ip"
        } else {
            "name"
        };
        out.push_str(&format!(
            " {} {} {} {kind}",
            q(&p.name)?,
            q(&p.host)?,
            p.nats.cluster_port
        ));
    }
    out.push('\n');
    out.push_str(PROBE_SCRIPT);
    Ok(out)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TcpResult {
    pub peer: String,
    pub host: String,
    pub port: u16,
    /// ok | refused | timeout | unresolved | unreachable | error: …
    pub result: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsResult {
    pub peer: String,
    pub host: String,
    /// ok | failed
    pub status: String,
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DfLine {
    pub total_kb: u64,
    pub used_kb: u64,
    pub available_kb: u64,
    pub mount: String,
}

/// What the probe script printed, parsed. Missing lines are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShellReport {
    pub service_exit: Option<i32>,
    /// Something listens on the cluster or monitor port (None: could not tell).
    pub listening: Option<bool>,
    pub pid: Option<u32>,
    pub proc_state: Option<String>,
    pub tcp: Vec<TcpResult>,
    pub dns: Vec<DnsResult>,
    pub route_dns: Vec<DnsResult>,
    pub loadavg: Option<(f64, f64, f64)>,
    pub nproc: Option<u64>,
    pub mem_total_kb: Option<u64>,
    pub mem_available_kb: Option<u64>,
    pub store_dir: String,
    pub store_exists: Option<bool>,
    pub df: Option<DfLine>,
    pub meta_exists: Option<bool>,
    /// `tav.idx`: term, vote.
    pub tav: Option<(u64, String)>,
    pub commit_index: Option<u64>,
    /// `peers.idx`: cluster size, peer ids.
    pub peers_idx: Option<(u64, Vec<String>)>,
    /// `(term, index)` of each `snap.<term>.<index>`.
    pub snapshots: Vec<(u64, u64)>,
    /// WAL block files and bytes.
    pub wal: Option<(u64, u64)>,
    /// Sequence of the last record in the newest WAL block (= last Raft log index).
    pub wal_last_index: Option<u64>,
    pub config_readable: Option<bool>,
    /// Route URLs of the config's `cluster.routes`, as parsed (credentials redacted).
    pub config_routes: Vec<String>,
    /// The config file and its includes as printed (`CFGFILE`/`CFGL` lines). Holds secrets:
    /// never journaled or printed; [`ShellReport::config`] is the redacted reading.
    pub config_capture: super::configfacts::CapturedConfig,
    /// The parsed config, secrets removed.
    pub config: Option<super::configfacts::ConfigFacts>,
    /// The config file is writable by the probe's user.
    pub config_writable: Option<bool>,
    pub firewall: Vec<String>,
    /// The script ran to its end.
    pub complete: bool,
    pub errors: Vec<String>,
}

fn hex_bytes(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

fn le_u64(b: &[u8]) -> Option<u64> {
    let a: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(a))
}

fn le_u32(b: &[u8]) -> Option<u32> {
    let a: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(a))
}

/// The sequence of the last record of a filestore block (record: u32 length with the header
/// bit, u64 seq with the erase bit, i64 ts, u16 subject length, …, 8-byte hash). None when the
/// bytes do not walk cleanly (compressed or encrypted stores).
pub fn last_record_seq(b: &[u8]) -> Option<u64> {
    const HDR: usize = 4 + 8 + 8 + 2;
    let mut i = 0usize;
    let mut last = None;
    while i + HDR <= b.len() {
        let rl = (le_u32(&b[i..])? & 0x7FFF_FFFF) as usize;
        if rl < HDR + 8 || i + rl > b.len() {
            return None;
        }
        let raw = le_u64(&b[i + 4..])?;
        // The filestore flags records in the top bits of seq: bit 63 = erased, bit 62 =
        // tombstone (2.10+). A tombstone is a marker, not a log entry: skip it.
        let tombstone = raw & (1u64 << 62) != 0;
        let seq = raw & !(3u64 << 62);
        if seq > 0 && !tombstone {
            last = Some(last.map_or(seq, |l: u64| l.max(seq)));
        }
        i += rl;
    }
    if i == b.len() {
        last
    } else {
        None
    }
}

impl ShellReport {
    pub fn parse(stdout: &str, store_dir: &str, cluster_port: u16) -> ShellReport {
        let mut r = ShellReport {
            store_dir: store_dir.to_string(),
            ..Default::default()
        };
        let mut listen_seen = false;
        let mut cfg_file: Option<(String, String)> = None;
        let mut mem_total = None;
        let mut mem_avail = None;
        let port_re = regex::Regex::new(&format!(r"(^|[^0-9]){cluster_port}([^0-9]|$)")).ok();
        for line in stdout.lines() {
            let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
            let f: Vec<&str> = rest.split_whitespace().collect();
            match tag {
                "SERVICE" => r.service_exit = f.first().and_then(|s| s.parse().ok()),
                "LISTEN" => {
                    listen_seen = true;
                    if f.get(1) == Some(&"yes") {
                        r.listening = Some(true);
                    } else if r.listening.is_none() {
                        r.listening = Some(false);
                    }
                }
                "PROC" => {
                    r.pid = f.first().and_then(|s| s.parse().ok());
                    r.proc_state = f.get(1).map(|s| s.to_string());
                }
                "TCP" if f.len() >= 4 => {
                    let result = rest.splitn(4, ' ').nth(3).unwrap_or("").trim().to_string();
                    r.tcp.push(TcpResult {
                        peer: f[0].into(),
                        host: f[1].into(),
                        port: f[2].parse().unwrap_or(0),
                        result,
                    });
                }
                "DNS" | "RDNS" => {
                    let (peer, host, status, addrs) = if tag == "DNS" {
                        (f.first(), f.get(1), f.get(2), f.get(3..))
                    } else {
                        (None, f.first(), f.get(1), f.get(2..))
                    };
                    let d = DnsResult {
                        peer: peer.map(|s| s.to_string()).unwrap_or_default(),
                        host: host.map(|s| s.to_string()).unwrap_or_default(),
                        status: status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "failed".into()),
                        addresses: addrs
                            .map(|a| a.iter().map(|s| s.to_string()).collect())
                            .unwrap_or_default(),
                    };
                    if tag == "DNS" {
                        r.dns.push(d);
                    } else {
                        r.route_dns.push(d);
                    }
                }
                "LOADAVG" if f.len() >= 3 => {
                    if let (Ok(a), Ok(b), Ok(c)) = (f[0].parse(), f[1].parse(), f[2].parse()) {
                        r.loadavg = Some((a, b, c));
                    }
                }
                "NPROC" => r.nproc = f.first().and_then(|s| s.parse().ok()),
                "MEM" => {
                    let v = f.get(1).and_then(|s| s.parse::<u64>().ok());
                    match f.first() {
                        Some(&"MemTotal:") => mem_total = v,
                        Some(&"MemAvailable:") => mem_avail = v,
                        _ => {}
                    }
                }
                "STORE" => r.store_exists = Some(f.first() == Some(&"yes")),
                "DF" if f.len() >= 6 => {
                    if let (Ok(t), Ok(u), Ok(a)) = (f[1].parse(), f[2].parse(), f[3].parse()) {
                        r.df = Some(DfLine {
                            total_kb: t,
                            used_kb: u,
                            available_kb: a,
                            mount: f[5..].join(" "),
                        });
                    }
                }
                "METADIR" => r.meta_exists = Some(f.first() == Some(&"yes")),
                "TAVHEX" => {
                    let b = hex_bytes(rest);
                    if let Some(term) = le_u64(&b) {
                        let vote: String = b
                            .get(8..16)
                            .map(|v| {
                                v.iter()
                                    .filter(|c| c.is_ascii_alphanumeric())
                                    .map(|c| *c as char)
                                    .collect()
                            })
                            .unwrap_or_default();
                        r.tav = Some((term, vote));
                    }
                }
                "COMMITHEX" => r.commit_index = le_u64(&hex_bytes(rest)),
                "PEERSHEX" => {
                    let b = hex_bytes(rest);
                    if let (Some(size), Some(n)) = (le_u32(&b), b.get(4..).and_then(le_u32)) {
                        let ids: Vec<String> = (0..n as usize)
                            .filter_map(|i| b.get(8 + i * 8..16 + i * 8))
                            .map(|id| id.iter().map(|c| *c as char).collect())
                            .collect();
                        r.peers_idx = Some((size as u64, ids));
                    }
                }
                "SNAP" => {
                    let parts: Vec<&str> = f
                        .first()
                        .map(|s| s.split('.').collect())
                        .unwrap_or_default();
                    if parts.len() == 3 && parts[0] == "snap" {
                        if let (Ok(t), Ok(i)) = (parts[1].parse(), parts[2].parse()) {
                            r.snapshots.push((t, i));
                        }
                    }
                }
                "WAL" if f.len() >= 2 => {
                    if let (Ok(n), Ok(b)) = (f[0].parse(), f[1].parse()) {
                        r.wal = Some((n, b));
                    }
                }
                "WALLAST" => r.wal_last_index = last_record_seq(&hex_bytes(rest)),
                "CONFIG" => r.config_readable = Some(f.first() == Some(&"yes")),
                "CFGFILE" => cfg_file = Some((rest.to_string(), String::new())),
                "CFGL" => {
                    if let Some((_, t)) = cfg_file.as_mut() {
                        t.push_str(rest);
                        t.push('\n');
                    }
                }
                "CFGEND" => {
                    if let Some(f) = cfg_file.take() {
                        if !r.config_capture.files.iter().any(|(p, _)| p == &f.0) {
                            r.config_capture.files.push(f);
                        }
                    }
                }
                "CFGMISSING" => r.config_capture.missing.push(rest.to_string()),
                "CONFIGRW" => r.config_writable = Some(f.first() == Some(&"yes")),
                "FW" => {
                    let keep = port_re.as_ref().map(|re| re.is_match(rest)).unwrap_or(true);
                    if keep && !rest.trim().is_empty() {
                        r.firewall.push(rest.trim().to_string());
                    }
                }
                "ERR" => r.errors.push(rest.to_string()),
                "NRS_END" => r.complete = true,
                _ => {}
            }
        }
        if !listen_seen {
            r.listening = None;
        }
        r.mem_total_kb = mem_total;
        r.mem_available_kb = mem_avail;
        r.config = r.config_capture.facts();
        r.config_routes = r
            .config
            .as_ref()
            .map(|c| c.routes.clone())
            .unwrap_or_default();
        if !r.complete {
            r.errors
                .push("probe script output ended early (timeout or killed)".into());
        }
        r
    }
}

fn fetch(t: &dyn Transport, node: &Node, path: &str, timeout: Duration) -> HttpResult {
    t.http_get(node, path, timeout)
        .map(|r| (r.status, r.body))
        .map_err(|e| crate::transport::error_chain(&e))
}

/// Monitoring endpoints of one node. Stops after `/varz` when the monitor does not answer,
/// so a frozen server costs one timeout, not five. `/healthz` is fetched once (every failed
/// call writes a WRN line in the server log).
pub fn fetch_http(t: &dyn Transport, node: &Node, timeout: Duration) -> HttpBodies {
    let mut b = HttpBodies {
        varz: Some(fetch(t, node, "/varz", timeout)),
        ..Default::default()
    };
    if let Some(Err(_)) = &b.varz {
        // Refused, timed out or unreachable: the other endpoints would fail the same way.
        return b;
    }
    let version = match &b.varz {
        Some(Ok((200, body))) => monitor::parse::<monitor::Varz>("/varz", body)
            .ok()
            .and_then(|v| v.version),
        _ => None,
    };
    // One /jsz for everything: meta cluster, streams, and their stream/consumer Raft groups.
    b.jsz = Some(fetch(t, node, crate::natsys::JSZ_GROUPS_QUERY, timeout));
    if monitor::has_raftz(version.as_deref()) {
        b.raftz = Some(fetch(t, node, "/raftz", timeout));
    }
    b.routez = Some(fetch(t, node, "/routez", timeout));
    if b.healthz.is_none() {
        b.healthz = Some(fetch(t, node, "/healthz", timeout));
    }
    b
}

/// Runs the probe script on one node.
pub fn run_shell_probe(
    t: &dyn Transport,
    inv: &Inventory,
    node: &Node,
    timeout: Duration,
) -> Result<ShellReport, String> {
    shell_from(node, &shell_probe(t, inv, node, timeout)).0
}

/// Runs the probe: what it returned, or why it did not run. When sudo needs a password it
/// runs again as the login user (most facts need no root; what does is reported as not seen
/// by the script, `ERR … needs root`).
pub fn shell_probe(
    t: &dyn Transport,
    inv: &Inventory,
    node: &Node,
    timeout: Duration,
) -> ProbeObservation {
    let script = match render_probe_script(inv, node) {
        Ok(s) => s,
        Err(error) => {
            return ProbeObservation::NotRun {
                error,
                unmanageable: None,
            }
        }
    };
    // The TCP checks take up to 3 s (in parallel); leave room for the rest.
    let mut cmd = RemoteCommand::new(
        script,
        timeout.max(Duration::from_secs(5)) + Duration::from_secs(5),
    );
    cmd.sudo = node.ssh.sudo;
    let ran = |out: crate::transport::ExecOutput, cmd: &RemoteCommand| ProbeRun {
        stdout: out.stdout.text,
        stderr: out.stderr.text,
        exit_code: out.exit_code,
        timed_out: out.timed_out,
        timeout_ms: u64::try_from(cmd.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    match t.exec(node, &cmd) {
        Err(TransportError::SudoPassword { .. }) if cmd.sudo => {
            let reason = sudo_refused(node);
            cmd.sudo = false;
            match t.exec(node, &cmd) {
                Ok(out) => ProbeObservation::Ran {
                    run: ran(out, &cmd),
                    sudo_refused: Some(reason),
                },
                Err(e) => ProbeObservation::NotRun {
                    error: e.to_string(),
                    unmanageable: Some(reason),
                },
            }
        }
        Err(e) => ProbeObservation::NotRun {
            error: e.to_string(),
            unmanageable: unmanageable_reason(&e),
        },
        Ok(out) => ProbeObservation::Ran {
            run: ran(out, &cmd),
            sudo_refused: None,
        },
    }
}

/// The sudoers line that lets `ssh.user` run the probe and the runbooks' privileged steps.
pub fn sudoers_line(node: &Node) -> String {
    format!("{} ALL=(root) NOPASSWD: ALL", node.ssh.user)
}

/// What to tell the operator when `sudo -n` wants a password on `node`.
pub fn sudo_refused(node: &Node) -> String {
    format!(
        "sudo needs a password for {} (sudo -n refused); add `{}` to /etc/sudoers.d/ (or a narrower NOPASSWD entry for the service commands, the probe and backups)",
        node.ssh.user,
        sudoers_line(node)
    )
}

/// Why an SSH failure means the node cannot be managed (rather than being down): the host
/// answers, but we refuse it or it refuses us, or the way to it (a jump host) is broken.
pub fn unmanageable_reason(e: &TransportError) -> Option<String> {
    match e {
        TransportError::HostKeyUnknown { .. } | TransportError::HostKeyChanged { .. } => {
            Some(format!("host key refused: {e}"))
        }
        TransportError::Auth { .. } => Some(e.to_string()),
        TransportError::SudoPassword { .. } => Some(e.to_string()),
        TransportError::Connect { addr, .. } | TransportError::ConnectTimeout { addr, .. }
            if addr.starts_with("jump host") =>
        {
            Some(format!("jump host unusable: {e}"))
        }
        _ => None,
    }
}

/// Everything about one node: HTTP and SSH in parallel, every failure an `errors` entry.
pub fn probe_node(t: &dyn Transport, inv: &Inventory, node: &Node, timeout: Duration) -> NodeFacts {
    node_facts(node, &observe_node(t, inv, node, timeout), None)
}

/// The raw answers of one node: its monitoring endpoints and its shell probe, in parallel.
pub fn observe_node(
    t: &dyn Transport,
    inv: &Inventory,
    node: &Node,
    timeout: Duration,
) -> NodeObservation {
    std::thread::scope(|s| {
        let sh = s.spawn(|| shell_probe(t, inv, node, timeout));
        let http = fetch_http(t, node, timeout);
        let probe = sh.join().unwrap_or_else(|_| ProbeObservation::NotRun {
            error: "probe thread panicked".into(),
            unmanageable: None,
        });
        NodeObservation {
            name: node.name.clone(),
            http,
            probe,
        }
    })
}

/// Probes all nodes (or those named in `nodes_limit`) in parallel, at most
/// [`super::parallel::MAX_PARALLEL_NODES`] at once; up to that many nodes the total time is
/// about the slowest node, bounded by the timeouts. Never fails: unreachable
/// nodes become evidence.
pub fn gather(
    t: &dyn Transport,
    inv: &Inventory,
    nodes_limit: Option<&[String]>,
    th: &Thresholds,
) -> ClusterFacts {
    gather_with_timeout(t, inv, nodes_limit, th, DEFAULT_TIMEOUT)
}

pub fn gather_with_timeout(
    t: &dyn Transport,
    inv: &Inventory,
    nodes_limit: Option<&[String]>,
    th: &Thresholds,
    timeout: Duration,
) -> ClusterFacts {
    facts_from(inv, &observe(t, inv, nodes_limit, timeout), th)
}

/// What every selected node answered (in parallel), and the system account's view when a
/// server that may be running did not answer on its monitoring port.
pub fn observe(
    t: &dyn Transport,
    inv: &Inventory,
    nodes_limit: Option<&[String]>,
    timeout: Duration,
) -> Observations {
    let selected: Vec<&Node> = inv
        .nodes
        .iter()
        .filter(|n| {
            nodes_limit
                .map(|l| l.iter().any(|x| x == &n.name))
                .unwrap_or(true)
        })
        .collect();
    let nodes: Vec<NodeObservation> =
        super::parallel::map_bounded(&selected, super::parallel::MAX_PARALLEL_NODES, |n| {
            observe_node(t, inv, n, timeout)
        })
        .into_iter()
        .zip(&selected)
        .map(|(o, n)| {
            o.unwrap_or_else(|| NodeObservation {
                name: n.name.clone(),
                http: HttpBodies::default(),
                probe: ProbeObservation::NotRun {
                    error: "probe thread panicked".into(),
                    unmanageable: None,
                },
            })
        })
        .collect();
    // The system account is the second source, asked only when a server that may be running
    // did not answer on its monitoring port (firewalled, SSH-only, …) and the inventory has
    // its credentials: one connection, one ping per kind for the whole cluster. Servers whose
    // HTTP answered are tried first (they are reachable).
    let by_name = |name: &str| selected.iter().find(|n| n.name == name).copied();
    let needs_system = nodes.iter().any(|o| {
        matches!(&o.http.varz, Some(Err(_)))
            && !by_name(&o.name).is_some_and(|n| {
                shell_from(n, &o.probe)
                    .0
                    .is_ok_and(|r| r.listening == Some(false))
            })
    });
    let system = if needs_system {
        let mut order: Vec<&Node> = Vec::new();
        for o in &nodes {
            if matches!(&o.http.varz, Some(Ok(_))) {
                order.extend(by_name(&o.name));
            }
        }
        for n in &selected {
            if !order.iter().any(|o| o.name == n.name) {
                order.push(n);
            }
        }
        super::sysfacts::gather(t, &order, timeout)
    } else {
        None
    };
    Observations { nodes, system }
}

#[cfg(test)]
mod tests;
