//! Signed heads: an SSH signature (the `sshsig` format of `ssh-keygen -Y sign`, namespace
//! [`NAMESPACE`]) over a one-line statement of the journal's head — incident, record count
//! and head hash. A journal cut short or rewritten no longer ends at the signed head, so the
//! signature stops covering it, whoever recomputed the hashes.
//!
//! Files beside the journal: `<incident>.jsonl.head` (the statement, the exact bytes signed)
//! and `<incident>.jsonl.head.sig` (armored sshsig) — the names `ssh-keygen -Y sign` uses for
//! that file, so either tool can make or check the signature:
//! `ssh-keygen -Y sign -n nats-rescue-journal -f KEY <incident>.jsonl.head`.

use super::error::JournalError;
use super::verify::verify_file;
use ssh_key::{HashAlg, PrivateKey, PublicKey, SshSig};
use std::path::{Path, PathBuf};

/// The sshsig namespace: a signature made for anything else never verifies here.
pub const NAMESPACE: &str = "nats-rescue-journal";

/// The statement that is signed for a journal ending at record `seq` with hash `head`.
pub fn statement(incident: &str, seq: u64, head: &str) -> String {
    format!("nats-rescue journal {incident} records {seq} head {head}\n")
}

pub fn head_path(journal: &Path) -> PathBuf {
    let mut p = journal.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

pub fn sig_path(journal: &Path) -> PathBuf {
    let mut p = head_path(journal).into_os_string();
    p.push(".sig");
    PathBuf::from(p)
}

/// The statement for the journal as it is now (its chain checked first).
pub fn current_statement(journal: &Path) -> Result<String, JournalError> {
    let r = verify_file(journal)?;
    let incident = journal
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    Ok(statement(&incident, r.records as u64, &r.head_hash))
}

/// What `sign` did.
#[derive(Debug, Clone)]
pub struct Signed {
    pub statement: String,
    pub head_file: PathBuf,
    pub sig_file: PathBuf,
    /// `SHA256:...` of the signing key.
    pub fingerprint: String,
}

fn sign_err(what: impl Into<String>) -> JournalError {
    JournalError::Sign(what.into())
}

/// Writes the statement of the journal's current head and, with a key, its signature.
pub fn sign(journal: &Path, key_file: Option<&Path>) -> Result<Option<Signed>, JournalError> {
    let st = current_statement(journal)?;
    let head_file = head_path(journal);
    std::fs::write(&head_file, &st)
        .map_err(|e| JournalError::io(format!("writing {}", head_file.display()), e))?;
    let Some(key_file) = key_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(key_file)
        .map_err(|e| sign_err(format!("cannot read the key {}: {e}", key_file.display())))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        sign_err(format!(
            "{}: not an OpenSSH private key: {e}",
            key_file.display()
        ))
    })?;
    if key.is_encrypted() {
        return Err(sign_err(format!(
            "{} is passphrase-protected; sign with `ssh-keygen -Y sign -n {NAMESPACE} -f {} {}` (it asks for the passphrase), then `journal verify --allowed-signers`",
            key_file.display(),
            key_file.display(),
            head_file.display()
        )));
    }
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, st.as_bytes())
        .map_err(|e| sign_err(format!("signing failed: {e}")))?;
    let pem = sig
        .to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| sign_err(format!("cannot encode the signature: {e}")))?;
    let sig_file = sig_path(journal);
    std::fs::write(&sig_file, pem)
        .map_err(|e| JournalError::io(format!("writing {}", sig_file.display()), e))?;
    Ok(Some(Signed {
        statement: st,
        head_file,
        sig_file,
        fingerprint: key.public_key().fingerprint(HashAlg::Sha256).to_string(),
    }))
}

/// One key of an allowed_signers file (`principals [options] keytype base64 [comment]`).
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub principals: String,
    pub key: PublicKey,
    /// `namespaces="a,b"`, when the line restricts them.
    pub namespaces: Option<Vec<String>>,
}

