//! Command implementations: each turns parsed arguments into work and an exit code.

pub mod generate;
pub mod runbooks;

use crate::cli::GlobalOpts;
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use std::path::PathBuf;

/// The inventory path: `-i`, `$NATS_RESCUE_INVENTORY`, or `./inventory.yaml`.
pub fn inventory_path(g: &GlobalOpts) -> PathBuf {
    g.inventory
        .clone()
        .unwrap_or_else(|| PathBuf::from("inventory.yaml"))
}

pub fn load_inventory(g: &GlobalOpts) -> Result<Inventory> {
    let p = inventory_path(g);
    if !p.exists() {
        return Err(Error::Usage(format!(
            "no inventory at {} (pass -i FILE or set NATS_RESCUE_INVENTORY; `nats-rescue lab up` writes one for a local lab)",
            p.display()
        )));
    }
    let mut inv = Inventory::load(&p)?;
    if g.accept_new_host_keys {
        for n in &mut inv.nodes {
            n.ssh.accept_new_host_keys = true;
        }
    }
    Ok(inv)
}

pub mod capture;
pub mod inventory_init;
pub mod journal;
pub mod run;
pub mod status;

/// `--journal-dir`, `$NATS_RESCUE_JOURNAL_DIR`, or `$XDG_STATE_HOME/nats-rescue/incidents`.
pub fn journal_dir(g: &GlobalOpts) -> PathBuf {
    g.journal_dir
        .clone()
        .unwrap_or_else(crate::journal::default_dir)
}
