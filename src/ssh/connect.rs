//! Opening an authenticated session to a node: TCP within the connect timeout, key
//! exchange, host key checked against known_hosts, then (only then) authentication.

use super::auth;
use super::known_hosts::{self, HostKey, KnownHostsFile, Verdict};
use super::{AcceptedHostKey, SshTransport};
use crate::inventory::Node;
use crate::transport::TransportError;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

impl SshTransport {
    /// Connects, verifies the host key and authenticates. Takes at most the node's
    /// `connect_timeout` once credentials are ready.
    pub(crate) fn connect(&self, node: &Node) -> Result<ssh2::Session, TransportError> {
        let ssh = &node.ssh;
        let addr = format!("{}:{}", node.host, ssh.port);
        let auth_err = |reason: String| TransportError::Auth {
            user: ssh.user.clone(),
            host: node.host.clone(),
            reason,
        };
        // Before the clock starts: a passphrase prompt takes human time.
        let creds = auth::prepare(
            ssh.identity_file.as_deref(),
            self.agent_socket.as_deref(),
            &self.passphrases,
        )
        .map_err(auth_err)?;
        let known_hosts = KnownHostsFile::load(&ssh.known_hosts)
            .map_err(|e| TransportError::Other(e.to_string()))?;
        let known = known_hosts
            .keys_for(&node.host, ssh.port)
            .map_err(|e| TransportError::Other(e.to_string()))?;

        let deadline = Instant::now() + ssh.connect_timeout;
        let timed_out = || TransportError::ConnectTimeout {
            addr: addr.clone(),
            after: ssh.connect_timeout,
        };
        let _slot = self.connect_slot(&addr, deadline).ok_or_else(timed_out)?;
        let tcp = tcp_connect(&node.host, ssh.port, deadline).map_err(|e| match e {
            TcpFailure::TimedOut => timed_out(),
            TcpFailure::Failed(reason) => TransportError::Connect {
                addr: addr.clone(),
                reason,
            },
        })?;

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
            if Instant::now() >= deadline || is_timeout(&e) {
                timed_out()
            } else {
                TransportError::Connect {
                    addr: addr.clone(),
                    reason: format!("SSH handshake failed: {}", e.message()),
                }
            }
        })?;

        self.check_host_key(node, &session, &known_hosts)?;

        set_timeout_until(&session, deadline);
        auth::authenticate(&session, &ssh.user, &creds, &self.passphrases).map_err(|reason| {
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
        session: &ssh2::Session,
        known_hosts: &KnownHostsFile,
    ) -> Result<(), TransportError> {
        let ssh = &node.ssh;
        let entry = known_hosts::host_entry_name(&node.host, ssh.port);
        let shown = format!("{} ({entry})", node.name);
        let kh_path = ssh.known_hosts.display().to_string();
        let (blob, _) = session.host_key().ok_or_else(|| {
            TransportError::Other(format!("{shown}: the server presented no host key"))
        })?;
        let offered = HostKey::from_blob(blob);
        let verdict = known_hosts
            .verify(&node.host, ssh.port, &offered.blob)
            .map_err(|e| TransportError::Other(e.to_string()))?;
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
                known_hosts::append(&ssh.known_hosts, &node.host, ssh.port, &offered)
                    .map_err(|e| TransportError::Other(e.to_string()))?;
                self.accepted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(AcceptedHostKey {
                        node: node.name.clone(),
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
