//! `lab break stream-quorum`: a stream below quorum while the meta group is fine (FACTS §12.1).
//! On 5+ nodes, two of the three servers that hold R3 stream `ORDERS` (found in
//! `/jsz?accounts=true&streams=true`) are killed, never the meta leader: the meta group (quorum
//! 3 of 5) keeps its leader, the stream has none.

use super::super::monitor;
use super::super::say;
use super::super::seed::{self, STREAM};
use super::super::server;
use super::super::state::{FaultRecord, LabState};
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Smallest lab where two servers can stop and the meta group keeps quorum.
pub const MIN_NODES: usize = 5;

pub fn inject(st: &mut LabState, nodes: &[String]) -> Result<()> {
    if st.nodes.len() < MIN_NODES {
        return Err(Error::Usage(format!(
            "stream-quorum needs at least {MIN_NODES} nodes (`lab up --nodes 5`): with {} the meta group would lose its quorum too",
            st.nodes.len()
        )));
    }
    let alive: Vec<String> = st
        .node_names()
        .into_iter()
        .filter(|n| !st.destroyed().contains(n))
        .collect();
    let (leader, _) = monitor::wait_leader(st, &alive, Instant::now(), Duration::from_secs(30))
        .map_err(|e| Error::Usage(format!("stream-quorum needs a healthy cluster first: {e}")))?;
    let replicas = stream_servers(st, STREAM)?;
    if replicas.len() < 3 {
        return Err(Error::Usage(format!(
            "stream {STREAM} has {} replica(s) ({}); stream-quorum needs an R3 stream (`lab seed` makes one)",
            replicas.len(),
            replicas.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let targets: Vec<String> = if nodes.is_empty() {
        // The survivor must be a follower of the stream: a surviving stream leader keeps
        // calling itself leader for ~20 s (the lost-quorum check), a follower drops the dead
        // leader within an election timeout. The meta leader is never killed, so when it
        // holds a replica it is the survivor and must not lead the stream.
        let mut stream_leader = stream_leader(st, STREAM);
        if replicas.contains(&leader) && stream_leader.as_deref() == Some(leader.as_str()) {
            stream_leader = Some(step_down(st, STREAM, &leader)?);
        }
        let mut order: Vec<&String> = replicas.iter().filter(|r| **r != leader).collect();
        // The stream leader first, so it is among the two.
        order.sort_by_key(|r| Some(r.as_str()) != stream_leader.as_deref());
        order
            .into_iter()
            .take(2)
            .map(|r| st.node(r).map(|n| n.name.clone()))
            .collect::<Result<_>>()?
    } else {
        nodes.to_vec()
    };
    st.faults.push(FaultRecord::StreamQuorum {
        stream: STREAM.into(),
        nodes: targets.clone(),
    });
    st.save()?;
    for n in &targets {
        let out = server::ctl(st, n, "kill")?;
        say(out.trim());
    }
    println!(
        "stream-quorum: SIGKILLed {} of stream {STREAM}'s replicas {{{}}}; the meta group keeps {} of {} servers and its leader {leader}; the stream has no leader.",
        targets.join(", "),
        replicas.iter().cloned().collect::<Vec<_>>().join(", "),
        st.nodes.len() - targets.len(),
        st.nodes.len()
    );
    Ok(())
}

/// The stream's leader as the servers that hold it report it (the first that names one).
fn stream_leader(st: &LabState, stream: &str) -> Option<String> {
    st.nodes.iter().find_map(|n| {
        let j = monitor::node_json(
            st,
            &n.name,
            "/jsz?accounts=true&streams=true",
            Duration::from_secs(2),
        )
        .ok()?;
        streams_named(&j, stream).into_iter().find_map(|s| {
            s.get("cluster")?
                .get("leader")?
                .as_str()
                .filter(|l| !l.is_empty())
                .map(String::from)
        })
    })
}

/// Asks the stream's leader `from` to step down; returns the new leader.
fn step_down(st: &LabState, stream: &str, from: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let asked = seed::connect_any(st, false, &[]).and_then(|mut c| {
            c.js_request(
                &format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
                &json!({}),
                Duration::from_secs(5),
            )
        });
        let poll_until = Instant::now() + Duration::from_secs(5);
        while asked.is_ok() && Instant::now() < poll_until {
            match stream_leader(st, stream) {
                Some(l) if l != from => {
                    say(format!(
                        "stream {stream}: leader stepped down {from} -> {l}"
                    ));
                    return Ok(l);
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "stream {stream}: its leader {from} did not step down ({})",
                asked.err().map(|e| e.to_string()).unwrap_or_default()
            )));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Server names holding `stream`: its leader and replicas as any server that has it reports
/// them in `/jsz?accounts=true&streams=true`.
pub fn stream_servers(st: &LabState, stream: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut found = false;
    for n in &st.nodes {
        let Ok(j) = monitor::node_json(
            st,
            &n.name,
            "/jsz?accounts=true&streams=true",
            Duration::from_secs(2),
        ) else {
            continue;
        };
        for s in streams_named(&j, stream) {
            found = true;
            out.insert(n.server_name().to_string());
            if let Some(c) = s.get("cluster") {
                if let Some(l) = c.get("leader").and_then(Value::as_str) {
                    out.insert(l.to_string());
                }
                for r in c
                    .get("replicas")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = r.get("name").and_then(Value::as_str) {
                        out.insert(name.to_string());
                    }
                }
            }
        }
    }
    if !found {
        return Err(Error::Usage(format!(
            "no server reports stream {stream}; run `nats-rescue lab seed` first"
        )));
    }
    Ok(out)
}

/// The `stream_detail` entries named `stream` in a `/jsz?accounts=true&streams=true` answer.
pub fn streams_named<'a>(jsz: &'a Value, stream: &str) -> Vec<&'a Value> {
    jsz.get("account_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|a| {
            a.get("stream_detail")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter(|s| s.get("name").and_then(Value::as_str) == Some(stream))
        .collect()
}
