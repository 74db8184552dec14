#!/usr/bin/env bash
# Installs the Debian 12 packages fresco needs to build, test, fuzz and
# validate its compose file. Idempotent: when everything is installed it
# returns at once without touching apt.
#
#   scripts/install-deps.sh            install what is missing
#   scripts/install-deps.sh --check    list what is missing; exit 1 if anything is
#   scripts/install-deps.sh --list     print the package list
set -euo pipefail

# The one list. Later parts of fresco add theirs here (libvirt-dev,
# librdkafka-dev, libpq-dev, postgresql, slurm-wlm, ...).
FRESCO_PACKAGES=(
    # build
    build-essential
    cmake
    pkg-config
    # clang for the sanitizer and fuzz builds; libclang-rt-14-dev carries
    # libclang_rt.fuzzer*.a for -fsanitize=fuzzer; llvm gives llvm-symbolizer
    # for readable sanitizer reports
    clang
    libclang-rt-14-dev
    llvm
    # libraries
    libnng-dev
    libmsgpack-dev
    libyaml-dev
    libcmocka-dev
    libvirt-dev
    libpq-dev
    librdkafka-dev
    # collectd runs beside fresco in the libvirt benchmark
    collectd-core
    # the publisher's sinks are tested against the real stores: a throwaway
    # PostgreSQL cluster, InfluxDB 1.x, librdkafka's mock cluster (kcat
    # reads it back)
    postgresql
    influxdb
    kcat
    # virtualised HPC jobs are tested against a real single-node Slurm
    # (slurmctld, slurmd, munge) and its Torque/PBS command wrappers
    slurm-wlm
    slurmctld
    slurmd
    slurm-client
    slurm-wlm-torque
    munge
    # tests, certificates, compose validation, several-node tests
    openssl
    docker-compose
    iproute2
    procps
)

usage()
{
    sed -n '2,9s/^# \{0,1\}//p' "$0"
}

mode=install
case "${1:-}" in
"") ;;
--check) mode=check ;;
--list) mode=list ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    echo "install-deps: unknown option '$1'" >&2
    usage >&2
    exit 2
    ;;
esac

if [[ "$mode" == list ]]; then
    printf '%s\n' "${FRESCO_PACKAGES[@]}"
    exit 0
fi

missing=()
for pkg in "${FRESCO_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != installed ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#FRESCO_PACKAGES[@]} packages present"
    exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [[ "$mode" == check ]]; then
    exit 1
fi

if [[ ! -r /etc/debian_version ]] || ! command -v apt-get >/dev/null; then
    echo "install-deps: this script needs Debian 12 (apt-get); install the packages above by hand" >&2
    exit 1
fi

as_root=()
if ((EUID != 0)); then
    if command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        echo "install-deps: not root and no sudo: run as root to install the packages above" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
