//! The system account as a second source of monitoring facts (FACTS §2.5): one connection to
//! any reachable server's client port (directly, or through an SSH tunnel to a `monitor: ssh`
//! node: [`connect`], also used by the engine's `nats:` action), one `$SYS.REQ.SERVER.PING.*` per kind (VARZ, JSZ with
//! stream and consumer groups, ROUTEZ, HEALTHZ, and RAFTZ from 2.11), so a node whose HTTP
//! monitoring does not answer still gets its own view. Only with system credentials in the
//! inventory; the password never appears in a message (`SysOptions::secrets`).

use super::facts::{HttpBodies, HttpResult};
use super::monitor::parse_version;
use crate::inventory::{MonitorMode, Node};
use crate::natsys::{
    jsz_groups_body, BlockingSysClient, Collect, SysAuth, SysError, SysOptions, TlsFiles,
};
use crate::transport::Transport;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the system account said, per server name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemView {
    /// `host:port` connected to (for evidence).
    pub via: String,
    pub by_server: BTreeMap<String, HttpBodies>,
    /// Failed pings and unusable replies (scrubbed of secrets).
    pub errors: Vec<String>,
}

/// Least time for the NATS connect through a tunnel (the channel is opened within it).
const TUNNEL_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How the system account can be reached from here, in the order to try.
#[derive(Debug, Clone)]
pub struct Route<'a> {
    /// Credentials (from the first node that has them), TLS and timeouts; `servers` are the
    /// client ports of the nodes not monitored through SSH (reachable from here).
    pub opts: SysOptions,
    /// Nodes whose client port is reached through an SSH tunnel when no direct one
    /// answered: `monitor: ssh` ones, then `monitor: auto` ones, each in the given order.
    pub tunnels: Vec<&'a Node>,
}

/// The route from the inventory; `None` without credentials or without any node.
pub fn route<'a>(nodes: &[&'a Node], timeout: Duration) -> Option<Route<'a>> {
    let with_auth = nodes.iter().find_map(|n| {
        let s = &n.nats;
        let auth = if let Some(u) = &s.system_user {
            SysAuth::UserPassword {
                user: u.user.clone(),
                password: u.password()?.to_string(),
            }
        } else if let Some(c) = &s.system_creds {
            SysAuth::CredsFile(c.clone())
        } else if let Some(k) = &s.system_nkey_seed {
            SysAuth::NkeySeedFile(k.clone())
        } else {
            return None;
        };
        Some((auth, s.client_tls.clone()))
    })?;
    let servers: Vec<String> = nodes
        .iter()
        .filter(|n| n.nats.monitor != MonitorMode::Ssh)
        .map(|n| host_port(&n.host, n.nats.client_port))
        .collect();
    let by_mode = |m: MonitorMode| nodes.iter().copied().filter(move |n| n.nats.monitor == m);
    let tunnels: Vec<&Node> = by_mode(MonitorMode::Ssh)
        .chain(by_mode(MonitorMode::Auto))
        .collect();
    if servers.is_empty() && tunnels.is_empty() {
        return None;
    }
    let mut o = SysOptions::new(servers, with_auth.0);
    o.tls = with_auth.1.map(|t| TlsFiles {
        ca_file: t.ca_file.clone(),
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
        server_name: None,
    });
    o.connect_timeout = timeout.min(Duration::from_secs(3));
    o.request_timeout = timeout.min(Duration::from_secs(3));
    Some(Route { opts: o, tunnels })
}

/// A connected system-account client and how it was reached.
#[derive(Debug)]
pub struct SysConnection {
    pub client: BlockingSysClient,
    /// `10.0.0.1:4222`, or `n1:4222 through SSH`.
    pub via: String,
}

