#!/usr/bin/env python3
"""Run a moto server for one test process: `moto_server.py PORT`.

Counts the AWS API requests it serves, by operation (the `X-Amz-Target` header of JSON
protocols such as the Tagging API and Organizations; the `Action=` field of query protocols such
as STS and EC2, from the query string or the form body), so tests can check from the outside how
many calls Tagwarden made: `GET /_tagwarden/calls` returns `{"total": N, "by_operation": {...}}`.

Behaves like AWS where moto is kinder: real `GetResources` never lists a resource that was never
tagged (or whose tags were all removed); moto lists every resource it knows. This server drops
entries with no tags from every `GetResources` page, so tests see what a real account shows.

Refuses `sts:AssumeRole` into chosen accounts, as AWS does when the role does not exist or does
not trust the caller (moto assumes any role): `POST /_tagwarden/deny-assume-role` with
`{"account_ids": ["222222222222"]}` makes every AssumeRole whose RoleArn is in one of those
accounts answer 403 `AccessDenied` in STS's XML error shape.

Exits by itself when the process that started it goes away, so a test run never leaves a moto
server behind, whatever way the tests end.
"""

import collections
import io
import json
import os
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

moto_app = DomainDispatcherApplication(create_backend_app)
calls = collections.Counter()
lock = threading.Lock()
denied_accounts = set()


def counting_app(environ, start_response):
    if environ.get("PATH_INFO") == "/_tagwarden/calls":
        with lock:
            body = json.dumps({"total": sum(calls.values()), "by_operation": dict(calls)}).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
    if environ.get("PATH_INFO") == "/_tagwarden/deny-assume-role":
        wanted = json.loads(read_body(environ) or b"{}").get("account_ids", [])
        with lock:
            denied_accounts.clear()
            denied_accounts.update(str(a) for a in wanted)
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    target = environ.get("HTTP_X_AMZ_TARGET")
    form = {}
    if target:
        operation = target.split(".")[-1]
    else:
        form = query_fields(environ)
        operation = form.get("Action")
    if operation:
        with lock:
            calls[operation] += 1
    if target and target.endswith(".GetResources"):
        return only_tagged(environ, start_response)
    if operation == "AssumeRole":
        account = form.get("RoleArn", "").split(":")[4:5]
        with lock:
            refused = bool(account) and account[0] in denied_accounts
        if refused:
            return access_denied(form.get("RoleArn", ""), start_response)
    return moto_app(environ, start_response)


def read_body(environ):
    """The request body, read once and put back for moto to read again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def query_fields(environ):
    """The fields of a query-protocol request (STS, EC2): query string, then form body."""
    fields = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = read_body(environ).decode("utf-8", "replace")
        fields.update({k: v[0] for k, v in parse_qs(body).items()})
    return fields


def access_denied(role_arn, start_response):
    """STS's answer when the caller may not assume the role (the real XML error shape)."""
    message = (
        "User: arn:aws:iam::123456789012:user/tagwarden is not authorized to perform: "
        f"sts:AssumeRole on resource: {role_arn}"
    )
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
        "  <Error>\n    <Type>Sender</Type>\n    <Code>AccessDenied</Code>\n"
        f"    <Message>{message}</Message>\n  </Error>\n"
        f"  <RequestId>{uuid.uuid4()}</RequestId>\n</ErrorResponse>\n"
    ).encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


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


def serve(port):
    """Serves `counting_app` on 127.0.0.1:PORT until the process that started this one exits."""
    parent = os.getppid()
    server = make_server(
        "127.0.0.1", port, counting_app, True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"moto listening on 127.0.0.1:{port}", flush=True)
    try:
        while os.getppid() == parent:
            time.sleep(0.5)
    finally:
        server.shutdown()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
