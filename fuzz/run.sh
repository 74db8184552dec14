#!/usr/bin/env bash
# Runs every fuzz target built in a build directory for SECONDS each and
# fails when any of them finds a crash, a leak or a timeout. Builds nothing.
#
#   fuzz/run.sh SECONDS [BUILD_DIR]     (BUILD_DIR defaults to build-fuzz)
#   fuzz/run.sh BUILD_DIR SECONDS       (the same, arguments either way round)
#
# Seeds are read from fuzz/corpus/<target>/ (see fuzz/seed.sh) and left as
# they are; what a run discovers goes to BUILD_DIR/fuzz-work/<target>/, crash
# inputs to BUILD_DIR/fuzz-artifacts/<target>/, logs to
# BUILD_DIR/fuzz-logs/<target>.log. FUZZ_ARGS adds libFuzzer flags.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=
build=
for arg in "$@"; do
    if [[ -z $seconds && $arg =~ ^[0-9]+$ ]]; then
        seconds=$arg
    elif [[ -z $build ]]; then
        build=$arg
    else
        echo "usage: fuzz/run.sh SECONDS [BUILD_DIR]" >&2
        exit 2
    fi
done
if [[ -z $seconds ]]; then
    echo "usage: fuzz/run.sh SECONDS [BUILD_DIR]" >&2
    exit 2
fi
build=${build:-$root/build-fuzz}
if [[ ! -d $build ]]; then
    echo "fuzz/run.sh: no build directory $build" >&2
    exit 2
fi
build=$(cd "$build" && pwd)

shopt -s nullglob
targets=()
for bin in "$build"/fuzz/fuzz_*; do
    if [[ -f $bin && -x $bin ]]; then
        targets+=("$bin")
    fi
done
if ((${#targets[@]} == 0)); then
    echo "fuzz/run.sh: no fuzz targets in $build/fuzz (configure with CC=clang -DFRESCO_FUZZ=ON)" >&2
    exit 2
fi

failed=()
for bin in "${targets[@]}"; do
    name=$(basename "$bin")
    work=$build/fuzz-work/$name
    artifacts=$build/fuzz-artifacts/$name
    log=$build/fuzz-logs/$name.log
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    corpora=("$work")
    if [[ -d $root/fuzz/corpus/$name ]]; then
        corpora+=("$root/fuzz/corpus/$name")
    fi
    printf '%-20s %ss ... ' "$name" "$seconds"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "${corpora[@]}" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if ((rc == 0)); then
        echo "ok (${runs:-?} runs)"
    else
        echo "FAILED (exit $rc; log $log)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -n 10
        failed+=("$name")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzz/run.sh: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} targets clean"
