//! Runs commands on this machine with `sh -c`, with `NODE` set to the node name. For unit
//! tests of the engine, never for the real path.

use super::{
    Captured, ExecOutput, HttpResponse, RemoteCommand, Transport, TransportError, OUTPUT_CAP,
};
use crate::inventory::Node;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Local transport: `exec` runs `sh -c` here; `http_get` does plain HTTP to `host:monitor_port`.
#[derive(Debug, Default, Clone)]
pub struct LocalTransport {
    /// `HOME` of the commands (where receipts go); the process's own when `None`. Tests set
    /// it per transport instead of changing the environment of every parallel test.
    pub home: Option<std::path::PathBuf>,
}

impl LocalTransport {
    pub fn with_home(home: &std::path::Path) -> Self {
        LocalTransport {
            home: Some(home.to_path_buf()),
        }
    }
}

impl Transport for LocalTransport {
    fn exec(&self, node: &Node, cmd: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        let start = Instant::now();
        let secs = cmd.timeout.as_secs_f64().max(0.1);
        let mut command = Command::new("timeout");
        if let Some(h) = &self.home {
            command.env("HOME", h);
        }
        let mut child = command
            .arg("--kill-after=2")
            .arg(format!("{secs:.1}"))
            .arg("sh")
            .arg("-c")
            .arg(&cmd.script)
            .env("NODE", &node.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TransportError::Other(format!("cannot spawn sh: {e}")))?;
        let mut out = child
            .stdout
            .take()
            .ok_or_else(|| TransportError::Other("no stdout".into()))?;
        let mut err = child
            .stderr
            .take()
            .ok_or_else(|| TransportError::Other("no stderr".into()))?;
        let t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        let mut ob = Vec::new();
        let _ = out.read_to_end(&mut ob);
        let eb = t.join().unwrap_or_default();
        let status = child
            .wait()
            .map_err(|e| TransportError::Other(e.to_string()))?;
        let code = status.code();
        // coreutils timeout exits 124 when it had to stop the command.
        let timed_out = code == Some(124) || code == Some(137);
        Ok(ExecOutput {
            exit_code: if timed_out { None } else { code },
            stdout: Captured::from_bytes(&ob, OUTPUT_CAP),
            stderr: Captured::from_bytes(&eb, OUTPUT_CAP),
            duration: start.elapsed(),
            timed_out,
            lost: false,
        })
    }

    fn http_get(
        &self,
        node: &Node,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        let url = format!("http://{}:{}{}", node.host, node.nats.monitor_port, path);
        let client = super::http_client(node.ssh.connect_timeout.min(timeout))?;
        let resp =
            client
                .get(&url)
                .timeout(timeout)
                .send()
                .map_err(|e| TransportError::Connect {
                    addr: format!("{}:{}", node.host, node.nats.monitor_port),
                    reason: crate::transport::error_chain(&e),
                })?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .map_err(|e| TransportError::Other(e.to_string()))?;
        Ok(HttpResponse {
            status,
            body,
            via: "direct",
        })
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
