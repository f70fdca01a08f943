#!/usr/bin/env bash
# Installs what Berth needs to build, run and test on Debian 12, as root. Idempotent.
# - nats-server: the event bus (JetStream)
# - prometheus: promtool, which the tests use to check every /metrics
# - curl: raw HTTP checks in tests
# - nftables: `nft`, which the network service runs to program Berth's own table
# - docker.io: Debian's dockerd 20.10, the reference engine for the save/load round trip and the
#   benchmarks (always run on its own socket and data root); also the docker CLI when none is on
#   PATH (tests drive the real CLI; a newer one earlier in PATH is kept)
# - docker-registry, busybox-static, skopeo, umoci: a local registry and test images
# - docker-compose: Debian's compose 1.29, which the build tests drive (`docker-compose build`)
# - systemd: systemd-analyze, which checks the units in deploy/
# - dbus-daemon: a private bus on which the systemd cgroup driver's tests serve a fake systemd
# - docker (PyPI, 7.x): the Python SDK, which the tests drive as a second real client
# - cargo-deny and cargo-machete (crates.io, pinned, built once): the license, ban and
#   unused-dependency checks of scripts/test.sh
# The Rust toolchain (rustup, Rust >= 1.90) must already be installed.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-debian.sh: run as root (sudo $0)" >&2
  exit 1
fi

want=(nats-server prometheus curl nftables systemd dbus-daemon ca-certificates docker-registry busybox-static skopeo umoci docker.io docker-compose)

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-debian.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import docker, sys; sys.exit(0 if docker.__version__.startswith("7.") else 1)' 2>/dev/null; then
  echo "setup-debian.sh: installing the Python docker SDK 7.x"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -m pip install --quiet 'docker>=7,<8' 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages 'docker>=7,<8'
fi

# Debian starts some of these as services when systemd runs; Berth starts its own.
if command -v cargo >/dev/null 2>&1; then
  rust=$(rustc --version | awk '{print $2}')
  if [ "$(printf '%s\n1.90.0\n' "$rust" | sort -V | head -n1)" != "1.90.0" ]; then
    echo "setup-debian.sh: Rust $rust is too old; Berth needs 1.90 or newer (rustup update)" >&2
    exit 1
  fi
else
  echo "setup-debian.sh: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
# Cargo tools that scripts/test.sh runs, pinned, built once: an installed binary of the pinned
# version is kept (cargo's bin directory survives between runs on the same machine).
cargo_tool() { # <crate> <version> <binary> [cargo install flags...]
  local crate=$1 version=$2 bin=$3
  shift 3
  if "$bin" --version 2>/dev/null | grep -qw -- "$version"; then
    return 0
  fi
  echo "setup-debian.sh: installing $crate $version (cargo install, once)"
  cargo install --locked --quiet "$crate" --version "$version" "$@"
}
cargo_tool cargo-machete 0.9.2 cargo-machete
# Advisories are not checked (their database cannot be fetched here): no default features.
cargo_tool cargo-deny 0.20.2 cargo-deny --no-default-features

echo "setup-debian.sh: ready ($(nats-server --version), $(docker --version), rustc $(rustc --version | awk '{print $2}'))"
