#!/usr/bin/env python3
"""FOCUS ingest: `tagwarden cost inspect FILE --format json` over a generated FOCUS CSV of ROWS
rows and of ROWS/4 rows, as whole processes: wall time, rows/s and peak RSS.

The reader streams, so peak RSS should depend on the distinct resources (the same 20,000 in
both files), not on the file size: the two RSS figures should be close while the wall times
differ about fourfold. Peak RSS comes from `/usr/bin/time -v` when present, else from wait4(2)'s
rusage of the child (the same kernel counter).

Files are written streamed to a temporary directory (removed at exit; --keep keeps it).

Usage: focus_ingest.py [--rows N] [--resources N] [--bin PATH] [--runs N] [--out RESULT.json]
                       [--keep]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import bench_env, log, median, spawn, write_result

GNU_TIME = "/usr/bin/time"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

HEADER = ("BillingAccountId,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,"
          "ProviderName,SubAccountId,RegionId,ServiceName,ResourceId,ResourceName,ResourceType,"
          "BilledCost,EffectiveCost,ListCost,PricingQuantity,Tags\n")
SERVICES = [  # (ServiceName, ARN service, resource prefix)
    ("Amazon Elastic Compute Cloud", "ec2", "instance/i-"),
    ("Amazon Simple Storage Service", "s3", ""),
    ("Amazon Relational Database Service", "rds", "db:orders-"),
    ("AWS Lambda", "lambda", "function:fn-"),
    ("Amazon DynamoDB", "dynamodb", "table/t-"),
    ("Amazon CloudWatch", "logs", "log-group:/app/"),
]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
TEAMS = ["payments", "search", "data", "platform", "web"]
ENVS = ["prod", "staging", "dev", "Production"]


def resource_parts(r):
    """The fixed parts of resource r's rows (id, service, account, region, tags cell)."""
    service, svc, kind = SERVICES[r % len(SERVICES)]
    account = 100_000_000_000 + r % 12
    region = REGIONS[r % len(REGIONS)]
    rid = (f"arn:aws:s3:::bucket-{r}" if svc == "s3"
           else f"arn:aws:{svc}:{region}:{account}:{kind}{r:08x}")
    tags = "" if r % 7 == 0 else (
        '"{""user:team"":""%s"",""user:Environment"":""%s"",""user:CostCenter"":""CC-%d""}"'
        % (TEAMS[r % len(TEAMS)], ENVS[r % len(ENVS)], 1000 + r % 50))
    return f"{account},{region},{service},{rid},,Resource,", tags


def generate(path, rows, resources):
    """Writes a FOCUS export as AWS lays it out (a day's rows together, October 2026), in
    chunks, never holding the file in memory. Amounts are deterministic."""
    parts = [resource_parts(r) for r in range(resources)]
    state = 42
    chunk = []
    with open(path, "w", newline="") as f:
        f.write(HEADER)
        for row in range(rows):
            state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
            r = (state >> 33) % resources
            day = 1 + row * 31 // rows
            cents = (state >> 40) % 100_000
            middle, tags = parts[r]
            chunk.append(
                f"999999999999,USD,Usage,2026-10-{day:02d}T00:00:00Z,2026-10-{day:02d}T23:59:59Z,"
                f"AWS,{middle}{cents // 10_000}.{cents % 10_000:04d},"
                f"{cents * 9 // 100_000}.{cents * 9 // 10 % 10_000:04d},"
                f"{cents // 10_000}.{cents % 10_000:04d},1,{tags}\n")
            if len(chunk) >= 10_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


def measure(binary, path):
    """(wall seconds, peak RSS KiB, the inspect JSON) of one `cost inspect` run."""
    cmd = [binary, "cost", "inspect", path, "--format", "json"]
    if os.access(GNU_TIME, os.X_OK):
        started = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-v", *cmd], env=bench_env(), capture_output=True,
                              text=True, timeout=1800)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"cost inspect failed ({proc.returncode}): {proc.stderr[-2000:]}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
        return wall, rss, proc.stdout
    out_path = path + ".out"
    with open(out_path, "w") as out:
        started = time.perf_counter()
        proc = spawn(cmd, env=bench_env(), stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"cost inspect failed ({proc.returncode})")
    with open(out_path) as f:
        return wall, usage.ru_maxrss, f.read()  # ru_maxrss is KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the large file")
    ap.add_argument("--resources", type=int, default=20_000, help="distinct resources")
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "tagwarden"),
                    help="the tagwarden binary (default: target/release/tagwarden)")
    ap.add_argument("--runs", type=int, default=3, help="runs per file (median wall, max RSS)")
    ap.add_argument("--out", help="also write the results as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()

    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin} is not an executable; build it with `cargo build --release`")
    work = tempfile.mkdtemp(prefix="tagwarden-focus.")
    try:
        results = []
        for rows in (args.rows // 4, args.rows):
            path = os.path.join(work, f"focus-{rows}.csv")
            log(f"writing {rows:,} rows to {path}")
            started = time.perf_counter()
            generate(path, rows, args.resources)
            log(f"  {os.path.getsize(path) / 1e6:,.0f} MB in {time.perf_counter() - started:.1f} s;"
                f" timing `cost inspect` x {args.runs}")
            measure(args.bin, path)  # warm the page cache, not counted
            runs = [measure(args.bin, path) for _ in range(args.runs)]
            report = json.loads(runs[-1][2])
            if report["rows_read"] != rows or report["rows_skipped"] != 0:
                raise RuntimeError(f"unexpected report: {report}")
            wall = median([w for w, _, _ in runs])
            results.append({
                "rows": rows,
                "file_bytes": os.path.getsize(path),
                "resources": report["resources"],
                "lines": report["lines"],
                "wall_s_median": wall,
                "rows_per_s": rows / wall,
                "max_rss_kib": max(r for _, r, _ in runs),
                "runs": [{"wall_s": w, "max_rss_kib": r} for w, r, _ in runs],
            })
            os.remove(path)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    method = "/usr/bin/time -v" if os.access(GNU_TIME, os.X_OK) else "wait4 rusage"
    print(f"FOCUS ingest: `tagwarden cost inspect FILE --format json`, whole process "
          f"(median of {args.runs}; peak RSS by {method})")
    print()
    print("| rows | file MB | resources | cost lines | wall s | rows/s | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['file_bytes'] / 1e6:,.0f} | {r['resources']:,} "
              f"| {r['lines']:,} | {r['wall_s_median']:.2f} | {r['rows_per_s']:,.0f} "
              f"| {r['max_rss_kib'] / 1024:,.1f} |")
    if args.out:
        write_result(args.out, {"method": method, "results": results})


if __name__ == "__main__":
    main()
