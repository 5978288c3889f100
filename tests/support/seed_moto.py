#!/usr/bin/env python3
"""Seed a moto server with a small, known AWS estate and print an independent recount.

Usage: seed_moto.py ENDPOINT_URL

Creates tagged resources of several types in us-east-1 and eu-west-1 (S3 buckets are global
and moto lists them in every region), then computes, without any Tagwarden code, what a
compliance check of that estate under tests/fixtures/moto_policy.json must report. Prints the
expected figures as JSON on stdout.

Every resource carries at most 4 tags, so moto's TagsPerPage=500 never splits a 100-resource
page: pages per region are ceil(resources / 100).
"""

import json
import math
import sys

import boto3

ENDPOINT = sys.argv[1]
ACCOUNT = "123456789012"

# Tag profiles, cycled over the resources of each type.
PROFILES = [
    {"Environment": "production", "CostCenter": "CC-1234", "Owner": "team-a"},       # good
    {"Name": "orphan"},                                                               # nothing governed
    {"env": "staging", "CostCenter": "CC-0001", "Owner": "team-b"},                   # alias key
    {"Environment": "prod", "CostCenter": "CC-1234", "Owner": "team-c"},              # alias value
    {"Environment": "qa", "CostCenter": "cc-12", "Owner": "team-d"},                  # bad values
    {"Environment": "", "CostCenter": "CC-1234", "Owner": "team-e"},                  # empty value
    {"Environment": "staging", "CostCenter": "CC-2222", "Owner": "o", "tmp": "1"},    # prohibited
    {"ENVIRONMENT": "production", "costcenter": "CC-3333", "Owner": "team-f"},        # case variants
]


