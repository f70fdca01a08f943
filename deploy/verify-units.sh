#!/usr/bin/env bash
# verify-units.sh — check Berth's systemd units (deploy/systemd/*.service, berth.target).
# --units DIR checks the berth*.service and berth*.target files of DIR instead (for example
# /etc/systemd/system after install.sh, with --require-binaries).
#
# Exits 0 only when every check below passes; 1 when a check fails; 2 when it cannot run
# (no systemd-analyze, bad option). Needs no running systemd, installs nothing, and does not
# need root.
#
# What it checks:
#  1. `systemd-analyze verify` of all the units, unmodified, with --root pointing at a
#     throw-away directory that holds: the units (in etc/systemd/system), a copy of this
#     host's unit library (/usr/lib/systemd/system: network.target, multi-user.target, ...),
#     and a stub executable at the exact path of every Exec*= command. verify then reports
#     unknown keys, unparsable values, non-absolute or non-executable commands, missing
#     dependencies of the transaction, and ordering cycles. Any line it prints counts as a
#     failure, because systemd-analyze exits 0 after warnings such as "Unknown key".
#  2. Executables: a command that is not a Berth binary (nats-server, kill, touch) must exist
#     and be executable on this host. A Berth binary (/usr/local/bin/berth-*) that is not
#     installed yet is checked against a stub, and said so; --require-binaries makes that a
#     failure instead (use it after install.sh).
#  3. Unit names: every unit named in Wants=, Requires=, After=, Before=, PartOf=, BindsTo=,
#     Conflicts=, WantedBy=, Also=, ... that starts with "berth" must be one of the units
#     checked here (systemd accepts dependencies on missing units silently, so a typo would
#     pass verify); any other must exist in the host's unit library (except in Conflicts=).
#  4. Invariants of the deployment: every service has Type=simple and Restart=on-failure;
#     every Berth service (not NATS) has ExecReload=/bin/kill -HUP $MAINPID and
#     Wants= + After= berth-nats.service; berth-runtime keeps KillMode=process and
#     Delegate=yes (containers survive a runtime restart); the gateway has no Requires=,
#     BindsTo= or Requisite= (it must keep answering when a backend is down).
#  5. Sandboxing: `systemd-analyze security --offline=yes --threshold=N` of each sandboxed
#     unit stays at or under the exposure level in max_exposure below (berth-runtime is
#     unsandboxed by design and skipped), so that a sandbox cannot be loosened unnoticed.
#     --no-security skips this check.
#
# Usage: deploy/verify-units.sh [--units DIR] [--require-binaries] [--no-security]
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
units_dir="$script_dir/systemd"
require_binaries=0
check_security=1

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --units) [[ $# -ge 2 ]] || { echo "verify-units: --units needs a directory" >&2; exit 2; }
                 units_dir=$2; shift 2 ;;
        --units=*) units_dir=${1#--units=}; shift ;;
        --require-binaries) require_binaries=1; shift ;;
        --no-security) check_security=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "verify-units: unknown option: $1" >&2; exit 2 ;;
    esac
done

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "verify-units: systemd-analyze not found (Debian: apt-get install systemd)" >&2
    exit 2
fi
if [[ ! -d $units_dir ]]; then
    echo "verify-units: no such directory: $units_dir" >&2
    exit 2
fi

# Highest acceptable `systemd-analyze security` exposure, in tenths as --threshold takes it
# (printed as 0.0 = locked down ... 10.0 = unsandboxed; 25 here means 2.5).
declare -A max_exposure=(
    [berth-nats.service]=25
    [berth-api-gateway.service]=30
    [berth-images.service]=40
    [berth-network.service]=40
    # Mounts local-driver volumes in the host's mount namespace (CAP_SYS_ADMIN, no private mounts).
    [berth-volumes.service]=50
)

