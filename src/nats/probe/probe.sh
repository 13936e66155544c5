#!/bin/sh
# The read-only probe nats-rescue runs on each node (one SSH command per node). The caller
# prepends the node's values as shell-quoted assignments and the peer list as `set --`
# arguments (name, host, cluster port, `ip`|`name`, repeated): see render_probe_script.
# Every output line starts with a tag that ShellReport::parse reads. Nothing here changes
# the node.
# shellcheck disable=SC2154 # SVC_STATUS, CLUSTER_PORT, ... are prepended by the caller
LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin:/usr/local/bin"
echo "NRS_BEGIN 1"
# Not root (no sudo, or sudo refused): what needs root is reported as not seen, never
# silently missing.
me=$(id -u 2>/dev/null || echo 0)
unpriv() { [ "$me" != 0 ] && echo "ERR not seen without root: $1"; }
# 1. service status (operator's command; exit 0 = running)
sh -c "$SVC_STATUS" </dev/null >/dev/null 2>&1
echo "SERVICE $?"
# 2. who listens on the cluster / monitor port, and its state
pid=""
if command -v ss >/dev/null 2>&1; then
  for p in "$CLUSTER_PORT" "$MONITOR_PORT"; do
    line=$(ss -Htlnp "sport = :$p" 2>/dev/null | head -n 1)
    if [ -n "$line" ]; then
      echo "LISTEN $p yes"
      pid=$(printf '%s\n' "$line" | sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' | head -n 1)
      [ -n "$pid" ] && break
      unpriv "the process listening on port $p (its owner and /proc state)"
    else
      echo "LISTEN $p no"
    fi
  done
else
  echo "ERR ss not found; cannot see listening sockets"
fi
if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
  st=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d ' ' -f 1)
  echo "PROC $pid $st"
fi
# 3. peers: TCP to the cluster port, name resolution
have_bash=no; command -v bash >/dev/null 2>&1 && have_bash=yes
have_timeout=no; command -v timeout >/dev/null 2>&1 && have_timeout=yes
tcp_check() {
  if [ "$have_bash" = no ] || [ "$have_timeout" = no ]; then echo "TCP $1 $2 $3 error: bash or timeout missing"; return; fi
  out=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then r=ok
  elif [ $rc -eq 124 ]; then r=timeout
  else
    case "$out" in
      *refused*) r=refused ;;
      *"not known"*|*resolution*|*"No address"*|*"Unknown host"*|*"unknown host"*) r=unresolved ;;
      *"No route"*|*unreachable*) r=unreachable ;;
      *) r="error: $(printf '%s' "$out" | tr '\n' ' ' | cut -c 1-120)" ;;
    esac
  fi
  echo "TCP $1 $2 $3 $r"
}
while [ $# -ge 4 ]; do
  tcp_check "$1" "$2" "$3" &
  if [ "$4" = name ]; then
    a=$(getent hosts "$2" 2>/dev/null | awk '{print $1}' | tr '\n' ' ')
    if [ -n "$a" ]; then echo "DNS $1 $2 ok $a"; else echo "DNS $1 $2 failed"; fi
  fi
  shift 4
done
wait
# 4. load, memory, disk of the store dir
[ -r /proc/loadavg ] && echo "LOADAVG $(cat /proc/loadavg)"
c=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null); [ -n "$c" ] && echo "NPROC $c"
grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null | sed 's/^/MEM /'
if [ -d "$STORE_DIR" ]; then
  echo "STORE yes"
  df -Pk "$STORE_DIR" 2>/dev/null | tail -n 1 | sed 's/^/DF /'
else
  echo "STORE no"
  [ -e "$STORE_DIR" ] || [ -x "$(dirname "$STORE_DIR")" ] || unpriv "the store dir $STORE_DIR (a parent is not searchable)"
fi
if [ -d "$STORE_DIR" ] && { [ ! -r "$STORE_DIR" ] || [ ! -x "$STORE_DIR" ]; }; then
  unpriv "the contents of the store dir $STORE_DIR"
