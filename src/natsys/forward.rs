//! A local port forward: a listener on 127.0.0.1:0 whose every accepted connection is bridged
//! to a fresh stream from an opener (an SSH `direct-tcpip` channel to the node's client port,
//! or anything else that reads and writes), so that the NATS client can connect to
//! `127.0.0.1:<port>` ("monitoring through SSH").
//!
//! One thread drives the listener and every bridged pair with non-blocking I/O. That fits
//! libssh2, where one session must not be read and written from two threads at once (and a
//! blocking read would hold the session's lock), and it lets the opener return a stream that
//! is not `Send`: streams are created and used on the bridge thread only.
//!
//! Requirements on the stream ([`TunnelStream`]):
//! - `read`/`write` must not block for long: non-blocking (`WouldBlock`) or a short read
//!   timeout (`TimedOut`); for ssh2, open the channel and then `session.set_blocking(false)`,
//!   and let nothing else use that session while the forward runs.
//! - The bridge never calls `flush()`: ssh2's `Channel::flush` *discards unread input*
//!   (`libssh2_channel_flush_ex`), which would silently drop server data.
//! - `read` returning 0 means end of stream only if [`TunnelStream::at_eof`] agrees: libssh2
//!   in non-blocking mode returns 0 after processing a packet that carried no data.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes held per direction before the source is read again.
const CHUNK: usize = 64 * 1024;
/// Longest idle sleep of the bridge loop: the added latency when nothing moved for a while.
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(10);

/// A byte stream the bridge can drive (see the module docs for the rules).
pub trait TunnelStream: Read + Write {
    /// Called when `read` returned 0: is the remote end really closed?
    fn at_eof(&mut self) -> bool {
        true
    }
    /// Called once when the pair ends (either side closed, or the forwarder stops).
    fn shutdown(&mut self) {}
}

impl TunnelStream for TcpStream {
    fn shutdown(&mut self) {
        let _ = TcpStream::shutdown(self, std::net::Shutdown::Both);
    }
}

impl TunnelStream for ssh2::Channel {
    fn at_eof(&mut self) -> bool {
        self.eof()
    }
    /// Sends the channel close, retrying while libssh2 says "would block" (bounded).
    fn shutdown(&mut self) {
        const EAGAIN: i32 = -37;
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            match self.close() {
                Err(e)
                    if e.code() == ssh2::ErrorCode::Session(EAGAIN)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => break,
            }
        }
    }
}

/// What the forwarder has seen, for error messages and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardStatus {
    /// Local connections accepted.
    pub accepted: usize,
    /// Streams the opener returned.
    pub opened: usize,
    /// Pairs currently bridged.
    pub active: usize,
    /// The last failure (opener, accept, or a pair's I/O), newest wins.
    pub last_error: Option<String>,
}

/// A running forward; stops (and shuts its streams down) when dropped.
pub struct Forwarder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<ForwardStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Listens on 127.0.0.1:0; each accepted connection calls `open` (on the bridge thread)
    /// and is bridged to the stream it returns. If `open` fails, that connection is closed
    /// and the error is kept in [`Forwarder::status`].
    pub fn start<S, F>(open: F) -> io::Result<Forwarder>
    where
        S: TunnelStream,
        F: FnMut() -> io::Result<S> + Send + 'static,
    {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(ForwardStatus::default()));
        let (stop2, status2) = (stop.clone(), status.clone());
        let thread = std::thread::Builder::new()
            .name(format!("natsys-forward-{}", addr.port()))
            .spawn(move || run(listener, open, &stop2, &status2))?;
        Ok(Forwarder {
            addr,
            stop,
            status,
            thread: Some(thread),
        })
    }

    /// The address to connect to (`127.0.0.1:<port>`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn status(&self) -> ForwardStatus {
        lock(&self.status).clone()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(m: &Mutex<ForwardStatus>) -> std::sync::MutexGuard<'_, ForwardStatus> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run<S, F>(listener: TcpListener, mut open: F, stop: &AtomicBool, status: &Mutex<ForwardStatus>)
