//! Opening an authenticated session to a node: TCP within the connect timeout, key
//! exchange, host key checked against known_hosts, then (only then) authentication.

use super::auth;
use super::known_hosts::{self, HostKey, KnownHostsFile, Verdict};
use super::{AcceptedHostKey, SshTransport};
use crate::inventory::Node;
use crate::natsys::forward::Forwarder;
use crate::transport::TransportError;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// One SSH server on the way to a node: a jump host (`ssh.proxy_jump`) or the node itself.
struct Server {
    /// How messages name it: `n1`, or `jump host ops@10.0.0.10` (`(hop 1 of 2)` in a chain).
    label: String,
    host: String,
    port: u16,
    user: String,
}

/// The local forwards a jumped session runs over, first hop first. They must outlive the
/// session: keep them next to it and drop them after it.
pub(crate) type Jumps = Vec<Forwarder>;

impl SshTransport {
    /// Connects, verifies the host key and authenticates, through every `ssh.proxy_jump`
    /// hop in turn (OpenSSH `-J`: each hop's session opens a `direct-tcpip` channel to the
    /// next server, bridged to a local socket that the next session runs over). Every hop's
    /// host key is verified against the node's known_hosts like the node's own. Each server
    /// takes at most the node's `connect_timeout` once credentials are ready.
    pub(crate) fn connect(&self, node: &Node) -> Result<(ssh2::Session, Jumps), TransportError> {
        let ssh = &node.ssh;
        let hops = ssh.proxy_jump.len();
        let mut servers: Vec<Server> = ssh
            .proxy_jump
            .iter()
            .enumerate()
            .map(|(i, j)| Server {
                label: if hops == 1 {
                    format!("jump host {j}")
                } else {
                    format!("jump host {j} (hop {} of {hops})", i + 1)
                },
                host: j.host.clone(),
                port: j.port.unwrap_or(22),
                user: j.user.clone().unwrap_or_else(|| ssh.user.clone()),
            })
            .collect();
        servers.push(Server {
            label: node.name.clone(),
            host: node.host.clone(),
            port: ssh.port,
            user: ssh.user.clone(),
        });
        // Before the clock starts: a passphrase prompt takes human time.
        let creds = auth::prepare(
            ssh.identity_file.as_deref(),
            self.agent_socket.as_deref(),
            &self.passphrases,
        )
        .map_err(|reason| TransportError::Auth {
            user: ssh.user.clone(),
            host: node.host.clone(),
            reason,
        })?;
        let known_hosts = KnownHostsFile::load(&ssh.known_hosts)
            .map_err(|e| TransportError::Other(e.to_string()))?;
        let mut jumps = Jumps::new();
        let mut via: Option<(ssh2::Session, &Server)> = None;
        for server in &servers {
            let session =
                self.connect_server(node, server, &creds, &known_hosts, via.take(), &mut jumps)?;
            via = Some((session, server));
        }
        let (session, _) = via.ok_or_else(|| TransportError::Other("no server to reach".into()))?;
        Ok((session, jumps))
    }

