//! The incident journal (SPEC §4) through its public API: a journal cut at any byte verifies
//! or reports exactly where it broke; any flipped byte is caught; torn tails are repaired by
//! appending; the lock names its holder; secrets never reach the file; resume finds what is
//! in doubt; the post-incident report carries commands per node and the head hash.

use nats_rescue::journal::{
    export_json, export_markdown, latest_unfinished, list, replay, resolve, show, verify_bytes,
    verify_file, Event, IntegrityKind, JournalError, JournalWriter, Record, VerifyReport,
    GENESIS_HASH,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

const ID: &str = "20261127T214637Z-insufficient-nodes-a1b2";

// ------------------------------------------------------------------------------------------
// Event builders

fn opened(rehearsal: bool, vars: &[(&str, &str)]) -> Event {
    Event::IncidentOpened {
        operator: "alice@bastion".into(),
        tool_version: "0.1.0".into(),
        runbook: "insufficient-nodes".into(),
        runbook_sha256: "ab".repeat(32),
        runbook_source: "builtin".into(),
        inventory: "./inventory.yaml".into(),
        inventory_sha256: "cd".repeat(32),
        cluster: "prod-east".into(),
        rehearsal,
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        node_limit: vec![],
    }
}

fn intent(step: &str, node: &str, command: &str, idempotent: bool, check: Option<&str>) -> Event {
    Event::ActionIntent {
        action: format!("{step}@{node}"),
        step: step.into(),
        node: node.into(),
        command: command.into(),
        mutating: true,
        idempotent,
        check: check.map(String::from),
    }
}

fn result(step: &str, node: &str, code: i32, stdout: &str) -> Event {
    Event::ActionResult {
        action: format!("{step}@{node}"),
        step: step.into(),
        node: node.into(),
        exit_code: Some(code),
        timed_out: false,
        error: None,
        stdout: stdout.into(),
        stdout_bytes: stdout.len() as u64,
        stdout_sha256: nats_rescue::inventory::sha256_hex(stdout.as_bytes()),
        stderr: String::new(),
        stderr_bytes: 0,
        stderr_sha256: nats_rescue::inventory::sha256_hex(b""),
        duration_ms: 2200,
    }
}

fn decision(step: &str, node: &str, d: &str) -> Event {
    Event::Decision {
        action: format!("{step}@{node}"),
        node: node.into(),
        decision: d.into(),
        how: "tty".into(),
        detail: None,
    }
}

/// Arbitrary text, including quotes, backslashes, control characters and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 _./-]{0,24}",
        proptest::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter),
        Just("quote \" back \\ nl \n tab \t esc \u{1b}[0m é ✓".to_string()),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (text(), text()).prop_map(|(step, kind)| Event::StepStarted { step, kind }),
        (text(), text(), proptest::option::of(text()))
            .prop_map(|(step, outcome, detail)| Event::StepFinished { step, outcome, detail }),
        (text(), text(), any::<bool>(), any::<bool>()).prop_map(|(step, question, destructive, approved)| {
            Event::Confirmation { step, question, destructive, approved, how: "tty".into() }
        }),
        (text(), text(), text(), any::<bool>()).prop_map(|(step, node, command, idempotent)| {
            intent(&step, &node, &command, idempotent, None)
        }),
        (text(), text(), any::<i32>(), text()).prop_map(|(step, node, code, out)| result(&step, &node, code, &out)),
        (text(), any::<u64>(), any::<i64>()).prop_map(|(step, n, i)| Event::FactsGathered {
            step,
            summary: serde_json::json!({"n": n, "i": i, "f": 0.5, "nested": {"z": [1, "two"], "a": null}}),
        }),
        text().prop_map(|reason| Event::Interrupted { reason }),
    ]
}

/// Writes a journal with the real writer (redaction, fsync) and returns its bytes.
fn write_journal(dir: &Path, events: Vec<Event>) -> Vec<u8> {
    let mut w = JournalWriter::create(dir, ID, opened(false, &[])).expect("create");
    for ev in events {
        w.append(ev).expect("append");
    }
    std::fs::read(w.path()).expect("read")
}

/// (start, end-including-newline) of each line.
fn line_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    spans
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

