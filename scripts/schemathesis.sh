#!/usr/bin/env bash
# Property-based API check: starts the daemon on loopback (replaying a vendored capture so
# there are calls to serve, with an API key), then runs schemathesis against its own
# /openapi.json with every check and a bounded number of examples per operation.
# Fails on any failure. Needs `schemathesis` (pip; scripts/install-deps.sh installs it)
# and a built binary (target/debug/vqprobe, built here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${SCHEMATHESIS_EXAMPLES:-25}"
bin="${VQPROBE_BIN:-target/debug/vqprobe}"
[ -x "$bin" ] || cargo build --quiet
command -v schemathesis >/dev/null || { echo "schemathesis missing: run scripts/install-deps.sh" >&2; exit 1; }

work="$(mktemp -d -t vqprobe-schemathesis-XXXXXX)"
port=$(( 20000 + $$ % 20000 ))
key="schemathesis-$$-key"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

printf '[store]\nflush_interval_ms = 100\n' > "$work/vqprobe.toml"
VQPROBE_API_KEYS="$key" "$bin" run --config "$work/vqprobe.toml" --db "$work/vqprobe.db" \
    --listen "127.0.0.1:$port" \
    --replay tests/data/pcaps/sipnab__sip-rtp-g711.pcap --speed 0 \
    >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 1; }
    sleep 0.1
done

schemathesis run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --max-examples "$examples" \
    --seed 1 \
    --header "Authorization: Bearer $key" \
    --request-timeout 10 \
    --no-color
