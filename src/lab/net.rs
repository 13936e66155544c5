//! Namespaces, the bridge and the veth pairs: one address per node on `10.X.Y.0/24`, the root
//! namespace on `10.X.Y.1`. Each namespace gets `/etc/netns/<ns>/hosts` (node names → addresses;
//! routes use host names so the dns fault works) and a `resolv.conf` that points at the
//! namespace's own loopback, so a lookup that misses the hosts file fails fast and locally.

use super::state::LabState;
use super::{io_err, run, run_out, say};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

pub fn bridge_name(prefix: &str) -> String {
    format!("{prefix}-br")
}

/// Host and namespace ends of a veth pair; `tag` is the node's number, or `b` for the bastion.
fn veth_names(prefix: &str, tag: &str) -> (String, String) {
    (format!("{prefix}-h{tag}"), format!("{prefix}-c{tag}"))
}

/// Namespace of the bastion (`lab up --bastion`).
pub fn bastion_netns(prefix: &str) -> String {
    format!("{prefix}-bastion")
}

/// The bastion's address: `.10`, just below the nodes' `.11`….
pub fn bastion_addr(subnet: &str) -> String {
    format!("10.{subnet}.10")
}

/// Names of all network namespaces on this machine.
pub fn netns_list() -> Vec<String> {
    run_out("ip", &["netns", "list"], Duration::from_secs(10))
        .map(|o| {
            o.stdout
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn link_exists(name: &str) -> bool {
    run_out(
        "ip",
        &["link", "show", "dev", name],
        Duration::from_secs(10),
    )
    .map(|o| o.ok)
    .unwrap_or(false)
}

/// Refuses when the namespaces, the bridge or the address range are already in use (the
/// bastion's veth is checked too).
pub fn check_free(prefix: &str, subnet: &str, nodes: usize) -> Result<()> {
    let mut clashes = Vec::new();
    let existing = netns_list();
    for ns in existing
        .iter()
        .filter(|ns| ns.starts_with(&format!("{prefix}-")))
    {
        clashes.push(format!("network namespace `{ns}` exists"));
    }
    let br = bridge_name(prefix);
    if link_exists(&br) {
        clashes.push(format!("interface `{br}` exists"));
    }
    let tags = (1..=nodes).map(|i| i.to_string()).chain(["b".to_string()]);
    for tag in tags {
        let (h, _) = veth_names(prefix, &tag);
        if link_exists(&h) {
            clashes.push(format!("interface `{h}` exists"));
        }
    }
    let net = format!("10.{subnet}.");
    if let Ok(o) = run_out("ip", &["-o", "-4", "addr", "show"], Duration::from_secs(10)) {
        for l in o.stdout.lines() {
            if let Some(a) = l.split_whitespace().skip_while(|w| *w != "inet").nth(1) {
                if a.starts_with(&net) {
                    clashes.push(format!(
                        "address {a} is already assigned ({})",
                        l.split_whitespace().nth(1).unwrap_or("?")
                    ));
                }
            }
        }
    }
    if let Ok(o) = run_out(
        "ip",
        &["-4", "route", "show", &format!("10.{subnet}.0/24")],
        Duration::from_secs(10),
    ) {
        if !o.stdout.trim().is_empty() {
            clashes.push(format!(
                "a route for 10.{subnet}.0/24 exists: {}",
                o.stdout.trim()
            ));
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "lab up: refusing, {} (another lab? `nats-rescue lab down --dir DIR`, or choose --name / --subnet)",
            clashes.join("; ")
        )))
    }
}

/// Creates the bridge, the namespaces, the veth pairs and the per-namespace /etc files.
/// Each object is recorded in the state before it is made.
pub fn create(st: &mut LabState) -> Result<()> {
    let br = bridge_name(&st.name);
    st.bridge = Some(br.clone());
    st.save()?;
    run("ip", &["link", "add", "name", &br, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{}/24", st.bridge_addr), "dev", &br],
    )?;
    run("ip", &["link", "set", &br, "up"])?;

    let hosts = hosts_text(st);
    for id in st.host_ids() {
        let (h, c) = veth_names(&st.name, &id.tag());
        let host = st
            .host_mut(id)
            .ok_or_else(|| Error::Other("internal error: no such lab host".into()))?;
        let ns = host.netns.clone();
        let addr = host.addr.clone();
        let etc = PathBuf::from("/etc/netns").join(&ns);
        host.veth_host = Some(h.clone());
        host.netns_etc = Some(etc.clone());
        st.save()?;

        std::fs::create_dir_all(&etc)
            .map_err(|e| io_err(format!("cannot create {}", etc.display()), e))?;
        std::fs::write(etc.join("hosts"), &hosts)
            .map_err(|e| io_err("cannot write the namespace hosts file", e))?;
        std::fs::write(etc.join("resolv.conf"), "# nats-rescue lab: no DNS server; names come from /etc/hosts only\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
            .map_err(|e| io_err("cannot write the namespace resolv.conf", e))?;

        run("ip", &["netns", "add", &ns])?;
        run(
            "ip",
            &[
                "link", "add", "name", &h, "type", "veth", "peer", "name", &c,
            ],
        )?;
        run("ip", &["link", "set", &c, "netns", &ns])?;
        run("ip", &["-n", &ns, "link", "set", &c, "name", "eth0"])?;
        run(
            "ip",
            &[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ],
        )?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run("ip", &["link", "set", &h, "master", &br])?;
        run("ip", &["link", "set", &h, "up"])?;
    }
    Ok(())
}

/// `n1 10.X.Y.11` … for every node.
pub fn hosts_text(st: &LabState) -> String {
    let mut s =
        String::from("# nats-rescue lab: node names (routes use them)\n127.0.0.1 localhost\n");
    // The machine's own name, as Debian's /etc/hosts has it (sudo looks it up on every call).
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() && h != "localhost" {
            s.push_str(&format!("127.0.1.1 {h}\n"));
        }
    }
    for n in &st.nodes {
        s.push_str(&format!("{} {}\n", n.addr, n.name));
    }
    if let Some(b) = &st.bastion {
        s.push_str(&format!("{} bastion\n", b.addr));
    }
    s
}

/// Removes namespaces, veths, the bridge and the /etc/netns dirs. Never fails: problems are
/// collected.
pub fn destroy(st: &mut LabState, problems: &mut Vec<String>) {
    let existing = netns_list();
    for n in st.hosts() {
        // The veth first: deleting a namespace destroys its end asynchronously.
        if let Some(h) = &n.veth_host {
            del_link(h, problems);
        }
        if existing.contains(&n.netns) {
            if let Err(e) = run("ip", &["netns", "del", &n.netns]) {
                problems.push(e.to_string());
            }
        }
        if let Some(etc) = &n.netns_etc {
            // Only the directory this lab created for its own namespace.
            if etc.starts_with("/etc/netns")
                && etc
                    .file_name()
                    .map(|f| f.to_string_lossy() == n.netns)
                    .unwrap_or(false)
                && etc.exists()
            {
                if let Err(e) = std::fs::remove_dir_all(etc) {
                    problems.push(format!("cannot remove {}: {e}", etc.display()));
                }
            }
        }
    }
    if let Some(br) = &st.bridge {
        del_link(br, problems);
    }
    if problems.is_empty() {
        say(format!(
            "namespaces, links and /etc/netns entries of `{}` removed",
            st.name
        ));
    }
}

/// Deletes a link; one that is already gone is fine.
fn del_link(name: &str, problems: &mut Vec<String>) {
    if !link_exists(name) {
        return;
    }
    match run_out("ip", &["link", "del", "dev", name], Duration::from_secs(10)) {
        Ok(o) if o.ok || o.stderr.contains("Cannot find device") => {}
        Ok(o) => problems.push(format!("`ip link del {name}` failed: {}", o.stderr.trim())),
        Err(e) => problems.push(e.to_string()),
    }
}
