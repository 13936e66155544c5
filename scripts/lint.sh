#!/usr/bin/env bash
# Hygiene that CI enforces: formatting, clippy with warnings as errors (the lint set is in
# Cargo.toml), and shellcheck on every shell file, including the ones built into the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "lint: cargo fmt --check" >&2
cargo fmt --all --check
echo "lint: cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --locked --all-targets -- -D warnings
mapfile -t shells < <(git ls-files '*.sh' .ci/run)
echo "lint: shellcheck -S warning (${#shells[@]} files)" >&2
shellcheck -S warning "${shells[@]}"
