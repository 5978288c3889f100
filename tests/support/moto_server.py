#!/usr/bin/env python3
"""Run a moto server for one test process: `moto_server.py PORT`.

Counts the AWS API requests it serves, by operation (the `X-Amz-Target` header), so tests can
check from the outside how many calls Tagwarden made: `GET /_tagwarden/calls` returns
`{"total": N, "by_operation": {...}}`.

Behaves like AWS where moto is kinder: real `GetResources` never lists a resource that was never
tagged (or whose tags were all removed); moto lists every resource it knows. This server drops
entries with no tags from every `GetResources` page, so tests see what a real account shows.

Exits by itself when the process that started it goes away, so a test run never leaves a moto
server behind, whatever way the tests end.
"""

import collections
import json
import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

port = int(sys.argv[1])
parent = os.getppid()
moto_app = DomainDispatcherApplication(create_backend_app)
calls = collections.Counter()
lock = threading.Lock()


def counting_app(environ, start_response):
    if environ.get("PATH_INFO") == "/_tagwarden/calls":
        with lock:
            body = json.dumps({"total": sum(calls.values()), "by_operation": dict(calls)}).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        with lock:
            calls[target.split(".")[-1]] += 1
    if target and target.endswith(".GetResources"):
        return only_tagged(environ, start_response)
    return moto_app(environ, start_response)


def only_tagged(environ, start_response):
    """moto's GetResources answer without the entries that have no tags, as AWS answers."""
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(moto_app(environ, capture))
    if captured.get("status", "").startswith("200"):
        page = json.loads(body)
        page["ResourceTagMappingList"] = [
            m for m in page.get("ResourceTagMappingList", []) if m.get("Tags")
        ]
        body = json.dumps(page).encode()
    headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(captured.get("status", "500 Internal Server Error"), headers)
    return [body]


server = make_server("127.0.0.1", port, counting_app, True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"moto listening on 127.0.0.1:{port}", flush=True)
try:
    while os.getppid() == parent:
        time.sleep(0.5)
finally:
    server.shutdown()
