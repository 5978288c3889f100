"""Helpers shared by the benchmark scripts: statistics, child processes that are always cleaned
up, MCP over stdio and over HTTP, and reading a process's memory figures.

Standard library only, so every script runs on the project's .venv (or any Python 3.9+).
"""

import atexit
import ctypes
import http.client
import json
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# --------------------------------------------------------------------------------------------
# Statistics


def percentile(values, pct):
    """Nearest-rank percentile: the smallest value with at least `pct` % of values <= it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def summary(values):
    return {
        "n": len(values),
        "median": median(values),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }


def log(msg):
    """Progress goes to stderr; stdout of run.sh is the table alone."""
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write_result(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)


# --------------------------------------------------------------------------------------------
# Child processes: every child is killed when this script exits, however it exits.

_children = []


_libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


def _die_with_parent():
    """In the child, before exec: get SIGTERM when the benchmark script dies, however it dies."""
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args, **kwargs):
    """Popen that is remembered and killed at exit, and dies with us if we are killed -9."""
    if _libc is not None:
        kwargs.setdefault("preexec_fn", _die_with_parent)
    proc = subprocess.Popen(args, **kwargs)
    _children.append(proc)
    return proc


def stop(proc, timeout=10):
    """SIGTERM, then SIGKILL; always reaps."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _children:
        _children.remove(proc)


def _cleanup():
    for proc in list(_children):
        stop(proc, timeout=5)


atexit.register(_cleanup)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # runs finally blocks and atexit


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def line_reader(stream):
    """Lines of a child's stream, read on a thread so the child never blocks on a full pipe."""
    lines = queue.Queue()

    def pump():
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


# --------------------------------------------------------------------------------------------
# The environment of the processes measured

# The guard rails that refuse repeated traffic are switched off: a benchmark makes hundreds of
# identical calls on purpose. (Unknown variables are ignored by builds without these guards.)
GUARDS_OFF = {
    "TAGWARDEN_BUDGET_PER_HOUR": "0",
    "TAGWARDEN_BUDGET_BURST": "0",
    "TAGWARDEN_BUDGET_GLOBAL_PER_HOUR": "0",
    "TAGWARDEN_LOOP_MAX_REPEATS": "0",
    "TAGWARDEN_HTTP_RATE_LIMIT": "0",
}


def work_dir():
    """The run's scratch directory: $BENCH_WORK (run.sh sets it), else a temporary directory
    removed at exit. Server logs and the servers' databases go here, never into the repository
    (the server's default data directory is ./history when it exists)."""
    if not os.environ.get("BENCH_WORK"):
        path = tempfile.mkdtemp(prefix="tagwarden-bench.")
        atexit.register(shutil.rmtree, path, True)
        os.environ["BENCH_WORK"] = path
    return os.environ["BENCH_WORK"]


def wait_for_log(path, pattern, proc, timeout=60, count=1):
    """Waits until the log file at `path` holds `count` lines matching `pattern` (a compiled
    regex) and returns their matches. A server logs to a file rather than to a pipe to us: if
    we die, its log writes keep working, and so does its SIGTERM shutdown."""
    deadline = time.monotonic() + timeout
    while True:
        with open(path, errors="replace") as f:
            found = [m for m in map(pattern.search, f) if m]
        if len(found) >= count:
            return found
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(found)} of {count} log lines in {timeout} s; see {path}")
        time.sleep(0.01)


def bench_env(extra=None):
    """A clean environment for tagwarden: no AWS profile, credentials or config leak in."""
    data = os.path.join(work_dir(), "data")
    os.makedirs(data, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "TAGWARDEN_DATA_DIR": data,
        **GUARDS_OFF,
    }
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------------------------
# Memory


