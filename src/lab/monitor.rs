//! A tiny HTTP/1.0 GET for the servers' monitoring ports (no TLS, no redirects, bounded in
//! time), and the meta-leader wait used by `up` and `heal`.

use super::server::MONITOR_PORT;
use super::state::{LabState, NodeState};
use crate::error::{Error, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// `GET http://addr:port/path` → (status code, body). Errors when nothing answers in `timeout`.
pub fn http_get(addr: &str, port: u16, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let sa: SocketAddr = format!("{addr}:{port}")
        .parse()
        .map_err(|e| Error::Other(format!("bad address {addr}:{port}: {e}")))?;
    let deadline = Instant::now() + timeout;
    let mut s =
        TcpStream::connect_timeout(&sa, timeout).map_err(|e| Error::Other(format!("{sa}: {e}")))?;
    let _ = s.set_write_timeout(Some(timeout));
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| Error::Other(format!("{sa}: {e}")))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Other(format!(
                "{sa}{path}: no complete answer within {}ms",
                timeout.as_millis()
            )));
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Error::Other(format!("{sa}{path}: {e}"))),
        }
    }
    parse_response(&format!("{sa}{path}"), &buf)
}

/// (status code, body) of a raw HTTP/1.0 answer.
fn parse_response(what: &str, buf: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::Other(format!("{what}: not an HTTP answer")))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Error::Other(format!("{what}: no status code")))?;
    Ok((code, body.to_string()))
}

/// An HTTP GET made by bash inside namespace `netns` (`/dev/tcp`): the lab's way in when a
/// bastion firewalls the monitoring port from everything but the bastion and loopback.
fn http_get_in_ns(
    netns: &str,
    addr: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String)> {
    const SCRIPT: &str = r#"exec 3<>"/dev/tcp/$1/$2" || exit 111
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
cat <&3"#;
    let port = port.to_string();
    let o = super::run_out(
        "ip",
        &[
            "netns", "exec", netns, "bash", "-c", SCRIPT, "lab-http", addr, &port, path,
        ],
        timeout,
    )?;
    let what = format!("{addr}:{port}{path} (inside {netns})");
    if !o.ok {
        return Err(Error::Other(format!("{what}: {}", o.stderr.trim())));
    }
    parse_response(&what, o.stdout.as_bytes())
}

/// GET on a node's monitoring port the way the lab reaches it: straight from here, or from
/// inside the node's namespace when the lab has a bastion.
pub fn node_get(
    st: &LabState,
    n: &NodeState,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String)> {
    if st.bastion.is_some() {
        // Starting `ip netns exec bash` takes time of its own on a loaded machine.
        let timeout = timeout.max(Duration::from_secs(2));
        http_get_in_ns(&n.netns, &n.addr, MONITOR_PORT, path, timeout)
    } else {
        http_get(&n.addr, MONITOR_PORT, path, timeout)
    }
}

/// A node's monitoring `path` as JSON (status 200 only); `node` is a lab or server name.
pub fn node_json(st: &LabState, node: &str, path: &str, timeout: Duration) -> Result<Value> {
    let n = st.node(node)?;
    let (code, body) = node_get(st, n, path, timeout)?;
    if code != 200 {
        return Err(Error::Other(format!(
            "{}{path}: HTTP {code}: {}",
            n.name,
            body.trim()
        )));
    }
    serde_json::from_str(&body)
        .map_err(|e| Error::Other(format!("{}{path}: not JSON: {e}", n.name)))
}

/// `GET path` as JSON (status 200 only).
pub fn get_json(addr: &str, path: &str, timeout: Duration) -> Result<Value> {
    let (code, body) = http_get(addr, MONITOR_PORT, path, timeout)?;
    if code != 200 {
        return Err(Error::Other(format!(
            "{addr}{path}: HTTP {code}: {}",
            body.trim()
        )));
    }
    serde_json::from_str(&body).map_err(|e| Error::Other(format!("{addr}{path}: not JSON: {e}")))
}

pub fn jsz(addr: &str, timeout: Duration) -> Result<Value> {
    get_json(addr, "/jsz", timeout)
}

/// `meta_cluster.leader`, when present and non-empty.
pub fn leader_of(jsz: &Value) -> Option<String> {
    jsz.get("meta_cluster")?
        .get("leader")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The meta leader as seen by each node's `/jsz` (`None`: no leader or no answer).
pub fn leaders(
    st: &LabState,
    nodes: &[String],
    timeout: Duration,
) -> Vec<(String, Option<String>)> {
    nodes
        .iter()
        .map(|name| {
            let l = node_json(st, name, "/jsz", timeout)
                .ok()
                .and_then(|j| leader_of(&j));
            (name.clone(), l)
        })
        .collect()
}

/// The leader that every node in `nodes` agrees on, if they do.
pub fn agreed_leader(st: &LabState, nodes: &[String]) -> Option<String> {
    let ls = leaders(st, nodes, Duration::from_millis(800));
    let first = ls.first()?.1.clone()?;
    ls.iter()
        .all(|(_, l)| l.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// Polls until every node in `nodes` reports the same meta leader; returns it and the time
/// since `t0`.
pub fn wait_leader(
    st: &LabState,
    nodes: &[String],
    t0: Instant,
    timeout: Duration,
) -> Result<(String, Duration)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = agreed_leader(st, nodes) {
            return Ok((l, t0.elapsed()));
        }
        if Instant::now() > deadline {
            let seen: Vec<String> = leaders(st, nodes, Duration::from_millis(800))
                .into_iter()
                .map(|(n, l)| format!("{n}: {}", l.unwrap_or_else(|| "none".into())))
                .collect();
            return Err(Error::Problems(format!(
                "no agreed meta leader after {}s ({})",
                timeout.as_secs(),
                seen.join(", ")
            )));
        }
        // Through a namespace each poll costs a process per node: poll less often.
        let pause = if st.bastion.is_some() { 300 } else { 100 };
        std::thread::sleep(Duration::from_millis(pause));
    }
}
