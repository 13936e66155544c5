//! Client authentication: a key file from the inventory (possibly encrypted), else ssh-agent.
//!
//! libssh2 reports a wrong passphrase as "Unsupported private key format", so we find out
//! ourselves whether a key is encrypted and word the error after what really failed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Environment variable holding the passphrase of an encrypted `identity_file`.
pub const PASSPHRASE_ENV: &str = "NATS_RESCUE_SSH_PASSPHRASE";

/// Asked for the passphrase of an encrypted key file (e.g. a terminal prompt). `None` means
/// "no passphrase available". Called at most once per key file while answers are right.
pub type PassphraseCallback = dyn Fn(&Path) -> Option<String> + Send + Sync;

/// Whether a private key file is protected by a passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProtection {
    Plain,
    Encrypted,
    /// Not a format we can inspect; libssh2 will have the last word.
    Unknown,
}

/// Looks inside OpenSSH (`openssh-key-v1`) and PEM private keys for their cipher.
pub fn key_protection(text: &str) -> KeyProtection {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return KeyProtection::Encrypted;
    }
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    if let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) {
        if e <= b {
            return KeyProtection::Unknown;
        }
        let body: String = text[b + BEGIN.len()..e]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let Ok(raw) = STANDARD.decode(body) else {
            return KeyProtection::Unknown;
        };
        const MAGIC: &[u8] = b"openssh-key-v1\0";
        let Some(rest) = raw.strip_prefix(MAGIC) else {
            return KeyProtection::Unknown;
        };
        let Some(len) = rest
            .get(..4)
            .and_then(|l| l.try_into().ok())
            .map(u32::from_be_bytes)
        else {
            return KeyProtection::Unknown;
        };
        return match rest.get(4..4 + len as usize) {
            Some(b"none") => KeyProtection::Plain,
            Some(_) => KeyProtection::Encrypted,
            None => KeyProtection::Unknown,
        };
    }
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
        return KeyProtection::Plain;
    }
    KeyProtection::Unknown
}

/// Where a passphrase came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PassphraseSource {
    Env,
    Callback,
}

/// Passphrases per key file: from the environment, else asked once through the callback
/// and remembered for the run (so forty nodes do not mean forty prompts).
#[derive(Default)]
pub(crate) struct Passphrases {
    callback: Option<Arc<PassphraseCallback>>,
    /// Held while the callback runs, so concurrent connections ask only once.
    cache: Mutex<HashMap<PathBuf, String>>,
}

impl Passphrases {
    pub(crate) fn set_callback(&mut self, cb: Arc<PassphraseCallback>) {
        self.callback = Some(cb);
    }

    pub(crate) fn get(&self, key: &Path) -> Option<(String, PassphraseSource)> {
        if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
            return Some((p, PassphraseSource::Env));
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(key) {
            return Some((p.clone(), PassphraseSource::Callback));
        }
        let p = (self.callback.as_ref()?)(key)?;
        cache.insert(key.to_path_buf(), p.clone());
        Some((p, PassphraseSource::Callback))
    }

    /// Drops a passphrase that turned out to be wrong, so the next attempt asks again.
    pub(crate) fn forget(&self, key: &Path) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// How to authenticate to one node, prepared before the connection's clock starts (a
/// passphrase prompt takes human time).
pub(crate) enum Credentials {
    KeyFile {
        path: PathBuf,
        passphrase: Option<(String, PassphraseSource)>,
        protection: KeyProtection,
    },
    Agent {
        socket: PathBuf,
    },
}

/// Prepares credentials; the `Err` is the reason of an authentication error.
pub(crate) fn prepare(
    identity_file: Option<&Path>,
    agent_socket: Option<&Path>,
    passphrases: &Passphrases,
) -> Result<Credentials, String> {
    match identity_file {
        Some(path) => {
            let text = std::fs::read(path)
                .map_err(|e| format!("cannot read identity_file {}: {e}", path.display()))?;
            let protection = key_protection(&String::from_utf8_lossy(&text));
            let passphrase = if protection == KeyProtection::Plain {
                None
            } else {
                passphrases.get(path)
            };
            if protection == KeyProtection::Encrypted && passphrase.is_none() {
                return Err(format!(
                    "identity_file {} is encrypted and no passphrase was given (set {PASSPHRASE_ENV} or load the key into ssh-agent and drop identity_file)",
                    path.display()
                ));
            }
            Ok(Credentials::KeyFile {
                path: path.to_path_buf(),
                passphrase,
                protection,
            })
        }
        None => match agent_socket
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from))
        {
            Some(socket) => Ok(Credentials::Agent { socket }),
            None => Err(
                "no identity_file configured and no ssh-agent (SSH_AUTH_SOCK is not set)".into(),
            ),
        },
    }
}

