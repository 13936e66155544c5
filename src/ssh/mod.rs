//! The real transport: commands and monitoring requests over SSH (libssh2 via `ssh2`).
//!
//! - One authenticated session per node is kept and reused within a run (at most
//!   `MAX_IDLE_TOTAL` idle in all, the least recently used closed first); a second
//!   concurrent call for the same node opens a second session rather than wait (libssh2
//!   serialises everything on one session behind a lock). Calls for different nodes never
//!   share a lock while doing I/O.
//! - Host keys are verified against the node's known_hosts before authentication
//!   ([`known_hosts`]); trust-on-first-use only when asked, and every key so accepted is
//!   reported by [`SshTransport::take_accepted_host_keys`] for the journal.
//! - Every command is bounded on the node (`timeout --kill-after`) and here (a deadline in a
//!   non-blocking read loop) ([`exec`]).
//! - Monitoring is reached directly, through the session ([`tunnel`]), or direct-then-tunnel.

mod auth;
pub mod config;
mod connect;
mod dedicated;
mod exec;
pub mod known_hosts;
mod tunnel;

pub use auth::{key_protection, KeyProtection, PassphraseCallback, PASSPHRASE_ENV};
pub use dedicated::DedicatedSession;

use crate::inventory::{MonitorMode, Node};
use crate::transport::{
    ExecOutput, HttpResponse, RemoteCommand, Transport, TransportError, TunnelOpener, OUTPUT_CAP,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Idle sessions kept per node (more only exist while calls for that node overlap).
const MAX_IDLE_PER_NODE: usize = 4;
/// Idle sessions kept in all, the least recently used closed first. Each holds ~80 KB of
/// libssh2 buffers: a gather of 200 nodes kept 200 of them to the end of the run (issue #17).
/// As many as a gather works on at once ([`crate::nats::parallel::MAX_PARALLEL_NODES`]).
const MAX_IDLE_TOTAL: usize = 64;
/// Handshakes in flight per server. sshd's default `MaxStartups 10:30:100` starts dropping
/// connections at 10 unauthenticated ones; a burst of calls for one node must stay below.
const MAX_CONNECTING_PER_SERVER: usize = 4;

/// A host key accepted on first use (`accept_new_host_keys`), to be journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedHostKey {
    /// Inventory node name.
    pub node: String,
    /// The name written to known_hosts: `host`, or `[host]:port` for ports other than 22.
    pub host: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, …
    pub key_type: String,
    /// `SHA256:<base64>` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The file the key was appended to.
    pub known_hosts: PathBuf,
}

/// SSH implementation of [`Transport`]. Cheap to share (`&SshTransport` across threads).
pub struct SshTransport {
    accept_new: bool,
    agent_socket: Option<PathBuf>,
    passphrases: auth::Passphrases,
    /// Idle sessions by node name. Locked only to take or return a session, never across I/O.
    idle: Mutex<HashMap<String, Vec<Idle>>>,
    /// Stamps idle sessions in the order they were given back (for [`MAX_IDLE_TOTAL`]).
    returned: AtomicU64,
    accepted: Mutex<Vec<AcceptedHostKey>>,
    /// Handshakes in flight per `host:port`, and the condition to wait for a free slot.
    connecting: (Mutex<HashMap<String, usize>>, Condvar),
}

/// A session waiting for reuse, with what it was opened for (a node of the same name but
/// other settings must not get it).
struct Idle {
    session: ssh2::Session,
    /// Declared after `session`, so dropped after it: the session runs over these.
    jumps: connect::Jumps,
    endpoint: Endpoint,
    /// When it was given back ([`SshTransport::returned`]): the lowest is closed first.
    returned: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
    user: String,
    identity_file: Option<PathBuf>,
    known_hosts: PathBuf,
    proxy_jump: Vec<crate::inventory::JumpHost>,
}

impl Endpoint {
    fn of(node: &Node) -> Endpoint {
        Endpoint {
            host: node.host.clone(),
            port: node.ssh.port,
            user: node.ssh.user.clone(),
            identity_file: node.ssh.identity_file.clone(),
            known_hosts: node.ssh.known_hosts.clone(),
            proxy_jump: node.ssh.proxy_jump.clone(),
        }
    }
}

