#!/usr/bin/env python3
"""Run a moto server for one test process: `moto_server.py PORT`.

Counts the AWS API requests it serves, by operation (the `X-Amz-Target` header, or the path of a
REST-JSON request), so tests can check from the outside how many calls Tagwarden made:
`GET /_tagwarden/calls` returns `{"total": N, "by_operation": {...}, "by_access_key": {AKID:
{operation: N}}}` (tests that run side by side use different access keys to count their own).

Serves Resource Explorer, which moto lacks, over the same account (resource_explorer_stub.py):
requests signed for service `resource-explorer-2` go to the stub, configured by tests through
`POST /_tagwarden/resource-explorer`. Until then the account has no Resource Explorer index.

Query-protocol requests (STS, EC2) are counted by their `Action=` field (query string or form
body). Refuses `sts:AssumeRole` into chosen accounts, as AWS does when the role does not exist or
does not trust the caller (moto assumes any role), and records the RoleArn of every AssumeRole
(`GET /_tagwarden/assumed-roles`): `POST /_tagwarden/deny-assume-role` with
`{"account_ids": ["222222222222"]}` makes every AssumeRole whose RoleArn is in one of those
accounts answer 403 `AccessDenied` in STS's XML error shape.

Behaves like AWS where moto is kinder: real `GetResources` never lists a resource that was never
tagged; moto lists every resource it knows. This server drops entries with no tags from every
`GetResources` page. That is stricter than AWS for a resource whose tags were all removed (AWS may
still list it, with no tags), which only makes the never-tagged tests harder to pass.

AWS Config advanced queries (`SelectResourceConfig`, `SelectAggregateResourceConfig`) are
answered here, not by moto: moto 5.x has no `SelectAggregateResourceConfig`, its
`SelectResourceConfig` serves results queued in-process only (no `/moto-api/static/` endpoint
reaches them from a server), returns objects where AWS returns JSON strings, and ignores `Limit`
and `NextToken`. A test sets the estate with `POST /_tagwarden/config` and a body
`{"aggregators": {NAME: [item, ...]}, "recorders": {REGION: [item, ...]}}` (items are Config's
configuration items: resourceId, resourceType, arn, accountId, awsRegion, tags as
[{key, value}], ...). Queries are answered the way AWS answers them: the expression's `WHERE`
clause is evaluated (the subset Tagwarden sends: `AND`, `OR`, `NOT`, parentheses, `=`, `IN`,
`LIKE 'prefix%'`; anything else is refused as `InvalidExpressionException`), each result is the
item projected on the `SELECT` list as a JSON string, pages hold `Limit` results (25 when absent,
at most 100) with an opaque `NextToken`, and an unknown aggregator is
`NoSuchConfigurationAggregatorException`. `SelectResourceConfig` answers from the recorder of the
region the request is signed for. `GET /_tagwarden/config-queries` lists the queries received.

Exits by itself when the process that started it goes away, so a test run never leaves a moto
server behind, whatever way the tests end.
"""

import base64
import collections
import io
import json
import os
import re
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

import resource_explorer_stub

moto_app = DomainDispatcherApplication(create_backend_app)
calls = collections.Counter()
calls_by_key = collections.defaultdict(collections.Counter)
lock = threading.Lock()
denied_accounts = set()
# The RoleArn of every AssumeRole request, in order (GET /_tagwarden/assumed-roles).
assumed_roles = []
config_estate = {"aggregators": {}, "recorders": {}}
config_queries = []


