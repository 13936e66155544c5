//! `journal list | show | verify | export`.

use super::journal_dir;
use crate::cli::{ExportFormat, GlobalOpts, JournalCommand};
use crate::error::{Error, Result};
use crate::journal;

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
        JournalCommand::Verify { incident } => {
            let path = journal::resolve(&dir, incident)?;
            match journal::verify_file(&path) {
                Ok(r) => {
                    if g.json {
                        println!("{}", serde_json::to_string_pretty(&serde_json::json!({
                            "ok": r.torn_tail.is_none(), "records": r.records, "head_hash": r.head_hash,
                            "torn_tail": r.torn_tail.as_ref().map(|t| serde_json::json!({"line": t.line, "bytes": t.bytes})),
                        })).unwrap_or_default());
                    } else {
                        println!(
                            "{}: {}",
                            if r.torn_tail.is_none() { "ok" } else { "TORN" },
                            r.describe()
                        );
                    }
                    Ok(r.exit_code())
                }
                Err(e) => Err(Error::from(e)),
            }
        }
        JournalCommand::Export { incident, format } => {
            let path = journal::resolve(&dir, incident)?;
            let (records, report) = journal::load(&path)?;
            match format {
                ExportFormat::Markdown => print!("{}", journal::export_markdown(&records, &report)),
                ExportFormat::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&journal::export_json(&records, &report))
                            .unwrap_or_default()
                    )
                }
            }
            Ok(0)
        }
    }
}
