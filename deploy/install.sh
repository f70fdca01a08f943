#!/usr/bin/env bash
# install.sh — installs Berth on a Debian host (run as root; safe to run again to upgrade).
#
#   deploy/install.sh [--prefix DIR] [--bin-dir DIR] [--no-start]
#
#   --prefix DIR   where binaries go, as DIR/bin (default /usr/local). The units' ExecStart=
#                  paths are rewritten to match when it is not /usr/local.
#   --bin-dir DIR  where the built binaries are (default: target/release of this repository;
#                  build them with `scripts/build-release.sh`: static, with the small
#                  berth-shim of `scripts/build-shim.sh`).
#   --no-start     install everything but do not enable or start berth.target.
#
# What it does:
#   1. installs berth, berth-api-gateway, berth-runtime, berth-images, berth-network and
#      berth-volumes to PREFIX/bin (install -m 0755);
#   2. installs nats-server with apt-get when /usr/sbin/nats-server is missing (and makes
#      sure its `nats` user exists);
#   3. creates /etc/berth and copies deploy/daemon.json to /etc/berth/daemon.json only if
#      there is none (an existing configuration is never overwritten);
#   4. creates the group `berth` (the Docker API socket's group) and /var/lib/berth (0711),
#      and records the engine ID in /var/lib/berth/engine-id if there is none yet (the
#      sandboxed services can only write their own /var/lib/berth/<service>);
#   5. lists overlay and br_netfilter in /etc/modules-load.d/berth.conf and loads them (the
#      sandboxed units may not load kernel modules themselves);
#   6. installs the units of deploy/systemd to /etc/systemd/system; when systemd runs
#      (/run/systemd/system exists): daemon-reload, disables Debian's own nats-server.service
#      (it takes 127.0.0.1:4222 too), restarts the services whose binary changed, and,
#      unless --no-start, `systemctl enable --now berth.target`. Without systemd it says how
#      to run the engine with `berth up`.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

prefix=/usr/local
bin_dir=$repo_root/target/release
start=1

binaries=(berth berth-api-gateway berth-runtime berth-images berth-network berth-volumes)
services=(berth-api-gateway berth-runtime berth-images berth-network berth-volumes)
config_dir=/etc/berth
data_root=/var/lib/berth
unit_dir=/etc/systemd/system
nats_bin=/usr/sbin/nats-server

