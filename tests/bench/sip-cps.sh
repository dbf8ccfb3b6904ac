#!/usr/bin/env bash
# tests/bench/sip-cps.sh: calls-per-second benchmark of a SIP signalling target.
#
#   SIPp UAC (bench_uac.xml)  ->  target  ->  SIPp UAS (bench_uas.xml)
#   127.0.0.11:5060               127.0.0.12:5060   127.0.0.13:5060
#
# For each call rate in RATES it sends CALLS complete calls (INVITE, 180, 200,
# ACK, HOLD_MS pause, BYE, 200; every message through the target), then
# reports failed calls and the target's CPU time per 1000 calls. The highest
# rate with failures below MAX_FAIL_PCT, run at no less than MIN_ACHIEVED_PCT
# of the offered rate, is the target's clean CPS. Stepping stops at the first rate that is not clean.
#
# Targets (TARGET=kamailio | trunkline | both; default kamailio):
#   kamailio   tests/bench/kamailio.cfg: tm proxy, Record-Route, adds X-Bench: 1.
#              CPU = utime+stime summed over every process of its process
#              group (the main process forks its UDP workers and timers).
#   trunkline  $TRUNKLINE_BIN run --config $TRUNKLINE_BENCH_CONFIG. The config
#              must listen on udp:$TARGET_ADDR:$TARGET_PORT, admit $UAC_ADDR,
#              and route calls for user "bench" (token header
#              "X-PolyAi-Auth-Token: bench") to sip:bench@$UAS_ADDR:$UAS_PORT.
#              CPU = utime+stime of its one process (all threads).
# CPU is read from /proc/PID/stat before the step and SETTLE_S seconds after
# the UAC ends, so transaction clean-up timers are counted too.
#
# Burst or steady state: a finished call's transactions stay 32 s (RFC 3261
# Timer J, RFC 6026 Timer L), so a step of 5,000 calls (5 s at 1,000 CPS)
# measures a target whose tables are still filling. The rate a target holds
# for minutes (what tests/bench/soak.sh runs at) needs steps longer than
# that: CALLS of at least 40 x the rate (CALLS=30000 for rates up to 750).
#
# Environment (defaults):
#   RATES="250 500 750 1000 1250 1500 2000 2500 3000"  calls per second
#   CALLS=5000  HOLD_MS=100  MAX_FAIL_PCT=0.1  MIN_ACHIEVED_PCT=90  SETTLE_S=6
#   STEP_TIMEOUT_S (CALLS/rate + 60)
#   UAC_ADDR=127.0.0.11 TARGET_ADDR=127.0.0.12 TARGET_PORT=5060
#   UAS_ADDR=127.0.0.13 UAS_PORT=5060
#   KAMAILIO_CHILDREN=4  TRUNKLINE_BIN=target/release/trunkline
#   TRUNKLINE_BENCH_CONFIG=tests/bench/trunkline.toml
#   OUT_DIR (default: a new temporary directory; logs and SIPp CSVs stay there)
#
# Needs: sipp (apt-get install sip-tester), kamailio (apt-get install kamailio).
# Runs only on loopback. The machine is shared: figures are noisy, compare
# targets within one run (TARGET=both) rather than across runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCEN="$ROOT/examples/sipp"
TARGET=${TARGET:-kamailio}
RATES=${RATES:-"250 500 750 1000 1250 1500 2000 2500 3000"}
CALLS=${CALLS:-5000}
HOLD_MS=${HOLD_MS:-100}
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.1}
MIN_ACHIEVED_PCT=${MIN_ACHIEVED_PCT:-90}
SETTLE_S=${SETTLE_S:-6}
UAC_ADDR=${UAC_ADDR:-127.0.0.11}
TARGET_ADDR=${TARGET_ADDR:-127.0.0.12}
TARGET_PORT=${TARGET_PORT:-5060}
UAS_ADDR=${UAS_ADDR:-127.0.0.13}
UAS_PORT=${UAS_PORT:-5060}
KAMAILIO_CHILDREN=${KAMAILIO_CHILDREN:-4}
TRUNKLINE_BIN=${TRUNKLINE_BIN:-$ROOT/target/release/trunkline}
TRUNKLINE_BENCH_CONFIG=${TRUNKLINE_BENCH_CONFIG:-$ROOT/tests/bench/trunkline.toml}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t sip-cps.XXXXXX)}
CLK_TCK=$(getconf CLK_TCK)
SIPP_COMMON=(-buff_size 4194304 -nostdin -default_behaviors all,-abortunexp)

