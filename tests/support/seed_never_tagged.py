#!/usr/bin/env python3
"""Seed a moto server with an estate where a third of the resources were never tagged, write a
FOCUS cost file naming them, and print an independent recount as JSON.

Usage: seed_never_tagged.py ENDPOINT_URL FOCUS_CSV_PATH

Scanned regions: us-east-1 and eu-west-1. ap-south-1 holds a few resources too (Resource
Explorer's indexes see them; a scan of the two regions must leave them out). Besides what this
script creates, EC2 brings never-tagged resources of its own, as on AWS: each region's default
VPC, subnets, security group and route table, and each instance's root volume and network
interface. Untagged extras are added until exactly a third of the scanned estate was never
tagged.

The recount uses no Tagwarden code and not the Resource Explorer stub: it lists every resource
through each service's own API (DescribeVolumes, ListQueues, ...) with its tags, and applies
tests/fixtures/moto_policy.json by hand (the same rules as seed_moto.py).
"""

import csv
import json
import math
import re
import sys

import boto3

ENDPOINT, FOCUS = sys.argv[1], sys.argv[2]
ACCOUNT = "123456789012"
SCANNED = ["us-east-1", "eu-west-1"]
ELSEWHERE = "ap-south-1"
RE_PAGE = 50  # the page size the tests give the Resource Explorer stub

PROFILES = [
    {"Environment": "production", "CostCenter": "CC-1234", "Owner": "team-a"},
    {"Name": "orphan"},
    {"env": "staging", "CostCenter": "CC-0001", "Owner": "team-b"},
    {"Environment": "prod", "CostCenter": "CC-1234", "Owner": "team-c"},
    {"Environment": "qa", "CostCenter": "cc-12", "Owner": "team-d"},
    {"Environment": "", "CostCenter": "CC-1234", "Owner": "team-e"},
    {"Environment": "staging", "CostCenter": "CC-2222", "Owner": "o", "tmp": "1"},
    {"ENVIRONMENT": "production", "costcenter": "CC-3333", "Owner": "team-f"},
]


clients = {}


def client(service, region):
    if (service, region) not in clients:
        clients[(service, region)] = boto3.client(
            service,
            region_name=region,
            endpoint_url=ENDPOINT,
            aws_access_key_id="seed",
            aws_secret_access_key="seed",
        )
    return clients[(service, region)]


def kv(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# ---- Seeding -------------------------------------------------------------------------------
counter = {"n": 0}


def profile():
    tags = PROFILES[counter["n"] % len(PROFILES)]
    counter["n"] += 1
    return tags


def tag_spec(kind, tagged):
    return [{"ResourceType": kind, "Tags": kv(profile())}] if tagged else []


def volumes(region, count, tagged):
    ec2 = client("ec2", region)
    for _ in range(count):
        ec2.create_volume(Size=8, AvailabilityZone=region + "a", TagSpecifications=tag_spec("volume", tagged))


def instances(region, count):
    # One of moto's built-in public AMIs; the instances' root volumes and network interfaces are
    # created untagged, as on AWS.
    ec2 = client("ec2", region)
    for _ in range(count):
        ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=tag_spec("instance", True)
        )


def tables(region, names, tagged):
    ddb = client("dynamodb", region)
    for name in names:
        t = ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        if tagged:
            ddb.tag_resource(ResourceArn=t["TableDescription"]["TableArn"], Tags=kv(profile()))


def queues(region, names, tagged):
    sqs = client("sqs", region)
    for name in names:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        if tagged:
            sqs.tag_queue(QueueUrl=url, Tags=profile())


def topics(region, names, tagged):
    sns = client("sns", region)
    for name in names:
        arn = sns.create_topic(Name=name)["TopicArn"]
        if tagged:
            sns.tag_resource(ResourceArn=arn, Tags=kv(profile()))


def buckets(names, tagged):
    s3 = client("s3", "us-east-1")
    for name in names:
        s3.create_bucket(Bucket=name)
        if tagged:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": kv(profile())})


# Tagged: 120 in the scanned regions.
volumes("us-east-1", 60, True)
instances("us-east-1", 6)
tables("us-east-1", [f"tagged-table-{i}" for i in range(8)], True)
queues("us-east-1", [f"tagged-queue-{i}" for i in range(8)], True)
topics("us-east-1", [f"tagged-topic-{i}" for i in range(6)], True)
volumes("eu-west-1", 16, True)
queues("eu-west-1", [f"tagged-queue-eu-{i}" for i in range(6)], True)
buckets([f"tagged-bucket-{i:02d}" for i in range(10)], True)
# Outside the scan: seen by Resource Explorer's aggregator, never counted.
volumes(ELSEWHERE, 3, True)
volumes(ELSEWHERE, 4, False)
queues(ELSEWHERE, ["far-queue-0", "far-queue-1"], False)


