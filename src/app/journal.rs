//! `journal list | show | verify | export`.

use super::journal_dir;
use crate::cli::{ExportFormat, GlobalOpts, JournalCommand};
use crate::error::{Error, Result};
use crate::journal::sign::SignatureCheck;
use crate::journal::witness::WitnessCheck;
use crate::journal::{self, Event};
use crate::transport::{RemoteCommand, Transport};
use std::path::Path;

pub fn dispatch(g: &GlobalOpts, cmd: &JournalCommand) -> Result<i32> {
    let dir = journal_dir(g);
    match cmd {
        JournalCommand::List => {
            let list = journal::list(&dir);
            if g.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else if list.is_empty() {
                eprintln!("no incidents in {}", dir.display());
            } else {
                print!("{}", journal::render_list(&list));
            }
            Ok(0)
        }
        JournalCommand::Show { incident } => {
            let path = journal::resolve(&dir, incident)?;
            let records = journal::load_lenient(&path)?;
            print!("{}", journal::show(&records));
            Ok(0)
        }
        JournalCommand::Verify {
            incident,
            witnesses,
            allowed_signers,
        } => {
            let path = journal::resolve(&dir, incident)?;
            verify(g, &path, *witnesses, allowed_signers.as_deref())
        }
        JournalCommand::Sign { incident, key } => {
            let path = journal::resolve(&dir, incident)?;
            sign(&path, key.as_deref())
        }
        JournalCommand::Export { incident, format } => {
            let path = journal::resolve(&dir, incident)?;
            let (records, report) = journal::load(&path)?;
            let anchors = anchors(&path, &records);
            match format {
                ExportFormat::Markdown => {
                    crate::ui::out(&journal::export_markdown(&records, &report));
                    crate::ui::out(&format!(
                        "\n## Anchors outside this file\n\n- Signature: {}\n- Witnesses: {}\n",
                        anchors["signature"].as_str().unwrap_or_default(),
                        anchors["witnesses"].as_str().unwrap_or_default()
                    ));
                }
                ExportFormat::Json => {
                    let mut v = journal::export_json(&records, &report);
                    v["anchors"] = anchors;
                    crate::ui::out_json(&v);
                }
            }
            Ok(0)
        }
    }
}

/// `journal sign`: the head statement, signed with `key` when given.
pub fn sign(path: &Path, key: Option<&Path>) -> Result<i32> {
    match journal::sign::sign(path, key)? {
        Some(s) => {
            eprintln!(
                "signed {} with {}\n  statement: {}  signature: {}",
                path.display(),
                s.fingerprint,
                s.statement,
                s.sig_file.display()
            );
        }
        None => {
            let head = journal::sign::head_path(path);
            eprintln!(
                "wrote the head statement {}\nsign it with: ssh-keygen -Y sign -n {} -f ~/.ssh/id_ed25519 {}",
                head.display(),
                journal::sign::NAMESPACE,
                head.display()
            );
        }
    }
    Ok(0)
}

/// `journal verify`: the chain, and optionally the nodes' witnesses and the signed head.
fn verify(
    g: &GlobalOpts,
    path: &Path,
    witnesses: bool,
    allowed_signers: Option<&Path>,
) -> Result<i32> {
    let r = journal::verify_file(path).map_err(Error::from)?;
    let mut code = r.exit_code();
    let mut report = serde_json::json!({
        "ok": r.torn_tail.is_none(), "records": r.records, "head_hash": r.head_hash,
        "torn_tail": r.torn_tail.as_ref().map(|t| serde_json::json!({"line": t.line, "bytes": t.bytes})),
    });
    if !g.json {
        crate::ui::outln(&format!(
            "{}: {}",
            if r.torn_tail.is_none() { "ok" } else { "TORN" },
            r.describe()
        ));
    }
    if witnesses {
        let (lines, wcode, json) = check_witnesses(g, path)?;
        for l in &lines {
            if !g.json {
                crate::ui::outln(l);
            }
        }
        report["witnesses"] = json;
        code = code.max(wcode);
    }
    if let Some(file) = allowed_signers {
        let allowed = journal::sign::read_allowed_signers(file)?;
        let c = journal::sign::check(path, &allowed)?;
        if !g.json {
            crate::ui::outln(&format!(
                "signature: {}{}",
                if c.is_valid() { "ok, " } else { "FAILED, " },
                c.describe()
            ));
        }
        report["signature"] = serde_json::json!({"ok": c.is_valid(), "detail": c.describe()});
        if !c.is_valid() {
            code = crate::exit_codes::JOURNAL_INTEGRITY;
        }
        if matches!(c, SignatureCheck::NotSigned) {
            code = crate::exit_codes::JOURNAL_INTEGRITY;
        }
    }
    if g.json {
        crate::ui::out_json(&report);
    }
    Ok(code)
}

