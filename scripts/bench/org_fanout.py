#!/usr/bin/env python3
"""Multi-account fan-out on moto (issue 14): `tagwarden check --aws-org` over an organisation of
ACCOUNTS accounts × REGIONS regions × PER_REGION tagged volumes, at several concurrencies.

1. Starts org_moto_server.py (the tests' counting moto server, estate written straight into its
   backends) and reports the seed time.
2. Measures moto's page latency: GetResources pages of 100 read one after another over plain
   HTTP (the median), and how many pages per second moto serves at each concurrency (threads
   each paging through a region), since one Python process serves every request.
3. Runs `tagwarden check --aws-org --aws-concurrency C` (RUNS times per C): wall time of the
   whole process, `data_quality.api_calls`, and the requests moto served by operation, against
   the calls needed = ⌈accounts ÷ 20⌉ ListAccounts + 1 AssumeRole per account + pages per
   account-region.
4. Target: calls = needed, and wall time within 1.5× of needed ÷ C × page latency. Because moto
   cannot serve faster than its measured throughput, the table also gives that floor
   (needed ÷ pages/s at C) and the ratio to the larger of the two.

Usage: org_fanout.py TAGWARDEN RESULT.json [ACCOUNTS=20] [REGIONS=4] [PER_REGION=500]
                     [CONCURRENCIES=1,8,32] [RUNS=3]
Prints a Markdown table on stdout; progress on stderr.
"""

import http.client
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from benchlib import bench_env, line_reader, log, median, spawn, stop, write_result

BIN, OUT = sys.argv[1], sys.argv[2]
ACCOUNTS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
N_REGIONS = int(sys.argv[4]) if len(sys.argv) > 4 else 4
PER_REGION = int(sys.argv[5]) if len(sys.argv) > 5 else 500
CONCURRENCIES = [int(c) for c in (sys.argv[6] if len(sys.argv) > 6 else "1,8,32").split(",")]
RUNS = int(sys.argv[7]) if len(sys.argv) > 7 else 3
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-1", "eu-central-1",
           "us-east-2"][:N_REGIONS]
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, within=600):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto did not listen on port {port} within {within} s")


def served():
    with urllib.request.urlopen(f"{ENDPOINT}/_tagwarden/calls", timeout=30) as resp:
        return json.load(resp)["by_operation"]


def delta(before, after):
    return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}


def get_resources(conn, region, token):
    """One GetResources page as Tagwarden asks for it (100 resources), over a kept-alive
    connection. moto does not check signatures: the credential scope only routes the request
    (service, region, and the access key's account), so no SDK overhead is measured."""
    body = json.dumps({"ResourcesPerPage": 100, "TagsPerPage": 500, "PaginationToken": token})
    conn.request("POST", "/", body=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "ResourceGroupsTaggingAPI_20170126.GetResources",
        "X-Amz-Date": "20260101T000000Z",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/tagging/"
                         "aws4_request, SignedHeaders=host;x-amz-date, Signature=0",
    })
    resp = conn.getresponse()
    page = json.loads(resp.read())
    if resp.status != 200:
        raise RuntimeError(f"GetResources answered {resp.status}: {page}")
    return page.get("PaginationToken") or ""


