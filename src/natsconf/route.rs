//! Route URLs as written in `cluster.routes`: `nats-route://`, `nats://`, `tls://` or a bare
//! `host:port`, with optional `user:password@`. Routes are compared by host and port only.

use std::fmt;

/// The port a route usually points at (the cluster port's default).
pub const DEFAULT_CLUSTER_PORT: u16 = 6222;

/// A host and a port, compared without regard to the host's ASCII case.
#[derive(Debug, Clone, Eq)]
pub struct Endpoint {
    /// Without brackets for IPv6 (`::1`).
    pub host: String,
    pub port: u16,
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Endpoint) -> bool {
        self.port == other.port && self.host.eq_ignore_ascii_case(&other.host)
    }
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    /// `host:port` or `[v6]:port`.
    pub fn parse(s: &str) -> Result<Endpoint, RouteUrlError> {
        let (host, port) = split_host_port(s.trim())?;
        let port = port.ok_or_else(|| RouteUrlError(format!("{s:?} has no port")))?;
        Ok(Endpoint { host, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a route URL could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route URL {0}")]
pub struct RouteUrlError(String);

/// A route URL split into parts; [`fmt::Display`] gives it back as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUrl {
    /// `nats-route`, `nats`, `tls`… as written; `None` for a bare `host:port` (which the
    /// server's URL parser reads as scheme `host`: it does not dial such a route).
    pub scheme: Option<String>,
    /// `user:password` exactly as written (percent-encoding kept), for rebuilding URLs.
    pub userinfo: Option<String>,
    /// Percent-decoded user name.
    pub user: Option<String>,
    /// Percent-decoded password.
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Anything after the authority (`/`, `?…`), as written; usually empty.
    pub rest: String,
}

impl RouteUrl {
    pub fn parse(text: &str) -> Result<RouteUrl, RouteUrlError> {
        let s = text.trim();
        let (scheme, after) = match s.find("://") {
            Some(i) => {
                let scheme = &s[..i];
                let valid = scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
                if !valid {
                    return Err(RouteUrlError(format!(
                        "{s:?} has an invalid scheme {scheme:?}"
                    )));
                }
                (Some(scheme.to_string()), &s[i + 3..])
            }
            None => (None, s),
        };
        let auth_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(auth_end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) =
            split_host_port(hostport).map_err(|e| RouteUrlError(format!("{s:?}: {}", e.0)))?;
        let (user, password) = match userinfo {
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
                None => (Some(percent_decode(ui)), None),
            },
            None => (None, None),
        };
        Ok(RouteUrl {
            scheme,
            userinfo: userinfo.map(str::to_string),
            user,
            password,
            host,
            port,
            rest: rest.to_string(),
        })
    }

    pub fn endpoint(&self) -> Option<Endpoint> {
        Some(Endpoint::new(self.host.clone(), self.port?))
    }

    /// Same host (ignoring ASCII case) and same port.
    pub fn same_endpoint(&self, other: &RouteUrl) -> bool {
        self.port == other.port && self.host.eq_ignore_ascii_case(&other.host)
    }

    pub fn points_at(&self, ep: &Endpoint) -> bool {
        self.port == Some(ep.port) && self.host.eq_ignore_ascii_case(&ep.host)
    }

    /// This URL's scheme and credentials in front of another endpoint.
    pub fn with_endpoint(&self, ep: &Endpoint) -> String {
        let mut out = String::new();
        if let Some(s) = &self.scheme {
            out.push_str(s);
            out.push_str("://");
        }
        if let Some(ui) = &self.userinfo {
            out.push_str(ui);
            out.push('@');
        }
        out.push_str(&ep.to_string());
        out
    }

    /// As written, with the password (or a lone user, which may be a token) replaced.
    pub fn redacted(&self) -> String {
        let mut copy = self.clone();
        if let Some(ui) = &self.userinfo {
            copy.userinfo = Some(match ui.split_once(':') {
                Some((u, _)) => format!("{u}:{}", super::REDACTED),
                None => super::REDACTED.to_string(),
            });
        }
        copy.to_string()
    }
}

impl fmt::Display for RouteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.scheme {
            write!(f, "{s}://")?;
        }
        if let Some(ui) = &self.userinfo {
            write!(f, "{ui}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(&self.rest)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), RouteUrlError> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(RouteUrlError(format!("{s:?}: '[' without ']'")));
        };
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => {
                return Err(RouteUrlError(format!(
                    "{s:?}: unexpected {after:?} after ']'"
                )))
            }
        };
        (&inner[..close], port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(RouteUrlError(format!("{s:?} has no host")));
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| RouteUrlError(format!("{s:?} has an invalid port {p:?}")))?,
        ),
    };
    Ok((host.to_string(), port))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Route URLs for `desired` endpoints that keep the scheme and credentials in use:
