#!/usr/bin/env bash
# tests/bench/flood.sh: an unadmitted INVITE flood beside a legitimate call
# load, in one run.
#
#   SIPp legit UAC (bench_uac.xml)  ->  Trunkline  ->  SIPp UAS (bench_uas.xml)
#   127.0.0.11 (admitted)               127.0.0.12:5060   127.0.0.13:5060
#   SIPp flood (flood_invite.xml)   ->
#   127.0.0.21 (no trunk admits it)
#
# The legit UAC places LEGIT_CALLS calls at LEGIT_CPS; LEAD_S seconds in, the
# flood sends FLOOD_CALLS INVITEs at FLOOD_CPS (each sent once, -nr, never
# ACKed: every one should get exactly one 403). Reported:
#   - legit calls failed (target 0);
#   - legit INVITE->200 p50/p99/max for the calls that started while the
#     flood ran (target p99 <= 50 ms), and for all legit calls (SIPp
#     measures response times in steps of its timer, a few ms);
#   - responses per flood INVITE: the gateway's 403s sent (/metrics delta)
#     over the INVITEs SIPp sent, and the 403 copies SIPp saw after their
#     call had ended (retransmissions; target <= 1 response per request);
#   - the gateway's RSS: before the flood, its peak while the flood ran and
#     after it (target growth <= 20 MB);
#   - the gateway's CPU (utime+stime from /proc/PID/stat) over the flood.
#
# Environment (defaults):
#   LEGIT_CPS=50  LEGIT_CALLS=3250 (65 s)  FLOOD_CPS=1000  FLOOD_CALLS=20000
#   LEAD_S=40  HOLD_MS=1000
# The flood starts LEAD_S into the legit load: by then the gateway's memory
# has settled (finished transactions are kept 32 s, RFC 3261/6026 timers J,
# L, M), so RSS growth from the flood's start is the flood's.
#   TRUNKLINE_BIN=target/release/trunkline
#   TRUNKLINE_BENCH_CONFIG=tests/bench/trunkline.toml (admits 127.0.0.11 only)
#   OUT_DIR (default: a new temporary directory; logs and SIPp CSVs stay there)
# Needs: sipp (apt-get install sip-tester), `cargo xtask policies` and
# `cargo build --release -p trunkline`. Loopback only; every SIPp run is
# bounded by its call count and a timeout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCEN="$ROOT/examples/sipp"
LEGIT_CPS=${LEGIT_CPS:-50}
LEGIT_CALLS=${LEGIT_CALLS:-3250}
FLOOD_CPS=${FLOOD_CPS:-1000}
FLOOD_CALLS=${FLOOD_CALLS:-20000}
LEAD_S=${LEAD_S:-40}
HOLD_MS=${HOLD_MS:-1000}
UAC_ADDR=127.0.0.11
TARGET_ADDR=127.0.0.12
TARGET_PORT=5060
UAS_ADDR=127.0.0.13
FLOOD_ADDR=127.0.0.21
HTTP="http://$TARGET_ADDR:8080"
TRUNKLINE_BIN=${TRUNKLINE_BIN:-$ROOT/target/release/trunkline}
TRUNKLINE_BENCH_CONFIG=${TRUNKLINE_BENCH_CONFIG:-$ROOT/tests/bench/trunkline.toml}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t flood.XXXXXX)}
CLK_TCK=$(getconf CLK_TCK)
SIPP_COMMON=(-buff_size 4194304 -nostdin -default_behaviors all,-abortunexp)

