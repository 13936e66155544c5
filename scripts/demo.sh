#!/usr/bin/env bash
# The README's first command. Builds a real 3-node NATS JetStream cluster on this machine
# (network namespaces, one sshd and one nats-server per node), fills a stream, kills a
# majority of the servers, lets nats-rescue diagnose and recover the cluster, shows the
# incident journal, and removes the lab again (also on Ctrl-C or failure).
#
#   bash scripts/demo.sh        (as root; or sudo bash scripts/demo.sh)
#
# Environment: NATS_SERVER (binary, default .tools/nats-server-2.15.1/nats-server),
# LAB_DIR (default /tmp/nats-rescue-demo), LAB_NAME (demo), LAB_SUBNET (213.9 → 10.213.9.0/24),
# PROFILE (release|debug), SKIP_SETUP=1, SKIP_BUILD=1, NATS_RESCUE_BIN (use this binary).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: the lab needs root (network namespaces, veth pairs, iptables): run it as root, or: sudo bash scripts/demo.sh" >&2
  exit 2
fi

LAB_DIR="${LAB_DIR:-/tmp/nats-rescue-demo}"
LAB_NAME="${LAB_NAME:-demo}"
LAB_SUBNET="${LAB_SUBNET:-213.9}"
PROFILE="${PROFILE:-release}"
NATS_SERVER="${NATS_SERVER:-$PWD/.tools/nats-server-2.15.1/nats-server}"
export NATS_RESCUE_JOURNAL_DIR="${NATS_RESCUE_JOURNAL_DIR:-$LAB_DIR.journal}"
INV="$LAB_DIR/inventory.yaml"

bold() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
show() { if [ -t 1 ]; then printf '\033[36m$ %s\033[0m\n' "$*"; else printf '$ %s\n' "$*"; fi; }
# run CMD...: print it, run it, keep going whatever it exits with (status/diagnose exit 1 on problems)
run() { show "$*"; set +e; "$@"; local rc=$?; set -e; [ $rc -eq 0 ] || echo "(exit $rc)"; return 0; }
# must CMD...: print it, run it, stop the demo when it fails
must() { show "$*"; "$@"; }

if [ "${SKIP_SETUP:-0}" != 1 ]; then
  bold "1. Install what the lab needs (idempotent)"
  must bash scripts/setup.sh
fi
if [ -n "${NATS_RESCUE_BIN:-}" ]; then
  BIN="$NATS_RESCUE_BIN"
else
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    bold "2. Build nats-rescue ($PROFILE)"
    if [ "$PROFILE" = release ]; then must cargo build --release --bins; else must cargo build --bins; fi
  fi
  BIN="${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/nats-rescue"
fi
nr() { "$BIN" "$@"; }

probe=$("$BIN" lab status --dir /nonexistent/nats-rescue-demo-probe 2>&1 || true)
if ! grep -q "no lab in" <<<"$probe"; then
  echo "demo: $BIN does not run \`lab\` commands yet (is main wired to nats_rescue::lab::dispatch?)" >&2
  exit 2
fi

cleanup() {
  local rc=$?
  bold "Cleaning up: lab down"
  show "nats-rescue lab down --dir $LAB_DIR"
  nr lab down --dir "$LAB_DIR" || echo "demo: lab down reported a problem; run it again: $BIN lab down --dir $LAB_DIR" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold "3. A 3-node JetStream cluster: namespaces, sshd and nats-server per node"
must nr lab up --nodes 3 --nats-server "$NATS_SERVER" --dir "$LAB_DIR" --name "$LAB_NAME" --subnet "$LAB_SUBNET"
echo; show "cat $INV"; grep -v '^#' "$INV" | head -30; echo "  ..."

bold "4. Some data worth keeping: 1000 messages in the R3 stream ORDERS"
must nr lab seed --messages 1000 --dir "$LAB_DIR"

bold "5. A healthy cluster"
run nr -i "$INV" status

bold "6. Disaster: 2 of 3 servers die"
must nr lab break quorum-loss --dir "$LAB_DIR"

# The survivor is n1: wait (poll its /jsz, no curl needed) until it has no meta leader.
n1_addr=$(awk '/- name: n1$/{f=1} f && /host:/{print $2; exit}' "$INV")
jsz_has_leader() {
  local body
  body=$(timeout 2 bash -c "exec 3<>/dev/tcp/$1/8222 && printf 'GET /jsz HTTP/1.0\r\n\r\n' >&3 && cat <&3" 2>/dev/null) || return 2
  grep -q '"leader": *"[^"]' <<<"$body"
}
printf 'waiting for the survivor n1 (%s) to lose its meta leader' "$n1_addr"
t0=$SECONDS
while jsz_has_leader "$n1_addr"; do
  if [ $((SECONDS - t0)) -gt 60 ]; then echo; echo "demo: n1 still reports a leader after 60 s" >&2; exit 1; fi
  printf '.'; sleep 1
done
echo " no leader after $((SECONDS - t0)) s"

bold "7. What is wrong? (read-only)"
run nr -i "$INV" status
run nr -i "$INV" diagnose

bold "8. Rehearse the fix: read-only steps run, every change is printed and not sent"
run nr -i "$INV" run insufficient-nodes --dry-run

bold "9. Recover: the insufficient-nodes runbook (asks before it changes anything)"
approve=()
[ -t 0 ] && [ -t 2 ] || approve=(--yes)   # no terminal to answer the prompts: approve them by flag
must nr -i "$INV" run insufficient-nodes "${approve[@]}"

bold "10. Healthy again, and the data is still there"
run nr -i "$INV" status
must nr lab status --dir "$LAB_DIR"

bold "11. The incident journal"
run nr journal list
incident=$(ls -t "$NATS_RESCUE_JOURNAL_DIR"/*.jsonl 2>/dev/null | head -n 1 || true)
if [ -n "$incident" ]; then
  id=$(basename "$incident" .jsonl)
  run nr journal verify "$id"
  run nr journal export "$id" --format markdown
else
  echo "(no incident journal in $NATS_RESCUE_JOURNAL_DIR)"
fi

bold "Done. The lab is removed on exit; to keep exploring, run the steps above by hand."