where
    S: TunnelStream,
    F: FnMut() -> io::Result<S>,
{
    let mut pairs: Vec<Pair<S>> = Vec::new();
    let mut scratch = vec![0u8; CHUNK];
    let mut idle = Duration::from_millis(1);
    while !stop.load(Ordering::SeqCst) {
        let mut moved = false;
        match listener.accept() {
            Ok((local, _)) => {
                moved = true;
                lock(status).accepted += 1;
                match prepare(&local).and_then(|()| open()) {
                    Ok(remote) => {
                        lock(status).opened += 1;
                        pairs.push(Pair::new(local, remote));
                    }
                    // Dropping `local` closes it: the client sees the connection end at once.
                    Err(e) => {
                        lock(status).last_error = Some(format!("cannot open the stream: {e}"))
                    }
                }
            }
            Err(e) if transient(&e) => {}
            Err(e) => lock(status).last_error = Some(format!("accept failed: {e}")),
        }
        for p in &mut pairs {
            match p.pump(&mut scratch) {
                Pump::Idle => {}
                Pump::Moved => moved = true,
                Pump::Done(err) => {
                    moved = true;
                    p.done = true;
                    if let Some(e) = err {
                        lock(status).last_error = Some(e);
                    }
                }
            }
        }
        pairs.retain_mut(|p| {
            if p.done {
                p.remote.shutdown();
            }
            !p.done
        });
        lock(status).active = pairs.len();
        if moved {
            idle = Duration::from_millis(1);
        } else {
            std::thread::sleep(idle);
            idle = (idle * 2).min(MAX_IDLE_SLEEP);
        }
    }
    for p in &mut pairs {
        p.remote.shutdown();
    }
    lock(status).active = 0;
}

fn prepare(local: &TcpStream) -> io::Result<()> {
    local.set_nonblocking(true)?;
    local.set_nodelay(true)
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Bytes read from one side and not yet written to the other.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    sent: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.sent >= self.buf.len()
    }
    fn rest(&self) -> &[u8] {
        &self.buf[self.sent..]
    }
    fn fill(&mut self, data: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(data);
        self.sent = 0;
    }
}

enum Pump {
    Idle,
    Moved,
    /// The pair is finished; `Some` when it ended on an error rather than a close.
    Done(Option<String>),
}

struct Pair<S> {
    local: TcpStream,
    remote: S,
    up: Pending,
    down: Pending,
    local_eof: bool,
    remote_eof: bool,
    done: bool,
}

impl<S: TunnelStream> Pair<S> {
    fn new(local: TcpStream, remote: S) -> Pair<S> {
        Pair {
            local,
            remote,
            up: Pending::default(),
            down: Pending::default(),
            local_eof: false,
            remote_eof: false,
            done: false,
        }
    }

