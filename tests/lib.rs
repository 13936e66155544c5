//! One integration-test binary (one link step): real binary, real sshd, real nats-server.
mod lab;
mod support;
mod runbooks;
mod ssh;
mod journal;
mod crash;
mod pty;
mod snapshots;
