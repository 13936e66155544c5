//! Wraps a transport and records every command sent, so tests can assert what ran.

use super::{ExecOutput, HttpResponse, RemoteCommand, Transport, TransportError, TunnelOpener};
use crate::inventory::Node;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records `(node, script)` for every `exec`, then delegates.
#[derive(Clone)]
pub struct RecordingTransport<T> {
    inner: T,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

impl<T: Transport> RecordingTransport<T> {
    pub fn new(inner: T) -> Self {
        RecordingTransport {
            inner,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }
    /// Every command sent so far, in order.
    pub fn commands(&self) -> Vec<(String, String)> {
        self.log.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl<T: Transport> Transport for RecordingTransport<T> {
    fn exec(&self, node: &Node, cmd: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        if let Ok(mut g) = self.log.lock() {
            g.push((node.name.clone(), cmd.script.clone()));
        }
        self.inner.exec(node, cmd)
    }
    fn http_get(
        &self,
        node: &Node,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        self.inner.http_get(node, path, timeout)
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn tunnel(&self, node: &Node, port: u16) -> Option<Result<TunnelOpener, TransportError>> {
        self.inner.tunnel(node, port)
    }
}
