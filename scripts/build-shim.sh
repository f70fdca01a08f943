#!/usr/bin/env bash
# Builds berth-shim as it is deployed and puts it beside the release binaries, replacing the
# one `cargo build --release` made:
#   scripts/build-shim.sh            # -> target/release/berth-shim
#   scripts/build-shim.sh DIR        # -> DIR/berth-shim
#
# One shim runs per container, so its memory is what every container costs. This build links
# glibc statically and without PIE (no ld.so or shared libc to map, no relocations to write at
# start), resolves the shim's dependency features without the rest of the workspace (tokio
# without the multi-threaded runtime, for one) and uses `[profile.shim]` (size over speed, fat
# LTO). The flags need an explicit --target, so that they reach neither build scripts nor
# proc-macros. A plain `cargo build --release` shim works just as well, only larger.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=${1:-target/release}
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
  cargo build --locked --profile shim --target "$host" -p berth-shim
mkdir -p "$dest"
# install(1) unlinks first: the file cargo hard-linked into target/release stays untouched.
install -m 0755 "target/$host/shim/berth-shim" "$dest/berth-shim"
echo "build-shim.sh: $dest/berth-shim (static, $(stat -c %s "$dest/berth-shim") bytes)"
