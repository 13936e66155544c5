//! known_hosts is the only source of trust for host keys (SPEC §5): a host key is checked
//! against it right after the key exchange and before any credential is sent.
//!
//! We parse the file ourselves (markers, key types, fingerprints) and let libssh2 do the
//! host-name matching, because only it knows how to match hashed (`|1|salt|hash`) entries
//! and normalise IPv6 addresses. Wildcard and negated patterns are not supported by
//! libssh2; such lines simply never match.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why known_hosts could not be read or extended.
#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    #[error("cannot read known_hosts {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot append to known_hosts {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot check known_hosts {path}: {reason}")]
    Libssh2 { path: PathBuf, reason: String },
}

/// A public host key as found in known_hosts or offered by a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    pub key_type: String,
    /// The key in SSH wire format (what known_hosts holds in base64).
    pub blob: Vec<u8>,
}

impl HostKey {
    /// Builds a key from its wire-format blob; the type is read from the blob itself.
    pub fn from_blob(blob: &[u8]) -> HostKey {
        HostKey {
            key_type: key_type_of_blob(blob).unwrap_or_else(|| "unknown".into()),
            blob: blob.to_vec(),
        }
    }

    /// OpenSSH-style fingerprint: `SHA256:<base64 without padding>`.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob)
    }
}

/// OpenSSH-style fingerprint of a wire-format key: `SHA256:<base64 without padding>`.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// The key type named at the start of a wire-format key (a length-prefixed string).
pub fn key_type_of_blob(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    String::from_utf8(name.to_vec()).ok()
}

/// The name known_hosts uses for a host: plain for port 22, `[host]:port` otherwise
/// (what OpenSSH writes and looks up).
pub fn host_entry_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    /// The host field as written (plain list or hashed).
    hosts: String,
    key: HostKey,
    base64: String,
}

/// The parsed contents of one known_hosts file.
#[derive(Debug, Clone)]
pub struct KnownHostsFile {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// What known_hosts says about the key a server offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The offered key is listed for this host.
    Trusted,
    /// Nothing is listed for this host.
    Unknown,
    /// Other keys are listed for this host: the key changed (or someone is in the middle).
    Changed { known: Vec<HostKey> },
    /// The offered key is marked `@revoked`.
    Revoked,
}