    /// One server: TCP (directly, or a channel of `via`, the previous hop's session), key
    /// exchange, host key, authentication.
    fn connect_server(
        &self,
        node: &Node,
        server: &Server,
        creds: &auth::Credentials,
        known_hosts: &KnownHostsFile,
        via: Option<(ssh2::Session, &Server)>,
        jumps: &mut Jumps,
    ) -> Result<ssh2::Session, TransportError> {
        let ssh = &node.ssh;
        let hostport = format!("{}:{}", server.host, server.port);
        let addr = match (&via, server.label == node.name) {
            (Some((_, hop)), _) => {
                format!("{} ({hostport}) through the {}", server.label, hop.label)
            }
            (None, true) => hostport.clone(),
            (None, false) => format!("{} ({hostport})", server.label),
        };
        let auth_err = |reason: String| TransportError::Auth {
            user: server.user.clone(),
            host: if server.label == node.name {
                server.host.clone()
            } else {
                format!("{} ({})", server.host, server.label)
            },
            reason,
        };
        let known = known_hosts
            .keys_for(&server.host, server.port)
            .map_err(|e| TransportError::Other(e.to_string()))?;

        let deadline = Instant::now() + ssh.connect_timeout;
        let timed_out = || TransportError::ConnectTimeout {
            addr: addr.clone(),
            after: ssh.connect_timeout,
        };
        let _slot = self
            .connect_slot(&hostport, deadline)
            .ok_or_else(timed_out)?;
        let through = via.is_some();
        let tcp = match via {
            None => tcp_connect(&server.host, server.port, deadline).map_err(|e| match e {
                TcpFailure::TimedOut => timed_out(),
                TcpFailure::Failed(reason) => TransportError::Connect {
                    addr: addr.clone(),
                    reason,
                },
            })?,
            Some((hop, _)) => {
                let fwd = jump_forward(hop, &server.host, server.port, ssh.connect_timeout)
                    .map_err(|e| TransportError::Connect {
                        addr: addr.clone(),
                        reason: format!("cannot start the local forward: {e}"),
                    })?;
                let tcp =
                    TcpStream::connect(fwd.local_addr()).map_err(|e| TransportError::Connect {
                        addr: addr.clone(),
                        reason: format!("cannot reach the local forward: {e}"),
                    })?;
                let _ = tcp.set_nodelay(true);
                jumps.push(fwd);
                tcp
            }
        };
        // Why a jumped handshake failed: the hop's refusal to open the channel, if any.
        let hop_error = |jumps: &Jumps| -> Option<String> {
            let status = jumps.last()?.status();
            (through && status.opened == 0)
                .then_some(status.last_error)
                .flatten()
        };

        let mut session =
            ssh2::Session::new().map_err(|e| TransportError::Other(format!("libssh2: {e}")))?;
        set_timeout_until(&session, deadline);
        let supported = session
            .supported_algs(ssh2::MethodType::HostKey)
            .unwrap_or_default();
        if let Some(pref) = known_hosts::host_key_method_pref(&known, &supported) {
            session
                .method_pref(ssh2::MethodType::HostKey, &pref)
                .map_err(|e| {
                    TransportError::Other(format!("cannot set host key preference {pref}: {e}"))
                })?;
        }
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| {
            if let Some(reason) = hop_error(jumps) {
                TransportError::Connect {
                    addr: addr.clone(),
                    reason,
                }
            } else if Instant::now() >= deadline || is_timeout(&e) {
                timed_out()
            } else {
                TransportError::Connect {
                    addr: addr.clone(),
                    reason: format!("SSH handshake failed: {}", e.message()),
                }
            }
        })?;

        self.check_host_key(node, server, &session, known_hosts, known)?;