def page_through(region):
    """Times of each GetResources page of one region of the management account."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    times, token = [], ""
    while True:
        t = time.perf_counter()
        token = get_resources(conn, region, token)
        times.append(time.perf_counter() - t)
        if not token:
            conn.close()
            return times


def throughput(threads, seconds=6.0):
    """Pages per second moto serves to `threads` clients paging at once."""
    stop_at = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(i):
        while time.perf_counter() < stop_at:
            counts[i] += len(page_through(REGIONS[i % len(REGIONS)]))

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


PORT = free_port()
ENDPOINT = f"http://127.0.0.1:{PORT}"
log(f"seeding {ACCOUNTS} accounts × {len(REGIONS)} regions × {PER_REGION} volumes")
moto = spawn([sys.executable, os.path.join(HERE, "org_moto_server.py"), str(PORT), str(ACCOUNTS),
              ",".join(REGIONS), str(PER_REGION)],
             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
try:
    lines = line_reader(moto.stdout)
    seeded = json.loads(lines.get(timeout=1800))
    wait_for_port(PORT)
    log(f"seeded in {seeded['seed_seconds']} s; moto on {ENDPOINT}")

    pages_per_region = math.ceil(PER_REGION / 100)
    needed = {
        "ListAccounts": math.ceil(ACCOUNTS / 20),
        "AssumeRole": ACCOUNTS,
        "GetResources": ACCOUNTS * len(REGIONS) * pages_per_region,
    }
    needed_total = sum(needed.values())

    # Page latency, one request at a time (after one warm-up pass over the region).
    page_through(REGIONS[0])
    times = []
    for region in REGIONS:
        times += page_through(region)
    latency = median(times)
    log(f"page latency {latency * 1000:.1f} ms (median of {len(times)} pages)")
    capacity = {c: throughput(c) for c in CONCURRENCIES}
    log("moto serves " + ", ".join(f"{v:.0f} pages/s at {c}" for c, v in capacity.items()))

    env = bench_env({
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    })
    rows = []
    for c in CONCURRENCIES:
        walls, calls_ok = [], True
        for run in range(RUNS):
            before = served()
            t = time.perf_counter()
            out = subprocess.run(
                [BIN, "check", "--aws-org", "--regions", ",".join(REGIONS), "--aws-concurrency",
                 str(c), "--format", "json", "--limit", "0"],
                env=env, cwd=REPO, capture_output=True, text=True, timeout=3600)
            wall = time.perf_counter() - t
            if out.returncode not in (0, 2):
                raise RuntimeError(f"check failed ({out.returncode}): {out.stderr[-2000:]}")
            answer = json.loads(out.stdout)
            got = delta(before, served())
            dq = answer["data_quality"]
            ok = got == needed and dq["api_calls"] == needed_total
            calls_ok &= ok
            assert answer["resources"] == ACCOUNTS * len(REGIONS) * PER_REGION, answer["resources"]
            log(f"c={c} run {run + 1}: {wall:.2f} s, calls {got} (Tagwarden says "
                f"{dq['api_calls']}){'' if ok else ' != needed ' + json.dumps(needed)}")
            walls.append(wall)
        wall = median(walls)
        target = needed_total / c * latency
        floor = needed_total / capacity[c]
        rows.append({
            "concurrency": c, "wall_s": round(wall, 2), "walls_s": [round(w, 2) for w in walls],
            "calls": got, "calls_total": dq["api_calls"], "calls_needed": needed_total,
            "calls_equal_needed": calls_ok, "target_s": round(target, 2),
            "moto_floor_s": round(floor, 2), "ratio_to_target": round(wall / target, 2),
            "ratio_to_bound": round(wall / max(target, floor), 2),
            "moto_pages_per_s": round(capacity[c], 1),
        })
    result = {
        "accounts": ACCOUNTS, "regions": REGIONS, "per_region": PER_REGION,
        "resources": ACCOUNTS * len(REGIONS) * PER_REGION,
        "seed_seconds": seeded["seed_seconds"], "page_latency_ms": round(latency * 1000, 2),
        "calls_needed": needed, "runs": RUNS, "rows": rows,
    }
    write_result(OUT, result)
    print(f"Fan-out: {ACCOUNTS} accounts × {len(REGIONS)} regions × {PER_REGION} volumes = "
          f"{result['resources']:,} resources; seeded in {seeded['seed_seconds']} s; page latency "
          f"{latency * 1000:.1f} ms; calls needed {needed_total} ({json.dumps(needed)}); median "
          f"of {RUNS} runs\n")
    print("| concurrency | wall s | calls = needed | target s (needed ÷ C × latency) | "
          "moto floor s (needed ÷ pages/s) | wall ÷ target | wall ÷ max(target, floor) |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['wall_s']} | "
              f"{'yes' if r['calls_equal_needed'] else 'NO'} ({r['calls_total']}) | "
              f"{r['target_s']} | {r['moto_floor_s']} ({r['moto_pages_per_s']}/s) | "
              f"{r['ratio_to_target']} | {r['ratio_to_bound']} |")
finally:
    stop(moto)
