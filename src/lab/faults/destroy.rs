//! `lab break destroy NODE…`: permanent loss. The server is killed, its data dir deleted, its
//! sshd stopped and every packet through its link dropped: to the cluster and to the operator the
//! host is gone. `lab heal` cannot bring the data back and leaves it so; `lab heal
//! --rebuild-destroyed` brings the host back reachable with an EMPTY data dir (a replacement
//! machine under the old name, which is only sound while the old name was not peer-removed).

use super::super::firewall;
use super::super::say;
use super::super::server;
use super::super::sshd;
use super::super::state::{FaultRecord, Host, IptablesRule, LabState};
use crate::error::{Error, Result};

pub fn inject(st: &mut LabState, nodes: &[String]) -> Result<()> {
    if nodes.is_empty() {
        return Err(Error::Usage(
            "destroy needs the node(s) to destroy, e.g. `lab break destroy n3`".into(),
        ));
    }
    let mut rules = Vec::new();
    for n in nodes {
        rules.extend(firewall::drop_all(st.node(n)?));
    }
    st.faults.push(FaultRecord::Destroy {
        nodes: nodes.to_vec(),
        rules: rules.clone(),
    });
    st.save()?;
    // Off the network first, as a machine that burns down: nothing it says afterwards counts.
    firewall::insert_recorded(st, &rules)?;
    for n in nodes {
        let out = server::ctl(st, n, "kill")?;
        say(out.trim());
        let mut problems = Vec::new();
        sshd::stop_host(st.node_mut(n)?, &mut problems);
        st.save()?;
        if let Some(p) = problems.first() {
            return Err(Error::Other(p.clone()));
        }
        let store = st.node(n)?.store_dir.clone();
        if store.exists() {
            std::fs::remove_dir_all(&store).map_err(|e| {
                super::super::io_err(format!("cannot delete {}", store.display()), e)
            })?;
        }
        say(format!("{n}: data dir {} deleted", store.display()));
    }
    println!(
        "destroy: {} killed, data deleted, sshd stopped, all traffic dropped (permanent loss). `lab heal` leaves {} destroyed; `lab heal --rebuild-destroyed` brings the host(s) back with an empty data dir.",
        nodes.join(", "),
        if nodes.len() == 1 { "it" } else { "them" }
    );
    Ok(())
}

/// The host comes back: traffic allowed, sshd running, an empty data dir (the server itself is
/// started by `heal` with the others).
pub fn rebuild(st: &mut LabState, nodes: &[String], rules: &[IptablesRule]) -> Result<()> {
    firewall::remove_recorded(st, rules)?;
    for n in nodes {
        let i = st
            .nodes
            .iter()
            .position(|x| x.name == *n)
            .ok_or_else(|| Error::Other(format!("unknown lab node `{n}`")))?;
        server::make_store_dir(&st.nodes[i].store_dir)?;
        sshd::start_one(st, Host::Node(i))?;
        say(format!(
            "{n}: rebuilt, reachable again, with an EMPTY data dir"
        ));
    }
    Ok(())
}
