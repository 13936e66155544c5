//! The built-in backup action: archive a path on each node, verify the archive, and journal
//! its path, size and SHA-256 (destructive steps require it).

use super::command::{result_event, unreachable_event};
use super::fanout::fanout;
use super::receipt;
use super::{action_id, Engine, Outcome, StepResult, Stop, UiEvent};
use crate::inventory::Node;
use crate::journal::Event;
use crate::runbook::template;
use crate::runbook::{BackupSpec, Step};
use crate::transport::{ExecOutput, RemoteCommand, TransportError};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The script run on each node (shellcheck-checked in CI).
const SCRIPT: &str = include_str!("backup.sh");
/// Where archives go when the runbook names no `dest`.
pub const DEFAULT_DEST: &str = "/var/backups/nats-rescue";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// What the script reported about a good archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Archive {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub source: String,
}

impl Archive {
    /// Reads the script's `key=value` lines; None unless the archive is complete: a path, a
    /// non-zero size and a 64-hex-digit SHA-256 (anything else from the node is not trusted).
    pub(super) fn parse(out: &ExecOutput) -> Option<Archive> {
        if !out.success() {
            return None;
        }
        let kv: BTreeMap<&str, &str> = out
            .stdout
            .text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let sha = kv.get("sha256")?;
        let size: u64 = kv.get("size")?.parse().ok()?;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) || size == 0 {
            return None;
        }
        Some(Archive {
            path: (*kv.get("path")?).to_string(),
            size,
            sha256: (*sha).to_string(),
            source: kv
                .get("source")
                .map(|s| (*s).to_string())
                .unwrap_or_default(),
        })
    }
}

