//! Receipts on the node. Every mutating command is wrapped so that the node itself records
//! the command's pid while it runs and its exit status when it ends. After a crash of
//! nats-rescue, `resume` reads the receipt instead of guessing: finished (with status),
//! still running (wait for it), or never finished (killed: decide by check/idempotent/operator).

use crate::runbook::template::quote_path_component;

/// Where receipts live on a node (per incident).
pub fn dir(incident: &str) -> String {
    format!(
        "\"${{HOME:-/tmp}}\"/.nats-rescue/receipts/{}",
        quote_path_component(incident)
    )
}

fn file_stem(action: &str) -> String {
    quote_path_component(&action.replace('@', "_at_"))
}

/// Wraps `script` so the node keeps `<action>.pid` while it runs and `<action>.rc` after.
pub fn wrap(incident: &str, action: &str, script: &str) -> String {
    let d = dir(incident);
    let a = file_stem(action);
    format!(
        "R={d}; mkdir -p \"$R\" && echo $$ > \"$R/{a}.pid\" || exit 125\n(\n{script}\n)\nrc=$?\necho $rc > \"$R/{a}.rc.tmp\" && mv \"$R/{a}.rc.tmp\" \"$R/{a}.rc\"\nexit $rc"
    )
}

/// A read-only command printing `rc=<n>`, `running` or `none`.
pub fn query(incident: &str, action: &str) -> String {
    let d = dir(incident);
    let a = file_stem(action);
    format!(
        "R={d}; if [ -f \"$R/{a}.rc\" ]; then echo \"rc=$(cat \"$R/{a}.rc\")\"; elif [ -f \"$R/{a}.pid\" ] && kill -0 \"$(cat \"$R/{a}.pid\")\" 2>/dev/null; then echo running; else echo none; fi"
    )
}

/// What a node says about an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    Finished(i32),
    Running,
    None,
}

pub fn parse(stdout: &str) -> Receipt {
    let t = stdout.trim();
    if let Some(rc) = t.strip_prefix("rc=") {
        return rc
            .trim()
            .parse()
            .map(Receipt::Finished)
            .unwrap_or(Receipt::None);
    }
    if t == "running" {
        return Receipt::Running;
    }
    Receipt::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str, home: &std::path::Path) -> (i32, String) {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("HOME", home)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }

    #[test]
    fn receipt_records_exit_status() {
        let home = tempfile::tempdir().unwrap();
        let inc = "20260101T000000Z-x-abcd";
        assert_eq!(
            parse(&sh(&query(inc, "start@n1"), home.path()).1),
            Receipt::None
        );
        let (rc, out) = sh(&wrap(inc, "start@n1", "echo hello; exit 7"), home.path());
        assert_eq!(rc, 7);
        assert_eq!(out.trim(), "hello");
        assert_eq!(
            parse(&sh(&query(inc, "start@n1"), home.path()).1),
            Receipt::Finished(7)
        );
        assert_eq!(
            parse(&sh(&query(inc, "start@n2"), home.path()).1),
            Receipt::None
        );
    }

    #[test]
    fn running_command_is_seen_as_running() {
        let home = tempfile::tempdir().unwrap();
        let inc = "inc";
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(wrap(inc, "s@n1", "sleep 5"))
            .env("HOME", home.path())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut seen = Receipt::None;
        while std::time::Instant::now() < deadline {
            seen = parse(&sh(&query(inc, "s@n1"), home.path()).1);
            if seen == Receipt::Running {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen, Receipt::Running);
        // Killed before it wrote its status: the pid is gone, no rc.
        assert_eq!(
            parse(&sh(&query(inc, "s@n1"), home.path()).1),
            Receipt::None
        );
    }
}
