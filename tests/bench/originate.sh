#!/usr/bin/env bash
# tests/bench/originate.sh: what a call Trunkline places costs, beside an
# inbound call, on one gateway in one run.
#
#   inbound:   SIPp UAC (bench_uac.xml)   -> Trunkline -> agent (bench_uas.xml)
#              127.0.0.11                    127.0.0.12    127.0.0.13:5060
#   originate: POST /v1/calls (originate-driver.py) -> Trunkline
#              -> the number (127.0.0.14:5060: five9_inbound_number.xml,
#              which challenges with 401 and checks the answer with SIPp's
#              verifyauth, then hangs up after HOLD_MS; DIGEST=0:
#              bench_uas_hangup.xml, no challenge), then the agent (the
#              policy's route picks it, as for inbound calls)
#
# Both run CALLS calls at RATE per second with a HOLD_MS call, one after the
# other; the report is Trunkline's CPU time (utime+stime of its process,
# read SETTLE_S after the step so transaction clean-up counts) per 1000
# completed calls, and the ratio originate / inbound. Target (issue 12): a
# placed call costs at most 1.3x an inbound one.
#
# Environment (defaults): RATE=100 CALLS=3000 HOLD_MS=100 SETTLE_S=6 DIGEST=1
#   TRUNKLINE_BIN=target/release/trunkline OUT_DIR (a new temporary dir)
# Needs: sipp, python3, the policies (cargo xtask policies). Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCEN="$ROOT/examples/sipp"
RATE=${RATE:-100}
CALLS=${CALLS:-3000}
HOLD_MS=${HOLD_MS:-100}
SETTLE_S=${SETTLE_S:-6}
TRUNKLINE_BIN=${TRUNKLINE_BIN:-$ROOT/target/release/trunkline}
CONFIG="$ROOT/tests/bench/originate.toml"
OUT_DIR=${OUT_DIR:-$(mktemp -d -t originate.XXXXXX)}
SIPP_COMMON=(-buff_size 4194304 -nostdin -default_behaviors all,-abortunexp)
KEY="bench-key-0123456789abcdef"

die() { echo "originate: $*" >&2; exit 2; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"
[ -x "$TRUNKLINE_BIN" ] || die "$TRUNKLINE_BIN missing: cargo build --release -p trunkline"
mkdir -p "$OUT_DIR"
# shellcheck source=tests/bench/common.sh
source "$ROOT/tests/bench/common.sh"

start_agent_uas
LOG="$OUT_DIR/number.log"
if [ "${DIGEST:-1}" = 1 ]; then
    # Five9's SBC as the issue has it: a 401 first, the answer checked
    # with verifyauth (a wrong one gets 403 and fails the call).
    NUMBER=(-sf "$SCEN/five9_inbound_number.xml" -set user trunkline-bench
        -set password bench-secret-5cd1 -set hangup 1)
    OUTBOUND=bench-out-digest
else
    NUMBER=(-sf "$SCEN/bench_uas_hangup.xml")
    OUTBOUND=bench-out
fi
start_group sipp "${NUMBER[@]}" -i 127.0.0.14 -p 5060 -mp 27000 -d "$HOLD_MS" \
    "${SIPP_COMMON[@]}" -trace_stat -stf "$OUT_DIR/number.csv" -fd 1
wait_udp_listen 127.0.0.14 5060 10 || die "number UAS did not bind (see $LOG)"
start_trunkline

printf '%-10s %6s %6s %8s %9s %10s\n' kind rate calls ok cpu_s cpu_s/1k
RESULTS="$OUT_DIR/results.tsv"
: >"$RESULTS"

# Inbound: exactly sip-cps.sh's call, through this gateway.
t0=$(cpu_ticks_pgrp "$TL")
timeout --kill-after=5 "$((CALLS / RATE + 70))" \
    sipp -sf "$SCEN/bench_uac.xml" -i 127.0.0.11 -p 5060 -mp 24000 -s bench \
    -r "$RATE" -rp 1000 -m "$CALLS" -l "$RATE" -d "$HOLD_MS" \
    -timeout "$((CALLS / RATE + 60))s" -max_retrans 5 "${SIPP_COMMON[@]}" \
    -trace_stat -stf "$OUT_DIR/inbound.csv" -fd 1 127.0.0.12:5060 >"$OUT_DIR/inbound.out" 2>&1 || true
sleep "$SETTLE_S"
t1=$(cpu_ticks_pgrp "$TL")
report inbound "$(csv_last "$OUT_DIR/inbound.csv" 'SuccessfulCall(C)')" $((t1 - t0))

# Originate: the same number of calls, placed through the API.
before=$(csv_last "$OUT_DIR/number.csv" 'SuccessfulCall(C)')
t0=$(cpu_ticks_pgrp "$TL")
read -r sent created other elapsed < <(python3 "$ROOT/tests/bench/originate-driver.py" \
    127.0.0.12 8080 "$KEY" "$CALLS" "$RATE" "+14155550100" "$OUTBOUND")
sleep "$((SETTLE_S + HOLD_MS / 1000 + 2))"
t1=$(cpu_ticks_pgrp "$TL")
kill -0 "$TL" 2>/dev/null || die "trunkline died (see $OUT_DIR/trunkline.log)"
# The number's UAS counts a call once its BYE got its 200.
done_calls=$(($(csv_last "$OUT_DIR/number.csv" 'SuccessfulCall(C)') - before))
echo "  (driver: $sent sent, $created created (201), other: $other, in ${elapsed} s)"
report originate "$done_calls" $((t1 - t0))

awk -F'\t' '$1 == "inbound" { i = $3 } $1 == "originate" { o = $3 }
    END { if (i > 0) printf "ratio originate/inbound (CPU per call): %.2f\n", o / i }' "$RESULTS"
echo "logs in $OUT_DIR"