def signed_for(environ):
    """(access key id, region, service) of the SigV4 credential scope, or empty strings."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    return tuple(scope[i] if len(scope) > i else "" for i in (0, 2, 3))




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
        return json_answer(start_response, "200 OK", answer)
    if path == "/_tagwarden/resource-explorer" and environ.get("REQUEST_METHOD") == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json_answer(
            start_response,
            "200 OK",
            resource_explorer_stub.configure(environ["wsgi.input"].read(length)),
        )
    if environ.get("PATH_INFO") == "/_tagwarden/config":
        return set_config_estate(environ, start_response)
    if environ.get("PATH_INFO") == "/_tagwarden/config-queries":
        with lock:
            return json_answer(start_response, "200 OK", config_queries)
    if path == "/_tagwarden/assumed-roles":
        with lock:
            return json_answer(start_response, "200 OK", list(assumed_roles))
    if path == "/_tagwarden/deny-assume-role":
        wanted = json.loads(read_body(environ) or b"{}").get("account_ids", [])
        with lock:
            denied_accounts.clear()
            denied_accounts.update(str(a) for a in wanted)
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    access_key, region, service = signed_for(environ)
    if service == "resource-explorer-2":
        operation = (path or "/").strip("/")
        count(operation, access_key)
        return resource_explorer_stub.wsgi(operation, access_key, region, environ, start_response)
    target = environ.get("HTTP_X_AMZ_TARGET")
    form = {}
    if target:
        operation = target.split(".")[-1]
    else:
        form = query_fields(environ)
        operation = form.get("Action")
    if operation:
        count(operation, access_key)
    if target and target.endswith(".GetResources"):
        return only_tagged(environ, start_response)
    if operation == "AssumeRole":
        account = form.get("RoleArn", "").split(":")[4:5]
        with lock:
            assumed_roles.append(form.get("RoleArn", ""))
            refused = bool(account) and account[0] in denied_accounts
        if refused:
            return access_denied(form.get("RoleArn", ""), start_response)
    if target in (
        "StarlingDoveService.SelectResourceConfig",
        "StarlingDoveService.SelectAggregateResourceConfig",
    ):
        return select_config(environ, start_response, target.split(".")[-1])
    return moto_app(environ, start_response)


def json_answer(start_response, status, value, content_type="application/json"):
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def request_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def set_config_estate(environ, start_response):
    estate = json.loads(request_body(environ) or b"{}")
    with lock:
        config_estate["aggregators"] = estate.get("aggregators", {})
        config_estate["recorders"] = estate.get("recorders", {})
        config_queries.clear()
    return json_answer(start_response, "200 OK", {"ok": True})


def config_error(start_response, code, message):
    return json_answer(
        start_response,
        "400 Bad Request",
        {"__type": code, "message": message},
        "application/x-amz-json-1.1",
    )


class BadExpression(Exception):
    pass


def split_top(text, word):
    """Splits on ` word ` outside quotes and parentheses."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    sep = f" {word} "
    while i < len(text):
        c = text[i]
        if c == "'":
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
        elif not quoted and depth == 0 and text[i : i + len(sep)].upper() == sep:
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def strings(text):
    return [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", text)]


def condition(text):
    """A predicate on an item for the WHERE subset described above."""
    text = text.strip()
    ors = split_top(text, "OR")
    if len(ors) > 1:
        preds = [condition(p) for p in ors]
        return lambda item: any(p(item) for p in preds)
    ands = split_top(text, "AND")
    if len(ands) > 1:
        preds = [condition(p) for p in ands]
        return lambda item: all(p(item) for p in preds)
    if text.upper().startswith("NOT "):
        inner = condition(text[4:])
        return lambda item: not inner(item)
    if text.startswith("(") and text.endswith(")"):
        return condition(text[1:-1])
    m = re.fullmatch(r"(\w+)\s+(IN|LIKE|=)\s+(.+)", text, re.IGNORECASE)
    if not m:
        raise BadExpression(text)
    prop, op, rest = m.group(1), m.group(2).upper(), m.group(3).strip()
    values = strings(rest)
    if op == "IN":
        if not (rest.startswith("(") and rest.endswith(")")) or not values:
            raise BadExpression(text)
        return lambda item: item.get(prop) in values
    if len(values) != 1:
        raise BadExpression(text)
    value = values[0]
    if op == "LIKE":
        if not value.endswith("%") or "%" in value[:-1] or len(value) < 4:
            raise BadExpression(text)
        return lambda item: str(item.get(prop, "")).startswith(value[:-1])
    return lambda item: item.get(prop) == value


# What `SELECT *` returns: the top-level scalar properties (tags are not among them).
SCALAR_PROPERTIES = [
    "accountId", "awsRegion", "arn", "availabilityZone", "configurationItemCaptureTime",
    "resourceCreationTime", "resourceId", "resourceName", "resourceType", "version",
]


def parse_expression(expression):
    m = re.fullmatch(r"\s*SELECT\s+(.+?)(?:\s+WHERE\s+(.+))?\s*", expression, re.IGNORECASE | re.DOTALL)
    if not m:
        raise BadExpression(expression)
    fields = [f.strip() for f in m.group(1).split(",")]
    if fields == ["*"]:
        fields = SCALAR_PROPERTIES
    if not all(re.fullmatch(r"\w+", f) for f in fields):
        raise BadExpression(m.group(1))
    where = condition(m.group(2)) if m.group(2) else (lambda item: True)
    return fields, where


def signed_region(environ):
    m = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return m.group(1) if m else "us-east-1"


def select_config(environ, start_response, operation):
    params = json.loads(request_body(environ) or b"{}")
    expression = params.get("Expression", "")
    limit = params.get("Limit") or params.get("MaxResults") or 25
    token = params.get("NextToken")
    if operation == "SelectAggregateResourceConfig":
        name = params.get("ConfigurationAggregatorName", "")
        scope = ("aggregator", name)
        with lock:
            items = config_estate["aggregators"].get(name)
        if items is None:
            return config_error(
                start_response,
                "NoSuchConfigurationAggregatorException",
                "The configuration aggregator does not exist. Check the configuration "
                "aggregator name and try again.",
            )
    else:
        region = signed_region(environ)
        scope = ("region", region)
        with lock:
            items = config_estate["recorders"].get(region, [])
    with lock:
        config_queries.append(
            {"operation": operation, "scope": list(scope), "expression": expression,
             "limit": params.get("Limit"), "next_token": token}
        )
    if not isinstance(limit, int) or limit < 0 or limit > 100:
        return config_error(start_response, "InvalidLimitException", "Limit must be 0-100.")
    try:
        fields, where = parse_expression(expression)
    except BadExpression as e:
        return config_error(start_response, "InvalidExpressionException", f"Invalid expression: {e}")
    matching = [i for i in items if where(i)]
    offset = 0
    if token:
        try:
            state = json.loads(base64.b64decode(token))
            assert state["scope"] == list(scope) and state["expression"] == expression
            offset = int(state["offset"])
        except Exception:
            return config_error(start_response, "InvalidNextTokenException", "Invalid NextToken.")
    page = matching[offset : offset + limit]
    answer = {
        "Results": [
            json.dumps({f: i[f] for f in fields if f in i}, separators=(",", ":")) for i in page
        ],
        "QueryInfo": {"SelectFields": [{"Name": f} for f in fields]},
    }
    if offset + limit < len(matching):
        answer["NextToken"] = base64.b64encode(
            json.dumps({"scope": list(scope), "expression": expression, "offset": offset + limit}).encode()
        ).decode()
    return json_answer(start_response, "200 OK", answer, "application/x-amz-json-1.1")


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
