#!/usr/bin/env python3
"""Run a moto server for one test process: `moto_server.py PORT`.

Counts the AWS API requests it serves, by operation (the `X-Amz-Target` header, or the path of a
REST-JSON request), so tests can check from the outside how many calls Tagwarden made:
`GET /_tagwarden/calls` returns `{"total": N, "by_operation": {...}, "by_access_key": {AKID:
{operation: N}}}` (tests that run side by side use different access keys to count their own).

Serves Resource Explorer, which moto lacks, over the same account (resource_explorer_stub.py):
requests signed for service `resource-explorer-2` go to the stub, configured by tests through
`POST /_tagwarden/resource-explorer`. Until then the account has no Resource Explorer index.

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

import resource_explorer_stub

port = int(sys.argv[1])
parent = os.getppid()
moto_app = DomainDispatcherApplication(create_backend_app)
calls = collections.Counter()
calls_by_key = collections.defaultdict(collections.Counter)
lock = threading.Lock()


def signed_for(environ):
    """(access key id, region, service) of the SigV4 credential scope, or empty strings."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    return tuple(scope[i] if len(scope) > i else "" for i in (0, 2, 3))


def json_answer(start_response, answer):
    body = json.dumps(answer).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def count(operation, access_key):
    with lock:
        calls[operation] += 1
        calls_by_key[access_key][operation] += 1


def counting_app(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/_tagwarden/calls":
        with lock:
            answer = {
                "total": sum(calls.values()),
                "by_operation": dict(calls),
                "by_access_key": {k: dict(v) for k, v in calls_by_key.items()},
            }
        return json_answer(start_response, answer)
    if path == "/_tagwarden/resource-explorer" and environ.get("REQUEST_METHOD") == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json_answer(
            start_response, resource_explorer_stub.configure(environ["wsgi.input"].read(length))
        )
    access_key, region, service = signed_for(environ)
    if service == "resource-explorer-2":
        operation = (path or "/").strip("/")
        count(operation, access_key)
        return resource_explorer_stub.wsgi(operation, access_key, region, environ, start_response)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        count(target.split(".")[-1], access_key)
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
