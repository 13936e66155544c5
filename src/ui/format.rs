//! Formatting shared by the journal's human renderings: durations, offsets, sizes, hashes,
//! Markdown cells, code spans and fences that survive any content.

use crate::journal::report::ResultEntry;
use std::fmt::Write as _;

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => { let _ = writeln!($dst, $($arg)*); };
}

/// `850 ms`, `2.2 s`, `3m 12s`, `1h 02m 03s`.
pub fn fmt_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!(
            "{}h {:02}m {:02}s",
            ms / 3_600_000,
            (ms / 60_000) % 60,
            (ms / 1000) % 60
        )
    }
}

/// `+12.345s`, `+3m12.345s`, `+1h02m03s` from the first record.
pub(super) fn fmt_offset(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("+{}.{:03}s", ms / 1000, ms % 1000)
    } else if ms < 3_600_000 {
        format!("+{}m{:02}.{:03}s", ms / 60_000, (ms / 1000) % 60, ms % 1000)
    } else {
        format!(
            "+{}h{:02}m{:02}s",
            ms / 3_600_000,
            (ms / 60_000) % 60,
            (ms / 1000) % 60
        )
    }
}

pub(super) fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {} ({n} bytes)", UNITS[u])
    }
}

pub(super) fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A Markdown table cell: no pipes or newlines.
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\r', "").replace('\n', " ⏎ ")
}

/// Inline code that survives backticks in the content.
pub(super) fn code(s: &str) -> String {
    let longest = longest_backtick_run(s);
    let ticks = "`".repeat(longest + 1);
    if longest > 0 {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

pub(super) fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Inline code inside a table cell.
pub(super) fn tcode(s: &str) -> String {
    cell(&code(s))
}

/// A fenced block that survives fences in the content.
pub(super) fn fence(out: &mut String, lang: &str, content: &str) {
    let ticks = "`".repeat(longest_backtick_run(content).max(2) + 1);
    w!(out, "{ticks}{lang}");
    w!(out, "{}", content.trim_end_matches('\n'));
    w!(out, "{ticks}");
}

const EXCERPT_LINES: usize = 40;
const EXCERPT_CHARS: usize = 4000;

/// The first lines of an output, and how much was left out.
pub(super) fn excerpt(text: &str, total_bytes: u64) -> (String, Option<String>) {
    let mut out: String = text
        .lines()
        .take(EXCERPT_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    if out.chars().count() > EXCERPT_CHARS {
        out = out.chars().take(EXCERPT_CHARS).collect();
    }
    let shown = out.len() as u64;
    let note = if shown + 1 < total_bytes || shown < text.trim_end().len() as u64 {
        Some(format!("excerpt: {shown} of {total_bytes} bytes"))
    } else {
        None
    };
    (out, note)
}

pub(super) fn exit_text(r: &ResultEntry) -> String {
    if let Some(e) = &r.error {
        format!("error: {e}")
    } else if r.timed_out {
        "timed out".to_string()
    } else {
        match r.exit_code {
            Some(c) => format!("exit {c}"),
            None => "no exit code".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{resolve, JournalError};

    #[test]
    fn durations_and_offsets() {
        assert_eq!(fmt_duration_ms(850), "850 ms");
        assert_eq!(fmt_duration_ms(2200), "2.2 s");
        assert_eq!(fmt_duration_ms(192_000), "3m 12s");
        assert_eq!(fmt_duration_ms(3_723_000), "1h 02m 03s");
        assert_eq!(fmt_offset(1234), "+1.234s");
        assert_eq!(fmt_offset(62_005), "+1m02.005s");
    }

    #[test]
    fn fences_survive_backticks() {
        let mut out = String::new();
        fence(&mut out, "text", "a ``` b");
        assert!(out.starts_with("````text\n"));
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(cell("a|b\nc"), "a\\|b ⏎ c");
    }

    #[test]
    fn resolve_by_id_prefix_and_path() {
        let tmp = tempfile::tempdir().expect("tmp");
        for id in [
            "20260101T000000Z-a-0001",
            "20260101T000000Z-a-0002",
            "20260202T000000Z-b-0003",
        ] {
            std::fs::write(tmp.path().join(format!("{id}.jsonl")), "").expect("write");
        }
        let d = tmp.path();
        assert!(resolve(d, "20260101T000000Z-a-0001")
            .expect("id")
            .ends_with("20260101T000000Z-a-0001.jsonl"));
        assert!(resolve(d, "20260202")
            .expect("prefix")
            .ends_with("20260202T000000Z-b-0003.jsonl"));
        let amb = resolve(d, "20260101").expect_err("ambiguous");
        assert!(amb.to_string().contains("ambiguous"));
        assert_eq!(amb.exit_code(), 2);
        assert!(matches!(
            resolve(d, "2027"),
            Err(JournalError::UnknownIncident { .. })
        ));
        let p = d.join("20260202T000000Z-b-0003.jsonl");
        assert_eq!(resolve(d, &p.to_string_lossy()).expect("path"), p);
        assert!(resolve(d, "../x").is_err());
    }
}