fn integrity(r: Result<VerifyReport, JournalError>) -> (IntegrityKind, usize) {
    match r {
        Err(JournalError::Integrity { kind, line, .. }) => (kind, line),
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

fn hash_of_line(bytes: &[u8], spans: &[(usize, usize)], line: usize) -> String {
    if line == 0 {
        return GENESIS_HASH.to_string();
    }
    let (s, e) = spans[line - 1];
    Record::from_line(std::str::from_utf8(&bytes[s..e - 1]).expect("utf8"))
        .expect("record")
        .hash
}

/// Changes the last millisecond digit of the `ts` of `line`: still JSON, different content.
fn edit_ts(bytes: &mut [u8], spans: &[(usize, usize)], line: usize) {
    let (s, e) = spans[line - 1];
    let pos = bytes[s..e]
        .windows(6)
        .position(|w| w == b"\"ts\":\"")
        .expect("ts")
        + s
        + 6
        + 22;
    assert!(bytes[pos].is_ascii_digit());
    bytes[pos] = b'0' + (bytes[pos] - b'0' + 1) % 10;
}

// ------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Regression files would land outside tests/journal.rs; failures print the seed.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (a) Cut at ANY byte: the prefix verifies, with a torn tail exactly when the cut is
    /// mid-line; with an edited record, every cut past it names that line. Every cut around
    /// every line boundary is checked, plus random cuts inside lines (all interior offsets are
    /// alike to the verifier; checking every one of them is quadratic and slow in debug).
    #[test]
    fn cut_at_any_byte_verifies_or_names_the_line(
        events in proptest::collection::vec(event(), 1..6),
        damage in proptest::option::of(any::<prop::sample::Index>()),
        random_cuts in proptest::collection::vec(any::<prop::sample::Index>(), 24),
    ) {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut bytes = write_journal(tmp.path(), events);
        let spans = line_spans(&bytes);
        let damaged = damage.map(|i| i.index(spans.len()) + 1);
        if let Some(line) = damaged {
            edit_ts(&mut bytes, &spans, line);
        }
        let mut cuts: Vec<usize> = random_cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.extend([0, 1, bytes.len()]);
        for &(start, end) in &spans {
            cuts.extend([start + 1, end - 2, end - 1, end]);
        }
        cuts.retain(|c| *c <= bytes.len());
        for cut in cuts {
            let prefix = &bytes[..cut];
            let complete = prefix.iter().filter(|b| **b == b'\n').count();
            let mid_line = cut > 0 && bytes[cut - 1] != b'\n';
            match damaged {
                Some(line) if complete >= line => {
                    prop_assert_eq!(integrity(verify_bytes(prefix)), (IntegrityKind::Changed, line), "cut {}", cut);
                }
                _ => {
                    let report = verify_bytes(prefix).map_err(|e| TestCaseError::fail(format!("cut {cut}: {e}")))?;
                    prop_assert_eq!(report.records, complete);
                    prop_assert_eq!(report.last_seq, complete as u64);
                    prop_assert_eq!(&report.head_hash, &hash_of_line(&bytes, &spans, complete));
                    prop_assert_eq!(report.torn_tail.map(|t| t.line), mid_line.then_some(complete + 1));
                    if let Some(t) = report.torn_tail {
                        prop_assert_eq!(t.offset + t.bytes, cut);
                    }
                }
            }
        }
    }

    /// (b) Flipping any bit pattern of any single byte is detected and names that line (as
    /// an integrity error, or as a torn tail when the flip breaks the last line).
    #[test]
    fn any_flipped_byte_is_detected(
        events in proptest::collection::vec(event(), 1..6),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut bytes = write_journal(tmp.path(), events);
        let offset = at.index(bytes.len());
        let line = line_of(&bytes, offset);
        bytes[offset] ^= mask;
        match verify_bytes(&bytes) {
            Err(JournalError::Integrity { line: l, .. }) => prop_assert_eq!(l, line),
            Ok(report) => {
                prop_assert_eq!(report.torn_tail.map(|t| t.line), Some(line), "undetected flip at {}", offset);
                prop_assert_eq!(report.records, line - 1);
                prop_assert_ne!(report.exit_code(), 0);
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    /// (c) Swapping two lines is `reordered` at the first of them; deleting a line that is
    /// not the last is `missing` where the gap shows.
    #[test]
    fn reorder_and_delete_are_named(
        events in proptest::collection::vec(event(), 2..7),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let tmp = tempfile::tempdir().expect("tmp");
        let bytes = write_journal(tmp.path(), events);
        let text = String::from_utf8(bytes).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        let (i, j) = (a.index(lines.len()), b.index(lines.len()));
        if i != j {
            let (i, j) = (i.min(j), i.max(j));
            let mut swapped = lines.clone();
            swapped.swap(i, j);
            let joined = swapped.join("\n") + "\n";
            prop_assert_eq!(integrity(verify_bytes(joined.as_bytes())), (IntegrityKind::Reordered, i + 1));
        }
        let k = a.index(lines.len() - 1);
        let mut deleted = lines.clone();
        deleted.remove(k);
        let joined = deleted.join("\n") + "\n";
        prop_assert_eq!(integrity(verify_bytes(joined.as_bytes())), (IntegrityKind::Missing, k + 1));
    }

    /// (d) A crash at any byte: resume repairs by appending, the original bytes stay, and the
    /// journal verifies clean afterwards and keeps growing.
    #[test]
    fn torn_tail_is_repaired_by_appending(
        events in proptest::collection::vec(event(), 1..5),
        at in any::<prop::sample::Index>(),
    ) {
        let tmp = tempfile::tempdir().expect("tmp");
        let bytes = write_journal(tmp.path(), events);
        // Never cut into the first record: a journal must start somewhere.
        let first_end = line_spans(&bytes)[0].1;
        let cut = first_end + at.index(bytes.len() - first_end + 1);
        let path = tmp.path().join(format!("{ID}.jsonl"));
        std::fs::write(&path, &bytes[..cut]).expect("truncate");
        let complete = bytes[..cut].iter().filter(|b| **b == b'\n').count();
        let mid_line = bytes[cut - 1] != b'\n';
        // The crash cut only the newline: the record is whole and counts once terminated.
        let newline_only = mid_line && bytes[cut] == b'\n';

        let (mut w, state) = JournalWriter::open_existing(tmp.path(), ID).expect("open");
        prop_assert_eq!(state.repaired_torn_tail.map(|t| (t.line, t.bytes)), mid_line.then(|| (complete + 1, cut - (line_spans(&bytes[..cut]).last().map(|s| s.1).unwrap_or(0)))));
        w.append(Event::Interrupted { reason: "after repair".into() }).expect("append");
        drop(w);

        let after = std::fs::read(&path).expect("read");
        prop_assert!(after.starts_with(&bytes[..cut]), "history was rewritten");
        let report = verify_file(&path).expect("verifies after repair");
        prop_assert!(report.torn_tail.is_none());
        prop_assert_eq!(report.repaired.len(), usize::from(mid_line && !newline_only));
        prop_assert_eq!(
            report.records,
            complete + usize::from(newline_only) + usize::from(mid_line) + 1
        );
        prop_assert_eq!(report.exit_code(), 0);
    }
}

// ------------------------------------------------------------------------------------------
// Torn tails, concretely

#[test]
fn torn_tail_repair_leaves_the_torn_bytes_and_names_them() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut w = JournalWriter::create(tmp.path(), ID, opened(false, &[])).expect("create");
    w.append(intent(
        "stop",
        "n1",
        "systemctl stop nats-server",
        true,
        None,
    ))
    .expect("append");
    let path = w.path().to_path_buf();
    drop(w);
    let torn = br#"{"seq":3,"ts":"2026-11-27T21:47:00.000Z","incident":"#;
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(torn);
    std::fs::write(&path, &bytes).expect("write");

    let report = verify_file(&path).expect("prefix verifies");
    let t = report.torn_tail.expect("torn tail reported");
    assert_eq!((t.line, t.bytes, report.records), (3, torn.len(), 2));
    assert_eq!(report.exit_code(), 5);

    let (_w, state) = JournalWriter::open_existing(tmp.path(), ID).expect("resume");
    assert_eq!(state.repaired_torn_tail.map(|t| t.line), Some(3));
    assert_eq!(
        state.in_doubt.len(),
        1,
        "the intent before the crash is in doubt"
    );
    assert_eq!(state.torn_tail_repairs, vec![(3, torn.len())]);

    let after = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines[2].as_bytes(), torn, "torn bytes are kept");
    let repair = Record::from_line(lines[3]).expect("repair record");
    assert_eq!(
        repair.event,
        Event::TornTailRepaired {
            line: 3,
            bytes: torn.len()
        }
    );
    assert_eq!(repair.seq, 3);
    assert_eq!(repair.prev, Record::from_line(lines[1]).expect("r2").hash);
    let report = verify_file(&path).expect("verifies");
    assert_eq!(
        (report.records, report.repaired.len(), report.torn_tail),
        (3, 1, None)
    );
}

#[test]
fn crash_during_repair_is_repaired_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let w = JournalWriter::create(tmp.path(), ID, opened(false, &[])).expect("create");
    let path = w.path().to_path_buf();
    drop(w);
    // Torn bytes, the repair's newline, then a torn repair record.
    let mut bytes = std::fs::read(&path).expect("read");
    let start = bytes.len();
    bytes.extend_from_slice(b"{\"seq\":2,\"ts\"\n{\"seq\":2,\"ts\":\"2026");
    let region = bytes.len() - start;
    std::fs::write(&path, &bytes).expect("write");
    assert_eq!(
        verify_file(&path)
            .expect("ok")
            .torn_tail
            .map(|t| (t.line, t.bytes)),
        Some((2, region))
    );
    let (_w, state) = JournalWriter::open_existing(tmp.path(), ID).expect("resume");
    assert_eq!(
        state.repaired_torn_tail.map(|t| (t.line, t.bytes)),
        Some((2, region))
    );
    let report = verify_file(&path).expect("verifies");
    assert_eq!((report.records, report.torn_tail), (2, None));

    // Only a repair record naming the torn bytes may follow them.
    let text = std::fs::read_to_string(&path).expect("read");
    let forged = text.replace(
        &format!("\"bytes\":{region}"),
        &format!("\"bytes\":{}", region - 1),
    );
    assert_eq!(integrity(verify_bytes(forged.as_bytes())).1, 2);
}

// ------------------------------------------------------------------------------------------
// Lock

#[test]
fn second_writer_is_locked_out_with_the_holders_pid() {
    let tmp = tempfile::tempdir().expect("tmp");
    let w = JournalWriter::create(tmp.path(), ID, opened(false, &[])).expect("create");
    let err = JournalWriter::open_existing(tmp.path(), ID).expect_err("locked");
    let pid = std::process::id();
    match &err {
        JournalError::Locked {
            pid: Some(p),
            operator,
            since,
            ..
        } => {
            assert_eq!(*p, pid);
            assert!(operator.contains('@'));
            assert!(since.ends_with('Z'));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");
    assert_eq!(err.exit_code(), 6);
    drop(w);
    JournalWriter::open_existing(tmp.path(), ID).expect("lock released on drop");
}

// ------------------------------------------------------------------------------------------
// Redaction

#[test]
fn secrets_never_reach_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let vars = [
        ("monitor_token", "tok-9f8e7d6c"),
        ("db_password", "pw"),
        ("node", "n1"),
    ];
    let mut redactor = nats_rescue::journal::Redactor::new();
    let var_map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    redactor.add_secrets_from_vars(&var_map);
    let mut w = JournalWriter::create_with_redactor(tmp.path(), ID, opened(false, &vars), redactor)
        .expect("create");
    w.redactor_mut().add_secret("s3cr3t-from-inventory");
    w.append(intent(
        "restart",
        "n1",
        "curl -H 'Authorization: Bearer tok-9f8e7d6c' http://n1:8222/healthz && nats --password s3cr3t-from-inventory rtt && run password=hunter2",
        true,
        None,
    ))
    .expect("append");
    w.append(result(
        "restart",
        "n1",
        0,
        "config: token: tok-9f8e7d6c\nauthorization { password: hunter2 }",
    ))
    .expect("append");
    let path = w.path().to_path_buf();
    drop(w);

    let text = std::fs::read_to_string(&path).expect("read");
    for secret in ["tok-9f8e7d6c", "s3cr3t-from-inventory", "hunter2", "\"pw\""] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the journal:\n{text}"
        );
    }
    assert!(text.contains("[REDACTED]"));
    assert!(text.contains("\"node\":\"n1\""), "ordinary vars are kept");
    assert!(text.contains(&"ab".repeat(32)), "hashes are never redacted");
    assert_eq!(verify_file(&path).expect("verifies").records, 3);
}

