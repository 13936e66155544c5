//! The async system-account client: connect (directly or through a [`Forwarder`]), ping every
//! server (`$SYS.REQ.SERVER.PING.<KIND>`), and send API requests (`$JS.API.*`).

use super::error::SysError;
use super::forward::{Forwarder, TunnelStream};
use super::options::{scrub, SysAuth, SysOptions};
use super::reply::{Reply, ServerReply};
use super::tls;
use async_nats::{ConnectErrorKind, StatusCode};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::io;
use std::time::{Duration, Instant};

/// Subject prefix of the broadcast pings every server answers.
pub const PING_PREFIX: &str = "$SYS.REQ.SERVER.PING";

/// How long to gather replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collect {
    /// Stop at this point after sending.
    pub timeout: Duration,
    /// Stop as soon as this many replies arrived (e.g. the number of servers expected).
    pub expected: Option<usize>,
    /// Stop once this long passed without a new reply (after the first one). Off by default:
    /// a server busy with a large JSZ may answer much later than the others.
    pub quiet: Option<Duration>,
}

impl Collect {
    pub fn within(timeout: Duration) -> Collect {
        Collect {
            timeout,
            expected: None,
            quiet: None,
        }
    }
    /// [`SysOptions::request_timeout`], nothing else.
    pub fn default_for(opts: &SysOptions) -> Collect {
        Collect::within(opts.request_timeout)
    }
    pub fn expect(mut self, n: usize) -> Collect {
        self.expected = Some(n);
        self
    }
    pub fn quiet(mut self, gap: Duration) -> Collect {
        self.quiet = Some(gap);
        self
    }
}

/// The server this client is connected to (its INFO).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectedServer {
    /// The address as configured (`host:port`), or `tunnel to host:port`.
    pub address: String,
    pub name: String,
    pub id: String,
    pub version: String,
    pub cluster: Option<String>,
    pub jetstream: bool,
}

/// An async client in the system account. Dropping it closes the connection (and the
/// forwarder, if any).
pub struct SysClient {
    client: async_nats::Client,
    server: ConnectedServer,
    secrets: Vec<String>,
    request_timeout: Duration,
    // Dropped after `client`: the forward must outlive the connection it carries.
    _forward: Option<Forwarder>,
}