die() { echo "sip-cps: $*" >&2; exit 2; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"
mkdir -p "$OUT_DIR"

# cleanup (on EXIT), cpu_ticks_pgrp, udp_rcvbuf_errors, wait_udp_listen,
# start_group, csv_last: shared with the other SIP benches.
# shellcheck source=tests/bench/common.sh
source "$ROOT/tests/bench/common.sh"

start_uas() {
    LOG="$OUT_DIR/uas.log"
    start_group sipp -sf "$SCEN/bench_uas.xml" -i "$UAS_ADDR" -p "$UAS_PORT" -mp 26000 \
        "${SIPP_COMMON[@]}" -trace_stat -stf "$OUT_DIR/uas_stats.csv" -fd 5
    wait_udp_listen "$UAS_ADDR" "$UAS_PORT" 10 || die "SIPp UAS did not bind $UAS_ADDR:$UAS_PORT (see $LOG)"
}

start_target() { # name; sets TARGET_PGID
    local name=$1 tmp="$OUT_DIR/$1"
    mkdir -p "$tmp"
    LOG="$OUT_DIR/$name.log"
    case $name in
    kamailio)
        command -v kamailio >/dev/null || die "kamailio not found: apt-get install -y kamailio"
        start_group kamailio -f "$ROOT/tests/bench/kamailio.cfg" -DD -E \
            -w "$tmp" -Y "$tmp" -P "$tmp/kamailio.pid" -m 256 -M 16 -b 4194304 \
            -A "LISTEN=udp:$TARGET_ADDR:$TARGET_PORT" \
            -A "UAS_URI=\"sip:$UAS_ADDR:$UAS_PORT\"" \
            -A "CHILDREN=$KAMAILIO_CHILDREN"
        ;;
    trunkline)
        [ -x "$TRUNKLINE_BIN" ] || die "$TRUNKLINE_BIN missing: cargo build --release -p trunkline"
        [ -n "${TRUNKLINE_BENCH_CONFIG:-}" ] || die "set TRUNKLINE_BENCH_CONFIG to a config for the bench (see the header of $0)"
        [ -f "$TRUNKLINE_BENCH_CONFIG" ] || die "$TRUNKLINE_BENCH_CONFIG: no such file"
        RUST_LOG=${RUST_LOG:-warn} start_group "$TRUNKLINE_BIN" run --config "$TRUNKLINE_BENCH_CONFIG"
        ;;
    *) die "unknown target $name" ;;
    esac
    TARGET_PGID=$STARTED_PID
    wait_udp_listen "$TARGET_ADDR" "$TARGET_PORT" 20 || die "$name did not listen on $TARGET_ADDR:$TARGET_PORT (see $LOG)"
    sleep 1 # let forked workers settle before the first CPU reading
}

RESULTS="$OUT_DIR/results.tsv"
: >"$RESULTS"

