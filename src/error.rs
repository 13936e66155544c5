//! The top-level error. Each module has its own `thiserror` enum; this one maps every failure
//! to the exit code scripts rely on.

use crate::exit_codes;
use crate::input_error::InputProblems;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags, YAML, inventory, unknown runbook or incident.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Input(#[from] InputProblems),
    /// The cluster or run has problems (exit 1); the message says which.
    #[error("{0}")]
    Problems(String),
    /// Stopped by the operator.
    #[error("{0}")]
    Stopped(String),
    /// A decision is needed and none could be had.
    #[error("{0}")]
    NeedDecision(String),
    #[error("{0}")]
    JournalIntegrity(String),
    #[error("{0}")]
    Locked(String),
    /// Anything else (I/O, environment): reported, exit 1.
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Input(_) => exit_codes::USAGE,
            Error::Problems(_) | Error::Other(_) => exit_codes::PROBLEMS,
            Error::Stopped(_) => exit_codes::STOPPED,
            Error::NeedDecision(_) => exit_codes::NEED_DECISION,
            Error::JournalIntegrity(_) => exit_codes::JOURNAL_INTEGRITY,
            Error::Locked(_) => exit_codes::LOCKED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::journal::JournalError> for Error {
    fn from(e: crate::journal::JournalError) -> Self {
        use crate::exit_codes::*;
        match e.exit_code() {
            JOURNAL_INTEGRITY => Error::JournalIntegrity(e.to_string()),
            LOCKED => Error::Locked(e.to_string()),
            USAGE => Error::Usage(e.to_string()),
            _ => Error::Other(e.to_string()),
        }
    }
}