// ------------------------------------------------------------------------------------------
// Replay

#[test]
fn resume_finds_in_doubt_actions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut w = JournalWriter::create(tmp.path(), ID, opened(false, &[])).expect("create");
    for ev in [
        intent("stop", "n1", "systemctl stop nats-server", true, None),
        result("stop", "n1", 0, ""),
        intent("stop", "n2", "systemctl stop nats-server", true, None),
        intent(
            "wipe",
            "n1",
            "rm -rf /data/jetstream/$SYS",
            false,
            Some("test ! -e /data/jetstream/$SYS"),
        ),
        intent("start", "n3", "systemctl start nats-server", true, None),
        decision("start", "n3", "receipt"),
        intent("start", "n4", "systemctl start nats-server", true, None),
        decision("start", "n4", "check-failed"),
    ] {
        w.append(ev).expect("append");
    }
    drop(w); // crash: no close

    let (_w, state) = JournalWriter::open_existing(tmp.path(), ID).expect("resume");
    let doubt: Vec<(&str, bool, Option<&str>)> = state
        .in_doubt
        .iter()
        .map(|a| (a.action.as_str(), a.idempotent, a.check.as_deref()))
        .collect();
    assert_eq!(
        doubt,
        vec![
            ("stop@n2", true, None),
            ("wipe@n1", false, Some("test ! -e /data/jetstream/$SYS"))
        ]
    );
    assert_eq!(state.in_doubt[1].command, "rm -rf /data/jetstream/$SYS");
    assert!(state.is_action_finished("stop@n1"));
    assert!(state.is_action_finished("start@n3"));
    assert!(!state.is_action_finished("start@n4"));
    assert_eq!(state.status(), "open");
    assert_eq!(
        state.opened.as_ref().map(|o| o.runbook.as_str()),
        Some("insufficient-nodes")
    );
    assert_eq!(state.last_seq, 9);
}