/// an endpoint already routed to keeps its URL exactly; a new one takes the scheme and
/// `user:password@` most current routes share (the first such on a tie). With no current
/// route, `nats-route://` and `fallback_auth` (the cluster's `authorization` user and
/// password, percent-encoded) are used.
pub fn build_routes(
    desired: &[Endpoint],
    current: &[RouteUrl],
    fallback_auth: Option<(&str, &str)>,
) -> Vec<String> {
    let template = most_common_style(current)
        .cloned()
        .unwrap_or_else(|| RouteUrl {
            scheme: Some("nats-route".into()),
            userinfo: fallback_auth
                .map(|(u, p)| format!("{}:{}", percent_encode(u), percent_encode(p))),
            user: fallback_auth.map(|(u, _)| u.to_string()),
            password: fallback_auth.map(|(_, p)| p.to_string()),
            host: String::new(),
            port: None,
            rest: String::new(),
        });
    desired
        .iter()
        .map(|ep| match current.iter().find(|r| r.points_at(ep)) {
            Some(existing) => existing.to_string(),
            None => template.with_endpoint(ep),
        })
        .collect()
}

fn most_common_style(current: &[RouteUrl]) -> Option<&RouteUrl> {
    let style = |r: &RouteUrl| (r.scheme.clone(), r.userinfo.clone());
    current.iter().max_by_key(|r| {
        let count = current.iter().filter(|o| style(o) == style(r)).count();
        // prefer earlier routes on a tie: max_by_key keeps the last maximum
        let first = current
            .iter()
            .position(|o| style(o) == style(r))
            .unwrap_or(0);
        (count, usize::MAX - first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route_shape() {
        let r = RouteUrl::parse("nats-route://ruser:T0p%40S3cret@n2:6222").unwrap();
        assert_eq!(r.scheme.as_deref(), Some("nats-route"));
        assert_eq!(r.user.as_deref(), Some("ruser"));
        assert_eq!(r.password.as_deref(), Some("T0p@S3cret"));
        assert_eq!(r.userinfo.as_deref(), Some("ruser:T0p%40S3cret"));
        assert_eq!((r.host.as_str(), r.port), ("n2", Some(6222)));
        assert_eq!(r.to_string(), "nats-route://ruser:T0p%40S3cret@n2:6222");

        let r = RouteUrl::parse("tls://10.0.0.3:7244").unwrap();
        assert_eq!(
            (r.scheme.as_deref(), r.host.as_str(), r.port),
            (Some("tls"), "10.0.0.3", Some(7244))
        );
        let r = RouteUrl::parse("n4:6222").unwrap();
        assert_eq!(
            (r.scheme, r.host.as_str(), r.port),
            (None, "n4", Some(6222))
        );
        let r = RouteUrl::parse("nats://[fd00::5]:6222").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("fd00::5", Some(6222)));
        assert_eq!(r.to_string(), "nats://[fd00::5]:6222");
        let r = RouteUrl::parse("nats://tok@n5").unwrap();
        assert_eq!(
            (r.user.as_deref(), r.password.as_deref(), r.port),
            (Some("tok"), None, None)
        );

        assert!(RouteUrl::parse("nats://:6222").is_err());
        assert!(RouteUrl::parse("nats://n1:notaport").is_err());
        assert!(RouteUrl::parse("9x://n1:6222").is_err());
    }

    #[test]
    fn compares_by_host_and_port_only() {
        let a = RouteUrl::parse("nats-route://u:p@NATS-0.nats:6222").unwrap();
        let b = RouteUrl::parse("nats://nats-0.nats:6222").unwrap();
        let c = RouteUrl::parse("nats://nats-0.nats:7222").unwrap();
        assert!(a.same_endpoint(&b));
        assert!(!a.same_endpoint(&c));
        assert_eq!(
            Endpoint::parse("Nats-0.nats:6222").unwrap(),
            a.endpoint().unwrap()
        );
        assert!(Endpoint::parse("nats-0").is_err());
    }

    #[test]
    fn redaction_keeps_the_user() {
        let r = RouteUrl::parse("nats-route://ruser:T0pS3cret@n2:6222").unwrap();
        assert_eq!(r.redacted(), "nats-route://ruser:[REDACTED]@n2:6222");
        let r = RouteUrl::parse("nats://s3cr3ttoken@n2:6222").unwrap();
        assert_eq!(r.redacted(), "nats://[REDACTED]@n2:6222");
    }

    #[test]
    fn built_routes_keep_scheme_and_credentials() {
        let current: Vec<RouteUrl> = [
            "nats-route://ruser:pw@n1:6222",
            "nats-route://ruser:pw@n2:6222",
            "nats://n3:6222",
        ]
        .iter()
        .map(|s| RouteUrl::parse(s).unwrap())
        .collect();
        let desired = [
            Endpoint::new("n3", 6222),
            Endpoint::new("n4", 6222),
            Endpoint::new("fd00::9", 6222),
        ];
        assert_eq!(
            build_routes(&desired, &current, None),
            vec![
                "nats://n3:6222",
                "nats-route://ruser:pw@n4:6222",
                "nats-route://ruser:pw@[fd00::9]:6222",
            ]
        );
        assert_eq!(
            build_routes(&[Endpoint::new("n1", 6222)], &[], Some(("r u", "p@ss"))),
            vec!["nats-route://r%20u:p%40ss@n1:6222"]
        );
        assert_eq!(
            build_routes(&[Endpoint::new("n1", 6222)], &[], None),
            vec!["nats-route://n1:6222"]
        );
    }
}
