//! The runbook language (SPEC §3): `raw` (as written) → `validate` (rules, positions from
//! `spans`, templates compiled by `template`) → `plan` (typed actions) → the engine.

pub mod plan;
pub mod raw;
pub mod source;
mod spans;
pub mod template;
pub mod validate;

pub use plan::{
    Action, BackupSpec, Confidence, ConfidenceSpec, ConfirmSpec, FindingSpec, Group, NatsSpec,
    NodeAction, Order, Plan, Request, RewriteRoutesSpec, Source, Step, WaitSpec,
};
pub use raw::StepKind;
pub use source::{Library, LoadError};
pub use template::{Expr, Template};
pub use validate::parse;