#[test]
fn resume_never_repeats_a_finished_action_after_a_crash_at_any_record() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bytes = write_journal(
        tmp.path(),
        vec![
            intent("stop", "n1", "systemctl stop nats-server", true, None),
            result("stop", "n1", 0, ""),
            intent("stop", "n2", "systemctl stop nats-server", true, None),
            result("stop", "n2", 0, ""),
        ],
    );
    for (n, (_, end)) in line_spans(&bytes).into_iter().enumerate() {
        let (records, _) =
            nats_rescue::journal::verify::verify_bytes_with_records(&bytes[..end]).expect("ok");
        let state = replay(&records);
        let finished: Vec<&String> = state.finished_actions.keys().collect();
        let expected: Vec<&str> = match n + 1 {
            1 | 2 => vec![],
            3 | 4 => vec!["stop@n1"],
            _ => vec!["stop@n1", "stop@n2"],
        };
        assert_eq!(finished, expected, "after record {}", n + 1);
        assert_eq!(state.in_doubt.len(), usize::from(n + 1 == 2 || n + 1 == 4));
    }
}

// ------------------------------------------------------------------------------------------
// Reports

/// A deterministic incident (fixed timestamps), two nodes.
fn incident_records(rehearsal: bool) -> (Vec<Record>, VerifyReport) {
    let events = vec![
        opened(rehearsal, &[("grace", "30s")]),
        Event::StepStarted {
            step: "diagnose".into(),
            kind: "diagnose".into(),
        },
        Event::Finding {
            step: "diagnose".into(),
            cause: "insufficient-nodes".into(),
            confidence: "high".into(),
            score: None,
            summary: "2 of 3 servers are down; quorum needs 2".into(),
            evidence: vec!["n2: nats-server is not running (service status exit 3)".into()],
        },
        Event::StepFinished {
            step: "diagnose".into(),
            outcome: "ok".into(),
            detail: None,
        },
        Event::Confirmation {
            step: "start-missing".into(),
            question: "Start nats-server on n2?".into(),
            destructive: false,
            approved: true,
            how: "tty".into(),
        },
        intent(
            "start-missing",
            "n2",
            "sudo -n systemctl start nats-server",
            true,
            None,
        ),
        result("start-missing", "n2", 0, "started\n"),
        Event::BackupMade {
            step: "backup".into(),
            node: "n1".into(),
            path: "/var/backups/nats-rescue/n1-jetstream.tgz".into(),
            size: 1_048_576,
            sha256: "ef".repeat(32),
            source: "/data/jetstream".into(),
        },
        intent(
            "verify",
            "n1",
            "curl -fsS http://127.0.0.1:8222/healthz",
            true,
            None,
        ),
        result("verify", "n1", 0, "{\"status\":\"ok\"}"),
        Event::IncidentClosed {
            outcome: "recovered".into(),
            detail: None,
        },
    ];
    let mut prev = GENESIS_HASH.to_string();
    let mut text = String::new();
    for (i, ev) in events.into_iter().enumerate() {
        let ts = format!("2026-11-27T21:46:{:02}.{:03}Z", 37 + i, i * 7);
        let r = Record::seal(i as u64 + 1, ts, ID, ev, &prev);
        prev = r.hash.clone();
        text.push_str(&r.to_line());
        text.push('\n');
    }
    nats_rescue::journal::verify::verify_bytes_with_records(text.as_bytes()).expect("verifies")
}

