#!/usr/bin/env bash
# tests/bench/soak.sh: a long run at a steady load, then a drain; checks that
# nothing leaks and nothing fails.
#
#   SIPp signalling UAC (bench_uac.xml)    ->             -> SIPp UAS (bench_uas.xml)
#   127.0.0.11, CPS calls/s of HOLD_MS        Trunkline       127.0.0.13
#   SIPp media UAC (soak_media_uac.xml)    -> 127.0.0.12   -> SIPp UAS (bench_uas.xml -rtp_echo)
#   127.0.0.15, MEDIA_CALLS held open                         127.0.0.14
#
# Two loads at once, because one SIPp cannot do both well:
#   - signalling: short calls (INVITE/180/200/ACK, HOLD_MS, BYE/200) at CPS,
#     the same calls as sip-cps.sh measured, at LOAD_PCT (80%) of the clean
#     rate it found at steady state (steps of CALLS=30000: shorter ones end
#     before the 32 s transaction tables fill, and overstate what a gateway
#     holds for minutes). The README's steady-state clean rate for
#     Trunkline on the 2-core VM is 500 CPS (both SIPp on the same cores),
#     so CPS defaults to 400; set CLEAN_CPS to your own figure, or CPS.
#   - media: MEDIA_CALLS calls held open all the time (SIPp -l), each about
#     MEDIA_LOOPS x 7.1 s long with SIPp's g711a.pcap playing (PCMA, 30 ms
#     packets) toward the relay; the agent side echoes every packet
#     (-rtp_echo), so audio crosses the relay both ways and is transcoded
#     (the agent answers PCMU). An ended call is replaced at once.
# After DURATION seconds both UACs stop placing calls (SIGUSR1: calls in
# progress finish); that is the drain. Once they have exited, the script
# waits (up to DRAIN_TIMEOUT_S) for the gateway's finished transactions to
# expire (RFC 3261/6026 keep them 32 s), then reads /metrics.
#
# Reported, with a target each (exit 1 when one is missed, 2 on a set-up
# error):
#   - failed calls, both loads: SIPp's OutgoingCall minus SuccessfulCall, so
#     a call that never completed counts too (target < MAX_FAIL_PCT, 0.1%);
#   - the signalling rate achieved (target >= MIN_ACHIEVED_PCT, 90%, of CPS:
#     a gateway that falls behind shows here, not as failures);
#   - the gateway's RSS (VmRSS) every SAMPLE_S seconds; growth from the
#     sample at RSS_FROM_S (minute 2 of 10) to the last one, at DURATION
#     (target < MAX_RSS_GROWTH_PCT, 5%), with its split into the gateway's
#     own memory (RssAnon: heap, stacks) and file pages (RssFile: the
#     binary, and the outcome store's read connections' mapping of the
#     database, which only Handoff look-ups touch);
#   - /metrics after the drain: calls (trunkline_active_calls and
#     trunkline_calls_open), dialogs (trunkline_sip_dialogs_open),
#     transactions (trunkline_sip_transactions_open), relay port pairs in
#     use (trunkline_rtp_port_pairs_in_use) and the call timers
#     (trunkline_call_timers): all 0; calls ended = calls started;
#   - the gateway's CPU (utime+stime) over the load, and a clean exit on
#     SIGTERM at the end.
#
# Environment (defaults):
#   DURATION=600 (s)  CLEAN_CPS=500  LOAD_PCT=80  CPS=CLEAN_CPS*LOAD_PCT/100
#   HOLD_MS=100  MEDIA_CALLS=100  MEDIA_LOOPS=8 (about 57 s per media call)
#   SAMPLE_S=30 (DURATION/10 below 300 s)  RSS_FROM_S=DURATION/5 (at least 45)
#   MAX_FAIL_PCT=0.1  MAX_RSS_GROWTH_PCT=5  MIN_ACHIEVED_PCT=90
#   DRAIN_TIMEOUT_S=60  KEEP_STORE=0 (1 keeps target/soak-outcomes.db)
#   TRUNKLINE_BIN=target/release/trunkline
#   TRUNKLINE_BENCH_CONFIG=tests/bench/soak.toml
#   OUT_DIR (default: a new temporary directory; logs, CSVs, samples.tsv)
# A short run: DURATION=60 tests/bench/soak.sh.
#
# Needs: sipp (apt-get install sip-tester; the pcap is played through a raw
# socket, so root or CAP_NET_RAW), curl, `cargo xtask policies` and
# `cargo build --release -p trunkline`. Loopback only. The machine is
# shared with the SIPp processes (and whatever else runs): say so next to
# the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCEN="$ROOT/examples/sipp"
DURATION=${DURATION:-600}
CLEAN_CPS=${CLEAN_CPS:-500}
LOAD_PCT=${LOAD_PCT:-80}
CPS=${CPS:-$((CLEAN_CPS * LOAD_PCT / 100))}
HOLD_MS=${HOLD_MS:-100}
MEDIA_CALLS=${MEDIA_CALLS:-100}
MEDIA_LOOPS=${MEDIA_LOOPS:-8}
if [ "$DURATION" -ge 300 ]; then SAMPLE_S=${SAMPLE_S:-30}; else SAMPLE_S=${SAMPLE_S:-$(((DURATION + 9) / 10))}; fi
# Not before 45 s: finished transactions live 32 s, so memory only settles
# after that.
RSS_FROM_S=${RSS_FROM_S:-$((DURATION / 5 > 45 ? DURATION / 5 : 45))}
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.1}
MAX_RSS_GROWTH_PCT=${MAX_RSS_GROWTH_PCT:-5}
MIN_ACHIEVED_PCT=${MIN_ACHIEVED_PCT:-90}
DRAIN_TIMEOUT_S=${DRAIN_TIMEOUT_S:-60}
KEEP_STORE=${KEEP_STORE:-0}
SIG_ADDR=127.0.0.11
TARGET_ADDR=127.0.0.12
TARGET_PORT=5060
UAS_ADDR=127.0.0.13
MEDIA_UAS_ADDR=127.0.0.14
MEDIA_ADDR=127.0.0.15
HTTP="http://$TARGET_ADDR:8080"
TRUNKLINE_BIN=${TRUNKLINE_BIN:-$ROOT/target/release/trunkline}
TRUNKLINE_BENCH_CONFIG=${TRUNKLINE_BENCH_CONFIG:-$ROOT/tests/bench/soak.toml}
STORE_DB="$ROOT/target/soak-outcomes.db"
OUT_DIR=${OUT_DIR:-$(mktemp -d -t soak.XXXXXX)}
CLK_TCK=$(getconf CLK_TCK)
SIPP_COMMON=(-buff_size 4194304 -nostdin -default_behaviors all,-abortunexp)

