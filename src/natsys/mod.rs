//! The NATS system account: a client for `$SYS.REQ.SERVER.PING.*` and the JetStream admin API
//! (`$JS.API.META.*`, `$JS.API.SERVER.*`, …), and the stream/consumer group facts read from
//! JSZ (FACTS §2.5, §7, §12.1).
//!
//! - [`SysOptions`] → [`SysClient::connect`] (async) or [`BlockingSysClient::connect`]
//!   (owns a current-thread runtime; see [`blocking`] for why). Through SSH:
//!   [`SysClient::connect_through`] with an opener for a stream, bridged by a [`Forwarder`].
//! - [`SysClient::ping`] → one [`ServerReply`] per server; [`SysClient::request`] → [`Reply`]s
//!   (API errors inside, "no responders" and "timeout, maybe pending" as [`SysError`]s).
//! - [`JszView`] (one server, from HTTP or a `PING.JSZ` reply) → [`combine`] over every
//!   server → [`GroupFacts`] per `ACCOUNT > STREAM [> CONSUMER]`.
//!
//! The fact gather uses it as a second source and the engine's `nats:` action sends its
//! requests with it, both connected by `crate::nats::sysfacts::connect` (directly, or through
//! an SSH tunnel to a `monitor: ssh` node).

pub mod blocking;
mod client;
mod error;
pub mod forward;
pub mod groups;
pub mod jsz;
mod options;
mod reply;
mod tls;

#[cfg(test)]
mod tests;

pub use blocking::BlockingSysClient;
pub use client::{Collect, ConnectedServer, SysClient, PING_PREFIX};
pub use error::SysError;
pub use forward::{ForwardStatus, Forwarder, TunnelStream};
pub use groups::{combine, GroupFacts, ReplicaFacts, ServerJsz};
pub use jsz::{
    jsz_groups_body, GroupCluster, JszAccount, JszConsumer, JszStream, JszView, JSZ_GROUPS_QUERY,
};
pub use options::{
    SysAuth, SysOptions, TlsFiles, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
pub use reply::{ApiError, Reply, ReplyProblem, ServerIdentity, ServerReply};
