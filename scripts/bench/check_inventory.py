#!/usr/bin/env python3
"""(c) `tagwarden check --inventory FILE --limit 0` as a whole process under `/usr/bin/time -v`:
maximum resident set size and wall time, RUNS times (median wall, largest max RSS).

Without /usr/bin/time, the same figures come from wait4(2)'s rusage (ru_maxrss is the same
kernel counter `time -v` prints).

Usage: check_inventory.py TAGWARDEN FILE RESULT.json [RUNS]
"""

import os
import re
import subprocess
import sys
import time

from benchlib import bench_env, log, median, spawn, write_result

BIN, FILE, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
RUNS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
CHECK = [BIN, "check", "--inventory", FILE, "--limit", "0"]
GNU_TIME = "/usr/bin/time"


def with_gnu_time():
    started = time.perf_counter()
    proc = subprocess.run([GNU_TIME, "-v", *CHECK], env=bench_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=600)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"check failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, rss


def with_wait4():
    started = time.perf_counter()
    proc = spawn(CHECK, env=bench_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"check failed ({proc.returncode})")
    return wall, usage.ru_maxrss  # KiB on Linux


measure = with_gnu_time if os.access(GNU_TIME, os.X_OK) else with_wait4
log(f"{' '.join(CHECK)} x {RUNS} ({'/usr/bin/time -v' if measure is with_gnu_time else 'wait4'})")
runs = [measure() for _ in range(RUNS)]
write_result(OUT, {
    "command": " ".join(["tagwarden", *CHECK[1:]]),
    "method": "/usr/bin/time -v" if measure is with_gnu_time else "wait4 rusage",
    "file_bytes": os.path.getsize(FILE),
    "wall_s_median": median([w for w, _ in runs]),
    "max_rss_kib": max(r for _, r in runs),
    "runs": [{"wall_s": w, "max_rss_kib": r} for w, r in runs],
})
