#!/usr/bin/env bash
# Installs what is missing, builds fresco and runs every test:
#   deps     scripts/install-deps.sh
#   gcc      gcc RelWithDebInfo build in build/ + ctest (unit, integration, bench smoke)
#   asan     clang + AddressSanitizer/UBSan build in build-asan/ + ctest
#   fuzz     clang libFuzzer build in build-fuzz/ + fuzz/run.sh for
#            FRESCO_FUZZ_SECONDS (default 30) per target
#   compose  docker-compose config validation of compose/docker-compose.yml
#
#   scripts/test-all.sh              all stages
#   scripts/test-all.sh gcc compose  only the stages named
#
# Every stage runs even when an earlier one failed; the last line is
# "N passed, N failed" and the exit code is non-zero when any stage failed.
# Environment: FRESCO_FUZZ_SECONDS, FRESCO_JOBS (build and ctest parallelism,
# default 2), FRESCO_BUILD_PREFIX (default build: the trees are build/,
# build-asan/, build-fuzz/).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

ALL_STAGES=(deps gcc asan fuzz compose)
jobs=${FRESCO_JOBS:-2}
fuzz_seconds=${FRESCO_FUZZ_SECONDS:-30}
prefix=${FRESCO_BUILD_PREFIX:-build}

banner()
{
    printf '\n==== %s ====\n' "$*"
}

# configure_and_build DIR [cmake args...]
configure_and_build()
{
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@"
    cmake --build "$dir" -j "$jobs"
}

run_ctest()
{
    # One test at a time: the suites start real services on loopback ports
    # and time their shutdowns, which parallel runs on two cores would skew.
    ctest --test-dir "$1" --output-on-failure --no-tests=error </dev/null
}

stage_deps()
{
    ./scripts/install-deps.sh
}

stage_gcc()
{
    configure_and_build "$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc \
        -DFRESCO_SANITIZE=OFF -DFRESCO_FUZZ=OFF -DFRESCO_TESTS=ON -DFRESCO_BENCH=ON
    run_ctest "$prefix"
}

stage_asan()
{
    configure_and_build "$prefix-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
        -DFRESCO_SANITIZE=ON -DFRESCO_FUZZ=OFF -DFRESCO_TESTS=ON -DFRESCO_BENCH=ON
    run_ctest "$prefix-asan"
}

stage_fuzz()
{
    configure_and_build "$prefix-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
        -DFRESCO_SANITIZE=OFF -DFRESCO_FUZZ=ON -DFRESCO_TESTS=OFF -DFRESCO_BENCH=OFF
    if [[ ! -x fuzz/run.sh ]]; then
        echo "fuzz/run.sh is missing or not executable" >&2
        return 1
    fi
    fuzz/run.sh "$prefix-fuzz" "$fuzz_seconds" </dev/null
}

stage_compose()
{
    docker-compose -f compose/docker-compose.yml config -q
    echo "compose/docker-compose.yml: valid"
}

stages=("$@")
if ((${#stages[@]} == 0)); then
    stages=("${ALL_STAGES[@]}")
fi
for s in "${stages[@]}"; do
    case " ${ALL_STAGES[*]} " in
    *" $s "*) ;;
    *)
        echo "test-all: unknown stage '$s' (stages: ${ALL_STAGES[*]})" >&2
        exit 2
        ;;
    esac
done

passed=0
failed=0
results=()
start_all=$SECONDS
for s in "${stages[@]}"; do
    banner "$s"
    t0=$SECONDS
    # A subshell outside any if/&&/|| context, so that errexit applies
    # inside the stage and the first failing command ends it.
    set +e
    (
        set -euo pipefail
        "stage_$s"
    )
    rc=$?
    set -e
    dt=$((SECONDS - t0))
    if ((rc == 0)); then
        passed=$((passed + 1))
        results+=("$(printf 'PASS  %-8s %4ds' "$s" "$dt")")
    else
        failed=$((failed + 1))
        results+=("$(printf 'FAIL  %-8s %4ds  (exit %d)' "$s" "$dt" "$rc")")
    fi
done

banner "summary ($((SECONDS - start_all))s)"
printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed"
if ((failed > 0)); then
    exit 1
fi
