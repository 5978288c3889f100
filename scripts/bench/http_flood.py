#!/usr/bin/env python3
"""The HTTP transport under floods: idle connections and sessions (issue 12).

Starts `tagwarden serve --http 127.0.0.1:PORT --demo --no-prewarm` under `ulimit -n 8192`, with
K bearer tokens (K principals), and measures the server's RSS and /healthz latency (a new
connection from 127.0.0.2 per request; median and p99 of HEALTHZ requests):

1. at rest;
2. under IDLE idle connections (TCP connections that send nothing) from one address: the
   per-address cap keeps them from starving anyone;
3. under IDLE idle connections spread over 16 addresses (127.0.1.1-16): the server holds them up
   to its total cap; the header timeout is raised to 10 min for this run so that they stay;
4. after a session flood: SESSIONS `initialize` requests, round robin over the K tokens, each a
   new session; counted by answer (200, 429 per-principal cap, 503 total cap), with the RSS
   after, and the rate achieved.

Every address is on the loopback range. Prints a JSON summary on stdout (and writes it to
RESULT.json when given).

Usage: http_flood.py TAGWARDEN [RESULT.json] [--idle N] [--sessions N] [--tokens K]
       [--healthz N] [-- EXTRA SERVE ARGS...]
"""

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (bench_env, initialize_params, log, percentile, median,  # noqa: E402
                      proc_status, spawn, stop, wait_for_log, work_dir, write_result)

PROTOCOL = "2025-11-25"


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("result", nargs="?")
    p.add_argument("--idle", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=5000)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--healthz", type=int, default=200)
    p.add_argument("extra", nargs="*")
    return p.parse_args()


def raise_own_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def connect_from(source, port, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_response(s):
    """Status and body of one Content-Length response."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    return status, body


def healthz_latency(port, n):
    """Seconds per /healthz on a new connection from 127.0.0.2; failures counted apart."""
    times, failures = [], 0
    for _ in range(n):
        start = time.perf_counter()
        try:
            s = connect_from("127.0.0.2", port, timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status, _ = read_response(s)
            s.close()
            if status != 200:
                failures += 1
                continue
        except OSError:
            failures += 1
            continue
        times.append(time.perf_counter() - start)
    out = {"n": n, "failures": failures}
    if times:
        out.update({"median_ms": round(median(times) * 1000, 2),
                    "p99_ms": round(percentile(times, 99) * 1000, 2)})
    return out


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def idle_flood(port, sources, n):
    """Opens n connections round robin over `sources`, sending nothing."""
    held, failed = [], 0
    for i in range(n):
        try:
            held.append(connect_from(sources[i % len(sources)], port))
        except OSError:
            failed += 1
    return held, failed


def still_open(conns):
    """How many of our connections the server has not closed."""
    alive = 0
    for s in conns:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                continue
            alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def close_all(conns):
    for s in conns:
        try:
            s.close()
        except OSError:
            pass


def snapshot(label, proc, port, n):
    mem = proc_status(proc.pid)
    out = {"label": label, "rss_kib": mem.get("VmRSS"), "peak_rss_kib": mem.get("VmHWM"),
           "server_fds": open_fds(proc.pid), "healthz": healthz_latency(port, n)}
    log(f"{label}: RSS {out['rss_kib']} KiB, fds {out['server_fds']}, healthz {out['healthz']}")
    return out


def start_server(binary, tokens, extra, header_timeout):
    port_probe = socket.socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    logfile = os.path.join(work_dir(), f"http_flood_{header_timeout}.log")
    env = bench_env({
        "TAGWARDEN_LOG": "info",
        "TAGWARDEN_API_TOKENS": ",".join(tokens),
        "TAGWARDEN_HTTP_HEADER_TIMEOUT": header_timeout,
        # The failed-login and request-rate limits are not what is measured here.
        "TAGWARDEN_HTTP_RATE_LIMIT": "0",
    })
    args = ["sh", "-c", 'ulimit -n 8192 && exec "$0" "$@"', binary, "serve", "--http",
            f"127.0.0.1:{port}", "--demo", "--no-prewarm", *extra]
    out = open(logfile, "w")
    proc = spawn(args, env=env, stdout=subprocess.DEVNULL, stderr=out)
    wait_for_log(logfile, re.compile(r"listening on http://"), proc)
    return proc, port


def session_flood(port, tokens, n):
    """n initialize requests over one keep-alive connection per token; counts by status."""
    import http.client
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in tokens]
    counts = {}
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                       "params": initialize_params()})
    start = time.perf_counter()
    for i in range(n):
        k = i % len(tokens)
        conn = conns[k]
        conn.request("POST", "/mcp", body=body, headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": PROTOCOL,
            "Authorization": f"Bearer {tokens[k]}",
        })
        resp = conn.getresponse()
        resp.read()
        counts[resp.status] = counts.get(resp.status, 0) + 1
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return {"attempts": n, "by_status": {str(k): v for k, v in sorted(counts.items())},
            "seconds": round(elapsed, 2), "per_second": round(n / elapsed, 1)}


def main():
    a = parse()
    raise_own_fd_limit(3 * a.idle + 1024)
    tokens = [f"bench-token-{i:02d}" for i in range(a.tokens)]
    result = {"binary": a.binary, "idle_connections": a.idle}

    # Steps 1-2 with the default header timeout (idle connections from one address).
    proc, port = start_server(a.binary, tokens, a.extra, "10s")
    try:
        result["at_rest"] = snapshot("at rest", proc, port, a.healthz)
        held, failed = idle_flood(port, ["127.0.0.1"], a.idle)
        time.sleep(0.5)
        step = snapshot(f"{a.idle} idle connections from one address", proc, port, a.healthz)
        step.update({"connected": len(held), "connect_failures": failed,
                     "kept_open_by_server": still_open(held)})
        result["idle_one_address"] = step
        close_all(held)
    finally:
        stop(proc)

    # Step 3-4: idle connections spread over 16 addresses, kept (header timeout 10 min).
    proc, port = start_server(a.binary, tokens, a.extra, "10m")
    try:
        sources = [f"127.0.1.{i}" for i in range(1, 17)]
        held, failed = idle_flood(port, sources, a.idle)
        time.sleep(0.5)
        step = snapshot(f"{a.idle} idle connections from 16 addresses", proc, port, a.healthz)
        step.update({"connected": len(held), "connect_failures": failed,
                     "kept_open_by_server": still_open(held)})
        result["idle_16_addresses"] = step
        close_all(held)
        time.sleep(0.5)

        before = proc_status(proc.pid).get("VmRSS")
        flood = session_flood(port, tokens, a.sessions)
        log(f"session flood: {flood}")
        step = snapshot(f"after {a.sessions} initialize requests", proc, port, a.healthz)
        step.update(flood)
        step["rss_growth_kib"] = (step["rss_kib"] or 0) - (before or 0)
        result["session_flood"] = step
    finally:
        stop(proc)

    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if a.result:
        write_result(a.result, result)


if __name__ == "__main__":
    main()