fi
# 5. meta-group Raft state on disk
META="$STORE_DIR/jetstream/$SYS_ACCOUNT/_js_/_meta_"
if [ -d "$META" ]; then
  echo "METADIR yes"
  [ -r "$META/tav.idx" ] && echo "TAVHEX $(od -An -tx1 -v -N 16 "$META/tav.idx" | tr -s ' \n' '  ')"
  [ -r "$META/commit.idx" ] && echo "COMMITHEX $(od -An -tx1 -v -N 8 "$META/commit.idx" | tr -s ' \n' '  ')"
  [ -r "$META/peers.idx" ] && echo "PEERSHEX $(od -An -tx1 -v -N 4096 "$META/peers.idx" | tr -s ' \n' '  ')"
  for s in "$META"/snapshots/snap.*; do [ -e "$s" ] && echo "SNAP ${s##*/}"; done
  for b in "$META"/msgs/*.blk; do [ -f "$b" ] && wc -c < "$b"; done | awk '{s+=$1; n++} END {print "WAL", n+0, s+0}'
  # the newest WAL block, when small, to read its last record's sequence (= last log index)
  last=$(for b in "$META"/msgs/*.blk; do [ -f "$b" ] && echo "${b##*/}"; done | sort -n | tail -n 1)
  if [ -n "$last" ] && [ "$(wc -c < "$META/msgs/$last")" -le 8192 ]; then
    echo "WALLAST $(od -An -tx1 -v "$META/msgs/$last" | tr -s ' \n' '  ')"
  fi
else
  echo "METADIR no"
fi
# 6. the config file and the files it includes, printed whole (parsed by the caller, which
# keeps secrets out of its facts), and the resolution of every host name in a URL in them
rdns_seen=" "
cfg_print() { # $1 path, $2 depth
  if [ ! -r "$1" ]; then echo "CFGMISSING $1"; return; fi
  echo "CFGFILE $1"
  sed 's/^/CFGL /' "$1" 2>/dev/null | head -n 20000
  echo "CFGEND"
  for h in $(grep -o '[A-Za-z][A-Za-z0-9+.-]*://[^] ,"'"'"']*' "$1" 2>/dev/null \
      | sed 's#^[^:]*://##; s#^.*@##; s#/.*$##; s#:[0-9]*$##' | sort -u); do
    case "$h" in *[!0-9.]*) ;; *) continue ;; esac
    case "$h" in *:*|\[*|*'$'*) continue ;; esac
    case "$rdns_seen" in *" $h "*) continue ;; esac
    rdns_seen="$rdns_seen$h "
    a=$(getent hosts "$h" 2>/dev/null | awk '{print $1}' | tr '\n' ' ')
    if [ -n "$a" ]; then echo "RDNS $h ok $a"; else echo "RDNS $h failed"; fi
  done
  [ "$2" -ge 4 ] && return
  for inc in $(sed -n 's/^[ \t]*include[ \t:=]*["'"'"']\{0,1\}\([^"'"'"' \t;]*\).*/\1/p' "$1" 2>/dev/null); do
    case "$inc" in /*) ;; *) inc="${1%/*}/$inc" ;; esac
    cfg_print "$inc" $(($2 + 1))
  done
}
if [ -r "$CONFIG_FILE" ]; then
  echo "CONFIG yes"
  cfg_print "$CONFIG_FILE" 0
  [ -w "$CONFIG_FILE" ] && echo "CONFIGRW yes" || echo "CONFIGRW no"
else
  echo "CONFIG no"
  [ -e "$CONFIG_FILE" ] && unpriv "the config file $CONFIG_FILE (not readable)"
fi
# 7. firewall rules that mention the cluster port
unpriv "the firewall rules (iptables -S / nft list ruleset)"
if command -v iptables >/dev/null 2>&1; then
  iptables -S 2>/dev/null | grep -- "$CLUSTER_PORT" | sed 's/^/FW /'
fi
if command -v nft >/dev/null 2>&1; then
  nft list ruleset 2>/dev/null | grep -- "$CLUSTER_PORT" | sed 's/^[ \t]*/FW nft: /'
fi
echo "NRS_END"
