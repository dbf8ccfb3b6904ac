#!/usr/bin/env bash
# tests/bench/handoff.sh: Handoff API throughput and latency against the
# embedded store holding N records (default 100k).
#
# 1. seeds N realistic records (seed-0 … seed-{N-1}, tenant five9) into a
#    fresh SQLite store file with the seed_store example (the store's own
#    put, so the file is exactly what the gateway writes);
# 2. starts the release trunkline binary on that store with one API key;
# 3. runs wrk (Debian package `wrk`) for DURATION with CONNECTIONS
#    keep-alive connections, each request a `POST /handoff` for a random
#    existing shared id, and prints req/s, p50/p99/p99.9 and non-200s.
#
# Target: >= 20k req/s and p99 <= 5 ms on the 2-core reference machine.
# wrk and trunkline share those 2 cores, so this is a floor.
#
# Environment (defaults):
#   N=100000  DURATION=20s  CONNECTIONS=32  THREADS=1 (wrk's)
#   HTTP_ADDR=127.0.0.1:18090  SIP_ADDR=127.0.0.1:15090
#   TRUNKLINE_BIN=target/release/trunkline (built when missing)
#   OUT_DIR (default: a new temporary directory; store, config and log stay)
# Runs only on loopback; bounded by DURATION.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${N:-100000}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:18090}
SIP_ADDR=${SIP_ADDR:-127.0.0.1:15090}
TRUNKLINE_BIN=${TRUNKLINE_BIN:-$ROOT/target/release/trunkline}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t handoff-bench.XXXXXX)}
KEY=bench-key-five9-0123456789

command -v wrk >/dev/null || { echo "wrk is missing: sudo apt-get install -y wrk" >&2; exit 2; }
cd "$ROOT"
if [[ ! -x $TRUNKLINE_BIN ]]; then
	cargo build --release -p trunkline --bin trunkline
fi
cargo xtask policies >/dev/null

echo "== seeding $N records into $OUT_DIR/outcomes.db"
rm -f "$OUT_DIR"/outcomes.db*
cargo run --quiet --release -p trunkline-tests --example seed_store -- "$OUT_DIR/outcomes.db" "$N"

cat >"$OUT_DIR/trunkline.toml" <<TOML
[policy]
dir = "$ROOT/target/policies"

[sip]
udp = "$SIP_ADDR"

[http]
listen = "$HTTP_ADDR"

[[http.keys]]
name = "bench"
key = "$KEY"
tenant = "five9"

[policies.route-reason]
default_agent = "sip:agent@127.0.0.1:5080"

[[trunk]]
name = "five9"
policy = "route-reason"
allow = ["127.0.0.0/8"]

[store]
backend = "embedded"
path = "outcomes.db"
TOML

RUST_LOG=warn "$TRUNKLINE_BIN" run --config "$OUT_DIR/trunkline.toml" 2>"$OUT_DIR/trunkline.log" &
TL_PID=$!
trap 'kill "$TL_PID" 2>/dev/null || true; wait "$TL_PID" 2>/dev/null || true' EXIT

# Ready when one lookup answers 200.
probe() {
	local host=${HTTP_ADDR%:*} port=${HTTP_ADDR##*:} body='{"shared_id":"seed-0"}'
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf 'POST /handoff HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"$HTTP_ADDR" "$KEY" "${#body}" "$body" >&3
	local status
	status=$(head -c 12 <&3 | cut -d' ' -f2)
	exec 3<&-
	[[ $status == 200 ]]
}
for _ in $(seq 100); do
	probe 2>/dev/null && break
	kill -0 "$TL_PID" 2>/dev/null || { echo "trunkline exited:" >&2; cat "$OUT_DIR/trunkline.log" >&2; exit 1; }
	sleep 0.1
done
probe || { echo "the Handoff API never answered 200 for seed-0:" >&2; cat "$OUT_DIR/trunkline.log" >&2; exit 1; }

cat >"$OUT_DIR/handoff.lua" <<'LUA'
-- POST /handoff for a random existing shared id per request.
local n = tonumber(os.getenv("N"))
local key = os.getenv("KEY")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  local body = '{"shared_id":"seed-' .. math.random(0, n - 1) .. '"}'
  return wrk.format(nil, "/handoff", nil, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("handoff: %d requests in %.1f s = %.0f req/s\n",
    summary.requests, secs, summary.requests / secs))
  io.write(string.format("latency: p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
  io.write(string.format("errors: non-2xx %d  connect %d  read %d  write %d  timeout %d\n",
    e.status, e.connect, e.read, e.write, e.timeout))
end
LUA

echo "== wrk: $CONNECTIONS connections, $THREADS thread(s), $DURATION, POST /handoff over $N records"
N=$N KEY=$KEY wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency \
	-s "$OUT_DIR/handoff.lua" "http://$HTTP_ADDR" | tail -n 3
echo "(store, config and log in $OUT_DIR)"
