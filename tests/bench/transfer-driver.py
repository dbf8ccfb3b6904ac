#!/usr/bin/env python3
"""Watches Trunkline's active calls and, in `transfer` mode, cold-transfers
each newly connected one once.

Used by tests/bench/transfer.sh; standard library only. It polls
`GET /v1/calls` every POLL seconds in both modes (so both steps pay the
same API cost) until SECONDS pass; in `transfer` mode it POSTs
`{"mode": "cold", "to": TO, "outbound": OUTBOUND}` for every connected call
it has not transferred yet. Prints one line: polls, transfers asked, 202s,
other statuses.
"""
import http.client
import json
import sys
import time

host, port, key, mode, seconds, to, outbound = sys.argv[1:8]
port, seconds = int(port), float(seconds)
POLL = 0.05
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
body = json.dumps({"mode": "cold", "to": to, "outbound": outbound}).encode()
conn = http.client.HTTPConnection(host, port, timeout=10)
done, polls, asked, accepted, other = set(), 0, 0, 0, {}
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        conn.request("GET", "/v1/calls", headers=headers)
        r = conn.getresponse()
        calls = json.loads(r.read()).get("calls", [])
        polls += 1
        for c in calls:
            if mode != "transfer" or c["state"] != "connected" or c["call_id"] in done:
                continue
            done.add(c["call_id"])
            asked += 1
            conn.request("POST", f"/v1/calls/{c['call_id']}/transfer", body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status == 202:
                accepted += 1
            else:
                other[r.status] = other.get(r.status, 0) + 1
    except (OSError, http.client.HTTPException, ValueError) as e:
        other[type(e).__name__] = other.get(type(e).__name__, 0) + 1
        conn.close()
        conn = http.client.HTTPConnection(host, port, timeout=10)
    time.sleep(POLL)
print(polls, asked, accepted, ",".join(f"{k}:{v}" for k, v in other.items()) or "-")
