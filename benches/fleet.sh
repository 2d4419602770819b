#!/usr/bin/env bash
# The fleet aggregator's figures on this machine: ingest rate (calls/s from NATS
# JetStream into PostgreSQL) and the fleet API's latency with N calls stored.
#
#   benches/fleet.sh [N=1000000] [PROBES=20]
#
# Starts its own nats-server -js and a PostgreSQL made with initdb (as nobody when
# root) on free ports in a temp dir, publishes N synthetic call records (created over
# the last 90 days, 20 probes, 12 MNOs, 40 agents; examples/fleet_load.rs), starts
# `vqprobe aggregate` on the backlog and times it to the last commit, then times each
# API endpoint (median and p90 of 21 requests). Everything it started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
probes="${2:-20}"
cargo build --release --quiet --bin vqprobe --example fleet_load
bin=target/release/vqprobe
load=target/release/examples/fleet_load
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d -t vqprobe-fleet-bench-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    [ -f "$work/pg/data/postmaster.pid" ] && kill -INT "$(head -1 "$work/pg/data/postmaster.pid")" 2>/dev/null || true
    sleep 2
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }

mkdir -p "$work/pg" && chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown nobody "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U vqprobe --auth=trust --locale=C >/dev/null
pgport=$(free_port)
as_pg "$pgbin/postgres" -D "$work/pg/data" -p "$pgport" -h 127.0.0.1 -k "$work/pg" \
    -c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=4GB >"$work/pg.log" 2>&1 &
pids+=($!)
natsport=$(free_port)
nats-server -js -a 127.0.0.1 -p "$natsport" -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
sleep 2
pgurl="postgres://vqprobe@127.0.0.1:$pgport/postgres"
natsurl="nats://127.0.0.1:$natsport"

# One real record as the template.
"$bin" analyze --format json tests/data/pcaps/asterisk-testsuite__40msalaw.pcap \
    | python3 -c 'import json,sys; json.dump(json.load(sys.stdin)["calls"][0], sys.stdout)' >"$work/template.json"
"$load" "$natsurl" "$work/template.json" "$n" "$probes"

apiport=$(free_port)
t0=$(date +%s.%N)
"$bin" aggregate --nats "$natsurl" --postgres "$pgurl" --listen "127.0.0.1:$apiport" >"$work/agg.log" 2>&1 &
pids+=($!)
metric() { curl -s "http://127.0.0.1:$apiport/metrics" | awk -v m="$1" '$1==m {print $2}'; }
until [ "$(metric vqprobe_aggregate_written_records_total 2>/dev/null || echo 0)" = "$n" ]; do
    sleep 0.5
    if (( $(echo "$(date +%s.%N) - $t0 > 3600" | bc) )); then echo "ingest did not finish" >&2; exit 1; fi
done
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc)
echo "ingest: $n calls in ${secs} s = $(echo "$n / $secs" | bc) calls/s (aggregator start to last commit)"
as_pg "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U vqprobe -d postgres -qAtc "VACUUM ANALYZE calls" || true
echo "calls table: $(as_pg "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U vqprobe -d postgres -qAtc "SELECT count(*), pg_size_pretty(pg_total_relation_size('calls')) FROM calls")"

base="http://127.0.0.1:$apiport"
q='{"queries":[{"name":"q","table":"calls","groupBy":["mno"],"operations":[{"operation":"count","column":"call_id"},{"operation":"avg","column":"mos"},{"operation":"p95","column":"jitter_ms"}],"timeRange":{"start":"'$(date -u -d '-90 days' +%F)'","step":"day"}}]}'
time_it() {  # name, then curl args
    local name="$1"; shift
    local ts=()
    for _ in $(seq 21); do
        ts+=("$(curl -s -o /dev/null -w '%{time_total}' "$@")")
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk -v name="$name" '{a[NR]=$1} END {printf "%-52s median %6.1f ms  p90 %6.1f ms\n", name, a[11]*1000, a[19]*1000}'
}
time_it "GET /v1/analytics?days=90" "$base/v1/analytics?days=90"
time_it "GET /v1/analytics?days=7" "$base/v1/analytics?days=7"
time_it "GET /v1/analytics/mno?days=90" "$base/v1/analytics/mno?days=90"
time_it "GET /v1/analytics/agents?days=30" "$base/v1/analytics/agents?days=30"
time_it "GET /v1/calls?page_size=100" "$base/v1/calls?page_size=100"
time_it "GET /v1/calls?mno=MNO%203&min_mos=3&page=50" "$base/v1/calls?mno=MNO%203&min_mos=3&page=50"
time_it "GET /v1/calls/{id}" "$base/v1/calls/load-4242@bench"
time_it "POST /v1/analytics (90 days by day x mno, p95)" -X POST -H 'content-type: application/json' -d "$q" "$base/v1/analytics"
time_it "GET /v1/analytics?days=90&probe_id=probe-07" "$base/v1/analytics?days=90&probe_id=probe-07"
