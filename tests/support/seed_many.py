#!/usr/bin/env python3
"""Seed a moto server with a large never-tagged estate for timing Resource Explorer listings.

Usage: seed_many.py ENDPOINT_URL INSTANCES

Runs INSTANCES instances in us-east-1 (in launches of at most 1,000), untagged: each brings its
root volume and network interface, so the region holds 3 x INSTANCES resources plus its default
VPC, subnets, security group and route table. Prints {"resources": N} counted through the EC2
API (no Tagwarden code, not the Resource Explorer stub).
"""

import json
import sys

import boto3

ENDPOINT, INSTANCES = sys.argv[1], int(sys.argv[2])
ec2 = boto3.client(
    "ec2",
    region_name="us-east-1",
    endpoint_url=ENDPOINT,
    aws_access_key_id="seed",
    aws_secret_access_key="seed",
)
left = INSTANCES
while left > 0:
    batch = min(left, 1000)
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=batch, MaxCount=batch)
    left -= batch


def listed(method, key, size=lambda item: 1):
    """Items of a paginated Describe call (every page)."""
    total, token = 0, None
    while True:
        page = getattr(ec2, method)(**({"NextToken": token} if token else {}))
        total += sum(size(item) for item in page[key])
        token = page.get("NextToken")
        if not token:
            return total


resources = (
    listed("describe_instances", "Reservations", lambda r: len(r["Instances"]))
    + listed("describe_volumes", "Volumes")
    + listed("describe_network_interfaces", "NetworkInterfaces")
    + listed("describe_vpcs", "Vpcs")
    + listed("describe_subnets", "Subnets")
    + listed("describe_security_groups", "SecurityGroups")
    + listed("describe_route_tables", "RouteTables")
)
print(json.dumps({"resources": resources}))
