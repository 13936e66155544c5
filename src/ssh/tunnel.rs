//! HTTP/1.0 to a node's monitoring port through a `direct-tcpip` channel of its SSH session,
//! for monitoring ports bound to localhost or firewalled (SPEC §2, `monitor: ssh`).
//!
//! We speak HTTP on the channel ourselves instead of running a local port forward for
//! reqwest: one GET with `Connection: close` needs no listener thread, no local port and no
//! second copy loop, and the response is read with the same deadline as everything else.

use super::exec::{is_eagain, Backoff};
use std::io::{Read, Write};
use std::time::Instant;

/// Monitoring answers larger than this are refused rather than held in memory.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// Sends `GET path` on an open direct-tcpip channel and reads the whole answer.
/// Returns (status, body). The session is left in blocking mode.
pub(crate) fn get(
    session: &ssh2::Session,
    channel: &mut ssh2::Channel,
    host_header: &str,
    path_and_query: &str,
    deadline: Instant,
) -> Result<(u16, String), String> {
    let request = format!(
        "GET {path_and_query} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: nats-rescue/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    // Blocking, bounded by the session timeout the caller set.
    // No `flush()`: ssh2's `Channel::flush` is `libssh2_channel_flush_ex`, which *discards*
    // unread incoming data; `write_all` has already handed every byte to libssh2.
    channel
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    session.set_blocking(false);
    let raw = read_response(channel, deadline);
    session.set_blocking(true);
    parse_response(&raw?)
}

/// Reads until the server closes, the declared length has arrived, or the deadline.
fn read_response(channel: &mut ssh2::Channel, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut backoff = Backoff::new();
    loop {
        match channel.read(&mut buf) {
            Ok(0) => return Ok(raw),
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_BODY {
                    return Err(format!("the answer is larger than {} MB", MAX_BODY >> 20));
                }
                if response_complete(&raw) {
                    return Ok(raw);
                }
                backoff.reset();
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("connection lost while reading the answer: {e}")),
        }
        if channel.eof() {
            return Ok(raw);
        }
        if Instant::now() >= deadline {
            return Err("timed out waiting for the answer".into());
        }
        backoff.wait(deadline);
    }
}

/// Closes the channel without waiting long for the server's close.
pub(crate) fn close(session: &ssh2::Session, channel: &mut ssh2::Channel, deadline: Instant) {
    session.set_blocking(false);
    let mut backoff = Backoff::new();
    loop {
        match channel.close() {
            Err(e) if is_eagain(&e) && Instant::now() < deadline => backoff.wait(deadline),
            _ => break,
        }
    }
    session.set_blocking(true);
}

/// Head and body split at the blank line.
fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&raw[..at], &raw[at + 4..]))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// True once a response with a Content-Length has all of its body (servers may keep the
/// connection open despite `Connection: close`).
fn response_complete(raw: &[u8]) -> bool {
    let Some((head, body)) = split_head(raw) else {
        return false;
    };
    let head = String::from_utf8_lossy(head);
    if header(&head, "transfer-encoding").is_some() {
        return false;
    }
    header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| body.len() >= n)
}

/// Parses an HTTP/1.x response: status line, headers, body (chunked or not).
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    if raw.is_empty() {
        return Err("the server closed the connection without answering".into());
    }
    let (head, body) = split_head(raw).ok_or("the answer has no complete HTTP header")?;
    let head = String::from_utf8_lossy(head);
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(v), Some(Ok(code))) if v.starts_with("HTTP/") => code,
        _ => {
            return Err(format!(
                "not an HTTP answer: {:?}",
                truncate(status_line, 80)
            ))
        }
    };
    let chunked = header(&head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        match header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(n) if n <= body.len() => body[..n].to_vec(),
            Some(n) => {
                return Err(format!(
                    "the answer was cut short: {} of {n} bytes",
                    body.len()
                ))
            }
            None => body.to_vec(),
        }
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked encoding: missing chunk size")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("the chunked answer was cut short")?;
        out.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("bad chunked encoding: missing CRLF")?;
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let plain =
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).expect("plain"), (200, "{}".into()));
        assert!(response_complete(plain));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).expect("chunked"),
            (503, "{\"a\":1}".into())
        );
        let no_len = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(
            parse_response(no_len).expect("eof-delimited"),
            (404, "nope".into())
        );
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"").is_err());
        assert!(parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc").is_err());
    }
}