say() { printf 'install: %s\n' "$*"; }
die() {
    printf 'install: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}
need_arg() {
    [[ $2 -ge 2 ]] || die "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) need_arg "$1" $#; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --bin-dir) need_arg "$1" $#; bin_dir=$2; shift 2 ;;
        --bin-dir=*) bin_dir=${1#--bin-dir=}; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
done

[[ $prefix == /* ]] || die "--prefix must be an absolute path: $prefix"
prefix=${prefix%/}
[[ -n $prefix ]] || die "--prefix must not be /"
[[ $(id -u) -eq 0 ]] || die "run as root (it writes $prefix/bin, /etc, /var/lib and systemd units)"

# Everything is checked before anything is changed.
missing=()
for b in "${binaries[@]}"; do
    [[ -f $bin_dir/$b && -x $bin_dir/$b ]] || missing+=("$bin_dir/$b")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    die "not built: ${missing[*]}
  build them first: (cd $repo_root && scripts/build-release.sh), or pass --bin-dir"
fi
for f in "$script_dir/daemon.json" "$script_dir"/systemd/berth.target; do
    [[ -f $f ]] || die "missing $f: run this script from a Berth checkout"
done

systemd_running=0
[[ -d /run/systemd/system ]] && systemd_running=1

# 1. Binaries. install(1) replaces the file (unlink + create), so a running binary is fine.
changed=()
install -d -m 0755 "$prefix/bin"
for b in "${binaries[@]}" berth-shim; do
    src=$bin_dir/$b
    dst=$prefix/bin/$b
    # berth-shim is installed when it is built; the six others are required (checked above).
    [[ -f $src ]] || continue
    if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
        continue
    fi
    install -m 0755 "$src" "$dst"
    say "installed $dst"
    changed+=("$b")
done

# 2. NATS (Debian package nats-server; berth-nats.service runs /usr/sbin/nats-server as `nats`).
if [[ ! -x $nats_bin ]]; then
    command -v apt-get >/dev/null 2>&1 \
        || die "$nats_bin is missing and there is no apt-get: install nats-server (2.9 or later) there"
    say "installing nats-server with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server
    fi
    [[ -x $nats_bin ]] || die "nats-server was installed but $nats_bin is still missing"
fi
if ! getent passwd nats >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "NATS server" nats
    say "created system user nats"
fi

# 3. Configuration: never overwrite an operator's daemon.json.
install -d -m 0755 "$config_dir"
if [[ -e $config_dir/daemon.json ]]; then
    say "kept existing $config_dir/daemon.json"
else
    install -m 0644 "$script_dir/daemon.json" "$config_dir/daemon.json"
    say "installed $config_dir/daemon.json"
fi

# 4. Group, data root and engine ID.
if ! getent group berth >/dev/null; then
    groupadd --system berth
    say "created group berth (members may use the Docker API socket)"
fi
install -d -m 0711 -o root -g root "$data_root"
if [[ ! -s $data_root/engine-id && -r /proc/sys/kernel/random/uuid ]]; then
    # The format the services expect: a lowercase UUID. Written beside, then renamed.
    tmp=$(mktemp "$data_root/.engine-id.XXXXXX")
    tr -d '\n' </proc/sys/kernel/random/uuid >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$data_root/engine-id"
    say "recorded engine ID $(cat "$data_root/engine-id") in $data_root/engine-id"
fi

# 5. Kernel modules: overlay (images, runtime) and br_netfilter (network).
modules_conf=/etc/modules-load.d/berth.conf
if [[ ! -e $modules_conf ]]; then
    install -d -m 0755 /etc/modules-load.d
    printf '# Loaded at boot for Berth (deploy/install.sh).\noverlay\nbr_netfilter\n' >"$modules_conf"
    chmod 0644 "$modules_conf"
    say "installed $modules_conf"
fi
if command -v modprobe >/dev/null 2>&1; then
    for m in overlay br_netfilter; do
        modprobe "$m" 2>/dev/null || say "warning: could not load kernel module $m now (it is listed in $modules_conf)"
    done
fi

# 6. Units. Operators change them with drop-ins (systemctl edit berth-<service>), which a new
# install keeps; the units themselves are replaced.
install -d -m 0755 "$unit_dir"
units_changed=0
for src in "$script_dir"/systemd/*.service "$script_dir"/systemd/*.target; do
    name=$(basename "$src")
    tmp=$(mktemp)
    if [[ $prefix == /usr/local ]]; then
        cat "$src" >"$tmp"
    else
        sed -e "s#/usr/local/bin/#$prefix/bin/#g" "$src" >"$tmp"
    fi
    if [[ -f $unit_dir/$name ]] && cmp -s "$tmp" "$unit_dir/$name"; then
        rm -f "$tmp"
        continue
    fi
    install -m 0644 "$tmp" "$unit_dir/$name"
    rm -f "$tmp"
    say "installed $unit_dir/$name"
    units_changed=1
done

if [[ $systemd_running -eq 1 ]]; then
    systemctl daemon-reload
    # Debian's nats-server.service listens on 127.0.0.1:4222 as well.
    if systemctl is-enabled --quiet nats-server.service 2>/dev/null \
        || systemctl is-active --quiet nats-server.service 2>/dev/null; then
        systemctl disable --now nats-server.service
        say "disabled Debian's nats-server.service: berth-nats.service serves 127.0.0.1:4222"
    fi
    # A new binary or unit takes effect in services that already run (containers keep
    # running across a restart of berth-runtime).
    to_restart=()
    for s in "${services[@]}"; do
        if [[ $units_changed -eq 1 ]] || printf '%s\n' "${changed[@]}" | grep -qxF "$s"; then
            to_restart+=("$s.service")
        fi
    done
    if [[ ${#to_restart[@]} -gt 0 ]]; then
        systemctl try-restart "${to_restart[@]}"
    fi
    if [[ $start -eq 1 ]]; then
        systemctl enable --now berth.target
        say "berth.target enabled and started; check it with: systemctl status 'berth-*'"
        say "Docker API: export DOCKER_HOST=unix:///run/berth/docker.sock"
    else
        say "--no-start: start the engine with: systemctl enable --now berth.target"
    fi
else
    cat <<EOF
install: systemd is not running here (no /run/systemd/system): the units are installed in
install: $unit_dir but nothing was started. To run the engine in the foreground:
install:   $nats_bin --addr 127.0.0.1 --port 4222 --jetstream --store_dir $data_root/nats &
install:   $prefix/bin/berth up --config $config_dir/daemon.json
install: ($config_dir/daemon.json names berth.nats-url nats://127.0.0.1:4222, so berth up uses
install: that server; without berth.nats-url, berth up starts a nats-server of its own.)
install: Then: export DOCKER_HOST=unix:///run/berth/docker.sock
EOF
fi
say "done"
