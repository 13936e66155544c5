//! The NATS system account: a client for `$SYS.REQ.SERVER.PING.*` and the JetStream admin API
//! (`$JS.API.META.*`, `$JS.API.SERVER.*`, …), and the stream/consumer group facts read from
//! JSZ (FACTS §2.5, §7, §12.1).
//!
//! - [`SysOptions`] → [`SysClient::connect`] (async) or [`BlockingSysClient::connect`]
//!   (owns a current-thread runtime; see [`blocking`] for why). Through SSH:
//!   [`SysClient::connect_through`] with an opener for a stream, bridged by a [`Forwarder`].
//! - [`SysClient::ping`] → one [`ServerReply`] per server; [`SysClient::request`] → [`Reply`]s
//!   (API errors inside, "no responders" and "timeout, maybe pending" as [`SysError`]s).
//!
//! Not wired into the CLI yet: the inventory mapping and the engine's `nats:` action use it.

pub mod blocking;
mod client;
mod error;
pub mod forward;
mod options;
mod reply;
mod tls;

pub use blocking::BlockingSysClient;
pub use client::{Collect, ConnectedServer, SysClient, PING_PREFIX};
pub use error::SysError;
pub use forward::{ForwardStatus, Forwarder, TunnelStream};
pub use options::{
    SysAuth, SysOptions, TlsFiles, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
pub use reply::{ApiError, Reply, ReplyProblem, ServerIdentity, ServerReply};
