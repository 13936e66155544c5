//! Appending records: one line per event, written with a single `write` on an `O_APPEND` file
//! and fsynced before `append` returns, so an action's intent is on disk before the action is
//! sent (SPEC §4).

use super::error::JournalError;
use super::event::Event;
use super::lock::IncidentLock;
use super::record::{now_ts, Record};
use super::redact::Redactor;
use super::replay::{replay, Replay};
use super::verify::verify_bytes_with_records;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The open journal of one incident. Holds the incident lock for its whole life.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    incident: String,
    next_seq: u64,
    head: String,
    redactor: Redactor,
    /// Set when a write failed part-way: nothing more is appended after a possibly torn line.
    poisoned: bool,
    _lock: IncidentLock,
}

/// `<dir>/<incident>.jsonl`.
pub fn journal_path(dir: &Path, incident: &str) -> PathBuf {
    dir.join(format!("{incident}.jsonl"))
}

/// Rejects ids that could escape the journal directory or name odd files.
pub fn check_incident_id(id: &str) -> Result<(), JournalError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(JournalError::InvalidIncidentId(id.to_string()))
    }
}

/// `NATS_RESCUE_TEST_CRASH_AFTER=<seq>` aborts the process once record `seq` is fsynced;
/// `NATS_RESCUE_TEST_CRASH_AFTER=<event>:<action>` (e.g. `action_intent:rewrite@n1`) once the
/// first such record is. A test hook: the crash tests hit exact record boundaries with it.
pub const CRASH_AFTER_ENV: &str = "NATS_RESCUE_TEST_CRASH_AFTER";

enum CrashAt {
    Seq(u64),
    Event { event: String, action: String },
}

fn crash_after() -> Option<&'static CrashAt> {
    static AT: std::sync::OnceLock<Option<CrashAt>> = std::sync::OnceLock::new();
    AT.get_or_init(|| {
        let v = std::env::var(CRASH_AFTER_ENV).ok()?;
        let v = v.trim();
        if let Ok(seq) = v.parse() {
            return Some(CrashAt::Seq(seq));
        }
        let (event, action) = v.split_once(':')?;
        Some(CrashAt::Event {
            event: event.to_string(),
            action: action.to_string(),
        })
    })
    .as_ref()
}

fn crash_here(record: &Record) -> bool {
    match crash_after() {
        None => false,
        Some(CrashAt::Seq(s)) => *s == record.seq,
        Some(CrashAt::Event { event, action }) => {
            record.event.name() == event
                && serde_json::to_value(&record.event)
                    .ok()
                    .and_then(|v| {
                        v.get("action")
                            .and_then(|a| a.as_str())
                            .map(|a| a == action)
                    })
                    .unwrap_or(false)
        }
    }
}

impl JournalWriter {
    /// Starts a new incident journal with `first` (normally `IncidentOpened`) as record 1,
    /// using the default redaction rules.
    pub fn create(
        dir: &Path,
        incident_id: &str,
        first: Event,
    ) -> Result<JournalWriter, JournalError> {
        JournalWriter::create_with_redactor(dir, incident_id, first, Redactor::new())
    }

