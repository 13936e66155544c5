#!/usr/bin/env bash
# The test command named in the README. Unit tests plus the end-to-end tests against real
# sshd and nats-server (the lab tests need root for network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export NATS_RESCUE_MODERN_SERVER="${NATS_RESCUE_MODERN_SERVER:-$PWD/.tools/nats-server-2.15.1/nats-server}"
bash scripts/lint.sh
cargo build --locked --bins
# The release build (OpenSSL from source, opt-level 3: the heaviest compile) before the
# tests, not during them: tests/release.rs runs scripts/release.sh again, which then only
# repackages, and the lab tests do not share the 2 cores with it.
bash scripts/release.sh >/dev/null
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked -- --test-threads="${TEST_THREADS:-2}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# The closing line CI reads: every test binary's counts added up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$rc"
