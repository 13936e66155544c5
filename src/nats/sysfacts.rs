//! The system account as a second source of monitoring facts (FACTS §2.5): one connection to
//! any reachable server's client port, one `$SYS.REQ.SERVER.PING.*` per kind (VARZ, JSZ with
//! stream and consumer groups, ROUTEZ, HEALTHZ, and RAFTZ from 2.11), so a node whose HTTP
//! monitoring does not answer still gets its own view. Only with system credentials in the
//! inventory; the password never appears in a message (`SysOptions::secrets`).

use super::facts::{HttpBodies, HttpResult};
use super::monitor::parse_version;
use crate::inventory::{MonitorMode, Node};
use crate::natsys::{jsz_groups_body, BlockingSysClient, Collect, SysAuth, SysOptions, TlsFiles};
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

/// Options from the inventory: the first node with credentials gives them; every
/// directly-reachable node's client port is a candidate (SSH-monitored nodes are left out:
/// their ports are not reachable from here).
pub fn options(nodes: &[&Node], timeout: Duration) -> Option<SysOptions> {
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
    if servers.is_empty() {
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
    Some(o)
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
pub fn gather(nodes: &[&Node], timeout: Duration) -> Option<SystemView> {
    let opts = options(nodes, timeout)?;
    let mut view = SystemView::default();
    let client = match BlockingSysClient::connect(&opts) {
        Ok(c) => c,
        Err(e) => {
            view.errors
                .push(scrub(&opts, format!("system account: {e}")));
            return Some(view);
        }
    };
    view.via = client.server().address.clone();
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
                        &opts,
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
            .push(scrub(&opts, format!("system account {kind}: {e}"))),
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
    fn options_need_credentials_and_skip_ssh_monitored_nodes() {
        let none = inv("cluster: c\nnodes:\n  - {name: n1, host: 10.0.0.1}\n");
        let nodes: Vec<&Node> = none.nodes.iter().collect();
        assert!(options(&nodes, Duration::from_secs(5)).is_none());

        let with = inv("cluster: c\ndefaults:\n  nats:\n    client_port: 4333\n    system_user: {user: sys, password: s3cret-pw}\nnodes:\n  - {name: n1, host: 10.0.0.1}\n  - {name: n2, host: 10.0.0.2, nats: {monitor: ssh}}\n  - {name: n3, host: 'fe80::1'}\n");
        let nodes: Vec<&Node> = with.nodes.iter().collect();
        let o = options(&nodes, Duration::from_secs(5)).unwrap();
        assert_eq!(o.servers, vec!["10.0.0.1:4333", "[fe80::1]:4333"]);
        assert_eq!(o.secrets(), vec!["s3cret-pw"]);
        assert_eq!(
            scrub(&o, "auth s3cret-pw failed".into()),
            "auth [REDACTED] failed"
        );
        assert!(!format!("{:?}", o.auth).contains("s3cret-pw"));
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