    /// One round in each direction; never blocks on a well-behaved stream.
    fn pump(&mut self, scratch: &mut [u8]) -> Pump {
        let mut moved = false;
        // client → server
        if self.up.is_empty() && !self.local_eof {
            match self.local.read(scratch) {
                Ok(0) => self.local_eof = true,
                Ok(n) => {
                    self.up.fill(&scratch[..n]);
                    moved = true;
                }
                Err(e) if transient(&e) => {}
                Err(e) => return Pump::Done(Some(format!("local connection: {e}"))),
            }
        }
        if !self.up.is_empty() {
            match self.remote.write(self.up.rest()) {
                Ok(0) => return Pump::Done(Some("the stream refused data".into())),
                Ok(n) => {
                    self.up.sent += n;
                    moved = true;
                }
                Err(e) if transient(&e) => {}
                Err(e) => return Pump::Done(Some(format!("writing to the stream: {e}"))),
            }
        }
        // server → client
        if self.down.is_empty() && !self.remote_eof {
            match self.remote.read(scratch) {
                Ok(0) => self.remote_eof = self.remote.at_eof(),
                Ok(n) => {
                    self.down.fill(&scratch[..n]);
                    moved = true;
                }
                Err(e) if transient(&e) => {}
                Err(e) => return Pump::Done(Some(format!("reading from the stream: {e}"))),
            }
        }
        if !self.down.is_empty() {
            match self.local.write(self.down.rest()) {
                Ok(0) => return Pump::Done(None),
                Ok(n) => {
                    self.down.sent += n;
                    moved = true;
                }
                Err(e) if transient(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Pump::Done(None),
                Err(e) => return Pump::Done(Some(format!("local connection: {e}"))),
            }
        }
        if (self.local_eof && self.up.is_empty()) || (self.remote_eof && self.down.is_empty()) {
            return Pump::Done(None);
        }
        if moved {
            Pump::Moved
        } else {
            Pump::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// A line-echo server on 127.0.0.1; returns its port. Serves `n` connections.
    fn echo_server(n: usize) -> u16 {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for _ in 0..n {
                let (s, _) = l.accept().unwrap();
                std::thread::spawn(move || {
                    let mut w = s.try_clone().unwrap();
                    for line in BufReader::new(s).lines() {
                        let Ok(line) = line else { break };
                        if line == "quit" {
                            break;
                        }
                        writeln!(w, "echo {line}").unwrap();
                    }
                });
            }
        });
        port
    }

    #[test]
    fn bridges_tcp_both_ways_and_reopens_per_connection() {
        let port = echo_server(2);
        let fwd = Forwarder::start(move || {
            let s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .unwrap();
        for round in 0..2 {
            let c = TcpStream::connect(fwd.local_addr()).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut w = c.try_clone().unwrap();
            let mut r = BufReader::new(c);
            // Large enough to need several chunks in each direction.
            let big = "x".repeat(200_000);
            for msg in ["hello", big.as_str()] {
                writeln!(w, "{msg}").unwrap();
                let mut got = String::new();
                r.read_line(&mut got).unwrap();
                assert_eq!(got.trim_end(), format!("echo {msg}"), "round {round}");
            }
            // The server closes on "quit": the client must see EOF through the bridge.
            writeln!(w, "quit").unwrap();
            let mut rest = String::new();
            assert_eq!(r.read_line(&mut rest).unwrap(), 0);
        }
        let st = fwd.status();
        assert_eq!((st.accepted, st.opened), (2, 2), "{st:?}");
        assert_eq!(st.last_error, None);
    }

    #[test]
    fn a_blocking_stream_with_a_read_timeout_works_too() {
        let port = echo_server(1);
        let fwd = Forwarder::start(move || {
            let s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_millis(5)))?;
            Ok(s)
        })
        .unwrap();
        let c = TcpStream::connect(fwd.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        writeln!(w, "ping").unwrap();
        let mut got = String::new();
        r.read_line(&mut got).unwrap();
        assert_eq!(got, "echo ping\n");
    }

    #[test]
    fn a_failing_opener_closes_the_connection_and_says_why() {
        let fwd = Forwarder::start(|| -> io::Result<TcpStream> {
            Err(io::Error::other("channel open refused"))
        })
        .unwrap();
        let mut c = TcpStream::connect(fwd.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
        let st = fwd.status();
        assert_eq!((st.accepted, st.opened), (1, 0));
        assert!(
            st.last_error
                .as_deref()
                .unwrap()
                .contains("channel open refused"),
            "{st:?}"
        );
    }

    #[test]
    fn spurious_zero_reads_are_not_an_end_of_stream() {
        /// Returns 0 (not at EOF) every other read, like libssh2 after a non-data packet.
        struct Flaky {
            inner: TcpStream,
            flip: bool,
        }
        impl Read for Flaky {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                self.flip = !self.flip;
                if self.flip {
                    Ok(0)
                } else {
                    self.inner.read(b)
                }
            }
        }
        impl Write for Flaky {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.inner.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                panic!("the bridge must never flush (ssh2 flush discards input)")
            }
        }
        impl TunnelStream for Flaky {
            fn at_eof(&mut self) -> bool {
                false
            }
        }
        let port = echo_server(1);
        let fwd = Forwarder::start(move || {
            let s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_nonblocking(true)?;
            Ok(Flaky {
                inner: s,
                flip: false,
            })
        })
        .unwrap();
        let c = TcpStream::connect(fwd.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        for i in 0..5 {
            writeln!(w, "m{i}").unwrap();
            let mut got = String::new();
            r.read_line(&mut got).unwrap();
            assert_eq!(got, format!("echo m{i}\n"));
        }
    }
}
