//! One integration-test binary (one link step): real binary, real sshd, real nats-server.
#![allow(clippy::unwrap_used)]
mod config_repair;
mod crash;
mod e2e;
mod journal;
mod lab;
mod natsconf;
mod natsys;
mod pty;
mod runbooks;
mod snapshots;
mod ssh;
mod support;
