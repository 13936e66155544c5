#![cfg_attr(test, allow(clippy::unwrap_used))]
//! nats-rescue: guided, journaled recovery for NATS JetStream clusters whose Raft groups
//! cannot elect a leader.
//!
//! Pipeline: inventory + runbook text → [`runbook::RawRunbook`] → [`runbook::Plan`]
//! (validated) → [`engine`] (executes over a [`transport::Transport`], asks through a
//! [`engine::prompter::Prompter`], writes the [`journal`]).

pub mod app;
pub mod capture;
pub mod cli;
pub mod duration;
pub mod engine;
pub mod error;
pub mod exit_codes;
pub mod input_error;
pub mod inventory;
pub mod journal;
pub mod lab;
pub mod nats;
pub mod natsconf;
pub mod natsys;
pub mod runbook;
pub mod ssh;
pub mod transport;
pub mod ui;
