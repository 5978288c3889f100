//! Policy interchange through the real binary: `policy import` of the fixture AWS tag policy
//! (file, effective policy, and from a stub AWS Organizations endpoint), then `check` and
//! `validate_resource_tags` on the fixture inventory giving AWS's own verdicts; `policy export
//! --aws` read back; and every generated Cloud Custodian file accepted by `custodian validate`
//! (Cloud Custodian from the `.venv-c7n` virtualenv that scripts/test.sh creates).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::{StdioClient, fixture, path_str, repo, run};

const INVENTORY: &str = "aws_tag_policy_inventory.json";

/// The resources of the fixture inventory AWS's rules find compliant (computed by hand in
/// `src/policy/interchange/tests.rs`, resource by resource): the native view.
const AWS_COMPLIANT: &[&str] = &[
    "i-good",
    "i-wild",
    "vol-ok",
    "bucket-ok",
    "db-ok",
    "fn-nothing",
    "queue-ok",
];
/// The effective view also reads the four case-variant keys as their key.
const EFFECTIVE_COMPLIANT: &[&str] = &[
    "i-good",
    "i-wild",
    "i-case",
    "vol-ok",
    "bucket-ok",
    "bucket-case",
    "db-ok",
    "fn-nothing",
    "fn-dataclass-case",
    "table-env-case",
    "queue-ok",
];

fn short(id: &str) -> String {
    id.rsplit([':', '/']).next().unwrap_or(id).to_string()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// `policy import --aws-file FILE --out OUT`: the stderr report.
fn import_to(file: &Path, out: &Path) -> String {
    let (code, stdout, stderr) = run(
        &[
            "policy",
            "import",
            "--aws-file",
            &path_str(file),
            "--out",
            &path_str(out),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.is_empty(),
        "with --out nothing goes to stdout: {stdout}"
    );
    stderr
}

/// Every fixture resource's verdicts in both views, through `validate_resource_tags`.
fn verdicts(policy: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let inventory: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(INVENTORY)).unwrap()).unwrap();
    let ids: Vec<Value> = inventory["ResourceTagMappingList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ResourceARN"].clone())
        .collect();
    let (mut client, _) = StdioClient::initialized(
        &[
            "--inventory",
            &path_str(&fixture(INVENTORY)),
            "--policy",
            &path_str(policy),
        ],
        &[],
    );
    let answer = client.call("validate_resource_tags", json!({"resource_ids": ids}));
    let out = &answer["structuredContent"];
    assert_eq!(out["results"].as_array().unwrap().len(), 18, "{answer}");
    let mut native = BTreeSet::new();
    let mut effective = BTreeSet::new();
    for r in out["results"].as_array().unwrap() {
        assert_eq!(r["in_scope"], true, "scope [\"*\"] judges every type: {r}");
        let id = short(r["resource_id"].as_str().unwrap());
        if r["native_compliant"] == true {
            native.insert(id.clone());
        }
        if r["compliant"] == true {
            effective.insert(id);
        }
    }
    let _ = client.finish();
    (native, effective)
}

#[test]
fn imported_tag_policy_judges_the_inventory_as_aws_does() {
    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("imported.json");
    let stderr = import_to(&fixture("aws_tag_policy.json"), &imported);
    assert!(
        stderr.contains("imported 6 tag policy keys from aws_tag_policy.json: 3 required, 5 checked when present"),
        "{stderr}"
    );
    assert!(
        stderr.contains("9 items not carried over exactly"),
        "{stderr}"
    );
    for line in [
        "  dropped: tags.team.tag_value.@@remove: @@remove takes `legacy` out of",
        "  approximated: tags.project.tag_value.@@append: @@append adds `apollo`, `gemini`",
        "  recorded only: tags.costcenter.enforced_for: AWS blocks non-compliant tagging operations on secretsmanager:*, ec2:instance",
        "  dropped: tags.@@operators_allowed_for_child_policies:",
    ] {
        assert!(stderr.contains(line), "{line} not in {stderr}");
    }

    // `check` on the fixture inventory: 18 resources, all judged; 7 compliant as AWS says
    // (native view), 11 once case variants are read as their keys (effective view).
    let report = crate::common::check_json(
        &[
            "--inventory",
            &path_str(&fixture(INVENTORY)),
            "--policy",
            &path_str(&imported),
            "--limit",
            "200",
        ],
        &[],
    );
    assert_eq!(report["resources"], 18);
    assert_eq!(report["in_scope"], 18);
    assert_eq!(report["native"]["compliant"], AWS_COMPLIANT.len());
    assert_eq!(report["effective"]["compliant"], EFFECTIVE_COMPLIANT.len());
    // The effective violations are on exactly the effective non-compliant resources.
    let failing: BTreeSet<String> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| short(v["resource_id"].as_str().unwrap()))
        .collect();
    let all: BTreeSet<String> = set(&[
        "i-good",
        "i-wild",
        "i-case",
        "i-badval",
        "i-missing",
        "i-empty",
        "vol-ok",
        "snap-noenv",
        "bucket-ok",
        "bucket-case",
        "bucket-owner-bad",
        "db-ok",
        "db-project-bad",
        "fn-nothing",
        "fn-dataclass-case",
        "fn-costcenter-bad",
        "table-env-case",
        "queue-ok",
    ]);
    let expected_failing: BTreeSet<String> =
        all.difference(&set(EFFECTIVE_COMPLIANT)).cloned().collect();
    assert_eq!(failing, expected_failing);
    // Misnamed keys are native-only: i-case, bucket-case, fn-dataclass-case, table-env-case.
    assert_eq!(report["native_by_kind"]["misnamed_key"], 4);
    assert!(report["by_kind"].get("misnamed_key").is_none());

    // Resource by resource, both views.
    let (native, effective) = verdicts(&imported);
    assert_eq!(native, set(AWS_COMPLIANT));
    assert_eq!(effective, set(EFFECTIVE_COMPLIANT));
}