    /// [`JournalWriter::create`] with secrets already known, so that the first record (which
    /// carries `--var` values) is redacted with them too.
    pub fn create_with_redactor(
        dir: &Path,
        incident_id: &str,
        first: Event,
        redactor: Redactor,
    ) -> Result<JournalWriter, JournalError> {
        check_incident_id(incident_id)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                JournalError::io(format!("creating journal directory {}", dir.display()), e)
            })?;
        let lock = IncidentLock::acquire(dir, incident_id)?;
        let path = journal_path(dir, incident_id);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| JournalError::io(format!("creating journal {}", path.display()), e))?;
        // The new directory entry must survive a crash as much as the records do.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let mut writer = JournalWriter {
            file,
            path,
            incident: incident_id.to_string(),
            next_seq: 1,
            head: super::record::GENESIS_HASH.to_string(),
            redactor,
            poisoned: false,
            _lock: lock,
        };
        writer.append(first)?;
        Ok(writer)
    }

    /// Reopens an incident to resume it: takes the lock, verifies the chain and rebuilds the
    /// state. A torn tail (crash mid-write) is repaired by appending: a newline that ends the
    /// torn bytes, then a `torn_tail_repaired` record naming them. Nothing is ever truncated.
    /// [`Replay::repaired_torn_tail`] says whether that happened.
    pub fn open_existing(
        dir: &Path,
        incident_id: &str,
    ) -> Result<(JournalWriter, Replay), JournalError> {
        check_incident_id(incident_id)?;
        let path = journal_path(dir, incident_id);
        if !path.is_file() {
            return Err(JournalError::UnknownIncident {
                query: incident_id.to_string(),
                hint: format!("no journal {}", path.display()),
            });
        }
        let lock = IncidentLock::acquire(dir, incident_id)?;
        // Read only after locking: nobody else appends from here on.
        let bytes = std::fs::read(&path)
            .map_err(|e| JournalError::io(format!("reading journal {}", path.display()), e))?;
        let (mut records, report) = verify_bytes_with_records(&bytes)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| JournalError::io(format!("opening journal {}", path.display()), e))?;
        let mut writer = JournalWriter {
            file,
            path,
            // The records' own id, should the file have been renamed: the chain must stay
            // one incident.
            incident: report
                .incident
                .clone()
                .unwrap_or_else(|| incident_id.to_string()),
            next_seq: report.last_seq + 1,
            head: report.head_hash.clone(),
            redactor: Redactor::new(),
            poisoned: false,
            _lock: lock,
        };
        let mut repaired = None;
        if let Some(torn) = report.torn_tail {
            let mut bytes = bytes;
            if bytes.last() != Some(&b'\n') {
                writer.terminate_torn_bytes()?;
                bytes.push(b'\n');
            }
            // Once terminated, a torn line that was a whole record short of its newline is a
            // record like any other (a crash can only cut a line, and no shorter prefix of a
            // JSON object parses); anything else stays torn and is named by the repair record.
            let (now_valid, after) = verify_bytes_with_records(&bytes)?;
            records = now_valid;
            writer.next_seq = after.last_seq + 1;
            writer.head = after.head_hash.clone();
            if let Some(incident) = after.incident.clone() {
                writer.incident = incident;
            }
            let torn = after.torn_tail.unwrap_or(torn);
            repaired = Some(torn);
            records.push(writer.append(Event::TornTailRepaired {
                line: torn.line,
                bytes: torn.bytes,
            })?);
        }
        let mut state = replay(&records);
        state.repaired_torn_tail = repaired;
        Ok((writer, state))
    }

    /// Ends torn bytes with a newline so that the next record starts on a line of its own.
    fn terminate_torn_bytes(&mut self) -> Result<(), JournalError> {
        self.file
            .write_all(b"\n")
            .and_then(|_| self.file.sync_data())
            .map_err(|e| {
                JournalError::io(format!("repairing torn tail of {}", self.path.display()), e)
            })
    }

    /// Redacts `ev`, writes it as the next record and fsyncs. When this returns `Ok`, the
    /// record is on disk.
    pub fn append(&mut self, ev: Event) -> Result<Record, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned(self.path.clone()));
        }
        let ev = self.redactor.redact_event(ev);
        let record = Record::seal(self.next_seq, now_ts(), &self.incident, ev, &self.head);
        let mut line = record.to_line();
        line.push('\n');
        // One write: a crash leaves at most one torn line, which resume repairs.
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            self.poisoned = true;
            return Err(JournalError::io(
                format!("appending to {}", self.path.display()),
                e,
            ));
        }
        if let Err(e) = self.file.sync_data() {
            // The bytes may or may not be durable; treat the record as never written.
            self.poisoned = true;
            return Err(JournalError::io(
                format!("syncing {}", self.path.display()),
                e,
            ));
        }
        self.next_seq += 1;
        self.head = record.hash.clone();
        if crash_here(&record) {
            // Test hook: die like a crash (no unwinding, no later record) right after this
            // record is durable. The crash tests use it to hit every record boundary exactly.
            std::process::abort();
        }
        Ok(record)
    }

    pub fn incident(&self) -> &str {
        &self.incident
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hash of the last record written.
    pub fn head_hash(&self) -> &str {
        &self.head
    }

    /// Seq of the last record written.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Add secret values (e.g. `--var` values whose key looks secret) before they can appear.
    pub fn redactor_mut(&mut self) -> &mut Redactor {
        &mut self.redactor
    }
}

