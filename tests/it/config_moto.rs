//! The AWS Config source (`--aws-coverage config`) against the test moto server's Config
//! advanced query (tests/support/moto_server.py: real JSON-string results, `WHERE` evaluated,
//! `Limit`/`NextToken` pages). An estate of 2 accounts × 2 regions in which a third of the
//! resources were never tagged, served through an aggregator: every figure below is counted by
//! hand from the estate's design, and API calls must equal the pages the answer needs.

use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::{Value, json};

use crate::common::moto::{Moto, env_refs};
use crate::common::{StdioClient, check_json, fixture, path_str, run};

const A: &str = "111111111111";
const B: &str = "222222222222";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const AGGREGATOR: &str = "org-all";

/// One moto for this module; tests take turns (they count the calls it serves).
fn moto() -> (&'static Moto, MutexGuard<'static, ()>) {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let m = MOTO.get_or_init(|| {
        let m = Moto::start_bare();
        m.set_config_estate(&json!({
            "aggregators": {AGGREGATOR: org_estate()},
            "recorders": recorders(),
        }));
        m
    });
    (m, turn)
}

/// Config's tags: a list of `{key, value}` (and `tag`, as Config adds).
fn tags(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v, "tag": format!("{k}={v}")}))
            .collect(),
    )
}

fn item(
    config_type: &str,
    id: &str,
    arn: Option<String>,
    account: &str,
    region: &str,
    t: Value,
) -> Value {
    let mut v = json!({
        "resourceId": id, "resourceName": id, "resourceType": config_type,
        "accountId": account, "awsRegion": region, "tags": t,
        "configurationItemCaptureTime": "2026-01-01T00:00:00.000Z",
    });
    if let Some(arn) = arn {
        v["arn"] = json!(arn);
    }
    v
}

/// The organisation's estate, per account × region: 12 instances, 9 volumes, 6 DynamoDB tables
/// and 3 Lambda functions, each type cycling good / partly tagged / never tagged (10 of each);
/// per account: 3 S3 buckets (good, partial, never) and 1 never-tagged IAM role. Under
/// tests/fixtures/moto_policy.json: 128 resources, 42 compliant, 86 not, 44 never tagged.
/// Config's own compliance records (2 per account × region) are in the aggregator too and must
/// not be counted; one volume comes without an ARN (Tagwarden builds it).
fn org_estate() -> Vec<Value> {
    let mut items = Vec::new();
    for account in [A, B] {
        for region in REGIONS {
            let ec2 =
                |kind: &str, id: &str| Some(format!("arn:aws:ec2:{region}:{account}:{kind}/{id}"));
            for i in 0..12 {
                let id = format!("i-{account}-{region}-{i}");
                let t = match i % 3 {
                    0 => tags(&[("Environment", "production"), ("CostCenter", "CC-1234")]),
                    1 => tags(&[("Environment", "staging")]),
                    _ => json!([]),
                };
                items.push(item(
                    "AWS::EC2::Instance",
                    &id,
                    ec2("instance", &id),
                    account,
                    region,
                    t,
                ));
            }
            for i in 0..9 {
                let id = format!("vol-{account}-{region}-{i}");
                let t = match i % 3 {
                    0 => tags(&[("Environment", "staging"), ("CostCenter", "CC-0042")]),
                    1 => tags(&[("CostCenter", "CC-0042")]),
                    _ => json!([]),
                };
                // The first volume of account A in us-east-1 comes without an ARN.
                let arn = if account == A && region == "us-east-1" && i == 0 {
                    None
                } else {
                    ec2("volume", &id)
                };
                items.push(item("AWS::EC2::Volume", &id, arn, account, region, t));
            }
            for i in 0..6 {
                let name = format!("orders-{region}-{i}");
                let t = match i % 3 {
                    0 => tags(&[("Environment", "production"), ("Owner", "team-a")]),
                    1 => tags(&[("Environment", "prod")]),
                    _ => json!([]),
                };
                let arn = format!("arn:aws:dynamodb:{region}:{account}:table/{name}");
                items.push(item(
                    "AWS::DynamoDB::Table",
                    &name,
                    Some(arn),
                    account,
                    region,
                    t,
                ));
            }
            for i in 0..3 {
                let name = format!("settle-{region}-{i}");
                let t = match i % 3 {
                    0 => tags(&[("env", "staging")]),
                    1 => tags(&[("Environment", "qa")]),
                    _ => json!([]),
                };
                let arn = format!("arn:aws:lambda:{region}:{account}:function:{name}");
                items.push(item(
                    "AWS::Lambda::Function",
                    &name,
                    Some(arn),
                    account,
                    region,
                    t,
                ));
            }
            for i in 0..2 {
                let id = format!("AWS::EC2::Instance/i-{account}-{region}-{i}");
                let mut record = item(
                    "AWS::Config::ResourceCompliance",
                    &id,
                    Some(format!(
                        "arn:aws:config:{region}:{account}:resource-compliance/{id}"
                    )),
                    account,
                    region,
                    json!([]),
                );
                record["configuration"] = json!({"complianceType": "NON_COMPLIANT"});
                items.push(record);
            }
        }
        for (i, (region, t)) in [
            (
                "us-east-1",
                tags(&[("Environment", "staging"), ("CostCenter", "CC-0001")]),
            ),
            ("eu-west-1", tags(&[("CostCenter", "CC-0001")])),
            ("us-east-1", json!([])),
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("bucket-{account}-{i}");
            let arn = format!("arn:aws:s3:::{name}");
            items.push(item(
                "AWS::S3::Bucket",
                &name,
                Some(arn),
                account,
                region,
                t,
            ));
        }
        let arn = format!("arn:aws:iam::{account}:role/deploy");
        items.push(item(
            "AWS::IAM::Role",
            "AROADEPLOY",
            Some(arn),
            account,
            "global",
            json!([]),
        ));
    }
    items
}