impl std::fmt::Debug for SysClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysClient")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl SysClient {
    /// Connects to the first of `opts.servers` that accepts us (in order). A refused
    /// credential stops the search: the other servers would refuse it too.
    pub async fn connect(opts: &SysOptions) -> Result<SysClient, SysError> {
        if opts.servers.is_empty() {
            return Err(SysError::Options("no server address given".into()));
        }
        let prepared = Prepared::new(opts, None)?;
        let mut reasons = Vec::new();
        for addr in &opts.servers {
            match prepared.connect_one(opts, addr, addr).await {
                Ok(c) => return Ok(prepared.finish(opts, c, addr.clone(), None)),
                Err(e @ (SysError::Auth { .. } | SysError::Tls { .. })) => return Err(e),
                Err(SysError::Connect { reasons: r }) => reasons.extend(r),
                Err(e) => return Err(e),
            }
        }
        Err(SysError::Connect { reasons })
    }

    /// Connects through a local [`Forwarder`] whose connections are bridged to streams from
    /// `open` (e.g. an SSH `direct-tcpip` channel to the node's client port). The first of
    /// `opts.servers`, if any, names the server in messages and for TLS.
    pub async fn connect_through<S, F>(opts: &SysOptions, open: F) -> Result<SysClient, SysError>
    where
        S: TunnelStream,
        F: FnMut() -> io::Result<S> + Send + 'static,
    {
        let target = opts
            .servers
            .first()
            .cloned()
            .unwrap_or_else(|| "the tunnelled server".into());
        let forward = Forwarder::start(open)
            .map_err(|e| SysError::Tunnel(format!("cannot listen on 127.0.0.1: {e}")))?;
        let local = forward.local_addr().to_string();
        let prepared = Prepared::new(opts, Some(&target))?;
        let label = format!("{target} (through a tunnel)");
        match prepared.connect_one(opts, &local, &label).await {
            Ok(c) => Ok(prepared.finish(opts, c, format!("tunnel to {target}"), Some(forward))),
            Err(e) => {
                // The opener's failure explains a bare "connection closed" better.
                match forward.status().last_error {
                    Some(t) if forward.status().opened == 0 => {
                        Err(SysError::Tunnel(scrub(t, &prepared.secret_refs())))
                    }
                    _ => Err(e),
                }
            }
        }
    }

    pub fn server(&self) -> &ConnectedServer {
        &self.server
    }

    /// Every value that must not be shown: the password and any seed read from a file.
    pub fn secrets(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }

    /// `$SYS.REQ.SERVER.PING.<kind>` (`VARZ`, `JSZ`, `HEALTHZ`, `RAFTZ`, `STATSZ`, …) with an
    /// optional JSON body (options, or filters such as `{"name":"n1"}`). One reply per
    /// server that answered, in arrival order. No server offering `kind` is
    /// [`SysError::NoResponders`] (RAFTZ before 2.11); nothing in time is [`SysError::Timeout`].
    pub async fn ping(
        &self,
        kind: &str,
        body: Option<&Value>,
        collect: Collect,
    ) -> Result<Vec<ServerReply>, SysError> {
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(SysError::Options(format!(
                "{kind:?} is not a ping kind (VARZ, JSZ, HEALTHZ, RAFTZ, STATSZ, …)"
            )));
        }
        let subject = format!("{PING_PREFIX}.{}", kind.to_ascii_uppercase());
        let got = self.gather(&subject, body, collect).await?;
        Ok(got
            .into_iter()
            .map(|(payload, after)| ServerReply::parse(&payload, after))
            .collect())
    }

    /// An API request (`$JS.API.META.LEADER.STEPDOWN`, `$JS.API.SERVER.REMOVE`,
    /// `$JS.API.META.RESCUE`, `$JS.API.STREAM.INFO.<S>`, …). `broadcast` collects every
    /// reply until `timeout`; otherwise the first reply ends the wait. A reply holding an API
    /// error is returned (see [`Reply::error`]), not turned into an `Err`.
    pub async fn request(
        &self,
        subject: &str,
        body: Option<&Value>,
        timeout: Duration,
        broadcast: bool,
    ) -> Result<Vec<Reply>, SysError> {
        let mut collect = Collect::within(timeout);
        if !broadcast {
            collect = collect.expect(1);
        }
        let got = self.gather(subject, body, collect).await?;
        Ok(got
            .into_iter()
            .map(|(payload, after)| Reply::parse(&payload, after))
            .collect())
    }

    /// Closes the connection after flushing what was sent.
    pub async fn close(self) {
        let _ = self.client.drain().await;
    }

    /// Publishes with a fresh inbox as reply subject and gathers payloads per `collect`.
    async fn gather(
        &self,
        subject: &str,
        body: Option<&Value>,
        collect: Collect,
    ) -> Result<Vec<(Vec<u8>, Duration)>, SysError> {
        check_subject(subject)?;
        let fail = |what: &str, e: &dyn std::fmt::Display| SysError::Request {
            subject: subject.to_string(),
            reason: scrub(format!("{what}: {e}"), &self.secrets()),
        };
        let payload: Vec<u8> = match body {
            Some(v) => serde_json::to_vec(v).map_err(|e| fail("bad body", &e))?,
            None => Vec::new(),
        };
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + collect.timeout);
        let timed_out = || SysError::Timeout {
            subject: subject.to_string(),
            timeout: collect.timeout,
        };
        let inbox = self.client.new_inbox();
        // While async-nats reconnects, these wait: the deadline bounds them too.
        let mut sub = tokio::time::timeout_at(deadline, self.client.subscribe(inbox.clone()))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| fail("cannot subscribe", &e))?;
        let send = async {
            self.client
                .publish_with_reply(subject.to_string(), inbox, payload.into())
                .await
                .map_err(|e| fail("cannot publish", &e))?;
            self.client
                .flush()
                .await
                .map_err(|e| fail("cannot send", &e))
        };
        tokio::time::timeout_at(deadline, send)
            .await
            .map_err(|_| timed_out())??;
        let mut got = Vec::new();
        let mut last = tokio::time::Instant::now();
        loop {
            if collect.expected.is_some_and(|n| got.len() >= n) {
                break;
            }
            let until = match collect.quiet {
                Some(gap) if !got.is_empty() => deadline.min(last + gap),
                _ => deadline,
            };
            let msg = match tokio::time::timeout_at(until, sub.next()).await {
                Err(_) => break,
                Ok(None) => {
                    if got.is_empty() {
                        return Err(fail("waiting for replies", &"the connection closed"));
                    }
                    break;
                }
                Ok(Some(m)) => m,
            };
            last = tokio::time::Instant::now();
            if msg.status == Some(StatusCode::NO_RESPONDERS) {
                if got.is_empty() {
                    let _ = sub.unsubscribe().await;
                    return Err(SysError::NoResponders {
                        subject: subject.to_string(),
                        hint: no_responders_hint(subject, &self.server.version),
                    });
                }
                continue;
            }
            if msg.status.is_some_and(|s| s != StatusCode::OK) && msg.payload.is_empty() {
                // Other status-only messages (e.g. 408) carry no reply.
                continue;
            }
            got.push((msg.payload.to_vec(), started.elapsed()));
        }
        let _ = sub.unsubscribe().await;
        if got.is_empty() {
            return Err(timed_out());
        }
        Ok(got)
    }
}

