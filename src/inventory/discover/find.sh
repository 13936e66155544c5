#!/bin/sh
# nats-rescue inventory init, round 1: the nats-server processes of this host (its network
# namespace), the systemd units that may run one, and the usual config paths. Read-only.
echo "NRI_BEGIN"
echo "USER $(id -un 2>/dev/null)"
echo "HOSTNAME $(hostname 2>/dev/null)"
for a in $(hostname -I 2>/dev/null) $(ip -o addr show 2>/dev/null | awk '{print $4}' | sed 's#/.*##'); do
  echo "SELFADDR $a"
done
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo "SYSTEMD yes"; else echo "SYSTEMD no"; fi
self_ns=$(readlink /proc/self/ns/net 2>/dev/null)
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = nats-server ] || continue
  p=${d#/proc/}
  # a zombie (exited, not reaped) is not a running server
  [ "$(sed 's/^.*) //' "$d/stat" 2>/dev/null | cut -c1)" = Z ] && continue
  ns=$(readlink "$d/ns/net" 2>/dev/null)
  # namespaces (containers, the lab) may share the PID space: only this host's servers count
  if [ -n "$self_ns" ] && [ -n "$ns" ] && [ "$ns" != "$self_ns" ]; then continue; fi
  if [ -z "$ns" ] && [ -n "$self_ns" ]; then echo "PNSUNKNOWN $p"; fi
  echo "PROC $p"
  tr '\0' '\n' < "$d/cmdline" 2>/dev/null | head -n 200 | sed "s/^/PARG $p /"
  echo "PEXE $p $(readlink "$d/exe" 2>/dev/null)"
  echo "PCWD $p $(readlink "$d/cwd" 2>/dev/null)"
  u=$(grep -o '[^/]*\.service' "$d/cgroup" 2>/dev/null | tail -n 1)
  [ -n "$u" ] && echo "PUNIT $p $u"
done
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for u in $(systemctl list-units --all --type=service --no-legend --plain 'nats*' 2>/dev/null | awk '{print $1}') \
           $(systemctl list-unit-files --type=service --no-legend 'nats*' 2>/dev/null | awk '{print $1}'); do
    case "$u" in *.service) ;; *) continue ;; esac
    echo "UNIT $u"
    echo "UEXEC $u $(systemctl show -p ExecStart --value "$u" 2>/dev/null | head -n 1)"
    echo "UACTIVE $u $(systemctl is-active "$u" 2>/dev/null)"
    systemctl show -p ExecReload --value "$u" 2>/dev/null | grep -q . && echo "URELOAD $u yes"
  done
fi
for c in /etc/nats/nats-server.conf /etc/nats-server.conf /etc/nats/nats.conf; do
  [ -e "$c" ] && echo "COMMON $c"
done
echo "NRI_END"