/// The caller's own account (moto's 123456789012), one recorder per region: 3 instances in
/// us-east-1 (1 good, 1 never tagged, 1 partial) plus the global IAM role its recorder records,
/// 2 instances in eu-west-1 (never tagged) plus a queue Config returned without an ARN.
fn recorders() -> Value {
    let me = "123456789012";
    let ec2 = |region: &str, id: &str| Some(format!("arn:aws:ec2:{region}:{me}:instance/{id}"));
    json!({
        "us-east-1": [
            item("AWS::EC2::Instance", "i-1", ec2("us-east-1", "i-1"), me, "us-east-1",
                 tags(&[("Environment", "production"), ("CostCenter", "CC-1234")])),
            item("AWS::EC2::Instance", "i-2", ec2("us-east-1", "i-2"), me, "us-east-1", json!([])),
            item("AWS::EC2::Instance", "i-3", ec2("us-east-1", "i-3"), me, "us-east-1",
                 tags(&[("Environment", "staging")])),
            item("AWS::IAM::Role", "AROA1", Some(format!("arn:aws:iam::{me}:role/ci")), me, "global",
                 tags(&[("Environment", "production")])),
        ],
        "eu-west-1": [
            item("AWS::EC2::Instance", "i-4", ec2("eu-west-1", "i-4"), me, "eu-west-1", json!([])),
            item("AWS::EC2::Instance", "i-5", ec2("eu-west-1", "i-5"), me, "eu-west-1", json!([])),
            item("AWS::SQS::Queue", "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs", None, me,
                 "eu-west-1", json!([])),
        ],
    })
}

fn policy() -> String {
    path_str(&fixture("moto_policy.json"))
}

#[test]
fn an_aggregator_lists_every_account_and_region_with_never_tagged_resources() {
    let (m, _turn) = moto();
    m.set_config_estate(
        &json!({"aggregators": {AGGREGATOR: org_estate()}, "recorders": recorders()}),
    );
    let env = m.env();
    let before = m.calls_of("SelectAggregateResourceConfig");
    let policy = policy();
    let got = check_json(
        &[
            "--aws-config-aggregator",
            AGGREGATOR,
            "--policy",
            &policy,
            "--limit",
            "0",
        ],
        &env_refs(&env),
    );
    // Hand counts (see org_estate): 128 resources, 42 compliant, 86 not.
    assert_eq!(got["resources"], 128, "{got}");
    assert_eq!(got["in_scope"], 128);
    assert_eq!(got["effective"]["compliant"], 42);
    assert_eq!(got["effective"]["non_compliant"], 86);

    // 128 results at 100 a page: 2 pages, 2 calls, nothing else.
    let calls = m.calls_of("SelectAggregateResourceConfig") - before;
    assert_eq!(calls, 2, "calls = pages");
    let dq = &got["data_quality"];
    assert_eq!(dq["api_calls"], 2);
    assert_eq!(dq["retries"], 0);
    assert_eq!(dq["status"], "complete", "{dq}");
    let queries = m.config_queries();
    assert_eq!(queries.len(), 2);
    assert_eq!(queries[0]["operation"], "SelectAggregateResourceConfig");
    assert_eq!(queries[0]["limit"], 100);
    assert!(
        queries[1]["next_token"].is_string(),
        "the second page is asked with the token"
    );
    let expression = queries[0]["expression"].as_str().unwrap();
    assert!(expression.contains("tags"), "{expression}");
    assert!(expression.contains("NOT resourceType IN ('AWS::Config::ResourceCompliance'"));

    let coverage = &dq["coverage"];
    assert_eq!(coverage["complete"], true, "{coverage}");
    assert_eq!(coverage["never_tagged_included"], true);
    assert_eq!(coverage["warnings"], json!([]));
    let source = &coverage["sources"][0];
    assert_eq!(source["source"], "aws_config");
    assert_eq!(source["never_tagged"], "included");
    assert_eq!(source["resources"], 128);
    assert_eq!(source["accounts"], json!([A, B]));
    assert_eq!(
        source["regions"],
        json!(["eu-west-1", "global", "us-east-1"])
    );
    let note = source["note"].as_str().unwrap();
    assert!(
        note.contains("only the resource types its configuration recorder records"),
        "{note}"
    );
    assert!(note.contains("aggregator org-all"), "{note}");
    assert!(note.contains("1 ARN built"), "{note}");
}