die() { echo "soak: $*" >&2; exit 2; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"
command -v curl >/dev/null || die "curl not found: apt-get install -y curl"
[ -x "$TRUNKLINE_BIN" ] || die "$TRUNKLINE_BIN missing: cargo build --release -p trunkline"
[ -f "$ROOT/target/policies/route-reason.wasm" ] || die "no policies: cargo xtask policies"
[ -f /usr/share/sip-tester/g711a.pcap ] || die "no /usr/share/sip-tester/g711a.pcap (sip-tester)"
[ "$CPS" -gt 0 ] && [ "$DURATION" -gt 0 ] || die "CPS and DURATION must be positive"
mkdir -p "$OUT_DIR"
cd "$OUT_DIR"

# Every process started here; only these are ever signalled.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    PIDS=()
    [ "$KEEP_STORE" = 1 ] || rm -f "$STORE_DB" "$STORE_DB-wal" "$STORE_DB-shm"
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
# Anonymous (heap) and file-backed (the store's memory-mapped pages) RSS.
rss_split_kb() { awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a + 0, f + 0 }' "/proc/$1/status"; }
# Datagrams the kernel dropped on the UDP sockets bound to $@ (a.b.c.d:port)
# for a full receive buffer: the last column of /proc/net/udp. A dropped
# ACK or BYE explains a call the gateway ends by itself.
udp_drops() {
    local want="" a
    for a in "$@"; do
        want+=$(awk -v a="${a%:*}" -v p="${a#*:}" 'BEGIN { split(a, o, "."); printf "%02X%02X%02X%02X:%04X ", o[4], o[3], o[2], o[1], p }')
    done
    awk -v w="$want" 'NR > 1 && index(w, $2 " ") { d += $NF } END { print d + 0 }' /proc/net/udp
}
scrape() { curl -sf --max-time 5 "$HTTP/metrics" >"$1"; }
metric() { # file series: value summed over the lines that start with it
    awk -v s="$2" 'index($0, s) == 1 { v += $NF } END { print v + 0 }' "$1"
}
# A gauge of the drain check: its value, or "absent" (an older binary):
# a series that is not exported must not pass as 0.
gauge_after() {
    grep -q "^$1 " after.txt && metric after.txt "$1" || echo absent
}
csv_last() { # file column
    awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        { v = $c } END { print (v == "" ? 0 : v) }' "$1"
}
wait_http() {
    local deadline=$((SECONDS + 30))
    until curl -sf "$HTTP/readyz" >/dev/null; do
        [ $SECONDS -lt $deadline ] || die "gateway not ready on $HTTP (see $OUT_DIR/trunkline.log)"
        kill -0 "$GW" 2>/dev/null || die "the gateway exited (see $OUT_DIR/trunkline.log)"
        sleep 0.2
    done
}
alive() { kill -0 "$1" 2>/dev/null; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Waits until pid $1 has exited, at most $2 seconds; 1 if it is still there.
wait_exit() {
    local deadline=$((SECONDS + $2))
    while alive "$1"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}

rm -f "$STORE_DB" "$STORE_DB-wal" "$STORE_DB-shm"

sipp -sf "$SCEN/bench_uas.xml" -i "$UAS_ADDR" -p 5060 -mp 26000 "${SIPP_COMMON[@]}" \
    -trace_stat -stf uas.csv -fd 5 >uas.log 2>&1 &
UAS=$!
PIDS+=("$UAS")
sipp -sf "$SCEN/bench_uas.xml" -i "$MEDIA_UAS_ADDR" -p 5060 -mp 26000 -rtp_echo "${SIPP_COMMON[@]}" \
    -trace_stat -stf media_uas.csv -fd 5 >media_uas.log 2>&1 &
MEDIA_UAS=$!
PIDS+=("$MEDIA_UAS")
RUST_LOG=${RUST_LOG:-warn} "$TRUNKLINE_BIN" run --config "$TRUNKLINE_BENCH_CONFIG" \
    >trunkline.log 2>&1 &
GW=$!
PIDS+=("$GW")
wait_http
sleep 1

# Each UAC runs until SIGUSR1 (below); its -timeout is only a backstop.
backstop=$((DURATION + MEDIA_LOOPS * 8 + 300))
cpu0=$(cpu_ticks "$GW")
start=$SECONDS
# Ramp to MEDIA_CALLS in about five seconds; -l then keeps that many open.
sipp -sf "$SCEN/soak_media_uac.xml" -i "$MEDIA_ADDR" -p 5060 -mp 25000 -s media \
    -set loops "$MEDIA_LOOPS" -r $(((MEDIA_CALLS + 4) / 5)) -l "$MEDIA_CALLS" \
    -timeout "${backstop}s" "${SIPP_COMMON[@]}" -trace_stat -stf media.csv -fd 5 \
    -trace_err -error_file media.err "$TARGET_ADDR:$TARGET_PORT" >media.out 2>&1 &
MEDIA=$!
PIDS+=("$MEDIA")
# -l: at most one second of calls open at once, as in sip-cps.sh. Its error
# file notes every call's skipped late 180: two rotated 20 MB files, not 200.
sipp -sf "$SCEN/bench_uac.xml" -i "$SIG_ADDR" -p 5060 -mp 24000 -s bench \
    -r "$CPS" -rp 1000 -l "$CPS" -d "$HOLD_MS" -max_retrans 5 \
    -timeout "${backstop}s" "${SIPP_COMMON[@]}" -trace_stat -stf sig.csv -fd 5 \
    -trace_err -error_file sig.err -ringbuffer_files 2 -ringbuffer_size 20000000 \
    "$TARGET_ADDR:$TARGET_PORT" >sig.out 2>&1 &
SIG=$!
PIDS+=("$SIG")

echo "soak: $DURATION s at $CPS CPS (${LOAD_PCT}% of $CLEAN_CPS) of ${HOLD_MS} ms calls, plus $MEDIA_CALLS media calls held open; logs in $OUT_DIR"
printf 't_s\trss_kb\tanon_kb\tfile_kb\tcpu_s\tactive_calls\ttransactions\tport_pairs\tcall_timers\n' >samples.tsv
printf '%6s %8s %8s %8s %8s %6s %7s %6s %7s\n' t_s rss_MB anon_MB file_MB cpu_s calls tx ports timers
rss_from= rss_from_t= rss_last= t=0 next=$SAMPLE_S
while :; do
    [ "$next" -gt "$DURATION" ] && next=$DURATION
    sleep $((start + next - SECONDS > 0 ? start + next - SECONDS : 0))
    t=$((SECONDS - start))
    alive "$GW" || die "the gateway died at ${t} s (see $OUT_DIR/trunkline.log)"
    alive "$SIG" || die "the signalling UAC exited at ${t} s (see $OUT_DIR/sig.out)"
    alive "$MEDIA" || die "the media UAC exited at ${t} s (see $OUT_DIR/media.out)"
    rss=$(rss_kb "$GW")
    read -r anon file <<<"$(rss_split_kb "$GW")"
    cpu=$(awk -v a="$cpu0" -v b="$(cpu_ticks "$GW")" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) / hz }')
    scrape m.txt || : >m.txt
    calls=$(metric m.txt trunkline_active_calls)
    tx=$(metric m.txt trunkline_sip_transactions_open)
    ports=$(metric m.txt trunkline_rtp_port_pairs_in_use)
    timers=$(metric m.txt trunkline_call_timers)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rss" "$anon" "$file" "$cpu" "$calls" "$tx" "$ports" "$timers" >>samples.tsv
    printf '%6s %8s %8s %8s %8s %6s %7s %6s %7s\n' "$t" "$(mb "$rss")" "$(mb "$anon")" "$(mb "$file")" "$cpu" "$calls" "$tx" "$ports" "$timers"
    if [ -z "$rss_from" ] && [ "$t" -ge "$RSS_FROM_S" ]; then
        rss_from=$rss rss_from_t=$t anon_from=$anon file_from=$file
    fi
    rss_last=$rss anon_last=$anon file_last=$file
    [ "$next" -ge "$DURATION" ] && break
    next=$((next + SAMPLE_S))
done
cpu1=$(cpu_ticks "$GW")
load_s=$((SECONDS - start))
gw_drops=$(udp_drops "$TARGET_ADDR:$TARGET_PORT")
sipp_drops=$(udp_drops "$SIG_ADDR:5060" "$UAS_ADDR:5060" "$MEDIA_ADDR:5060" "$MEDIA_UAS_ADDR:5060")

# The drain: no new calls; the ones in progress finish.
kill -USR1 "$SIG" "$MEDIA" 2>/dev/null || true
drained=1
wait_exit "$SIG" 60 || drained=0
wait_exit "$MEDIA" $((MEDIA_LOOPS * 8 + 60)) || drained=0
[ "$drained" = 1 ] || echo "soak: a UAC did not finish its calls in time; killing it"
kill -KILL "$SIG" "$MEDIA" 2>/dev/null || true
drain_start=$SECONDS
names=(trunkline_active_calls trunkline_calls_open trunkline_sip_dialogs_open
    trunkline_sip_transactions_open trunkline_rtp_port_pairs_in_use trunkline_call_timers)
while :; do
    alive "$GW" || die "the gateway died during the drain (see $OUT_DIR/trunkline.log)"
    scrape after.txt || : >after.txt
    left=0
    for n in "${names[@]}"; do
        [ "$(gauge_after "$n")" = 0 ] || left=1
    done
    [ "$left" = 0 ] && break
    [ $((SECONDS - drain_start)) -lt "$DRAIN_TIMEOUT_S" ] || break
    sleep 1
done
drain_s=$((SECONDS - drain_start))
rss_after=$(rss_kb "$GW")
kill -USR1 "$UAS" "$MEDIA_UAS" 2>/dev/null || true
wait_exit "$UAS" 10 || true
wait_exit "$MEDIA_UAS" 10 || true

# A clean exit once idle.
kill -TERM "$GW"
gw_rc=0
wait "$GW" || gw_rc=$?

sig_out=$(csv_last sig.csv 'OutgoingCall(C)')
sig_ok=$(csv_last sig.csv 'SuccessfulCall(C)')
media_out=$(csv_last media.csv 'OutgoingCall(C)')
media_ok=$(csv_last media.csv 'SuccessfulCall(C)')
uas_failed=$(($(csv_last uas.csv 'FailedCall(C)') + $(csv_last media_uas.csv 'FailedCall(C)')))
sig_failed=$((sig_out - sig_ok))
media_failed=$((media_out - media_ok))
calls=$((sig_out + media_out))
failed=$((sig_failed + media_failed))
fail_pct=$(awk -v f="$failed" -v n="$calls" 'BEGIN { printf "%.4f", (n > 0 ? 100 * f / n : 100) }')
achieved=$(awk -v n="$sig_out" -v s="$load_s" 'BEGIN { printf "%.0f", n / s }')
pct() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { printf "%.1f", (a > 0 ? 100 * (b - a) / a : 0) }'; }
growth=$(pct "$rss_from" "$rss_last")
anon_growth=$(pct "$anon_from" "$anon_last")
cpu_s=$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')
cpu_pct=$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v s="$load_s" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
cpu_k=$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$calls" 'BEGIN { printf "%.3f", (n > 0 ? 1000 * t / hz / n : 0) }')
started=$(metric after.txt trunkline_calls_started_total)
ended=$(metric after.txt trunkline_calls_ended_total)
reasons=$(awk 'index($0, "trunkline_calls_ended_total{") == 1 && $NF > 0 {
        match($0, /reason="[^"]*"/); r = substr($0, RSTART + 8, RLENGTH - 9); n[r] += $NF }
        END { for (r in n) printf "%s%s %d", (s++ ? ", " : ""), r, n[r] }' after.txt)


check() { # name ok(0|1) text
    if [ "$2" = 1 ]; then echo "  ok    $1: $3"; else echo "  MISS  $1: $3"; fi
}
ok() { awk "BEGIN { exit !($1) }" && echo 1 || echo 0; }
{
    echo
    echo "Soak: $load_s s at $CPS CPS offered (${LOAD_PCT}% of $CLEAN_CPS) + $MEDIA_CALLS media calls; drained in ${drain_s} s after the UACs stopped"
    echo "  signalling calls: $sig_out placed, $sig_ok completed, achieved $achieved CPS"
    echo "  media calls:      $media_out placed, $media_ok completed (~$((MEDIA_LOOPS * 71 / 10)) s each)"
    echo "  failed:           $failed of $calls ($fail_pct%); calls the agents' SIPp failed: $uas_failed"
    echo "  RSS:              $(mb "${rss_from:-0}") MB at ${rss_from_t:-?} s, $(mb "${rss_last:-0}") MB at $t s: $growth%; $(mb "$rss_after") MB after the drain"
    echo "    of which heap   $(mb "${anon_from:-0}") -> $(mb "${anon_last:-0}") MB: $anon_growth%; file pages $(mb "${file_from:-0}") -> $(mb "${file_last:-0}") MB"
    echo "  gateway CPU:      $cpu_s s over $load_s s ($cpu_pct% of one core; $cpu_k CPU-s per 1000 calls)"
    echo "  SIP datagrams dropped by the kernel (full receive buffers): gateway $gw_drops, SIPp $sipp_drops"
    echo "  /metrics after the drain:"
    for n in "${names[@]}"; do printf '    %-34s %s\n' "$n" "$(gauge_after "$n")"; done
    echo "    calls started / ended              $started / $ended ($reasons)"
    echo "    outcome store errors               $(metric after.txt trunkline_outcome_store_errors_total)"
    echo "  gateway exit on SIGTERM: $gw_rc"
    echo "Targets:"
    check "failed calls" "$(ok "$fail_pct < $MAX_FAIL_PCT && $calls > 0")" "$fail_pct% (< $MAX_FAIL_PCT%)"
    check "signalling rate" "$(ok "100 * $achieved >= $MIN_ACHIEVED_PCT * $CPS")" "$achieved of $CPS CPS (>= $MIN_ACHIEVED_PCT%)"
    if [ -n "$rss_from" ]; then
        check "RSS growth" "$(ok "$growth < $MAX_RSS_GROWTH_PCT")" "$growth% from $rss_from_t s to $t s (< $MAX_RSS_GROWTH_PCT%); the gateway's own memory (RssAnon) $anon_growth%"
    else
        check "RSS growth" 0 "no sample at or after RSS_FROM_S=$RSS_FROM_S s: DURATION must be longer"
    fi
    for n in "${names[@]}"; do
        v=$(gauge_after "$n")
        check "$n" "$([ "$v" = 0 ] && echo 1 || echo 0)" "$v after the drain (0)"
    done
    check "calls concluded" "$(ok "$started == $ended && $started > 0")" "$ended of $started"
    check "clean exit" "$(ok "$gw_rc == 0")" "exit status $gw_rc"
    echo "Logs, CSVs and samples.tsv: $OUT_DIR"
} | tee report.txt
grep -q '^  MISS' report.txt && exit 1
exit 0
