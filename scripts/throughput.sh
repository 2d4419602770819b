#!/usr/bin/env bash
# Live-capture throughput: tcpreplay a >= 1M-packet capture into a veth whose other end
# sits in a namespace this script creates, where `vqprobe run` (2 workers) captures it.
# Asserts zero drops (kernel + queue) and every packet counted at the target rate, then
# reports what --topspeed reaches. Needs root, tcpreplay, iproute2.
#
#   scripts/throughput.sh [TARGET_PPS]      (default 300000)
#
# Frames only ever cross the veth pair into the namespace, which has no routes.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-300000}
if [ "$(id -u)" -ne 0 ] || ! command -v tcpreplay >/dev/null; then
    echo "throughput: SKIPPED (needs root and tcpreplay)"
    exit 0
fi
tag=$$
ns=vqtp$tag
a=vqtpa$tag
b=vqtpb$tag
work=$(mktemp -d)
cleanup() {
    pkill -TERM -f "vqprobe run --interface $b" 2>/dev/null || true
    ip link del "$a" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --bin vqprobe --example gen_load
load=$work/load.pcap
target/release/examples/gen_load "$load" >/dev/null
sent=$(capinfos -c -M "$load" 2>/dev/null | awk '/Number of packets/ {print $NF}' || true)

ip netns add "$ns"
ip link add "$a" type veth peer name "$b" netns "$ns"
ip link set "$a" up
ip netns exec "$ns" ip link set "$b" up

run() { # $1 = tcpreplay rate flag; prints "<pps> <summary line>"
    local db=$work/vq-$RANDOM.db
    ip netns exec "$ns" target/release/vqprobe run --interface "$b" --workers 2 \
        --db "$db" >"$work/out.log" 2>&1 &
    local pid=$!
    sleep 1.5
    local rated
    rated=$(tcpreplay -i "$a" --preload-pcap "$1" "$load" 2>&1 | awk '/Rated:/ {print $(NF-1)}')
    sleep 1
    kill -TERM "$pid"
    wait "$pid"
    echo "$rated $(grep -E "packets, kernel dropped" "$work/out.log" | tail -1)"
}

check() { # $1 = result line; asserts every packet counted and no drops
    local line=$1
    local got kd idd qd
    got=$(sed -E 's/.*: ([0-9]+) packets, kernel.*/\1/' <<<"$line")
    kd=$(sed -E 's/.*kernel dropped ([0-9]+).*/\1/' <<<"$line")
    idd=$(sed -E 's/.*interface dropped ([0-9]+).*/\1/' <<<"$line")
    qd=$(sed -E 's/.*queue dropped ([0-9]+).*/\1/' <<<"$line")
    if [ "$kd" != 0 ] || [ "$idd" != 0 ] || [ "$qd" != 0 ]; then
        echo "throughput: drops: kernel $kd, interface $idd, queue $qd"
        return 1
    fi
    if [ -n "$sent" ] && [ "$got" != "$sent" ]; then
        echo "throughput: captured $got of $sent packets"
        return 1
    fi
}

res=$(run "--pps=$target")
echo "throughput: at --pps=$target: ${res%% *} pps sent; ${res#* }"
check "$res"
top=$(run --topspeed)
echo "throughput: at --topspeed: ${top%% *} pps sent; ${top#* }"
if check "$top"; then
    echo "throughput: zero drops at ${top%% *} packets/s (tcpreplay's top speed here)"
fi
echo "throughput: ok"
