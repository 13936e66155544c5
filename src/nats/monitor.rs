//! Typed, version-tolerant views of the nats-server monitoring endpoints (`/varz`, `/jsz`,
//! `/raftz`, `/routez`, `/healthz`), 2.9.10 through 2.15.x.
//!
//! Every field is optional: a field a version does not send is `None`, never a parse error.
//! Unknown fields are ignored. Counters are `u64` (u64::MAX appears in account details, and
//! Raft terms can be astronomically large, nats-io/nats-server#6403).

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The Raft group name of the JetStream meta layer.
pub const META_GROUP: &str = "_meta_";

/// `jsz.meta_cluster.peer` of a leaderless 2.9.10 .. 2.14.6 server: the hash of "" (FACTS §1).
pub const EMPTY_PEER_ID: &str = "fqA4S4SK";

/// Raft peer id of a server: the first 8 chars of the base-62 mapping of sha256(server_name)
/// (nats-server events.go `getHashSize`). Stable across restarts and versions.
pub fn peer_id(server_name: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let sum = Sha256::digest(server_name.as_bytes());
    sum.iter()
        .take(8)
        .map(|b| DIGITS[(*b % 62) as usize] as char)
        .collect()
}

/// Null and missing both become the default (2.9.10 sends `"routes": null` in places).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Numbers that may arrive as integers, floats or strings; anything else is `None`.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}

/// Parses a JSON body into `T`; the error names the endpoint.
pub fn parse<T: for<'de> Deserialize<'de>>(endpoint: &str, body: &str) -> Result<T, String> {
    serde_json::from_str(body).map_err(|e| format!("{endpoint}: cannot parse JSON: {e}"))
}

// ---- /varz ------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Varz {
    pub server_id: Option<String>,
    pub server_name: Option<String>,
    pub version: Option<String>,
    pub git_commit: Option<String>,
    pub cluster: Option<VarzCluster>,
    pub jetstream: Option<VarzJetStream>,
    #[serde(deserialize_with = "lenient_u64")]
    pub cores: Option<u64>,
    /// Route connections (4 per peer from 2.10: pool of 3 + the system-account route).
    #[serde(deserialize_with = "lenient_u64")]
    pub routes: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub remotes: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub mem: Option<u64>,
    pub start: Option<String>,
    pub now: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct VarzCluster {
    pub name: Option<String>,
    pub addr: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub cluster_port: Option<u64>,
    /// The configured route URLs (`host:port`, no scheme).
    #[serde(deserialize_with = "null_default")]
    pub urls: Vec<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub pool_size: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct VarzJetStream {
    pub config: Option<JsConfig>,
    pub meta: Option<MetaCluster>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct JsConfig {
    pub store_dir: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub max_memory: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub max_storage: Option<u64>,
}

// ---- /jsz -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Jsz {
    pub server_id: Option<String>,
    /// When the server made it (RFC 3339).
    pub now: Option<String>,
    pub config: Option<JsConfig>,
    #[serde(deserialize_with = "lenient_u64")]
    pub streams: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub consumers: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub messages: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub bytes: Option<u64>,
    pub meta_cluster: Option<MetaCluster>,
    #[serde(deserialize_with = "null_default")]
    pub account_details: Vec<AccountDetail>,
}

/// `jsz.meta_cluster` (also `varz.jetstream.meta`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct MetaCluster {
    pub name: Option<String>,
    /// Server NAME of the leader; absent (2.15) or missing when there is none.
    pub leader: Option<String>,
    /// Peer id of the leader. Bogus (`fqA4S4SK`) before 2.15 when there is no leader: use
    /// [`MetaCluster::leader_peer`].
    pub peer: Option<String>,
    /// Only on the leader before 2.15; on every node (including self when leaderless) in 2.15.
    #[serde(deserialize_with = "null_default")]
    pub replicas: Vec<PeerInfo>,
    #[serde(deserialize_with = "lenient_u64")]
    pub cluster_size: Option<u64>,
    /// 2.15+.
    #[serde(deserialize_with = "lenient_u64")]
    pub quorum_needed: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub pending: Option<u64>,
    /// 2.15+: a META.RESCUE lowered the quorum.
    pub rescue: Option<bool>,
}