#[test]
fn find_untagged_counts_every_never_tagged_resource_over_mcp() {
    let (m, _turn) = moto();
    m.set_config_estate(
        &json!({"aggregators": {AGGREGATOR: org_estate()}, "recorders": recorders()}),
    );
    let env = m.env();
    let policy = policy();
    let (mut c, _) = StdioClient::initialized(
        &[
            "--aws-coverage",
            "config",
            "--aws-config-aggregator",
            AGGREGATOR,
            "--policy",
            &policy,
            "--no-prewarm",
        ],
        &env_refs(&env),
    );
    let untagged = c.call(
        "find_untagged_resources",
        json!({"only_without_any_tags": true, "limit": 5}),
    )["structuredContent"]
        .clone();
    // 10 never tagged per account × region, plus a bucket and the IAM role per account.
    assert_eq!(untagged["total"], 44, "{untagged}");
    assert_eq!(untagged["by_type"]["ec2:instance"], 16);
    assert_eq!(untagged["by_type"]["ec2:volume"], 12);
    assert_eq!(untagged["by_type"]["dynamodb:table"], 8);
    assert_eq!(untagged["by_type"]["lambda:function"], 4);
    assert_eq!(untagged["by_type"]["s3:bucket"], 2);
    assert_eq!(untagged["by_type"]["iam:role"], 2);
    let compliance =
        c.call("check_tag_compliance", json!({"limit": 0}))["structuredContent"].clone();
    assert_eq!(compliance["effective"]["compliant"], 42);
    assert_eq!(
        compliance["data_quality"]["coverage"]["sources"][0]["source"],
        "aws_config"
    );
    // The built ARN is the volume's real one.
    let v = c.call(
        "validate_resource_tags",
        json!({"resource_ids": [format!("arn:aws:ec2:us-east-1:{A}:volume/vol-{A}-us-east-1-0")]}),
    )["structuredContent"]
        .clone();
    assert_eq!(v["not_found"], json!([]), "{v}");
}

#[test]
fn types_and_regions_narrow_the_aggregator_query() {
    let (m, _turn) = moto();
    m.set_config_estate(
        &json!({"aggregators": {AGGREGATOR: org_estate()}, "recorders": recorders()}),
    );
    let env = m.env();
    let policy = policy();
    let got = check_json(
        &[
            "--aws-config-aggregator",
            AGGREGATOR,
            "--regions",
            "us-east-1",
            "--aws-resource-types",
            "ec2:instance,s3",
            "--policy",
            &policy,
            "--limit",
            "0",
        ],
        &env_refs(&env),
    );
    // us-east-1: 12 instances per account; buckets 0 and 2 of each account are in us-east-1.
    assert_eq!(got["resources"], 28, "{got}");
    // Instances 4 good per account; bucket 0 good per account.
    assert_eq!(got["effective"]["compliant"], 10);
    let queries = m.config_queries();
    assert_eq!(queries.len(), 1, "28 results: one page");
    assert_eq!(
        queries[0]["expression"],
        "SELECT resourceId, resourceName, resourceType, arn, accountId, awsRegion, tags WHERE \
         (resourceType IN ('AWS::EC2::Instance') OR resourceType LIKE 'AWS::S3::%') AND \
         awsRegion IN ('us-east-1', 'global')"
    );
    let source = &got["data_quality"]["coverage"]["sources"][0];
    assert_eq!(source["regions"], json!(["us-east-1"]));
    assert_eq!(source["resource_types"], json!(["ec2:instance", "s3"]));
}

