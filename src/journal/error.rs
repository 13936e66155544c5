//! The journal's error type. Each variant maps to one stable exit code (SPEC §1).

use crate::exit_codes;
use std::fmt;
use std::path::PathBuf;

/// What kind of damage verification found. The names are part of the CLI's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrityKind {
    /// The record's content does not match its hash (edited, or bytes flipped).
    Changed,
    /// A sequence number is skipped: records were deleted.
    Missing,
    /// A sequence number goes backwards, or a later line holds the expected one.
    Reordered,
    /// `prev` is not the hash of the record before it.
    BrokenLink,
    /// A line that is not a complete record, neither at the tail nor repaired.
    Torn,
    /// Valid JSON with a valid hash that is not a journal record (missing/odd fields,
    /// another incident's record).
    Malformed,
}

impl IntegrityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrityKind::Changed => "changed",
            IntegrityKind::Missing => "missing",
            IntegrityKind::Reordered => "reordered",
            IntegrityKind::BrokenLink => "broken-link",
            IntegrityKind::Torn => "torn",
            IntegrityKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for IntegrityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong reading, writing, locking or finding a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The hash chain is broken. `line` is the 1-based line of the file where it broke.
    #[error("journal integrity failure at line {line} ({kind}): {detail}")]
    Integrity {
        line: usize,
        kind: IntegrityKind,
        detail: String,
    },

    /// Another nats-rescue holds the incident's lock. The lock is an OS advisory lock, so
    /// it disappears with the process that held it: there are no stale locks to delete.
    #[error(
        "incident {incident} is locked by another nats-rescue: pid {}, operator {operator}, since {since} (lock {})",
        pid.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()),
        lock_path.display()
    )]
    Locked {
        incident: String,
        pid: Option<u32>,
        operator: String,
        since: String,
        lock_path: PathBuf,
    },

    /// No journal matches the id, prefix or path given (or the prefix is ambiguous).
    #[error("unknown incident `{query}`{}", if hint.is_empty() { String::new() } else { format!(": {hint}") })]
    UnknownIncident { query: String, hint: String },

    /// An incident id that cannot name a journal file (empty, `/`, `..`, ...).
    #[error("invalid incident id `{0}`: expected YYYYMMDDTHHMMSSZ-<runbook>-<4 hex>")]
    InvalidIncidentId(String),

    /// A previous append failed half-way; the writer refuses to append after a possibly torn
    /// line. Reopen with `open_existing` (resume), which repairs the tail by appending.
    #[error("journal {0}: an earlier write failed; resume the incident to repair the journal")]
    Poisoned(PathBuf),

    /// Signing the head failed (key unreadable, encrypted, unsupported).
    #[error("cannot sign the journal: {0}")]
    Sign(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl JournalError {
    /// The process exit code for this failure (SPEC §1).
    pub fn exit_code(&self) -> i32 {
        match self {
            JournalError::Integrity { .. } => exit_codes::JOURNAL_INTEGRITY,
            JournalError::Locked { .. } => exit_codes::LOCKED,
            JournalError::UnknownIncident { .. } | JournalError::InvalidIncidentId(_) => {
                exit_codes::USAGE
            }
            JournalError::Poisoned(_) | JournalError::Io { .. } => exit_codes::PROBLEMS,
            JournalError::Sign(_) => exit_codes::USAGE,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> JournalError {
        JournalError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn integrity(
        line: usize,
        kind: IntegrityKind,
        detail: impl Into<String>,
    ) -> JournalError {
        JournalError::Integrity {
            line,
            kind,
            detail: detail.into(),
        }
    }
}
