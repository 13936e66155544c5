//! One integration-test binary (one link step): real binary, real sshd, real nats-server.
#![allow(clippy::unwrap_used)]
mod anchors;
mod capture;
mod config_repair;
mod crash;
mod e2e;
mod flap;
mod inventory_init;
mod journal;
mod lab;
mod light_wait;
mod nats_action;
mod natsconf;
mod natsys;
mod permanent_loss;
pub(crate) mod pty;
mod release;
pub(crate) mod rounds;
mod runbooks;
mod shapes;
mod snapshots;
mod ssh;
mod support;
mod sys_facts;
mod sys_tunnel;