/// Reads an allowed_signers file (as `ssh-keygen -Y verify -f` does); comment and blank
/// lines are skipped, `cert-authority` lines are not supported and are skipped.
pub fn read_allowed_signers(path: &Path) -> Result<Vec<AllowedSigner>, JournalError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JournalError::io(format!("reading {}", path.display()), e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut parts = l.splitn(2, char::is_whitespace);
        let principals = parts.next().unwrap_or_default().to_string();
        let rest = parts.next().unwrap_or_default().trim();
        // Options come before the key type when present.
        let (options, key_text) =
            if rest.starts_with("ssh-") || rest.starts_with("ecdsa-") || rest.starts_with("sk-") {
                ("", rest)
            } else {
                match rest.split_once(char::is_whitespace) {
                    Some((o, k)) => (o, k.trim()),
                    None => continue,
                }
            };
        if options.split(',').any(|o| o == "cert-authority") {
            continue;
        }
        let namespaces = options.split(',').find_map(|o| {
            o.strip_prefix("namespaces=")
                .map(|v| v.trim_matches('"').split(',').map(String::from).collect())
        });
        let Ok(key) = PublicKey::from_openssh(key_text) else {
            continue;
        };
        out.push(AllowedSigner {
            principals,
            key,
            namespaces,
        });
    }
    Ok(out)
}

/// How a signature check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A key of the file signed the journal's current head.
    Valid {
        principals: String,
        fingerprint: String,
    },
    NotSigned,
    /// It covers another head than the journal's (cut short, rewritten, or appended to).
    StaleHead {
        signed: String,
        current: String,
    },
    /// No allowed key made it, or it is not a valid signature over the current head.
    Invalid(String),
}

impl SignatureCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, SignatureCheck::Valid { .. })
    }
    pub fn describe(&self) -> String {
        match self {
            SignatureCheck::Valid {
                principals,
                fingerprint,
            } => format!("signed by {principals} ({fingerprint}) over the current head"),
            SignatureCheck::NotSigned => "not signed".into(),
            SignatureCheck::StaleHead { signed, current } => format!(
                "the signature covers `{}`, but the journal now ends at `{}`",
                signed.trim(),
                current.trim()
            ),
            SignatureCheck::Invalid(why) => why.clone(),
        }
    }
}

/// Checks the signature beside `journal` against the allowed signers, over the journal's
/// CURRENT head (never over the `.head` file's claim).
pub fn check(journal: &Path, allowed: &[AllowedSigner]) -> Result<SignatureCheck, JournalError> {
    let current = current_statement(journal)?;
    let sig_file = sig_path(journal);
    let Ok(pem) = std::fs::read_to_string(&sig_file) else {
        return Ok(SignatureCheck::NotSigned);
    };
    let sig = match SshSig::from_pem(pem.trim()) {
        Ok(s) => s,
        Err(e) => {
            return Ok(SignatureCheck::Invalid(format!(
                "{}: not an SSH signature: {e}",
                sig_file.display()
            )))
        }
    };
    if sig.namespace() != NAMESPACE {
        return Ok(SignatureCheck::Invalid(format!(
            "the signature is for namespace `{}`, not `{NAMESPACE}`",
            sig.namespace()
        )));
    }
    let signer = sig.public_key();
    let Some(entry) = allowed.iter().find(|a| {
        a.key.key_data() == signer
            && a.namespaces
                .as_ref()
                .is_none_or(|n| n.iter().any(|x| x == NAMESPACE || x == "*"))
    }) else {
        return Ok(SignatureCheck::Invalid(format!(
            "no allowed signer has the key that made the signature ({})",
            PublicKey::from(signer.clone()).fingerprint(HashAlg::Sha256)
        )));
    };
    if entry
        .key
        .verify(NAMESPACE, current.as_bytes(), &sig)
        .is_ok()
    {
        return Ok(SignatureCheck::Valid {
            principals: entry.principals.clone(),
            fingerprint: entry.key.fingerprint(HashAlg::Sha256).to_string(),
        });
    }
    let signed = std::fs::read_to_string(head_path(journal)).unwrap_or_default();
    if !signed.is_empty()
        && signed != current
        && entry.key.verify(NAMESPACE, signed.as_bytes(), &sig).is_ok()
    {
        return Ok(SignatureCheck::StaleHead { signed, current });
    }
    Ok(SignatureCheck::Invalid(
        "the signature does not cover the journal's current head".into(),
    ))
}
