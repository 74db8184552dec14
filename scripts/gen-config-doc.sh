#!/usr/bin/env bash
# Writes the configuration reference into README.md from the binaries' own
# field tables (each binary prints its table with --config-reference).
#
#   scripts/gen-config-doc.sh [BUILD_DIR]          update README.md
#   scripts/gen-config-doc.sh --check [BUILD_DIR]  exit 1 if README.md is stale
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
build=${1:-$root/build}
readme=$root/README.md
begin='<!-- config-reference:begin -->'
end='<!-- config-reference:end -->'

reference=$(mktemp)
trap 'rm -f "$reference" "$reference.new"' EXIT
{
    echo "$begin"
    for bin in services/collector/fresco-collector services/processor/fresco-processor \
        services/publisher/fresco-publisher services/hpc/fresco-hpc \
        services/fresco/fresco; do
        if [ ! -x "$build/$bin" ]; then
            echo "gen-config-doc: $build/$bin is not built" >&2
            exit 2
        fi
        echo
        "$build/$bin" --config-reference
    done
    echo
    echo "$end"
} >"$reference"

awk -v begin="$begin" -v end="$end" -v ref="$reference" '
    $0 == begin { while ((getline line < ref) > 0) print line; skip = 1; next }
    $0 == end { skip = 0; next }
    !skip { print }
' "$readme" >"$reference.new"

if ! grep -qxF "$begin" "$readme"; then
    echo "gen-config-doc: README.md has no '$begin' line" >&2
    exit 2
fi
if [ "$check" = 1 ]; then
    if ! diff -u "$readme" "$reference.new"; then
        echo "gen-config-doc: README.md's configuration reference is stale: run scripts/gen-config-doc.sh" >&2
        exit 1
    fi
    echo "README.md configuration reference is up to date"
else
    cp "$reference.new" "$readme"
fi