/// Credentials read and TLS files checked before any connection attempt
/// (`async_nats::ConnectOptions` is not `Clone`: [`Prepared::options`] builds one per try,
/// with the TLS name of the server tried).
struct Prepared {
    auth_material: AuthMaterial,
    tls: Option<super::options::TlsFiles>,
    /// Set when connecting through a forwarder: the server's real `host:port`.
    tunnel_target: Option<String>,
    secrets: Vec<String>,
    auth: String,
    client_name: String,
    connect_timeout: Duration,
    request_timeout: Duration,
}

enum AuthMaterial {
    None,
    UserPassword(String, String),
    Nkey(String),
    Creds {
        path: std::path::PathBuf,
        text: String,
    },
}

impl Prepared {
    fn new(opts: &SysOptions, tunnel_target: Option<&str>) -> Result<Prepared, SysError> {
        let mut secrets: Vec<String> = opts.secrets().iter().map(|s| s.to_string()).collect();
        let auth_material = match &opts.auth {
            SysAuth::None => AuthMaterial::None,
            SysAuth::UserPassword { user, password } => {
                AuthMaterial::UserPassword(user.clone(), password.clone())
            }
            SysAuth::NkeySeedFile(path) => {
                let seed = read_nkey_seed(path)?;
                secrets.push(seed.clone());
                AuthMaterial::Nkey(seed)
            }
            SysAuth::CredsFile(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SysError::File {
                    what: "creds file",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                secrets.extend(seed_tokens(&text));
                AuthMaterial::Creds {
                    path: path.clone(),
                    text,
                }
            }
        };
        let p = Prepared {
            auth_material,
            tls: opts.tls.clone(),
            tunnel_target: tunnel_target.map(str::to_string),
            secrets,
            auth: opts.auth.describe(),
            client_name: opts.client_name.clone(),
            connect_timeout: opts.connect_timeout,
            request_timeout: opts.request_timeout,
        };
        // A bad creds or TLS file fails here, before any connection.
        p.options(opts.servers.first().map(String::as_str).unwrap_or_default())?;
        Ok(p)
    }

    /// Fresh async-nats options for a connection to `addr` (`host:port`).
    fn options(&self, addr: &str) -> Result<async_nats::ConnectOptions, SysError> {
        let base = match &self.auth_material {
            AuthMaterial::None => async_nats::ConnectOptions::new(),
            AuthMaterial::UserPassword(u, p) => {
                async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
            }
            AuthMaterial::Nkey(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
            AuthMaterial::Creds { path, text } => {
                async_nats::ConnectOptions::with_credentials(text).map_err(|e| SysError::File {
                    what: "creds file",
                    path: path.clone(),
                    reason: scrub(e.to_string(), &self.secret_refs()),
                })?
            }
        };
        let base = base
            .name(self.client_name.clone())
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.request_timeout))
            // One connection to the server we chose; never hop to advertised cluster URLs.
            .ignore_discovered_servers()
            .retain_servers_order()
            .max_reconnects(Some(3));
        Ok(match &self.tls {
            Some(t) => {
                // The certificate names the server we mean, not the forwarder's 127.0.0.1.
                let name = host_of(self.tunnel_target.as_deref().unwrap_or(addr));
                tls::plan(t, &name, self.tunnel_target.is_some())?.apply(base)
            }
            None => base,
        })
    }

