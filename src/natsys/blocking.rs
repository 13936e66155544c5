//! A blocking face of [`SysClient`] for the project's synchronous code (the engine, the
//! probe, node workers of [`crate::engine::fanout`]).
//!
//! Decision: each blocking client owns a small current-thread tokio runtime instead of
//! borrowing a `Handle`. The shared runtime in `engine::fanout` is private and runs node
//! work on its blocking pool; a `Handle::block_on` there would tie the NATS connection task
//! to that pool's two worker threads. An own runtime is independent of who calls, costs no
//! thread, and drives the connection only while a call is in progress — enough for
//! request/reply (server pings every 2 minutes are answered on the next call; a connection
//! dropped meanwhile is re-established by async-nats).
//!
//! Call it from a plain thread or from `spawn_blocking` (as `fanout` does), never from
//! inside an async task: tokio refuses to block there (it panics).

use super::client::{Collect, ConnectedServer, SysClient};
use super::error::SysError;
use super::forward::TunnelStream;
use super::options::SysOptions;
use super::reply::{Reply, ServerReply};
use serde_json::Value;
use std::io;
use std::time::Duration;

/// A system-account client with blocking calls.
pub struct BlockingSysClient {
    // Dropped before `rt`, so the connection closes while its runtime still exists.
    inner: Option<SysClient>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for BlockingSysClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingSysClient")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, SysError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SysError::Runtime(e.to_string()))
}

impl BlockingSysClient {
    /// See [`SysClient::connect`].
    pub fn connect(opts: &SysOptions) -> Result<BlockingSysClient, SysError> {
        let rt = runtime()?;
        let inner = rt.block_on(SysClient::connect(opts))?;
        Ok(BlockingSysClient {
            inner: Some(inner),
            rt,
        })
    }

    /// See [`SysClient::connect_through`]; `open` runs on the forwarder's thread.
    pub fn connect_through<S, F>(opts: &SysOptions, open: F) -> Result<BlockingSysClient, SysError>
    where
        S: TunnelStream,
        F: FnMut() -> io::Result<S> + Send + 'static,
    {
        let rt = runtime()?;
        let inner = rt.block_on(SysClient::connect_through(opts, open))?;
        Ok(BlockingSysClient {
            inner: Some(inner),
            rt,
        })
    }

    fn inner(&self) -> &SysClient {
        // Only `close` takes it, and `close` consumes self.
        self.inner
            .as_ref()
            .unwrap_or_else(|| unreachable!("client used after close"))
    }

    pub fn server(&self) -> &ConnectedServer {
        self.inner().server()
    }

    pub fn secrets(&self) -> Vec<&str> {
        self.inner().secrets()
    }

    /// [`Collect`] with the options' request timeout.
    pub fn default_collect(&self) -> Collect {
        Collect::within(self.inner().request_timeout())
    }

    /// See [`SysClient::ping`].
    pub fn ping(
        &self,
        kind: &str,
        body: Option<&Value>,
        collect: Collect,
    ) -> Result<Vec<ServerReply>, SysError> {
        self.rt.block_on(self.inner().ping(kind, body, collect))
    }

    /// See [`SysClient::request`].
    pub fn request(
        &self,
        subject: &str,
        body: Option<&Value>,
        timeout: Duration,
        broadcast: bool,
    ) -> Result<Vec<Reply>, SysError> {
        self.rt
            .block_on(self.inner().request(subject, body, timeout, broadcast))
    }

    /// Flushes and closes the connection.
    pub fn close(mut self) {
        if let Some(c) = self.inner.take() {
            self.rt.block_on(c.close());
        }
    }
}
