#!/usr/bin/env bash
# Berth and Debian's dockerd side by side in the same run, both driven by the real docker CLI
# (/usr/local/bin/docker when present). Prints a table and rewrites bench/RESULTS.md.
#
# - Image pull (the images issue): a cold `docker pull` of a multi-layer image (3 random-data
#   layers + busybox, 64 MiB compressed by default) from a private docker-registry on 127.0.0.1.
# - Containers (the runtime issue): `docker run --rm --network none busybox true` latency
#   (median and p90 of 30 runs per engine), 100 x (`docker create` + `docker start`) throughput,
#   and the RSS of the per-container shims (berth-shim; dockerd's containerd-shim-runc-v2) while
#   the 100 containers run. busybox is built offline from Debian's busybox-static, pushed to the
#   same registry and pulled into both engines before anything is timed.
# - Store (the container store): with 1,000 created (never started) busybox containers in each
#   engine, `docker ps -a` latency (median of 10 runs per engine), then ONE `docker rm` of 300 of
#   them; creating them (8 at a time) is setup, not timed.
# - Build: `DOCKER_BUILDKIT=0 docker build --network none` of a 10-step Dockerfile with a 20 MiB
#   COPY context and RUNs that write files, cold (--no-cache) and fully cached (10 rounds), beside
#   the docker CLI's own floor (the cached build against a null engine that only drains the context).
# - Idle footprint: the RSS of every Berth process (five services + nats-server) beside dockerd +
#   containerd, both freshly started with no container (median of 5 samples after 10 s idle).
# - Volumes (the volumes issue): `docker volume create` + `docker volume rm` latency (median of
#   30 cycles per engine), and `docker run --rm -v fresh:/usr copyup true` whose fresh volume is
#   filled by copy-up from the image's /usr (64 MiB of 4 KiB files; median of 5 runs).
# - Stats (the runtime II issue): `docker stats --no-stream` with 50 running busybox containers
#   in each engine, and `docker stats --no-stream <id>` of one (its first sample; median of 5).
# - Network (the network issue): `docker run --rm busybox true` on the default network (median
#   of 30), attach time (`POST /networks/{id}/connect`) at 1, 100 and 500 running containers
#   (--net-containers), 50 concurrent `docker run -d` on one user network resolving each other
#   (busybox nslookup), one container publishing 100 ports (start; berth-network's RSS growth vs
#   dockerd's docker-proxy processes), and DNS back after a SIGKILL of berth-network (Berth
#   only). With this part dockerd runs in Docker's default network configuration (iptables, IP
#   forwarding, masquerade, userland proxy) on its own bridge; what it adds to iptables is taken
#   out again and ip_forward set back when it stops.
#
# Run as root from anywhere; ONE command runs everything:
#   scripts/bench.sh
#   scripts/bench.sh --rounds 3 --size-mb 96 --runs 40   # arguments go to berth-bench (--help)
#   scripts/bench.sh --only containers                   # one part only: prints, RESULTS.md untouched
#   scripts/bench.sh --only store --results              # one part only, replaced in RESULTS.md
#   scripts/bench.sh --only idle --results               # the idle footprint only
#   scripts/bench.sh --only volumes                      # volume create/rm and copy-up only
#   scripts/bench.sh --only build --results              # the build benchmark only
#   scripts/bench.sh --only stats --results              # docker stats only
#   scripts/bench.sh --only network --net-containers 1,100,500 --results  # networking only
#
# It installs what is missing (nats-server, busybox-static, docker-registry, and docker.io for
# dockerd, without starting Debian's docker or containerd services), builds the release
# binaries as deployed (scripts/build-release.sh) and runs target/release/berth-bench. dockerd runs on its own socket, data root and exec root, with its
# own containerd, no bridge and no iptables (but see Network above); everything the run starts lives under one temporary
# directory and is stopped, unmounted and removed at the end, even on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bench.sh: run as root (sudo $0)" >&2
  exit 1
fi