impl Engine<'_> {
    pub(super) fn backup(&mut self, step: &Step, b: &BackupSpec, targets: Vec<Node>) -> StepResult {
        let id = step.id.as_str();
        self.reset_capture(id);
        let mut work = Vec::new();
        for n in &targets {
            let action = action_id(id, &n.name);
            let ctx = self.node_ctx(n, None);
            let src = b
                .path
                .render(&ctx)
                .map_err(|e| self.runbook_error(id, "`backup.path`", b.path.source(), &e))?;
            let dest = match &b.dest {
                Some(d) => d
                    .render(&ctx)
                    .map_err(|e| self.runbook_error(id, "`backup.dest`", d.source(), &e))?,
                None => DEFAULT_DEST.into(),
            };
            let name = template::quote(&format!(
                "{}-{}.tar.gz",
                self.cfg.incident,
                template::quote_path_component(&n.name)
            ));
            let script = format!("set -- {src} {dest} {name}\n{SCRIPT}");
            if self.cfg.rehearsal {
                self.ui(UiEvent::Command {
                    node: n.name.clone(),
                    command: format!("archive {src} into {dest} (tar.gz, verified)"),
                    mutating: true,
                    rehearsal: true,
                });
                self.journal(Event::ActionRehearsed {
                    action,
                    step: id.into(),
                    node: n.name.clone(),
                    command: script,
                })?;
                continue;
            }
            if self.prior.finished.contains(&action)
                && self.backups.contains(&(id.to_string(), n.name.clone()))
            {
                self.note(format!(
                    "{}: backup already made in this incident (journal)",
                    n.name
                ));
                continue;
            }
            work.push((n.clone(), action, script, format!("{src} → {dest}")));
        }
        if self.cfg.rehearsal || work.is_empty() {
            return Ok(());
        }
        for (n, action, script, what) in &work {
            self.journal(Event::ActionIntent {
                action: action.clone(),
                step: id.into(),
                node: n.name.clone(),
                command: script.clone(),
                mutating: true,
                idempotent: true,
                check: None,
            })?;
            self.ui(UiEvent::Command {
                node: n.name.clone(),
                command: format!("archive {what} (verified tar.gz, SHA-256 journaled)"),
                mutating: true,
                rehearsal: false,
            });
        }
        let incident = self.cfg.incident.clone();
        let transport = self.transport.clone();
        let timeout = b.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let sudo = b.privileged;
        let jobs: Vec<Node> = work.iter().map(|w| w.0.clone()).collect();
        let scripts: Arc<BTreeMap<String, (String, String)>> = Arc::new(
            work.into_iter()
                .map(|(n, a, s, _)| (n.name.clone(), (a, s)))
                .collect(),
        );
        let s2 = scripts.clone();
        let mut results = Vec::new();
        fanout(
            &jobs,
            self.cfg.concurrency,
            move |node| {
                let start = std::time::Instant::now();
                let Some((action, script)) = s2.get(&node.name) else {
                    return (
                        Err(TransportError::Other("internal: no work".into())),
                        start.elapsed(),
                    );
                };
                let cmd = RemoteCommand {
                    script: receipt::wrap(&incident, action, script),
                    timeout,
                    sudo: sudo && node.ssh.sudo,
                };
                (transport.exec(node, &cmd), start.elapsed())
            },
            |_, node, r| results.push((node.name.clone(), r)),
        );
        let mut failures = Vec::new();
        for (name, (r, d)) in results {
            let action = scripts.get(&name).map(|x| x.0.clone()).unwrap_or_default();
            let why = match r {
                Ok(out) => {
                    self.journal(result_event(&action, id, &name, &out))?;
                    if let Some(a) = Archive::parse(&out) {
                        self.journal(Event::BackupMade {
                            step: id.into(),
                            node: name.clone(),
                            path: a.path.clone(),
                            size: a.size,
                            sha256: a.sha256.clone(),
                            source: a.source.clone(),
                        })?;
                        self.backups.insert((id.to_string(), name.clone()));
                        self.capture(
                            id,
                            &name,
                            json!({"ok": true, "path": a.path, "size": a.size, "sha256": a.sha256}),
                        );
                        continue;
                    }
                    if out.stderr.text.trim().is_empty() {
                        format!("exit {:?}", out.exit_code)
                    } else {
                        out.stderr.text.trim().to_string()
                    }
                }
                Err(e) => {
                    self.journal(unreachable_event(&action, id, &name, &e, d))?;
                    e.to_string()
                }
            };
            self.ui(UiEvent::Bad(format!("{name}: backup failed: {why}")));
            self.capture(id, &name, json!({"ok": false, "error": why}));
            failures.push(name);
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Stop(Outcome::Failed(format!(
                "backup `{id}` failed on {}",
                failures.join(", ")
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Captured;

    fn out(stdout: &str) -> ExecOutput {
        ExecOutput {
            exit_code: Some(0),
            stdout: Captured::from_bytes(stdout.as_bytes(), 1 << 16),
            stderr: Captured::default(),
            duration: Duration::ZERO,
            timed_out: false,
            lost: false,
        }
    }

    #[test]
    fn a_complete_archive_is_read() {
        let sha = "a".repeat(64);
        let a = Archive::parse(&out(&format!(
            "path=/b/x.tar.gz\nsize=42\nsha256={sha}\nsource=/data\n"
        )))
        .unwrap();
        assert_eq!(a.size, 42);
        assert_eq!(a.sha256, sha);
        assert_eq!(a.source, "/data");
    }

    /// Regression: 64 bytes of non-ASCII output as the checksum used to reach a display
    /// slice `&sha[..12]` and panic mid-incident.
    #[test]
    fn non_hex_or_non_ascii_checksums_are_refused_not_a_panic() {
        // 64 bytes, not hex, and byte 12 is inside a character.
        let weird = format!("a{}b", "é".repeat(31));
        assert_eq!(weird.len(), 64);
        assert!(!weird.is_char_boundary(12));
        assert!(Archive::parse(&out(&format!("path=/b\nsize=1\nsha256={weird}\n"))).is_none());
        assert!(Archive::parse(&out("path=/b\nsize=0\nsha256=ff\n")).is_none());
        assert!(Archive::parse(&out(&format!(
            "path=/b\nsize=9\nsha256={}\n",
            "g".repeat(64)
        )))
        .is_none());
    }
}
