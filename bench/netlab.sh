#!/usr/bin/env bash
# Benchmark hosts: N network namespaces on one bridge, one sshd per namespace, nats-server on
# the first SERVERS of them. Modelled on src/lab/net.rs, src/lab/sshd.rs and src/lab/server.rs
# (same addresses scheme, same sshd settings, same server config and `ctl` script), but for up
# to 60+ nodes and with only some of them running nats-server.
#
#   bench/netlab.sh up N      build hosts n1..nN (tears down a previous bench lab first)
#   bench/netlab.sh down      remove everything this script made (idempotent)
#   bench/netlab.sh inventory K FILE   write a nats-rescue inventory for n1..nK
#   bench/netlab.sh login-cost on|off  every SSH command pays 0.1 s at login (on) or nothing
#
# Everything is recorded before it is made: $DIR/made.{netns,links,pids,etc}. `down` acts only
# on what is recorded there, processes by PID after checking their command line.
#
# Environment: NRB_PREFIX (nrb), NRB_NET (10.213.50), NRB_DIR (/tmp/nrb-bench),
# NRB_SERVERS (3), NRB_NATS_SERVER (nats-server binary), NRB_SHLVL1 (1 = `SetEnv SHLVL=1` in
# sshd_config, so Debian's bash does not source root's ~/.bashrc for SSH commands; 0 = leave
# the default, like `nats-rescue lab up` does today), NRB_LOGIN_COST (1: every SSH command
# starts by sourcing $DIR/login-cost.sh through sshd `SetEnv BASH_ENV=`; `login-cost on` makes
# it sleep 0.1 s, `off` empties it; it unsets BASH_ENV so only the login shell pays).
set -euo pipefail
PREFIX="${NRB_PREFIX:-nrb}"
NET="${NRB_NET:-10.213.50}"
DIR="${NRB_DIR:-/tmp/nrb-bench}"
SERVERS="${NRB_SERVERS:-3}"
SHLVL1="${NRB_SHLVL1:-1}"
LOGIN_COST="${NRB_LOGIN_COST:-1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${NRB_NATS_SERVER:-}" ]; then
  if [ -x "$ROOT/.tools/nats-server-2.15.1/nats-server" ]; then
    NRB_NATS_SERVER="$ROOT/.tools/nats-server-2.15.1/nats-server"
  else
    NRB_NATS_SERVER=/usr/sbin/nats-server
  fi
fi
SYS_PW=sysbench
APP_PW=appbench

say() { echo "netlab: $*" >&2; }
addr() { echo "$NET.$((10 + $1))"; }