# ---- Listing every resource through each service's own API ----------------------------------
def ec2_resources(region):
    ec2 = client("ec2", region)
    arn = lambda kind, rid: f"arn:aws:ec2:{region}:{ACCOUNT}:{kind}/{rid}"
    tags = lambda item: {t["Key"]: t["Value"] for t in item.get("Tags") or []}
    out = []
    for v in ec2.describe_vpcs()["Vpcs"]:
        out.append((arn("vpc", v["VpcId"]), "ec2:vpc", region, tags(v)))
    for s in ec2.describe_subnets()["Subnets"]:
        out.append((arn("subnet", s["SubnetId"]), "ec2:subnet", region, tags(s)))
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        out.append((arn("security-group", g["GroupId"]), "ec2:security-group", region, tags(g)))
    for t in ec2.describe_route_tables()["RouteTables"]:
        out.append((arn("route-table", t["RouteTableId"]), "ec2:route-table", region, tags(t)))
    for g in ec2.describe_internet_gateways()["InternetGateways"]:
        out.append((arn("internet-gateway", g["InternetGatewayId"]), "ec2:internet-gateway", region, tags(g)))
    for n in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        out.append((arn("network-interface", n["NetworkInterfaceId"]), "ec2:network-interface", region, tags(n)))
    for v in ec2.describe_volumes()["Volumes"]:
        out.append((arn("volume", v["VolumeId"]), "ec2:volume", region, tags(v)))
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            out.append((arn("instance", i["InstanceId"]), "ec2:instance", region, tags(i)))
    # No image or snapshot is made here, and the account owns none (Amazon's public ones are
    # not the account's): none is listed. A source that listed one would not match this count.
    return out


def other_resources(region):
    out = []
    ddb = client("dynamodb", region)
    for name in ddb.list_tables()["TableNames"]:
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])}
        out.append((arn, "dynamodb:table", region, tags))
    sqs = client("sqs", region)
    for url in sqs.list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[-1]
        out.append((f"arn:aws:sqs:{region}:{ACCOUNT}:{name}", "sqs:queue", region, sqs.list_queue_tags(QueueUrl=url).get("Tags", {})))
    sns = client("sns", region)
    for t in sns.list_topics()["Topics"]:
        tags = {x["Key"]: x["Value"] for x in sns.list_tags_for_resource(ResourceArn=t["TopicArn"])["Tags"]}
        out.append((t["TopicArn"], "sns:topic", region, tags))
    return out


def bucket_resources():
    s3 = client("s3", "us-east-1")
    out = []
    for b in s3.list_buckets()["Buckets"]:
        try:
            tagset = s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"]
        except s3.exceptions.ClientError:
            tagset = []
        out.append((f"arn:aws:s3:::{b['Name']}", "s3:bucket", "global", {t["Key"]: t.get("Value", "") for t in tagset}))
    return out


def everything():
    found = []
    for region in SCANNED:
        found += ec2_resources(region) + other_resources(region)
    return found + bucket_resources()


