//! Errors of the system-account client. No message ever holds a password or a seed: our own
//! texts never include them, and text from libraries passes through [`super::options::scrub`].

use std::path::PathBuf;
use std::time::Duration;

/// A failure to connect, or a request that got no usable answer. A reply carrying a
/// JetStream API error is not an error here: it is a [`super::Reply`] with `error` set.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// The options cannot work (no server, a key without a certificate, …).
    #[error("invalid system-account options: {0}")]
    Options(String),
    /// A credentials, seed, CA, certificate or key file could not be used.
    #[error("cannot use the {what} {}: {reason}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The server refused the credentials.
    #[error("the NATS server at {server} refused {auth}: {reason}")]
    Auth {
        server: String,
        /// What was offered (`user "sys"`, `nkey seed file …`), never the secret.
        auth: String,
        reason: String,
    },
    /// The TLS handshake failed (certificate, name, protocol).
    #[error("TLS with the NATS server at {server} failed: {reason}")]
    Tls { server: String, reason: String },
    /// No server could be reached (refused, timed out, not NATS). One reason per server.
    #[error("cannot connect to a NATS server: {}", reasons.join("; "))]
    Connect { reasons: Vec<String> },
    /// The forwarder could not open its stream to the server (e.g. the SSH channel).
    #[error("the tunnel to the NATS server failed: {0}")]
    Tunnel(String),
    /// Nobody subscribes to the subject: the server does not offer it, or the user is not in
    /// the system account, or (for `$JS.API.META.*`) there is no meta leader.
    #[error("no responders on {subject}{hint}")]
    NoResponders { subject: String, hint: String },
    /// Somebody subscribes but no reply came in time. The request may still be pending and
    /// take effect later (a peer-remove waits for quorum, FACTS §7.3).
    #[error("no reply on {subject} within {}: the request may still be pending on the server", crate::duration::format(*timeout))]
    Timeout { subject: String, timeout: Duration },
    /// The connection failed while sending or waiting.
    #[error("request on {subject} failed: {reason}")]
    Request { subject: String, reason: String },
    /// The blocking client could not start its runtime.
    #[error("cannot start the NATS client runtime: {0}")]
    Runtime(String),
}

impl SysError {
    /// True for refused credentials (callers map this to "node cannot be managed").
    pub fn is_auth(&self) -> bool {
        matches!(self, SysError::Auth { .. })
    }

    /// True when the request may have been applied although no reply came.
    pub fn maybe_pending(&self) -> bool {
        matches!(self, SysError::Timeout { .. })
    }
}
