//! Running one command on an open session: the remote wrapper that bounds it on the node,
//! and the non-blocking read loop that bounds it here.

use crate::transport::{Captured, RemoteCommand, TransportError};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::{Duration, Instant};

/// Grace the remote `timeout` gives a command between TERM and KILL.
pub(crate) const KILL_AFTER: Duration = Duration::from_secs(2);
/// How long past `cmd.timeout` we wait for the remote side before giving up on it.
pub(crate) const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// The command line sent to the node: `[sudo -n] timeout --kill-after=2s <t> sh -c '<script>'`.
///
/// Why `timeout`: closing our channel does not stop a remote process (it is not attached to
/// a terminal), so the node must enforce the bound itself. `timeout` runs the command in its
/// own process group and signals the whole group, so children die too. `sudo` goes outside,
/// so that `timeout` runs privileged and can kill what the script started.
pub(crate) fn wrap(cmd: &RemoteCommand) -> Result<String, TransportError> {
    let script = shlex::try_quote(&cmd.script).map_err(|_| {
        TransportError::Other("the command contains a NUL byte and cannot be sent".into())
    })?;
    let sudo = if cmd.sudo { "sudo -n " } else { "" };
    Ok(format!(
        "exec {sudo}timeout --kill-after={}s {} sh -c {script}",
        KILL_AFTER.as_secs(),
        timeout_arg(cmd.timeout)
    ))
}