run_target() {
    local name=$1 rate ok failed fail_pct achieved t0 t1 w0 w1 d0 drops ticks cpu_s cpu_k clean=0 clean_cpu=- rc csv
    start_uas
    start_target "$name"
    printf '\n%-9s %6s %6s %6s %8s %9s %8s %10s %8s\n' target rate ok failed fail% achieved cpu_s cpu_s/1k udp_drops
    for rate in $RATES; do
        csv="$OUT_DIR/${name}_uac_$rate.csv"
        t0=$(cpu_ticks_pgrp "$TARGET_PGID")
        d0=$(udp_rcvbuf_errors)
        w0=$(date +%s.%N)
        local step_timeout=${STEP_TIMEOUT_S:-$((CALLS / rate + 60))}
        rc=0
        # -l: at most one second of calls open at once; a slow target then
        # shows as an achieved rate below the target rate, not as a backlog.
        timeout --kill-after=5 "$((step_timeout + 10))" \
            sipp -sf "$SCEN/bench_uac.xml" -i "$UAC_ADDR" -p 5060 -mp 24000 -s bench \
            -r "$rate" -rp 1000 -m "$CALLS" -l "$rate" -d "$HOLD_MS" \
            -timeout "${step_timeout}s" -max_retrans 5 "${SIPP_COMMON[@]}" \
            -trace_stat -stf "$csv" -fd 1 -trace_err -error_file "$OUT_DIR/${name}_uac_$rate.err" \
            "$TARGET_ADDR:$TARGET_PORT" >"$OUT_DIR/${name}_uac_$rate.out" 2>&1 || rc=$?
        w1=$(date +%s.%N)
        sleep "$SETTLE_S"
        t1=$(cpu_ticks_pgrp "$TARGET_PGID")
        drops=$(($(udp_rcvbuf_errors) - d0))
        kill -0 "$TARGET_PGID" 2>/dev/null || die "$name died during the $rate CPS step (see $OUT_DIR/$name.log)"
        ok=$(csv_last "$csv" 'SuccessfulCall(C)')
        failed=$((CALLS - ok)) # failed or never completed
        # Calls over the wall time of the UAC minus one hold: SIPp start-up
        # makes this a slight underestimate at high rates.
        achieved=$(awk -v n="$CALLS" -v a="$w0" -v b="$w1" -v h="$HOLD_MS" 'BEGIN { printf "%.0f", n / (b - a - h / 1000) }')
        ticks=$((t1 - t0))
        fail_pct=$(awk -v f="$failed" -v n="$CALLS" 'BEGIN { printf "%.3f", 100 * f / n }')
        cpu_s=$(awk -v t="$ticks" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
        cpu_k=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$ok" 'BEGIN { printf "%.3f", (n > 0 ? 1000 * t / hz / n : 0) }')
        printf '%-9s %6s %6s %6s %8s %9.0f %8s %10s %8s\n' "$name" "$rate" "$ok" "$failed" "$fail_pct" "$achieved" "$cpu_s" "$cpu_k" "$drops"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rate" "$ok" "$failed" "$fail_pct" "$achieved" "$cpu_k" "$drops" >>"$RESULTS"
        # Clean: few failures, and the calls went through at (nearly) the
        # offered rate. A target that falls behind makes SIPp retransmit and
        # hit its -l limit: no failures, but a lower achieved rate.
        if awk -v p="$fail_pct" -v m="$MAX_FAIL_PCT" -v a="$achieved" -v r="$rate" -v k="$MIN_ACHIEVED_PCT" \
            'BEGIN { exit !(p < m && 100 * a >= k * r) }'; then
            clean=$rate
            clean_cpu=$cpu_k
        else
            [ "$rc" -eq 0 ] || echo "  (sipp exit $rc, see $OUT_DIR/${name}_uac_$rate.err)"
            awk -v a="$achieved" -v r="$rate" -v k="$MIN_ACHIEVED_PCT" 'BEGIN { exit !(100 * a < k * r) }' &&
                echo "  (achieved rate below $MIN_ACHIEVED_PCT% of $rate: the target fell behind)"
            break
        fi
    done
    printf '%s\t%s\t%s\n' "$name" "$clean" "$clean_cpu" >>"$OUT_DIR/summary.tsv"
    cleanup
    sleep 1
}

: >"$OUT_DIR/summary.tsv"
case $TARGET in
kamailio | trunkline) run_target "$TARGET" ;;
both)
    run_target kamailio
    run_target trunkline
    ;;
*) die "TARGET must be kamailio, trunkline or both" ;;
esac

echo
echo "Summary ($CALLS calls per step, ${HOLD_MS} ms hold; clean = failed < $MAX_FAIL_PCT% and achieved >= $MIN_ACHIEVED_PCT% of the rate; logs in $OUT_DIR)"
printf '%-10s %10s %22s\n' target clean_cps 'cpu_s/1000 calls @clean'
while IFS=$'\t' read -r name cps cpu; do
    printf '%-10s %10s %22s\n' "$name" "$cps" "$cpu"
done <"$OUT_DIR/summary.tsv"
if [ "$(wc -l <"$OUT_DIR/summary.tsv")" -eq 2 ]; then
    awk -F'\t' 'NR == 1 { kc = $2; kp = $3 } NR == 2 { tc = $2; tp = $3 }
        END { printf "%-10s %10s %22s\n", "ratio t/k",
              (kc > 0 ? sprintf("%.2f", tc / kc) : "-"),
              (kp > 0 && tp != "-" ? sprintf("%.2f", tp / kp) : "-") }' "$OUT_DIR/summary.tsv"
fi
