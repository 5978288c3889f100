#!/usr/bin/env python3
"""(b) `check_tag_compliance` latency over Streamable HTTP, and (c) the server's memory.

Starts `tagwarden serve --http 127.0.0.1:0 SOURCE...` with TAGWARDEN_LOG=info, makes one warm-up
call (which waits for the server's start-up scan), reads VmHWM/VmRSS from /proc/PID/status,
then times CALLS calls over one keep-alive connection. Every request is a 2026-07-28 stateless
tools/call (no session, no initialize). Latency is measured twice:

- client, reply: from just before the request is written until the SSE event carrying the
  JSON-RPC reply has been read (what a streaming MCP client acts on);
- client, complete: until the whole chunked response body has been read, including the final
  empty chunk (when the connection can carry the next request);
- server: the `ms=` of the `tool call ok tool="check_tag_compliance"` line the server logs for
  each call (the guard checks and the tool's work, without HTTP, JSON-RPC framing and the audit
  write). The log goes to a file in the work directory, read once the calls are done.

With DISTINCT=1 in the environment every timed call asks a different question (`limit` 1-200
and `min_severity` vary), so the answer cache never hits: the scan is warm, the evaluation and
summary are computed per call. Otherwise every call asks the same question and, after the
warm-up, is answered from the answer cache.

Usage: http_latency.py TAGWARDEN RESULT.json LABEL CALLS -- SOURCE-ARGS...
"""

import os
import re
import subprocess
import sys
import time

from benchlib import (StatelessHttpClient, bench_env, log, proc_status, spawn, stop, summary,
                      wait_for_log, work_dir, write_result)

BIN, OUT, LABEL, CALLS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
SOURCE = sys.argv[sys.argv.index("--") + 1:]
TOOL = "check_tag_compliance"
ARGS = {}  # the tool's defaults: every resource, the 20 worst violations listed
DISTINCT = os.environ.get("DISTINCT") == "1"
SEVERITIES = ["low", "medium", "high", "critical"]


def question(i):
    if not DISTINCT:
        return ARGS
    return {"limit": i % 200 + 1, "min_severity": SEVERITIES[(i // 200) % 4]}

LISTENING = re.compile(r"listening on http://([0-9.]+):(\d+)/mcp")
TOOL_OK = re.compile(r'tool call ok tool="check_tag_compliance" ms=([0-9.]+)')

args = [BIN, "serve", "--http", "127.0.0.1:0", *SOURCE]
log(f"{LABEL}: {' '.join(args)}")
log_path = os.path.join(work_dir(), f"serve-http-{LABEL}.log")
with open(log_path, "wb") as log_file:
    server = spawn(args, env=bench_env({"TAGWARDEN_LOG": "info"}), stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=log_file)
try:
    # The address the server bound (port 0: the kernel picks a free port).
    listening = wait_for_log(log_path, LISTENING, server)[0]
    host, port = listening.group(1), int(listening.group(2))

    client = StatelessHttpClient(host, port)
    started = time.perf_counter()
    first = client.call(TOOL, ARGS)["structuredContent"]
    first_ms = (time.perf_counter() - started) * 1000.0
    memory = proc_status(server.pid)
    log(f"{LABEL}: {first['resources']} resources; first call {first_ms:.1f} ms; "
        f"VmHWM {memory['VmHWM'] / 1024:.0f} MiB; timing {CALLS} calls")

    reply_ms, complete_ms, answer_hits = [], [], 0
    for i in range(CALLS):
        started = time.perf_counter()
        result = client.call(TOOL, question(i))
        complete_ms.append((time.perf_counter() - started) * 1000.0)
        reply_ms.append((client.reply_at - started) * 1000.0)
        cache = result["structuredContent"]["data_quality"]["cache"]
        if not cache["hit"]:
            raise RuntimeError("a timed call rescanned")
        answer_hits += cache["result"] == "hit"
    body_bytes = client.last_body_bytes
    connections = len(client.local_ports)
    client.close()
    memory_after = proc_status(server.pid)

    # One log line per call, the warm-up first.
    server_ms = [float(m.group(1)) for m in wait_for_log(log_path, TOOL_OK, server, 30, CALLS + 1)]
finally:
    stop(server)

write_result(OUT, {
    "label": LABEL,
    "command": " ".join(args[1:]),
    "resources": first["resources"],
    "calls": CALLS,
    "distinct_questions": DISTINCT,
    "answer_cache_hits": answer_hits,
    "connections": connections,
    "response_bytes": body_bytes,
    "first_call_ms": first_ms,
    "first_call_server_ms": server_ms[0],
    "client_reply_ms": summary(reply_ms),
    "client_complete_ms": summary(complete_ms),
    # Calls whose final empty chunk came > 20 ms after the reply event (see README).
    "tail_stalls": sum(1 for r, c in zip(reply_ms, complete_ms) if c - r > 20.0),
    "server_ms": summary(server_ms[1:]),
    "vm_hwm_kib_after_first_call": memory["VmHWM"],
    "vm_rss_kib_after_first_call": memory["VmRSS"],
    "vm_hwm_kib_at_end": memory_after["VmHWM"],
    "vm_rss_kib_at_end": memory_after["VmRSS"],
})
