#!/usr/bin/env bash
# Speed comparison of `vqprobe analyze` with `tshark -z rtp,streams` on one capture.
#
#   scripts/compare-tshark.sh FILE.pcap        (RUNS=3 VQPROBE=target/release/vqprobe)
#
# Runs the two tools interleaved (vqprobe, tshark, vqprobe, tshark, …) so that cache and
# machine-load drift hit both alike, and prints a markdown table of the median wall time
# and median peak RSS of each, with the ratios.
#
# Needs GNU time at /usr/bin/time: bash's `time` keyword cannot report peak RSS. On Debian
# it is not installed by default: `apt-get install time`.
#
# Make a load capture first, e.g.:
#   cargo run --release --example gen_load -- /tmp/load.pcap
set -euo pipefail

usage() {
    echo "usage: $0 FILE.pcap|pcapng   (env: RUNS=3, VQPROBE=target/release/vqprobe)" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
file=$1
runs=${RUNS:-3}
vqprobe=${VQPROBE:-target/release/vqprobe}

[[ -r $file ]] || { echo "$0: cannot read $file" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "$0: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
command -v tshark >/dev/null || { echo "$0: tshark not found" >&2; exit 1; }
[[ -x $vqprobe ]] || { echo "$0: $vqprobe missing (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure NAME CMD…: one run; appends "wall_seconds peak_kib" to $work/NAME.
measure() {
    local name=$1
    shift
    if ! /usr/bin/time -f '%e %M' -o "$work/last" "$@" >/dev/null 2>"$work/stderr"; then
        echo "$0: $name failed:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    # On failure GNU time writes a status line first; the figures are always last.
    tail -n 1 "$work/last" >>"$work/$name"
}

# median FILE COLUMN: median of one column (the mean of the middle two for even counts).
median() {
    sort -g -k "$2,$2" "$1" | awk -v c="$2" '{ v[NR] = $c }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

for ((i = 1; i <= runs; i++)); do
    measure vqprobe "$vqprobe" analyze "$file" --format json
    measure tshark tshark -q -z rtp,streams -r "$file"
done

vq_s=$(median "$work/vqprobe" 1)
vq_k=$(median "$work/vqprobe" 2)
ts_s=$(median "$work/tshark" 1)
ts_k=$(median "$work/tshark" 2)
size=$(stat -c %s "$file")

awk -v f="$file" -v size="$size" -v runs="$runs" \
    -v vs="$vq_s" -v vk="$vq_k" -v ts="$ts_s" -v tk="$ts_k" 'BEGIN {
    printf "Capture: `%s` (%.1f MiB), median of %d interleaved runs each.\n\n", f, size / 1048576, runs
    print "| tool | wall time (s) | peak RSS (MiB) |"
    print "|---|---:|---:|"
    printf "| vqprobe analyze --format json | %.2f | %.1f |\n", vs, vk / 1024
    printf "| tshark -q -z rtp,streams | %.2f | %.1f |\n", ts, tk / 1024
    printf "| ratio tshark / vqprobe | %s | %s |\n",
        (vs > 0 ? sprintf("%.2fx", ts / vs) : "n/a"), (vk > 0 ? sprintf("%.2fx", tk / vk) : "n/a")
}'