/// A session taken for one call; given back only if the call left it in a known state.
struct Lease {
    session: ssh2::Session,
    /// The jump hosts' forwards the session runs over (dropped after it).
    jumps: connect::Jumps,
    reused: bool,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport")
            .field("accept_new", &self.accept_new)
            .field("agent_socket", &self.agent_socket)
            .finish_non_exhaustive()
    }
}

impl SshTransport {
    /// `accept_new`: accept and record unknown host keys for every node (the
    /// `--accept-new-host-keys` flag); a node's `accept_new_host_keys` does the same for that
    /// node. A changed key is refused either way.
    pub fn new(accept_new: bool) -> SshTransport {
        SshTransport {
            accept_new,
            agent_socket: None,
            passphrases: auth::Passphrases::default(),
            idle: Mutex::new(HashMap::new()),
            returned: AtomicU64::new(0),
            accepted: Mutex::new(Vec::new()),
            connecting: (Mutex::new(HashMap::new()), Condvar::new()),
        }
    }

    /// Asks `callback` for the passphrase of an encrypted `identity_file` when
    /// `NATS_RESCUE_SSH_PASSPHRASE` is not set. Answers are remembered for the run.
    pub fn with_passphrase_callback(
        mut self,
        callback: impl Fn(&Path) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.passphrases.set_callback(Arc::new(callback));
        self
    }

