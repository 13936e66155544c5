//! One server's JSZ with accounts, streams, consumers and Raft groups, from either source:
//! - HTTP `/jsz?accounts=true&streams=true&consumers=true&raft=true` (the body is the JSZ), or
//! - the system account: `$SYS.REQ.SERVER.PING.JSZ` with [`jsz_groups_body`] (the JSZ is
//!   each reply's `data`).
//!
//! Only what the group facts need is typed; every field is optional (2.9.10 sends no
//! `raft_group`, 2.15.1 omits `leader` when there is none, …).

use super::reply::ServerReply;
use crate::nats::monitor::{MetaCluster, PeerInfo, StreamState};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The HTTP query for the same content as [`jsz_groups_body`].
pub const JSZ_GROUPS_QUERY: &str = "/jsz?accounts=true&streams=true&consumers=true&raft=true";

/// Body for `$SYS.REQ.SERVER.PING.JSZ` that returns stream and consumer groups.
/// Note `consumer` (singular): the server's `JSzOptions` JSON field. The HTTP query
/// parameter is `consumers`, but a body with `"consumers": true` is silently ignored and
/// the replies carry no `consumer_detail`.
pub fn jsz_groups_body() -> Value {
    serde_json::json!({"accounts": true, "streams": true, "consumer": true, "raft": true})
}

/// What one server reported.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct JszView {
    pub server_id: Option<String>,
    /// When the server made it (RFC 3339).
    pub now: Option<String>,
    pub meta_cluster: Option<MetaCluster>,
    #[serde(deserialize_with = "null_default")]
    pub account_details: Vec<JszAccount>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct JszAccount {
    pub name: Option<String>,
    pub id: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub stream_detail: Vec<JszStream>,
}

impl JszAccount {
    /// `name`, else `id`, else `""`.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct JszStream {
    pub name: String,
    pub created: Option<String>,
    pub cluster: Option<GroupCluster>,
    pub state: Option<StreamState>,
    #[serde(deserialize_with = "null_default")]
    pub consumer_detail: Vec<JszConsumer>,
    /// 2.10+ with `raft=true` (also `cluster.raft_group`).
    pub stream_raft_group: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub consumer_raft_groups: Vec<RaftGroupName>,
}

impl JszStream {
    pub fn raft_group(&self) -> Option<&str> {
        self.cluster
            .as_ref()
            .and_then(|c| c.raft_group.as_deref())
            .or(self.stream_raft_group.as_deref())
            .filter(|g| !g.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct JszConsumer {
    pub name: String,
    pub stream_name: Option<String>,
    pub cluster: Option<GroupCluster>,
    #[serde(deserialize_with = "lenient_u64")]
    pub num_pending: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub num_ack_pending: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct RaftGroupName {
    pub name: String,
    pub raft_group: Option<String>,
}

/// `cluster` of a stream or consumer: the group as this server sees it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct GroupCluster {
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

impl GroupCluster {
    pub fn leader(&self) -> Option<&str> {
        self.leader
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

impl JszView {
    /// Parses an HTTP `/jsz` body.
    pub fn from_http(body: &str) -> Result<JszView, String> {
        serde_json::from_str(body).map_err(|e| format!("jsz: cannot parse JSON: {e}"))
    }

    /// Takes the JSZ of one `PING.JSZ` reply: `(server name, view)`.
    pub fn from_reply(reply: &ServerReply) -> Result<(String, JszView), String> {
        if let Some(p) = &reply.error {
            return Err(format!("{}: {p}", reply.server.name));
        }
        serde_json::from_value(reply.data.clone())
            .map(|v| (reply.server.name.clone(), v))
            .map_err(|e| format!("{}: cannot read the JSZ: {e}", reply.server.name))
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}
