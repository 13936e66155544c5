//! `lab seed`: an R3 file stream `ORDERS` (subjects `orders.>`) in account APP, filled with
//! known messages, so a rehearsal can prove that a recovery kept the data.

use super::natsclient::Client;
use super::say;
use super::server::CLIENT_PORT;
use super::state::LabState;
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

pub const STREAM: &str = "ORDERS";
const API_TIMEOUT: Duration = Duration::from_secs(5);

/// The payload of message `i` (1-based): what a recovery must preserve.
pub fn payload(i: u64) -> String {
    format!("{{\"order\":{i},\"item\":\"lab-order-{i:06}\"}}")
}

/// Connects to the first node that answers, as the APP user (`sys = false`) or the system user.
pub fn connect_any(st: &LabState, sys: bool, skip: &[String]) -> Result<Client> {
    let creds = if sys {
        (st.sys_user.as_str(), st.sys_password.as_str())
    } else {
        (st.app_user.as_str(), st.app_password.as_str())
    };
    let mut errs = Vec::new();
    // A destroyed node drops every packet: trying it would only cost the connect timeout.
    let destroyed = st.destroyed();
    for n in st
        .nodes
        .iter()
        .filter(|n| !skip.contains(&n.name) && !destroyed.contains(&n.name))
    {
        match Client::connect(&n.addr, CLIENT_PORT, Some(creds), Duration::from_secs(2)) {
            Ok(c) => return Ok(c),
            Err(e) => errs.push(format!("{}: {e}", n.name)),
        }
    }
    Err(Error::Other(format!(
        "no lab server accepted a connection ({})",
        errs.join("; ")
    )))
}

/// Retries `f` on transient failures (no leader yet, no responders, timeouts) until `timeout`.
pub fn retry<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => return Err(e),
        }
    }
}

fn stream_info(c: &mut Client, stream: &str) -> Result<Value> {
    c.js_request(
        &format!("$JS.API.STREAM.INFO.{stream}"),
        &json!({}),
        API_TIMEOUT,
    )
}

fn messages_of(info: &Value) -> Result<u64> {
    info.get("state")
        .and_then(|s| s.get("messages"))
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Other(format!("stream info without state.messages: {info}")))
}

/// Deletes `ORDERS` with every replica (nothing to do when it does not exist).
pub fn delete_stream(st: &LabState) -> Result<()> {
    retry(Duration::from_secs(30), || {
        let mut c = connect_any(st, false, &[])?;
        match c.js_request(
            &format!("$JS.API.STREAM.DELETE.{STREAM}"),
            &json!({}),
            API_TIMEOUT,
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("stream not found") => Ok(()),
            Err(e) => Err(e),
        }
    })
    .map_err(|e| Error::Other(format!("cannot delete stream {STREAM}: {e}")))?;
    say(format!("stream {STREAM} deleted"));
    Ok(())
}

/// Creates `ORDERS` (R3, or R<nodes> when smaller) and publishes `count` messages, each
/// confirmed by a JetStream ack; then checks the stream's count.
pub fn seed(st: &LabState, count: u64) -> Result<()> {
    let replicas = st.nodes.len().min(3);
    let config = json!({
        "name": STREAM, "subjects": ["orders.>"], "retention": "limits", "storage": "file",
        "num_replicas": replicas, "discard": "old",
    });
    let before = retry(Duration::from_secs(30), || {
        let mut c = connect_any(st, false, &[])?;
        let info = match c.js_request(
            &format!("$JS.API.STREAM.CREATE.{STREAM}"),
            &config,
            API_TIMEOUT,
        ) {
            Ok(v) => v,
            // Already there (seeded before): fine, append.
            Err(e) if e.to_string().contains("already in use") => stream_info(&mut c, STREAM)?,
            Err(e) => return Err(e),
        };
        messages_of(&info)
    })
    .map_err(|e| Error::Other(format!("cannot create stream {STREAM}: {e}")))?;
    say(format!(
        "stream {STREAM} (R{replicas}, file, subjects orders.>) ready with {before} message(s)"
    ));

    let mut c = connect_any(st, false, &[])?;
    // Right after an election the stream may not have a leader yet: wait for one.
    retry(Duration::from_secs(30), || {
        let info = stream_info(&mut c, STREAM)?;
        match info
            .get("cluster")
            .and_then(|c| c.get("leader"))
            .and_then(Value::as_str)
        {
            Some(l) if !l.is_empty() => Ok(()),
            _ if st.nodes.len() == 1 => Ok(()),
            _ => Err(Error::Other(format!("stream {STREAM} has no leader yet"))),
        }
    })?;
    let t0 = Instant::now();
    const BATCH: u64 = 256;
    let mut i = 1;
    while i <= count {
        let end = (i + BATCH - 1).min(count);
        let mut todo: Vec<u64> = (i..=end).collect();
        let give_up = Instant::now() + Duration::from_secs(30);
        while !todo.is_empty() {
            let mut pending = std::collections::HashMap::new();
            for &k in &todo {
                let reply = c.new_reply();
                c.publish(
                    &format!("orders.{k}"),
                    Some(&reply),
                    payload(before + k).as_bytes(),
                )?;
                pending.insert(reply, k);
            }
            let mut retry_later = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !pending.is_empty() {
                let m = c
                    .next_msg(deadline)
                    .map_err(|e| Error::Other(format!("waiting for JetStream acks: {e}")))?;
                let Some(k) = pending.remove(&m.subject) else {
                    continue;
                };
                if m.status == Some(503) {
                    // No responders: nothing was stored; send it again once the stream answers.
                    retry_later.push(k);
                    continue;
                }
                let ack = m.json()?;
                if ack.get("error").is_some() || ack.get("seq").is_none() {
                    return Err(Error::Other(format!("publish orders.{k}: {ack}")));
                }
            }
            if !retry_later.is_empty() {
                if Instant::now() > give_up {
                    return Err(Error::Other(format!(
                        "publish orders.{}: no responders (no stream leader?)",
                        retry_later[0]
                    )));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            retry_later.sort_unstable();
            todo = retry_later;
        }
        i = end + 1;
    }
    let after = retry(Duration::from_secs(10), || {
        stream_info(&mut c, STREAM).and_then(|i| messages_of(&i))
    })?;
    if after != before + count {
        return Err(Error::Problems(format!(
            "stream {STREAM} holds {after} messages, expected {}",
            before + count
        )));
    }
    println!(
        "seeded {count} message(s) into {STREAM} in {:.2}s; the stream holds {after}",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Number of messages in `stream` of the lab in `lab_dir` (asks any node, retrying for up to
/// 30 s while the stream has no leader).
pub fn stream_messages(lab_dir: &Path, stream: &str) -> Result<u64> {
    let st = LabState::load(lab_dir)?;
    retry(Duration::from_secs(30), || {
        let mut c = connect_any(&st, false, &[])?;
        messages_of(&stream_info(&mut c, stream)?)
    })
}

/// One attempt at the message count (for `lab status`: no waiting).
pub fn stream_messages_now(st: &LabState, stream: &str) -> Result<u64> {
    let mut c = connect_any(st, false, &[])?;
    messages_of(&c.js_request(
        &format!("$JS.API.STREAM.INFO.{stream}"),
        &json!({}),
        Duration::from_secs(2),
    )?)
}
