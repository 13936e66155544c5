//! The part of an OpenSSH client config (`ssh.config`, `ssh_config(5)`) nats-rescue uses:
//! `Host` blocks (patterns with `*`, `?` and `!` negation), and in them `HostName`, `User`,
//! `Port`, `IdentityFile`, `ProxyJump` and `UserKnownHostsFile`. As in OpenSSH the first
//! value found for a keyword wins, keywords are case-insensitive, `key value` and
//! `key=value` are both accepted. `Match` blocks are skipped (their conditions need the
//! connection), and so is `Include` (said in [`SshConfig::ignored`]). The inventory's own
//! fields win over anything read here.

use std::path::Path;

/// What the config says for one host; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    /// As written: `none`, or OpenSSH `-J` syntax.
    pub proxy_jump: Option<String>,
    pub user_known_hosts_file: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    /// `(patterns, keyword (lowercase), value)` in file order; patterns `None` = before any
    /// `Host` line (applies to every host).
    entries: Vec<(Option<Vec<String>>, String, String)>,
    /// Lines understood but not applied (`Include`, `Match`), for messages.
    pub ignored: Vec<String>,
}

impl SshConfig {
    pub fn load(path: &Path) -> Result<SshConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read ssh config {}: {e}", path.display()))?;
        SshConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<SshConfig, String> {
        let mut c = SshConfig::default();
        let mut current: Option<Vec<String>> = None;
        let mut in_match = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = split_keyword(line)
                .ok_or_else(|| format!("line {}: expected `Keyword value`", i + 1))?;
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "host" => {
                    in_match = false;
                    current = Some(value.split_whitespace().map(unquote).collect());
                }
                "match" => {
                    in_match = true;
                    c.ignored.push(format!("line {}: Match {value}", i + 1));
                }
                "include" => c.ignored.push(format!("line {}: Include {value}", i + 1)),
                _ if in_match => {}
                _ => c.entries.push((current.clone(), key, unquote(value))),
            }
        }
        Ok(c)
    }

    /// The settings for `host` (the name as given, before `HostName`).
    pub fn lookup(&self, host: &str) -> Result<HostConfig, String> {
        let mut h = HostConfig::default();
        for (patterns, key, value) in &self.entries {
            if let Some(p) = patterns {
                if !host_matches(p, host) {
                    continue;
                }
            }
            let first = |slot: &mut Option<String>| {
                if slot.is_none() {
                    *slot = Some(value.clone());
                }
            };
            match key.as_str() {
                "hostname" => first(&mut h.host_name),
                "user" => first(&mut h.user),
                "identityfile" => first(&mut h.identity_file),
                "proxyjump" => first(&mut h.proxy_jump),
                // Several files may be listed: the first is the one written to.
                "userknownhostsfile" if h.user_known_hosts_file.is_none() => {
                    h.user_known_hosts_file = value.split_whitespace().next().map(String::from);
                }
                "port" if h.port.is_none() => {
                    h.port = Some(
                        value
                            .parse()
                            .map_err(|_| format!("Port {value:?} for {host} is not a port"))?,
                    );
                }
                _ => {}
            }
        }
        if let Some(n) = &mut h.host_name {
            *n = n.replace("%h", host).replace("%%", "%");
        }
        Ok(h)
    }
}

fn split_keyword(line: &str) -> Option<(&str, &str)> {
    let at = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let (k, rest) = line.split_at(at);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (!k.is_empty() && !rest.is_empty()).then_some((k, rest))
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

/// OpenSSH: a host matches when some pattern matches and no negated pattern does.
fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut hit = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if glob(neg, host) => return false,
            Some(_) => {}
            None => hit |= glob(p, host),
        }
    }
    hit
}

/// `*` and `?` globbing, case-insensitive (host names are).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# production
User fallback-first-wins-over-later-blocks
Host bastion
  HostName 203.0.113.10
  Port 2222
Host nats-* !nats-legacy
  HostName %h.prod.example.com
  ProxyJump bastion
  IdentityFile ~/.ssh/nats_ed25519
  UserKnownHostsFile ~/.ssh/known_hosts_prod ~/.ssh/known_hosts2
Match user root
  User ignored-in-match
Host nats-legacy
  Hostname=10.0.0.99
  Port = 22022
  ProxyJump none
Host *
  User nats-admin
  Port 22
Include ~/.ssh/config.d/*
";

    #[test]
    fn first_value_wins_and_patterns_match_like_openssh() {
        let c = SshConfig::parse(CONFIG).unwrap();
        let n1 = c.lookup("nats-1").unwrap();
        assert_eq!(n1.host_name.as_deref(), Some("nats-1.prod.example.com"));
        assert_eq!(n1.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(n1.identity_file.as_deref(), Some("~/.ssh/nats_ed25519"));
        assert_eq!(
            n1.user_known_hosts_file.as_deref(),
            Some("~/.ssh/known_hosts_prod")
        );
        assert_eq!(n1.port, Some(22));
        // The line before any Host applies to every host, and came first.
        assert_eq!(
            n1.user.as_deref(),
            Some("fallback-first-wins-over-later-blocks")
        );

        let legacy = c.lookup("NATS-legacy").unwrap();
        assert_eq!(legacy.host_name.as_deref(), Some("10.0.0.99"));
        assert_eq!(legacy.port, Some(22022));
        assert_eq!(legacy.proxy_jump.as_deref(), Some("none"));
        assert_eq!(legacy.identity_file, None, "negated out of nats-*");

        let b = c.lookup("bastion").unwrap();
        assert_eq!(
            (b.host_name.as_deref(), b.port),
            (Some("203.0.113.10"), Some(2222))
        );
        assert_eq!(c.ignored.len(), 2, "{:?}", c.ignored);
        let other = c.lookup("10.1.2.3").unwrap();
        assert_eq!(other.host_name, None);
        assert_eq!(other.port, Some(22));
    }

    #[test]
    fn globs_and_bad_lines() {
        assert!(glob("n?-*.example.com", "n1-a.example.com"));
        assert!(!glob("n?-*.example.com", "n10-a.example.org"));
        assert!(glob("*", ""));
        assert!(SshConfig::parse("Host a\n  Port\n").is_err());
        let c = SshConfig::parse("Host a\n  Port ssh\n").unwrap();
        assert!(c.lookup("a").is_err());
    }
}
