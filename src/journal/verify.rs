//! Verification of a journal file: the hash chain, sequence, encoding, and torn lines.
//!
//! A record counts only when its line ends with `\n` (the writer writes line and newline in
//! one `write`). Lines that are not JSON are "torn":
//!
//! - torn lines followed by a `torn_tail_repaired` record naming the first of them and their
//!   exact byte count are a repaired crash: accepted, listed in [`VerifyReport::repaired`];
//! - torn lines at the end of the file (an unterminated last line, or unparsable lines after
//!   the last record) are an unrepaired torn tail: the records before them verify, so
//!   `verify` returns `Ok` with [`VerifyReport::torn_tail`] set. The CLI prints it and exits 5
//!   ([`VerifyReport::exit_code`]): SPEC §1 counts torn records as an integrity failure, and
//!   `resume` repairs the tail by appending;
//! - torn lines followed by anything else are an integrity failure of kind `torn`.
//!
//! A whole record that lost only its newline is torn too (its `append` never returned), until
//! resume appends the newline: from then on it counts like any other record, and the
//! `torn_tail_repaired` record after it says what happened.

use super::error::{IntegrityKind, JournalError};
use super::event::Event;
use super::record::{check_line, Record, GENESIS_HASH};
use crate::exit_codes;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Where torn bytes are: the first torn line and the bytes from its start up to (not
/// including) the newline that ends the torn region (or the end of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TornInfo {
    /// 1-based line number of the first torn line.
    pub line: usize,
    /// Length of the torn region in bytes.
    pub bytes: usize,
    /// Byte offset of the torn region in the file.
    pub offset: usize,
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Number of valid records.
    pub records: usize,
    /// Hash of the last valid record ([`GENESIS_HASH`] for an empty journal).
    pub head_hash: String,
    /// Seq of the last valid record (0 for an empty journal).
    pub last_seq: u64,
    /// The incident named by the records, if there are any.
    pub incident: Option<String>,
    /// An unrepaired torn tail (crash mid-write): not part of the verified records.
    pub torn_tail: Option<TornInfo>,
    /// Torn regions earlier in the file that a `torn_tail_repaired` record accounts for.
    pub repaired: Vec<TornInfo>,
}

impl VerifyReport {
    /// 0 when every byte of the file is accounted for, 5 (journal integrity) when an
    /// unrepaired torn tail remains.
    pub fn exit_code(&self) -> i32 {
        if self.torn_tail.is_some() {
            exit_codes::JOURNAL_INTEGRITY
        } else {
            exit_codes::OK
        }
    }

    /// One line for humans, e.g. `42 records, head 3f2a…; torn tail at line 43 (17 bytes)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} records, head hash {}", self.records, self.head_hash);
        for r in &self.repaired {
            s.push_str(&format!(
                "; torn line {} ({} bytes) repaired",
                r.line, r.bytes
            ));
        }
        if let Some(t) = &self.torn_tail {
            s.push_str(&format!(
                "; TORN TAIL at line {} ({} bytes, crash mid-write?) not yet repaired: `nats-rescue resume` repairs it by appending",
                t.line, t.bytes
            ));
        }
        s
    }
}

/// Verifies a journal file. See the module docs for what counts as torn.
pub fn verify_file(path: &Path) -> Result<VerifyReport, JournalError> {
    load(path).map(|(_, report)| report)
}

/// Verifies a journal file and returns its records (torn lines excluded).
pub fn load(path: &Path) -> Result<(Vec<Record>, VerifyReport), JournalError> {
    let bytes = std::fs::read(path)
        .map_err(|e| JournalError::io(format!("reading journal {}", path.display()), e))?;
    verify_bytes_with_records(&bytes)
}

/// Verifies journal bytes.
pub fn verify_bytes(bytes: &[u8]) -> Result<VerifyReport, JournalError> {
    verify_bytes_with_records(bytes).map(|(_, report)| report)
}

/// Reads whatever records parse, without judging the chain: for listing and showing a
/// journal that fails verification.
pub fn load_lenient(path: &Path) -> Result<Vec<Record>, JournalError> {
    let bytes = std::fs::read(path)
        .map_err(|e| JournalError::io(format!("reading journal {}", path.display()), e))?;
    Ok(bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Record>(line).ok())
        .collect())
}

