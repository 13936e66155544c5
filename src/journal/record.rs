//! One journal line: an [`Event`] wrapped in `seq`, `ts`, `incident`, `prev` and `hash`.
//!
//! `hash` = hex SHA-256 of `prev` + `"\n"` + the canonical JSON of the record without `hash`
//! (object keys sorted recursively, no whitespace). The line itself is serde_json's compact
//! output in field order (`seq`, `ts`, `incident`, `event`, the event's fields, `prev`,
//! `hash`); verification also checks that a line is byte-for-byte what the writer would have
//! written, so changes that keep the parsed content (`\u001b` → `\u001B`) are caught too.

use super::error::{IntegrityKind, JournalError};
use super::event::Event;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One journaled record, as on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-27T21:46:37.123Z`. Kept as written so
    /// that the hash never depends on how a timestamp is re-formatted.
    pub ts: String,
    pub incident: String,
    #[serde(flatten)]
    pub event: Event,
    pub prev: String,
    pub hash: String,
}

impl Record {
    /// Builds a record and computes its hash.
    pub fn seal(seq: u64, ts: String, incident: &str, event: Event, prev: &str) -> Record {
        let mut record = Record {
            seq,
            ts,
            incident: incident.to_string(),
            event,
            prev: prev.to_string(),
            hash: String::new(),
        };
        let value = record.unhashed_value();
        record.hash = hash_value(prev, &value);
        record
    }

    /// The line as written, without the trailing newline.
    pub fn to_line(&self) -> String {
        let mut value = self.unhashed_value();
        value.insert("hash".into(), Value::String(self.hash.clone()));
        // Serializing a map of JSON values cannot fail.
        serde_json::to_string(&value).unwrap_or_default()
    }

    /// Parses one line without checking its hash (see [`super::verify`] for that).
    pub fn from_line(line: &str) -> Result<Record, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// The timestamp, parsed.
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.ts)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// Whether `hash` matches the content.
    pub fn hash_is_valid(&self) -> bool {
        hash_value(&self.prev, &self.unhashed_value()) == self.hash
    }

    fn unhashed_value(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("seq".into(), Value::from(self.seq));
        map.insert("ts".into(), Value::String(self.ts.clone()));
        map.insert("incident".into(), Value::String(self.incident.clone()));
        if let Ok(Value::Object(fields)) = serde_json::to_value(&self.event) {
            map.extend(fields);
        }
        map.insert("prev".into(), Value::String(self.prev.clone()));
        map
    }
}

/// Now, as the journal writes it: RFC 3339, UTC, milliseconds.
pub fn now_ts() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Hex SHA-256 of `prev` + "\n" + canonical JSON of `unhashed` (which must not hold `hash`).
pub(crate) fn hash_value(prev: &str, unhashed: &Map<String, Value>) -> String {
    let mut canon = String::with_capacity(512);
    write_canonical_map(&mut canon, unhashed);
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(canon.as_bytes());
    hex::encode(hasher.finalize())
}

/// Keys sorted recursively, no whitespace. serde_json's `preserve_order` is on in this crate,
/// so maps keep insertion order: sort explicitly.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value);
    out
}

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => write_canonical_map(out, map),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        // Scalars: serde_json's own compact encoding (cannot fail for a `Value`).
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

fn write_canonical_map(out: &mut String, map: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        write_canonical(out, v);
    }
    out.push('}');
}

/// Checks one parsed line: hash, exact encoding, shape. Sequence and chain are the caller's.
pub(crate) fn check_line(raw: &[u8], value: Value, line: usize) -> Result<Record, JournalError> {
    let Value::Object(mut map) = value else {
        return Err(JournalError::integrity(
            line,
            IntegrityKind::Malformed,
            "not a JSON object",
        ));
    };
    let encoded = serde_json::to_vec(&map).unwrap_or_default();
    let stored = match map.shift_remove("hash") {
        Some(Value::String(h)) => h,
        _ => {
            return Err(JournalError::integrity(
                line,
                IntegrityKind::Malformed,
                "no `hash` field",
            ))
        }
    };
    let Some(Value::String(prev)) = map.get("prev") else {
        return Err(JournalError::integrity(
            line,
            IntegrityKind::Malformed,
            "no `prev` field",
        ));
    };
    let computed = hash_value(prev, &map);
    if computed != stored {
        return Err(JournalError::integrity(
            line,
            IntegrityKind::Changed,
            format!("content does not match its hash (stored {stored}, computed {computed})"),
        ));
    }
    if encoded != raw {
        return Err(JournalError::integrity(
            line,
            IntegrityKind::Changed,
            "the bytes differ from what the writer wrote (same parsed content, different encoding)",
        ));
    }
    map.insert("hash".into(), Value::String(stored));
    serde_json::from_value::<Record>(Value::Object(map)).map_err(|e| {
        JournalError::integrity(
            line,
            IntegrityKind::Malformed,
            format!("not a journal record: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record::seal(
            1,
            "2026-11-27T21:46:37.123Z".into(),
            "20261127T214637Z-x-ab12",
            Event::StepStarted {
                step: "diagnose".into(),
                kind: "diagnose".into(),
            },
            GENESIS_HASH,
        )
    }

    #[test]
    fn line_has_fields_in_order_and_round_trips() {
        let r = sample();
        let line = r.to_line();
        assert!(line.starts_with(r#"{"seq":1,"ts":"2026-11-27T21:46:37.123Z","incident":"20261127T214637Z-x-ab12","event":"step_started","step":"diagnose","kind":"diagnose","prev":"000"#), "{line}");
        assert!(line.ends_with(&format!(r#""hash":"{}"}}"#, r.hash)));
        let back = Record::from_line(&line).expect("parses");
        assert_eq!(back, r);
        assert!(back.hash_is_valid());
        let value: Value = serde_json::from_str(&line).expect("json");
        assert!(check_line(line.as_bytes(), value, 1).is_ok());
    }

    #[test]
    fn hash_is_over_prev_and_sorted_json() {
        let r = sample();
        let canon = r#"{"event":"step_started","incident":"20261127T214637Z-x-ab12","kind":"diagnose","prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"step":"diagnose","ts":"2026-11-27T21:46:37.123Z"}"#;
        let expected = hex::encode(Sha256::digest(
            format!("{GENESIS_HASH}\n{canon}").as_bytes(),
        ));
        assert_eq!(r.hash, expected);
    }

    #[test]
    fn canonical_sorts_nested_keys() {
        let v: Value =
            serde_json::from_str(r#"{"b":{"z":1,"a":[{"y":2,"x":1}]},"a":"s p"}"#).expect("json");
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"s p","b":{"a":[{"x":1,"y":2}],"z":1}}"#
        );
    }

    #[test]
    fn re_encoded_escape_is_changed() {
        let r = Record::seal(
            1,
            now_ts(),
            "i",
            Event::Interrupted {
                reason: "esc \u{1b}[0m".into(),
            },
            GENESIS_HASH,
        );
        let line = r.to_line();
        assert!(line.contains("\\u001b"));
        let altered = line.replace("\\u001b", "\\u001B");
        let value: Value = serde_json::from_str(&altered).expect("json");
        let err = check_line(altered.as_bytes(), value, 3).expect_err("detected");
        assert!(matches!(
            err,
            JournalError::Integrity {
                line: 3,
                kind: IntegrityKind::Changed,
                ..
            }
        ));
    }

    #[test]
    fn ts_format_has_millis() {
        let ts = now_ts();
        assert_eq!(ts.len(), "2026-11-27T21:46:37.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
    }
}
