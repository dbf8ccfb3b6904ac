#!/usr/bin/env bash
# tests/bench/rtp-relay.sh: RTP relay benchmark, Trunkline vs rtpengine, same
# load on loopback: CALLS calls, PCMU on leg A and PCMA on leg B (every packet
# transcoded), 20 ms packets both ways, SECS seconds per round, ROUNDS rounds
# (medians reported).
#
#   trunkline  cargo bench -p trunkline-relay --bench relay: MediaSession per
#              call on its own thread; CPU = that thread's utime+stime.
#   rtpengine  rtpengine --table=-1 (userspace forwarding) on 127.0.0.1,
#              temp config; calls made over ng (offer with codec mask PCMU,
#              transcode PCMA; answer PCMA) by
#              cargo bench -p trunkline-relay --bench rtpengine;
#              CPU = utime+stime of the rtpengine process (/proc/PID/stat).
#
# Latency = receive time minus the send time carried in the audio samples
# (what a listener hears). RSS per call = VmRSS growth per established call.
# Needs: apt-get install -y --no-install-recommends rtpengine-daemon rtpengine-utils
# (without rtpengine only the Trunkline half runs).
#
# Usage: tests/bench/rtp-relay.sh            (CALLS=100 SECS=10 ROUNDS=3)
#        CALLS=50 SECS=5 ROUNDS=1 tests/bench/rtp-relay.sh
set -euo pipefail

CALLS=${CALLS:-100}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
NG_ADDR=${NG_ADDR:-127.0.0.1}
NG_PORT=${NG_PORT:-22222}
RTP_PORT_MIN=${RTP_PORT_MIN:-30000}
RTP_PORT_MAX=${RTP_PORT_MAX:-34999}

cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/rtp-relay-bench.XXXXXX)
RTPE_PID=
TIMEOUT_PID=

cleanup() {
    if [[ -n $RTPE_PID ]] && kill -0 "$RTPE_PID" 2>/dev/null; then
        kill "$RTPE_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$RTPE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$RTPE_PID" 2>/dev/null || true
    fi
    if [[ -n $TIMEOUT_PID ]]; then kill "$TIMEOUT_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Upper bound of one bench run: rounds x (warm-up + window + set-up slack).
ROUND_BOUND=$(( ROUNDS * 2 * (SECS + 10) + 60 ))

echo "== building benches"
cargo bench -q -p trunkline-relay --no-run 2>&1 | grep -v '^ *Executable' || true

echo "== trunkline relay ($CALLS calls, ${SECS} s x $ROUNDS rounds)"
RELAY_BENCH_ROUNDS=$ROUNDS timeout "$ROUND_BOUND" \
    cargo bench -q -p trunkline-relay --bench relay -- "$CALLS" "$SECS" | tee "$WORK/trunkline.log"

if command -v rtpengine >/dev/null; then
    cat >"$WORK/rtpengine.conf" <<EOF
[rtpengine]
table = -1
interface = $NG_ADDR
listen-ng = $NG_ADDR:$NG_PORT
port-min = $RTP_PORT_MIN
port-max = $RTP_PORT_MAX
log-level = 4
EOF
    echo "== rtpengine userspace ($CALLS calls, ${SECS} s x $ROUNDS rounds)"
    # --foreground keeps it our child; timeout bounds it even if we are killed.
    timeout $(( ROUND_BOUND + 30 )) rtpengine --config-file="$WORK/rtpengine.conf" \
        --foreground --log-stderr --pidfile="$WORK/rtpengine.pid" \
        >"$WORK/rtpengine.log" 2>&1 &
    TIMEOUT_PID=$!
    # Ready when it answers an ng ping.
    ready=
    for _ in $(seq 50); do
        if [[ -s $WORK/rtpengine.pid ]] && python3 - "$NG_ADDR" "$NG_PORT" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.sendto(b"ping-1 d7:command4:pinge", (sys.argv[1], int(sys.argv[2])))
sys.exit(0 if b"pong" in s.recv(1024) else 1)
EOF
        then ready=1; break; fi
        sleep 0.1
    done
    if [[ -z $ready ]]; then
        echo "rtpengine did not start:" >&2
        cat "$WORK/rtpengine.log" >&2
        exit 1
    fi
    RTPE_PID=$(cat "$WORK/rtpengine.pid")
    RTPENGINE_PID=$RTPE_PID RTPENGINE_NG=$NG_ADDR:$NG_PORT RELAY_BENCH_ROUNDS=$ROUNDS \
        timeout "$ROUND_BOUND" \
        cargo bench -q -p trunkline-relay --bench rtpengine -- "$CALLS" "$SECS" |
        tee "$WORK/rtpengine-bench.log"
else
    echo "== rtpengine not installed: skipped (see header)"
    : >"$WORK/rtpengine-bench.log"
fi

echo
echo "== summary: $CALLS calls, PCMU<->PCMA, 20 ms both ways, ${SECS} s, median of $ROUNDS"
grep -h '^RESULT' "$WORK/trunkline.log" "$WORK/rtpengine-bench.log" | awk '
    function field(name,   i, kv) {
        for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
        return "-"
    }
    { cpu[$2] = field("cpu_us"); p50[$2] = field("p50_us"); p99[$2] = field("p99_us")
      rss[$2] = field("rss_kib_per_call"); order[n++] = $2 }
    END {
        printf "%-22s %12s %10s %10s %14s\n", "relay", "CPU us/pkt", "p50 us", "p99 us", "RSS KiB/call"
        names["sessions"] = "trunkline (sessions)"; names["reactor"] = "epoll floor (bench)"
        names["rtpengine"] = "rtpengine userspace"
        for (i = 0; i < n; i++) {
            k = order[i]; r = (k == "reactor") ? "-" : rss[k]
            printf "%-22s %12s %10s %10s %14s\n", names[k], cpu[k], p50[k], p99[k], r
        }
        if (("sessions" in cpu) && ("rtpengine" in cpu) && cpu["rtpengine"] > 0)
            printf "ratio trunkline/rtpengine: CPU %.2f, p99 %.3f\n",
                cpu["sessions"] / cpu["rtpengine"], p99["sessions"] / p99["rtpengine"]
        print "targets: CPU <= 2.5 us/packet, p99 <= 1000 us, RSS <= 64 KiB/call"
    }'
