//! The runbook language (SPEC §3): `raw` (as written) → `plan` (validated) → the engine.

pub mod plan;
pub mod raw;
pub mod source;
pub mod template;

pub use plan::{Order, Plan, Source, Step};
pub use raw::StepKind;
pub use source::{Library, LoadError};
