//! Roles over HTTP with named static tokens (`name:role:token`): a viewer reads but cannot
//! decide, approve or promote; an approver decides on virtual tags, rules and anomalies but
//! cannot approve or apply a promotion plan; every refusal names the role needed and is in the
//! audit log with the refused principal (read by the administrator). Also: the tokens file
//! (refused when every user may read it), and the local stdio user with every role.

use serde_json::{Value, json};

use crate::common::{HttpClient, HttpServer, StdioClient, path_str};

const TOKENS: (&str, &str) = (
    "TAGWARDEN_API_TOKENS",
    "vera:viewer:tok-viewer,abe:approver:tok-approver,ada:admin:tok-admin",
);

/// The refusal's text; fails unless the call was refused for its role `needed`.
async fn refused(c: &mut HttpClient, tool: &str, args: Value, needed: &str) -> String {
    let r = c.call(tool, args.clone()).await;
    assert_eq!(r["isError"], true, "{tool} {args} should be refused: {r}");
    let text = r["content"][0]["text"].as_str().unwrap().to_string();
    assert!(
        text.contains(&format!("needs the {needed} role")),
        "{tool} {args}: {text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cannot_decide_an_approver_cannot_promote_and_each_refusal_is_audited() {
    let server = HttpServer::start(
        &["--demo", "--no-prewarm", "--loop-max-repeats", "0"],
        &[TOKENS],
    );
    let base = server.base.clone();
    let mut viewer = HttpClient::authenticated(&base, "tok-viewer").await;
    let mut approver = HttpClient::authenticated(&base, "tok-approver").await;
    let mut admin = HttpClient::authenticated(&base, "tok-admin").await;

    // The viewer reads.
    let me = viewer.ok("get_audit_trail", json!({"limit": 1})).await;
    assert_eq!(
        (&me["principal"], &me["role"], &me["admin"]),
        (&json!("token:vera"), &json!("viewer"), &json!(false))
    );
    viewer.ok("check_tag_compliance", json!({"limit": 1})).await;
    viewer
        .ok("review_virtual_tags", json!({"action": "list"}))
        .await;
    viewer
        .ok("manage_tag_rules", json!({"action": "list"}))
        .await;
    viewer
        .ok("promote_virtual_tags", json!({"action": "list"}))
        .await;
    viewer
        .ok(
            "apply_virtual_tag",
            json!({"filter": {"name_glob": "payments-*"}, "key": "CostCenter", "value": "CC-1234",
               "reason": "what if", "dry_run": true}),
        )
        .await;

    // The approver proposes and approves virtual tags.
    let proposed = approver
        .ok(
            "suggest_tags",
            json!({"filter": {"resource_types": ["ec2:instance"], "regions": ["eu-west-1"],
               "tags_missing": ["Owner"]}, "keys": ["Owner"], "propose": true}),
        )
        .await;
    let ids: Vec<i64> = proposed["proposed_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(ids.len() >= 2, "{proposed}");

    // Everything that writes is refused to the viewer, naming the role needed.
    let viewer_refusals = [
        (
            "review_virtual_tags",
            json!({"action": "approve", "ids": [ids[0]], "reason": "looks right"}),
            "approver",
        ),
        (
            "review_virtual_tags",
            json!({"action": "deny", "ids": [ids[0]], "reason": "looks wrong"}),
            "approver",
        ),
        (
            "apply_virtual_tag",
            json!({"filter": {"name_glob": "payments-*"}, "key": "CostCenter",
                   "value": "CC-1234", "reason": "finance mapping"}),
            "approver",
        ),
        (
            "manage_tag_rules",
            json!({"action": "create", "rule": {"name": "app", "priority": 10,
                   "when": {"field": "name", "regex": "^([a-z]+)-api-"},
                   "set": {"Application": "{1}-api"}}}),
            "approver",
        ),
        ("manage_tag_rules", json!({"action": "run"}), "approver"),
        (
            "get_cost_anomalies",
            json!({"decide": {"anomaly_id": "anm-0123456789abcdef", "decision": "dismissed",
                   "reason": "expected"}}),
            "approver",
        ),
        (
            "suggest_tags",
            json!({"filter": {"resource_types": ["ec2:volume"]}, "propose": true}),
            "approver",
        ),
        (
            "check_tag_compliance",
            json!({"store_snapshot": true}),
            "approver",
        ),
        (
            "promote_virtual_tags",
            json!({"action": "plan"}),
            "approver",
        ),
        (
            "promote_virtual_tags",
            json!({"action": "approve", "plan_id": 1, "reason": "fine by me"}),
            "admin",
        ),
        (
            "promote_virtual_tags",
            json!({"action": "apply", "plan_id": 1}),
            "admin",
        ),
        (
            "get_audit_trail",
            json!({"principal": "token:abe"}),
            "admin",
        ),
    ];
    for (tool, args, needed) in &viewer_refusals {
        refused(&mut viewer, tool, args.clone(), needed).await;
    }

    // The approver decides, but neither approves nor applies a promotion plan, nor reads
    // another principal's calls.
    let decided = approver
        .ok(
            "review_virtual_tags",
            json!({"action": "approve", "ids": [ids[0]], "reason": "owners confirmed"}),
        )
        .await;
    assert_eq!(decided["total"], 1, "{decided}");
    assert_eq!(decided["tags"][0]["decided_by_principal"], "token:abe");
    approver
        .ok(
            "review_virtual_tags",
            json!({"action": "deny", "ids": [ids[1]], "reason": "not this one"}),
        )
        .await;
    let approver_refusals = [
        (
            "promote_virtual_tags",
            json!({"action": "approve", "plan_id": 1, "reason": "fine by me"}),
            "admin",
        ),
        (
            "promote_virtual_tags",
            json!({"action": "apply", "plan_id": 1}),
            "admin",
        ),
        (
            "get_audit_trail",
            json!({"principal": "token:vera"}),
            "admin",
        ),
    ];
    for (tool, args, needed) in &approver_refusals {
        refused(&mut approver, tool, args.clone(), needed).await;
    }

    // The administrator reads every refusal, each with the refused principal and tool.
    let trail = admin
        .ok(
            "get_audit_trail",
            json!({"outcome": "refused:role", "limit": 100}),
        )
        .await;
    let rows = trail["rows"].as_array().unwrap();
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["principal"].as_str().unwrap().to_string(),
                r["tool"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen.len(),
        viewer_refusals.len() + approver_refusals.len(),
        "{seen:?}"
    );
    let count = |principal: &str, tool: &str| {
        seen.iter()
            .filter(|(p, t)| p == principal && t == tool)
            .count()
    };
    assert_eq!(count("token:vera", "review_virtual_tags"), 2);
    assert_eq!(count("token:vera", "promote_virtual_tags"), 3);
    assert_eq!(count("token:abe", "promote_virtual_tags"), 2);
    assert_eq!(count("token:abe", "get_audit_trail"), 1);
    // The viewer's refused decision left no trace: the approver's stands.
    let tag = admin
        .ok(
            "review_virtual_tags",
            json!({"action": "list", "ids": [ids[0]]}),
        )
        .await;
    assert_eq!(tag["tags"][0]["status"], "approved");
    assert_eq!(tag["tags"][0]["decided_by_principal"], "token:abe");
}

#[test]
fn a_tokens_file_open_to_everyone_is_refused_and_a_private_one_names_its_principals() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        "# who may call\nfinance:viewer:tok-finance\nops:admin:tok-ops\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = path_str(&file);
    let (code, _, stderr) = crate::common::run(
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--demo",
            "--api-tokens-file",
            &path,
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("chmod 600") && !stderr.contains("tok-ops"),
        "{stderr}"
    );

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = HttpServer::start(&["--demo", "--no-prewarm", "--api-tokens-file", &path], &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut ops = HttpClient::authenticated(&server.base, "tok-ops").await;
        let me = ops.ok("get_audit_trail", json!({"limit": 1})).await;
        assert_eq!(
            (&me["principal"], &me["role"]),
            (&json!("token:ops"), &json!("admin"))
        );
        let mut finance = HttpClient::authenticated(&server.base, "tok-finance").await;
        refused(
            &mut finance,
            "review_virtual_tags",
            json!({"action": "approve", "ids": [1], "reason": "looks right"}),
            "approver",
        )
        .await;
    });
}

#[test]
fn the_local_stdio_user_has_every_role() {
    let (mut c, _) = StdioClient::initialized(&["--demo", "--no-prewarm"], &[]);
    let me = c.call("get_audit_trail", json!({"limit": 1}));
    let me = &me["structuredContent"];
    assert_eq!(
        (&me["principal"], &me["role"], &me["admin"]),
        (&json!("local"), &json!("admin"), &json!(true))
    );
}