#[test]
fn without_an_aggregator_each_region_recorder_is_queried_and_gaps_are_named() {
    let (m, _turn) = moto();
    m.set_config_estate(
        &json!({"aggregators": {AGGREGATOR: org_estate()}, "recorders": recorders()}),
    );
    let env = m.env();
    let before = m.calls_of("SelectResourceConfig");
    let policy = policy();
    let got = check_json(
        &[
            "--aws-coverage",
            "config",
            "--regions",
            "us-east-1,eu-west-1",
            "--policy",
            &policy,
            "--limit",
            "0",
        ],
        &env_refs(&env),
    );
    // us-east-1: 3 instances + the IAM role; eu-west-1: 2 instances (the queue has no ARN).
    assert_eq!(got["resources"], 6, "{got}");
    // i-1 and the role (Environment only applies to it) are compliant.
    assert_eq!(got["effective"]["compliant"], 2);
    assert_eq!(
        m.calls_of("SelectResourceConfig") - before,
        2,
        "one page per region"
    );
    let mut regions: Vec<String> = m
        .config_queries()
        .iter()
        .map(|q| q["scope"][1].as_str().unwrap().to_string())
        .collect();
    regions.sort();
    assert_eq!(
        regions,
        vec!["eu-west-1", "us-east-1"],
        "each region asked once"
    );
    let dq = &got["data_quality"];
    let source = &dq["coverage"]["sources"][0];
    assert_eq!(source["accounts"], json!(["123456789012"]));
    assert_eq!(source["regions"], json!(["us-east-1", "eu-west-1"]));
    let note = source["note"].as_str().unwrap();
    assert!(note.contains("in the caller's account"), "{note}");
    // The queue is a resource the answer leaves out: coverage is not complete, and says why.
    assert_eq!(
        source["failed"][0]["scope"],
        "1 resource without an ARN (AWS::SQS::Queue)"
    );
    assert_eq!(dq["coverage"]["complete"], false);
    assert_eq!(dq["status"], "partial");
    let warnings = dq["coverage"]["warnings"].to_string();
    assert!(
        warnings.contains("AWS Config did not cover 1 resource without an ARN (AWS::SQS::Queue)"),
        "{warnings}"
    );
}

#[test]
fn an_unknown_aggregator_is_an_error_that_names_the_flag() {
    let (m, _turn) = moto();
    let env = m.env();
    let policy = policy();
    let (code, _stdout, stderr) = run(
        &[
            "check",
            "--aws-config-aggregator",
            "no-such-aggregator",
            "--policy",
            &policy,
        ],
        &env_refs(&env),
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("no-such-aggregator"), "{stderr}");
    assert!(
        stderr.contains("NoSuchConfigurationAggregatorException"),
        "{stderr}"
    );
    assert!(stderr.contains("--aws-config-aggregator"), "{stderr}");
}

#[test]
fn an_aggregator_with_another_mode_is_refused() {
    let (code, _stdout, stderr) = run(
        &[
            "check",
            "--aws-coverage",
            "tagging",
            "--aws-config-aggregator",
            "org-all",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--aws-config-aggregator is for --aws-coverage config"),
        "{stderr}"
    );
}

#[test]
fn a_second_server_reuses_the_config_pages_from_redis() {
    let (m, _turn) = moto();
    m.set_config_estate(
        &json!({"aggregators": {AGGREGATOR: org_estate()}, "recorders": recorders()}),
    );
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let prefix = format!("tagwarden-test:config:{}:{nanos}", std::process::id());
    let env = m.env();
    let mut env = env_refs(&env);
    env.extend_from_slice(&[
        ("REDIS_URL", url.as_str()),
        ("TAGWARDEN_CACHE_PREFIX", prefix.as_str()),
    ]);
    let policy = policy();
    let args = [
        "--aws-config-aggregator",
        AGGREGATOR,
        "--policy",
        &policy,
        "--no-prewarm",
    ];

    let (mut a, _) = StdioClient::initialized(&args, &env);
    let before = m.calls_of("SelectAggregateResourceConfig");
    let first = a.call("check_tag_compliance", json!({"limit": 0}))["structuredContent"].clone();
    assert_eq!(m.calls_of("SelectAggregateResourceConfig") - before, 2);
    assert_eq!(first["data_quality"]["cache"]["shared_cache"], "available");

    // Another question, so only the query's pages can come from Redis, not the answer.
    let (mut b, _) = StdioClient::initialized(&args, &env);
    let before = m.calls();
    let second = b.call(
        "check_tag_compliance",
        json!({"limit": 1, "min_severity": "high"}),
    )["structuredContent"]
        .clone();
    assert_eq!(m.calls() - before, 0, "the pages came from Redis");
    let dq = &second["data_quality"];
    assert_eq!(dq["parts_from_shared_cache"], 1, "{dq}");
    assert_eq!(dq["parts_total"], 1);
    assert_eq!(dq["api_calls"], 0);
    assert_eq!(dq["resources_scanned"], 128);
    assert_eq!(dq["coverage"]["sources"][0]["accounts"], json!([A, B]));
}