/// Reads every node's witness over SSH and compares it with the local chain: exit 5 when a
/// node disagrees, 1 when a node could not be read (not a pass), 0 when all agree.
fn check_witnesses(g: &GlobalOpts, path: &Path) -> Result<(Vec<String>, i32, serde_json::Value)> {
    let (records, _) = journal::load(path)?;
    let opened = records.iter().find_map(|r| match &r.event {
        Event::IncidentOpened { inventory, .. } => Some(inventory.clone()),
        _ => None,
    });
    let mut gg = g.clone();
    if gg.inventory.is_none() {
        gg.inventory = opened.map(Into::into);
    }
    let inv = super::load_inventory(&gg)?;
    let incident = records
        .first()
        .map(|r| r.incident.clone())
        .unwrap_or_default();
    let ssh = crate::ssh::SshTransport::new(false);
    let mut lines = Vec::new();
    let mut code = 0;
    let mut json = serde_json::Map::new();
    for n in &inv.nodes {
        let cmd = RemoteCommand::new(
            journal::witness::read_command(&incident, &n.name),
            n.ssh.connect_timeout + std::time::Duration::from_secs(10),
        );
        let (line, status) = match ssh.exec(n, &cmd) {
            Ok(out) if out.success() => match journal::witness::check(&records, &out.stdout.text) {
                WitnessCheck::Consistent { count, last_seq } => (
                    format!(
                        "witness {}: consistent ({count} heads, the last at seq {last_seq})",
                        n.name
                    ),
                    "consistent",
                ),
                WitnessCheck::Absent => (
                    format!("witness {}: none (the node took no part)", n.name),
                    "absent",
                ),
                WitnessCheck::Disagrees { why, .. } => {
                    code = crate::exit_codes::JOURNAL_INTEGRITY;
                    (format!("witness {}: DISAGREES: {why}", n.name), "disagrees")
                }
            },
            Ok(out) => {
                code = code.max(crate::exit_codes::PROBLEMS);
                (
                    format!(
                        "witness {}: UNVERIFIED: reading it exited {:?}: {}",
                        n.name,
                        out.exit_code,
                        out.stderr.text.trim()
                    ),
                    "unreadable",
                )
            }
            Err(e) => {
                code = code.max(crate::exit_codes::PROBLEMS);
                (
                    format!("witness {}: UNVERIFIED: unreachable: {e}", n.name),
                    "unreachable",
                )
            }
        };
        json.insert(
            n.name.clone(),
            serde_json::json!({"status": status, "detail": line}),
        );
        lines.push(line);
    }
    Ok((lines, code, serde_json::Value::Object(json)))
}

/// Signature and witness status as far as the operator's disk can tell (the keys and the
/// nodes are checked by `journal verify --allowed-signers / --witnesses`).
fn anchors(path: &Path, records: &[journal::Record]) -> serde_json::Value {
    let sig = journal::sign::sig_path(path);
    let signature = if !sig.exists() {
        "not signed (`nats-rescue journal sign`)".to_string()
    } else {
        let signed = std::fs::read_to_string(journal::sign::head_path(path)).unwrap_or_default();
        let current = journal::sign::current_statement(path).unwrap_or_default();
        if signed == current {
            format!(
                "signed head `{}` ({}); check the signer with `journal verify --allowed-signers FILE`",
                current.trim(),
                sig.display()
            )
        } else {
            format!(
                "a signature exists for `{}`, but the journal now ends at `{}`: it does not cover this journal",
                signed.trim(),
                current.trim()
            )
        }
    };
    let nodes: std::collections::BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::ActionResult { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    let witnesses = if nodes.is_empty() {
        "none (no action reached a node)".to_string()
    } else {
        format!(
            "kept on {} (each holds the heads after its results and at close); check with `journal verify --witnesses`",
            nodes.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    serde_json::json!({"signature": signature, "witnesses": witnesses})
}