def client(service, region):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def kv(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


created = []  # (arn, type, region, tags)


def seed_region(region, volumes, instances, tables, queues, topics):
    ec2 = client("ec2", region)
    n = 0
    for _ in range(volumes):
        vol = ec2.create_volume(Size=8, AvailabilityZone=region + "a")
        tags = PROFILES[n % len(PROFILES)]
        ec2.create_tags(Resources=[vol["VolumeId"]], Tags=kv(tags))
        created.append((f"arn:aws:ec2:{region}:{ACCOUNT}:volume/{vol['VolumeId']}", "ec2:volume", region, tags))
        n += 1
    if instances:
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        reservation = ec2.run_instances(ImageId=image, MinCount=instances, MaxCount=instances)
        for inst in reservation["Instances"]:
            tags = PROFILES[n % len(PROFILES)]
            ec2.create_tags(Resources=[inst["InstanceId"]], Tags=kv(tags))
            created.append((f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{inst['InstanceId']}", "ec2:instance", region, tags))
            n += 1
    ddb = client("dynamodb", region)
    for i in range(tables):
        name = f"table-{region}-{i}"
        t = ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        arn = t["TableDescription"]["TableArn"]
        tags = PROFILES[n % len(PROFILES)]
        ddb.tag_resource(ResourceArn=arn, Tags=kv(tags))
        created.append((arn, "dynamodb:table", region, tags))
        n += 1
    sqs = client("sqs", region)
    for i in range(queues):
        url = sqs.create_queue(QueueName=f"queue-{region}-{i}")["QueueUrl"]
        tags = PROFILES[n % len(PROFILES)]
        sqs.tag_queue(QueueUrl=url, Tags=tags)
        created.append((f"arn:aws:sqs:{region}:{ACCOUNT}:queue-{region}-{i}", "sqs:queue", region, tags))
        n += 1
    sns = client("sns", region)
    for i in range(topics):
        tags = PROFILES[n % len(PROFILES)]
        arn = sns.create_topic(Name=f"topic-{region}-{i}")["TopicArn"]
        sns.tag_resource(ResourceArn=arn, Tags=kv(tags))
        created.append((arn, "sns:topic", region, tags))
        n += 1


def seed_buckets(count):
    s3 = client("s3", "us-east-1")
    for i in range(count):
        name = f"bucket-{i:02d}"
        s3.create_bucket(Bucket=name)
        tags = PROFILES[(i + 3) % len(PROFILES)]
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": kv(tags)})
        created.append((f"arn:aws:s3:::{name}", "s3:bucket", "global", tags))


seed_region("us-east-1", volumes=120, instances=10, tables=6, queues=6, topics=6)
seed_region("eu-west-1", volumes=20, instances=0, tables=4, queues=4, topics=0)
seed_buckets(12)

# ---- Independent recount under tests/fixtures/moto_policy.json -------------------------------
# Environment: all types, critical, allowed production|staging, alias env, value alias prod.
# CostCenter: ec2:* and s3:bucket, high, regex CC-[0-9]{4} (anchored).
# Owner: dynamodb:table, sqs:queue, sns:topic, medium, any value.
# tmp is prohibited (high). Keys match case-insensitively. fail_at low.
import re

RULES = [
    ("Environment", lambda t: True, "critical"),
    ("CostCenter", lambda t: t.startswith("ec2:") or t == "s3:bucket", "high"),
    ("Owner", lambda t: t in ("dynamodb:table", "sqs:queue", "sns:topic"), "medium"),
]
ALIASES = {"Environment": ["env"]}
VALUE_ALIASES = {"Environment": {"prod": "production"}}


def value_ok(key, value):
    if key == "Environment":
        return value in ("production", "staging")
    if key == "CostCenter":
        return re.fullmatch(r"CC-[0-9]{4}", value) is not None
    return True


def resolve(tags, key, effective):
    if key in tags:
        return tags[key]
    if not effective:
        return None
    for k, v in tags.items():
        if k.lower() == key.lower():
            return v
    for alias in ALIASES.get(key, []):
        for k, v in tags.items():
            if k.lower() == alias.lower():
                return v
    return None


def variants(tags):
    """Tags that are a case variant or alias of a policy key (misnamed in the native view)."""
    out = []
    for k in tags:
        for key in ("Environment", "CostCenter", "Owner"):
            if k != key and (k.lower() == key.lower() or k.lower() in [a.lower() for a in ALIASES.get(key, [])]):
                out.append(key)
    return out


def evaluate(rtype, tags, effective):
    found = []
    for key, applies, severity in RULES:
        if not applies(rtype):
            continue
        value = resolve(tags, key, effective)
        if value is not None and effective:
            value = VALUE_ALIASES.get(key, {}).get(value, value)
        if value is None:
            found.append(("missing_required_tag", key))
        elif value.strip() == "":
            found.append(("empty_value", key))
        elif not value_ok(key, value):
            kind = "invalid_format" if key == "CostCenter" else "invalid_value"
            found.append((kind, key))
    if not effective:
        for key in variants(tags):
            found.append(("misnamed_key", key))
    for k in tags:
        if k.lower() == "tmp":
            found.append(("prohibited_tag", "tmp"))
    return found


def tally(effective):
    compliant = 0
    kinds, keys = {}, {}
    total = 0
    for _, rtype, _, tags in created:
        vs = evaluate(rtype, tags, effective)
        if not vs:
            compliant += 1
        total += len(vs)
        for kind, key in vs:
            kinds[kind] = kinds.get(kind, 0) + 1
            keys[key] = keys.get(key, 0) + 1
    return compliant, total, kinds, keys


eff_ok, eff_total, eff_kinds, eff_keys = tally(True)
nat_ok, nat_total, nat_kinds, _ = tally(False)
n = len(created)
per_region = {}
for _, _, region, _ in created:
    per_region[region] = per_region.get(region, 0) + 1
buckets = per_region.pop("global", 0)
pages = sum(max(1, math.ceil((count + buckets) / 100)) for count in per_region.values())

print(json.dumps({
    "resources": n,
    "in_scope": n,
    "effective": {"compliant": eff_ok, "non_compliant": n - eff_ok, "violations": eff_total},
    "native": {"compliant": nat_ok, "non_compliant": n - nat_ok, "violations": nat_total},
    "by_kind": eff_kinds,
    "native_by_kind": nat_kinds,
    "by_key": eff_keys,
    "api_calls": pages,
    "duplicates_dropped": buckets * (len(per_region) - 1),
    "arns": sorted(arn for arn, _, _, _ in created),
}))
