//! Process exit codes. Stable: scripts depend on them (SPEC §1, README).

/// Success; for `status`/`diagnose`: the cluster is healthy.
pub const OK: i32 = 0;
/// `status`/`diagnose` found problems; `run`/`resume` ended without the verify steps passing.
pub const PROBLEMS: i32 = 1;
/// Invalid usage or input: flags, YAML, inventory, unknown runbook, unknown incident.
pub const USAGE: i32 = 2;
/// Stopped by the operator (declined, Ctrl-C). Journaled and resumable.
pub const STOPPED: i32 = 3;
/// A human decision is needed and none could be had.
pub const NEED_DECISION: i32 = 4;
/// Journal integrity failure.
pub const JOURNAL_INTEGRITY: i32 = 5;
/// The incident is locked by another running nats-rescue.
pub const LOCKED: i32 = 6;
