//! One server's JSZ with accounts, streams, consumers and Raft groups, from either source:
//! - HTTP `/jsz?accounts=true&streams=true&consumers=true&raft=true` (the body is the JSZ), or
//! - the system account: `$SYS.REQ.SERVER.PING.JSZ` with [`jsz_groups_body`] (the JSZ is
//!   each reply's `data`).
//!
//! Only what the group facts need is typed; every field is optional (2.9.10 sends no
//! `raft_group`, 2.15.1 omits `leader` when there is none, …).

use super::reply::ServerReply;
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

/// One server's JSZ: the one `/jsz` parser, [`crate::nats::monitor::Jsz`].
pub use crate::nats::monitor::{
    AccountDetail as JszAccount, ConsumerDetail as JszConsumer, Jsz as JszView, RaftGroupName,
    StreamCluster as GroupCluster, StreamDetail as JszStream,
};

impl JszAccount {
    /// `name`, else `id`, else `""`.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }
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
