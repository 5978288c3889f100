//! The AWS provider against a real AWS look-alike (moto): a seeded two-region estate, scanned
//! over the CLI and over MCP, must give exactly what an independent recount says, with API calls
//! equal to the pages needed.

use std::sync::OnceLock;

use crate::common::moto::{Moto, env_refs};
use crate::common::{StdioClient, check_json, fixture, path_str};
use serde_json::{Value, json};

/// One moto per test binary, seeded once; tests only read from it.
fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start_seeded)
}

fn aws_env(m: &Moto) -> Vec<(&'static str, String)> {
    m.env()
}

fn assert_matches_recount(got: &Value, expected: &Value) {
    for field in [
        "resources",
        "in_scope",
        "by_kind",
        "native_by_kind",
        "by_key",
    ] {
        assert_eq!(got[field], expected[field], "{field}");
    }
    for view in ["effective", "native"] {
        for n in ["compliant", "non_compliant", "violations"] {
            assert_eq!(got[view][n], expected[view][n], "{view}.{n}");
        }
    }
}

const REGIONS: &str = "us-east-1,eu-west-1";

#[test]
fn cli_check_equals_the_independent_recount() {
    let m = moto();
    let env = aws_env(m);
    let policy = path_str(&fixture("moto_policy.json"));
    let got = check_json(
        &[
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--limit",
            "0",
        ],
        &env_refs(&env),
    );
    assert_matches_recount(&got, &m.expected);
    let dq = &got["data_quality"];
    // Every part succeeded, but the Tagging API alone never lists never-tagged resources: the
    // answer says so instead of claiming to be complete.
    assert_eq!(dq["failures"], serde_json::json!([]));
    assert_eq!(dq["status"], "partial");
    assert_eq!(dq["coverage"]["complete"], false);
    assert_eq!(dq["coverage"]["never_tagged_included"], false);
    let source = &dq["coverage"]["sources"][0];
    assert_eq!(source["source"], "tagging_api");
    assert_eq!(source["never_tagged"], "tagging_api_only");
    assert_eq!(source["accounts"], serde_json::json!(["123456789012"]));
    assert_eq!(
        source["regions"],
        serde_json::json!(["us-east-1", "eu-west-1"])
    );
    // Auto coverage looks for a Resource Explorer index (one ListIndexes; this account has
    // none, which coverage states): calls = pages needed + 1.
    assert_eq!(
        dq["api_calls"].as_u64(),
        m.expected["api_calls"].as_u64().map(|pages| pages + 1),
        "API calls = pages needed + ListIndexes"
    );
    let explorer = &dq["coverage"]["sources"][1];
    assert_eq!(explorer["source"], "resource_explorer");
    assert!(
        explorer["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no index"),
        "{explorer}"
    );
    assert_eq!(dq["retries"], 0);
    assert_eq!(
        dq["duplicates_dropped"], m.expected["duplicates_dropped"],
        "S3 listed in both regions, kept once"
    );
}

#[test]
fn mcp_check_equals_the_recount_and_reuses_the_scan() {
    let m = moto();
    let env = aws_env(m);
    let policy = path_str(&fixture("moto_policy.json"));
    let (mut c, _) = StdioClient::initialized(
        &[
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--no-prewarm",
        ],
        &env_refs(&env),
    );
    let first = c.call("check_tag_compliance", json!({"limit": 5}))["structuredContent"].clone();
    assert_matches_recount(&first, &m.expected);
    assert_eq!(first["data_quality"]["cache"]["hit"], false);
    let second = c.call("check_tag_compliance", json!({"limit": 5}))["structuredContent"].clone();
    assert_eq!(
        second["data_quality"]["cache"]["hit"], true,
        "the second question reuses the scan"
    );
    assert_eq!(second["effective"], first["effective"]);

    // Every resource the recount knows is in the inventory, with its real ARN.
    let arns: Vec<String> = m.expected["arns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let sample: Vec<&String> = arns.iter().step_by(20).collect();
    let v = c.call("validate_resource_tags", json!({"resource_ids": sample}))["structuredContent"]
        .clone();
    assert_eq!(v["not_found"], json!([]));
    assert_eq!(v["results"].as_array().unwrap().len(), sample.len());

    let refreshed = c.call(
        "check_tag_compliance",
        json!({"limit": 0, "force_refresh": true}),
    )["structuredContent"]
        .clone();
    assert_eq!(refreshed["data_quality"]["cache"]["hit"], false);
    assert_matches_recount(&refreshed, &m.expected);
}

#[test]
fn type_partitions_scan_in_parallel_and_find_the_same_estate() {
    let m = moto();
    let env = aws_env(m);
    let policy = path_str(&fixture("moto_policy.json"));
    let got = check_json(
        &[
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--limit",
            "0",
            "--aws-resource-types",
            "ec2,s3,dynamodb,sqs,sns",
        ],
        &env_refs(&env),
    );
    assert_matches_recount(&got, &m.expected);
    let dq = &got["data_quality"];
    assert_eq!(dq["parts_total"], 10, "2 regions x 5 type filters");
    // us-east-1 ec2 holds 130 resources (2 pages); every other partition fits in one page;
    // and one ListIndexes (auto coverage; no Resource Explorer index here).
    assert_eq!(dq["api_calls"], 11 + 1);
}
