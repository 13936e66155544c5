//! Witnesses on the nodes: whenever an action's result is journaled, and when the incident
//! closes, the journal's `seq` and head hash are appended (and synced) to a witness file on
//! the node that took part, beside its receipts. A journal cut short or rewritten on the
//! operator's disk then disagrees with what the nodes saw; `journal verify --witnesses`
//! reads them back over SSH and names the node and seq that disagree.

use super::record::Record;

/// The witness file of `node` for `incident`, in the operator's home on the node.
fn file(incident: &str, node: &str) -> String {
    format!(
        "{}/witness-{}",
        crate::engine::receipt::dir(incident),
        crate::runbook::template::quote_path_component(node)
    )
}

/// A command appending `seq hash` to the node's witness file and syncing it.
pub fn write_command(incident: &str, node: &str, seq: u64, hash: &str) -> String {
    let f = file(incident, node);
    let hash = crate::runbook::template::quote(hash);
    format!(
        "F={f}; mkdir -p \"$(dirname \"$F\")\" && printf '%s %s\\n' {seq} {hash} >> \"$F\" && sync \"$F\""
    )
}

/// A read-only command printing the node's witness file (nothing when there is none).
pub fn read_command(incident: &str, node: &str) -> String {
    let f = file(incident, node);
    format!("F={f}; if [ -f \"$F\" ]; then cat \"$F\"; fi")
}

/// `(seq, hash)` lines of a witness file; malformed lines are returned as errors.
pub fn parse(text: &str) -> Vec<Result<(u64, String), String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            match (it.next().and_then(|s| s.parse().ok()), it.next()) {
                (Some(seq), Some(h)) if h.len() == 64 => Ok((seq, h.to_string())),
                _ => Err(format!("malformed witness line `{l}`")),
            }
        })
        .collect()
}

/// What one node's witness says about the local journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessCheck {
    /// Every witnessed head is in the local chain (`count` lines, the last at `last_seq`).
    Consistent { count: usize, last_seq: u64 },
    /// The node took no part (no witness file).
    Absent,
    /// A witnessed head the local chain does not have: the journal was cut or rewritten.
    Disagrees { seq: u64, hash: String, why: String },
}

/// Compares a node's witness lines with the local records.
pub fn check(records: &[Record], witness: &str) -> WitnessCheck {
    let lines = parse(witness);
    if lines.is_empty() {
        return WitnessCheck::Absent;
    }
    let mut last = 0;
    for l in &lines {
        let (seq, hash) = match l {
            Ok(x) => x,
            Err(e) => {
                return WitnessCheck::Disagrees {
                    seq: 0,
                    hash: String::new(),
                    why: e.clone(),
                }
            }
        };
        let local = usize::try_from(*seq)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| records.get(i));
        match local {
            Some(r) if r.seq == *seq && &r.hash == hash => last = last.max(*seq),
            Some(r) => {
                return WitnessCheck::Disagrees {
                    seq: *seq,
                    hash: hash.clone(),
                    why: format!(
                    "witness seq {seq} hash {} is not in the local chain (local seq {seq} has {})",
                    &hash[..16],
                    r.hash.chars().take(16).collect::<String>()
                ),
                }
            }
            None => {
                return WitnessCheck::Disagrees {
                    seq: *seq,
                    hash: hash.clone(),
                    why: format!(
                        "witness seq {seq} hash {} is not in the local chain (it ends at seq {})",
                        &hash[..16],
                        records.len()
                    ),
                }
            }
        }
    }
    WitnessCheck::Consistent {
        count: lines.len(),
        last_seq: last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Event, Record, GENESIS_HASH};

    fn chain(n: usize) -> Vec<Record> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|i| {
                let r = Record::seal(
                    i as u64,
                    "2026-01-01T00:00:00.000Z".into(),
                    "inc",
                    Event::Interrupted {
                        reason: format!("r{i}"),
                    },
                    &prev,
                );
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    #[test]
    fn witnesses_catch_a_cut_and_a_rewrite() {
        let full = chain(5);
        let w = format!("3 {}\n5 {}\n", full[2].hash, full[4].hash);
        assert_eq!(
            check(&full, &w),
            WitnessCheck::Consistent {
                count: 2,
                last_seq: 5
            }
        );
        // Cut at a line boundary: the chain of 4 is valid, the witness of seq 5 is not in it.
        let cut = &full[..4];
        assert!(matches!(
            check(cut, &w),
            WitnessCheck::Disagrees { seq: 5, .. }
        ));
        // Rewritten from seq 3 on (every later hash recomputed): seq 3 differs.
        let mut other = chain(2);
        let mut prev = other[1].hash.clone();
        for i in 3..=5u64 {
            let r = Record::seal(
                i,
                "2026-01-01T00:00:00.000Z".into(),
                "inc",
                Event::Interrupted {
                    reason: "forged".into(),
                },
                &prev,
            );
            prev = r.hash.clone();
            other.push(r);
        }
        assert!(matches!(
            check(&other, &w),
            WitnessCheck::Disagrees { seq: 3, .. }
        ));
        assert_eq!(check(&full, ""), WitnessCheck::Absent);
    }

    #[test]
    fn write_and_read_commands_round_trip_through_sh() {
        let home = tempfile::tempdir().unwrap();
        let sh = |c: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(c)
                .env("HOME", home.path())
                .output()
                .unwrap()
        };
        let h = "a".repeat(64);
        assert!(sh(&write_command("inc-1", "n1", 7, &h)).status.success());
        assert!(sh(&write_command("inc-1", "n1", 9, &h)).status.success());
        let out = String::from_utf8(sh(&read_command("inc-1", "n1")).stdout).unwrap();
        assert_eq!(out, format!("7 {h}\n9 {h}\n"));
        assert_eq!(sh(&read_command("inc-1", "n2")).stdout, b"");
    }
}
