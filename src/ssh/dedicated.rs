//! Dedicated (not pooled) sessions for long-lived tunnels: the system account's client
//! connection to a `monitor: ssh` node's client port (behind a bastion or a firewall).
//!
//! A pooled session is shared by calls on many threads; a tunnel's session belongs to the
//! forwarder's thread for as long as the NATS connection lives and runs non-blocking
//! (`crate::natsys::forward`), so it gets its own. It is opened by the same code as every
//! other session: host keys checked on every hop, jump hosts, identity or agent, timeouts.

use super::connect::{millis, Jumps};
use super::{host_port, SshTransport};
use crate::inventory::Node;
use crate::transport::{TransportError, TunnelOpener};

/// An authenticated session to one node that nothing else uses.
pub struct DedicatedSession {
    session: ssh2::Session,
    /// Declared after `session`, so dropped after it: the session runs over these.
    _jumps: Jumps,
}

impl std::fmt::Debug for DedicatedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedicatedSession")
            .field("hops", &self._jumps.len())
            .finish_non_exhaustive()
    }
}

impl SshTransport {
    /// Connects to `node` (through its `ssh.proxy_jump` hosts) as [`SshTransport::check`]
    /// does, and hands the session over instead of keeping it for later calls.
    pub fn dedicated_session(&self, node: &Node) -> Result<DedicatedSession, TransportError> {
        let (session, jumps) = self.connect(node)?;
        Ok(DedicatedSession {
            session,
            _jumps: jumps,
        })
    }
}

impl DedicatedSession {
    /// The session, blocking, with the node's connect timeout on every call.
    pub fn session(&self) -> &ssh2::Session {
        &self.session
    }

    /// An opener of `direct-tcpip` channels to `port` as the node sees it: 127.0.0.1 first
    /// (a port bound to localhost), then the node's own address (a port bound to one
    /// interface); the first target that accepted is asked first from then on. Each open
    /// blocks for at most the node's connect timeout; the session is then left non-blocking
    /// for the forwarder, the only user of the session from now on.
    pub fn into_opener(self, node: &Node, port: u16) -> TunnelOpener {
        let mut targets = vec!["127.0.0.1".to_string()];
        if !node.host.is_empty() && node.host != "127.0.0.1" && node.host != "localhost" {
            targets.push(node.host.clone());
        }
        let name = node.name.clone();
        let timeout = millis(node.ssh.connect_timeout);
        Box::new(move || {
            // `&self`, not `&self.session`: the closure must own the jump forwards too
            // (a closure captures only the fields it names, and dropped forwards would cut
            // the session's connection).
            let this = &self;
            let session = &this.session;
            session.set_blocking(true);
            session.set_timeout(timeout);
            let mut refusals = Vec::new();
            let mut opened = None;
            for (i, target) in targets.iter().enumerate() {
                match session.channel_direct_tcpip(target, port, None) {
                    Ok(ch) => {
                        opened = Some((i, ch));
                        break;
                    }
                    Err(e) => {
                        refusals.push(format!("{}: {}", host_port(target, port), e.message()))
                    }
                }
            }
            session.set_blocking(false);
            match opened {
                Some((i, ch)) => {
                    targets[..=i].rotate_right(1);
                    Ok(ch)
                }
                None => Err(std::io::Error::other(format!(
                    "{name} cannot open a connection to port {port} through SSH: {}",
                    refusals.join("; ")
                ))),
            }
        })
    }
}

impl SshTransport {
    pub(super) fn tunnel_to(&self, node: &Node, port: u16) -> Result<TunnelOpener, TransportError> {
        Ok(self.dedicated_session(node)?.into_opener(node, port))
    }
}
