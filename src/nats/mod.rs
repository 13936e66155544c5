//! NATS JetStream fact gathering: typed monitoring endpoints ([`monitor`]), the per-node
//! probe over a [`crate::transport::Transport`] ([`probe`]), node and cluster facts
//! ([`facts`]) and derived cause signals ([`signals`]). Rendering lives in `crate::ui`.
//!
//! Entry point: [`probe::gather`] → [`facts::ClusterFacts`] (with `signals`).

pub mod cluster;
pub mod configfacts;
pub mod facts;
pub mod light;
pub mod monitor;
pub mod observe;
pub mod parallel;
pub mod probe;
pub mod routes;
pub mod signals;
pub mod sysfacts;

#[cfg(test)]
mod tests;

pub use facts::Thresholds;
pub use facts::{ClusterFacts, HttpBodies, NodeFacts};
pub use probe::{gather, probe_node};
pub use signals::{signals, Signal, SIGNALS};