#[test]
fn effective_policy_file_imports_to_stdout() {
    let (code, stdout, stderr) = run(
        &[
            "policy",
            "import",
            "--aws-file",
            &path_str(&fixture("aws_effective_tag_policy.json")),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let policy: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        policy["description"],
        "Imported from the effective AWS Organizations tag policy of 111122223333."
    );
    assert_eq!(policy["scope"], json!(["*"]));
    assert_eq!(policy["required_tags"].as_array().unwrap().len(), 3);
    // Nothing inherited to guess at: only enforced_for and the two general notes.
    assert!(
        stderr.contains("4 items not carried over exactly"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("effective.json");
    std::fs::write(&file, &stdout).unwrap();
    let (native, effective) = verdicts(&file);
    assert_eq!(native, set(AWS_COMPLIANT));
    assert_eq!(effective, set(EFFECTIVE_COMPLIANT));
}

#[test]
fn a_broken_tag_policy_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        r#"{"tags": {"costcenter": {"tag_key": {"@@assign": "Owner"}}}}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["policy", "import", "--aws-file", &path_str(&file)], &[]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("`tags.costcenter.tag_key`: `Owner` must be the policy key `costcenter`"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["policy", "import", "--aws-account", "12345"], &[]);
    assert_eq!(code, 2, "clap refuses a malformed account id: {stderr}");
    assert!(stderr.contains("12-digit"), "{stderr}");
}

/// A stub AWS Organizations endpoint: DescribeEffectivePolicy for 111122223333 answers the
/// fixture's effective policy; any other account has none.
async fn organizations_stub() -> String {
    let fixture_text = std::fs::read_to_string(fixture("aws_effective_tag_policy.json")).unwrap();
    let handle = move |headers: HeaderMap, body: Bytes| {
        let fixture_text = fixture_text.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let request: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let json_type = [("content-type", "application/x-amz-json-1.1")];
            if target != "AWSOrganizationsV20161128.DescribeEffectivePolicy"
                || request["PolicyType"] != "TAG_POLICY"
            {
                return (StatusCode::BAD_REQUEST, json_type, "{}".to_string()).into_response();
            }
            if request["TargetId"] == "111122223333" {
                // The SDK reads the timestamp as epoch seconds in the JSON protocol.
                let mut answer: Value = serde_json::from_str(&fixture_text).unwrap();
                answer["EffectivePolicy"]["LastUpdatedTimestamp"] = json!(1_795_169_700);
                return (StatusCode::OK, json_type, answer.to_string()).into_response();
            }
            let error: Response = (
                StatusCode::BAD_REQUEST,
                json_type,
                json!({"__type": "EffectivePolicyNotFoundException", "Message": "none"})
                    .to_string(),
            )
                .into_response();
            error
        }
    };
    let app = Router::new().route("/", post(handle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn effective_policy_is_read_from_aws_organizations() {
    let url = organizations_stub().await;
    let (ok, missing) = tokio::task::spawn_blocking(move || {
        let env = [
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ];
        (
            run(&["policy", "import", "--aws-account", "111122223333"], &env),
            run(
                &[
                    "policy",
                    "import",
                    "--aws-account",
                    "444455556666",
                    "--aws-max-attempts",
                    "1",
                ],
                &env,
            ),
        )
    })
    .await
    .unwrap();
    let (code, stdout, stderr) = ok;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("from the effective tag policy of 111122223333"),
        "{stderr}"
    );
    let policy: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(policy["last_updated"], "2026-11-20T10:15:00Z");
    let file_import: Value = serde_json::from_str(
        &run(
            &[
                "policy",
                "import",
                "--aws-file",
                &path_str(&fixture("aws_effective_tag_policy.json")),
            ],
            &[],
        )
        .1,
    )
    .unwrap();
    assert_eq!(policy["required_tags"], file_import["required_tags"]);
    assert_eq!(policy["optional_tags"], file_import["optional_tags"]);
    let (code, _, stderr) = missing;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no tag policy applies to account 444455556666"),
        "{stderr}"
    );
}

#[test]
fn aws_export_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("aws.json");
    let (code, stdout, stderr) = run(
        &[
            "policy",
            "export",
            "--aws",
            "--policy",
            "policies/tagging_policy.json",
            "--out",
            &path_str(&exported),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("exported 8 keys of tagging_policy.json as an AWS tag policy"),
        "{stderr}"
    );
    for line in [
        "dropped: required_tags[1].validation_regex: AWS tag policies have no regular expressions",
        "dropped: required_tags[4].when:",
        "dropped: severity: severities and fail_at",
    ] {
        assert!(stderr.contains(line), "{line} not in {stderr}");
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    assert_eq!(
        doc["tags"]["environment"]["tag_key"],
        json!({"@@assign": "Environment"})
    );
    // Application is required on named types: they become report_required_tag_for.
    assert!(doc["tags"]["application"]["report_required_tag_for"]["@@assign"].is_array());
    // The export is a tag policy the importer reads.
    let back = dir.path().join("back.json");
    import_to(&exported, &back);
    let (code, _, stderr) = run(&["policy", "check", &path_str(&back)], &[]);
    assert_eq!(code, 0, "{stderr}");
}

/// Path to a tool in the Cloud Custodian virtualenv (`.venv-c7n`, made by scripts/test.sh
/// from tests/support/requirements-c7n.txt; its own venv because c7n pins boto3 and botocore
/// differently from moto). Missing, the test fails: CI must not skip it.
fn c7n_bin(name: &str) -> PathBuf {
    let venv = std::env::var("TAGWARDEN_TEST_C7N_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".venv-c7n"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/test.sh, which creates the Cloud Custodian virtualenv",
        path.display()
    );
    path
}

/// Runs `custodian validate` on the files; each must be reported valid.
fn custodian_validate(files: &[PathBuf]) {
    let out = std::process::Command::new(c7n_bin("custodian"))
        .arg("validate")
        .args(files)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("run custodian");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "custodian validate failed:\n{text}");
    for f in files {
        assert!(
            text.contains(&format!("Configuration valid: {}", f.display())),
            "{} not reported valid:\n{text}",
            f.display()
        );
    }
}

#[test]
fn every_generated_custodian_file_passes_custodian_validate() {
    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("imported.json");
    import_to(&fixture("aws_tag_policy.json"), &imported);
    // A policy with every filter shape: values with and without wildcards, regexes (one with an
    // inline flag, one Python cannot read), conditions of each kind, a conflict, a prohibited key.
    let shapes = dir.path().join("shapes.json");
    std::fs::write(
        &shapes,
        json!({
            "required_tags": [
                {"name": "Env", "allowed_values": ["prod", "dev-*"], "applies_to": ["ec2:*", "s3", "rds:db", "states:*"]},
                {"name": "Code", "validation_regex": "(?i)cc-[0-9]{4}", "applies_to": ["*"]},
                {"name": "Word", "validation_regex": "\\p{Lu}+", "applies_to": ["lambda:function"]},
                {"name": "Data", "allowed_values": ["pii", "none"], "applies_to": ["s3:bucket"],
                 "when": {"key": "Env", "in": ["prod"]}},
                {"name": "Backup", "applies_to": ["rds:*"], "when": {"key": "Tier", "exists": true}},
                {"name": "Owner", "applies_to": ["ec2:instance"], "when": {"key": "Env", "equals": "prod"}}
            ],
            "optional_tags": [{"name": "Tier", "allowed_values": ["gold", "silver"]},
                              {"name": "Mail", "validation_regex": "[^@]+@example\\.com"}],
            "prohibited_tags": ["tmp"],
            "conflicts": [{"tags": [{"key": "Env", "equals": "prod"}, {"key": "AutoStop", "exists": true}]}]
        })
        .to_string(),
    )
    .unwrap();
    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/custodian-mailer";
    // `custodian validate` takes about 1.5 s of CPU per policy: the file with every mapped
    // resource (and every action) is validated once; the other shapes on a few types each.
    // Names must be unique across the files validated together: one prefix per file.
    let few = "ec2:instance,ec2:volume,s3:bucket,rds:db,lambda:function,states:stateMachine";
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "every-type-every-action",
            vec![
                "--policy",
                "policies/tagging_policy.json",
                "--actions",
                "mark-for-op,notify,tag",
                "--notify-queue",
                queue,
                "--name-prefix",
                "all",
            ],
        ),
        (
            "report-only",
            vec![
                "--policy",
                "policies/tagging_policy.json",
                "--resource-types",
                few,
            ],
        ),
        (
            "imported",
            vec![
                "--policy",
                imported.to_str().unwrap(),
                "--actions",
                "mark-for-op,tag",
                "--resource-types",
                few,
                "--name-prefix",
                "org-tags",
            ],
        ),
        (
            "shapes",
            vec![
                "--policy",
                shapes.to_str().unwrap(),
                "--actions",
                "notify,mark-for-op",
                "--notify-queue",
                queue,
                "--notify-to",
                "finops@example.com,resource-owner",
                "--mark-days",
                "3",
                "--resource-types",
                few,
                "--name-prefix",
                "shapes",
            ],
        ),
    ];
    let mut files = Vec::new();
    for (name, args) in &runs {
        let out = dir.path().join(format!("{name}.yml"));
        let out_path = path_str(&out);
        let mut all = vec!["policy", "export", "--custodian"];
        all.extend(args.iter().copied());
        all.extend(["--out", out_path.as_str()]);
        let (code, _, stderr) = run(&all, &[]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stderr.contains("Cloud Custodian policies for"), "{stderr}");
        if *name == "every-type-every-action" {
            assert!(
                stderr.contains("wrote 47 Cloud Custodian policies"),
                "{stderr}"
            );
            assert!(
                stderr.contains("dropped: aws.step-machine: Cloud Custodian has no mark-for-op"),
                "{stderr}"
            );
        }
        if *name == "shapes" {
            assert!(
                stderr.contains("dropped: required_tags[2].validation_regex: `\\p{Lu}+`"),
                "{stderr}"
            );
        }
        files.push(out);
    }
    // The tool's YAML too (the policy in force: the default one).
    let (mut client, _) = StdioClient::initialized(&["--demo"], &[]);
    let answer = client.call(
        "generate_custodian_policy",
        json!({"actions": ["mark-for-op", "notify", "tag"], "notify_queue": queue, "name_prefix": "tool",
               "resource_types": ["ec2:instance", "s3:bucket", "rds:db", "states:stateMachine", "gcp:vm"]}),
    );
    let _ = client.finish();
    let out = &answer["structuredContent"];
    assert_eq!(out["unmapped_types"], json!(["gcp:vm"]), "{answer}");
    let tool_file = dir.path().join("tool.yml");
    std::fs::write(&tool_file, out["yaml"].as_str().unwrap()).unwrap();
    files.push(tool_file);
    custodian_validate(&files);
}

