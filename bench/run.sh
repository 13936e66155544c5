#!/usr/bin/env bash
# nats-rescue benchmarks, side by side with Ansible ad-hoc and parallel-ssh (see docs/BENCHMARKS.md).
#
#   sudo bash bench/run.sh                          # N = 3,10,60,200; 5 runs each; recovery x5
#   BENCH_NODES=3,10 BENCH_RUNS=3 sudo bash bench/run.sh
#
# Every SSH command pays a fixed 0.1 s login cost (sshd SetEnv BASH_ENV=, see netlab.sh); the
# same contenders without it are a second row set.
# Installs what is missing (apt: pssh, time, curl; PyPI: ansible-core into bench/.venv), builds
# the release binary and the journal benchmark, builds the hosts (bench/netlab.sh: network
# namespaces on 10.213.50.0/24 with sshd, nats-server on 3 of them), measures, writes
# bench/results/<time>.{json,md}, and removes the hosts on exit (also on Ctrl-C or failure).
# Safe to rerun: it tears down a previous bench lab first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
NODES="${BENCH_NODES:-3,10,60,200}"
RUNS="${BENCH_RUNS:-5}"
RECOVERY_RUNS="${BENCH_RECOVERY_RUNS:-5}"
SKIP="${BENCH_SKIP:-}"
TOOLS="${BENCH_TOOLS:-floor,ssh_true,ssh_probe_n1,nats_rescue,nats_rescue_status,pssh,ansible,ansible_pipelining}"
# the zero-login-cost row set ('' to skip it) and the largest N Ansible runs on
ZERO_TOOLS="${BENCH_ZERO_TOOLS-floor,nats_rescue,nats_rescue_status,pssh}"
ANSIBLE_MAX="${BENCH_ANSIBLE_MAX:-60}"
ANSIBLE_CORE="${BENCH_ANSIBLE_CORE:-ansible-core}"
export NRB_DIR="${NRB_DIR:-/tmp/nrb-bench}"

[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces)" >&2; exit 2; }

need=()
command -v parallel-ssh >/dev/null || need+=(pssh)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
command -v ssh >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: apt-get install ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash "$ROOT/scripts/setup.sh" >/dev/null 2>&1 || bash "$ROOT/scripts/setup.sh"

if [ ! -x "$BENCH/.venv/bin/ansible" ]; then
  echo "bench: installing $ANSIBLE_CORE into bench/.venv" >&2
  python3 -m venv "$BENCH/.venv"
  "$BENCH/.venv/bin/pip" install -q "$ANSIBLE_CORE"
fi

# BENCH_NO_BUILD=1: measure the binaries already in target/release (they must exist);
# CARGO_TARGET_DIR, when set, is where they are built and looked for
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export NRB_BIN="${NRB_BIN:-$TARGET/release/nats-rescue}"
if [ "${BENCH_NO_BUILD:-0}" != 1 ] || [ ! -x "$TARGET/release/nats-rescue" ]; then
  echo "bench: cargo build --release" >&2
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q)
fi
JOURNAL_BIN=""
if [ "${BENCH_NO_BUILD:-0}" = 1 ] && [ -x "$TARGET/release/nrb-journal-throughput" ]; then
  JOURNAL_BIN="$TARGET/release/nrb-journal-throughput"
elif [[ ",$SKIP," != *",journal,"* ]]; then
  echo "bench: building bench/journal-throughput (shares target/)" >&2
  if (cd "$BENCH/journal-throughput" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q); then
    JOURNAL_BIN="$TARGET/release/nrb-journal-throughput"
  else
    echo "bench: journal benchmark did not build; skipping it" >&2
  fi
fi

max=$(tr ',' '\n' <<<"$NODES" | sort -n | tail -n 1)
cleanup() { "$BENCH/netlab.sh" down || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$BENCH/netlab.sh" up "$max"

mkdir -p "$BENCH/results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$BENCH/results/$stamp.json"
"$BENCH/.venv/bin/python" "$BENCH/bench.py" --nodes "$NODES" --runs "$RUNS" \
  --recovery-runs "$RECOVERY_RUNS" --tools "$TOOLS" --zero-tools "$ZERO_TOOLS" \
  --ansible-max "$ANSIBLE_MAX" --skip "$SKIP" \
  --journal-bin "$JOURNAL_BIN" --out "$out"
"$BENCH/.venv/bin/python" "$BENCH/report.py" "$out" | tee "$BENCH/results/$stamp.md"
