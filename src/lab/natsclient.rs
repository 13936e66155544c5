//! A minimal, blocking NATS client (text protocol over TCP) for the lab: connect with
//! user/password, subscribe to one inbox, publish, request/reply with a deadline. Enough for the
//! JetStream API (`$JS.API.*`) and for publishing with JetStream acks; no reconnects, no TLS.

use crate::error::{Error, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A message delivered to our inbox.
#[derive(Debug, Clone)]
pub struct Msg {
    pub subject: String,
    pub reply: Option<String>,
    /// Status code from a header block (`NATS/1.0 503` = no responders).
    pub status: Option<u16>,
    pub payload: Vec<u8>,
}

impl Msg {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.payload).map_err(|e| {
            Error::Other(format!(
                "reply on {} is not JSON ({e}): {}",
                self.subject,
                String::from_utf8_lossy(&self.payload)
            ))
        })
    }
}

/// One connection to one server.
pub struct Client {
    sock: TcpStream,
    buf: Vec<u8>,
    inbox: String,
    next_id: u64,
    /// Server INFO as received.
    pub info: Value,
}

const INBOX_SID: u64 = 1;

impl Client {
    /// Connects to `addr:port` and authenticates; fails within `timeout`.
    pub fn connect(
        addr: &str,
        port: u16,
        user: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<Client> {
        let sa: SocketAddr = format!("{addr}:{port}")
            .parse()
            .map_err(|e| Error::Other(format!("bad address {addr}:{port}: {e}")))?;
        let sock = TcpStream::connect_timeout(&sa, timeout)
            .map_err(|e| Error::Other(format!("nats {sa}: {e}")))?;
        let _ = sock.set_nodelay(true);
        let _ = sock.set_write_timeout(Some(timeout));
        let mut c = Client {
            sock,
            buf: Vec::new(),
            inbox: format!("_INBOX.{}", super::random_hex(8)),
            next_id: 0,
            info: Value::Null,
        };
        let deadline = Instant::now() + timeout;
        let line = c.read_line(deadline)?;
        let info = line
            .strip_prefix("INFO ")
            .ok_or_else(|| Error::Other(format!("nats {sa}: expected INFO, got `{line}`")))?;
        c.info = serde_json::from_str(info).unwrap_or(Value::Null);
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "tls_required": false,
            "name": "nats-rescue-lab", "lang": "rust", "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1, "headers": true, "no_responders": true,
        });
        if let Some((u, p)) = user {
            connect["user"] = Value::from(u);
            connect["pass"] = Value::from(p);
        }
        c.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())?;
        loop {
            let line = c.read_line(deadline)?;
            if line == "PONG" {
                break;
            } else if let Some(e) = line.strip_prefix("-ERR") {
                return Err(Error::Other(format!(
                    "nats {sa}: connect refused: {}",
                    e.trim()
                )));
            }
        }
        let sub = format!("SUB {}.* {INBOX_SID}\r\n", c.inbox);
        c.send(sub.as_bytes())?;
        Ok(c)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.sock
            .write_all(bytes)
            .map_err(|e| Error::Other(format!("nats write: {e}")))
    }

    /// Fills the buffer with at least one more read, bounded by `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Other("nats: timed out".into()));
        }
        let _ = self.sock.set_read_timeout(Some(left));
        let mut chunk = [0u8; 32768];
        match self.sock.read(&mut chunk) {
            Ok(0) => Err(Error::Other("nats: connection closed by the server".into())),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(Error::Other("nats: timed out".into()))
            }
            Err(e) => Err(Error::Other(format!("nats read: {e}"))),
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.fill(deadline)?;
        }
    }

    fn read_exact_bytes(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>> {
        while self.buf.len() < n + 2 {
            self.fill(deadline)?;
        }
        let data = self.buf[..n].to_vec();
        self.buf.drain(..n + 2);
        Ok(data)
    }

    /// Next message for our inbox; answers server PINGs on the way.
    pub fn next_msg(&mut self, deadline: Instant) -> Result<Msg> {
        loop {
            let line = self.read_line(deadline)?;
            let mut parts = line.split_whitespace();
            match parts.next() {
                Some("PING") => self.send(b"PONG\r\n")?,
                Some("PONG") | Some("+OK") | Some("INFO") | None => {}
                Some("-ERR") => return Err(Error::Other(format!("nats: server error: {line}"))),
                Some("MSG") => {
                    let f: Vec<&str> = parts.collect();
                    let (subject, reply, len) = match f.as_slice() {
                        [s, _sid, len] => (s.to_string(), None, *len),
                        [s, _sid, r, len] => (s.to_string(), Some(r.to_string()), *len),
                        _ => return Err(Error::Other(format!("nats: bad MSG line `{line}`"))),
                    };
                    let n: usize = len
                        .parse()
                        .map_err(|_| Error::Other(format!("nats: bad MSG line `{line}`")))?;
                    let payload = self.read_exact_bytes(n, deadline)?;
                    return Ok(Msg {
                        subject,
                        reply,
                        status: None,
                        payload,
                    });
                }
                Some("HMSG") => {
                    let f: Vec<&str> = parts.collect();
                    let (subject, reply, hlen, tlen) = match f.as_slice() {
                        [s, _sid, h, t] => (s.to_string(), None, *h, *t),
                        [s, _sid, r, h, t] => (s.to_string(), Some(r.to_string()), *h, *t),
                        _ => return Err(Error::Other(format!("nats: bad HMSG line `{line}`"))),
                    };
                    let bad = || Error::Other(format!("nats: bad HMSG line `{line}`"));
                    let h: usize = hlen.parse().map_err(|_| bad())?;
                    let t: usize = tlen.parse().map_err(|_| bad())?;
                    if h > t {
                        return Err(bad());
                    }
                    let all = self.read_exact_bytes(t, deadline)?;
                    let head = String::from_utf8_lossy(&all[..h]).into_owned();
                    let status = head
                        .lines()
                        .next()
                        .and_then(|l| l.strip_prefix("NATS/1.0"))
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|c| c.parse().ok());
                    return Ok(Msg {
                        subject,
                        reply,
                        status,
                        payload: all[h..].to_vec(),
                    });
                }
                Some(_) => {}
            }
        }
    }

    /// A fresh reply subject under our inbox.
    pub fn new_reply(&mut self) -> String {
        self.next_id += 1;
        format!("{}.{}", self.inbox, self.next_id)
    }

    /// Sends PUB (not flushed to the server's processing; see `request`).
    pub fn publish(&mut self, subject: &str, reply: Option<&str>, payload: &[u8]) -> Result<()> {
        let mut frame = match reply {
            Some(r) => format!("PUB {subject} {r} {}\r\n", payload.len()).into_bytes(),
            None => format!("PUB {subject} {}\r\n", payload.len()).into_bytes(),
        };
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame)
    }

    /// Request/reply: the first answer on a fresh inbox subject, within `timeout`.
    /// "No responders" is an error.
    pub fn request(&mut self, subject: &str, payload: &[u8], timeout: Duration) -> Result<Msg> {
        let reply = self.new_reply();
        self.publish(subject, Some(&reply), payload)?;
        let deadline = Instant::now() + timeout;
        loop {
            let m = self
                .next_msg(deadline)
                .map_err(|e| Error::Other(format!("request {subject}: {e}")))?;
            if m.subject != reply {
                continue; // a late answer to an earlier request
            }
            if m.status == Some(503) {
                return Err(Error::Other(format!("request {subject}: no responders")));
            }
            return Ok(m);
        }
    }

    /// Request with a JSON body, JSON answer; a JetStream API `error` object becomes an error.
    pub fn js_request(&mut self, subject: &str, body: &Value, timeout: Duration) -> Result<Value> {
        let m = self.request(subject, body.to_string().as_bytes(), timeout)?;
        let v = m.json()?;
        if let Some(e) = v.get("error") {
            return Err(Error::Other(format!(
                "{subject}: {} (code {}, err_code {})",
                e.get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("error"),
                e.get("code").map(Value::to_string).unwrap_or_default(),
                e.get("err_code").map(Value::to_string).unwrap_or_default()
            )));
        }
        Ok(v)
    }
}