    fn secret_refs(&self) -> Vec<&str> {
        refs(&self.secrets)
    }

    /// One attempt at `addr`; `label` names it in errors.
    async fn connect_one(
        &self,
        opts: &SysOptions,
        addr: &str,
        label: &str,
    ) -> Result<async_nats::Client, SysError> {
        let url = format!("nats://{addr}");
        let attempt = self.options(addr)?.connect(url.as_str());
        // async-nats bounds the TCP connect; this bounds the whole handshake.
        let res = tokio::time::timeout(opts.connect_timeout + Duration::from_secs(1), attempt)
            .await
            .map_err(|_| SysError::Connect {
                reasons: vec![format!(
                    "{label}: no NATS handshake within {}",
                    crate::duration::format(opts.connect_timeout)
                )],
            })?;
        res.map_err(|e| {
            let text = scrub(error_chain(&e), &self.secret_refs());
            match e.kind() {
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                    SysError::Auth {
                        server: label.to_string(),
                        auth: self.auth.clone(),
                        reason: text,
                    }
                }
                ConnectErrorKind::Tls => SysError::Tls {
                    server: label.to_string(),
                    reason: text,
                },
                // A failed handshake arrives as an I/O error around a rustls error.
                ConnectErrorKind::Io if is_tls_failure(&e) => SysError::Tls {
                    server: label.to_string(),
                    reason: text,
                },
                _ => SysError::Connect {
                    reasons: vec![format!("{label}: {text}")],
                },
            }
        })
    }

    fn finish(
        self,
        opts: &SysOptions,
        client: async_nats::Client,
        address: String,
        forward: Option<Forwarder>,
    ) -> SysClient {
        let info = client.server_info();
        SysClient {
            server: ConnectedServer {
                address,
                name: info.server_name.clone(),
                id: info.server_id.clone(),
                version: info.version.clone(),
                cluster: info.cluster.clone(),
                jetstream: info.jetstream,
            },
            client,
            secrets: self.secrets,
            request_timeout: opts.request_timeout,
            _forward: forward,
        }
    }
}

impl SysClient {
    /// [`SysOptions::request_timeout`] of the options this client was made with.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `host` of `host:port` (IPv6 in brackets kept without them).
fn host_of(addr: &str) -> String {
    let a = addr.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h.into(),
        _ => a.into(),
    }
}

