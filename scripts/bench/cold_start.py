#!/usr/bin/env python3
"""(a) Cold start: `tagwarden serve --stdio --demo --no-prewarm`, from launch until its
`initialize` response has been read, RUNS times (after one untimed run that warms the page cache).

Also, for context: the same measurement with `cat` standing in for the server (the harness's own
cost: fork, exec, one pipe round trip), and `tagwarden check --demo` as a whole process.

Usage: cold_start.py TAGWARDEN RESULT.json [RUNS]
"""

import json
import subprocess
import sys
import time

from benchlib import bench_env, initialize_params, log, spawn, stop, summary, write_result

BIN, OUT = sys.argv[1], sys.argv[2]
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
INIT = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": initialize_params()}) + "\n").encode()


def time_to_first_line(args, check_reply):
    """Milliseconds from just before the spawn until the first stdout line has been read."""
    env = bench_env()
    started = time.perf_counter()
    proc = spawn(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.DEVNULL)
    proc.stdin.write(INIT)
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = (time.perf_counter() - started) * 1000.0
    try:
        proc.stdin.close()  # end of input: the server shuts down
        proc.wait(10)
    finally:
        stop(proc)
    if check_reply:
        reply = json.loads(line)
        if reply.get("id") != 1 or "serverInfo" not in reply.get("result", {}):
            raise RuntimeError(f"unexpected initialize reply: {line[:300]!r}")
    return elapsed


def time_whole_process(args):
    started = time.perf_counter()
    subprocess.run(args, env=bench_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=120)
    return (time.perf_counter() - started) * 1000.0


server = [BIN, "serve", "--stdio", "--demo", "--no-prewarm"]
log(f"cold start: {' '.join(server)} x {RUNS}")
time_to_first_line(server, True)  # warm-up, not counted
serve_ms = [time_to_first_line(server, True) for _ in range(RUNS)]

time_to_first_line(["cat"], False)
floor_ms = [time_to_first_line(["cat"], False) for _ in range(RUNS)]

check = [BIN, "check", "--demo"]
log(f"whole process: {' '.join(check)} x {RUNS}")
time_whole_process(check)
check_ms = [time_whole_process(check) for _ in range(RUNS)]

write_result(OUT, {
    "serve_stdio_initialize_ms": summary(serve_ms),
    "harness_floor_cat_ms": summary(floor_ms),
    "check_demo_ms": summary(check_ms),
    "samples": {"serve": serve_ms, "cat": floor_ms, "check_demo": check_ms},
})
