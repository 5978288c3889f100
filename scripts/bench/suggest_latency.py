#!/usr/bin/env python3
"""Server-side time of `suggest_tags` on a large demo estate: `suggest_latency.py [SIZE]`.

Starts `target/release/tagwarden serve --stdio --demo --demo-size SIZE` (default 100,000) with a
throw-away data directory, asks for suggestions for EC2 instances lacking `Owner` in one region
after another (about 800 resources each on the 100k estate), and prints each call's server-side
duration as the audit log recorded it. The first call builds the suggestion statistics; the
next ones reuse them.
"""

import json
import os
import subprocess
import sys
import tempfile

size = sys.argv[1] if len(sys.argv) > 1 else "100000"
binary = os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "tagwarden")
data = tempfile.mkdtemp(prefix="tagwarden-suggest-")
server = subprocess.Popen(
    [binary, "serve", "--stdio", "--demo", "--demo-size", size, "--no-prewarm",
     "--budget-burst", "0", "--loop-max-repeats", "0"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    env={**os.environ, "TAGWARDEN_DATA_DIR": data}, text=True,
)


def request(i, method, params):
    server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n")
    server.stdin.flush()
    while True:
        message = json.loads(server.stdout.readline())
        if message.get("id") == i:
            return message


def call(i, tool, arguments):
    result = request(i, "tools/call", {"name": tool, "arguments": arguments})["result"]
    if result.get("isError"):
        sys.exit(f"{tool} failed: {result['content'][0]['text']}")
    return result["structuredContent"]


request(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                          "clientInfo": {"name": "suggest-latency", "version": "1"}})
server.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
call(1, "check_tag_compliance", {"limit": 0})
regions = ["eu-west-1", "us-west-2", "eu-west-1", "us-west-2"]
counts = []
for n, region in enumerate(regions):
    answer = call(2 + n, "suggest_tags", {"filter": {"resource_types": ["ec2:instance"], "regions": [region],
                                                     "tags_missing": ["Owner"]}, "keys": ["Owner"]})
    counts.append(len(answer["resources"]))
trail = call(10, "get_audit_trail", {"tool": "suggest_tags", "limit": len(regions)})
durations = [row["duration_us"] / 1000 for row in reversed(trail["rows"])]
print(f"estate {size} resources")
print("call  region           resources  server ms")
for n, (region, count, ms) in enumerate(zip(regions, counts, durations)):
    print(f"{n + 1:>4}  {region:<15} {count:>10} {ms:>10.1f}")
server.stdin.close()
server.wait(timeout=30)
