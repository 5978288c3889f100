#!/usr/bin/env python3
"""Seed a moto server for the promotion test, or change one tag on it.

Usage: seed_promote.py ENDPOINT_URL
       seed_promote.py ENDPOINT_URL --tag ARN KEY VALUE   (an EC2 instance's tag, out of band)
       seed_promote.py ENDPOINT_URL --accounts            (two accounts, for a writer role)

Seeds us-east-1 under tests/fixtures/moto_policy.json (Environment everywhere; CostCenter on
ec2 and s3, CC-[0-9]{4}; Owner on sqs): instances missing CostCenter, one with a valid
CostCenter, one with an invalid one; buckets missing CostCenter; a queue missing Owner. Every
resource carries a tag, so GetResources lists it. Prints the ARNs by role as JSON.
"""

import json
import sys

import boto3

ENDPOINT = sys.argv[1]
ACCOUNT = "123456789012"
REGION = "us-east-1"


def client(service, creds=None):
    keys = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=ENDPOINT,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys.get("SessionToken"),
    )


def kv(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


if len(sys.argv) == 6 and sys.argv[2] == "--tag":
    instance = sys.argv[3].rsplit("/", 1)[1]
    client("ec2").create_tags(Resources=[instance], Tags=[{"Key": sys.argv[4], "Value": sys.argv[5]}])
    print("{}")
    sys.exit(0)

if len(sys.argv) == 3 and sys.argv[2] == "--accounts":
    # One instance missing CostCenter in the caller's account; an instance and a bucket
    # missing it in a member account, made through a role there (moto maps assumed-role
    # credentials to the role's account).
    MEMBER = "222222222222"
    sts = client("sts")
    member = sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/Seeder",
                             RoleSessionName="seed")["Credentials"]
    out = {"own_account": ACCOUNT, "member_account": MEMBER}
    for name, creds, account in [("own", None, ACCOUNT), ("member", member, MEMBER)]:
        ec2 = client("ec2", creds)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
        ec2.create_tags(Resources=[inst["InstanceId"]], Tags=kv({"Environment": "production"}))
        out[f"{name}_instance"] = f"arn:aws:ec2:{REGION}:{account}:instance/{inst['InstanceId']}"
    s3 = client("s3", member)
    s3.create_bucket(Bucket="member-bucket")
    s3.put_bucket_tagging(Bucket="member-bucket", Tagging={"TagSet": kv({"Environment": "staging"})})
    out["member_bucket"] = "arn:aws:s3:::member-bucket"
    print(json.dumps(out))
    sys.exit(0)

ec2 = client("ec2")
image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
instances = ec2.run_instances(ImageId=image, MinCount=4, MaxCount=4)["Instances"]
profiles = [
    {"Environment": "production", "Name": "web-0"},                    # missing CostCenter
    {"Environment": "production", "Name": "web-1"},                    # missing CostCenter
    {"Environment": "production", "CostCenter": "CC-9999"},            # valid CostCenter
    {"Environment": "production", "CostCenter": "bad"},                # invalid CostCenter
]
arns = []
for inst, tags in zip(instances, profiles):
    ec2.create_tags(Resources=[inst["InstanceId"]], Tags=kv(tags))
    arns.append(f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{inst['InstanceId']}")

s3 = client("s3")
buckets = []
for i in range(2):
    name = f"promote-bucket-{i}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": kv({"Environment": "staging"})})
    buckets.append(f"arn:aws:s3:::{name}")

sqs = client("sqs")
url = sqs.create_queue(QueueName="promote-queue")["QueueUrl"]
sqs.tag_queue(QueueUrl=url, Tags={"Environment": "production"})
queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:promote-queue"

print(json.dumps({
    "missing": arns[:2],
    "valid_native": arns[2],
    "invalid_native": arns[3],
    "buckets": buckets,
    "queue": queue,
}))
