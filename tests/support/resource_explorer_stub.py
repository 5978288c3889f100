"""Resource Explorer (`resource-explorer-2`) over the moto account, for tests/support/moto_server.py.

moto has no Resource Explorer. This stub speaks its REST-JSON protocol (POST /ListIndexes,
POST /ListResources, POST /GetDefaultView; JSON bodies; errors as a status, an
`x-amzn-ErrorType` header and a `{"message": ...}` body) and lists every resource moto's
services know in the account — never-tagged ones included, as Resource Explorer does — with
their tags in the `tags` property. Resources other accounts own (Amazon's public AMIs and their
snapshots, AWS-managed prefix lists) are left out, as in a real account.

Like a fresh AWS account, Resource Explorer is off until a test sets it up: `POST
/_tagwarden/resource-explorer` with a JSON body configures it for one access key id (so tests
running side by side each have their own setup), or for every key with `"access_key": "*"`:

    {"access_key": "AKID",
     "indexes": [{"region": "us-east-1", "type": "AGGREGATOR"}, {"region": "eu-west-1"}],
     "default_views": ["us-east-1"],     # regions with a default view (default: every index)
     "views": ["arn:aws:resource-explorer-2:us-east-1:123456789012:view/named/1"],
     "include_tags": true,               # the views include the tags property
     "deny": ["ListResources"],          # operations answered with AccessDeniedException
     "page_size": 1000,                  # most resources per page (and MaxResults caps it)
     "errors": {"ListResources": ["InternalServerException", ...]}}  # answered first, in turn

An aggregator index lists the resources of every region that has an index, plus global ones; a
local index lists its own region (and global resources in us-east-1). Pages are cut from a
snapshot taken at the first page and continued with an opaque NextToken, which stays valid (a
retried page gets the same answer).
"""

import json
import threading
import uuid
from datetime import datetime, timezone

ACCOUNT = "123456789012"
STATUS = {
    "AccessDeniedException": "403 Forbidden",
    "UnauthorizedException": "401 Unauthorized",
    "ResourceNotFoundException": "404 Not Found",
    "ValidationException": "400 Bad Request",
    "ThrottlingException": "429 Too Many Requests",
    "InternalServerException": "500 Internal Server Error",
    "UnknownOperationException": "404 Not Found",
}

lock = threading.Lock()
configs = {}  # access key id (or "*") -> setup
snapshots = {}  # NextToken -> (resources, offset, page owner)


def configure(body):
    setup = json.loads(body or b"{}")
    key = setup.pop("access_key", "*")
    with lock:
        configs[key] = setup
    return {"configured": key}


def setup_for(access_key):
    with lock:
        return dict(configs.get(access_key) or configs.get("*") or {})


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def error(code, message):
    return STATUS[code], {"message": message}, code


def indexes_of(setup):
    return [
        {
            "Region": i["region"],
            "Type": i.get("type", "LOCAL").upper(),
            "Arn": f"arn:aws:resource-explorer-2:{i['region']}:{ACCOUNT}:index/"
            f"{uuid.uuid5(uuid.NAMESPACE_URL, i['region'])}",
        }
        for i in setup.get("indexes", [])
    ]


def default_view(region):
    return f"arn:aws:resource-explorer-2:{region}:{ACCOUNT}:view/default/{uuid.uuid5(uuid.NAMESPACE_DNS, region)}"


def owned_by_others(backend, resource):
    """Amazon's public AMIs and their snapshots, AWS-managed prefix lists: not this account's."""
    kind = resource.resource_type
    rid = resource.arn.rsplit("/", 1)[-1]
    collection = {
        "ec2:image": "amis",
        "ec2:snapshot": "snapshots",
        "ec2:managed-prefix-lists": "managed_prefix_lists",
    }.get(kind)
    if collection is None:
        return False
    item = getattr(backend, collection, {}).get(rid)
    return item is not None and getattr(item, "owner_id", ACCOUNT) != ACCOUNT


def region_of(resource):
    region = resource.arn.split(":")[3]
    if region:
        return region
    if resource.resource_type == "s3:bucket":
        from moto.s3.models import s3_backends

        bucket = s3_backends[ACCOUNT]["aws"].buckets.get(resource.arn.split(":::")[-1])
        if bucket is not None:
            return bucket.region_name
    return "global"


def everything(regions):
    """Every resource moto knows in the account in `regions` (plus global ones), by ARN."""
    from moto.core.resource_tagging import iter_taggable_backends

    found = {}
    for region in regions:
        for backend in iter_taggable_backends(ACCOUNT, region):
            for resource in backend.iter_tagged_resources():
                if resource.arn in found or owned_by_others(backend, resource):
                    continue
                found[resource.arn] = (resource, region_of(resource))
    return found


