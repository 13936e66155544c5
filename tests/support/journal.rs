//! Incident journals as the tests read them, and the check that a secret reached no file
//! and no output.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The one journal (`*.jsonl`) in `dir`.
pub fn journal_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap_or_else(|| panic!("no journal in {}", dir.display()))
}

/// Every record of the journal at `path` (a torn last line is skipped).
pub fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every record of the one journal in `dir`.
pub fn records_in(dir: &Path) -> Vec<Value> {
    records(&journal_in(dir))
}

/// `secret` is in no file directly inside any of `dirs` (a directory that was never
/// created holds none) and not in `outputs`.
pub fn assert_secret_absent(secret: &str, dirs: &[PathBuf], outputs: &str) {
    assert!(!secret.is_empty(), "an empty secret proves nothing");
    for d in dirs.iter().filter(|d| d.exists()) {
        for e in std::fs::read_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            let body = std::fs::read_to_string(&p).unwrap_or_default();
            assert!(!body.contains(secret), "the secret is in {}", p.display());
        }
    }
    assert!(!outputs.contains(secret), "the secret is in the output");
}