/// The error and its sources, `a: b: c`, without repeats.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// True when a rustls error is somewhere in the chain (also inside an `io::Error`).
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<async_nats::rustls::Error>() {
            return true;
        }
        let in_io = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<async_nats::rustls::Error>());
        if in_io {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Rejects subjects that would be a protocol error or a wildcard.
fn check_subject(subject: &str) -> Result<(), SysError> {
    let bad = subject.is_empty()
        || subject.chars().any(|c| c.is_whitespace() || c.is_control())
        || subject
            .split('.')
            .any(|t| t.is_empty() || t == "*" || t == ">");
    if bad {
        return Err(SysError::Options(format!(
            "{subject:?} is not a subject to send a request to"
        )));
    }
    Ok(())
}

/// Why nobody may be listening, from the subject and the connected server's version.
fn no_responders_hint(subject: &str, version: &str) -> String {
    let v = crate::nats::monitor::parse_version(version).unwrap_or((0, 0, 0));
    let older = |min: (u64, u64, u64)| v != (0, 0, 0) && v < min;
    if subject.ends_with(".RAFTZ") && older((2, 11, 0)) {
        return format!(
            " (nats-server {version} does not answer RAFTZ over the system account; 2.11+ does)"
        );
    }
    if subject.starts_with("$JS.API.META.RESCUE") && older((2, 15, 0)) {
        return format!(" (nats-server {version} has no META.RESCUE; 2.15+ has)");
    }
    if subject.starts_with("$SYS.REQ.") {
        return " (is the user in the system account?)".into();
    }
    if subject.starts_with("$JS.API.META.") || subject.starts_with("$JS.API.SERVER.") {
        return " (only the JetStream meta leader answers: there may be none; \
                 the user must be in the system account)"
            .into();
    }
    if subject.starts_with("$JS.API.") {
        return " (is JetStream enabled for this account, and does the asset have a leader?)"
            .into();
    }
    String::new()
}

/// The user seed in an nkey seed file (`SU…`, the first such token).
fn read_nkey_seed(path: &std::path::Path) -> Result<String, SysError> {
    let file_err = |reason: String| SysError::File {
        what: "nkey seed file",
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    seed_tokens(&text)
        .into_iter()
        .next()
        .ok_or_else(|| file_err("no user seed (a line starting with SU) in it".into()))
}

/// Tokens that look like nkey user seeds (`SU` + 56 base32 characters).
fn seed_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| {
            t.len() == 58
                && t.starts_with("SU")
                && t.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_hosts_and_hints() {
        assert!(check_subject("$JS.API.META.LEADER.STEPDOWN").is_ok());
        for bad in ["", "a b", "a.*", "a.>", "a..b", "a.", "x\r\nPUB y"] {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
        assert_eq!(host_of("10.0.0.1:4222"), "10.0.0.1");
        assert_eq!(host_of("nats.example:4222"), "nats.example");
        assert_eq!(host_of("[::1]:4222"), "::1");
        assert_eq!(host_of("host"), "host");
        let h = no_responders_hint("$SYS.REQ.SERVER.PING.RAFTZ", "2.9.10");
        assert!(h.contains("2.9.10 does not answer RAFTZ"), "{h}");
        let h = no_responders_hint("$SYS.REQ.SERVER.PING.RAFTZ", "2.15.1");
        assert!(h.contains("system account"), "{h}");
        let h = no_responders_hint("$JS.API.META.RESCUE", "2.14.6");
        assert!(h.contains("no META.RESCUE"), "{h}");
        let h = no_responders_hint("$JS.API.META.LEADER.STEPDOWN", "2.15.1");
        assert!(h.contains("meta leader"), "{h}");
    }

    #[test]
    fn seeds_are_found_in_seed_and_creds_files() {
        let seed = "SUAIO3FHUX5PNV2LQIIP7TZ3N4L7TX3W53MQGEIVYFIGA635OZCKEYHFLM";
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\neyJ0eXAi.x.y\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        assert_eq!(seed_tokens(&creds), vec![seed.to_string()]);
        assert_eq!(
            seed_tokens(&format!("{seed}\nUABC\n")),
            vec![seed.to_string()]
        );
        assert!(seed_tokens("SUshort").is_empty());
    }

    #[test]
    fn collect_builders() {
        let c = Collect::within(Duration::from_secs(2))
            .expect(3)
            .quiet(Duration::from_millis(200));
        assert_eq!(c.expected, Some(3));
        assert_eq!(c.quiet, Some(Duration::from_millis(200)));
    }
}
