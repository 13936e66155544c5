#!/bin/sh
# nats-rescue inventory init, round 2: the chosen config and its includes printed whole
# (parsed by the caller, which keeps secrets out of what it writes), how each host name in
# its URLs resolves here, and a lab control script beside it. Read-only.
# Set before this text: CONFIG_FILE.
echo "NRI_BEGIN"
rdns_seen=" "
cfg_print() { # $1 path, $2 depth
  if [ ! -e "$1" ]; then echo "CFGMISSING $1"; return; fi
  if [ ! -r "$1" ]; then echo "CFGUNREADABLE $1"; return; fi
  echo "CFGFILE $1"
  sed 's/^/CFGL /' "$1" 2>/dev/null | head -n 20000
  echo "CFGEND"
  for h in $(grep -o '[A-Za-z][A-Za-z0-9+.-]*://[^] ,"'"'"']*' "$1" 2>/dev/null \
      | sed 's#^[^:]*://##; s#^.*@##; s#/.*$##; s#:[0-9]*$##' | sort -u); do
    case "$h" in *:*|\[*|*'$'*) continue ;; esac
    case "$rdns_seen" in *" $h "*) continue ;; esac
    rdns_seen="$rdns_seen$h "
    a=$(getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}' | sort -u | tr '\n' ' ')
    [ -n "$a" ] || a=$(getent hosts "$h" 2>/dev/null | awk '{print $1}' | tr '\n' ' ')
    if [ -n "$a" ]; then echo "RDNS $h ok $a"; else echo "RDNS $h failed"; fi
  done
  [ "$2" -ge 4 ] && return
  for inc in $(sed -n 's/^[ \t]*include[ \t:=]*["'"'"']\{0,1\}\([^"'"'"' \t;]*\).*/\1/p' "$1" 2>/dev/null); do
    case "$inc" in /*) ;; *) inc="${1%/*}/$inc" ;; esac
    cfg_print "$inc" $(($2 + 1))
  done
}
cfg_print "$CONFIG_FILE" 0
# the nats-rescue lab's control script (its `systemctl`), when it controls this config
ctl="${CONFIG_FILE%/*}/ctl"
if [ -x "$ctl" ] && grep -q 'nats-rescue lab: control script' "$ctl" 2>/dev/null \
   && grep -qF -- "CONF=$CONFIG_FILE" "$ctl" 2>/dev/null; then
  echo "LABCTL $ctl"
fi
echo "NRI_END"