impl MetaCluster {
    /// The leader's server name, if this server knows one.
    pub fn leader(&self) -> Option<&str> {
        self.leader
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The leader's peer id, only when a leader is known (ignores the pre-2.15 bogus `peer`).
    pub fn leader_peer(&self) -> Option<&str> {
        self.leader()?;
        self.peer
            .as_deref()
            .filter(|p| !p.is_empty() && *p != EMPTY_PEER_ID)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct PeerInfo {
    pub name: Option<String>,
    pub current: Option<bool>,
    pub offline: Option<bool>,
    /// Nanoseconds since last seen (meaningful on the leader only).
    #[serde(deserialize_with = "lenient_u64")]
    pub active: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub lag: Option<u64>,
    pub peer: Option<String>,
}

impl PeerInfo {
    /// The name, unless it is the `Server name unknown at this time (peerID: …)` placeholder.
    pub fn known_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .filter(|n| !n.is_empty() && !n.starts_with("Server name unknown"))
    }
}

/// One account of `/jsz?accounts=true&streams=true[&consumers=true&raft=true]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct AccountDetail {
    pub name: Option<String>,
    pub id: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub stream_detail: Vec<StreamDetail>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct StreamDetail {
    pub name: String,
    pub created: Option<String>,
    pub cluster: Option<StreamCluster>,
    pub state: Option<StreamState>,
    /// With `consumers=true` (HTTP) / `"consumer": true` (system account).
    #[serde(deserialize_with = "null_default")]
    pub consumer_detail: Vec<ConsumerDetail>,
    /// 2.10+ with `raft=true` (also `cluster.raft_group`).
    pub stream_raft_group: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub consumer_raft_groups: Vec<RaftGroupName>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ConsumerDetail {
    pub name: String,
    pub stream_name: Option<String>,
    pub cluster: Option<StreamCluster>,
    #[serde(deserialize_with = "lenient_u64")]
    pub num_pending: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub num_ack_pending: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct RaftGroupName {
    pub name: String,
    pub raft_group: Option<String>,
}

/// `cluster` of a stream or consumer: its Raft group as this server sees it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct StreamCluster {
    /// The NATS cluster name (not the group).
    pub name: Option<String>,
    pub raft_group: Option<String>,
    /// Server name of the group leader; absent when this server knows none.
    pub leader: Option<String>,
    pub leader_since: Option<String>,
    /// The other peers (the leader lists its followers; a follower lists the leader and the
    /// rest; without a leader, 2.15.1 and 2.9.10 list every peer including this server).
    #[serde(deserialize_with = "null_default")]
    pub replicas: Vec<PeerInfo>,
}

impl StreamCluster {
    pub fn leader(&self) -> Option<&str> {
        self.leader
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct StreamState {
    #[serde(deserialize_with = "lenient_u64")]
    pub messages: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub bytes: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub first_seq: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub last_seq: Option<u64>,
    /// When the last message was stored (RFC 3339), by this server's clock.
    pub last_ts: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub consumer_count: Option<u64>,
}

// ---- /raftz (2.10.17+) ------------------------------------------------------------------

/// `{"<account>": {"<group>": RaftGroup}}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Raftz(pub BTreeMap<String, BTreeMap<String, serde_json::Value>>);

impl Raftz {
    /// The meta group, preferring `account`; any account holding `_meta_` otherwise.
    pub fn meta(&self, account: Option<&str>) -> Option<RaftGroup> {
        let pick = account
            .and_then(|a| self.0.get(a))
            .and_then(|g| g.get(META_GROUP))
            .or_else(|| self.0.values().find_map(|g| g.get(META_GROUP)))?;
        serde_json::from_value(pick.clone()).ok()
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct RaftGroup {
    pub id: Option<String>,
    /// FOLLOWER | LEADER | CANDIDATE | CLOSED
    pub state: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub size: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub quorum_needed: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub committed: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub applied: Option<u64>,
    /// A PEER ID, not a server name.
    pub leader: Option<String>,
    pub leader_since: Option<String>,
    pub ever_had_leader: Option<bool>,
    #[serde(deserialize_with = "lenient_u64")]
    pub term: Option<u64>,
    pub voted_for: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub pterm: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub pindex: Option<u64>,
    #[serde(deserialize_with = "null_default")]
    pub peers: BTreeMap<String, RaftPeer>,
}

impl RaftGroup {
    pub fn leader_peer(&self) -> Option<&str> {
        self.leader.as_deref().filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct RaftPeer {
    /// Empty while the server name is not known yet.
    pub name: Option<String>,
    pub known: Option<bool>,
    #[serde(deserialize_with = "lenient_u64")]
    pub last_replicated_index: Option<u64>,
    pub last_seen: Option<String>,
}

// ---- /routez ----------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Routez {
    pub server_id: Option<String>,
    /// Absent on 2.9.10.
    pub server_name: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub num_routes: Option<u64>,
    #[serde(deserialize_with = "null_default")]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Route {
    #[serde(deserialize_with = "lenient_u64")]
    pub rid: Option<u64>,
    pub remote_id: Option<String>,
    /// 2.9.16+.
    pub remote_name: Option<String>,
    pub did_solicit: Option<bool>,
    pub is_configured: Option<bool>,
    pub ip: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub port: Option<u64>,
    /// `SYS` on the pinned system-account route (2.10+).
    pub account: Option<String>,
}

impl Route {
    /// The peer this route goes to: its server name, else its (per-start random) server id.
    pub fn peer_key(&self) -> Option<&str> {
        self.remote_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .or_else(|| self.remote_id.as_deref().filter(|s| !s.is_empty()))
    }
}

impl Routez {
    /// Distinct peers (remote_name, or remote_id on 2.9.10), sorted. Not `num_routes`:
    /// route pooling gives 4 connections per peer from 2.10.
    pub fn distinct_peers(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .routes
            .iter()
            .filter_map(|r| r.peer_key().map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Peers whose every route was neither dialled by us nor configured
    /// (`did_solicit:false, is_configured:false`): the tell-tale of wrong routes on THIS node.
    pub fn unsolicited_peers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.distinct_peers() {
            let all = self
                .routes
                .iter()
                .filter(|r| r.peer_key() == Some(p.as_str()))
                .all(|r| r.did_solicit == Some(false) && r.is_configured == Some(false));
            if all {
                out.push(p);
            }
        }
        out
    }
}

// ---- /healthz ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
struct HealthzBody {
    status: Option<String>,
    error: Option<String>,
    #[serde(deserialize_with = "null_default")]
    errors: Vec<HealthzError>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
struct HealthzError {
    #[serde(rename = "type")]
    kind: Option<String>,
    error: Option<String>,
}

/// A `/healthz` answer: the status code matters (200 ok, 503 JetStream unhealthy, 500 not
/// ready / lame duck, 404/400 bad asset or parameters).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Healthz {
    /// HTTP status code.
    pub status: u16,
    /// `ok`, the error text, or the raw body when it is not JSON.
    pub text: String,
}

impl Healthz {
    pub fn from_response(status: u16, body: &str) -> Healthz {
        let text = match serde_json::from_str::<HealthzBody>(body) {
            Ok(b) => {
                let mut parts: Vec<String> = Vec::new();
                if let Some(e) = b.error.filter(|e| !e.is_empty()) {
                    parts.push(e);
                }
                for e in b.errors {
                    if let Some(t) = e.error.filter(|t| !t.is_empty()) {
                        if !parts.contains(&t) {
                            parts.push(t);
                        }
                    }
                }
                if parts.is_empty() {
                    b.status.unwrap_or_else(|| {
                        if status == 200 {
                            "ok".into()
                        } else {
                            format!("HTTP {status}")
                        }
                    })
                } else {
                    parts.join("; ")
                }
            }
            Err(_) => {
                let t = body.trim();
                if t.is_empty() {
                    format!("HTTP {status}")
                } else {
                    t.chars().take(200).collect()
                }
            }
        };
        Healthz { status, text }
    }

    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

// ---- versions ---------------------------------------------------------------------------

/// `2.10.25` → (2, 10, 25); pre-release suffixes are ignored. None when unparsable.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().trim_start_matches('v');
    let core = core.split(['-', '+', ' ']).next().unwrap_or(core);
    let mut it = core.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next().unwrap_or("0").parse().ok()?;
    let c = it.next().unwrap_or("0").parse().ok()?;
    Some((a, b, c))
}

/// `/raftz` over HTTP exists from 2.10.17 (FACTS §2.3). Unknown version: try it.
pub fn has_raftz(version: Option<&str>) -> bool {
    match version.and_then(parse_version) {
        Some(v) => v >= (2, 10, 17),
        None => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_match_observed() {
        assert_eq!(peer_id("n1"), "fjFyEjc1");
        assert_eq!(peer_id("n2"), "44jzkV9D");
        assert_eq!(peer_id("n3"), "BXScrY9i");
        assert_eq!(peer_id(""), EMPTY_PEER_ID);
    }

    #[test]
    fn bogus_peer_without_leader_is_ignored() {
        let m: MetaCluster =
            parse("jsz", r#"{"name":"c1","peer":"fqA4S4SK","cluster_size":3}"#).unwrap();
        assert_eq!(m.leader(), None);
        assert_eq!(m.leader_peer(), None);
        let m: MetaCluster =
            parse("jsz", r#"{"name":"c1","leader":"n3","peer":"BXScrY9i"}"#).unwrap();
        assert_eq!(m.leader_peer(), Some("BXScrY9i"));
    }

    #[test]
    fn u64_max_and_nulls() {
        let j: Jsz = parse(
            "jsz",
            r#"{"account_details":[{"name":"APP","reserved_memory":18446744073709551615,"stream_detail":null}],"meta_cluster":{"replicas":null,"cluster_size":3}}"#,
        )
        .unwrap();
        assert_eq!(j.account_details.len(), 1);
        let r: Routez = parse("routez", r#"{"num_routes":0,"routes":null}"#).unwrap();
        assert!(r.routes.is_empty());
        let g: RaftGroup =
            serde_json::from_str(r#"{"term":1191202101440508490,"size":10}"#).unwrap();
        assert_eq!(g.term, Some(1191202101440508490));
    }

    #[test]
    fn healthz_texts() {
        assert_eq!(Healthz::from_response(200, r#"{"status":"ok"}"#).text, "ok");
        let h = Healthz::from_response(
            503,
            r#"{"status":"unavailable","error":"JetStream is still recovering meta layer"}"#,
        );
        assert_eq!(h.text, "JetStream is still recovering meta layer");
        assert!(!h.ok());
        let h = Healthz::from_response(
            503,
            r#"{"status":"error","errors":[{"type":"JETSTREAM","error":"x"}]}"#,
        );
        assert_eq!(h.text, "x");
        assert_eq!(
            Healthz::from_response(404, "404 page not found\n").text,
            "404 page not found"
        );
    }

    #[test]
    fn versions() {
        assert!(!has_raftz(Some("2.9.10")));
        assert!(!has_raftz(Some("2.10.16")));
        assert!(has_raftz(Some("2.10.25")));
        assert!(has_raftz(Some("2.15.0-dev")));
        assert!(has_raftz(None));
    }
}