shopt -s nullglob
unit_files=("$units_dir"/berth*.service "$units_dir"/berth*.target)
shopt -u nullglob
if [[ ${#unit_files[@]} -eq 0 ]]; then
    echo "verify-units: no units in $units_dir" >&2
    exit 2
fi
units=()
declare -A ours=()
for f in "${unit_files[@]}"; do
    u=$(basename "$f")
    units+=("$u")
    ours[$u]=1
done

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

root=$(mktemp -d "${TMPDIR:-/tmp}/berth-verify-units.XXXXXX")
trap 'rm -rf "$root"' EXIT

# The throw-away root: this host's unit library and directory layout, then our units.
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd"
# Merged /usr (Debian 12: /bin -> usr/bin): the same links, always relative to the root.
for d in bin sbin lib lib64; do
    if [[ -L /$d ]]; then
        target=$(readlink "/$d")
        target=${target#/}
        mkdir -p "$root/$target"
        ln -s "$target" "$root/$d"
    fi
done
if [[ -d /usr/lib/systemd/system ]]; then
    cp -R /usr/lib/systemd/system "$root/usr/lib/systemd/"
fi
if [[ ! -L /lib && -d /lib/systemd/system ]]; then
    mkdir -p "$root/lib/systemd"
    cp -R /lib/systemd/system "$root/lib/systemd/"
fi
cp "${unit_files[@]}" "$root/etc/systemd/system/"

# Lines "Key=value" of a unit file, for one key (all occurrences), comments skipped.
values() {
    local file=$1 key=$2
    sed -n -e "s/^[[:space:]]*$key=//p" "$file"
}

unit_exists_in_root() {
    local name=$1 d
    for d in etc/systemd/system usr/lib/systemd/system lib/systemd/system; do
        [[ -e $root/$d/$name ]] && return 0
    done
    return 1
}

# 2. Executables, and a stub for each at the same path inside the root.
exec_keys='ExecCondition|ExecStartPre|ExecStart|ExecStartPost|ExecReload|ExecStop|ExecStopPost'
declare -A seen_exec=()
for f in "${unit_files[@]}"; do
    u=$(basename "$f")
    while IFS= read -r cmd; do
        # Strip systemd's command prefixes (@ - : + ! !!) and take the program.
        while [[ $cmd == [@:+!-]* ]]; do cmd=${cmd:1}; done
        prog=${cmd%%[[:space:]]*}
        [[ -n $prog ]] || continue
        if [[ $prog != /* ]]; then
            fail "$u: command '$prog' is not an absolute path"
            continue
        fi
        [[ -z ${seen_exec[$prog]:-} ]] || continue
        seen_exec[$prog]=1
        if [[ -x $prog && ! -d $prog ]]; then
            :
        elif [[ $(basename "$prog") == berth* && $require_binaries -eq 0 ]]; then
            echo "note: $prog is not installed on this host: checked against a stub (--require-binaries to refuse)"
        else
            fail "$u: $prog does not exist or is not executable on this host"
        fi
        mkdir -p "$root$(dirname "$prog")"
        stub=$(realpath -m "$root$prog")
        if [[ $stub != "$root"/* ]]; then
            fail "$u: $prog resolves outside the verification root"
            continue
        fi
        printf '#!/bin/sh\nexit 0\n' >"$stub"
        chmod 0755 "$stub"
    done < <(sed -n -E "s/^[[:space:]]*($exec_keys)=//p" "$f")
done

# 1. systemd-analyze verify.
verify_out=$(cd "$root" && SYSTEMD_LOG_LEVEL=info SYSTEMD_LOG_COLOR=0 \
    systemd-analyze verify --man=no --root="$root" "${units[@]}" 2>&1) && verify_rc=0 || verify_rc=$?
if [[ $verify_rc -ne 0 || -n $verify_out ]]; then
    fail "systemd-analyze verify (exit $verify_rc):"
    # Show paths as in the repository, not in the throw-away root.
    sed -e "s#$root/etc/systemd/system/#$units_dir/#g" -e 's/^/    /' <<<"$verify_out"
else
    echo "ok: systemd-analyze verify: ${units[*]}"
fi

# 3. Unit names.
failures_before=$failures
dep_keys='Wants|Requires|Requisite|BindsTo|PartOf|Upholds|After|Before|OnFailure|OnSuccess|PropagatesReloadTo|ReloadPropagatedFrom|WantedBy|RequiredBy|UpheldBy|Also|Conflicts'
for f in "${unit_files[@]}"; do
    u=$(basename "$f")
    while IFS='=' read -r key list; do
        for name in $list; do
            if [[ $name == berth* ]]; then
                [[ -n ${ours[$name]:-} ]] || fail "$u: $key= names $name, which is not in $units_dir"
            elif [[ $key != Conflicts ]] && ! unit_exists_in_root "$name"; then
                fail "$u: $key= names $name, which this host's systemd does not have"
            fi
        done
    done < <(sed -n -E "s/^[[:space:]]*($dep_keys)=(.*)$/\1=\2/p" "$f")
done

# 4. Invariants.
has_value() {
    local file=$1 key=$2 want=$3
    values "$file" "$key" | tr ' ' '\n' | grep -qxF -- "$want"
}
for f in "${unit_files[@]}"; do
    [[ $f == *.service ]] || continue
    u=$(basename "$f")
    [[ $(values "$f" Type) == simple ]] || fail "$u: want Type=simple"
    [[ $(values "$f" Restart) == on-failure ]] || fail "$u: want Restart=on-failure"
    [[ $u == berth-nats.service ]] && continue
    # shellcheck disable=SC2016 # $MAINPID is systemd's, not ours
    [[ $(values "$f" ExecReload) == '/bin/kill -HUP $MAINPID' ]] \
        || fail "$u: want ExecReload=/bin/kill -HUP \$MAINPID"
    has_value "$f" Wants berth-nats.service || fail "$u: want Wants=berth-nats.service"
    has_value "$f" After berth-nats.service || fail "$u: want After=berth-nats.service"
done
if [[ -f $units_dir/berth-runtime.service ]]; then
    [[ $(values "$units_dir/berth-runtime.service" KillMode) == process ]] \
        || fail "berth-runtime.service: want KillMode=process (shims must outlive the runtime)"
    [[ $(values "$units_dir/berth-runtime.service" Delegate) == yes ]] \
        || fail "berth-runtime.service: want Delegate=yes"
fi
if [[ -f $units_dir/berth-api-gateway.service ]]; then
    for key in Requires BindsTo Requisite; do
        [[ -z $(values "$units_dir/berth-api-gateway.service" "$key") ]] \
            || fail "berth-api-gateway.service: no $key= (the gateway must outlive its backends)"
    done
fi
if [[ $failures -eq $failures_before ]]; then
    echo "ok: unit names and invariants"
fi

# 5. Sandboxing.
if [[ $check_security -eq 1 ]]; then
    if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
        for u in $(printf '%s\n' "${!max_exposure[@]}" | sort); do
            [[ -n ${ours[$u]:-} ]] || continue
            out=$(cd "$root" && SYSTEMD_LOG_COLOR=0 systemd-analyze security --offline=yes \
                --root="$root" --threshold="${max_exposure[$u]}" --no-pager "$u" 2>&1) && rc=0 || rc=$?
            level=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' <<<"$out" | awk '{print $NF}' || true)
            max=$(awk -v t="${max_exposure[$u]}" 'BEGIN { printf "%.1f", t / 10 }')
            if [[ $rc -eq 0 ]]; then
                echo "ok: $u exposure ${level:-?} <= $max"
            else
                fail "$u: exposure ${level:-?} is over $max (or the check failed, exit $rc)"
                sed -n -e '/^Failed\|rror/s/^/    /p' <<<"$out"
            fi
        done
    else
        echo "note: this systemd-analyze has no 'security --offline': sandbox levels not checked"
    fi
fi

if [[ $failures -gt 0 ]]; then
    echo "verify-units: $failures check(s) failed"
    exit 1
fi
echo "verify-units: all checks passed"