struct Line {
    start: usize,
    end: usize,
    terminated: bool,
}

fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            lines.push(Line {
                start,
                end: i,
                terminated: true,
            });
            start = i + 1;
        }
    }
    if start < bytes.len() {
        lines.push(Line {
            start,
            end: bytes.len(),
            terminated: false,
        });
    }
    lines
}

fn seq_of(value: &Option<Value>) -> Option<u64> {
    value
        .as_ref()
        .and_then(|v| v.get("seq"))
        .and_then(Value::as_u64)
}

/// Verifies journal bytes and returns the valid records.
pub fn verify_bytes_with_records(
    bytes: &[u8],
) -> Result<(Vec<Record>, VerifyReport), JournalError> {
    let lines = split_lines(bytes);
    // An unterminated line never counts, even if it parses: its write did not finish.
    let mut parsed: Vec<Option<Value>> = lines
        .iter()
        .map(|l| {
            if l.terminated {
                serde_json::from_slice::<Value>(&bytes[l.start..l.end]).ok()
            } else {
                None
            }
        })
        .collect();

    let mut records: Vec<Record> = Vec::new();
    let mut head = GENESIS_HASH.to_string();
    let mut expected: u64 = 1;
    let mut torn: Option<TornInfo> = None;
    let mut repaired = Vec::new();

    for (idx, line) in lines.iter().enumerate() {
        let line_no = idx + 1;
        let Some(value) = parsed[idx].take() else {
            match &mut torn {
                Some(t) => t.bytes = line.end - t.offset,
                None => {
                    torn = Some(TornInfo {
                        line: line_no,
                        bytes: line.end - line.start,
                        offset: line.start,
                    })
                }
            }
            continue;
        };
        let raw = &bytes[line.start..line.end];

        if let Some(t) = torn.take() {
            // Only a repair record naming exactly this torn region may follow it.
            let names_it = value.get("event").and_then(Value::as_str) == Some("torn_tail_repaired")
                && matches!(
                    serde_json::from_value::<Record>(value.clone()).map(|r| r.event),
                    Ok(Event::TornTailRepaired { line, bytes }) if line == t.line && bytes == t.bytes
                );
            if !names_it {
                return Err(JournalError::integrity(
                    t.line,
                    IntegrityKind::Torn,
                    format!(
                        "{} bytes that are not a complete record, followed by line {line_no} instead of a torn_tail_repaired record naming them",
                        t.bytes
                    ),
                ));
            }
            repaired.push(t);
        }

        let record = check_line(raw, value, line_no)?;

        if record.seq != expected {
            let later_has_expected = parsed[idx + 1..]
                .iter()
                .any(|v| seq_of(v) == Some(expected));
            let (kind, detail) = if record.seq < expected || later_has_expected {
                (
                    IntegrityKind::Reordered,
                    format!(
                        "seq {} where seq {expected} was expected (records out of order)",
                        record.seq
                    ),
                )
            } else {
                (
                    IntegrityKind::Missing,
                    format!("seq {} where seq {expected} was expected: record(s) {expected}..{} missing", record.seq, record.seq - 1),
                )
            };
            return Err(JournalError::integrity(line_no, kind, detail));
        }
        if record.prev != head {
            return Err(JournalError::integrity(
                line_no,
                IntegrityKind::BrokenLink,
                format!(
                    "prev {} is not the hash of the record before it ({head})",
                    record.prev
                ),
            ));
        }
        if let Some(first) = records.first() {
            if record.incident != first.incident {
                return Err(JournalError::integrity(
                    line_no,
                    IntegrityKind::Malformed,
                    format!(
                        "record of incident {} in the journal of incident {}",
                        record.incident, first.incident
                    ),
                ));
            }
        }
        head = record.hash.clone();
        expected += 1;
        records.push(record);
    }

    let report = VerifyReport {
        records: records.len(),
        head_hash: head,
        last_seq: expected - 1,
        incident: records.first().map(|r| r.incident.clone()),
        torn_tail: torn,
        repaired,
    };
    Ok((records, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::now_ts;

    fn journal(n: usize) -> String {
        let mut prev = GENESIS_HASH.to_string();
        let mut out = String::new();
        for i in 1..=n {
            let r = Record::seal(
                i as u64,
                now_ts(),
                "inc",
                Event::StepStarted {
                    step: format!("s{i}"),
                    kind: "fix".into(),
                },
                &prev,
            );
            prev = r.hash.clone();
            out.push_str(&r.to_line());
            out.push('\n');
        }
        out
    }

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    fn kind_line(r: Result<VerifyReport, JournalError>) -> (IntegrityKind, usize) {
        match r {
            Err(JournalError::Integrity { line, kind, .. }) => (kind, line),
            other => panic!("expected integrity error, got {other:?}"),
        }
    }

    #[test]
    fn clean_journal_verifies() {
        let j = journal(4);
        let report = verify_bytes(j.as_bytes()).expect("ok");
        assert_eq!(report.records, 4);
        assert_eq!(report.last_seq, 4);
        assert!(report.torn_tail.is_none());
        assert_eq!(report.exit_code(), 0);
    }

    #[test]
    fn empty_is_zero_records() {
        let report = verify_bytes(b"").expect("ok");
        assert_eq!(report.records, 0);
        assert_eq!(report.head_hash, GENESIS_HASH);
    }

    #[test]
    fn swap_is_reordered_delete_is_missing() {
        let l = lines(&journal(5));
        let mut swapped = l.clone();
        swapped.swap(1, 2);
        assert_eq!(
            kind_line(verify_bytes((swapped.join("\n") + "\n").as_bytes())),
            (IntegrityKind::Reordered, 2)
        );
        let mut deleted = l.clone();
        deleted.remove(2);
        assert_eq!(
            kind_line(verify_bytes((deleted.join("\n") + "\n").as_bytes())),
            (IntegrityKind::Missing, 3)
        );
        let mut dup = l.clone();
        dup.insert(3, l[1].clone());
        assert_eq!(
            kind_line(verify_bytes((dup.join("\n") + "\n").as_bytes())),
            (IntegrityKind::Reordered, 4)
        );
    }

    #[test]
    fn edited_record_is_changed() {
        let j = journal(3).replace("\"s2\"", "\"s9\"");
        assert_eq!(
            kind_line(verify_bytes(j.as_bytes())),
            (IntegrityKind::Changed, 2)
        );
    }

    #[test]
    fn rehashed_record_breaks_the_link() {
        // An editor who recomputes the edited record's hash still breaks the next link.
        let l = lines(&journal(3));
        let mut r = Record::from_line(&l[1]).expect("record");
        r.event = Event::StepStarted {
            step: "forged".into(),
            kind: "fix".into(),
        };
        let forged = Record::seal(r.seq, r.ts, &r.incident, r.event, &r.prev);
        let j = format!("{}\n{}\n{}\n", l[0], forged.to_line(), l[2]);
        assert_eq!(
            kind_line(verify_bytes(j.as_bytes())),
            (IntegrityKind::BrokenLink, 3)
        );
    }

    #[test]
    fn torn_tail_is_reported_not_failed() {
        let j = journal(3);
        let cut = &j.as_bytes()[..j.len() - 10];
        let report = verify_bytes(cut).expect("prefix verifies");
        assert_eq!(report.records, 2);
        let t = report.torn_tail.expect("torn");
        assert_eq!(t.line, 3);
        assert_eq!(report.exit_code(), exit_codes::JOURNAL_INTEGRITY);
        // A complete line without its newline is still torn.
        let cut = &j.as_bytes()[..j.len() - 1];
        assert_eq!(
            verify_bytes(cut).expect("ok").torn_tail.map(|t| t.line),
            Some(3)
        );
    }

    #[test]
    fn torn_middle_line_is_torn() {
        let l = lines(&journal(3));
        let j = format!("{}\n{}\n{}\n", l[0], &l[1][..20], l[2]);
        assert_eq!(
            kind_line(verify_bytes(j.as_bytes())),
            (IntegrityKind::Torn, 2)
        );
    }

    #[test]
    fn foreign_incident_is_malformed() {
        let a = lines(&journal(1));
        let r2 = Record::seal(
            2,
            now_ts(),
            "other",
            Event::Interrupted { reason: "x".into() },
            &Record::from_line(&a[0]).expect("r").hash,
        );
        let j = format!("{}\n{}\n", a[0], r2.to_line());
        assert_eq!(
            kind_line(verify_bytes(j.as_bytes())),
            (IntegrityKind::Malformed, 2)
        );
    }
}
