//! The incident journal (SPEC §4): append-only, hash-chained JSON Lines.

pub mod event;

pub use event::Event;
