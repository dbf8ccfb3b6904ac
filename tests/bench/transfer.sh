#!/usr/bin/env bash
# tests/bench/transfer.sh: what a cold transfer adds to an inbound call, on
# one gateway in one run.
#
#   inbound:  SIPp UAC (bench_uac.xml) -> Trunkline -> agent (bench_uas.xml)
#             127.0.0.11                  127.0.0.12    127.0.0.13:5060
#   transfer: the same calls, each cold-transferred once connected
#             (POST /v1/calls/{id}/transfer, transfer-driver.py) to the
#             "human" (bench_uas.xml on 127.0.0.15:5060) through an
#             [[outbound]] trunk; the agent gets its BYE, the caller's
#             BYE later goes to the human.
#
# Three steps of CALLS calls at RATE per second, held HOLD_MS by the
# caller: `bare` (inbound calls alone), `inbound` (the same with the driver
# polling GET /v1/calls every 50 ms, as it does to find the calls to
# transfer) and `transfer` (the driver polls and transfers each call). The
# report is Trunkline's CPU time (utime+stime of its process group, read
# SETTLE_S after the step) per 1000 calls, and what the transfer adds as a
# fraction of a bare inbound call: (transfer - inbound) / bare, the polling
# counted in neither. Target (issue 12): at most 0.5.
#
# Environment (defaults): RATE=50 CALLS=1500 HOLD_MS=2000 SETTLE_S=6
#   TRUNKLINE_BIN=target/release/trunkline OUT_DIR (a new temporary dir)
# Needs: sipp, python3, the policies (cargo xtask policies). Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCEN="$ROOT/examples/sipp"
RATE=${RATE:-50}
CALLS=${CALLS:-1500}
HOLD_MS=${HOLD_MS:-2000}
SETTLE_S=${SETTLE_S:-6}
TRUNKLINE_BIN=${TRUNKLINE_BIN:-$ROOT/target/release/trunkline}
CONFIG="$ROOT/tests/bench/transfer.toml"
OUT_DIR=${OUT_DIR:-$(mktemp -d -t transfer.XXXXXX)}
SIPP_COMMON=(-buff_size 4194304 -nostdin -default_behaviors all,-abortunexp)
KEY="bench-key-0123456789abcdef"

die() { echo "transfer: $*" >&2; exit 2; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"
[ -x "$TRUNKLINE_BIN" ] || die "$TRUNKLINE_BIN missing: cargo build --release -p trunkline"
mkdir -p "$OUT_DIR"
# shellcheck source=tests/bench/common.sh
source "$ROOT/tests/bench/common.sh"

start_agent_uas
LOG="$OUT_DIR/human.log"
start_group sipp -sf "$SCEN/bench_uas.xml" -i 127.0.0.15 -p 5060 -mp 28000 \
    "${SIPP_COMMON[@]}" -trace_stat -stf "$OUT_DIR/human.csv" -fd 1
wait_udp_listen 127.0.0.15 5060 10 || die "human UAS did not bind (see $LOG)"
start_trunkline

printf '%-10s %6s %6s %8s %9s %10s\n' kind rate calls ok cpu_s cpu_s/1k
RESULTS="$OUT_DIR/results.tsv"
: >"$RESULTS"

step() { # kind driver-mode stats-prefix
    local seconds=$((CALLS / RATE + HOLD_MS / 1000 + 4))
    local t0 t1 driver
    t0=$(cpu_ticks_pgrp "$TL")
    driver=
    if [ "$2" != none ]; then
        python3 "$ROOT/tests/bench/transfer-driver.py" 127.0.0.12 8080 "$KEY" "$2" "$seconds" \
            "+18005550199" bench-human >"$OUT_DIR/$1-driver.out" &
        driver=$!
    fi
    timeout --kill-after=5 "$((CALLS / RATE + HOLD_MS / 1000 + 70))" \
        sipp -sf "$SCEN/bench_uac.xml" -i 127.0.0.11 -p 5060 -mp 24000 -s bench \
        -r "$RATE" -rp 1000 -m "$CALLS" -l "$((RATE * (HOLD_MS / 1000 + 2)))" -d "$HOLD_MS" \
        -timeout "$((CALLS / RATE + HOLD_MS / 1000 + 60))s" -max_retrans 5 "${SIPP_COMMON[@]}" \
        -trace_stat -stf "$OUT_DIR/$1.csv" -fd 1 127.0.0.12:5060 >"$OUT_DIR/$1.out" 2>&1 || true
    [ -z "$driver" ] || wait "$driver"
    sleep "$SETTLE_S"
    t1=$(cpu_ticks_pgrp "$TL")
    kill -0 "$TL" 2>/dev/null || die "trunkline died (see $OUT_DIR/trunkline.log)"
    [ -z "$driver" ] || echo "  (driver: polls, transfers asked, accepted, other: $(cat "$OUT_DIR/$1-driver.out"))"
    report "$1" "$(csv_last "$OUT_DIR/$1.csv" 'SuccessfulCall(C)')" $((t1 - t0))
}

step bare none
step inbound watch
before=$(csv_last "$OUT_DIR/human.csv" 'SuccessfulCall(C)')
step transfer transfer
echo "  (the human's UAS completed $(($(csv_last "$OUT_DIR/human.csv" 'SuccessfulCall(C)') - before)) calls)"

awk -F'\t' '$1 == "bare" { b = $3 } $1 == "inbound" { i = $3 } $1 == "transfer" { t = $3 }
    END { if (b > 0) printf "a cold transfer adds %.2f of an inbound call (CPU per call: (transfer - inbound) / bare; polling: %.2f)\n", (t - i) / b, (i - b) / b }' "$RESULTS"
echo "logs in $OUT_DIR"
