#!/usr/bin/env python3
"""(e) `get_violation_history` over a year of daily snapshots, server-side time.

Stores DAYS daily snapshots of the demo estate (1,000 resources) with `tagwarden check --demo
--snapshot --taken-at T` (one per day, ending yesterday), then serves them over stdio and times
CALLS calls of `get_violation_history {days_back: 400, group_by: day}`. The server-side time is
the `ms=` of each `tool call ok tool="get_violation_history"` log line (the SQLite query, the
grouping and the trend; without JSON-RPC framing and the audit write). Also reports the size of
history.db and how long storing the snapshots took.

Usage: history_latency.py TAGWARDEN RESULT.json DAYS CALLS
"""

import datetime
import os
import re
import subprocess
import sys
import time

from benchlib import StdioSession, bench_env, log, summary, work_dir, write_result

BIN, OUT, DAYS, CALLS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
TOOL_OK = re.compile(r'tool call ok tool="get_violation_history" ms=([0-9.]+)')

data = os.path.join(work_dir(), "history-bench")
os.makedirs(data, exist_ok=True)
env = bench_env({"TAGWARDEN_DATA_DIR": data, "TAGWARDEN_LOG": "info"})
yesterday = datetime.datetime.now(datetime.timezone.utc).replace(
    hour=12, minute=0, second=0, microsecond=0) - datetime.timedelta(days=1)
log(f"storing {DAYS} daily snapshots of a 1,000-resource demo estate")
started = time.perf_counter()
for back in range(DAYS - 1, -1, -1):
    at = (yesterday - datetime.timedelta(days=back)).strftime("%Y-%m-%dT%H:%M:%SZ")
    subprocess.run([BIN, "check", "--demo", "--demo-size", "1000", "--demo-seed", str(back),
                    "--snapshot", "--taken-at", at, "--format", "json", "--limit", "0"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
store_s = time.perf_counter() - started
db_bytes = os.path.getsize(os.path.join(data, "history.db"))

session = StdioSession([BIN, "serve", "--stdio", "--demo", "--no-prewarm"], env)
try:
    session.initialize()
    first = session.call("get_violation_history", {"days_back": 400, "group_by": "day"})
    points = len(first["points"])
    log(f"{points} points; timing {CALLS} calls")
    client_ms = []
    for _ in range(CALLS):
        t = time.perf_counter()
        session.call("get_violation_history", {"days_back": 400, "group_by": "day"})
        client_ms.append((time.perf_counter() - t) * 1000.0)
    deadline = time.monotonic() + 30
    server_ms = []
    text = ""
    while len(server_ms) < CALLS + 1 and time.monotonic() < deadline:
        text += session.stderr_text() + "\n"
        server_ms = [float(m.group(1)) for m in TOOL_OK.finditer(text)]
        time.sleep(0.05)
finally:
    session.close()

write_result(OUT, {
    "snapshots": DAYS,
    "points": points,
    "store_s": store_s,
    "history_db_bytes": db_bytes,
    "calls": CALLS,
    "server_ms": summary(server_ms[1:]),
    "client_ms": summary(client_ms),
})
