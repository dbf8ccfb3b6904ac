#!/usr/bin/env python3
"""POSTs CALLS originate requests to Trunkline's API at RATE per second.

Used by tests/bench/originate.sh; standard library only. Each of WORKERS
threads keeps one HTTP/1.1 connection and takes the next request when its
start time comes, so a slow answer delays that worker, not the schedule.
Prints one line: sent, created (201), other statuses, elapsed seconds.
"""
import http.client
import json
import sys
import threading
import time

host, port, key, calls, rate, to, outbound = sys.argv[1:8]
port, calls, rate = int(port), int(calls), float(rate)
workers = 32
body = json.dumps({"to": to, "outbound": outbound}).encode()
headers = {
    "Authorization": "Bearer " + key,
    "Content-Type": "application/json",
}
lock = threading.Lock()
state = {"next": 0, "created": 0, "other": {}}
t0 = time.monotonic() + 0.2


def worker():
    conn = http.client.HTTPConnection(host, port, timeout=10)
    while True:
        with lock:
            i = state["next"]
            if i >= calls:
                return
            state["next"] = i + 1
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            conn.request("POST", "/v1/calls", body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
        with lock:
            if status == 201:
                state["created"] += 1
            else:
                state["other"][status] = state["other"].get(status, 0) + 1


threads = [threading.Thread(target=worker) for _ in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - t0
other = ",".join(f"{k}:{v}" for k, v in sorted(state["other"].items(), key=str)) or "-"
print(f"{calls} {state['created']} {other} {elapsed:.2f}")
