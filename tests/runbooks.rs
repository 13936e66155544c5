//! The runbook language through the real binary: built-ins validate, broken runbooks give
//! messages that point at file, line, column, step and field.

use crate::support::cli::{repo, Cli};

/// The ids of the runbooks shipped in `runbooks/` (the built-ins), from the files.
fn shipped_ids() -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(repo().join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    assert!(ids.len() >= 8, "{ids:?}");
    ids
}

#[test]
fn every_builtin_runbook_validates() {
    let r = Cli::new().args(["runbooks", "validate"]).run();
    r.code(0);
    // One report on stdout: a line per runbook, no problem line.
    let ok: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok    "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(ok, shipped_ids(), "{}", r.stdout);
}

#[test]
fn broken_runbooks_name_file_line_column_step_and_field() {
    let dir = repo().join("tests/fixtures/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for f in files {
        let rel = f.strip_prefix(repo()).unwrap().to_path_buf();
        let r = Cli::new()
            .args(["runbooks", "validate"])
            .arg_path(&rel)
            .run();
        r.code(2);
        let name = rel.file_stem().unwrap().to_string_lossy().to_string();
        insta::assert_snapshot!(format!("invalid-{name}"), r.stdout);
    }
}

#[test]
fn typo_in_a_field_prints_position_and_field_exit_2() {
    let r = Cli::new()
        .args([
            "runbooks",
            "validate",
            "tests/fixtures/invalid/unknown-field.yaml",
        ])
        .run();
    r.code(2)
        .stdout_has("tests/fixtures/invalid/unknown-field.yaml:10:5:")
        .stdout_has("unknown field `comfirm`");
}

#[test]
fn unknown_runbook_is_usage_error_listing_known_ones() {
    let r = Cli::new()
        .args(["runbooks", "show", "no-such-runbook"])
        .run();
    r.code(2)
        .stderr_has("unknown runbook `no-such-runbook`")
        .stderr_has("insufficient-nodes");
}

#[test]
fn show_lists_steps_as_the_operator_meets_them() {
    let r = Cli::new()
        .args(["runbooks", "show", "insufficient-nodes"])
        .run();
    r.code(0)
        .stdout_has("[confirm] approve-start")
        .stdout_has("[fix] start")
        .stdout_has("resume check:");
}

#[test]
fn list_names_every_runbook_with_its_cause() {
    let r = Cli::new().args(["--json", "runbooks", "list"]).run();
    r.code(0);
    let v = r.json();
    let ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            assert!(!x["cause"].as_str().unwrap_or("").is_empty(), "{x}");
            x["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids, shipped_ids());
}
