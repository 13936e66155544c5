//! The closing lines of `run` and `resume`: how it ended, where the journal is, what next.

use crate::engine::Outcome;

/// One line saying how the run ended and, when it can go on, how.
pub fn outcome_line(outcome: &Outcome, incident: &str) -> String {
    match outcome {
        Outcome::Recovered => "RECOVERED: the runbook's verify steps passed".to_string(),
        Outcome::Completed => "completed".to_string(),
        Outcome::Rehearsed => "rehearsal complete: nothing mutating was sent".to_string(),
        Outcome::VerifyFailed(d) => format!("NOT RECOVERED: {d}"),
        Outcome::Failed(d) => format!("STOPPED ON FAILURE: {d}"),
        Outcome::Stopped(d) => {
            format!("stopped: {d}; continue with `nats-rescue resume {incident}`")
        }
        Outcome::NeedDecision(d) => {
            format!("a decision is needed: {d}; continue with `nats-rescue resume {incident}`")
        }
    }
}

/// The lines after it: the journal file with its head, and the report command.
pub fn journal_lines(path: &std::path::Path, head: &str, incident: &str) -> [String; 2] {
    let short: String = head.chars().take(16).collect();
    [
        format!("journal: {} (head {short})", path.display()),
        format!("report:  nats-rescue journal export {incident} --format markdown"),
    ]
}

/// Where a run begins.
pub fn run_header(rehearsal: bool, incident: &str, runbook: &str, title: &str) -> String {
    format!(
        "{}incident {incident}: {runbook} — {title}",
        if rehearsal {
            "REHEARSAL (--dry-run, nothing mutating is sent) "
        } else {
            ""
        }
    )
}
