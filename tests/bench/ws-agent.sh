#!/usr/bin/env bash
# tests/bench/ws-agent.sh: WebSocket-agent calls against the plain relayed
# call, through the real (release) trunkline binary on loopback.
#
# CALLS concurrent calls per mode, route-reason sending each to:
#   relay     a SIP agent answering PCMU, RTP both ways (the reference)
#   ws-mulaw  a WebSocket agent, μ-law 8 kHz
#   ws-l16    a WebSocket agent, L16 16 kHz (#audio=l16-16000)
# The caller sends 20 ms PCMU; the agent answers 20 ms every 20 ms. CPU is
# utime+stime of the trunkline process (/proc/PID/stat) over SECS seconds
# after a 2 s warm-up, per call (ms of CPU per call-second). Latency is
# caller send -> agent receive of the same frame. Target: ws-* CPU within
# 1.5x of relay. The modes run ROUNDS times in turn; the table gives
# medians, and the ratio is the median of the rounds' ratios.
#
# Usage: tests/bench/ws-agent.sh                 (CALLS=50 SECS=10 ROUNDS=3)
#        CALLS=20 SECS=5 WS_BENCH_MODES=relay,ws-l16 tests/bench/ws-agent.sh
set -euo pipefail

CALLS=${CALLS:-50}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}

cd "$(dirname "$0")/../.."
echo "== building trunkline (release), the policies and the bench"
cargo build -q --release -p trunkline --bin trunkline
cargo bench -q -p trunkline-tests --bench ws_agent --no-run 2>&1 | grep -v '^ *Executable' || true

LOG=$(mktemp /tmp/ws-agent-bench.XXXXXX)
trap 'rm -f "$LOG"' EXIT
echo "== $CALLS calls per mode, ${SECS} s"
TRUNKLINE_BIN=$PWD/target/release/trunkline \
    timeout $(( 3 * ROUNDS * (SECS + 60) + 120 )) \
    cargo bench -q -p trunkline-tests --bench ws_agent -- "$CALLS" "$SECS" "$ROUNDS" | tee "$LOG"
echo
awk '/^RESULT/ {
        for (i = 3; i <= NF; i++) { split($i, kv, "="); f[$2, kv[1]] = kv[2] }
        order[n++] = $2
    }
    END {
        printf "%-10s %16s %8s %10s %10s %14s\n", "mode", "CPU ms/call-s", "x relay", "p50 us", "p99 us", "frames"
        for (i = 0; i < n; i++) { m = order[i]
            printf "%-10s %16s %8s %10s %10s %14s\n", m, f[m, "cpu_ms_per_call_s"], f[m, "ratio_to_relay"],
                f[m, "p50_us"], f[m, "p99_us"], f[m, "frames"] }
        print "target: ws-* CPU <= 1.5 x relay"
    }' "$LOG"