# A PID is ours when the process exists, is not a zombie and its command line names $2.
pid_ours() {
  local p="$1" marker="$2"
  [ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
  [ "$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$marker"
}

down() {
  [ -d "$DIR" ] || { say "nothing recorded in $DIR"; return 0; }
  # processes: TERM (and CONT, a frozen one cannot exit), then KILL
  if [ -f "$DIR/made.pids" ]; then
    while read -r pidfile marker; do
      p=$(cat "$pidfile" 2>/dev/null | tr -dc 0-9 || true)
      if pid_ours "$p" "$marker"; then kill -TERM "$p" 2>/dev/null || true; kill -CONT "$p" 2>/dev/null || true; fi
    done <"$DIR/made.pids"
    for _ in $(seq 1 50); do
      left=0
      while read -r pidfile marker; do
        p=$(cat "$pidfile" 2>/dev/null | tr -dc 0-9 || true)
        pid_ours "$p" "$marker" && left=1
      done <"$DIR/made.pids"
      [ $left = 0 ] && break
      sleep 0.1
    done
    while read -r pidfile marker; do
      p=$(cat "$pidfile" 2>/dev/null | tr -dc 0-9 || true)
      if pid_ours "$p" "$marker"; then say "KILL $p ($marker)"; kill -KILL "$p" 2>/dev/null || true; fi
    done <"$DIR/made.pids"
  fi
  if [ -f "$DIR/made.links" ]; then
    while read -r l; do ip link show dev "$l" >/dev/null 2>&1 && ip link del dev "$l" 2>/dev/null || true; done <"$DIR/made.links"
  fi
  if [ -f "$DIR/made.netns" ]; then
    existing=$(ip netns list | awk '{print $1}')
    while read -r ns; do
      if printf '%s\n' "$existing" | grep -qxF "$ns"; then ip netns del "$ns" || say "cannot delete netns $ns"; fi
    done <"$DIR/made.netns"
  fi
  if [ -f "$DIR/made.etc" ]; then
    while read -r d; do
      case "$d" in /etc/netns/"$PREFIX"-n*) rm -rf -- "$d" ;; esac
    done <"$DIR/made.etc"
  fi
  rm -rf -- "$DIR"
  say "removed bench lab in $DIR"
}

ctl_text() { # node index
  local i=$1 nd="$DIR/nodes/n$1"
  cat <<EOF
#!/usr/bin/env bash
# bench control script for nats-server n$i (the lab's systemctl; acts by PID file only)
set -u
NS=$PREFIX-n$i
BIN=$NRB_NATS_SERVER
CONF=$nd/nats-server.conf
PIDF=$nd/nats-server.pid
LOG=$nd/nats-server.log
OUT=$nd/nats-server.out
EOF
  cat <<'EOF'
pid_of() { [ -s "$PIDF" ] && head -c 20 "$PIDF" | tr -dc 0-9; }
alive() {
  local p; p=$(pid_of) || return 1; [ -n "$p" ] || return 1
  [ -r "/proc/$p/stat" ] || return 1
  [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ] || return 1
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$CONF"
}
in_ns() { [ "$(ip netns identify 2>/dev/null)" = "$NS" ]; }
cmd=${1:-status}
case "$cmd" in start|reload) in_ns || exec ip netns exec "$NS" "$0" "$@" ;; esac
case "$cmd" in
  start)
    if alive; then echo "nats-server already running (pid $(pid_of))"; exit 0; fi
    rm -f "$PIDF"
    setsid nohup "$BIN" -c "$CONF" -P "$PIDF" -l "$LOG" </dev/null >>"$OUT" 2>&1 &
    for _ in $(seq 1 100); do
      if alive; then sleep 0.2; if alive; then echo "nats-server started (pid $(pid_of))"; exit 0; fi; fi
      sleep 0.05
    done
    echo "nats-server did not start" >&2; tail -n 5 "$OUT" >&2; exit 1 ;;
  stop)
    if ! alive; then echo "not running"; rm -f "$PIDF"; exit 0; fi
    p=$(pid_of); kill -TERM "$p"; kill -CONT "$p" 2>/dev/null
    for _ in $(seq 1 300); do alive || { echo "stopped (pid $p)"; rm -f "$PIDF"; exit 0; }; sleep 0.1; done
    echo "pid $p did not stop" >&2; exit 1 ;;
  kill)
    if ! alive; then echo "not running"; exit 0; fi
    p=$(pid_of); kill -KILL "$p"
    for _ in $(seq 1 100); do alive || { echo "killed (pid $p)"; rm -f "$PIDF"; exit 0; }; sleep 0.05; done
    exit 1 ;;
  status) if alive; then echo "active (pid $(pid_of))"; exit 0; else echo inactive; exit 3; fi ;;
  reload) alive || exit 1; "$BIN" --signal reload="$(pid_of)" || kill -HUP "$(pid_of)" ;;
  pid) if alive; then pid_of; echo; else exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|reload|kill|pid" >&2; exit 2 ;;
esac
EOF
}

