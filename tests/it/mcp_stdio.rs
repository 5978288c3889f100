//! MCP over stdio against the real binary on the demo estate.

use crate::common::{StdioClient, check_json, without_timing};
use serde_json::{Value, json};

const DEMO: &[&str] = &["--demo", "--no-prewarm"];

#[test]
fn initialize_reports_server_and_instructions() {
    let (_c, init) = StdioClient::initialized(DEMO, &[]);
    let r = &init["result"];
    assert_eq!(r["serverInfo"]["name"], "tagwarden");
    assert_eq!(r["protocolVersion"], crate::common::PROTOCOL);
    assert!(r["capabilities"]["tools"].is_object());
    assert!(
        r["instructions"]
            .as_str()
            .unwrap()
            .contains("check_tag_compliance")
    );
}

#[test]
fn tools_list_has_every_tool_with_schemas_and_annotations() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let list = c.request("tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    // The registry's order (its unit test pins the names against tools/*.json).
    assert_eq!(names, tagwarden::Registry::new().names());
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{}", t["name"]);
        assert_eq!(t["outputSchema"]["type"], "object", "{}", t["name"]);
        // check_tag_compliance can store a snapshot (store_snapshot) and the virtual-tag
        // tools, get_cost_anomalies (its decisions) and manage_allocation_rules write
        // Tagwarden's own store: they say they are not read-only; every other tool only reads.
        // Deleting a rule (manage_tag_rules, manage_allocation_rules) and writing real tags to
        // the cloud (promote_virtual_tags) are destructive. schedule_compliance_audit's run_now
        // stores a snapshot and notifies.
        let writers = [
            "check_tag_compliance",
            "schedule_compliance_audit",
            "suggest_tags",
            "apply_virtual_tag",
            "review_virtual_tags",
            "promote_virtual_tags",
            "manage_tag_rules",
            "manage_allocation_rules",
            "get_cost_anomalies",
        ];
        let name = t["name"].as_str().unwrap();
        let read_only = !writers.contains(&name);
        assert_eq!(t["annotations"]["readOnlyHint"], read_only, "{}", t["name"]);
        let destructive = matches!(
            name,
            "manage_tag_rules" | "manage_allocation_rules" | "promote_virtual_tags"
        );
        assert_eq!(
            t["annotations"]["destructiveHint"], destructive,
            "{}",
            t["name"]
        );
        assert!(t["description"].as_str().unwrap().len() > 100);
    }
    let check = &tools[0];
    assert_eq!(check["inputSchema"]["properties"]["limit"]["maximum"], 200);
    assert_eq!(check["inputSchema"]["properties"]["limit"]["default"], 20);
    assert_eq!(check["annotations"]["openWorldHint"], true);
}

#[test]
fn check_tag_compliance_matches_the_cli_exactly() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let result = c.call("check_tag_compliance", json!({"limit": 10}));
    assert_ne!(result.get("isError"), Some(&json!(true)), "{result}");
    let structured = result["structuredContent"].clone();
    // The text content carries the same JSON for clients without structured output.
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, structured);

    let cli = check_json(&["--demo", "--limit", "10"], &[]);
    assert_eq!(without_timing(structured.clone()), without_timing(cli));

    // Field by field on what an assistant relies on.
    let s = &structured;
    assert_eq!(s["resources"], 5000);
    let in_scope = s["in_scope"].as_u64().unwrap();
    let eff = &s["effective"];
    assert_eq!(
        eff["compliant"].as_u64().unwrap() + eff["non_compliant"].as_u64().unwrap(),
        in_scope
    );
    let sev = &s["by_severity"];
    let sev_sum: u64 = ["critical", "high", "medium", "low"]
        .iter()
        .map(|k| sev[k].as_u64().unwrap())
        .sum();
    assert_eq!(sev_sum, s["violations_total"].as_u64().unwrap());
    let kind_sum: u64 = s["by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(kind_sum, sev_sum);
    assert_eq!(s["violations"].as_array().unwrap().len(), 10);
    let first = &s["violations"][0];
    for field in [
        "resource_id",
        "tag_key",
        "kind",
        "severity",
        "fix",
        "expected",
        "resource_type",
        "region",
        "account",
    ] {
        assert!(
            first.get(field).is_some(),
            "violation lacks {field}: {first}"
        );
    }
    assert_eq!(first["severity"], "critical", "worst first");
    assert!(s["next_cursor"].is_string());
    assert_eq!(s["data_quality"]["status"], "complete");
    assert!(s["native_score_pct"].as_f64().unwrap() < s["score_pct"].as_f64().unwrap());
}

