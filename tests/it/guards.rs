//! The guard rails on every tool call, over stdio and HTTP: budgets, loop detection, input
//! limits, output sanitisation, correlation ids, and the hash-chained audit log.

use std::path::Path;

use crate::common::{HttpClient, HttpServer, StdioClient, run};
use serde_json::{Value, json};

const DEMO: &[&str] = &["--demo", "--no-prewarm"];

fn refusal_text(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected a refusal: {result}");
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn audit_outcomes(dir: &Path) -> Vec<(String, String)> {
    let (code, stdout, stderr) = run(
        &[
            "audit",
            "tail",
            "-n",
            "1000",
            "--json",
            "--data-dir",
            &dir.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    stdout
        .lines()
        .map(|l| {
            let row: Value = serde_json::from_str(l).unwrap();
            (
                row["tool"].as_str().unwrap().to_string(),
                row["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verify(dir: &Path) -> (i32, String) {
    let (code, stdout, _) = run(
        &["audit", "verify", "--data-dir", &dir.to_string_lossy()],
        &[],
    );
    (code, stdout)
}

#[test]
fn stdio_budget_loop_and_limits_are_refused_and_audited() {
    // Burst limit off so that the hourly budget is what stops call 101.
    let (mut c, _) = StdioClient::initialized(DEMO, &[("TAGWARDEN_BUDGET_BURST", "0")]);
    for i in 0..100 {
        let r = c.call(
            "check_tag_compliance",
            json!({"limit": i % 50, "regions": [format!("r{}", i / 50)]}),
        );
        assert_ne!(r["isError"], true, "call {} should pass: {r}", i + 1);
    }
    let text = refusal_text(&c.call("get_tagging_policy", json!({})));
    assert!(
        text.contains("100 calls per hour") && text.contains("next call is allowed in"),
        "{text}"
    );
    let (code, dir) = c.finish();
    assert_eq!(code, 0, "clean shutdown");
    let outcomes = audit_outcomes(dir.path());
    assert_eq!(
        outcomes.len(),
        101,
        "every call, refusals included, is in the audit log"
    );
    assert_eq!(
        outcomes.last().unwrap(),
        &(
            "get_tagging_policy".to_string(),
            "refused:budget".to_string()
        )
    );
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 101 rows"), "{out}");

    // Loop detection and limits, in a fresh session.
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    for _ in 0..3 {
        assert_ne!(c.call("get_tagging_policy", json!({}))["isError"], true);
    }
    let text = refusal_text(&c.call("get_tagging_policy", json!({})));
    assert!(
        text.contains("loop detected") && text.contains("3 times"),
        "{text}"
    );
    let text = refusal_text(&c.call(
        "find_untagged_resources",
        json!({"tag_keys": ["x".repeat(3000)]}),
    ));
    assert!(
        text.contains("`tag_keys[0]`") && text.contains("2048 bytes"),
        "{text}"
    );
    let text = refusal_text(&c.call(
        "validate_resource_tags",
        json!({"resource_ids": ["i-0abc"]}),
    ));
    assert!(text.contains("not a resource id"), "{text}");
    let (_, dir) = c.finish();
    let outcomes: Vec<String> = audit_outcomes(dir.path())
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert_eq!(
        &outcomes[3..],
        ["refused:loop", "refused:validation", "refused:validation"]
    );
}

#[tokio::test]
async fn http_budget_loop_and_limits_are_refused_and_audited() {
    let server = HttpServer::start(DEMO, &[("TAGWARDEN_BUDGET_BURST", "0")]);
    let mut c = HttpClient::new(&server.base);
    c.initialize().await;
    for i in 0..100 {
        let r = c
            .call(
                "check_tag_compliance",
                json!({"limit": i % 50, "regions": [format!("r{}", i / 50)]}),
            )
            .await;
        assert_ne!(r["isError"], true, "call {} should pass", i + 1);
    }
    let text = refusal_text(&c.call("get_tagging_policy", json!({})).await);
    assert!(text.contains("100 calls per hour"), "{text}");

    // A new session has its own budget; loops and limits are refused there.
    let mut c = HttpClient::new(&server.base);
    c.initialize().await;
    for _ in 0..3 {
        c.call("get_tagging_policy", json!({})).await;
    }
    assert!(refusal_text(&c.call("get_tagging_policy", json!({})).await).contains("loop detected"));
    let text = refusal_text(
        &c.call("check_tag_compliance", json!({"tag_keys": vec!["k"; 1001]}))
            .await,
    );
    assert!(
        text.contains("1001 items") && text.contains("limit is 1000"),
        "{text}"
    );

    // The log is queried over MCP too.
    let trail = c
        .call("get_audit_trail", json!({"outcome": "refused"}))
        .await;
    let rows = trail["structuredContent"]["rows"]
        .as_array()
        .unwrap()
        .clone();
    let outcomes: Vec<&str> = rows
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["refused:validation", "refused:loop", "refused:budget"]
    );
    assert_eq!(trail["structuredContent"]["total"], 3);
}

#[test]
fn correlation_id_in_meta_and_logs() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[("TAGWARDEN_LOG", "info")]);
    let r = c.call("get_tagging_policy", json!({}));
    let id = r["_meta"]["tagwarden/correlation_id"]
        .as_str()
        .expect("correlation id")
        .to_string();
    assert_eq!(id.len(), 36);
    let refused = c.call("check_tag_compliance", json!({"limit": "x".repeat(5000)}));
    assert!(
        refused["_meta"]["tagwarden/correlation_id"].is_string(),
        "refusals carry it too"
    );
    let unknown = c.request("tools/call", json!({"name": "nope", "arguments": {}}));
    assert!(unknown["error"]["data"]["correlation_id"].is_string());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logs = c.drain_stderr();
    assert!(
        logs.lines()
            .any(|l| l.contains(&id) && l.contains("tool call ok")),
        "{logs}"
    );
}

#[test]
fn edited_audit_row_is_detected_by_verify() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    for i in 0..5 {
        c.call("check_tag_compliance", json!({"limit": i}));
    }
    let (_, dir) = c.finish();
    assert_eq!(verify(dir.path()).0, 0);
    let db = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    db.execute(
        "UPDATE audit SET outcome = 'ok', session = 'someone-else' WHERE seq = 3",
        [],
    )
    .unwrap();
    drop(db);
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1);
    assert!(
        out.contains("BROKEN at row 3") && out.contains("changed"),
        "{out}"
    );
}

#[test]
fn secrets_in_data_never_reach_the_assistant() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leaky.json");
    std::fs::write(
        &file,
        json!({"ResourceTagMappingList": [{
            "ResourceARN": "arn:aws:s3:::leaky-bucket",
            "Tags": [
                {"Key": "Environment", "Value": "production"},
                {"Key": "Notes", "Value": "creds AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
                {"Key": "Owner", "Value": format!("{}/.aws/credentials", std::env::var("HOME").unwrap_or("/root".into()))}
            ]}]})
        .to_string(),
    )
    .unwrap();
    let path = file.to_string_lossy().to_string();
    let (mut c, _) = StdioClient::initialized(&["--inventory", &path, "--no-prewarm"], &[]);
    let r = c.call(
        "validate_resource_tags",
        json!({"resource_ids": ["arn:aws:s3:::leaky-bucket"]}),
    );
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "access key leaked");
    assert!(!text.contains("wJalrXUtnFEMI"), "secret key leaked");
    assert!(!text.contains("/.aws/credentials"), "server path leaked");
    assert!(text.contains("[redacted: AWS access key]"));
}

#[test]
fn http_rate_limit_per_client() {
    let server = HttpServer::start(DEMO, &[("TAGWARDEN_HTTP_RATE_LIMIT", "3")]);
    let url = format!("{}/mcp", server.base);
    let mut statuses = Vec::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..5 {
            let resp = client
                .post(&url)
                .header("Accept", "application/json, text/event-stream")
                .header("Content-Type", "application/json")
                .body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
                .send()
                .await
                .unwrap();
            statuses.push((
                resp.status().as_u16(),
                resp.headers().get("retry-after").is_some(),
            ));
        }
    });
    assert_eq!(statuses[3].0, 429, "{statuses:?}");
    assert!(statuses[3].1, "Retry-After is set");
}
