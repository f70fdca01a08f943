#!/usr/bin/env bash
# Sets up a Debian 12 machine and runs Berth's whole test suite: formatting, lints, unit tests,
# and the end-to-end tests that start real engines and drive the real docker CLI.
# Run as root from anywhere: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh

export CARGO_TERM_COLOR=never
echo "== cargo fmt"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo deny (licenses, bans; deny.toml)"
cargo deny --locked check --hide-inclusion-graph licenses bans
echo "== unused dependencies (cargo machete)"
cargo machete
echo "== build"
cargo build --workspace --bins --locked
echo "== tests"
cargo test --workspace --locked --no-fail-fast
# The shim as deployed (static, [profile.shim]; scripts/build-shim.sh) passes the shim's own
# root tests too.
echo "== deployed shim"
scripts/build-shim.sh target/static
BERTH_SHIM_BIN=$PWD/target/static/berth-shim cargo test --locked -p berth-shim --test shim --test user
# Two minutes of chaos: a mixed workload while Berth's services and nats-server are killed at
# random; the failure model's invariants must hold (scripts/chaos.sh).
echo "== chaos (2 minutes)"
scripts/chaos.sh 120
