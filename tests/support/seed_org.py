#!/usr/bin/env python3
"""Seed a moto server with an AWS Organization and print an independent recount.

Usage: seed_org.py ENDPOINT_URL

Creates an organisation in the caller's account (123456789012, the management account) and
three member accounts (prod, staging, sandbox), then, through
`OrganizationAccountAccessRole` assumed in each account (moto maps assumed-role credentials to
that account), creates tagged EC2 volumes in us-east-1 and eu-west-1, plus a few volumes that
were never tagged (the test server's GetResources leaves them out, as AWS does).

Prints, without any Tagwarden code, what a scan with tests/fixtures/moto_policy.json must
report per account: resources (the Tagging API's view: tagged ones), compliant and
non-compliant on effective tags, and GetResources pages per region (100 resources a page).
"""

import json
import math
import sys

import boto3

ENDPOINT = sys.argv[1]
MANAGEMENT = "123456789012"
REGIONS = ["us-east-1", "eu-west-1"]
ROLE = "OrganizationAccountAccessRole"

# Tag profiles and whether each complies with moto_policy.json for an ec2:volume on its
# effective tags (Environment production|staging, alias env, value prod → production;
# CostCenter CC-dddd). Labelled by hand.
PROFILES = [
    ({"Environment": "production", "CostCenter": "CC-1234"}, True),
    ({"Environment": "qa", "CostCenter": "CC-1234"}, False),      # value not allowed
    ({"Name": "orphan"}, False),                                   # both keys missing
    ({"env": "prod", "CostCenter": "CC-0001"}, True),              # alias key and value
    ({"Environment": "staging", "CostCenter": "cc-1"}, False),     # bad format
]


def client(service, region, creds=None):
    keys = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys.get("SessionToken"),
    )


org = client("organizations", "us-east-1")
org.create_organization(FeatureSet="ALL")
accounts = [{"id": MANAGEMENT, "name": "management"}]
for name in ["prod", "staging", "sandbox"]:
    status = org.create_account(Email=f"{name}@example.com", AccountName=name)
    accounts.append({"id": status["CreateAccountStatus"]["AccountId"], "name": name})
# The management account's name is what ListAccounts says.
listed = {a["Id"]: a["Name"] for a in org.list_accounts()["Accounts"]}
accounts[0]["name"] = listed.get(MANAGEMENT, "management")

sts = client("sts", "us-east-1")
for k, account in enumerate(accounts):
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account['id']}:role/{ROLE}", RoleSessionName="seed"
    )["Credentials"]
    account.update(resources=0, compliant=0, pages={}, by_region={}, never_tagged=0)
    for r, region in enumerate(REGIONS):
        ec2 = client("ec2", region, creds)
        # Different counts everywhere, and the management account's us-east-1 needs 2 pages.
        count = 130 if k == 0 and r == 0 else 20 + 13 * k + 7 * r
        for i in range(count):
            tags, ok = PROFILES[(i + k) % len(PROFILES)]
            ec2.create_volume(
                Size=1,
                AvailabilityZone=region + "a",
                TagSpecifications=[{
                    "ResourceType": "volume",
                    "Tags": [{"Key": key, "Value": v} for key, v in tags.items()],
                }],
            )
            account["compliant"] += ok
        for _ in range(2 + k):
            ec2.create_volume(Size=1, AvailabilityZone=region + "a")
            account["never_tagged"] += 1
        account["resources"] += count
        account["by_region"][region] = count
        account["pages"][region] = max(1, math.ceil(count / 100))
    account["non_compliant"] = account["resources"] - account["compliant"]

print(json.dumps({"management": MANAGEMENT, "regions": REGIONS, "accounts": accounts}))