#[test]
fn markdown_report_has_commands_per_node_and_head_hash() {
    let (records, report) = incident_records(false);
    let md = export_markdown(&records, &report);
    assert!(md.starts_with(&format!("# Incident {ID}\n")), "{md}");
    assert!(!md.contains("REHEARSAL"));
    for needle in [
        "| Cluster | prod-east |",
        "| Operator | alice@bastion |",
        "| Outcome | **recovered** |",
        "| Duration | 10.1 s |",
        "**insufficient-nodes** (high confidence",
        "n2: nats-server is not running",
        "Start nats-server on n2?",
        "### n2",
        "### n1",
        "```sh\nsudo -n systemctl start nats-server\n```",
        "```sh\ncurl -fsS http://127.0.0.1:8222/healthz\n```",
        "exit 0, 2.2 s",
        "```text\n{\"status\":\"ok\"}\n```",
        "/var/backups/nats-rescue/n1-jetstream.tgz",
        "1.0 MiB",
        &"ef".repeat(32),
        &format!("Head hash: `{}`", report.head_hash),
        &format!("nats-rescue journal verify {ID}"),
    ] {
        assert!(md.contains(needle), "missing {needle:?} in:\n{md}");
    }
    // Commands sit under their node's heading.
    let n2 = md.find("### n2").expect("n2");
    let n1 = md.find("### n1").expect("n1");
    let start = md.find("systemctl start nats-server").expect("cmd");
    let curl = md.find("curl -fsS").expect("cmd");
    assert!(n2 < start && start < n1 && n1 < curl);

    let json = export_json(&records, &report);
    assert_eq!(json["incident"], ID);
    assert_eq!(json["summary"]["outcome"], "recovered");
    assert_eq!(json["nodes"][0]["node"], "n2");
    assert_eq!(
        json["nodes"][0]["actions"][0]["command"],
        "sudo -n systemctl start nats-server"
    );
    assert_eq!(json["nodes"][0]["actions"][0]["result"]["exit_code"], 0);
    assert_eq!(json["backups"][0]["size"], 1_048_576);
    assert_eq!(json["integrity"]["head_hash"], report.head_hash.as_str());
}

