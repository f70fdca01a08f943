#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds Berth in release mode and runs the whole engine in the
# foreground (`berth up`). Extra arguments go to `berth up`, for example:
#   scripts/run-engine.sh --config /etc/berth/daemon.json
#   scripts/run-engine.sh --data-root /srv/berth --run-root /run/berth-dev
# Then, in another shell: export DOCKER_HOST=unix:///run/berth/docker.sock; docker info
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh
scripts/build-release.sh
exec target/release/berth up "$@"
