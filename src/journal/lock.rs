//! The incident lock: one running nats-rescue per incident.
//!
//! An advisory exclusive lock (`flock` through fs4, the maintained continuation of fs2) on `<dir>/<incident>.lock`. The file holds
//! who holds it, so that the second process can say so. The OS drops the lock when the holder
//! exits, even on a crash: there are no stale locks. The file is never deleted (deleting a
//! lock file lets two processes lock two different inodes); it is emptied on release.

use super::error::JournalError;
use fs4::FileExt;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What the lock file says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    /// `user@host`.
    pub operator: String,
    /// RFC 3339 UTC.
    pub since: String,
}

/// A held incident lock; released on drop.
#[derive(Debug)]
pub struct IncidentLock {
    file: File,
    path: PathBuf,
}

impl IncidentLock {
    /// Takes the lock or fails with [`JournalError::Locked`] naming the holder.
    pub fn acquire(dir: &Path, incident: &str) -> Result<IncidentLock, JournalError> {
        let path = dir.join(format!("{incident}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| JournalError::io(format!("opening lock {}", path.display()), e))?;
        if let Err(e) = FileExt::try_lock(&file) {
            if let fs4::TryLockError::Error(e) = e {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    return Err(JournalError::io(format!("locking {}", path.display()), e));
                }
            }
            let info = read_holder(&mut file);
            return Err(JournalError::Locked {
                incident: incident.to_string(),
                pid: info.as_ref().map(|i| i.pid),
                operator: info
                    .as_ref()
                    .map(|i| i.operator.clone())
                    .unwrap_or_else(|| "unknown".into()),
                since: info.map(|i| i.since).unwrap_or_else(|| "unknown".into()),
                lock_path: path,
            });
        }
        let info = LockInfo {
            pid: std::process::id(),
            operator: current_operator(),
            since: super::record::now_ts(),
        };
        let json = serde_json::to_string(&info).unwrap_or_default();
        let write = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(json.as_bytes()))
            .and_then(|_| file.sync_data());
        write.map_err(|e| JournalError::io(format!("writing lock {}", path.display()), e))?;
        Ok(IncidentLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder's info; retried briefly because the holder writes it just after locking.
fn read_holder(file: &mut File) -> Option<LockInfo> {
    for attempt in 0..5 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Ok(info) = serde_json::from_str::<LockInfo>(&text) {
                return Some(info);
            }
        }
        if attempt < 4 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    None
}

impl Drop for IncidentLock {
    fn drop(&mut self) {
        // Still holding the lock while emptying: nobody reads a half-cleared file.
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

/// `user@host` of whoever runs this process.
pub fn current_operator() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(|| {
            // Under sudo or in a bare environment USER may be unset: ask the system.
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", hostname())
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder_and_drop_releases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = IncidentLock::acquire(dir.path(), "inc").expect("first");
        let err = IncidentLock::acquire(dir.path(), "inc").expect_err("second must fail");
        match &err {
            JournalError::Locked { pid, operator, .. } => {
                assert_eq!(*pid, Some(std::process::id()));
                assert!(operator.contains('@'));
            }
            other => panic!("{other:?}"),
        }
        assert!(err
            .to_string()
            .contains(&format!("pid {}", std::process::id())));
        assert_eq!(err.exit_code(), 6);
        drop(held);
        let again = IncidentLock::acquire(dir.path(), "inc").expect("released");
        assert!(again.path().ends_with("inc.lock"));
    }
}