# Never-tagged extras until exactly a third of the scanned estate was never tagged.
listed = everything()
tagged_count = sum(1 for r in listed if r[3])
untagged_count = len(listed) - tagged_count
missing = tagged_count // 2 - untagged_count
assert tagged_count % 2 == 0 and missing >= 4, (tagged_count, untagged_count)
extras = {"vol-us": missing // 4, "vol-eu": missing // 4, "queue": missing // 4}
extras["bucket"] = missing - sum(extras.values())
volumes("us-east-1", extras["vol-us"], False)
volumes("eu-west-1", extras["vol-eu"], False)
queues("eu-west-1", [f"never-tagged-queue-{i}" for i in range(extras["queue"])], False)
buckets([f"never-tagged-bucket-{i:02d}" for i in range(extras["bucket"])], False)
listed = everything()
assert sum(1 for r in listed if not r[3]) * 3 == len(listed), "a third never tagged"

# The whole account (for the page count of Resource Explorer's aggregator listing).
elsewhere = ec2_resources(ELSEWHERE) + other_resources(ELSEWHERE)


# ---- Recount under tests/fixtures/moto_policy.json ------------------------------------------
RULES = [
    ("Environment", lambda t: True),
    ("CostCenter", lambda t: t.startswith("ec2:") or t == "s3:bucket"),
    ("Owner", lambda t: t in ("dynamodb:table", "sqs:queue", "sns:topic")),
]
ALIASES = {"Environment": ["env"]}
VALUE_ALIASES = {"Environment": {"prod": "production"}}


def value_ok(key, value):
    if key == "Environment":
        return value in ("production", "staging")
    if key == "CostCenter":
        return re.fullmatch(r"CC-[0-9]{4}", value) is not None
    return True


def resolve(tags, key):
    if key in tags:
        return tags[key]
    for k, v in tags.items():
        if k.lower() == key.lower():
            return v
    for alias in ALIASES.get(key, []):
        for k, v in tags.items():
            if k.lower() == alias.lower():
                return v
    return None


def evaluate(rtype, tags):
    """Effective view: (kind, key) of each violation."""
    found = []
    for key, applies in RULES:
        if not applies(rtype):
            continue
        value = resolve(tags, key)
        if value is not None:
            value = VALUE_ALIASES.get(key, {}).get(value, value)
        if value is None:
            found.append(("missing_required_tag", key))
        elif value.strip() == "":
            found.append(("empty_value", key))
        elif not value_ok(key, value):
            found.append(("invalid_format" if key == "CostCenter" else "invalid_value", key))
    for k in tags:
        if k.lower() == "tmp":
            found.append(("prohibited_tag", "tmp"))
    return found


def tally(resources):
    compliant, violations, kinds, keys = 0, 0, {}, {}
    for _, rtype, _, tags in resources:
        vs = evaluate(rtype, tags)
        compliant += not vs
        violations += len(vs)
        for kind, key in vs:
            kinds[kind] = kinds.get(kind, 0) + 1
            keys[key] = keys.get(key, 0) + 1
    n = len(resources)
    return {
        "resources": n,
        "in_scope": n,
        "effective": {"compliant": compliant, "non_compliant": n - compliant, "violations": violations},
        "by_kind": kinds,
        "by_key": keys,
    }


def missing_keys(rtype, tags):
    """Required keys absent (or empty) in the effective view: find_untagged_resources."""
    return [key for kind, key in evaluate(rtype, tags) if kind in ("missing_required_tag", "empty_value")]


tagged = [r for r in listed if r[3]]
never = [r for r in listed if not r[3]]

# ---- Costs: one FOCUS line per instance, volume, table, queue and bucket (tagged or not) -----
priced = [r for r in listed if r[1] in ("ec2:instance", "ec2:volume", "dynamodb:table", "sqs:queue", "s3:bucket")]
SERVICE = {
    "ec2": "Amazon Elastic Compute Cloud",
    "dynamodb": "Amazon DynamoDB",
    "sqs": "Amazon Simple Queue Service",
    "s3": "Amazon Simple Storage Service",
}
total = attributable = 0
with open(FOCUS, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["BillingAccountId", "BillingCurrency", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd",
                "ProviderName", "SubAccountId", "RegionId", "ServiceName", "ResourceId", "ResourceName",
                "ResourceType", "BilledCost", "EffectiveCost", "Tags"])
    for i, (arn, rtype, region, tags) in enumerate(sorted(priced)):
        cents = 100 + (i * 37) % 900  # 1.00 .. 9.99, exact in cents
        amount = f"{cents // 100}.{cents % 100:02d}"
        w.writerow([ACCOUNT, "USD", "Usage", "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", "AWS", ACCOUNT,
                    "" if region == "global" else region, SERVICE[rtype.split(":")[0]], arn, "", rtype,
                    amount, amount, "{}"])
        total += cents
        # Attributable: every required key that applies has a valid value (prohibited tags aside).
        if not [v for v in evaluate(rtype, tags) if v[0] != "prohibited_tag"]:
            attributable += cents

per_region_tagged = {}
for _, _, region, tags in tagged:
    per_region_tagged[region] = per_region_tagged.get(region, 0) + 1
tagged_buckets = per_region_tagged.pop("global", 0)
tagging_pages = sum(max(1, math.ceil((per_region_tagged.get(r, 0) + tagged_buckets) / 100)) for r in SCANNED)
account_wide = len(listed) + len(elsewhere)
# Local indexes: each lists its own region (buckets live in us-east-1, where they were created).
in_region = {r: sum(1 for x in listed if x[2] == r or (x[2] == "global" and r == "us-east-1")) for r in SCANNED}

print(json.dumps({
    "with_resource_explorer": tally(listed),
    "tagging_only": tally(tagged),
    "never_tagged": len(never),
    "tagged": len(tagged),
    "never_tagged_by_type": {t: sum(1 for r in never if r[1] == t) for t in sorted({r[1] for r in never})},
    "untagged_default": {
        "total": sum(1 for r in listed if missing_keys(r[1], r[3])),
        "tagging_only_total": sum(1 for r in tagged if missing_keys(r[1], r[3])),
    },
    "cost": {
        "total_cents": total,
        "attributable_cents": attributable,
        "unattributable_cents": total - attributable,
        "resources_priced": len(priced),
        "resources_priced_never_tagged": sum(1 for r in priced if not r[3]),
    },
    "calls": {
        "tagging_pages": tagging_pages,
        "duplicates_dropped": tagged_buckets * (len(SCANNED) - 1),
        "re_page_size": RE_PAGE,
        "re_listing_pages": math.ceil(account_wide / RE_PAGE),
        "re_account_wide": account_wide,
        "re_local_pages": sum(math.ceil(n / RE_PAGE) for n in in_region.values()),
    },
    "never_tagged_arns": sorted(r[0] for r in never),
}))