#[test]
fn pagination_walks_all_violations_without_repeats() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let args = json!({"resource_types": ["rds:*", "dynamodb:table"], "limit": 7});
    let first = c.call("check_tag_compliance", args.clone())["structuredContent"].clone();
    let total = first["violations_total"].as_u64().unwrap() as usize;
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let mut page = first;
    loop {
        for v in page["violations"].as_array().unwrap() {
            seen.push((
                v["resource_id"].as_str().unwrap().into(),
                v["kind"].as_str().unwrap().into(),
                v["tag_key"].as_str().unwrap_or("").into(),
            ));
        }
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        let mut next_args = args.clone();
        next_args["cursor"] = json!(cursor);
        page = c.call("check_tag_compliance", next_args)["structuredContent"].clone();
    }
    assert_eq!(seen.len(), total);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total, "no violation listed twice");

    // A cursor from another question is refused with advice.
    let r = c.call("check_tag_compliance", json!({"limit": 7}));
    let cursor = r["structuredContent"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let bad = c.call(
        "check_tag_compliance",
        json!({"regions": ["us-east-1"], "cursor": cursor}),
    );
    assert_eq!(bad["isError"], true);
    assert!(
        bad["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("without `cursor`")
    );
}

#[test]
fn bad_arguments_are_tool_errors_that_say_what_to_do() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let cases = [
        (json!({"limit": 1000}), "limit"),
        (json!({"limit": "ten"}), "limit"),
        (json!({"bogus": 1}), "bogus"),
        (json!({"min_severity": "urgent"}), "min_severity"),
        (json!({"tag_keys": ["NoSuchKey"]}), "NoSuchKey"),
        (json!({"cursor": "not-a-cursor"}), "cursor"),
    ];
    for (args, needle) in cases {
        let r = c.call("check_tag_compliance", args.clone());
        assert_eq!(r["isError"], true, "{args} should be refused: {r}");
        let text = r["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains(needle),
            "{args}: message `{text}` should mention {needle}"
        );
    }
    let r = c.call("validate_resource_tags", json!({}));
    assert_eq!(r["isError"], true);
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("resource_ids")
    );
    let r = c.call("validate_resource_tags", json!({"tags": {"A": "b"}}));
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("resource_type")
    );
}

#[test]
fn unknown_tool_is_a_protocol_error_and_malformed_json_keeps_the_server_serving() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let r = c.request(
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    );
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("check_tag_compliance")
    );

    c.send_raw("{this is not json");
    let parse_error = c.next_message();
    assert_eq!(parse_error["error"]["code"], -32700);
    assert_eq!(parse_error["id"], Value::Null);

    c.send_raw(r#"{"valid": "json", "but": "not json-rpc"}"#);
    let invalid = c.next_message();
    assert_eq!(invalid["error"]["code"], -32600);

    let list = c.request("tools/list", json!({}));
    assert_eq!(
        list["result"]["tools"].as_array().unwrap().len(),
        crate::common::tool_count(),
        "still serving"
    );
}

#[test]
fn find_untagged_validate_and_policy_tools() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let untagged = c.call(
        "find_untagged_resources",
        json!({"tag_keys": ["CostCenter"], "limit": 5}),
    )["structuredContent"]
        .clone();
    let total = untagged["total"].as_u64().unwrap();
    assert!(total > 0);
    assert_eq!(untagged["by_missing_key"]["CostCenter"], total);
    assert_eq!(untagged["resources"].as_array().unwrap().len(), 5);
    let id = untagged["resources"][0]["resource_id"]
        .as_str()
        .unwrap()
        .to_string();

    let v = c.call(
        "validate_resource_tags",
        json!({"resource_ids": [id.clone(), "arn:aws:s3:::nope"]}),
    )["structuredContent"]
        .clone();
    assert_eq!(v["not_found"], json!(["arn:aws:s3:::nope"]));
    let result = &v["results"][0];
    assert_eq!(result["resource_id"], id);
    assert_eq!(result["compliant"], false);
    assert!(
        result["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["tag_key"] == "CostCenter")
    );

    let proposed = c.call(
        "validate_resource_tags",
        json!({"resource_type": "ec2:instance", "tags": {
            "env": "prod", "CostCenter": "CC-1001", "Owner": "a@acme.example", "Application": "web"}}),
    )["structuredContent"]
        .clone();
    let p = &proposed["results"][0];
    assert_eq!(p["resource_id"], "proposed");
    assert_eq!(
        p["compliant"], true,
        "aliases fix it in the effective view: {p}"
    );
    assert_eq!(p["native_compliant"], false);
    assert_eq!(p["effective_tags"]["Environment"], "production");
    assert!(proposed.get("data_quality").is_none(), "no scan needed");

    let policy = c.call("get_tagging_policy", json!({}))["structuredContent"].clone();
    assert_eq!(policy["source"], "tagging_policy.json");
    assert_eq!(policy["hash"].as_str().unwrap().len(), 64);
    let keys: Vec<&str> = policy["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            "Environment",
            "CostCenter",
            "Owner",
            "Application",
            "DataClassification"
        ]
    );
    assert!(!policy["summary"].as_array().unwrap().is_empty());
}

