//! Transient connection failures, retried where that is safe: a connection that was refused
//! or reset before anything was sent (nothing ran, so trying again cannot repeat an effect),
//! with backoff, at most `ssh.retries` more times, and never past the node's connect timeout
//! in total. A timeout is not retried (it already cost the whole bound); a lost answer is
//! never retried here (the engine settles it from the node's receipt).

use super::{ExecOutput, HttpResponse, RemoteCommand, Transport, TransportError, TunnelOpener};
use crate::inventory::Node;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Wraps a transport with retries of refused connections.
pub struct Retrying {
    inner: Arc<dyn Transport>,
    first_backoff: Duration,
}

impl Retrying {
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Retrying {
            inner,
            first_backoff: Duration::from_millis(250),
        }
    }

    fn attempt<T>(
        &self,
        node: &Node,
        mut f: impl FnMut() -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let bound = Instant::now() + node.ssh.connect_timeout;
        let mut backoff = self.first_backoff;
        let mut tries = 0;
        loop {
            match f() {
                Err(TransportError::Connect { .. })
                    if tries < node.ssh.retries && Instant::now() + backoff < bound =>
                {
                    tries += 1;
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                other => return other,
            }
        }
    }
}

impl Transport for Retrying {
    fn exec(&self, node: &Node, cmd: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        self.attempt(node, || self.inner.exec(node, cmd))
    }

    fn http_get(
        &self,
        node: &Node,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        // A refused monitoring port usually means the server is down: that is evidence, and
        // asking again only delays it. Only SSH connections are retried.
        self.inner.http_get(node, path_and_query, timeout)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn tunnel(&self, node: &Node, port: u16) -> Option<Result<TunnelOpener, TransportError>> {
        let mut supported = true;
        let r = self.attempt(node, || {
            self.inner.tunnel(node, port).unwrap_or_else(|| {
                supported = false;
                Err(TransportError::Other("no tunnel".into()))
            })
        });
        supported.then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Flaky {
        fail_first: u32,
        calls: AtomicU32,
        error: fn() -> TransportError,
    }

    impl Transport for Flaky {
        fn exec(&self, _: &Node, _: &RemoteCommand) -> Result<ExecOutput, TransportError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                return Err((self.error)());
            }
            Ok(ExecOutput::from_http(0, "ok", Duration::ZERO))
        }
        fn http_get(&self, _: &Node, _: &str, _: Duration) -> Result<HttpResponse, TransportError> {
            Err(TransportError::Other("unused".into()))
        }
        fn name(&self) -> &'static str {
            "flaky"
        }
    }

    fn node(retries: u32) -> Node {
        let text = format!(
            "cluster: c\ndefaults:\n  ssh:\n    retries: {retries}\n    connect_timeout: 5s\nnodes:\n  - {{name: n1, host: 127.0.0.1}}\n"
        );
        crate::inventory::Inventory::parse(std::path::Path::new("i"), &text)
            .unwrap()
            .nodes
            .remove(0)
    }

    fn refused() -> TransportError {
        TransportError::Connect {
            addr: "a".into(),
            reason: "refused".into(),
        }
    }

    fn lost() -> TransportError {
        TransportError::Lost {
            node: "n1".into(),
            reason: "reset".into(),
        }
    }

    fn run(fail_first: u32, retries: u32, error: fn() -> TransportError) -> (bool, u32) {
        let f = Arc::new(Flaky {
            fail_first,
            calls: AtomicU32::new(0),
            error,
        });
        let mut r = Retrying::new(f.clone());
        r.first_backoff = Duration::from_millis(1);
        let ok = r
            .exec(
                &node(retries),
                &RemoteCommand::new("true", Duration::from_secs(1)),
            )
            .is_ok();
        (ok, f.calls.load(Ordering::SeqCst))
    }

    #[test]
    fn refused_connections_are_retried_within_the_limit() {
        assert_eq!(run(2, 2, refused), (true, 3));
        assert_eq!(run(3, 2, refused), (false, 3));
        assert_eq!(run(1, 0, refused), (false, 1));
    }

    #[test]
    fn a_lost_answer_is_never_retried() {
        assert_eq!(run(1, 2, lost), (false, 1));
    }
}
