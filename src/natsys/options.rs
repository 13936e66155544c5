//! How to reach the system account: addresses, credentials, TLS, timeouts. Independent of
//! the inventory (the caller maps `nats.system_user` / `system_creds` / `system_nkey_seed` /
//! `client_tls` onto it).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default for [`SysOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`SysOptions::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Connection options for a system-account client.
#[derive(Clone)]
pub struct SysOptions {
    /// `host:port` of client ports, tried in this order until one accepts us. Only one
    /// connection is made; servers the cluster advertises are ignored (the tool talks to what
    /// the operator configured). Through a tunnel, the first entry names the server for TLS.
    pub servers: Vec<String>,
    pub auth: SysAuth,
    pub tls: Option<TlsFiles>,
    /// TCP connect plus the NATS handshake, per server.
    pub connect_timeout: Duration,
    /// Default wait for replies ([`super::Collect::default_for`]).
    pub request_timeout: Duration,
    /// Client name shown in the server's `/connz`.
    pub client_name: String,
}

/// Credentials of a system-account user.
#[derive(Clone, PartialEq, Eq)]
pub enum SysAuth {
    None,
    UserPassword {
        user: String,
        password: String,
    },
    /// A `.creds` file (user JWT + nkey seed), for operator/JWT deployments.
    CredsFile(PathBuf),
    /// A file holding an nkey user seed (`SU…`), as `nk -gen user` writes it.
    NkeySeedFile(PathBuf),
}

/// TLS for the client connection. Any field set turns TLS on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA bundle that signed the server certificate; without it the system roots are used.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name the server certificate must carry (requires `ca_file`). Default: the host
    /// of the address being connected to; through a tunnel, of the first entry of `servers`
    /// (the connection itself goes to 127.0.0.1).
    pub server_name: Option<String>,
}

impl SysOptions {
    /// Options for `servers` with `auth`, no TLS and the default timeouts.
    pub fn new<I, S>(servers: I, auth: SysAuth) -> SysOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        SysOptions {
            servers: servers.into_iter().map(Into::into).collect(),
            auth,
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            client_name: format!("nats-rescue/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Values that must never be shown or journaled: the password. (Creds and seed files
    /// are read only when connecting; their contents never enter an error message.)
    pub fn secrets(&self) -> Vec<&str> {
        match &self.auth {
            SysAuth::UserPassword { password, .. } if !password.is_empty() => vec![password],
            _ => Vec::new(),
        }
    }

    /// `a:4222, b:4222` for messages.
    pub fn servers_text(&self) -> String {
        if self.servers.is_empty() {
            "(no server)".into()
        } else {
            self.servers.join(", ")
        }
    }
}

impl SysAuth {
    /// `user sys`, `creds file /x`, … (never the secret).
    pub fn describe(&self) -> String {
        match self {
            SysAuth::None => "no credentials".into(),
            SysAuth::UserPassword { user, .. } => format!("user {user:?}"),
            SysAuth::CredsFile(p) => format!("creds file {}", p.display()),
            SysAuth::NkeySeedFile(p) => format!("nkey seed file {}", p.display()),
        }
    }
}

impl fmt::Debug for SysAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysAuth::None => f.write_str("None"),
            SysAuth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &crate::journal::REDACTED)
                .finish(),
            SysAuth::CredsFile(p) => f.debug_tuple("CredsFile").field(p).finish(),
            SysAuth::NkeySeedFile(p) => f.debug_tuple("NkeySeedFile").field(p).finish(),
        }
    }
}

impl fmt::Debug for SysOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SysOptions")
            .field("servers", &self.servers)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("client_name", &self.client_name)
            .finish()
    }
}

/// Replaces every secret of at least [`crate::journal::redact::MIN_SECRET_LEN`] characters
/// in text that came from elsewhere (a library's error message).
pub(crate) fn scrub(text: impl Into<String>, secrets: &[&str]) -> String {
    let mut text = text.into();
    for s in secrets {
        if s.len() >= crate::journal::redact::MIN_SECRET_LEN {
            text = text.replace(s, crate::journal::REDACTED);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_secrets_hide_the_password() {
        let o = SysOptions::new(
            ["a:4222"],
            SysAuth::UserPassword {
                user: "sys".into(),
                password: "hunter2-pw".into(),
            },
        );
        let dbg = format!("{o:?}");
        assert!(!dbg.contains("hunter2-pw"), "{dbg}");
        assert!(dbg.contains("[REDACTED]"), "{dbg}");
        assert_eq!(o.secrets(), vec!["hunter2-pw"]);
        assert_eq!(
            scrub("bad hunter2-pw here", &o.secrets()),
            "bad [REDACTED] here"
        );
        assert_eq!(o.auth.describe(), "user \"sys\"");
        let none = SysOptions::new(["a:4222"], SysAuth::None);
        assert!(none.secrets().is_empty());
    }
}
