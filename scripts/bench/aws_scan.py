#!/usr/bin/env python3
"""(d) A full AWS scan against moto.

1. Starts moto_counting_server.py (moto from .venv, counting the requests it serves) and seeds
   COUNT tagged resources in us-east-1 with seed_estate.py.
2. Runs `tagwarden check --aws --regions us-east-1 --format json --limit 0` RUNS times: wall
   time of the whole process, `data_quality.api_calls` from its output, and the GetResources
   requests moto served during that run. The two counts must agree, on every run.
3. Over MCP: one `serve --stdio --aws --regions us-east-1 --no-prewarm` session, two
   `check_tag_compliance` calls: the first scans, the second must be a cache hit (no request
   reaches moto).

Usage: aws_scan.py TAGWARDEN RESULT.json [COUNT] [RUNS]
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from benchlib import (StdioSession, bench_env, log, median, spawn, stop, work_dir,
                      write_result)

BIN, OUT = sys.argv[1], sys.argv[2]
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
RUNS = int(sys.argv[4]) if len(sys.argv) > 4 else 5
WORK = work_dir()
HERE = os.path.dirname(os.path.abspath(__file__))
GET_RESOURCES = "ResourceGroupsTaggingAPI_20170126.GetResources"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, within=60):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto did not listen on port {port} within {within} s")


def get_resources_served():
    with urllib.request.urlopen(f"{ENDPOINT}/__bench/requests", timeout=10) as resp:
        return json.load(resp).get(GET_RESOURCES, 0)


port = free_port()
ENDPOINT = f"http://127.0.0.1:{port}"
moto_log = open(os.path.join(WORK, "moto.log"), "w")
moto = spawn([sys.executable, os.path.join(HERE, "moto_counting_server.py"), str(port)],
             env={**os.environ, "MOTO_REQUEST_LOG": os.path.join(WORK, "moto-requests.log")},
             stdout=moto_log, stderr=moto_log)
try:
    wait_for_port(port)
    log(f"moto on {ENDPOINT}; seeding {COUNT} resources in us-east-1")
    seeded = json.loads(subprocess.run(
        [sys.executable, os.path.join(HERE, "seed_estate.py"), ENDPOINT, str(COUNT)],
        check=True, capture_output=True, text=True, timeout=1800).stdout)
    log(f"seeded in {seeded['seed_seconds']} s: {seeded['by_type']}")

    env = bench_env({
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    })
    check = [BIN, "check", "--aws", "--regions", "us-east-1", "--format", "json", "--limit", "0"]
    runs = []
    for i in range(RUNS):
        before = get_resources_served()
        started = time.perf_counter()
        proc = subprocess.run(check, env=env, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - started
        seen = get_resources_served() - before
        if proc.returncode not in (0, 2):
            raise RuntimeError(f"check failed ({proc.returncode}): {proc.stderr[-2000:]}")
        out = json.loads(proc.stdout)
        dq = out["data_quality"]
        runs.append({"wall_s": wall, "api_calls": dq["api_calls"], "moto_get_resources": seen,
                     "resources": out["resources"], "retries": dq["retries"],
                     "status": dq["status"]})
        log(f"check run {i + 1}: {wall:.3f} s, {out['resources']} resources, "
            f"api_calls {dq['api_calls']}, moto saw {seen} GetResources")
        if dq["api_calls"] != seen:
            raise RuntimeError(f"api_calls {dq['api_calls']} != {seen} GetResources seen by moto")
        if out["resources"] != seeded["listed_by_tagging_api"] or dq["status"] != "complete":
            raise RuntimeError(f"incomplete scan: {out['resources']} resources, {dq}")

    log("MCP: serve --stdio --aws, two check_tag_compliance calls in one session")
    session = StdioSession([BIN, "serve", "--stdio", "--aws", "--regions", "us-east-1",
                            "--no-prewarm"], env)
    try:
        session.initialize()
        mcp = []
        for _ in range(2):
            before = get_resources_served()
            started = time.perf_counter()
            result = session.call("check_tag_compliance", {"limit": 0})
            ms = (time.perf_counter() - started) * 1000.0
            mcp.append({"ms": ms, "moto_get_resources": get_resources_served() - before,
                        "api_calls": result["data_quality"]["api_calls"],
                        "cache_hit": result["data_quality"]["cache"]["hit"],
                        "resources": result["resources"]})
    finally:
        session.close()
    log(f"MCP: first call {mcp[0]['ms']:.1f} ms, repeat {mcp[1]['ms']:.2f} ms "
        f"(cache hit {mcp[1]['cache_hit']}, {mcp[1]['moto_get_resources']} GetResources)")
    if not mcp[1]["cache_hit"] or mcp[1]["moto_get_resources"] != 0:
        raise RuntimeError(f"the repeat was not served from the cache: {mcp[1]}")
finally:
    stop(moto)

write_result(OUT, {
    "seeded": seeded,
    "command": " ".join(["tagwarden", *check[1:]]),
    "runs": runs,
    "wall_s_median": median([r["wall_s"] for r in runs]),
    "api_calls": sorted({r["api_calls"] for r in runs}),
    "moto_get_resources": sorted({r["moto_get_resources"] for r in runs}),
    "mcp_first_call": mcp[0],
    "mcp_repeat_call": mcp[1],
})