nats_conf() { # node index
  local i=$1 a routes="" j
  a=$(addr "$i")
  for j in $(seq 1 "$SERVERS"); do routes+="    \"nats-route://n$j:6222\"\n"; done
  printf '# bench: node n%s\nserver_name: n%s\nlisten: "%s:4222"\nhttp: "%s:8222"\njetstream {\n  store_dir: "%s"\n}\ncluster {\n  name: lab\n  listen: "%s:6222"\n  routes: [\n%b  ]\n}\naccounts {\n  SYS: { users: [ { user: "sys", password: "%s" } ] }\n  APP: { jetstream: enabled, users: [ { user: "app", password: "%s" } ] }\n}\nsystem_account: SYS\nno_auth_user: app\n' \
    "$i" "$i" "$a" "$a" "$DIR/nodes/n$i/data" "$a" "$routes" "$SYS_PW" "$APP_PW"
}

up() {
  local n=$1 i
  [ "$(id -u)" = 0 ] || { say "needs root"; exit 2; }
  [ "$n" -ge 1 ] && [ "$n" -le 200 ] || { say "N must be 1..200"; exit 2; }
  down
  # refuse to touch anything that is not ours
  if ip -o -4 addr show | grep -q " $NET\."; then say "addresses in $NET.0/24 already in use"; exit 2; fi
  if ip netns list | awk '{print $1}' | grep -q "^$PREFIX-"; then say "namespaces $PREFIX-* exist (not recorded by us)"; exit 2; fi
  mkdir -p "$DIR/nodes" /run/sshd
  : >"$DIR/made.netns"; : >"$DIR/made.links"; : >"$DIR/made.pids"; : >"$DIR/made.etc"
  ssh-keygen -q -t ed25519 -N '' -C nrb-bench-operator -f "$DIR/id_ed25519"
  login_cost on
  local br="$PREFIX-br"
  echo "$br" >>"$DIR/made.links"
  ip link add name "$br" type bridge
  ip addr add "$NET.1/24" dev "$br"
  ip link set "$br" up
  {
    echo "127.0.0.1 localhost"
    for i in $(seq 1 "$n"); do echo "$(addr "$i") n$i"; done
  } >"$DIR/hosts"
  : >"$DIR/known_hosts"
  for i in $(seq 1 "$n"); do
    local ns="$PREFIX-n$i" h="$PREFIX-h$i" c="$PREFIX-c$i" nd="$DIR/nodes/n$i" a
    a=$(addr "$i")
    mkdir -p "$nd"
    echo "$ns" >>"$DIR/made.netns"; echo "$h" >>"$DIR/made.links"; echo "/etc/netns/$ns" >>"$DIR/made.etc"
    mkdir -p "/etc/netns/$ns"
    cp "$DIR/hosts" "/etc/netns/$ns/hosts"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$ns/resolv.conf"
    ip netns add "$ns"
    ip link add name "$h" type veth peer name "$c"
    ip link set "$c" netns "$ns"
    ip -n "$ns" link set "$c" name eth0
    ip -n "$ns" addr add "$a/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip link set "$h" master "$br"
    ip link set "$h" up
    ssh-keygen -q -t ed25519 -N '' -C "nrb-bench-n$i" -f "$nd/ssh_host_ed25519_key"
    echo "$a $(cut -d' ' -f1,2 "$nd/ssh_host_ed25519_key.pub")" >>"$DIR/known_hosts"
    {
      echo "# bench sshd for n$i in $ns (settings as src/lab/sshd.rs)"
      echo "Port 22"; echo "ListenAddress $a:22"; echo "HostKey $nd/ssh_host_ed25519_key"
      echo "PidFile $nd/sshd.pid"; echo "AuthorizedKeysFile $DIR/id_ed25519.pub"
      echo "PermitRootLogin yes"; echo "PubkeyAuthentication yes"; echo "PasswordAuthentication no"
      echo "KbdInteractiveAuthentication no"; echo "UsePAM no"; echo "StrictModes no"; echo "PrintMotd no"
      echo "UseDNS no"; echo "MaxStartups 100:30:200"; echo "MaxSessions 50"; echo "LogLevel ERROR"
      echo "Subsystem sftp internal-sftp"
      # as tests/support/sshd.rs: Debian's bash sources ~/.bashrc for sshd commands when
      # SHLVL < 2; root's .bashrc here runs `pyenv init` (~0.2 s CPU per command)
      env=""
      [ "$SHLVL1" = 1 ] && env+=" SHLVL=1"
      [ "$LOGIN_COST" = 1 ] && env+=" BASH_ENV=$DIR/login-cost.sh"
      if [ -n "$env" ]; then echo "SetEnv$env"; fi
    } >"$nd/sshd_config"
    echo "$nd/sshd.pid $nd/sshd_config" >>"$DIR/made.pids"
    ip netns exec "$ns" /usr/sbin/sshd -f "$nd/sshd_config" -E "$nd/sshd.log"
    ctl_text "$i" >"$nd/ctl"; chmod 755 "$nd/ctl"
    if [ "$i" -le "$SERVERS" ]; then
      mkdir -p "$nd/data"
      nats_conf "$i" >"$nd/nats-server.conf"
      echo "$nd/nats-server.pid $nd/nats-server.conf" >>"$DIR/made.pids"
    fi
  done
  for i in $(seq 1 "$n"); do
    local nd="$DIR/nodes/n$i" ok=0
    for _ in $(seq 1 200); do
      p=$(cat "$nd/sshd.pid" 2>/dev/null || true)
      if pid_ours "$p" "$nd/sshd_config"; then ok=1; break; fi
      sleep 0.02
    done
    [ $ok = 1 ] || { say "sshd of n$i did not start: $(cat "$nd/sshd.log" 2>/dev/null)"; exit 1; }
  done
  for i in $(seq 1 "$SERVERS"); do [ "$i" -le "$n" ] && "$DIR/nodes/n$i/ctl" start >/dev/null & done
  wait
  say "up: $n hosts on $NET.0/24 (sshd SHLVL1=$SHLVL1 LOGIN_COST=$LOGIN_COST), nats-server $("$NRB_NATS_SERVER" --version 2>&1 | tr -d '\n') on n1..n$SERVERS"
}