die() { echo "flood: $*" >&2; exit 2; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"
command -v curl >/dev/null || die "curl not found: apt-get install -y curl"
[ -x "$TRUNKLINE_BIN" ] || die "$TRUNKLINE_BIN missing: cargo build --release -p trunkline"
[ -f "$ROOT/target/policies/route-reason.wasm" ] || die "no policies: cargo xtask policies"
mkdir -p "$OUT_DIR"

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT

cpu_ticks() { # pid
    local stat
    stat=$(<"/proc/$1/stat")
    # shellcheck disable=SC2086
    set -- ${stat##*) }
    echo $((${12} + ${13}))
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
metric() { # series: value summed over the lines that start with it
    curl -sf "$HTTP/metrics" | awk -v s="$1" 'index($0, s) == 1 { v += $NF } END { print v + 0 }'
}
wait_http() {
    local deadline=$((SECONDS + 30))
    until curl -sf "$HTTP/healthz" >/dev/null; do
        [ $SECONDS -lt $deadline ] || die "gateway did not answer on $HTTP (see $OUT_DIR/trunkline.log)"
        sleep 0.2
    done
}
csv_last() { # file column
    awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        { v = $c } END { print (v == "" ? 0 : v) }' "$1"
}

sipp -sf "$SCEN/bench_uas.xml" -i "$UAS_ADDR" -p 5060 -mp 26000 "${SIPP_COMMON[@]}" \
    >"$OUT_DIR/uas.log" 2>&1 &
PIDS+=($!)
RUST_LOG=${RUST_LOG:-warn} "$TRUNKLINE_BIN" run --config "$TRUNKLINE_BENCH_CONFIG" \
    >"$OUT_DIR/trunkline.log" 2>&1 &
GW=$!
PIDS+=("$GW")
wait_http
sleep 1

LEGIT_S=$((LEGIT_CALLS / LEGIT_CPS))
# SIPp's RTT file times are milliseconds since its start.
legit_start=$(date +%s%3N)
(cd "$OUT_DIR" && timeout --kill-after=5 $((LEGIT_S + 60)) \
    sipp -sf "$SCEN/bench_uac.xml" -i "$UAC_ADDR" -p 5060 -mp 24000 -s bench \
    -r "$LEGIT_CPS" -m "$LEGIT_CALLS" -d "$HOLD_MS" -timeout $((LEGIT_S + 50))s \
    "${SIPP_COMMON[@]}" -trace_stat -stf legit.csv -fd 1 -trace_rtt -rtt_freq 1 \
    -trace_err -error_file legit.err "$TARGET_ADDR:$TARGET_PORT" >legit.out 2>&1) &
LEGIT=$!
sleep "$LEAD_S"

rss0=$(rss_kb "$GW")
cpu0=$(cpu_ticks "$GW")
sent0=$(metric 'trunkline_sip_responses_sent_total{status="403"}')
t0=$(date +%s%3N)
FLOOD_S=$((FLOOD_CALLS / FLOOD_CPS))
(cd "$OUT_DIR" && timeout --kill-after=5 $((FLOOD_S + 60)) \
    sipp -sf "$SCEN/flood_invite.xml" -i "$FLOOD_ADDR" -p 5060 -mp 28000 -s flood \
    -r "$FLOOD_CPS" -m "$FLOOD_CALLS" -nr -timeout $((FLOOD_S + 50))s \
    "${SIPP_COMMON[@]}" -trace_stat -stf flood.csv -fd 1 \
    "$TARGET_ADDR:$TARGET_PORT" >flood.out 2>&1) &
FLOOD=$!
peak=$rss0
while kill -0 "$FLOOD" 2>/dev/null; do
    r=$(rss_kb "$GW")
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.5
done
wait "$FLOOD" || true
t1=$(date +%s%3N)
cpu1=$(cpu_ticks "$GW")
# Retransmissions of a final response would come within 4.5 s (T1 doubling).
sleep 5
sent1=$(metric 'trunkline_sip_responses_sent_total{status="403"}')
wait "$LEGIT" || true
sleep 2
rss_after=$(rss_kb "$GW")
[ "$rss_after" -gt "$peak" ] && peak=$rss_after
kill -0 "$GW" 2>/dev/null || die "the gateway died (see $OUT_DIR/trunkline.log)"

legit_ok=$(csv_last "$OUT_DIR/legit.csv" 'SuccessfulCall(C)')
legit_failed=$((LEGIT_CALLS - legit_ok))
flood_sent=$(csv_last "$OUT_DIR/flood.csv" 'OutgoingCall(C)')
flood_answered=$(csv_last "$OUT_DIR/flood.csv" 'SuccessfulCall(C)')
dead=$(csv_last "$OUT_DIR/flood.csv" 'DeadCallMsgs(C)')
# SIPp's RTT file: date_ms;response_time_ms;rtd_no (one line per call).
rtt=$(ls "$OUT_DIR"/bench_uac_*_rtt.csv 2>/dev/null | head -1)
[ -n "$rtt" ] || die "no RTT file from the legit UAC (see $OUT_DIR/legit.out)"
pcts() { # prints p50 p99 max n of the values on stdin
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - - 0"; exit }
        i50 = int(0.50 * NR + 0.5); if (i50 < 1) i50 = 1
        i99 = int(0.99 * NR + 0.5); if (i99 < 1) i99 = 1
        printf "%.2f %.2f %.2f %d\n", v[i50], v[i99], v[NR], NR }'
}
# The INVITE was sent response_time ms before date_ms.
during=$(awk -F';' -v z="$legit_start" -v a="$t0" -v b="$t1" 'NR > 1 && $2 != "" { s = z + $1 - $2; if (s >= a && s <= b) print $2 }' "$rtt" | pcts)
all=$(awk -F';' 'NR > 1 && $2 != "" { print $2 }' "$rtt" | pcts)
sent=$(awk -v a="$sent0" -v b="$sent1" 'BEGIN { printf "%d", b - a }')
per_req=$(awk -v s="$sent" -v n="$flood_sent" 'BEGIN { printf "%.3f", (n > 0 ? s / n : 0) }')
flood_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
cpu_s=$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
growth=$(awk -v a="$rss0" -v b="$peak" 'BEGIN { printf "%.1f", (b - a) / 1024 }')

read -r d50 d99 dmax dn <<<"$during"
read -r a50 a99 amax an <<<"$all"
cat <<EOF | tee "$OUT_DIR/report.txt"

Flood: $flood_sent INVITEs from $FLOOD_ADDR in ${flood_secs} s (offered $FLOOD_CPS/s), each sent once, never ACKed
  403s the gateway sent:          $sent  ($per_req per flood INVITE; target <= 1)
  flood calls that got their 403: $flood_answered
  403 copies after the call ended (retransmissions): $dead
Legit: $LEGIT_CALLS calls at $LEGIT_CPS/s from $UAC_ADDR, ${HOLD_MS} ms each
  failed:                          $legit_failed  (target 0)
  INVITE->200 during the flood:    p50 $d50 ms  p99 $d99 ms  max $dmax ms  ($dn calls; target p99 <= 50 ms)
  INVITE->200 over the whole run:  p50 $a50 ms  p99 $a99 ms  max $amax ms  ($an calls)
Gateway:
  RSS before the flood $((rss0 / 1024)) MB, peak $((peak / 1024)) MB: growth $growth MB  (target <= 20 MB)
  CPU during the flood: $cpu_s s
Logs and CSVs: $OUT_DIR
EOF