#[test]
fn stdout_carries_only_protocol() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[("TAGWARDEN_LOG", "debug")]);
    // With debug logging on, every stdout line must still be a JSON-RPC message: wait_for_id
    // panics on anything else.
    let r = c.call("check_tag_compliance", json!({"limit": 1}));
    assert!(r["structuredContent"].is_object());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logs = c.drain_stderr();
    assert!(logs.contains("tool call ok"), "logs go to stderr: {logs}");
}

#[test]
fn policy_resources_and_the_weekly_review_prompt() {
    let (mut c, init) = StdioClient::initialized(DEMO, &[]);
    assert!(init["result"]["capabilities"]["resources"].is_object());
    assert!(init["result"]["capabilities"]["prompts"].is_object());
    let list = c.request("resources/list", json!({}));
    let uris: Vec<&str> = list["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        vec![
            "tagwarden://policy",
            "tagwarden://policy/summary",
            "ui://tagwarden/compliance",
            "ui://tagwarden/cost-gap",
            "ui://tagwarden/history",
            "ui://tagwarden/review"
        ]
    );
    let read = c.request("resources/read", json!({"uri": "tagwarden://policy"}));
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    let doc: Value = serde_json::from_str(text).unwrap();
    assert_eq!(doc["hash"].as_str().unwrap().len(), 64);
    assert_eq!(doc["policy"]["required_tags"][0]["name"], "Environment");
    let summary = c.request(
        "resources/read",
        json!({"uri": "tagwarden://policy/summary"}),
    );
    assert!(
        summary["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("`Environment`")
    );
    let missing = c.request("resources/read", json!({"uri": "tagwarden://nope"}));
    assert_eq!(missing["error"]["code"], -32002);

    let prompts = c.request("prompts/list", json!({}));
    assert_eq!(
        prompts["result"]["prompts"][0]["name"],
        "weekly_compliance_review"
    );
    let got = c.request(
        "prompts/get",
        json!({"name": "weekly_compliance_review", "arguments": {"scope": "production", "focus_key": "CostCenter"}}),
    );
    let text = got["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("check_tag_compliance")
            && text.contains("`production`")
            && text.contains("`CostCenter`")
            && text.contains("6. Call get_violation_history")
    );
    let bad = c.request("prompts/get", json!({"name": "nope"}));
    assert_eq!(bad["error"]["code"], -32602);
}

/// Regression: checking a proposed tag set needs no inventory, so it works while the cloud is
/// unreachable (the answer cache once scanned first to build its key).
#[test]
fn a_proposed_tag_set_is_checked_without_a_scan() {
    let (mut c, _) = StdioClient::initialized(
        &["--aws", "--regions", "us-east-1", "--no-prewarm"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_MAX_ATTEMPTS", "1"),
            ("TAGWARDEN_AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    let proposed = c.call(
        "validate_resource_tags",
        json!({"resource_type": "ec2:instance", "tags": {"Environment": "production"}}),
    );
    assert_ne!(proposed["isError"], true, "{proposed}");
    assert_eq!(
        proposed["structuredContent"]["results"][0]["resource_id"],
        "proposed"
    );
    let check = c.call("check_tag_compliance", json!({"limit": 0}));
    assert_eq!(check["isError"], true, "the cloud is unreachable: {check}");
}