# The fixed login cost (sourced by the non-interactive bash sshd starts for each command).
login_cost() { # on|off
  case "$1" in
    on) printf '# bench login cost: 0.1 s per SSH command\nunset BASH_ENV\nsleep 0.1\n' >"$DIR/login-cost.sh.new" ;;
    off) printf '# bench login cost: none\nunset BASH_ENV\n' >"$DIR/login-cost.sh.new" ;;
    *) say "login-cost on|off"; exit 2 ;;
  esac
  mv -f "$DIR/login-cost.sh.new" "$DIR/login-cost.sh"
}

inventory() { # K FILE
  local k=$1 f=$2 i
  {
    echo "# bench inventory: n1..n$k (nats-server runs on n1..n$SERVERS)"
    echo "cluster: lab"
    echo "defaults:"
    echo "  ssh:"
    echo "    user: root"
    echo "    port: 22"
    echo "    identity_file: $DIR/id_ed25519"
    echo "    known_hosts: $DIR/known_hosts"
    echo "    command_timeout: 60s"
    echo "  nats:"
    echo "    monitor_port: 8222"
    echo "    monitor: direct"
    echo "    cluster_port: 6222"
    echo "    system_account: SYS"
    echo "nodes:"
    for i in $(seq 1 "$k"); do
      local nd="$DIR/nodes/n$i"
      echo "  - name: n$i"
      echo "    host: $(addr "$i")"
      echo "    nats:"
      echo "      config_file: $nd/nats-server.conf"
      echo "      store_dir: $nd/data"
      echo "      service:"
      echo "        start: $nd/ctl start"
      echo "        stop: $nd/ctl stop"
      echo "        status: $nd/ctl status"
      echo "        reload: $nd/ctl reload"
    done
  } >"$f"
}

case "${1:-}" in
  up) up "${2:?N}" ;;
  down) down ;;
  inventory) inventory "${2:?K}" "${3:?FILE}" ;;
  login-cost) [ -d "$DIR" ] || { say "no bench lab in $DIR"; exit 2; }; login_cost "${2:?on|off}" ;;
  *) echo "usage: $0 up N | down | inventory K FILE | login-cost on|off" >&2; exit 2 ;;
esac
