#!/usr/bin/env bash
# Live capacity in CPU terms: the daemon's CPU seconds per million packets captured
# while tcpreplay feeds a veth at a fixed rate, for 1 and 2 workers and 1 and 2 capture
# threads. The figure says how many packets (and so calls) one core carries.
#
#   scripts/live-cpu.sh [PPS] [FILE]     (default 150000 packets/s, a 200-call capture)
#
# The daemon runs in a namespace this script creates, capturing the inner end of a veth
# pair; tcpreplay sends into the outer end (nothing leaves the pair). CPU time is
# utime + stime of the daemon process from /proc/PID/stat, read just before the replay
# starts and once every packet is counted, so start-up and shutdown are left out.
# Needs root, tcpreplay, iproute2. Prints one line per configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
pps=${1:-150000}
file=${2:-}
if [ "$(id -u)" -ne 0 ] || ! command -v tcpreplay >/dev/null; then
    echo "live-cpu: SKIPPED (needs root and tcpreplay)"
    exit 0
fi
tag=$$
ns=vqcpu$tag
a=vqcpua$tag
b=vqcpub$tag
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    ip link del "$a" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --bin vqprobe --example gen_load
if [ -z "$file" ]; then
    file=$work/load.pcap
    target/release/examples/gen_load "$file" --calls 200 --packets 1000000 >/dev/null
fi
sent=$(capinfos -c -M "$file" 2>/dev/null | awk '/Number of packets/ {print $NF}')
tck=$(getconf CLK_TCK)

ip netns add "$ns"
ip link add "$a" type veth peer name "$b" netns "$ns"
ip link set "$a" up
ip netns exec "$ns" ip link set "$b" up

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '%-8s %-8s %10s %12s %10s %16s %14s\n' workers capture sent_pps captured cpu_s cpu_s_per_Mpkt pkts_per_cpu_s
for workers in 1 2; do
    for threads in 1 2; do
        log=$work/run.log
        ip netns exec "$ns" target/release/vqprobe run --interface "$b" --workers "$workers" \
            --capture-threads "$threads" --db "$work/v-$workers-$threads.db" \
            --listen 127.0.0.1:0 >"$log" 2>&1 &
        pid=$!
        for _ in $(seq 1 100); do grep -q "capturing on" "$log" && break; sleep 0.1; done
        sleep 0.5
        t0=$(cpu_ticks "$pid")
        rated=$(tcpreplay -i "$a" --preload-pcap --pps="$pps" "$file" 2>&1 |
            awk '/Rated:/ {print $(NF-1)}')
        # Let the workers finish what is queued (a kernel block is at most 100 ms).
        sleep 0.5
        t1=$(cpu_ticks "$pid")
        kill -TERM "$pid"
        wait "$pid" || true
        pid=
        line=$(grep -E "packets, kernel dropped" "$log" | tail -1)
        got=$(grep -oE '[0-9]+ packets, kernel' <<<"$line" | awk '{s += $1} END {print s}')
        drops=$(grep -oE 'dropped [0-9]+' <<<"$line" | awk '{s += $2} END {print s}')
        cpu=$(awk -v t="$((t1 - t0))" -v h="$tck" 'BEGIN {printf "%.2f", t / h}')
        per=$(awk -v c="$cpu" -v n="$got" 'BEGIN {printf "%.3f", c / (n / 1e6)}')
        rate=$(awk -v c="$cpu" -v n="$got" 'BEGIN {printf "%d", n / c}')
        printf '%-8s %-8s %10s %12s %10s %16s %14s\n' "$workers" "$threads" "$rated" \
            "$got/$sent" "$cpu" "$per" "$rate"
        if [ "$drops" != 0 ]; then
            echo "live-cpu: $drops packets dropped at $pps packets/s: $line"
        fi
    done
done