/// Connects along `route`: the direct client ports first (in order), then through an SSH
/// tunnel to each node of `route.tunnels` in turn (each bounded by the node's SSH connect
/// timeout and the NATS connect timeout). Refused credentials, a failed TLS handshake or an
/// unusable file stop the search: every server would say the same. Messages are scrubbed.
pub fn connect(t: &dyn Transport, route: &Route<'_>) -> Result<SysConnection, SysError> {
    let opts = &route.opts;
    let mut reasons = Vec::new();
    if !opts.servers.is_empty() {
        match BlockingSysClient::connect(opts) {
            Ok(client) => {
                let via = client.server().address.clone();
                return Ok(SysConnection { client, via });
            }
            Err(SysError::Connect { reasons: r }) => reasons.extend(r),
            Err(e) => return Err(e),
        }
    }
    for node in &route.tunnels {
        let port = node.nats.client_port;
        let via = format!("{}:{port} through SSH", node.name);
        let opener = match t.tunnel(node, port) {
            None => {
                reasons.push(format!("{via}: the {} transport has no tunnels", t.name()));
                continue;
            }
            Some(Err(e)) => {
                reasons.push(scrub(opts, format!("{via}: {e}")));
                continue;
            }
            Some(Ok(o)) => o,
        };
        let mut one = opts.clone();
        // Names the server in messages and for TLS (the connection goes to 127.0.0.1).
        one.servers = vec![host_port(&node.host, port)];
        // The SSH channel is opened within the NATS connect: give it a round trip or two
        // through the jump hosts even for a request with a short timeout.
        one.connect_timeout = one.connect_timeout.max(TUNNEL_CONNECT_TIMEOUT);
        match BlockingSysClient::connect_through(&one, opener) {
            Ok(client) => return Ok(SysConnection { client, via }),
            Err(
                e @ (SysError::Auth { .. }
                | SysError::Tls { .. }
                | SysError::File { .. }
                | SysError::Options(_)),
            ) => return Err(e),
            Err(e) => reasons.push(scrub(opts, format!("{via}: {e}"))),
        }
    }
    Err(SysError::Connect { reasons })
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn scrub(opts: &SysOptions, s: String) -> String {
    opts.secrets()
        .iter()
        .fold(s, |acc, p| acc.replace(p, "[REDACTED]"))
}

/// Pings every kind once for the cluster. `None` without credentials; an unreachable
/// cluster is a view with only an error.
pub fn gather(t: &dyn Transport, nodes: &[&Node], timeout: Duration) -> Option<SystemView> {
    let route = route(nodes, timeout)?;
    let opts = &route.opts;
    let mut view = SystemView::default();
    let client = match connect(t, &route) {
        Ok(c) => {
            view.via = c.via;
            c.client
        }
        Err(e) => {
            view.errors
                .push(scrub(opts, format!("system account: {e}")));
            return Some(view);
        }
    };
    let collect = Collect::within(opts.request_timeout)
        .expect(nodes.len())
        .quiet(Duration::from_millis(800));
    let put = |view: &mut SystemView, kind: &str, body: Option<serde_json::Value>| match client
        .ping(kind, body.as_ref(), collect)
    {
        Ok(replies) => {
            for r in replies {
                if r.server.name.is_empty() {
                    continue;
                }
                if let Some(p) = &r.error {
                    view.errors.push(scrub(
                        opts,
                        format!("system account {kind} from {}: {p}", r.server.name),
                    ));
                    continue;
                }
                let b = view.by_server.entry(r.server.name.clone()).or_default();
                let text = r.data.to_string();
                let res: HttpResult = Ok(match kind {
                    "HEALTHZ" => (healthz_code(&r.data), text),
                    _ => (200, text),
                });
                match kind {
                    "VARZ" => b.varz = Some(res),
                    "JSZ" => b.jsz = Some(res),
                    "RAFTZ" => b.raftz = Some(res),
                    "ROUTEZ" => b.routez = Some(res),
                    _ => b.healthz = Some(res),
                }
            }
        }
        Err(e) => view
            .errors
            .push(scrub(opts, format!("system account {kind}: {e}"))),
    };
    put(&mut view, "VARZ", None);
    put(&mut view, "JSZ", Some(jsz_groups_body()));
    put(&mut view, "ROUTEZ", None);
    put(&mut view, "HEALTHZ", None);
    // RAFTZ over the system account arrived in 2.11 (2.9/2.10: no responders).
    let modern = parse_version(&client.server().version).is_some_and(|v| v >= (2, 11, 0));
    if modern {
        put(&mut view, "RAFTZ", None);
    }
    client.close();
    Some(view)
}

/// HEALTHZ replies carry the status in the body (`status_code` from 2.10, else `status`).
fn healthz_code(data: &serde_json::Value) -> u16 {
    if let Some(c) = data.get("status_code").and_then(serde_json::Value::as_u64) {
        return u16::try_from(c).unwrap_or(503);
    }
    match data.get("status").and_then(serde_json::Value::as_str) {
        Some("ok") => 200,
        _ => 503,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    fn inv(text: &str) -> Inventory {
        Inventory::parse(std::path::Path::new("i.yaml"), text).unwrap()
    }

    #[test]
    fn route_needs_credentials_and_tunnels_ssh_monitored_nodes() {
        let none = inv("cluster: c\nnodes:\n  - {name: n1, host: 10.0.0.1}\n");
        let nodes: Vec<&Node> = none.nodes.iter().collect();
        assert!(route(&nodes, Duration::from_secs(5)).is_none());

        let with = inv("cluster: c\ndefaults:\n  nats:\n    client_port: 4333\n    system_user: {user: sys, password: s3cret-pw}\nnodes:\n  - {name: n1, host: 10.0.0.1, nats: {monitor: direct}}\n  - {name: n2, host: 10.0.0.2, nats: {monitor: auto}}\n  - {name: n3, host: 10.0.0.3, nats: {monitor: ssh}}\n  - {name: n4, host: 'fe80::1', nats: {monitor: ssh}}\n");
        let nodes: Vec<&Node> = with.nodes.iter().collect();
        let r = route(&nodes, Duration::from_secs(5)).unwrap();
        let o = &r.opts;
        assert_eq!(o.servers, vec!["10.0.0.1:4333", "10.0.0.2:4333"]);
        // SSH-monitored nodes first, then the `auto` ones; never the `direct` ones.
        let names: Vec<&str> = r.tunnels.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, vec!["n3", "n4", "n2"]);
        assert_eq!(o.secrets(), vec!["s3cret-pw"]);
        assert_eq!(
            scrub(o, "auth s3cret-pw failed".into()),
            "auth [REDACTED] failed"
        );
        assert!(!format!("{:?}", o.auth).contains("s3cret-pw"));

        // Every node behind SSH (a bastion): no direct server, still a route.
        let bastion = inv("cluster: c\ndefaults:\n  nats:\n    monitor: ssh\n    system_user: {user: sys, password: pw}\nnodes:\n  - {name: n1, host: 10.0.0.1}\n  - {name: n2, host: 10.0.0.2}\n");
        let nodes: Vec<&Node> = bastion.nodes.iter().collect();
        let r = route(&nodes, Duration::from_secs(5)).unwrap();
        assert!(r.opts.servers.is_empty());
        assert_eq!(r.tunnels.len(), 2);
    }

    /// Tunnels that cannot open, in order, after the direct ports failed.
    struct NoWay(std::sync::Mutex<Vec<String>>);
    impl Transport for NoWay {
        fn exec(
            &self,
            node: &Node,
            _: &crate::transport::RemoteCommand,
        ) -> Result<crate::transport::ExecOutput, crate::transport::TransportError> {
            Err(crate::transport::TransportError::Other(node.name.clone()))
        }
        fn http_get(
            &self,
            node: &Node,
            _: &str,
            _: Duration,
        ) -> Result<crate::transport::HttpResponse, crate::transport::TransportError> {
            Err(crate::transport::TransportError::Other(node.name.clone()))
        }
        fn name(&self) -> &'static str {
            "fake"
        }
        fn tunnel(
            &self,
            node: &Node,
            port: u16,
        ) -> Option<Result<crate::transport::TunnelOpener, crate::transport::TransportError>>
        {
            self.0.lock().unwrap().push(format!("{}:{port}", node.name));
            if node.name == "n3" {
                return Some(Err(crate::transport::TransportError::Other(
                    "bastion said no (pw s3cret-pw)".into(),
                )));
            }
            Some(Ok(Box::new(|| {
                Err(std::io::Error::other("channel refused"))
            })))
        }
    }

    #[test]
    fn connect_falls_back_to_tunnels_in_order_and_reports_every_failure() {
        // Port 1 on loopback refuses at once: the direct candidates fail first.
        let i = inv("cluster: c\ndefaults:\n  nats:\n    client_port: 1\n    system_user: {user: sys, password: s3cret-pw}\nnodes:\n  - {name: n1, host: 127.0.0.1, nats: {monitor: direct}}\n  - {name: n2, host: 127.0.0.1, nats: {monitor: ssh, client_port: 4999}}\n  - {name: n3, host: 127.0.0.1, nats: {monitor: ssh}}\n");
        let nodes: Vec<&Node> = i.nodes.iter().collect();
        let r = route(&nodes, Duration::from_secs(2)).unwrap();
        let t = NoWay(std::sync::Mutex::new(Vec::new()));
        let e = connect(&t, &r).unwrap_err().to_string();
        assert_eq!(*t.0.lock().unwrap(), vec!["n2:4999", "n3:1"]);
        let direct = e.find("127.0.0.1:1").unwrap_or_else(|| panic!("{e}"));
        let n2 = e
            .find("n2:4999 through SSH")
            .unwrap_or_else(|| panic!("{e}"));
        let n3 = e
            .find("n3:1 through SSH: bastion said no")
            .unwrap_or_else(|| panic!("{e}"));
        assert!(direct < n2 && n2 < n3, "{e}");
        assert!(e.contains("channel refused"), "{e}");
        assert!(!e.contains("s3cret-pw"), "{e}");

        // A transport without tunnels says so.
        let local = crate::transport::local::LocalTransport::default();
        let e = connect(&local, &r).unwrap_err().to_string();
        assert!(
            e.contains("n2:4999 through SSH: the local transport has no tunnels"),
            "{e}"
        );
    }

    #[test]
    fn healthz_code_from_the_reply_body() {
        assert_eq!(healthz_code(&serde_json::json!({"status": "ok"})), 200);
        assert_eq!(
            healthz_code(&serde_json::json!({"status": "unavailable", "status_code": 503})),
            503
        );
        assert_eq!(
            healthz_code(&serde_json::json!({"status": "unavailable"})),
            503
        );
    }
}