        set_timeout_until(&session, deadline);
        auth::authenticate(&session, &server.user, creds, &self.passphrases).map_err(|reason| {
            if Instant::now() >= deadline {
                timed_out()
            } else {
                auth_err(reason)
            }
        })?;
        if !session.authenticated() {
            return Err(auth_err("the server did not confirm authentication".into()));
        }
        // No later blocking call may hang: channel requests get the connect timeout too.
        session.set_timeout(millis(ssh.connect_timeout));
        Ok(session)
    }

    /// Refuses unknown (unless accepting new keys), changed and revoked host keys.
    fn check_host_key(
        &self,
        node: &Node,
        server: &Server,
        session: &ssh2::Session,
        known_hosts: &KnownHostsFile,
        known: Vec<HostKey>,
    ) -> Result<(), TransportError> {
        let ssh = &node.ssh;
        let entry = known_hosts::host_entry_name(&server.host, server.port);
        let shown = format!("{} ({entry})", server.label);
        let kh_path = ssh.known_hosts.display().to_string();
        let (blob, _) = session.host_key().ok_or_else(|| {
            TransportError::Other(format!("{shown}: the server presented no host key"))
        })?;
        let offered = HostKey::from_blob(blob);
        let verdict = known_hosts.verify_known(known, &offered.blob);
        match verdict {
            Verdict::Trusted => Ok(()),
            Verdict::Changed { known } => Err(TransportError::HostKeyChanged {
                host: shown,
                known_hosts: kh_path,
                known: known
                    .iter()
                    .map(|k| format!("{} {}", k.key_type, k.fingerprint()))
                    .collect::<Vec<_>>()
                    .join(", "),
                offered: format!("{} {}", offered.key_type, offered.fingerprint()),
            }),
            Verdict::Revoked => Err(TransportError::HostKeyChanged {
                host: shown,
                known_hosts: kh_path,
                known: "that key marked @revoked".into(),
                offered: format!("{} {}", offered.key_type, offered.fingerprint()),
            }),
            Verdict::Unknown if self.accept_new || ssh.accept_new_host_keys => {
                known_hosts::append(&ssh.known_hosts, &server.host, server.port, &offered)
                    .map_err(|e| TransportError::Other(e.to_string()))?;
                self.accepted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(AcceptedHostKey {
                        node: server.label.clone(),
                        host: entry,
                        key_type: offered.key_type.clone(),
                        fingerprint: offered.fingerprint(),
                        known_hosts: ssh.known_hosts.clone(),
                    });
                Ok(())
            }
            Verdict::Unknown => Err(TransportError::HostKeyUnknown {
                host: shown,
                known_hosts: kh_path,
                offered: format!("{} {}", offered.key_type, offered.fingerprint()),
            }),
        }
    }
}

/// A local forward whose (single) connection is a `direct-tcpip` channel of `hop` to
/// `host:port`. The forward's thread owns `hop` from now on and drives it non-blocking.
fn jump_forward(
    hop: ssh2::Session,
    host: &str,
    port: u16,
    timeout: Duration,
) -> std::io::Result<Forwarder> {
    let (host, mut used) = (host.to_string(), false);
    Forwarder::start(move || {
        // One connection only: anything else on this machine that finds the port gets
        // nothing through our authenticated hop.
        if std::mem::replace(&mut used, true) {
            return Err(std::io::Error::other("this jump forward is in use"));
        }
        hop.set_blocking(true);
        hop.set_timeout(millis(timeout));
        let channel = hop.channel_direct_tcpip(&host, port, None).map_err(|e| {
            std::io::Error::other(format!(
                "the jump host cannot open a connection to {host}:{port}: {}",
                e.message()
            ))
        })?;
        hop.set_blocking(false);
        Ok(channel)
    })
}

fn is_timeout(e: &ssh2::Error) -> bool {
    const TIMEOUT: i32 = -9;
    const SOCKET_TIMEOUT: i32 = -30;
    matches!(e.code(), ssh2::ErrorCode::Session(TIMEOUT | SOCKET_TIMEOUT))
}

pub(crate) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// Bounds every blocking libssh2 call by what is left until `deadline`.
fn set_timeout_until(session: &ssh2::Session, deadline: Instant) {
    session.set_timeout(millis(deadline.saturating_duration_since(Instant::now())));
}

enum TcpFailure {
    TimedOut,
    Failed(String),
}

/// Resolves and connects within the deadline. Name resolution runs on its own thread
/// because `getaddrinfo` has no timeout of its own and a dead resolver must not stall us.
fn tcp_connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, TcpFailure> {
    let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let (tx, rx) = std::sync::mpsc::channel();
            let name = host.to_string();
            std::thread::spawn(move || {
                let _ = tx.send(
                    (name.as_str(), port)
                        .to_socket_addrs()
                        .map(Iterator::collect::<Vec<_>>),
                );
            });
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => {
                    return Err(TcpFailure::Failed(format!("cannot resolve {host}: {e}")))
                }
                Err(_) => return Err(TcpFailure::TimedOut),
            }
        }
    };
    let mut last = format!("{host} resolved to no address");
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TcpFailure::TimedOut);
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(TcpFailure::TimedOut),
            Err(e) => last = e.to_string(),
        }
    }
    Err(TcpFailure::Failed(last))
}
