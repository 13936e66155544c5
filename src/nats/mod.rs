//! NATS JetStream fact gathering: typed monitoring endpoints ([`monitor`]), the per-node
//! probe over a [`crate::transport::Transport`] ([`probe`]), node and cluster facts
//! ([`facts`]), derived cause signals ([`signals`]) and the status table / JSON ([`table`]).
//!
//! Entry points: [`probe::gather`] → [`facts::ClusterFacts`] (with `signals`), then
//! [`table::render_status`], [`table::status_json`], [`table::diagnose_json`].

pub mod facts;
pub mod monitor;
pub mod probe;
pub mod signals;
pub mod table;

#[cfg(test)]
mod tests;

pub use facts::{ClusterFacts, HttpBodies, NodeFacts};
pub use probe::{gather, probe_node};
pub use signals::{signals, Signal};
pub use table::{diagnose_json, render_status, status_json, Finding};
