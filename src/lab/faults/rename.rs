//! `lab break rename NODE`: the server restarts under a new server_name (`n3` → `n3b`) with its
//! data dir kept, as a Helm `serverNamePrefix` change does to a pod that keeps its volume. The
//! Raft peer id derives from the name, so the new name joins the meta group as a new peer and
//! the old one stays in the peer set, offline (FACTS §1, §9). The inventory is rewritten with the
//! new name (an inventory node's name must equal its server_name).
//!
//! `lab heal` restores the old name and then peer-removes the new one, which no server runs
//! any more, so the peer set is back to the original servers.

use super::super::seed;
use super::super::server;
use super::super::state::{ConfigStyle, FaultRecord, LabState};
use super::super::{io_err, say};
use crate::error::{Error, Result};
use serde_json::json;
use std::time::Duration;

pub fn inject(st: &mut LabState, nodes: &[String]) -> Result<()> {
    let node = match nodes {
        [] => {
            // The last node that does not lead: the meta group keeps its leader.
            let leader = super::current_leader(st);
            st.node_names()
                .into_iter()
                .rev()
                .find(|n| Some(n) != leader.as_ref())
                .ok_or_else(|| Error::Usage("rename needs a node".into()))?
        }
        [one] => one.clone(),
        _ => {
            return Err(Error::Usage(
                "rename takes one node at a time (renaming several at once loses quorum for good on 2.12+)".into(),
            ))
        }
    };
    if st
        .faults
        .iter()
        .any(|f| matches!(f, FaultRecord::Rename { node: n, .. } if *n == node))
    {
        return Err(Error::Usage(format!(
            "{node} is renamed already; `lab heal` first"
        )));
    }
    let from = st.node(&node)?.server_name().to_string();
    let to = format!("{from}b");
    let held = super::stream_quorum::stream_servers(st, seed::STREAM)
        .map(|s| s.contains(&from))
        .unwrap_or(false);
    st.faults.push(FaultRecord::Rename {
        node: node.clone(),
        from: from.clone(),
        to: to.clone(),
    });
    st.save()?;
    set_name(st, &node, &from, &to)?;
    server::stop(st, &node)?;
    server::start(st, &node)?;
    server::write_inventory(st)?;
    println!(
        "rename: {node} restarted as server_name {to} (was {from}), data dir kept; the meta peer set keeps {from} (offline) and gains {to}. Inventory rewritten with {to}."
    );
    if held {
        // Seen in the lab: the server drops the stream's local copy at once (it is not
        // assigned to the new name). With the old name back, 2.15.1 catches up in ~5 s, while
        // 2.9.10 keeps an empty replica that only receives new messages and reports healthy.
        println!(
            "rename: {from} held a replica of {}: as {to} it deletes its local copy; after `lab heal` the replica must catch up from the others (2.9.10 does not: check its /jsz stream state).",
            seed::STREAM
        );
    }
    Ok(())
}

/// Restores server_name `from` on `node` (the server is restarted by `heal`).
pub fn undo(st: &mut LabState, node: &str, from: &str) -> Result<()> {
    let current = st.node(node)?.server_name().to_string();
    set_name(st, node, &current, from)?;
    server::write_inventory(st)?;
    say(format!(
        "{node}: server_name {from} restored (was {current})"
    ));
    Ok(())
}

/// Records the new name and writes it where the style keeps it: the config's `server_name`
/// line (classic) or the environment the ctl script exports (helm; its config reads
/// `$SERVER_NAME`).
fn set_name(st: &mut LabState, node: &str, from: &str, to: &str) -> Result<()> {
    let i = st
        .nodes
        .iter()
        .position(|n| n.name == node)
        .ok_or_else(|| Error::Other(format!("unknown lab node `{node}`")))?;
    let lab_name = st.nodes[i].name.clone();
    st.nodes[i].server_name = (to != lab_name).then(|| to.to_string());
    st.save()?;
    if st.config_style == ConfigStyle::Classic {
        let conf = st.nodes[i].config.clone();
        let text = std::fs::read_to_string(&conf)
            .map_err(|e| io_err(format!("cannot read {}", conf.display()), e))?;
        let renamed = rename_in_config(&text, from, to);
        std::fs::write(&conf, renamed)
            .map_err(|e| io_err(format!("cannot write {}", conf.display()), e))?;
    }
    server::write_ctl(st, i)
}

/// Replaces the classic config's `server_name: FROM` line.
fn rename_in_config(text: &str, from: &str, to: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim() == format!("server_name: {from}") {
                l.replace(from, to)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Peer-removes `peer` from the meta group through the system account (best effort: a peer
/// that is not a member any more is fine; anything else is reported, not fatal).
pub fn remove_peer(st: &LabState, peer: &str) {
    let r = seed::retry(Duration::from_secs(20), || {
        let mut c = seed::connect_any(st, true, &st.destroyed())?;
        match c.js_request(
            "$JS.API.SERVER.REMOVE",
            &json!({ "peer": peer }),
            Duration::from_secs(5),
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.to_string().contains("not a member") => Ok(false),
            Err(e) => Err(e),
        }
    });
    match r {
        Ok(true) => say(format!(
            "peer-removed the stale name {peer} from the meta group"
        )),
        Ok(false) => say(format!("{peer} is not in the meta group (any more)")),
        Err(e) => say(format!(
            "could not peer-remove the stale name {peer}: {e} (the meta peer set still lists it)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_server_name_line_changes() {
        let c = "# node n3\nserver_name: n3\ncluster {\n  routes: [\n    \"nats-route://n3:6222\"\n  ]\n}\n";
        let r = rename_in_config(c, "n3", "n3b");
        assert!(r.contains("server_name: n3b\n"), "{r}");
        assert!(r.contains("nats-route://n3:6222"), "{r}");
        assert!(r.contains("# node n3\n"), "{r}");
        assert_eq!(rename_in_config(&r, "n3b", "n3"), c);
    }
}