/// `timeout`'s duration argument; fractional seconds only when needed.
fn timeout_arg(d: Duration) -> String {
    let ms = d.as_millis().max(100);
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// `sudo -n` could not run the command without a password.
pub(crate) fn sudo_needs_password(sudo: bool, exit_code: Option<i32>, stderr: &str) -> bool {
    sudo && exit_code == Some(1)
        && (stderr.contains("a password is required") || stderr.contains("no tty present"))
}

/// One output stream: the first `cap` bytes kept, all bytes counted and hashed.
pub(crate) struct Sink {
    kept: Vec<u8>,
    cap: usize,
    total: u64,
    hasher: Sha256,
}

impl Sink {
    pub(crate) fn new(cap: usize) -> Sink {
        Sink {
            kept: Vec::new(),
            cap,
            total: 0,
            hasher: Sha256::new(),
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        self.hasher.update(data);
        let room = self.cap.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..data.len().min(room)]);
    }

    pub(crate) fn finish(self) -> Captured {
        Captured {
            text: String::from_utf8_lossy(&self.kept).into_owned(),
            total_bytes: self.total,
            truncated: (self.kept.len() as u64) < self.total,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

/// Sleeps a little longer each time nothing happened, and not at all while data flows.
/// (libssh2 offers no way to wait on the socket without `unsafe` poll; 1–20 ms of latency
/// is nothing next to a network round trip.)
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(Duration::from_millis(1))
    }
    pub(crate) fn reset(&mut self) {
        self.0 = Duration::from_millis(1);
    }
    pub(crate) fn wait(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(self.0.min(left));
        self.0 = (self.0 * 2).min(Duration::from_millis(20));
    }
}

pub(crate) fn is_eagain(e: &ssh2::Error) -> bool {
    const EAGAIN: i32 = -37;
    matches!(e.code(), ssh2::ErrorCode::Session(EAGAIN))
}

/// Prefix of a `run` error that happened after the command was sent.
pub(crate) const LOST_MARK: &str = "lost: ";

/// What came back from one remote command.
pub(crate) struct Finished {
    pub stdout: Captured,
    pub stderr: Captured,
    /// `exit-status` from the server, or None (signal, or we gave up waiting).
    pub exit_code: Option<i32>,
    /// We stopped waiting at our own deadline; the session is in an unknown state.
    pub abandoned: bool,
    /// From the exec request to the channel's end.
    pub elapsed: Duration,
}

/// Starts `command` on a fresh session channel and collects its output until the channel
/// closes or `deadline` passes. The session is switched to non-blocking for the read loop
/// and back to blocking afterwards.
pub(crate) fn run(
    session: &ssh2::Session,
    channel: &mut ssh2::Channel,
    command: &str,
    deadline: Instant,
    cap: usize,
) -> Result<Finished, String> {
    let started = Instant::now();
    channel
        .exec(command)
        .map_err(|e| format!("cannot start the command: {}", e.message()))?;
    // The command gets an empty stdin, never a pipe that stays open.
    channel
        .send_eof()
        .map_err(|e| format!("cannot close the command's stdin: {}", e.message()))?;
    session.set_blocking(false);
    let result = pump(channel, deadline, cap);
    session.set_blocking(true);
    // From here on the command was sent: a failure is a lost answer, not a refusal.
    let (stdout, stderr, closed) = result.map_err(|e| format!("{LOST_MARK}{e}"))?;
    let exit_code = if closed {
        let signalled = channel
            .exit_signal()
            .map(|s| s.exit_signal.is_some())
            .unwrap_or(false);
        if signalled {
            None
        } else {
            channel.exit_status().ok()
        }
    } else {
        None
    };
    Ok(Finished {
        stdout: stdout.finish(),
        stderr: stderr.finish(),
        exit_code,
        abandoned: !closed,
        elapsed: started.elapsed(),
    })
}

/// Reads stdout and stderr in turn, each until it would block, so that neither side's
/// window can fill while we wait on the other (reading stdout to the end first deadlocks
/// once stderr passes a few MB). Returns whether the channel closed before the deadline.
fn pump(
    channel: &mut ssh2::Channel,
    deadline: Instant,
    cap: usize,
) -> Result<(Sink, Sink, bool), String> {
    let mut out = Sink::new(cap);
    let mut err = Sink::new(cap);
    let mut streams = [channel.stream(0), channel.stderr()];
    let mut buf = vec![0u8; 32 * 1024];
    let mut backoff = Backoff::new();
    loop {
        let mut progressed = false;
        for (stream, sink) in streams.iter_mut().zip([&mut out, &mut err]) {
            // Bounded per turn so that a chatty stream cannot starve the other.
            for _ in 0..32 {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        sink.push(&buf[..n]);
                        progressed = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        return Err(format!("connection lost while reading command output: {e}"))
                    }
                }
            }
        }
        if channel.eof() {
            break;
        }
        if Instant::now() >= deadline {
            return Ok((out, err, false));
        }
        if progressed {
            backoff.reset();
        } else {
            backoff.wait(deadline);
        }
    }
    // EOF came; the exit status arrives with (or just before) the close.
    loop {
        match channel.wait_close() {
            Ok(()) => return Ok((out, err, true)),
            Err(e) if is_eagain(&e) => {
                if Instant::now() >= deadline {
                    return Ok((out, err, false));
                }
                backoff.wait(deadline);
            }
            Err(e) => {
                return Err(format!(
                    "connection lost while waiting for the command to end: {}",
                    e.message()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_bounds_the_command_remotely_and_quotes_it() {
        let cmd = RemoteCommand::new("echo 'a b'; exit 3", Duration::from_millis(1500));
        assert_eq!(
            wrap(&cmd).expect("wrap"),
            r#"exec timeout --kill-after=2s 1.500s sh -c "echo 'a b'; exit 3""#
        );
        // `$` must reach the node's `sh -c` unexpanded by the login shell.
        let cmd = RemoteCommand::new("echo \"$HOME\" 'x'", Duration::from_secs(5));
        let wrapped = wrap(&cmd).expect("wrap");
        assert_eq!(
            shlex::split(&wrapped)
                .expect("splits")
                .last()
                .map(String::as_str),
            Some(cmd.script.as_str())
        );
        assert!(
            wrapped.ends_with(r#"sh -c 'echo "$HOME" '"'x'""#),
            "{wrapped}"
        );
        let mut cmd = RemoteCommand::new("id -u", Duration::from_secs(60));
        cmd.sudo = true;
        assert_eq!(
            wrap(&cmd).expect("wrap"),
            "exec sudo -n timeout --kill-after=2s 60s sh -c 'id -u'"
        );
        assert!(wrap(&RemoteCommand::new("a\0b", Duration::from_secs(1))).is_err());
    }

    #[test]
    fn sudo_password_prompt_is_recognised() {
        let msg = "sudo: a password is required\n";
        assert!(sudo_needs_password(true, Some(1), msg));
        assert!(!sudo_needs_password(false, Some(1), msg));
        assert!(!sudo_needs_password(true, Some(0), msg));
        assert!(!sudo_needs_password(true, Some(1), "permission denied"));
    }

    #[test]
    fn sink_caps_but_hashes_everything() {
        let mut s = Sink::new(4);
        s.push(b"hello ");
        s.push(b"world");
        let c = s.finish();
        assert_eq!(c, Captured::from_bytes(b"hello world", 4));
        assert!(c.truncated);
    }
}
