#!/usr/bin/env bash
# A bounded chaos run that proves the failure model: a mixed workload (run -d, exec, logs,
# stop, rm, tag, rmi, pull, events) from several concurrent docker clients while a killer
# SIGKILLs a random Berth process (nats-server included) every few seconds; then the
# invariants, printed as figures, and `N passed, M failed`.
#   scripts/chaos.sh                 # 2 minutes
#   scripts/chaos.sh 600             # any length, in seconds
# Environment: CHAOS_CLIENTS (default 4), CHAOS_KILL_EVERY (seconds, default 4).
# Run as root (it starts a whole engine, with its own nats-server, registry and busybox image).
set -euo pipefail
cd "$(dirname "$0")/.."

export CHAOS_SECONDS="${1:-${CHAOS_SECONDS:-120}}"
cargo build --workspace --bins --locked
exec cargo test --locked -p berth-e2e --test chaos -- --ignored --nocapture --test-threads 1
