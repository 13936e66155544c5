//! The inventory as written (serde), and the proxy-jump and ssh_config pieces it is read with.

use super::*;

// ---- raw, as written -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    pub(super) cluster: Option<String>,
    #[serde(default)]
    pub(super) defaults: RawNodeSettings,
    pub(super) nodes: Option<Vec<RawNode>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNodeSettings {
    #[serde(default)]
    pub(super) ssh: RawSsh,
    #[serde(default)]
    pub(super) nats: RawNats,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: String,
    pub(super) host: String,
    #[serde(default)]
    pub(super) ssh: RawSsh,
    #[serde(default)]
    pub(super) nats: RawNats,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) identity_file: Option<String>,
    pub(super) known_hosts: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub(super) connect_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub(super) command_timeout: Option<Duration>,
    pub(super) sudo: Option<bool>,
    pub(super) accept_new_host_keys: Option<bool>,
    pub(super) proxy_jump: Option<ProxyJump>,
    pub(super) config: Option<String>,
    pub(super) retries: Option<u32>,
}

/// `ssh.proxy_jump` as written, checked while it is read (so errors carry line and column).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct ProxyJump(pub(super) Vec<JumpHost>);

impl TryFrom<String> for ProxyJump {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_proxy_jump(&s).map(ProxyJump)
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNats {
    pub(super) monitor_port: Option<u16>,
    pub(super) monitor: Option<MonitorMode>,
    pub(super) cluster_port: Option<u16>,
    pub(super) config_file: Option<String>,
    pub(super) store_dir: Option<String>,
    pub(super) system_account: Option<String>,
    #[serde(default)]
    pub(super) service: RawService,
    pub(super) cluster_host: Option<String>,
    pub(super) server_bin: Option<String>,
    pub(super) client_port: Option<u16>,
    pub(super) system_user: Option<RawSystemUser>,
    pub(super) system_creds: Option<String>,
    pub(super) system_nkey_seed: Option<String>,
    pub(super) client_tls: Option<RawClientTls>,
}

/// `nats.system_user` as written: `{user, password}` or `{user, password_env}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSystemUserFields")]
pub(super) struct RawSystemUser {
    pub(super) user: String,
    pub(super) password: RawPassword,
}

#[derive(Debug, Clone)]
pub(super) enum RawPassword {
    Literal(String),
    Env(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSystemUserFields {
    pub(super) user: String,
    pub(super) password: Option<String>,
    pub(super) password_env: Option<String>,
}

impl TryFrom<RawSystemUserFields> for RawSystemUser {
    type Error = String;
    fn try_from(f: RawSystemUserFields) -> Result<Self, String> {
        if f.user.trim().is_empty() {
            return Err("system_user: `user` is empty".into());
        }
        let password = match (f.password, f.password_env) {
            (Some(p), None) => RawPassword::Literal(p),
            (None, Some(v)) => {
                if v.is_empty()
                    || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || v.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(format!(
                        "system_user: password_env `{v}` is not an environment variable name"
                    ));
                }
                RawPassword::Env(v)
            }
            (Some(_), Some(_)) => {
                return Err(
                    "system_user: give either `password` or `password_env`, not both".into(),
                )
            }
            (None, None) => return Err(
                "system_user: `password` or `password_env` (an environment variable) is required"
                    .into(),
            ),
        };
        Ok(RawSystemUser {
            user: f.user,
            password,
        })
    }
}

/// `nats.client_tls` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawClientTlsFields")]
pub(super) struct RawClientTls {
    pub(super) ca_file: Option<String>,
    pub(super) cert_file: Option<String>,
    pub(super) key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientTlsFields {
    pub(super) ca_file: Option<String>,
    pub(super) cert_file: Option<String>,
    pub(super) key_file: Option<String>,
}

impl TryFrom<RawClientTlsFields> for RawClientTls {
    type Error = String;
    fn try_from(f: RawClientTlsFields) -> Result<Self, String> {
        match (&f.ca_file, &f.cert_file, &f.key_file) {
            (None, None, None) => {
                return Err("client_tls: name at least one of ca_file, cert_file, key_file".into())
            }
            (_, Some(_), None) => {
                return Err("client_tls: cert_file needs key_file (its private key)".into())
            }
            (_, None, Some(_)) => {
                return Err("client_tls: key_file needs cert_file (its certificate)".into())
            }
            _ => {}
        }
        for (k, v) in [
            ("ca_file", &f.ca_file),
            ("cert_file", &f.cert_file),
            ("key_file", &f.key_file),
        ] {
            if v.as_deref().is_some_and(|p| p.trim().is_empty()) {
                return Err(format!("client_tls: {k} is empty"));
            }
        }
        Ok(RawClientTls {
            ca_file: f.ca_file,
            cert_file: f.cert_file,
            key_file: f.key_file,
        })
    }
}

/// Parses OpenSSH `-J` syntax: `[user@]host[:port][,[user@]host[:port]…]`, also
/// `ssh://[user@]host[:port]` hops; `none` means no jump host (to override `defaults`).
pub fn parse_proxy_jump(text: &str) -> Result<Vec<JumpHost>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("proxy_jump is empty (write `none` for no jump host)".into());
    }
    if t == "none" {
        return Ok(Vec::new());
    }
    let hops: Vec<&str> = t.split(',').collect();
    hops.iter()
        .enumerate()
        .map(|(i, hop)| {
            JumpHost::parse(hop).map_err(|e| match hops.len() {
                1 => format!("proxy_jump: {e}"),
                _ => format!("proxy_jump `{t}`: hop {}: {e}", i + 1),
            })
        })
        .collect()
}

impl JumpHost {
    /// One hop: `[user@]host[:port]`, `[user@][v6addr][:port]`, or `ssh://…`.
    pub fn parse(hop: &str) -> Result<JumpHost, String> {
        let h = hop.trim();
        if h.is_empty() {
            return Err("empty (two commas in a row, or a trailing comma?)".into());
        }
        let h = h.strip_prefix("ssh://").unwrap_or(h);
        let h = h.strip_suffix('/').unwrap_or(h);
        if h.chars().any(char::is_whitespace) {
            return Err(format!("`{h}` contains white space"));
        }
        let (user, rest) = match h.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, h),
        };
        if let Some(u) = user {
            if u.is_empty() {
                return Err(format!("`{h}`: empty user name before `@`"));
            }
            if u.starts_with('-') || u.contains(['/', ':']) {
                return Err(format!("`{h}`: invalid user name `{u}`"));
            }
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{h}`: `[` without `]`"))?;
            match after {
                "" => (addr, None),
                p => (
                    addr,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| format!("`{h}`: expected `:port` after `]`"))?,
                    ),
                ),
            }
        } else {
            match rest.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(format!(
                        "`{h}`: write an IPv6 address in brackets, e.g. `[{rest}]:22`"
                    ))
                }
                Some((a, p)) => (a, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{h}`: no host"));
        }
        if host.starts_with('-') || host.contains(['/', '@', '[', ']']) {
            return Err(format!("`{h}`: invalid host `{host}`"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(format!("`{h}`: invalid port `{p}` (1-65535)")),
            },
        };
        Ok(JumpHost {
            user: user.map(String::from),
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for JumpHost {
    /// As OpenSSH `-J` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// A chain of hops as one `-J` argument (`a,b`).
pub fn format_proxy_jump(hops: &[JumpHost]) -> String {
    hops.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) start: Option<String>,
    pub(super) stop: Option<String>,
    pub(super) status: Option<String>,
    pub(super) reload: Option<String>,
}

/// Each `ssh.config` file is read once per inventory.
pub(super) fn load_ssh_config(
    cache: &mut BTreeMap<PathBuf, crate::ssh::config::SshConfig>,
    path: &Path,
) -> Result<crate::ssh::config::SshConfig, String> {
    if let Some(c) = cache.get(path) {
        return Ok(c.clone());
    }
    let c = crate::ssh::config::SshConfig::load(path)?;
    cache.insert(path.to_path_buf(), c.clone());
    Ok(c)
}

/// Expands a leading `~` to `$HOME`.
pub fn expand_tilde(p: &str) -> PathBuf {
    if p == "~" {
        return home_dir();
    }
    if let Some(rest) = p.strip_prefix("~/") {
        return home_dir().join(rest);
    }
    PathBuf::from(p)
}

pub(super) fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}
