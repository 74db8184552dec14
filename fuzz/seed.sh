#!/usr/bin/env bash
# Fills the seed corpora fuzz/corpus/<target>/ from the wire examples
# schemas/examples/*.hex, one small binary file per example:
#   batch-*            fuzz_batch, fuzz_mpdoc
#   ctl-*-request, pipeline-*-request   fuzz_ctl_request, fuzz_mpdoc
#   ctl-*, data-*, pipeline-*          fuzz_mpdoc
#   event-*            fuzz_event; its map alone to fuzz_mpdoc
#
#   fuzz/seed.sh [OUT_DIR]      (default: fuzz/corpus in the source tree)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/fuzz/corpus}

# hex_to_bin FILE: the bytes of a .hex file (pairs, whitespace, # comments).
hex_to_bin()
{
    local hex
    hex=$(sed 's/#.*//' "$1" | tr -d ' \t\r\n')
    if [[ ! $hex =~ ^([0-9a-fA-F]{2})*$ ]]; then
        echo "seed.sh: $1 is not hex pairs" >&2
        return 1
    fi
    # printf's %b turns \xHH into bytes, NUL included.
    printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")"
}

put()
{
    local target=$1 name=$2 src=$3
    mkdir -p "$out/$target"
    cp "$src" "$out/$target/$name"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

count=0
for f in "$root"/schemas/examples/*.hex; do
    name=$(basename "$f" .hex)
    hex_to_bin "$f" >"$tmp/$name"
    case $name in
    batch-*)
        put fuzz_batch "$name" "$tmp/$name"
        put fuzz_mpdoc "$name" "$tmp/$name"
        ;;
    ctl-*-request | pipeline-*-request)
        put fuzz_ctl_request "$name" "$tmp/$name"
        put fuzz_mpdoc "$name" "$tmp/$name"
        ;;
    ctl-* | data-* | pipeline-*)
        put fuzz_mpdoc "$name" "$tmp/$name"
        ;;
    event-*)
        put fuzz_event "$name" "$tmp/$name"
        # Everything after the topic's NUL is a plain document.
        topic_len=$(head -c 200 "$tmp/$name" | tr '\0' '\n' | head -n 1 | wc -c)
        tail -c +$((topic_len + 1)) "$tmp/$name" >"$tmp/$name-map"
        put fuzz_mpdoc "$name-map" "$tmp/$name-map"
        ;;
    *)
        echo "seed.sh: no corpus for $name" >&2
        continue
        ;;
    esac
    count=$((count + 1))
done
echo "seed.sh: $count examples into $out"
