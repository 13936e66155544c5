//! Appends records to an incident journal with nats-rescue's `JournalWriter` (each `append`
//! redacts, hashes, writes and fsyncs) and prints records/s.
//!
//! usage: nrb-journal-throughput [RECORDS] [DIR]   (DIR: a directory on the disk to measure;
//! default a temp dir under /tmp)

use nats_rescue::journal::{Event, JournalWriter};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let base = args.next().map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = match tempfile::Builder::new().prefix("nrb-journal-").tempdir_in(&base) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temp dir in {}: {e}", base.display());
            std::process::exit(2);
        }
    };
    let opened = Event::IncidentOpened {
        operator: "bench@localhost".into(),
        tool_version: "bench".into(),
        runbook: "insufficient-nodes".into(),
        runbook_sha256: "0".repeat(64),
        runbook_source: "builtin".into(),
        inventory: "inventory.yaml".into(),
        inventory_sha256: "0".repeat(64),
        cluster: "lab".into(),
        rehearsal: false,
        vars: Default::default(),
        node_limit: Vec::new(),
    };
    let mut w = match JournalWriter::create(dir.path(), "bench-incident", opened) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot create the journal: {e}");
            std::process::exit(2);
        }
    };
    // A realistic mix: what one node's action costs in the journal (intent + result with a
    // short output), plus step start/finish records.
    let stdout = "n2: nats-server started (pid 12345)\n".to_string();
    let t0 = Instant::now();
    let mut i = 0u64;
    while i < n {
        let ev = match i % 4 {
            0 => Event::StepStarted { step: format!("step-{i}"), kind: "fix".into() },
            1 => Event::ActionIntent {
                action: format!("start@n{i}"),
                step: "start".into(),
                node: format!("n{i}"),
                command: "/tmp/nrb-bench/nodes/n2/ctl start".into(),
                mutating: true,
                idempotent: true,
                check: Some("/tmp/nrb-bench/nodes/n2/ctl status".into()),
            },
            2 => Event::ActionResult {
                action: format!("start@n{i}"),
                step: "start".into(),
                node: format!("n{i}"),
                exit_code: Some(0),
                timed_out: false,
                error: None,
                stdout: stdout.clone(),
                stdout_bytes: stdout.len() as u64,
                stdout_sha256: "0".repeat(64),
                stderr: String::new(),
                stderr_bytes: 0,
                stderr_sha256: "0".repeat(64),
                duration_ms: 250,
            },
            _ => Event::StepFinished { step: format!("step-{i}"), outcome: "ok".into(), detail: None },
        };
        if let Err(e) = w.append(ev) {
            eprintln!("append failed at record {i}: {e}");
            std::process::exit(1);
        }
        i += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(w.path()).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "records": n,
            "seconds": secs,
            "records_per_s": n as f64 / secs,
            "bytes": bytes,
            "dir": base.display().to_string(),
        })
    );
}
