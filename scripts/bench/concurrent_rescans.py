#!/usr/bin/env python3
"""Peak memory of `serve --http` during forced rescans: one, then four at once.

Starts `tagwarden serve --http 127.0.0.1:0 SOURCE...`, makes one call (the start-up scan), then
one `check_tag_compliance` with `force_refresh: true` and reads the peak RSS (VmHWM) after it,
then four such calls at once on four connections and reads the peak again. Issue 17 asks that
four concurrent forced rescans stay under twice the peak of one.

Usage: concurrent_rescans.py TAGWARDEN RESULT.json -- SOURCE-ARGS...
"""

import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (StatelessHttpClient, bench_env, log, proc_status, spawn, stop,  # noqa: E402
                      wait_for_log, work_dir, write_result)

BIN, RESULT = sys.argv[1], sys.argv[2]
SOURCE = sys.argv[sys.argv.index("--") + 1:]
LISTENING = re.compile(r"listening on http://([0-9.]+):(\d+)/mcp")
FORCED = {"force_refresh": True, "limit": 5}

log_path = os.path.join(work_dir(), "serve-rescans.log")
with open(log_path, "wb") as log_file:
    server = spawn([BIN, "serve", "--http", "127.0.0.1:0", "--no-prewarm", *SOURCE],
                   env=bench_env({"TAGWARDEN_LOG": "info"}), stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=log_file)
try:
    listening = wait_for_log(log_path, LISTENING, server)[0]
    host, port = listening.group(1), int(listening.group(2))
    first = StatelessHttpClient(host, port).call("check_tag_compliance", {"limit": 5})
    resources = first["structuredContent"]["resources"]
    after_scan = proc_status(server.pid)
    t = time.perf_counter()
    StatelessHttpClient(host, port).call("check_tag_compliance", FORCED)
    one_s = time.perf_counter() - t
    after_one = proc_status(server.pid)
    errors = []

    def forced():
        try:
            StatelessHttpClient(host, port).call("check_tag_compliance", FORCED)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=forced) for _ in range(4)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    four_s = time.perf_counter() - t
    after_four = proc_status(server.pid)
finally:
    stop(server)

result = {
    "resources": resources,
    "after_first_scan_kib": after_scan,
    "peak_after_one_forced_kib": after_one["VmHWM"],
    "peak_after_four_concurrent_forced_kib": after_four["VmHWM"],
    "one_forced_s": round(one_s, 2),
    "four_concurrent_forced_s": round(four_s, 2),
    "errors": errors,
}
log(f"{resources} resources: peak {after_one['VmHWM'] // 1024} MiB after one forced rescan, "
    f"{after_four['VmHWM'] // 1024} MiB after four at once ({one_s:.1f} s / {four_s:.1f} s)")
write_result(RESULT, result)