def proc_status(pid):
    """VmHWM (peak RSS) and VmRSS of a live process, in KiB, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(rest.split()[0])
    return out


# --------------------------------------------------------------------------------------------
# MCP over stdio (newline-delimited JSON-RPC)

PROTOCOL_SESSION = "2025-11-25"
PROTOCOL_STATELESS = "2026-07-28"


def initialize_params():
    return {
        "protocolVersion": PROTOCOL_SESSION,
        "capabilities": {},
        "clientInfo": {"name": "tagwarden-bench", "version": "1"},
    }


class StdioSession:
    """`tagwarden serve --stdio ...` with a reader thread on stdout and stderr."""

    def __init__(self, args, env):
        self.proc = spawn(
            args,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = line_reader(self.proc.stdout)
        self.stderr = line_reader(self.proc.stderr)
        self.next_id = 1

    def send(self, msg):
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method, params, timeout=600):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.stdout.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise RuntimeError(f"no answer to {method} within {timeout} s") from None
            if line is None:
                raise RuntimeError(f"server exited before answering {method}: {self.stderr_text()}")
            msg = json.loads(line)
            if msg.get("id") == rid:
                return msg

    def initialize(self):
        reply = self.request("initialize", initialize_params())
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def call(self, tool, arguments, timeout=600):
        reply = self.request("tools/call", {"name": tool, "arguments": arguments}, timeout)
        result = reply.get("result")
        if result is None or result.get("isError"):
            raise RuntimeError(f"{tool} failed: {reply}")
        return result["structuredContent"]

    def stderr_text(self):
        lines = []
        while True:
            try:
                line = self.stderr.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                lines.append(line)
        return "\n".join(lines)

    def close(self):
        try:
            self.proc.stdin.close()  # end of input: the server shuts down
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop(self.proc)


# --------------------------------------------------------------------------------------------
# MCP over Streamable HTTP, 2026-07-28 stateless requests (no session, no initialize)


def sse_messages(content_type, body):
    """The JSON-RPC messages in a response body, JSON or Server-Sent Events."""
    if content_type.startswith("text/event-stream"):
        out = []
        for line in body.splitlines():
            if line.startswith("data:") and line[5:].strip():
                out.append(json.loads(line[5:].strip()))
        return out
    return [json.loads(body)] if body.strip() else []


class NoDelayConnection(http.client.HTTPConnection):
    """http.client writes the headers and the body of a request separately; without TCP_NODELAY,
    Nagle's algorithm holds the body back until the server ACKs the headers, which a delayed ACK
    postpones by up to 40 ms. Clients such as reqwest and Node set TCP_NODELAY; so do we."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StatelessHttpClient:
    """One keep-alive HTTP/1.1 connection; every tools/call carries the 2026-07-28 headers and
    `_meta` (the form tests/it/mcp_http.rs `stateless_2026_07_28_requests_are_served` sends)."""

    def __init__(self, host, port):
        self.conn = NoDelayConnection(host, port, timeout=600)
        self.next_id = 1
        self.local_ports = set()  # one entry per TCP connection used
        self.last_body_bytes = 0
        self.reply_at = 0.0  # perf_counter() when the reply's SSE event had been read

    def call(self, tool, arguments):
        rid = self.next_id
        self.next_id += 1
        body = json.dumps({
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {
                "name": tool,
                "arguments": arguments,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": PROTOCOL_STATELESS,
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        })
        self.conn.request("POST", "/mcp", body=body, headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": PROTOCOL_STATELESS,
            "Mcp-Method": "tools/call",
            "Mcp-Name": tool,
        })
        self.local_ports.add(self.conn.sock.getsockname()[1])
        resp = self.conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:500]!r}")
        content_type = resp.getheader("content-type", "")
        raw = b""
        if content_type.startswith("text/event-stream"):
            # Read event by event: the reply is usable once the event carrying it is complete.
            event = b""
            while True:
                line = resp.readline()
                raw += line
                if not line:
                    break
                if line.strip():
                    event += line
                    continue
                if any(m.get("id") == rid for m in sse_messages(content_type, event.decode())):
                    break
                event = b""
        self.reply_at = time.perf_counter()
        raw += resp.read()  # the rest, up to the end of the chunked body
        self.last_body_bytes = len(raw)
        msgs = sse_messages(content_type, raw.decode())
        reply = next((m for m in msgs if m.get("id") == rid), None)
        if reply is None or "result" not in reply or reply["result"].get("isError"):
            raise RuntimeError(f"bad reply to {tool}: {raw[:500]!r}")
        return reply["result"]

    def close(self):
        self.conn.close()