# The docker CLI as it was before docker.io (whose CLI is /usr/bin/docker) is installed.
cli=""
for a in "$@"; do
  case "$a" in --docker|--docker=*) cli=given ;; esac
done
if [ -z "$cli" ]; then
  if [ -x /usr/local/bin/docker ]; then
    cli=/usr/local/bin/docker
  else
    cli=$(command -v docker || true)
  fi
fi

command -v cargo >/dev/null 2>&1 || { echo "bench.sh: cargo not found; install Rust with rustup" >&2; exit 1; }

# nats-server for berth up, busybox-static for the image, docker-registry for the registry,
# docker.io for dockerd (and its containerd and runc).
want=()
for p in nats-server busybox-static docker-registry docker.io; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || want+=("$p")
done
if [ ${#want[@]} -gt 0 ]; then
  echo "bench.sh: installing ${want[*]}"
  # Debian would start its docker and containerd services on the default sockets: the benchmark
  # runs its own dockerd, so forbid service starts during the installation.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  status=0
  apt-get update -qq || status=$?
  [ $status -ne 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null || status=$?
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
  [ $status -eq 0 ] || exit $status
fi
if [ -z "$cli" ]; then
  cli=/usr/bin/docker
fi
if [ "$cli" != given ] && [ "$(command -v docker)" != "$cli" ]; then
  echo "bench.sh: note: \`docker\` on PATH is now $(command -v docker); the benchmark uses $cli" >&2
fi

echo "== scripts/build-release.sh"
scripts/build-release.sh

# Everything the benchmark creates (engine roots, dockerd, registry, image layout) goes under
# $work, so that an interrupted run can be swept up here.
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
host_paths=(/etc/docker/key.json /run/docker/plugins /run/docker)
absent=()
for p in "${host_paths[@]}"; do
  [ -e "$p" ] || absent+=("$p")
done
# Processes whose command line mentions $work.
leftover_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [ "$pid" != "$$" ] || continue
    if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF -- "$work"; then echo "$pid"; fi
  done
}
# The given processes and all their descendants (containers are the shims' children).
with_descendants() {
  [ $# -gt 0 ] || return 0
  ps -e -o pid=,ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { parent[$1] = $2 }
    END {
      do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 } } while (more)
      for (p in keep) print p
    }'
}
sweep() {
  local pids=() p alive
  mapfile -t pids < <(with_descendants $(leftover_pids))
  if [ ${#pids[@]} -gt 0 ]; then
    echo "bench.sh: stopping leftover processes: ${pids[*]}" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      alive=""
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ -n "$alive" ] || break
      sleep 0.2
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  { findmnt -rn -o TARGET | grep -F -- "$work" || true; } | sort -r | while read -r m; do
    echo "bench.sh: unmounting $m" >&2
    umount -l "$m" || true
  done
  rm -rf -- "$work"
  # berth-bench takes dockerd's iptables chains and rules out when it stops dockerd; killed
  # before that, it cannot.
  if [ "$(iptables-save 2>/dev/null | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//')" != "$iptables_before" ]; then
    echo "bench.sh: iptables changed during the run (dockerd's DOCKER* chains?): check iptables-save" >&2
  fi
  if [ ! -S /run/containerd/containerd.sock ] && ! pgrep -x dockerd >/dev/null; then
    for p in "${absent[@]}"; do
      if [ -d "$p" ]; then rmdir "$p" 2>/dev/null || true; else rm -f "$p"; fi
    done
  fi
}
iptables_before=$(iptables-save 2>/dev/null | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//' || true)
trap sweep EXIT

args=("$@")
[ "$cli" = given ] || args=(--docker "$cli" "${args[@]}")
bin_dir="${CARGO_TARGET_DIR:-$PWD/target}/release"
TMPDIR="$work" \
  BERTH_BIN_DIR="$bin_dir" \
  BERTH_BENCH_COMMAND="scripts/bench.sh${*:+ $*}" \
  "$bin_dir/berth-bench" "${args[@]}"
