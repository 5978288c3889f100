#!/usr/bin/env python3
"""Seed a moto server with COUNT tagged resources in us-east-1: `seed_estate.py ENDPOINT COUNT`.

Mixed types (EC2 volumes and instances, S3 buckets, DynamoDB tables, SQS queues, SNS topics),
each created untagged and then tagged with one of a few tag profiles (good, missing, alias,
bad values, ...). Every resource carries at most 4 tags, so moto's TagsPerPage quirk never
splits a 100-resource GetResources page: a full scan needs ceil(COUNT / 100) pages.

Prints JSON: resources made per type, the count the Tagging API lists (read back with boto3),
the pages a scan needs, and the seconds seeding took.
"""

import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

ENDPOINT, COUNT = sys.argv[1], int(sys.argv[2])
REGION = "us-east-1"

# Share of the estate per type (the rest goes to EC2 volumes).
SHARES = {"ec2:instance": 0.15, "s3:bucket": 0.15, "dynamodb:table": 0.15,
          "sqs:queue": 0.15, "sns:topic": 0.15}

PROFILES = [  # at most 4 tags each
    {"Environment": "production", "CostCenter": "CC-1234", "Owner": "team-a", "Application": "x"},
    {"Name": "orphan"},
    {"env": "staging", "CostCenter": "CC-0001", "Owner": "team-b"},
    {"Environment": "prod", "CostCenter": "CC-1234", "Owner": "team-c"},
    {"Environment": "qa", "CostCenter": "cc-12", "Owner": "team-d"},
    {"Environment": "", "CostCenter": "CC-1234", "Owner": "team-e"},
    {"Environment": "staging", "CostCenter": "CC-2222", "Owner": "o", "tmp": "1"},
    {"ENVIRONMENT": "production", "costcenter": "CC-3333", "Owner": "team-f"},
]


def client(service):
    return boto3.client(service, region_name=REGION, endpoint_url=ENDPOINT,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def kv(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def profile(i):
    return PROFILES[i % len(PROFILES)]


def volume(i):
    ec2 = client("ec2")
    vol = ec2.create_volume(Size=8, AvailabilityZone=REGION + "a")
    ec2.create_tags(Resources=[vol["VolumeId"]], Tags=kv(profile(i)))


def instances(first, count, image):
    ec2 = client("ec2")
    made = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count)["Instances"]
    for n, inst in enumerate(made):
        ec2.create_tags(Resources=[inst["InstanceId"]], Tags=kv(profile(first + n)))


def bucket(i):
    s3 = client("s3")
    s3.create_bucket(Bucket=f"bench-bucket-{i:05d}")
    s3.put_bucket_tagging(Bucket=f"bench-bucket-{i:05d}", Tagging={"TagSet": kv(profile(i))})


def table(i):
    ddb = client("dynamodb")
    arn = ddb.create_table(
        TableName=f"bench-table-{i:05d}",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=kv(profile(i)))


def queue(i):
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=f"bench-queue-{i:05d}")["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags=profile(i))


def topic(i):
    sns = client("sns")
    arn = sns.create_topic(Name=f"bench-topic-{i:05d}")["TopicArn"]
    sns.tag_resource(ResourceArn=arn, Tags=kv(profile(i)))


def listed_by_tagging_api():
    pages = client("resourcegroupstaggingapi").get_paginator("get_resources")
    return sum(len(p["ResourceTagMappingList"])
               for p in pages.paginate(ResourcesPerPage=100, TagsPerPage=500))


started = time.time()
plan = {t: int(COUNT * share) for t, share in SHARES.items()}
plan["ec2:volume"] = COUNT - sum(plan.values())

image = client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
jobs = []
with ThreadPoolExecutor(max_workers=8) as pool:
    for maker, kind in ((volume, "ec2:volume"), (bucket, "s3:bucket"), (table, "dynamodb:table"),
                        (queue, "sqs:queue"), (topic, "sns:topic")):
        jobs += [pool.submit(maker, i) for i in range(plan[kind])]
    for first in range(0, plan["ec2:instance"], 25):
        jobs.append(pool.submit(instances, first, min(25, plan["ec2:instance"] - first), image))
    for job in jobs:
        job.result()  # re-raises a failed call

listed = listed_by_tagging_api()
print(json.dumps({
    "resources": COUNT,
    "by_type": plan,
    "listed_by_tagging_api": listed,
    "pages_expected": math.ceil(listed / 100),
    "seed_seconds": round(time.time() - started, 1),
}))