/// Authenticates `session` (already past host-key verification) as `user`.
pub(crate) fn authenticate(
    session: &ssh2::Session,
    user: &str,
    creds: &Credentials,
    passphrases: &Passphrases,
) -> Result<(), String> {
    match creds {
        Credentials::KeyFile {
            path,
            passphrase,
            protection,
        } => {
            let pass = passphrase.as_ref().map(|(p, _)| p.as_str());
            let Err(e) = session.userauth_pubkey_file(user, None, path, pass) else {
                return Ok(());
            };
            Err(explain_key_failure(
                &e,
                path,
                passphrase.as_ref().map(|(_, s)| *s),
                *protection,
                passphrases,
            ))
        }
        Credentials::Agent { socket } => {
            let err = |what: &str, e: ssh2::Error| {
                format!("ssh-agent at {}: {what}: {}", socket.display(), e.message())
            };
            let mut agent = session.agent().map_err(|e| err("cannot initialise", e))?;
            agent
                .set_identity_path(socket)
                .map_err(|e| err("bad socket path", e))?;
            agent.connect().map_err(|e| err("cannot connect", e))?;
            agent
                .list_identities()
                .map_err(|e| err("cannot list keys", e))?;
            let ids = agent.identities().map_err(|e| err("cannot list keys", e))?;
            if ids.is_empty() {
                return Err(format!(
                    "ssh-agent at {} holds no keys (ssh-add one)",
                    socket.display()
                ));
            }
            // Try every key, as ssh does; libssh2's helper stops at the first.
            for id in &ids {
                if agent.userauth(user, id).is_ok() {
                    let _ = agent.disconnect();
                    return Ok(());
                }
            }
            let _ = agent.disconnect();
            Err(format!(
                "the server accepted none of the {} key(s) in ssh-agent at {}",
                ids.len(),
                socket.display()
            ))
        }
    }
}

fn explain_key_failure(
    e: &ssh2::Error,
    path: &Path,
    source: Option<PassphraseSource>,
    protection: KeyProtection,
    passphrases: &Passphrases,
) -> String {
    const AUTHENTICATION_FAILED: i32 = -18;
    const PUBLICKEY_UNVERIFIED: i32 = -19;
    let code = match e.code() {
        ssh2::ErrorCode::Session(c) => c,
        ssh2::ErrorCode::SFTP(c) => c,
    };
    // These two come from the server's answer; everything else failed before a key was sent.
    if code == AUTHENTICATION_FAILED || code == PUBLICKEY_UNVERIFIED {
        return format!(
            "the server refused key {} ({})",
            path.display(),
            e.message()
        );
    }
    match (protection, source) {
        (KeyProtection::Encrypted, Some(PassphraseSource::Env)) => {
            format!(
                "wrong passphrase for identity_file {} (taken from {PASSPHRASE_ENV})",
                path.display()
            )
        }
        (KeyProtection::Encrypted, _) => {
            passphrases.forget(path);
            format!("wrong passphrase for identity_file {}", path.display())
        }
        _ => format!(
            "cannot use identity_file {}: {} (is it a private key in OpenSSH or PEM format?)",
            path.display(),
            e.message()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_encrypted_openssh_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (pass, want) in [
            ("", KeyProtection::Plain),
            ("s3cret", KeyProtection::Encrypted),
        ] {
            let key = dir.path().join(format!("k{}", pass.len()));
            let ok = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", pass, "-f"])
                .arg(&key)
                .status()
                .expect("ssh-keygen runs")
                .success();
            assert!(ok);
            let text = std::fs::read_to_string(&key).expect("key");
            assert_eq!(key_protection(&text), want, "passphrase {pass:?}");
        }
        assert_eq!(
            key_protection("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"),
            KeyProtection::Encrypted
        );
        assert_eq!(key_protection("hello"), KeyProtection::Unknown);
    }
}