#[test]
fn rehearsals_are_marked() {
    let (records, report) = incident_records(true);
    let md = export_markdown(&records, &report);
    assert!(
        md.starts_with(&format!("# Incident {ID} [REHEARSAL]")),
        "{md}"
    );
    let timeline = show(&records);
    assert!(
        timeline
            .lines()
            .next()
            .expect("header")
            .contains("[REHEARSAL]"),
        "{timeline}"
    );
    let intent_line = timeline
        .lines()
        .find(|l| l.contains("action_intent"))
        .expect("intent");
    assert!(intent_line.contains("[REHEARSAL]"), "{intent_line}");
}

#[test]
fn show_is_a_timeline() {
    let (records, _) = incident_records(false);
    let timeline = show(&records);
    assert!(timeline.contains("status    recovered"), "{timeline}");
    let result_line = timeline
        .lines()
        .find(|l| l.contains("action_result"))
        .expect("result");
    assert!(
        result_line.contains("start-missing") && result_line.contains("n2"),
        "{result_line}"
    );
    assert!(
        result_line.contains("exit 0") && result_line.contains("2.2 s"),
        "{result_line}"
    );
    assert!(
        timeline.contains("+6.042s"),
        "offsets from the first record:\n{timeline}"
    );
    assert!(timeline.contains("$ sudo -n systemctl start nats-server"));
}

