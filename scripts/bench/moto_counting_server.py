#!/usr/bin/env python3
"""A moto server that counts the AWS requests it serves: `moto_counting_server.py PORT`.

The same server tests/support/moto_server.py runs (moto's werkzeug app on a threaded server),
wrapped in a WSGI middleware that counts every request by its operation (`X-Amz-Target` for
JSON protocols such as the Resource Groups Tagging API, else `Action=` or method + path) and
appends one line per request to the log file given by MOTO_REQUEST_LOG, if set.
`GET /__bench/requests` answers the counts as JSON; it is served by the middleware, never by
moto, and is not counted.

Exits by itself when the process that started it goes away.
"""

import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                           create_backend_app)
from werkzeug.serving import make_server

PORT = int(sys.argv[1])
LOG_PATH = os.environ.get("MOTO_REQUEST_LOG")


class CountingMiddleware:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.counts = {}
        self.log = open(LOG_PATH, "a", buffering=1) if LOG_PATH else None

    def operation(self, environ):
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return target  # e.g. ResourceGroupsTaggingAPI_20170126.GetResources
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        if action:
            return action[0]
        return f"{environ['REQUEST_METHOD']} (no X-Amz-Target)"  # S3, or an Action= in the body

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__bench/requests":
            with self.lock:
                body = json.dumps(self.counts).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        op = self.operation(environ)
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + 1
            if self.log:
                self.log.write(f"{time.time():.6f} {op}\n")
        return self.app(environ, start_response)


app = CountingMiddleware(DomainDispatcherApplication(create_backend_app))
server = make_server("127.0.0.1", PORT, app, threaded=True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"moto listening on 127.0.0.1:{PORT}", flush=True)

parent = os.getppid()
try:
    while os.getppid() == parent:
        time.sleep(0.5)
finally:
    server.shutdown()
