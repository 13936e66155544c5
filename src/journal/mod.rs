//! The incident journal (SPEC §4): append-only, hash-chained JSON Lines.
//!
//! - [`record`]: the line format and its hash;
//! - [`writer`]: creating, reopening (resume, torn-tail repair) and appending, under the
//!   incident [`lock`];
//! - [`redact`]: secrets out before anything is hashed or written;
//! - [`verify`]: checking a file's chain and naming the line where it broke;
//! - [`mod@replay`]: the state `resume` continues from;
//! - [`report`]: the report data behind `journal list/show/export` (rendered by
//!   `crate::ui`) and finding incidents.

pub mod error;
pub mod event;
pub mod lock;
pub mod record;
pub mod redact;
pub mod replay;
pub mod report;
pub mod sign;
pub mod verify;
pub mod witness;
pub mod writer;

pub use crate::ui::report::export_markdown;
pub use crate::ui::timeline::{render_list, show};
pub use error::{IntegrityKind, JournalError};
pub use event::{Decision, Event, IncidentOutcome, StepOutcome};
pub use lock::{current_operator, IncidentLock, LockInfo};
pub use record::{canonical_json, now_ts, Record, GENESIS_HASH};
pub use redact::{Redactor, REDACTED};
pub use replay::{
    replay, ActionResultSummary, BackupInfo, DecisionInfo, InDoubtAction, OpenedInfo, Replay,
    ResumeInfo,
};
pub use report::{
    export_json, latest_unfinished, list, report_data, resolve, IncidentSummary, ReportData,
};
pub use verify::{
    load, load_lenient, verify_bytes, verify_bytes_with_records, verify_file, TornInfo,
    VerifyReport,
};
pub use writer::{check_incident_id, default_dir, journal_path, new_incident_id, JournalWriter};
