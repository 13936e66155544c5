#!/usr/bin/env bash
# The test command named in the README. Unit tests plus the end-to-end tests against real
# sshd and nats-server (the lab tests need root for network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export NATS_RESCUE_MODERN_SERVER="${NATS_RESCUE_MODERN_SERVER:-$PWD/.tools/nats-server-2.15.1/nats-server}"
cargo build --locked --bins
cargo test --locked -- --test-threads="${TEST_THREADS:-2}"
