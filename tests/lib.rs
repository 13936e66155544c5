//! One integration-test binary (one link step): real binary, real sshd, real nats-server.
