//! Promotion of approved virtual tags to real tags, over MCP stdio against moto: approve virtual
//! tags → plan → approve → apply → verify by a rescan. moto implements TagResources for EC2 and
//! S3 but answers "Service not yet supported" for SQS, a real partial failure. The native score
//! must rise by exactly the promoted resources, the effective score stay, and the audit log hold
//! one row per written ARN. An unapproved plan and a stale one (a native tag changed in moto
//! between plan and apply) are refused without a write.

use std::process::Command;
use std::sync::OnceLock;

use crate::common::moto::{Moto, env_refs};
use crate::common::{StdioClient, fixture, path_str, repo, run, venv_bin};
use serde_json::{Value, json};

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start_seeded_by("seed_promote.py", &[]))
}

fn ok(c: &mut StdioClient, tool: &str, args: Value) -> Value {
    let r = c.call(tool, args.clone());
    assert_ne!(r["isError"], true, "{tool} {args}: {r}");
    r["structuredContent"].clone()
}

fn err(c: &mut StdioClient, tool: &str, args: Value) -> String {
    let r = c.call(tool, args.clone());
    assert_eq!(r["isError"], true, "{tool} {args} should fail: {r}");
    r["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// (compliant natively, compliant effectively), after a fresh scan.
fn scores(c: &mut StdioClient) -> (u64, u64) {
    let check = ok(
        c,
        "check_tag_compliance",
        json!({"limit": 0, "force_refresh": true}),
    );
    assert_eq!(check["in_scope"], 7, "{check}");
    (
        check["native"]["compliant"].as_u64().unwrap(),
        check["effective"]["compliant"].as_u64().unwrap(),
    )
}

/// The resources of the virtual tags in `status`, sorted.
fn resources_with_status(c: &mut StdioClient, status: &str) -> Vec<String> {
    let answer = ok(
        c,
        "review_virtual_tags",
        json!({"filter": {"statuses": [status]}, "limit": 100}),
    );
    let mut on: Vec<String> = answer["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| s(&t["resource_id"]))
        .collect();
    on.sort();
    on
}

fn plan_entries(plan: &Value) -> Vec<(String, Value, Value)> {
    plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (s(&e["arn"]), e["tags"].clone(), e["replaces"].clone()))
        .collect()
}

#[test]
fn plan_approve_apply_verify_over_mcp() {
    let m = moto();
    let seeded = &m.expected;
    let policy = path_str(&fixture("moto_policy.json"));
    let source = [
        "--aws",
        "--regions",
        "us-east-1",
        "--aws-coverage",
        "tagging",
        "--policy",
        &policy,
    ];
    let mut args = source.to_vec();
    args.extend([
        "--no-prewarm",
        "--budget-burst",
        "0",
        "--budget-per-hour",
        "0",
        "--budget-principal-per-hour",
        "0",
        "--budget-global-per-hour",
        "0",
        "--loop-max-repeats",
        "0",
    ]);
    let env = m.env();
    let (mut c, _) = StdioClient::initialized(&args, &env_refs(&env));

    let missing: Vec<String> = seeded["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    let buckets: Vec<String> = seeded["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    let (valid_native, invalid_native, queue) = (
        s(&seeded["valid_native"]),
        s(&seeded["invalid_native"]),
        s(&seeded["queue"]),
    );

    // Nothing approved yet: nothing to plan.
    let none = err(&mut c, "promote_virtual_tags", json!({"action": "plan"}));
    assert!(none.contains("no approved virtual tag matches"), "{none}");

    // Approved virtual tags: CostCenter on the instances (kept under a valid native value,
    // overriding an invalid one) and the buckets, Owner on the queue.
    let mut instances = missing.clone();
    instances.push(valid_native.clone());
    for (ids, key, value, override_native) in [
        (instances.clone(), "CostCenter", "CC-1001", false),
        (vec![invalid_native.clone()], "CostCenter", "CC-1001", true),
        (buckets.clone(), "CostCenter", "CC-2002", false),
        (vec![queue.clone()], "Owner", "team-q", false),
    ] {
        let out = ok(
            &mut c,
            "apply_virtual_tag",
            json!({"resource_ids": ids, "key": key, "value": value,
                   "override_native": override_native, "reason": "promotion test"}),
        );
        assert_eq!(
            out["written"].as_u64().unwrap() as usize,
            ids.len(),
            "{out}"
        );
    }
    let (native0, effective0) = scores(&mut c);
    assert_eq!((native0, effective0), (1, 7));

    // A plan, refused until approved; then made stale by a native change in moto.
    let first = ok(&mut c, "promote_virtual_tags", json!({"action": "plan"}))["plan"].clone();
    let first_id = first["plan_id"].as_i64().unwrap();
    assert_eq!(first["status"], "planned");
    let unapproved = err(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "apply", "plan_id": first_id}),
    );
    assert!(
        unapproved.contains("it is not approved yet"),
        "{unapproved}"
    );
    ok(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "approve", "plan_id": first_id, "reason": "reviewed"}),
    );
    let touched = Command::new(venv_bin("python"))
        .arg(repo().join("tests/support/seed_promote.py"))
        .args([m.url.as_str(), "--tag", &missing[0], "Team", "platform"])
        .output()
        .expect("tag in moto");
    assert!(touched.status.success(), "{touched:?}");
    let stale = err(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "apply", "plan_id": first_id}),
    );
    assert!(stale.contains("is stale"), "{stale}");
    assert!(stale.contains("nothing was written"), "{stale}");
    assert_eq!(m.calls_of("TagResources"), 0);

    // A fresh plan: the exact diff per ARN.
    let plan = ok(&mut c, "promote_virtual_tags", json!({"action": "plan"}))["plan"].clone();
    let id = plan["plan_id"].as_i64().unwrap();
    assert_ne!(plan["fingerprint"], first["fingerprint"]);
    let mut expected: Vec<(String, Value, Value)> = Vec::new();
    for arn in &missing {
        expected.push((arn.clone(), json!({"CostCenter": "CC-1001"}), Value::Null));
    }
    expected.push((
        invalid_native.clone(),
        json!({"CostCenter": "CC-1001"}),
        json!({"CostCenter": "bad"}),
    ));
    for arn in &buckets {
        expected.push((arn.clone(), json!({"CostCenter": "CC-2002"}), Value::Null));
    }
    expected.push((queue.clone(), json!({"Owner": "team-q"}), Value::Null));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(plan_entries(&plan), expected);
    assert_eq!(
        (
            plan["resources"].clone(),
            plan["tags_to_add"].clone(),
            plan["tags_to_change"].clone()
        ),
        (json!(6), json!(5), json!(1))
    );
    assert_eq!(
        plan["skipped"],
        json!([{"arn": valid_native, "key": "CostCenter", "value": "CC-1001",
                "virtual_tag_id": plan["skipped"][0]["virtual_tag_id"],
                "reason": "native_value_kept", "native_value": "CC-9999"}])
    );
    assert_eq!(
        plan["iam_actions"],
        json!([
            "ec2:CreateTags",
            "s3:GetBucketTagging",
            "s3:PutBucketTagging",
            "sqs:TagQueue",
            "tag:GetResources",
            "tag:TagResources"
        ])
    );

    // Approve (recording who) and apply.
    let approved = ok(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "approve", "plan_id": id, "reason": "owners confirmed",
               "approved_by": "alice@example.com"}),
    )["plan"]
        .clone();
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approved_by"], "alice@example.com");
    assert_eq!(approved["approved_by_principal"], "local");
    let applied = ok(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "apply", "plan_id": id}),
    )["plan"]
        .clone();
    assert_eq!(applied["status"], "applied");
    let a = &applied["applied"];
    assert_eq!(
        (
            a["promoted"].clone(),
            a["failed"].clone(),
            a["unverified"].clone(),
            a["virtual_tags_promoted"].clone(),
            a["audit_rows"].clone()
        ),
        (json!(5), json!(1), json!(0), json!(5), json!(5)),
        "{applied}"
    );
    for e in applied["entries"].as_array().unwrap() {
        if e["arn"] == queue.as_str() {
            assert_eq!(e["outcome"]["result"], "failed");
            assert_eq!(e["outcome"]["error_code"], "InternalServiceException");
            assert_eq!(e["outcome"]["status_code"], 404);
            assert_eq!(e["outcome"]["message"], "Service not yet supported");
            assert_eq!(e["outcome"]["attempts"], 1);
        } else {
            assert_eq!(e["outcome"], json!({"result": "promoted"}), "{e}");
        }
    }
    // One call per (account, region, tag set): the instances, the buckets, the queue; the
    // queue's 404 is not retried.
    assert_eq!(m.calls_of("TagResources"), 3);
    let again = err(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "apply", "plan_id": id}),
    );
    assert!(again.contains("already applied"), "{again}");
    assert_eq!(m.calls_of("TagResources"), 3);

    // A rescan: the promoted resources are natively compliant; the effective view is unchanged.
    let (native1, effective1) = scores(&mut c);
    assert_eq!(
        native1,
        native0 + 5,
        "the instances without and with an invalid CostCenter, and the buckets"
    );
    assert_eq!(effective1, effective0);
    for arn in missing.iter().chain([&invalid_native]) {
        let v = ok(
            &mut c,
            "validate_resource_tags",
            json!({"resource_ids": [arn]}),
        );
        assert_eq!(
            v["results"][0]["native_tags"]["CostCenter"], "CC-1001",
            "{v}"
        );
    }

    // The promoted virtual tags are kept as history; the others stay approved.
    let promoted_on = resources_with_status(&mut c, "promoted");
    let mut written: Vec<String> = missing
        .iter()
        .chain(&buckets)
        .chain([&invalid_native])
        .cloned()
        .collect();
    written.sort();
    assert_eq!(promoted_on, written);
    let still_on = resources_with_status(&mut c, "approved");
    let mut kept = vec![queue.clone(), valid_native.clone()];
    kept.sort();
    assert_eq!(still_on, kept);

    // One audit row per written ARN.
    let trail = ok(
        &mut c,
        "get_audit_trail",
        json!({"tool": "promote_virtual_tags/write", "limit": 100}),
    );
    assert_eq!(trail["total"], 5, "{trail}");
    let mut audited: Vec<String> = trail["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let args: Value = serde_json::from_str(r["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(args["plan_id"], id);
            assert_eq!(args["approved_by_principal"], "local");
            s(&args["arn"])
        })
        .collect();
    audited.sort();
    assert_eq!(audited, written);

    // The command line reads the same plan.
    let dir = path_str(c.data_dir.path());
    let mut show = vec!["promote", "show", "--data-dir", &dir, "--format", "json"];
    show.extend(source);
    let id_text = id.to_string();
    show.push(&id_text);
    let (code, stdout, stderr) = run(&show, &env_refs(&env));
    assert_eq!(code, 0, "{stderr}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["status"], "applied");
    assert_eq!(shown["entries"], applied["entries"]);
    let (code, _, stderr) = run(
        &["promote", "apply", "--data-dir", &dir, "--aws", &id_text],
        &env_refs(&env),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("already applied"), "{stderr}");

    // plan → approve → apply on the command line: what is left is the queue (refused again)
    // and the instance whose valid native value is kept.
    let cli = |step: &[&str]| {
        let mut all = vec!["promote"];
        all.extend_from_slice(step);
        all.extend(["--data-dir", dir.as_str()]);
        all.extend(source);
        run(&all, &env_refs(&env))
    };
    let (code, stdout, stderr) = cli(&["plan", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let left: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        plan_entries(&left),
        vec![(queue.clone(), json!({"Owner": "team-q"}), Value::Null)]
    );
    assert_eq!(left["skipped"][0]["arn"], valid_native.as_str());
    let left_id = left["plan_id"].as_i64().unwrap().to_string();
    let (code, stdout, stderr) = cli(&["approve", &left_id, "--reason", "cli check"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("(approved)") && stdout.contains("approved by cli (local)"),
        "{stdout}"
    );
    let (code, stdout, stderr) = cli(&["apply", &left_id, "--format", "json"]);
    assert_eq!(code, 1, "a refused ARN makes apply exit 1: {stderr}");
    let done: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(done["applied"]["failed"], 1, "{done}");
    assert_eq!(done["applied"]["audit_rows"], 0, "{done}");
    assert_eq!(m.calls_of("TagResources"), 4);
}

/// The principal the server gives a bearer token (as tests/it/identity.rs computes it).
fn principal_of(token: &str) -> String {
    use sha2::Digest;
    format!(
        "token:{}",
        &hex::encode(sha2::Sha256::digest(token.as_bytes()))[..12]
    )
}

#[test]
fn over_http_the_plan_records_who_made_approved_and_applied_it() {
    // Its own moto: the stdio scenario counts TagResources calls on the other one.
    static MOTO: OnceLock<Moto> = OnceLock::new();
    let m = MOTO.get_or_init(|| Moto::start_seeded_by("seed_promote.py", &[]));
    let policy = path_str(&fixture("moto_policy.json"));
    let mut env = m.env();
    // A (a plain token: an approver) tags and plans; B (an administrator) approves; C (a
    // named administrator) applies.
    env.push(("TAGWARDEN_API_TOKENS", "token-a,ops:admin:token-c".into()));
    env.push(("TAGWARDEN_ADMIN_TOKENS", "token-b".into()));
    let server = crate::common::HttpServer::start(
        &[
            "--aws",
            "--regions",
            "us-east-1",
            "--aws-coverage",
            "tagging",
            "--policy",
            &policy,
            "--no-prewarm",
        ],
        &env_refs(&env),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut a = crate::common::HttpClient::authenticated(&server.base, "token-a").await;
        let mut b = crate::common::HttpClient::authenticated(&server.base, "token-b").await;
        let missing: Vec<String> = m.expected["missing"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        let tagged = a
            .call(
                "apply_virtual_tag",
                json!({"resource_ids": missing, "key": "CostCenter", "value": "CC-3003",
                       "reason": "finance mapping"}),
            )
            .await;
        assert_ne!(tagged["isError"], true, "{tagged}");
        let plan = a
            .call("promote_virtual_tags", json!({"action": "plan"}))
            .await;
        let plan = &plan["structuredContent"]["plan"];
        let id = plan["plan_id"].as_i64().unwrap();
        assert_eq!(plan["created_by_principal"], principal_of("token-a"));
        let approved = b
            .call(
                "promote_virtual_tags",
                json!({"action": "approve", "plan_id": id, "reason": "checked with finance"}),
            )
            .await;
        let approved = &approved["structuredContent"]["plan"];
        assert_eq!(approved["approved_by_principal"], principal_of("token-b"));
        assert_eq!(approved["approval_reason"], "checked with finance");
        // An approver may plan but neither approve nor apply.
        for action in ["approve", "apply"] {
            let refused = a
                .call(
                    "promote_virtual_tags",
                    json!({"action": action, "plan_id": id, "reason": "my own plan"}),
                )
                .await;
            assert_eq!(refused["isError"], true, "{refused}");
            assert!(
                refused["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .contains("needs the admin role"),
                "{refused}"
            );
        }
        let mut c = crate::common::HttpClient::authenticated(&server.base, "token-c").await;
        let applied = c
            .call(
                "promote_virtual_tags",
                json!({"action": "apply", "plan_id": id}),
            )
            .await;
        let applied = &applied["structuredContent"]["plan"];
        assert_eq!(applied["applied_by_principal"], "token:ops");
        assert_eq!(applied["applied"]["promoted"], 2, "{applied}");
        let listed = b
            .call("promote_virtual_tags", json!({"action": "list"}))
            .await;
        assert_eq!(listed["structuredContent"]["plans_total"], 1);
        assert_eq!(listed["structuredContent"]["plans"][0]["status"], "applied");
        // The write rows are the applier's: C sees them, A (not an administrator) does not.
        let write_rows = json!({"tool": "promote_virtual_tags/write", "limit": 10});
        let seen_by_c = c.call("get_audit_trail", write_rows.clone()).await;
        assert_eq!(seen_by_c["structuredContent"]["total"], 2, "{seen_by_c}");
        let seen_by_a = a.call("get_audit_trail", write_rows).await;
        assert_eq!(seen_by_a["structuredContent"]["total"], 0, "{seen_by_a}");
    });
}

#[test]
fn several_accounts_are_written_through_the_writer_role_only() {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    let m = MOTO.get_or_init(|| Moto::start_seeded_by("seed_promote.py", &["--accounts"]));
    let seeded = &m.expected;
    let (own, member) = (s(&seeded["own_account"]), s(&seeded["member_account"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.yml");
    std::fs::write(
        &file,
        format!(
            "accounts:\n- account_id: '{own}'\n  name: own\n- account_id: '{member}'\n  \
             name: member\n"
        ),
    )
    .unwrap();
    let policy = path_str(&fixture("moto_policy.json"));
    let accounts = path_str(&file);
    let base = [
        "--aws-accounts",
        accounts.as_str(),
        "--aws-role-name",
        "TagwardenReadOnly",
        "--regions",
        "us-east-1",
        "--policy",
        &policy,
        "--no-prewarm",
    ];
    let env = m.env();

    // Without a writer role, a multi-account server cannot write (the read role never does).
    let (mut c, _) = StdioClient::initialized(&base, &env_refs(&env));
    let none = err(&mut c, "promote_virtual_tags", json!({"action": "plan"}));
    assert!(none.contains("--aws-writer-role-name"), "{none}");
    drop(c);

    let mut args = base.to_vec();
    args.extend(["--aws-writer-role-name", "TagwardenWriter"]);
    let (mut c, _) = StdioClient::initialized(&args, &env_refs(&env));
    let arns = vec![
        s(&seeded["own_instance"]),
        s(&seeded["member_instance"]),
        s(&seeded["member_bucket"]),
    ];
    let tagged = ok(
        &mut c,
        "apply_virtual_tag",
        json!({"resource_ids": arns, "key": "CostCenter", "value": "CC-4004",
               "reason": "finance mapping"}),
    );
    assert_eq!(tagged["written"], 3, "{tagged}");
    let scanned_with = m.assumed_roles().len();
    let plan = ok(&mut c, "promote_virtual_tags", json!({"action": "plan"}))["plan"].clone();
    let id = plan["plan_id"].as_i64().unwrap();
    let placed: Vec<(String, String)> = plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (s(&e["arn"]), s(&e["account"])))
        .collect();
    let mut expected = vec![
        (arns[0].clone(), own.clone()),
        (arns[1].clone(), member.clone()),
        // The bucket's ARN has no account: the scan says which it is in.
        (arns[2].clone(), member.clone()),
    ];
    expected.sort();
    assert_eq!(placed, expected);
    ok(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "approve", "plan_id": id, "reason": "checked"}),
    );
    let applied = ok(
        &mut c,
        "promote_virtual_tags",
        json!({"action": "apply", "plan_id": id}),
    )["plan"]
        .clone();
    assert_eq!(applied["applied"]["promoted"], 3, "{applied}");
    // Everything since the scan went through the writer role, once per account.
    let mut writer_roles: Vec<String> = m.assumed_roles()[scanned_with..].to_vec();
    writer_roles.sort();
    assert_eq!(
        writer_roles,
        vec![
            format!("arn:aws:iam::{own}:role/TagwardenWriter"),
            format!("arn:aws:iam::{member}:role/TagwardenWriter"),
        ]
    );
    // A rescan (through the read role) shows the tags native in both accounts.
    ok(
        &mut c,
        "check_tag_compliance",
        json!({"limit": 0, "force_refresh": true}),
    );
    for arn in &arns {
        let v = ok(
            &mut c,
            "validate_resource_tags",
            json!({"resource_ids": [arn]}),
        );
        assert_eq!(
            v["results"][0]["native_tags"]["CostCenter"], "CC-4004",
            "{v}"
        );
    }
}