impl KnownHostsFile {
    /// Reads and parses `path`. A missing file is an empty one (every host is unknown).
    /// Lines that cannot be parsed are skipped, as OpenSSH does.
    pub fn load(path: &Path) -> Result<KnownHostsFile, KnownHostsError> {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(KnownHostsError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(KnownHostsFile {
            path: path.to_path_buf(),
            entries: text.lines().filter_map(parse_line).collect(),
        })
    }

    /// The keys listed for `host` on `port` (`[host]:port` entries for ports other than 22,
    /// plain `host` entries for 22), plain or hashed.
    pub fn keys_for(&self, host: &str, port: u16) -> Result<Vec<HostKey>, KnownHostsError> {
        let name = host_entry_name(host, port);
        let err = |e: ssh2::Error| KnownHostsError::Libssh2 {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        // Only lines that can name this host go to libssh2: hashed ones (it alone can match
        // them) and plain ones listing `name` (or, for an IPv6 address, any IPv6 address:
        // libssh2 compares those in binary). The others never match, and feeding all of them
        // for every connection made each connection O(lines) in time and memory, O(N²) for
        // a gather of N nodes sharing one known_hosts (issue #17).
        let candidates: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.marker == Marker::None && may_name(&e.hosts, &name))
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        // A KnownHosts collection needs a session only for error reporting; no connection.
        let session = ssh2::Session::new().map_err(err)?;
        let mut kh = session.known_hosts().map_err(err)?;
        for e in &candidates {
            // A line libssh2 cannot read (an exotic key type) is skipped, not fatal.
            let _ = kh.read_str(
                &format!("{} {} {}", e.hosts, e.key.key_type, e.base64),
                ssh2::KnownHostFileKind::OpenSSH,
            );
        }
        let mut keys: Vec<HostKey> = Vec::new();
        for e in &candidates {
            // `check` without a port looks up exactly `name`: the `[host]:port` form for
            // non-standard ports, like OpenSSH (libssh2's `check_port` would also accept a
            // plain-host entry for any port).
            if matches!(kh.check(&name, &e.key.blob), ssh2::CheckResult::Match)
                && !keys.contains(&e.key)
            {
                keys.push(e.key.clone());
            }
        }
        Ok(keys)
    }

    /// Judges the key a server offered for `host:port`.
    pub fn verify(
        &self,
        host: &str,
        port: u16,
        offered: &[u8],
    ) -> Result<Verdict, KnownHostsError> {
        if self.revoked(offered) {
            return Ok(Verdict::Revoked);
        }
        Ok(judge(self.keys_for(host, port)?, offered))
    }

    /// [`KnownHostsFile::verify`] with the host's keys already looked up by
    /// [`KnownHostsFile::keys_for`] (a connection needs them before the key exchange too).
    pub fn verify_known(&self, known: Vec<HostKey>, offered: &[u8]) -> Verdict {
        if self.revoked(offered) {
            return Verdict::Revoked;
        }
        judge(known, offered)
    }

    /// A revoked key is refused whatever host pattern the @revoked line names.
    fn revoked(&self, offered: &[u8]) -> bool {
        self.entries
            .iter()
            .any(|e| e.marker == Marker::Revoked && e.key.blob == offered)
    }
}

fn judge(known: Vec<HostKey>, offered: &[u8]) -> Verdict {
    if known.iter().any(|k| k.blob == offered) {
        Verdict::Trusted
    } else if known.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Changed { known }
    }
}

/// Whether libssh2 could match the host field `hosts` of a line against `name` (a plain
/// `host` or `[host]:port`): a hashed field, or a plain list with `name` in it or, when
/// `name` is an IPv6 address, with any IPv6 address in it. A superset: libssh2 decides.
fn may_name(hosts: &str, name: &str) -> bool {
    if hosts.starts_with('|') {
        return true;
    }
    // The address part of `[addr]:port`, or the whole name.
    let address = |n: &str| -> String {
        match n.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((a, _)) => a.to_string(),
            None => n.to_string(),
        }
    };
    let ipv6 = address(name).contains(':');
    hosts
        .split(',')
        .any(|h| h == name || (ipv6 && address(h).contains(':')))
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let key_type = fields.next()?;
    let base64 = fields.next()?;
    let blob = STANDARD.decode(base64).ok()?;
    // The type inside the blob is authoritative; a line whose two disagree is corrupt.
    if key_type_of_blob(&blob).as_deref() != Some(key_type) {
        return None;
    }
    Some(Entry {
        marker,
        hosts: first.to_string(),
        key: HostKey {
            key_type: key_type.to_string(),
            blob,
        },
        base64: base64.to_string(),
    })
}

/// The host-key algorithm preference for a handshake with a host whose known keys are
/// `known`: their algorithms first, then everything else libssh2 `supported`.
///
/// Why: libssh2 negotiates its own favourite (ed25519) even when known_hosts only holds the
/// host's ecdsa key, and the check then reports a mismatch for an unchanged host. Putting the
/// known types first makes the server present the key we can check; keeping the others after
/// them lets a host that really lost its known key type still be reported as *changed*
/// (with both fingerprints) instead of failing the key exchange obscurely.
pub fn host_key_method_pref(known: &[HostKey], supported: &[&str]) -> Option<String> {
    if known.is_empty() {
        return None;
    }
    let usable = |alg: &str| supported.contains(&alg);
    let mut prefs: Vec<&str> = Vec::new();
    for k in known {
        for alg in algorithms_for_key_type(&k.key_type) {
            if usable(alg) && !prefs.contains(alg) {
                prefs.push(alg);
            }
        }
    }
    if prefs.is_empty() {
        return None;
    }
    for alg in supported {
        // Certificates cannot be checked against plain known_hosts entries.
        if !alg.contains("-cert-") && !prefs.contains(alg) {
            prefs.push(alg);
        }
    }
    Some(prefs.join(","))
}