/// `YYYYMMDDTHHMMSSZ-<runbook>-<4 hex>`. The runbook part is reduced to `[A-Za-z0-9_-]`.
pub fn new_incident_id(runbook: &str) -> String {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name: String = runbook
        .rsplit('/')
        .next()
        .unwrap_or(runbook)
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if name.is_empty() {
        "incident".to_string()
    } else {
        name
    };
    format!("{stamp}-{name}-{}", random_hex4())
}

fn random_hex4() -> String {
    use std::io::Read;
    let mut buf = [0u8; 2];
    if let Ok(mut f) = File::open("/dev/urandom") {
        if f.read_exact(&mut buf).is_ok() {
            return hex::encode(buf);
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{nanos}-{}", std::process::id());
    crate::inventory::sha256_hex(seed.as_bytes())[..4].to_string()
}

/// `$XDG_STATE_HOME/nats-rescue/incidents`, else `~/.local/state/nats-rescue/incidents`.
pub fn default_dir() -> PathBuf {
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.unwrap_or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".local/state"))
            .unwrap_or_else(|| PathBuf::from(".local/state"))
    });
    base.join("nats-rescue").join("incidents")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::verify::verify_file;
    use std::os::unix::fs::PermissionsExt;

    fn opened() -> Event {
        Event::StepStarted {
            step: "open".into(),
            kind: "diagnose".into(),
        }
    }

    #[test]
    fn incident_id_shape() {
        let id = new_incident_id("insufficient-nodes");
        let re = regex::Regex::new(r"^\d{8}T\d{6}Z-insufficient-nodes-[0-9a-f]{4}$").expect("re");
        assert!(re.is_match(&id), "{id}");
        assert!(check_incident_id(&id).is_ok());
        assert!(new_incident_id("./my runbooks/x.yaml").contains("-x-"));
        assert!(check_incident_id("../etc").is_err());
        assert!(check_incident_id("a/b").is_err());
    }

    #[test]
    fn create_sets_modes_and_chains() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("incidents");
        let mut w =
            JournalWriter::create(&dir, "20260101T000000Z-x-0001", opened()).expect("create");
        let r2 = w
            .append(Event::Interrupted {
                reason: "test".into(),
            })
            .expect("append");
        assert_eq!(r2.seq, 2);
        assert_eq!(w.head_hash(), r2.hash);
        assert_eq!(
            std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::metadata(w.path())
                .expect("file")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let report = verify_file(w.path()).expect("verifies");
        assert_eq!(report.records, 2);
        assert_eq!(report.head_hash, w.head_hash());
        // create never reuses an existing journal.
        drop(w);
        assert!(JournalWriter::create(&dir, "20260101T000000Z-x-0001", opened()).is_err());
    }

    #[test]
    fn open_existing_continues_the_chain() {
        let tmp = tempfile::tempdir().expect("tmp");
        let id = "20260101T000000Z-x-0002";
        let w = JournalWriter::create(tmp.path(), id, opened()).expect("create");
        let head = w.head_hash().to_string();
        drop(w);
        let (mut w, state) = JournalWriter::open_existing(tmp.path(), id).expect("open");
        assert_eq!(state.last_seq, 1);
        assert_eq!(state.head_hash, head);
        assert!(state.repaired_torn_tail.is_none());
        w.append(Event::Interrupted {
            reason: "again".into(),
        })
        .expect("append");
        assert_eq!(verify_file(w.path()).expect("ok").records, 2);
        assert!(matches!(
            JournalWriter::open_existing(tmp.path(), "20260101T000000Z-x-ffff"),
            Err(JournalError::UnknownIncident { .. })
        ));
    }

    #[test]
    fn default_dir_ends_in_incidents() {
        assert!(default_dir().ends_with("nats-rescue/incidents"));
    }
}
