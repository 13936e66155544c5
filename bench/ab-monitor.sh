#!/usr/bin/env bash
# A/B behind finding 1 of docs/BENCHMARKS.md: `nats-rescue status` (the gather) with
# `monitor: direct` (HTTP through reqwest, one client per request) vs `monitor: ssh` (HTTP over
# a direct-tcpip channel of the node's SSH session, no reqwest). Wall, user CPU, peak RSS,
# and how many nodes were reached.  sudo bash bench/ab-monitor.sh   (RUNS=5 RUNS60=2)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export NRB_DIR="${NRB_DIR:-/tmp/nrb-bench}"
D=$NRB_DIR
NR="${NRB_BIN:-$ROOT/target/release/nats-rescue}"
trap '"$ROOT/bench/netlab.sh" down' EXIT
trap 'exit 130' INT TERM
"$ROOT/bench/netlab.sh" up 60
sleep 3
for k in 3 60; do
  "$ROOT/bench/netlab.sh" inventory $k "$D/inv$k.yaml"
  sed 's/monitor: direct/monitor: ssh/' "$D/inv$k.yaml" > "$D/inv$k-ssh.yaml"
done
for k in 3 60; do
  runs=${RUNS:-5}; [ $k = 60 ] && runs=${RUNS60:-2}
  for r in $(seq 1 "$runs"); do
    for mode in direct ssh; do
      inv=$D/inv$k.yaml; [ $mode = ssh ] && inv=$D/inv$k-ssh.yaml
      la=$(cut -d' ' -f1 /proc/loadavg)
      /usr/bin/time -f "%e %U %S %M" -o "$D/ab.time" "$NR" -i "$inv" --json status > "$D/ab.json" 2>/dev/null
      ok=$(python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print(sum(n['ssh']=='ok' for n in v['nodes']), sum(n['monitor']=='ok' for n in v['nodes']))" "$D/ab.json")
      read -r wall user sys rss < <(tail -n 1 "$D/ab.time")
      echo "nodes=$k monitor=$mode run=$r wall=${wall}s user=${user}s sys=${sys}s peak_rss=${rss}KB ssh_ok,monitor_ok=$ok load=$la"
    done
  done
done
