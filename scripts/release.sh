#!/usr/bin/env bash
# Builds the release artefacts into dist/ (README "Install"):
#   dist/nats-rescue                              the binary: OpenSSL, libssh2 and zlib linked
#                                                 statically, needs only the C library
#   dist/nats-rescue-VERSION-ARCH-linux.tar.gz    binary, man pages, completions, README, CHANGELOG
#   dist/nats-rescue_VERSION_DEBARCH.deb          /usr/bin, man pages, completions, copyright, changelog
#   dist/SHA256SUMS
# Needs libssl-dev (its static libssl.a/libcrypto.a) and dpkg-dev (dpkg-shlibdeps):
# scripts/setup.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIST="$ROOT/dist"
CARGO="${CARGO:-cargo}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

die() { echo "release: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps gzip sha256sum ldd; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh)"
done
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"
for lib in libssl.a libcrypto.a; do
  [ -e "/usr/lib/$multiarch/$lib" ] || die "/usr/lib/$multiarch/$lib not found (apt-get install libssl-dev)"
done

version="$(awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 }
  p && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }' Cargo.toml)"
[ -n "$version" ] || die "no version in Cargo.toml [package]"
arch="$(uname -m)"
deb_arch="$(dpkg --print-architecture)"
# Reproducible archives: file times from the commit, not from the build. Not exported to
# cargo: the cc crate reruns every C build (OpenSSL, ring, libssh2) when it changes.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

# OpenSSL: the system's static libraries (libssl-dev), not a second OpenSSL compiled from
# source (`--features vendored` does that, ~5 CPU-minutes more).
echo "release: OPENSSL_STATIC=1 cargo build --profile dist --features static ($version, $arch)" >&2
# OPENSSL_LIB_DIR/INCLUDE_DIR: openssl-sys then skips pkg-config, which links dynamically.
OPENSSL_STATIC=1 OPENSSL_LIB_DIR="/usr/lib/$multiarch" OPENSSL_INCLUDE_DIR=/usr/include \
  "$CARGO" build --locked --profile dist --features static --bin nats-rescue
bin="$TARGET_DIR/dist/nats-rescue"

# The promise of the release binary: nothing but the C library (and libgcc_s) at run time.
libs="$(ldd "$bin")"
if grep -Ei 'libssl|libcrypto|libssh2|libz\.' <<<"$libs"; then
  die "$bin links the libraries above dynamically (were --features static and OPENSSL_STATIC=1 in effect?)"
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
"$bin" generate man --out "$stage/man"
"$bin" generate completions --out "$stage/completions"

rm -rf "$DIST"
mkdir -p "$DIST"
install -m 0755 "$bin" "$DIST/nats-rescue"

tar_opts=(--sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch")

# Tarball: nats-rescue-VERSION-ARCH-linux/{nats-rescue,man/,completions/,README.md,CHANGELOG.md}
name="nats-rescue-$version-$arch-linux"
t="$stage/tar/$name"
mkdir -p "$t/man" "$t/completions"
install -m 0755 "$bin" "$t/nats-rescue"
install -m 0644 "$stage"/man/*.1 "$t/man/"
install -m 0644 "$stage"/completions/* "$t/completions/"
install -m 0644 README.md CHANGELOG.md "$t/"
tar "${tar_opts[@]}" -C "$stage/tar" -czf "$DIST/$name.tar.gz" "$name"

# .deb from a staged tree; dpkg-shlibdeps computes Depends from the binary's symbol versions.
pkg="$stage/deb/debian/nats-rescue"
doc="$pkg/usr/share/doc/nats-rescue"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/share/man/man1" "$doc" \
  "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
  "$pkg/usr/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$pkg/usr/bin/nats-rescue"
for page in "$stage"/man/*.1; do
  gzip -9n <"$page" >"$pkg/usr/share/man/man1/$(basename "$page").gz"
done
install -m 0644 "$stage/completions/nats-rescue.bash" "$pkg/usr/share/bash-completion/completions/nats-rescue"
install -m 0644 "$stage/completions/_nats-rescue" "$pkg/usr/share/zsh/vendor-completions/_nats-rescue"
install -m 0644 "$stage/completions/nats-rescue.fish" "$pkg/usr/share/fish/vendor_completions.d/nats-rescue.fish"
gzip -9n <CHANGELOG.md >"$doc/changelog.gz"
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: nats-rescue

Files: *
Copyright: the nats-rescue authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.

Files: OpenSSL, libssh2 and zlib (linked statically)
Copyright: The OpenSSL Project Authors; the libssh2 project; Jean-loup Gailly and Mark Adler
License: Apache-2.0 (OpenSSL 3), BSD-3-clause (libssh2), Zlib
EOF
chmod 0644 "$doc/copyright"
printf 'Source: nats-rescue\n\nPackage: nats-rescue\nArchitecture: any\n' >"$stage/deb/debian/control"
# (It warns that the binary is not in its package's directory although it is: harmless.)
depends="$(cd "$stage/deb" && dpkg-shlibdeps -O -e debian/nats-rescue/usr/bin/nats-rescue)"
depends="${depends#shlibs:Depends=}"
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies"
cat >"$pkg/DEBIAN/control" <<EOF
Package: nats-rescue
Version: $version
Architecture: $deb_arch
Maintainer: ${DEB_MAINTAINER:-nats-rescue maintainers <root@localhost>}
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $depends
Section: admin
Priority: optional
Description: guided, journaled recovery for NATS JetStream clusters
 Runbooks for a JetStream cluster that lost its meta leader (quorum loss,
 partitions, route configuration, DNS, resource exhaustion, stale Raft state),
 run over SSH on every node, asking before any change, with a hash-chained
 journal that makes an interrupted recovery resumable and a finished one
 auditable.
EOF
find "$pkg" -exec touch -h -d "@$epoch" {} +
deb="$DIST/nats-rescue_${version}_${deb_arch}.deb"
SOURCE_DATE_EPOCH="$epoch" dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null

(cd "$DIST" && sha256sum nats-rescue "$name.tar.gz" "$(basename "$deb")" >SHA256SUMS)
echo "release: $("$DIST/nats-rescue" --version); Depends: $depends" >&2
ls -l "$DIST" >&2
