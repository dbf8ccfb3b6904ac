# tests/bench/common.sh: helpers the SIP benches share (sourced, not run).
# The caller sets OUT_DIR and die(); start_group writes the output of what
# it starts to $LOG.

# Process groups started here (target, UAS); only these are ever signalled.
STARTED_PGIDS=()
cleanup() {
    local pg
    for pg in "${STARTED_PGIDS[@]}"; do
        kill -TERM -- "-$pg" 2>/dev/null || true
    done
    sleep 0.5
    for pg in "${STARTED_PGIDS[@]}"; do
        kill -KILL -- "-$pg" 2>/dev/null || true
    done
    STARTED_PGIDS=()
}
trap cleanup EXIT

# Sum of utime+stime (clock ticks) over the processes of process group $1.
cpu_ticks_pgrp() {
    local pg=$1 total=0 f stat
    for f in /proc/[0-9]*/stat; do
        # (A process may end between the glob and the read: skip it.)
        { stat=$(<"$f"); } 2>/dev/null || continue
        # Fields after "(comm) ": state ppid pgrp ... utime(12th) stime(13th).
        # shellcheck disable=SC2086
        set -- ${stat##*) }
        if [ "$3" = "$pg" ]; then
            total=$((total + ${12} + ${13}))
        fi
    done
    echo "$total"
}

# UDP datagrams the kernel dropped for full receive buffers, host-wide (any
# of SIPp, the target); a rising count explains retransmissions.
udp_rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# Waits until something listens on UDP $1:$2 (at most $3 seconds).
# /proc/net/udp spells 127.0.0.12:5060 as 0C00007F:13C4.
wait_udp_listen() {
    local want deadline
    want=$(awk -v a="$1" -v p="$2" 'BEGIN { split(a, o, "."); printf "%02X%02X%02X%02X:%04X", o[4], o[3], o[2], o[1], p }')
    deadline=$((SECONDS + $3))
    while [ $SECONDS -lt "$deadline" ]; do
        grep -q " $want " /proc/net/udp && return 0
        sleep 0.2
    done
    return 1
}

# Starts "$@" in a new session (its own process group) with output in $LOG;
# sets STARTED_PID.
start_group() {
    setsid "$@" >"$LOG" 2>&1 &
    STARTED_PID=$!
    # setsid execs in place when the caller is not a group leader, which a
    # background job of a non-interactive shell never is.
    sleep 0.2
    local pg
    pg=$(awk '{sub(/.*\) /, ""); print $3}' "/proc/$STARTED_PID/stat" 2>/dev/null || true)
    [ "$pg" = "$STARTED_PID" ] || die "could not start $1 in its own process group (see $LOG)"
    STARTED_PGIDS+=("$STARTED_PID")
}

# Last value of column $2 in SIPp statistics CSV $1 (';'-separated).
csv_last() {
    awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        { v = $c } END { print (v == "" ? 0 : v) }' "$1"
}


# One row of a bench's CPU-per-call table: report KIND OK TICKS prints the
# row (with RATE and CALLS) and appends "KIND<tab>OK<tab>CPU_S_PER_1K" to
# $RESULTS. The caller sets RATE, CALLS and RESULTS.
CLK_TCK=$(getconf CLK_TCK)
report() {
    local cpu_s cpu_k
    cpu_s=$(awk -v t="$3" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    cpu_k=$(awk -v t="$3" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.3f", (n > 0 ? 1000 * t / hz / n : 0) }')
    printf '%-10s %6s %6s %8s %9s %10s\n' "$1" "$RATE" "$CALLS" "$2" "$cpu_s" "$cpu_k"
    printf '%s\t%s\t%s\n' "$1" "$2" "$cpu_k" >>"$RESULTS"
}

# The agent UAS every SIP bench uses (bench_uas.xml on 127.0.0.13:5060).
start_agent_uas() {
    LOG="$OUT_DIR/agent.log"
    start_group sipp -sf "$SCEN/bench_uas.xml" -i 127.0.0.13 -p 5060 -mp 26000 \
        "${SIPP_COMMON[@]}" -trace_stat -stf "$OUT_DIR/agent.csv" -fd 1
    wait_udp_listen 127.0.0.13 5060 10 || die "agent UAS did not bind (see $LOG)"
}

# Trunkline on $CONFIG, listening on 127.0.0.12:5060; its pid in $TL.
start_trunkline() {
    LOG="$OUT_DIR/trunkline.log"
    RUST_LOG=${RUST_LOG:-warn} start_group "$TRUNKLINE_BIN" run --config "$CONFIG"
    TL=$STARTED_PID
    wait_udp_listen 127.0.0.12 5060 20 || die "trunkline did not listen (see $LOG)"
    sleep 1
}