#[test]
fn list_resolve_and_latest_unfinished() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let old = "20261101T000000Z-insufficient-nodes-0001";
    let new = "20261102T000000Z-reset-option-a-0002";
    let done = "20261103T000000Z-insufficient-nodes-0003";
    let mut w = JournalWriter::create(dir, old, opened(false, &[])).expect("old");
    w.append(Event::Interrupted {
        reason: "ctrl-c".into(),
    })
    .expect("append");
    drop(w);
    drop(JournalWriter::create(dir, new, opened(false, &[])).expect("new"));
    let mut w = JournalWriter::create(dir, done, opened(false, &[])).expect("done");
    w.append(Event::IncidentClosed {
        outcome: "recovered".into(),
        detail: None,
    })
    .expect("close");
    drop(w);

    let incidents = list(dir);
    let ids: Vec<&str> = incidents.iter().map(|i| i.id.as_str()).collect();
    // Same-second starts: newest id first.
    assert_eq!(ids.len(), 3);
    let by_id = |id: &str| {
        incidents
            .iter()
            .find(|i| i.id == id)
            .expect("listed")
            .clone()
    };
    assert_eq!(by_id(old).outcome, "interrupted");
    assert_eq!(by_id(new).outcome, "open");
    assert_eq!(by_id(done).outcome, "recovered");
    assert_eq!(by_id(done).operator, "alice@bastion");
    assert_eq!(by_id(done).records, 2);
    assert_eq!(by_id(done).integrity, "ok");

    assert_eq!(latest_unfinished(dir).as_deref(), Some(new));
    assert_eq!(
        resolve(dir, "20261101").expect("prefix"),
        dir.join(format!("{old}.jsonl"))
    );
    let unknown = resolve(dir, "nope").expect_err("unknown");
    assert!(matches!(unknown, JournalError::UnknownIncident { .. }));
    assert_eq!(unknown.exit_code(), 2);

    // A damaged journal is still listed, flagged.
    let path = dir.join(format!("{done}.jsonl"));
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("recovered", "recoverex");
    std::fs::write(&path, text).expect("write");
    assert!(list(dir)
        .iter()
        .any(|i| i.id == done && i.integrity.contains("BROKEN at line 2 (changed)")));
}

#[test]
fn a_record_that_lost_only_its_newline_counts_after_repair() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut w = JournalWriter::create(tmp.path(), ID, opened(false, &[])).expect("create");
    w.append(intent(
        "stop",
        "n1",
        "systemctl stop nats-server",
        true,
        None,
    ))
    .expect("append");
    let path = w.path().to_path_buf();
    drop(w);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.pop();
    std::fs::write(&path, &bytes).expect("write");
    assert_eq!(
        verify_file(&path).expect("ok").torn_tail.map(|t| t.line),
        Some(2)
    );

    let (_w, state) = JournalWriter::open_existing(tmp.path(), ID).expect("resume");
    assert_eq!(
        state.in_doubt.len(),
        1,
        "the whole intent counts, conservatively in doubt"
    );
    assert_eq!(state.last_seq, 3);
    let report = verify_file(&path).expect("verifies");
    assert_eq!(
        (report.records, report.torn_tail, report.repaired.len()),
        (3, None, 0)
    );
}
