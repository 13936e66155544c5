#!/bin/sh
# The write half of the built-in `rewrite_routes` action (src/engine/routes.rs). The caller
# prepends NEW_TEXT=<the whole new file, shell-quoted> and `set -- FILE SERVER_BIN
# CLUSTER_PORT VAR...` (VAR: the $VARIABLES the config uses, read from the running server's
# environment for the test). The journal holds this script with NEW_TEXT redacted.
# Nothing changes unless `SERVER_BIN -t -c` accepts the new text; the file is then replaced
# by rename (same directory, mode and owner kept by `cp -p`).
# shellcheck disable=SC2154 # NEW_TEXT is prepended by the caller
f=$1; bin=$2; port=$3; shift 3
PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin:/usr/local/bin"
if [ ! -f "$f" ]; then echo "$f: no such file" >&2; exit 3; fi
d=$(dirname -- "$f")
if [ ! -w "$f" ] || [ ! -w "$d" ]; then
  echo "$f is read-only on this node (a config map mounted read-only?): the routes must be changed where the file comes from (e.g. the Helm values or the ConfigMap), then the pods rolled; nothing was changed" >&2
  exit 4
fi
tmp="$d/.$(basename -- "$f").nats-rescue.$$"
if ! cp -p -- "$f" "$tmp" 2>/dev/null; then
  rm -f -- "$tmp"; echo "cannot create $tmp next to $f; nothing was changed" >&2; exit 4
fi
if ! printf '%s' "$NEW_TEXT" > "$tmp"; then
  rm -f -- "$tmp"; echo "cannot write $tmp; nothing was changed" >&2; exit 4
fi
pid=""
if command -v ss >/dev/null 2>&1; then
  pid=$(ss -Htlnp "sport = :$port" 2>/dev/null | sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' | head -n 1)
fi
if [ -n "$pid" ] && [ -r "/proc/$pid/environ" ]; then
  for v in "$@"; do
    val=$(tr '\0' '\n' < "/proc/$pid/environ" | sed -n "s/^$v=//p" | head -n 1)
    if [ -n "$val" ]; then export "$v=$val"; fi
  done
fi
if ! out=$("$bin" -t -c "$tmp" 2>&1); then
  rm -f -- "$tmp"
  echo "$bin -t rejected the rewritten config; $f is untouched: $out" >&2
  exit 5
fi
if ! mv -f -- "$tmp" "$f"; then
  rm -f -- "$tmp"; echo "cannot replace $f; it is untouched" >&2; exit 4
fi
echo "rewritten=$f"