#[test]
fn custodian_refuses_notify_without_a_queue() {
    let (code, stdout, stderr) = run(
        &["policy", "export", "--custodian", "--actions", "notify"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("(--notify-queue)") && stderr.contains("SQS queue URL"),
        "{stderr}"
    );
}

#[test]
fn import_tool_is_read_only() {
    let policy_doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("aws_tag_policy.json")).unwrap())
            .unwrap();
    let (mut client, _) = StdioClient::initialized(&["--demo"], &[]);
    let before = client.call("get_tagging_policy", json!({}));
    let answer = client.call("import_aws_tag_policy", json!({"tag_policy": policy_doc}));
    let after = client.call("get_tagging_policy", json!({}));
    let bad = client.call(
        "import_aws_tag_policy",
        json!({"tag_policy": "{\"tags\": {\"cc\": {\"tag_key\": \"Owner\"}}}"}),
    );
    let _ = client.finish();
    let out = &answer["structuredContent"];
    assert_eq!(out["keys"], 6, "{answer}");
    assert_eq!(
        out["required"],
        json!([
            "CostCenter on ec2:instance, ec2:volume",
            "Environment on ec2:*, rds:db",
            "team on s3:bucket"
        ])
    );
    assert_eq!(out["lossiness"].as_array().unwrap().len(), 9);
    // The same policy the command line writes.
    let (_, stdout, _) = run(
        &[
            "policy",
            "import",
            "--aws-file",
            &path_str(&fixture("aws_tag_policy.json")),
        ],
        &[],
    );
    let cli: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["policy"], cli);
    assert_eq!(
        before["structuredContent"]["hash"], after["structuredContent"]["hash"],
        "the policy in force is unchanged"
    );
    assert_eq!(bad["isError"], true);
    let message = bad["content"][0]["text"].as_str().unwrap();
    assert!(
        message.contains("tag_policy: `tags.cc.tag_key`"),
        "{message}"
    );
}