def listing(setup, index):
    """What the index in `index["Region"]` lists, sorted by ARN."""
    indexed = [i["Region"] for i in indexes_of(setup)]
    if index["Type"] == "AGGREGATOR":
        reach = set(indexed)
    else:
        reach = {index["Region"]}
    with_global = index["Type"] == "AGGREGATOR" or index["Region"] == "us-east-1"
    out = []
    stamp = now()
    for arn, (resource, region) in sorted(everything(sorted(reach | {"us-east-1"})).items()):
        if region == "global":
            if not with_global:
                continue
        elif region not in reach:
            continue
        item = {
            "Arn": arn,
            "LastReportedAt": stamp,
            "OwningAccountId": ACCOUNT,
            "Region": "" if region == "global" else region,
            "ResourceType": resource.resource_type,
            "Service": resource.resource_type.split(":", 1)[0],
            "Properties": [],
        }
        if setup.get("include_tags", True):
            item["Properties"].append(
                {
                    "Name": "tags",
                    "LastReportedAt": stamp,
                    "Data": [{"Key": k, "Value": v} for k, v in sorted(resource.tags.items())],
                }
            )
        out.append(item)
    return out


def page_of(items, offset, size, owner):
    end = offset + size
    body = items[offset:end]
    token = None
    if end < len(items):
        token = uuid.uuid4().hex
        with lock:
            snapshots[token] = (items, end, owner)
    return body, token


def handle(operation, access_key, region, body):
    """One request: (status line, JSON body, error code or None)."""
    setup = setup_for(access_key)
    queued = setup.get("errors", {}).get(operation)
    if queued:
        with lock:
            live = configs.get(access_key) or configs.get("*")
            code = live["errors"][operation].pop(0)
        return error(code, f"{code} (injected by the test)")
    if operation in setup.get("deny", []):
        return error(
            "AccessDeniedException",
            f"User: arn:aws:iam::{ACCOUNT}:user/test is not authorized to perform: "
            f"resource-explorer-2:{operation}",
        )
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return error("ValidationException", "the request body is not JSON")
    indexes = indexes_of(setup)
    if operation == "ListIndexes":
        wanted = request.get("Regions")
        kind = request.get("Type")
        items = [
            i for i in indexes if (not wanted or i["Region"] in wanted) and (not kind or i["Type"] == kind)
        ]
        size = int(request.get("MaxResults") or 100)
        if not 1 <= size <= 100:
            return error("ValidationException", "MaxResults must be between 1 and 100")
        return paged(request, items, size, access_key, "Indexes", {})
    if operation == "GetDefaultView":
        views = setup.get("default_views")
        if any(i["Region"] == region for i in indexes) and (views is None or region in views):
            return "200 OK", {"ViewArn": default_view(region)}, None
        return "200 OK", {}, None
    if operation == "ListResources":
        if request.get("Filters"):
            return error("ValidationException", "this stub lists whole views: Filters are not supported")
        size = request.get("MaxResults", 1000)
        if not isinstance(size, int) or not 1 <= size <= 1000:
            return error("ValidationException", "MaxResults must be between 1 and 1000")
        size = min(size, int(setup.get("page_size", 1000)))
        index = next((i for i in indexes if i["Region"] == region), None)
        view = request.get("ViewArn")
        if view:
            if view not in setup.get("views", []) or index is None:
                return error("ResourceNotFoundException", f"The view {view} was not found")
            if view.split(":")[3] != region:
                return error("ValidationException", f"The view {view} is in another Region")
        else:
            views = setup.get("default_views")
            if index is None or (views is not None and region not in views):
                return error(
                    "UnauthorizedException",
                    "The operation failed because no default view is associated with this "
                    "Region, or you do not have permission to use it",
                )
            view = default_view(region)
        token = request.get("NextToken")
        if token:
            return paged(request, None, size, access_key, "Resources", {"ViewArn": view})
        return paged(request, listing(setup, index), size, access_key, "Resources", {"ViewArn": view})
    return error("UnknownOperationException", f"{operation} is not served by this stub")


def paged(request, items, size, access_key, field, extra):
    token = request.get("NextToken")
    offset = 0
    if token:
        with lock:
            snapshot = snapshots.get(token)
        if snapshot is None or snapshot[2] != access_key:
            return error("ValidationException", "The NextToken is not valid")
        items, offset, _ = snapshot
    body, next_token = page_of(items, offset, size, access_key)
    answer = {field: body, **extra}
    if next_token:
        answer["NextToken"] = next_token
    return "200 OK", answer, None


def wsgi(operation, access_key, region, environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    status, answer, code = handle(operation, access_key, region, body)
    data = json.dumps(answer).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if code:
        headers.append(("x-amzn-ErrorType", code))
    start_response(status, headers)
    return [data]
