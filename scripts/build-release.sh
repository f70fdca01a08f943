#!/usr/bin/env bash
# Builds Berth's binaries as they are deployed and puts them in target/release (or DIR):
#   scripts/build-release.sh          # -> target/release/berth, berth-api-gateway, ...
#   scripts/build-release.sh DIR      # -> DIR/...
#
# Five services run all the time, and an idle service's memory is mostly the pages of its
# binary and of the shared libraries it maps (bench/IDLE-MEMORY.md). So every binary is linked
# statically against glibc: no ld.so, shared libc, libm or libgcc_s to map, only the libc code
# used. It stays position-independent (static-pie), so the services, which run as root and parse
# what clients and registries send, keep ASLR. The flag needs an explicit --target, so that it
# reaches neither build scripts nor proc-macros; the release profile (Cargo.toml) is the same as for a
# plain `cargo build --release`, which works just as well, only larger. glibc's name service
# (getaddrinfo, getgrnam) stays that of the host: `files` and `dns` are built in, and other
# modules in /etc/nsswitch.conf are loaded from the glibc the binaries were linked with, so
# build on the machine (or the distribution release) that runs them.
# The shim is then built again on its own by scripts/build-shim.sh (its own features and
# profile), replacing the one of the workspace build.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=${1:-target/release}
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked --release --target "$host" --workspace --bins
mkdir -p "$dest"
bins="berth berth-api-gateway berth-runtime berth-images berth-network berth-volumes berth-bench"
for b in $bins; do
  # install(1) unlinks first: what cargo hard-linked into target/release stays untouched.
  install -m 0755 "target/$host/release/$b" "$dest/$b"
done
echo "build-release.sh: $bins in $dest (static-pie)"
scripts/build-shim.sh "$dest"