    /// Uses this ssh-agent socket instead of `$SSH_AUTH_SOCK` for nodes without
    /// `identity_file`.
    pub fn with_agent_socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.agent_socket = Some(socket.into());
        self
    }

    /// Host keys accepted on first use since the last call, oldest first.
    pub fn take_accepted_host_keys(&self) -> Vec<AcceptedHostKey> {
        std::mem::take(&mut *self.accepted.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Connects to `node` now (host key check and authentication included) and keeps the
    /// session for later calls. Useful to surface SSH problems before a runbook starts.
    pub fn check(&self, node: &Node) -> Result<(), TransportError> {
        let lease = self.checkout(node)?;
        self.give_back(node, lease);
        Ok(())
    }

    /// Drops every idle session (e.g. after a node's sshd was restarted on purpose).
    pub fn disconnect_all(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Runs `cmd_for(node)` on every node, at most `concurrency` at a time, and returns
    /// `(node name, result)` in the order of `nodes`. Each node is bounded by its own
    /// timeouts, so an unreachable node costs its connect timeout and never holds up others
    /// beyond that.
    pub fn run_parallel(
        &self,
        nodes: &[&Node],
        cmd_for: impl Fn(&Node) -> RemoteCommand + Sync,
        concurrency: usize,
    ) -> Vec<(String, Result<ExecOutput, TransportError>)> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<ExecOutput, TransportError>>>> =
            Mutex::new((0..nodes.len()).map(|_| None).collect());
        let workers = concurrency.clamp(1, nodes.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(node) = nodes.get(i) else { break };
                    let r = self.exec(node, &cmd_for(node));
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .zip(results)
            .map(|(n, r)| {
                // Every slot is filled: `scope` re-raises a worker's panic before we get here.
                let r = r.unwrap_or_else(|| {
                    Err(TransportError::Other(
                        "internal error: worker thread panicked".into(),
                    ))
                });
                (n.name.clone(), r)
            })
            .collect()
    }

    /// Waits (until `deadline`) for a handshake slot for `server`; `None` on timeout.
    fn connect_slot(&self, server: &str, deadline: Instant) -> Option<ConnectSlot<'_>> {
        let (lock, cv) = &self.connecting;
        let mut inflight = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let n = inflight.entry(server.to_string()).or_insert(0);
            if *n < MAX_CONNECTING_PER_SERVER {
                *n += 1;
                return Some(ConnectSlot {
                    transport: self,
                    server: server.to_string(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            inflight = cv
                .wait_timeout(inflight, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn checkout(&self, node: &Node) -> Result<Lease, TransportError> {
        let endpoint = Endpoint::of(node);
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let list = idle.entry(node.name.clone()).or_default();
            // Sessions opened for other settings under this name are stale: drop them.
            list.retain(|s| s.endpoint == endpoint);
            list.pop()
        };
        match reused {
            Some(i) => Ok(Lease {
                session: i.session,
                jumps: i.jumps,
                reused: true,
            }),
            None => {
                let (session, jumps) = self.connect(node)?;
                Ok(Lease {
                    session,
                    jumps,
                    reused: false,
                })
            }
        }
    }

    fn give_back(&self, node: &Node, lease: Lease) {
        lease.session.set_blocking(true);
        lease
            .session
            .set_timeout(connect::millis(node.ssh.connect_timeout));
        let returned = self.returned.fetch_add(1, Ordering::Relaxed);
        // Closed after the lock is released (closing may write to the socket).
        let closed = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let list = idle.entry(node.name.clone()).or_default();
            if list.len() >= MAX_IDLE_PER_NODE {
                return;
            }
            list.push(Idle {
                session: lease.session,
                jumps: lease.jumps,
                endpoint: Endpoint::of(node),
                returned,
            });
            evict_over(&mut idle, MAX_IDLE_TOTAL)
        };
        drop(closed);
    }

    /// Takes a session and opens a channel on it. A cached session may have died (sshd
    /// restarted, NAT timeout): then it is dropped and one fresh connection is tried.
    fn open_channel(
        &self,
        node: &Node,
        open: impl Fn(&ssh2::Session) -> Result<ssh2::Channel, ssh2::Error>,
    ) -> Result<(Lease, ssh2::Channel), TransportError> {
        let failed = |e: &ssh2::Error| {
            TransportError::Other(format!(
                "{}: cannot open an SSH channel: {}",
                node.name,
                e.message()
            ))
        };
        let lease = self.checkout(node)?;
        match open(&lease.session) {
            Ok(ch) => return Ok((lease, ch)),
            // The server said no on a live session (e.g. nothing listens behind a port
            // forward): the session is fine, and a new connection would hear the same.
            Err(e) if is_channel_refusal(&e) => {
                self.give_back(node, lease);
                return Err(failed(&e));
            }
            Err(e) if !lease.reused => return Err(failed(&e)),
            Err(_) => {}
        }
        drop(lease);
        let (session, jumps) = self.connect(node)?;
        let lease = Lease {
            session,
            jumps,
            reused: false,
        };
        match open(&lease.session) {
            Ok(ch) => Ok((lease, ch)),
            Err(e) if is_channel_refusal(&e) => {
                self.give_back(node, lease);
                Err(failed(&e))
            }
            Err(e) => Err(failed(&e)),
        }
    }

    fn http_via_ssh(
        &self,
        node: &Node,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        let port = node.nats.monitor_port;
        // Loopback first (monitoring bound to localhost); then the node's own address, as
        // seen from the node, for a monitor bound to one interface only.
        let mut targets = vec!["127.0.0.1".to_string()];
        if !node.host.is_empty() && node.host != "127.0.0.1" && node.host != "localhost" {
            targets.push(node.host.clone());
        }
        let mut refusals = Vec::new();
        let mut opened = None;
        for target in &targets {
            match self.open_channel(node, |s| s.channel_direct_tcpip(target, port, None)) {
                Ok(open) => {
                    opened = Some((target.clone(), open));
                    break;
                }
                Err(TransportError::Other(reason)) => {
                    refusals.push(format!("{}: {reason}", host_port(target, port)))
                }
                Err(other) => return Err(other),
            }
        }
        let Some((target, (lease, mut channel))) = opened else {
            return Err(TransportError::Connect {
                addr: format!("monitoring port {port} through SSH to {}", node.name),
                reason: refusals.join("; "),
            });
        };
        let host_header = host_port(&target, port);
        let addr = format!("{host_header} through SSH to {}", node.name);
        let deadline = Instant::now() + timeout;
        let answer = tunnel::get(&lease.session, &mut channel, &host_header, path, deadline);
        tunnel::close(
            &lease.session,
            &mut channel,
            Instant::now() + Duration::from_millis(200),
        );
        match answer {
            Ok((status, body)) => {
                drop(channel);
                self.give_back(node, lease);
                Ok(HttpResponse {
                    status,
                    body,
                    via: "ssh",
                })
            }
            // The session may be mid-read: do not reuse it.
            Err(reason) => {
                discard(lease, channel);
                Err(TransportError::Connect { addr, reason })
            }
        }
    }

    fn http_direct(
        &self,
        node: &Node,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        let addr = host_port(&node.host, node.nats.monitor_port);
        let url = format!("http://{addr}{path}");
        let client = crate::transport::http_client(node.ssh.connect_timeout.min(timeout))?;
        // Only a failure to connect is `Connect*` (what `auto` falls back on); a server that
        // accepted and then failed to answer is something else.
        let resp = client.get(&url).timeout(timeout).send().map_err(|e| {
            let reason = crate::transport::error_chain(&e);
            match (e.is_connect(), e.is_timeout()) {
                (true, true) => TransportError::ConnectTimeout {
                    addr: addr.clone(),
                    after: node.ssh.connect_timeout.min(timeout),
                },
                (true, false) => TransportError::Connect {
                    addr: addr.clone(),
                    reason,
                },
                _ => TransportError::Other(format!("GET {url}: {reason}")),
            }
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().map_err(|e| {
            TransportError::Other(format!("GET {url}: {}", crate::transport::error_chain(&e)))
        })?;
        Ok(HttpResponse {
            status,
            body,
            via: "direct",
        })
    }
}

/// Takes the least recently given back sessions out of `idle` until at most `max` are left.
fn evict_over(idle: &mut HashMap<String, Vec<Idle>>, max: usize) -> Vec<Idle> {
    let mut out = Vec::new();
    while idle.values().map(Vec::len).sum::<usize>() > max {
        let oldest = idle
            .iter()
            .flat_map(|(name, list)| {
                list.iter()
                    .enumerate()
                    .map(move |(i, s)| (s.returned, name, i))
            })
            .min_by_key(|(returned, _, _)| *returned)
            .map(|(_, name, i)| (name.clone(), i));
        let Some((name, i)) = oldest else { break };
        if let Some(list) = idle.get_mut(&name) {
            out.push(list.remove(i));
            if list.is_empty() {
                idle.remove(&name);
            }
        }
    }
    out
}

/// `host:port`, with IPv6 addresses bracketed as URLs and Host headers need them.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Drops a session in an unknown state without waiting on it: libssh2 tries to close the
/// channel and the session politely, and on a dead link each of those would block for the
/// full session timeout.
fn discard(lease: Lease, channel: ssh2::Channel) {
    lease.session.set_blocking(true);
    lease.session.set_timeout(200);
    drop(channel);
    drop(lease);
}

/// A handshake slot; frees itself on drop.
struct ConnectSlot<'a> {
    transport: &'a SshTransport,
    server: String,
}

impl Drop for ConnectSlot<'_> {
    fn drop(&mut self) {
        let (lock, cv) = &self.transport.connecting;
        let mut inflight = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = inflight.get_mut(&self.server) {
            *n = n.saturating_sub(1);
        }
        cv.notify_all();
    }
}

fn is_channel_refusal(e: &ssh2::Error) -> bool {
    const CHANNEL_FAILURE: i32 = -21;
    const REQUEST_DENIED: i32 = -32;
    matches!(
        e.code(),
        ssh2::ErrorCode::Session(CHANNEL_FAILURE | REQUEST_DENIED)
    )
}

impl Transport for SshTransport {
    fn exec(&self, node: &Node, cmd: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        let start = Instant::now();
        let command = exec::wrap(cmd)?;
        let (lease, mut channel) = self.open_channel(node, ssh2::Session::channel_session)?;
        // The node stops the command at `timeout` (+ kill-after); we wait a little longer
        // for its answer, then give up on the session.
        let deadline = Instant::now() + cmd.timeout + exec::KILL_AFTER + exec::CLIENT_GRACE;
        let done = match exec::run(&lease.session, &mut channel, &command, deadline, OUTPUT_CAP) {
            Ok(done) => done,
            Err(reason) => {
                discard(lease, channel);
                return Err(match reason.strip_prefix(exec::LOST_MARK) {
                    Some(r) => TransportError::Lost {
                        node: node.name.clone(),
                        reason: r.to_string(),
                    },
                    None => TransportError::Other(format!("{}: {reason}", node.name)),
                });
            }
        };
        if done.abandoned {
            // Unknown state (half-read channel): never reuse.
            discard(lease, channel);
        } else {
            drop(channel);
            self.give_back(node, lease);
        }
        // coreutils `timeout` exits 124 (TERM worked) or 137 (needed KILL) when it stopped
        // the command; a command exiting 124 by itself before its time is just an exit code.
        let stopped_by_timeout = matches!(done.exit_code, Some(124 | 137))
            && done.elapsed + Duration::from_millis(50) >= cmd.timeout;
        let timed_out = done.abandoned || stopped_by_timeout;
        if !timed_out && exec::sudo_needs_password(cmd.sudo, done.exit_code, &done.stderr.text) {
            return Err(TransportError::SudoPassword {
                host: node.name.clone(),
            });
        }
        Ok(ExecOutput {
            exit_code: if timed_out { None } else { done.exit_code },
            stdout: done.stdout,
            stderr: done.stderr,
            duration: start.elapsed(),
            timed_out,
            lost: done.abandoned,
        })
    }

    fn http_get(
        &self,
        node: &Node,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        match node.nats.monitor {
            MonitorMode::Direct => self.http_direct(node, path_and_query, timeout),
            MonitorMode::Ssh => self.http_via_ssh(node, path_and_query, timeout),
            MonitorMode::Auto => match self.http_direct(node, path_and_query, timeout) {
                Err(TransportError::Connect { addr, reason }) => self
                    .http_via_ssh(node, path_and_query, timeout)
                    .map_err(|e| {
                        TransportError::Other(format!(
                            "monitoring of {}: direct {addr}: {reason}; through SSH: {e}",
                            node.name
                        ))
                    }),
                Err(TransportError::ConnectTimeout { addr, after }) => self
                    .http_via_ssh(node, path_and_query, timeout)
                    .map_err(|e| {
                        TransportError::Other(format!(
                            "monitoring of {}: direct {addr}: timed out after {}; through SSH: {e}",
                            node.name,
                            crate::duration::format(after)
                        ))
                    }),
                other => other,
            },
        }
    }

    fn name(&self) -> &'static str {
        "ssh"
    }

    fn tunnel(&self, node: &Node, port: u16) -> Option<Result<TunnelOpener, TransportError>> {
        Some(self.tunnel_to(node, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(returned: u64) -> Idle {
        Idle {
            session: ssh2::Session::new().expect("session"),
            jumps: connect::Jumps::new(),
            endpoint: Endpoint {
                host: "h".into(),
                port: 22,
                user: "root".into(),
                identity_file: None,
                known_hosts: PathBuf::from("kh"),
                proxy_jump: Vec::new(),
            },
            returned,
        }
    }

    #[test]
    fn idle_sessions_beyond_the_total_close_least_recently_used_first() {
        let mut map: HashMap<String, Vec<Idle>> = HashMap::new();
        // 200 nodes given back one after another, as a gather of 200 nodes does.
        let mut closed = 0;
        for i in 0..200u64 {
            map.entry(format!("n{i}")).or_default().push(idle(i));
            closed += evict_over(&mut map, MAX_IDLE_TOTAL).len();
        }
        assert_eq!(closed, 200 - MAX_IDLE_TOTAL);
        let kept: usize = map.values().map(Vec::len).sum();
        assert_eq!(kept, MAX_IDLE_TOTAL);
        // The most recent ones are kept.
        for i in 200 - MAX_IDLE_TOTAL as u64..200 {
            assert_eq!(map[&format!("n{i}")].len(), 1, "n{i}");
        }
        assert!(!map.contains_key("n0"));
        // Under the total nothing is closed.
        let mut small: HashMap<String, Vec<Idle>> = HashMap::new();
        for i in 0..10u64 {
            small.entry(format!("n{i}")).or_default().push(idle(i));
        }
        assert!(evict_over(&mut small, MAX_IDLE_TOTAL).is_empty());
    }

    #[test]
    fn the_total_bound_matches_the_gather_fan_out() {
        assert_eq!(MAX_IDLE_TOTAL, crate::nats::parallel::MAX_PARALLEL_NODES);
    }
}
