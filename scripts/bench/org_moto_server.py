#!/usr/bin/env python3
"""The tests' moto server (tests/support/moto_server.py: counts requests by operation, serves
GetResources as AWS does) holding an AWS Organization: ACCOUNTS accounts (the management account
123456789012 and ACCOUNTS-1 members), each with PER_REGION tagged EBS volumes in every region.

Usage: org_moto_server.py PORT ACCOUNTS REGIONS PER_REGION   (REGIONS comma-separated)

The estate is written straight into moto's backends in this process before it serves (40,000
volumes through the API would take most of an hour; this takes seconds). Prints one JSON line
on stdout — the account ids and the seed time — then serves until its parent exits.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "support"))

import moto_server  # noqa: E402  (the tests' counting, AWS-like server)
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.organizations.models import organizations_backends  # noqa: E402

PORT, ACCOUNTS = int(sys.argv[1]), int(sys.argv[2])
REGIONS, PER_REGION = sys.argv[3].split(","), int(sys.argv[4])
MANAGEMENT = "123456789012"
PROFILES = [
    {"Environment": "production", "CostCenter": "CC-1234", "Owner": "a@example.com"},
    {"Environment": "qa", "CostCenter": "CC-1234"},
    {"Name": "orphan"},
    {"env": "prod", "CostCenter": "CC-0001"},
]

started = time.perf_counter()
org = organizations_backends[MANAGEMENT]["aws"]
org.create_organization(region="us-east-1", FeatureSet="ALL")
ids = [MANAGEMENT]
for i in range(1, ACCOUNTS):
    status = org.create_account(AccountName=f"acct-{i:02d}", Email=f"acct-{i:02d}@example.com")
    ids.append(status["CreateAccountStatus"]["AccountId"])
for account in ids:
    for region in REGIONS:
        ec2 = ec2_backends[account][region]
        by_profile = {}
        for i in range(PER_REGION):
            volume = ec2.create_volume(size=1, zone_name=region + "a")
            by_profile.setdefault(i % len(PROFILES), []).append(volume.id)
        for p, volume_ids in by_profile.items():
            ec2.create_tags(volume_ids, PROFILES[p])
seed_seconds = round(time.perf_counter() - started, 2)
print(json.dumps({"accounts": ids, "regions": REGIONS, "per_region": PER_REGION,
                  "seed_seconds": seed_seconds}), flush=True)
moto_server.serve(PORT)