/// Host-key algorithms that present a key of this known_hosts type.
fn algorithms_for_key_type(key_type: &str) -> &[&str] {
    match key_type {
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        // One RSA key, three signature algorithms; the SHA-2 ones first (OpenSSH ≥ 8.8
        // refuses plain ssh-rsa signatures).
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ssh-dss" => &["ssh-dss"],
        _ => &[],
    }
}

/// Serialises appends from concurrent connections within this process.
static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// Appends `key` for `host:port` in OpenSSH format (`[host]:port type base64`, or plain
/// `host` for port 22), creating the file and its directory if needed. Returns the line.
pub fn append(
    path: &Path,
    host: &str,
    port: u16,
    key: &HostKey,
) -> Result<String, KnownHostsError> {
    let werr = |source| KnownHostsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let line = format!(
        "{} {} {}",
        host_entry_name(host, port),
        key.key_type,
        STANDARD.encode(&key.blob)
    );
    let _guard = APPEND_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(werr)?;
    // Never glue our line onto a last line that lacks its newline.
    let len = f.metadata().map_err(werr)?.len();
    let mut text = String::new();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1)).map_err(werr)?;
        f.read_exact(&mut last).map_err(werr)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(&line);
    text.push('\n');
    f.write_all(text.as_bytes()).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ssh-keygen -t ed25519; the fingerprint as printed by `ssh-keygen -lf`.
    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIG3qg+qsjidysVNBfy6lIU50sTnd6q7r0225/THBEEwW";

    fn blob() -> Vec<u8> {
        STANDARD.decode(ED).expect("test key")
    }

    #[test]
    fn fingerprint_is_openssh_style() {
        assert_eq!(
            fingerprint(&blob()),
            "SHA256:iprlrBcUZxfZzYYnr6RU8duRGazJmbSXQV3AEmQeJFA"
        );
        assert_eq!(key_type_of_blob(&blob()).as_deref(), Some("ssh-ed25519"));
    }

    #[test]
    fn port_form_is_respected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("kh");
        std::fs::write(
            &p,
            format!("example.org ssh-ed25519 {ED}\n[example.org]:2222 ssh-ed25519 {ED}\n"),
        )
        .expect("write");
        let kh = KnownHostsFile::load(&p).expect("load");
        assert_eq!(kh.keys_for("example.org", 22).expect("check").len(), 1);
        assert_eq!(kh.keys_for("example.org", 2222).expect("check").len(), 1);
        // A plain entry does not vouch for another port, as in OpenSSH.
        assert!(kh.keys_for("example.org", 2200).expect("check").is_empty());
        assert!(kh.keys_for("other.org", 22).expect("check").is_empty());
    }

    #[test]
    fn only_lines_that_can_name_the_host_count_among_many() {
        // A known_hosts of a 200-node inventory: every line but the host's own is skipped
        // before libssh2, and the lines libssh2 matches in its own way still match: hashed
        // (HMAC-SHA1 of `hashed.example`), a comma list, an IPv6 address written otherwise.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("kh");
        let mut text = String::new();
        for i in 1..=200 {
            text.push_str(&format!("10.213.50.{i} ssh-ed25519 {ED}\n"));
        }
        text.push_str(&format!(
            "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|fdLE3hXPaTAOXV+bPV77OkdsKnU= ssh-ed25519 {ED}\n"
        ));
        text.push_str(&format!("alpha,beta.example,gamma ssh-ed25519 {ED}\n"));
        text.push_str(&format!("[2001:db8:0:0::1]:2222 ssh-ed25519 {ED}\n"));
        std::fs::write(&p, text).expect("write");
        let kh = KnownHostsFile::load(&p).expect("load");
        let n = |h: &str, port: u16| kh.keys_for(h, port).expect("check").len();
        assert_eq!(n("10.213.50.17", 22), 1);
        assert_eq!(n("10.213.50.1", 22), 1);
        assert_eq!(n("10.213.50.201", 22), 0);
        assert_eq!(n("10.213.50.17", 2222), 0);
        assert_eq!(n("hashed.example", 22), 1);
        assert_eq!(n("hashed.example", 2222), 0);
        assert_eq!(n("beta.example", 22), 1);
        assert_eq!(n("beta", 22), 0);
        assert_eq!(n("2001:db8::1", 2222), 1);
        assert_eq!(n("2001:db8::2", 2222), 0);
        assert_eq!(
            kh.verify("10.213.50.17", 22, &blob()).expect("verify"),
            Verdict::Trusted
        );
        assert_eq!(
            kh.verify_known(kh.keys_for("beta.example", 22).expect("check"), &blob()),
            Verdict::Trusted
        );
        assert_eq!(kh.verify_known(Vec::new(), &blob()), Verdict::Unknown);
    }

    #[test]
    fn may_name_is_a_superset_of_what_libssh2_matches() {
        assert!(may_name("h1", "h1"));
        assert!(may_name("a,h1,b", "h1"));
        assert!(!may_name("h10", "h1"));
        assert!(!may_name("h1", "[h1]:2222"));
        assert!(may_name("[h1]:2222", "[h1]:2222"));
        assert!(may_name("|1|salt|hash", "anything"));
        assert!(may_name("[::1]:22", "[0:0::1]:22"));
        assert!(may_name("fe80::1", "::1"));
        assert!(!may_name("10.0.0.1", "::1"));
    }

    #[test]
    fn revoked_and_unknown_and_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("kh");
        std::fs::write(
            &p,
            format!("h1 ssh-ed25519 {ED}\n@revoked * ssh-ed25519 {ED}\n"),
        )
        .expect("write");
        let kh = KnownHostsFile::load(&p).expect("load");
        assert_eq!(
            kh.verify("h1", 22, &blob()).expect("verify"),
            Verdict::Revoked
        );
        let other = {
            let mut b = blob();
            let last = b.len() - 1;
            b[last] ^= 1;
            b
        };
        assert!(matches!(
            kh.verify("h1", 22, &other).expect("verify"),
            Verdict::Changed { .. }
        ));
        assert_eq!(
            kh.verify("h2", 22, &other).expect("verify"),
            Verdict::Unknown
        );
    }

    #[test]
    fn append_adds_newline_and_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub/kh");
        std::fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        std::fs::write(&p, "# no newline at end").expect("write");
        let line = append(&p, "10.0.0.1", 2222, &HostKey::from_blob(&blob())).expect("append");
        assert!(
            line.starts_with("[10.0.0.1]:2222 ssh-ed25519 AAAA"),
            "{line}"
        );
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.ends_with(&format!("\n{line}\n")), "{text}");
        let kh = KnownHostsFile::load(&p).expect("load");
        assert_eq!(
            kh.verify("10.0.0.1", 2222, &blob()).expect("verify"),
            Verdict::Trusted
        );
    }

    #[test]
    fn method_pref_puts_known_types_first() {
        let supported = [
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
        ];
        let ecdsa = HostKey {
            key_type: "ecdsa-sha2-nistp256".into(),
            blob: vec![],
        };
        let pref = host_key_method_pref(&[ecdsa], &supported).expect("pref");
        assert!(pref.starts_with("ecdsa-sha2-nistp256,"), "{pref}");
        let rsa = HostKey {
            key_type: "ssh-rsa".into(),
            blob: vec![],
        };
        let pref = host_key_method_pref(&[rsa], &supported).expect("pref");
        assert!(
            pref.starts_with("rsa-sha2-512,rsa-sha2-256,ssh-rsa,"),
            "{pref}"
        );
        assert_eq!(host_key_method_pref(&[], &supported), None);
    }
}
