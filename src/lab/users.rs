//! `lab up --ssh-user NAME`: an unprivileged local user the operator logs in as, with NOPASSWD
//! sudo through a sudoers drop-in, and the lab's operator key in its own `authorized_keys`. The
//! servers stay root's, so controlling them or reading their store needs sudo, as on a real host.
//!
//! The user and the drop-in are recorded in lab.json before they are made; `lab down` removes a
//! user only when its passwd entry still carries the lab's comment, and the drop-in only when it
//! still starts with the lab's marker line.

use super::state::{LabState, SshUser};
use super::{io_err, run, run_out, say};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the sudoers drop-ins go (sudo ignores names with a dot, so `*.tmp` is inert).
const SUDOERS_DIR: &str = "/etc/sudoers.d";

/// A portable user name: lowercase letter or `_` first, then letters, digits, `_`, `-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok && name != "root" {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--ssh-user `{name}`: use a new user name of lowercase letters, digits, `_` or `-` \
             (the lab creates it and removes it on `lab down`)"
        )))
    }
}

/// The passwd entry's fields, when the user exists.
fn passwd_entry(name: &str) -> Option<Vec<String>> {
    let o = run_out("getent", &["passwd", name], Duration::from_secs(10)).ok()?;
    if !o.ok {
        return None;
    }
    let line = o.stdout.lines().next()?.to_string();
    Some(line.split(':').map(String::from).collect())
}

/// What `up` is about to record, or why it refuses (an existing user or home is never ours).
pub fn plan(lab: &str, name: &str) -> Result<SshUser> {
    check_name(name)?;
    let home = PathBuf::from("/home").join(name);
    if passwd_entry(name).is_some() {
        return Err(Error::Usage(format!(
            "--ssh-user {name}: that user exists already; the lab only uses a user it creates \
             (and removes on `lab down`): choose another name"
        )));
    }
    if home.exists() {
        return Err(Error::Usage(format!(
            "--ssh-user {name}: {} exists already; choose another name",
            home.display()
        )));
    }
    Ok(SshUser {
        name: name.to_string(),
        home,
        sudoers: PathBuf::from(SUDOERS_DIR).join(format!("nats-rescue-lab-{lab}")),
        comment: format!("nats-rescue lab {lab}"),
    })
}

fn sudoers_marker(st: &LabState) -> String {
    format!(
        "# nats-rescue lab `{}` ({}): removed by `nats-rescue lab down`",
        st.name,
        st.dir.display()
    )
}

/// Creates the recorded user, its `~/.ssh/authorized_keys` and its sudoers drop-in.
pub fn create(st: &LabState, operator_pub: &Path) -> Result<()> {
    let Some(u) = &st.ssh_user else {
        return Ok(());
    };
    let home = u.home.to_string_lossy();
    // `-p '*'`: no password, but not locked either (sshd without PAM refuses a locked account
    // even for key logins).
    run(
        "useradd",
        &[
            "-m",
            "-d",
            &home,
            "-s",
            "/bin/bash",
            "-c",
            &u.comment,
            "-p",
            "*",
            &u.name,
        ],
    )?;
    let ssh_dir = u.home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir)
        .map_err(|e| io_err(format!("cannot create {}", ssh_dir.display()), e))?;
    let key = std::fs::read_to_string(operator_pub)
        .map_err(|e| io_err(format!("cannot read {}", operator_pub.display()), e))?;
    let ak = ssh_dir.join("authorized_keys");
    super::server::write_private(&ak, &key, 0o600)?;
    run("chmod", &["700", &ssh_dir.to_string_lossy()])?;
    run(
        "chown",
        &[
            "-R",
            &format!("{0}:{0}", u.name),
            &ssh_dir.to_string_lossy(),
        ],
    )?;

    let text = format!(
        "{}\n{} ALL=(ALL:ALL) NOPASSWD: ALL\n",
        sudoers_marker(st),
        u.name
    );
    let tmp = u.sudoers.with_extension("tmp");
    super::server::write_private(&tmp, &text, 0o440)?;
    let check = run_out(
        "visudo",
        &["-c", "-q", "-f", &tmp.to_string_lossy()],
        Duration::from_secs(10),
    );
    match check {
        Ok(o) if o.ok => {}
        Ok(o) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Other(format!(
                "visudo refused the lab's sudoers drop-in: {}{}",
                o.stdout.trim(),
                o.stderr.trim()
            )));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    std::fs::rename(&tmp, &u.sudoers)
        .map_err(|e| io_err(format!("cannot install {}", u.sudoers.display()), e))?;
    say(format!(
        "user `{}` created ({}), NOPASSWD sudo in {}",
        u.name,
        u.home.display(),
        u.sudoers.display()
    ));
    Ok(())
}

/// Removes the recorded user (with its home) and sudoers drop-in, when they are still ours.
pub fn remove(st: &mut LabState, problems: &mut Vec<String>) {
    let Some(u) = st.ssh_user.clone() else {
        return;
    };
    let marker = sudoers_marker(st);
    for f in [u.sudoers.clone(), u.sudoers.with_extension("tmp")] {
        if let Ok(text) = std::fs::read_to_string(&f) {
            if text.lines().next() == Some(marker.as_str()) {
                if let Err(e) = std::fs::remove_file(&f) {
                    problems.push(format!("cannot remove {}: {e}", f.display()));
                }
            } else {
                problems.push(format!(
                    "{} does not carry the lab's marker; left alone",
                    f.display()
                ));
            }
        }
    }
    match passwd_entry(&u.name) {
        None => {}
        Some(fields) if fields.get(4).map(String::as_str) == Some(u.comment.as_str()) => {
            // -f: also while a session of it is still open (the user is the lab's own).
            match run_out("userdel", &["-r", "-f", &u.name], Duration::from_secs(30)) {
                // 12: the home could not be removed (reported below), the user is gone.
                Ok(o) if o.ok || o.code == Some(12) => {}
                Ok(o) => problems.push(format!(
                    "`userdel -r {}` failed: {}",
                    u.name,
                    o.stderr.trim()
                )),
                Err(e) => problems.push(e.to_string()),
            }
        }
        Some(_) => problems.push(format!(
            "user `{}` exists but is not the one the lab made (comment differs); left alone",
            u.name
        )),
    }
    if passwd_entry(&u.name).is_none() && u.home.exists() {
        // userdel -r keeps a home it did not make; only remove the one useradd made for us.
        if let Err(e) = std::fs::remove_dir_all(&u.home) {
            problems.push(format!("cannot remove {}: {e}", u.home.display()));
        }
    }
    if problems.is_empty() {
        say(format!("user `{}` and its sudoers drop-in removed", u.name));
    }
}
