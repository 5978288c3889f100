//! Limits and records keyed on who the server verified the caller to be (the bearer token, or
//! the client address without tokens), never on a value the client chooses: budgets and loop
//! detection that made-up session ids do not escape, a fair hourly share per principal, audit
//! rows visible to their own principal (and administrators), and the principal recorded beside
//! the names callers give for virtual tags, rules and decisions.
//!
//! Each test runs the real binary over HTTP with two tokens, A and B.

use crate::common::{HttpClient, HttpServer, messages};
use serde_json::{Value, json};
use sha2::Digest;

const TOKENS: (&str, &str) = ("TAGWARDEN_API_TOKENS", "token-a,token-b");

/// The principal id the server gives a bearer token.
fn principal_of(token: &str) -> String {
    format!(
        "token:{}",
        &hex::encode(sha2::Sha256::digest(token.as_bytes()))[..12]
    )
}

/// One stateless (2026-07-28) tools/call with a bearer token, under a session id the client
/// made up; the result of the call.
async fn stateless_call(base: &str, token: &str, session: &str, tool: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let resp = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {token}"))
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", tool)
        .header("Mcp-Session-Id", session)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    if status != 200 {
        panic!("{status}: {}", resp.text().await.unwrap_or_default());
    }
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let msgs = messages(&ct, &resp.text().await.unwrap());
    let reply = msgs.iter().find(|m| m["id"] == 1).expect("a reply");
    reply["result"].clone()
}

fn random_session() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `ok`, or the refusal's text.
fn outcome(result: &Value) -> String {
    if result["isError"] == true {
        result["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string()
    } else {
        "ok".to_string()
    }
}

#[tokio::test]
async fn made_up_session_ids_do_not_escape_the_burst() {
    let server = HttpServer::start(
        &["--demo", "--no-prewarm", "--loop-max-repeats", "0"],
        &[TOKENS],
    );
    let mut outcomes = Vec::new();
    for _ in 0..25 {
        let r = stateless_call(
            &server.base,
            "token-a",
            &random_session(),
            "get_tagging_policy",
            json!({}),
        )
        .await;
        outcomes.push(outcome(&r));
    }
    let answered = outcomes.iter().filter(|o| *o == "ok").count();
    assert_eq!(answered, 20, "the burst is 20 per token: {outcomes:?}");
    assert!(
        outcomes[20].contains("20 calls per minute") && outcomes[20].contains("all its sessions"),
        "{}",
        outcomes[20]
    );
    // Token B has its own burst.
    let r = stateless_call(
        &server.base,
        "token-b",
        &random_session(),
        "get_tagging_policy",
        json!({}),
    )
    .await;
    assert_eq!(outcome(&r), "ok");
}

#[tokio::test]
async fn identical_calls_are_a_loop_whatever_the_session_id_and_spelled_out_defaults() {
    let server = HttpServer::start(&["--demo", "--no-prewarm"], &[TOKENS]);
    let call = |args: Value| {
        let base = server.base.clone();
        async move {
            outcome(
                &stateless_call(
                    &base,
                    "token-a",
                    &random_session(),
                    "check_tag_compliance",
                    args,
                )
                .await,
            )
        }
    };
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(call(json!({"limit": 7})).await);
    }
    assert_eq!(outcomes[..3], ["ok", "ok", "ok"], "{outcomes:?}");
    for refused in &outcomes[3..] {
        assert!(
            refused.contains("loop detected") && refused.contains("3 times"),
            "{refused}"
        );
    }
    // Spelling out a default is the same call.
    for same in [
        json!({"limit": 7, "force_refresh": false}),
        json!({"limit": 7, "accounts": []}),
        json!({"limit": 7, "accounts": [], "regions": [], "cursor": null}),
    ] {
        let o = call(same.clone()).await;
        assert!(o.contains("loop detected"), "{same}: {o}");
    }
    // A real difference is another call: a rescan, another limit.
    assert_eq!(call(json!({"limit": 7, "force_refresh": true})).await, "ok");
    assert_eq!(call(json!({"limit": 8})).await, "ok");
    // Another principal's identical call is its own.
    let r = stateless_call(
        &server.base,
        "token-b",
        &random_session(),
        "check_tag_compliance",
        json!({"limit": 7}),
    )
    .await;
    assert_eq!(outcome(&r), "ok");
}

#[tokio::test]
async fn one_principal_using_up_its_share_leaves_the_others_served() {
    // Small budgets keep it fast: 5 calls per token per hour, 8 for the whole server.
    let server = HttpServer::start(
        &[
            "--demo",
            "--no-prewarm",
            "--loop-max-repeats",
            "0",
            "--budget-burst",
            "0",
            "--budget-principal-per-hour",
            "5",
            "--budget-global-per-hour",
            "8",
        ],
        &[TOKENS],
    );
    let mut a = Vec::new();
    for _ in 0..12 {
        let r = stateless_call(
            &server.base,
            "token-a",
            &random_session(),
            "get_tagging_policy",
            json!({}),
        )
        .await;
        a.push(outcome(&r));
    }
    assert_eq!(a.iter().filter(|o| *o == "ok").count(), 5, "{a:?}");
    assert!(
        a[5].contains("5 calls per hour") && a[5].contains("TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR"),
        "{}",
        a[5]
    );
    // B's first call succeeds; A's refused calls took nothing from the server's budget, so B
    // has the 3 calls left of the 8.
    let mut b = Vec::new();
    for _ in 0..4 {
        let r = stateless_call(
            &server.base,
            "token-b",
            &random_session(),
            "get_tagging_policy",
            json!({}),
        )
        .await;
        b.push(outcome(&r));
    }
    assert_eq!(b[..3], ["ok", "ok", "ok"], "{b:?}");
    assert!(b[3].contains("all clients together"), "{}", b[3]);
}

#[tokio::test]
async fn each_principal_reads_only_its_own_audit_rows_and_an_administrator_reads_all() {
    let server = HttpServer::start(
        &["--demo", "--no-prewarm"],
        &[TOKENS, ("TAGWARDEN_ADMIN_TOKENS", " token-admin ")],
    );
    let (pa, pb, padmin) = (
        principal_of("token-a"),
        principal_of("token-b"),
        principal_of("token-admin"),
    );
    let mut a = HttpClient::authenticated(&server.base, "token-a").await;
    let a_session = a.session.clone().unwrap();
    a.call(
        "validate_resource_tags",
        json!({"resource_type": "ec2:instance", "tags": {"Owner": "a-secret-plan"}}),
    )
    .await;
    a.call("get_tagging_policy", json!({})).await;
    let mut b = HttpClient::authenticated(&server.base, "token-b").await;
    b.call("get_tagging_policy", json!({})).await;

    let trail = b.call("get_audit_trail", json!({})).await;
    let out = &trail["structuredContent"];
    assert_eq!(out["principal"], pb.as_str());
    assert_eq!(out["admin"], false);
    let text = out.to_string();
    assert!(
        !text.contains(&a_session) && !text.contains("a-secret-plan") && !text.contains(&pa),
        "B sees nothing of A: {text}"
    );
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(out["total"], 1, "B's own call so far: {text}");
    assert!(rows.iter().all(|r| r["principal"] == pb.as_str()));
    // Asking for A's rows is refused; asking for A's session finds nothing.
    let refused = b.call("get_audit_trail", json!({"principal": pa})).await;
    assert_eq!(refused["isError"], true);
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("needs the admin role"),
        "{refused}"
    );
    let by_session = b
        .call(
            "get_audit_trail",
            json!({"session": format!("http:{a_session}")}),
        )
        .await;
    assert_eq!(by_session["structuredContent"]["total"], 0);

    // The administrator sees everyone's rows, and can pick one principal.
    let mut admin = HttpClient::authenticated(&server.base, "token-admin").await;
    let all = admin.call("get_audit_trail", json!({})).await;
    let out = &all["structuredContent"];
    assert_eq!(
        (&out["principal"], &out["admin"]),
        (&json!(padmin), &json!(true))
    );
    let principals: Vec<&str> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["principal"].as_str().unwrap())
        .collect();
    for p in [&pa, &pb] {
        assert!(principals.contains(&p.as_str()), "{p} in {principals:?}");
    }
    assert!(out.to_string().contains("a-secret-plan"));
    let only_a = admin
        .call("get_audit_trail", json!({"principal": pa}))
        .await;
    assert_eq!(only_a["structuredContent"]["total"], 2);
}

#[tokio::test]
async fn the_verified_principal_is_recorded_beside_the_names_callers_give() {
    let server = HttpServer::start(
        &[
            "--demo",
            "--no-prewarm",
            "--budget-burst",
            "0",
            "--loop-max-repeats",
            "0",
        ],
        &[TOKENS],
    );
    let pa = principal_of("token-a");
    let pb = principal_of("token-b");
    let mut a = HttpClient::authenticated(&server.base, "token-a").await;
    let suggested = a
        .call(
            "suggest_tags",
            json!({"filter": {"resource_types": ["ec2:instance"], "regions": ["eu-west-1"],
                   "tags_missing": ["Owner"]}, "keys": ["Owner"], "propose": true}),
        )
        .await;
    assert_ne!(suggested["isError"], true, "{suggested}");
    let pending = a.call("review_virtual_tags", json!({})).await;
    let tags = pending["structuredContent"]["tags"].as_array().unwrap();
    assert!(!tags.is_empty(), "suggestions were proposed");
    assert!(
        tags.iter()
            .all(|t| t["created_by_principal"] == pa.as_str())
    );

    // B decides, naming someone else: the name is kept as given, B's principal beside it.
    let mut b = HttpClient::authenticated(&server.base, "token-b").await;
    let decided = b
        .call(
            "review_virtual_tags",
            json!({"action": "approve", "filter": {"sources": ["suggestion"]},
                   "reason": "owners confirmed", "decided_by": "alice@example.com"}),
        )
        .await;
    let tags = decided["structuredContent"]["tags"].as_array().unwrap();
    assert!(!tags.is_empty(), "{decided}");
    for t in tags {
        assert_eq!(t["decided_by"], "alice@example.com");
        assert_eq!(t["decided_by_principal"], pb.as_str());
        assert_eq!(t["created_by_principal"], pa.as_str());
    }

    let rule = b
        .call(
            "manage_tag_rules",
            json!({"action": "create", "rule": {"name": "app from name", "priority": 10,
                   "when": {"field": "name", "regex": "^([a-z]+)-api-"},
                   "set": {"Application": "{1}-api"}}}),
        )
        .await;
    assert_ne!(rule["isError"], true, "{rule}");
    assert_eq!(
        rule["structuredContent"]["rule"]["created_by_principal"],
        pb.as_str()
    );

    let applied = a
        .call(
            "apply_virtual_tag",
            json!({"filter": {"name_glob": "payments-*"}, "key": "CostCenter",
                   "value": "CC-1234", "reason": "finance mapping"}),
        )
        .await;
    assert_ne!(applied["isError"], true, "{applied}");
    let listed = b
        .call(
            "review_virtual_tags",
            json!({"filter": {"statuses": ["approved"], "sources": ["manual"]}, "limit": 5}),
        )
        .await;
    let tags = listed["structuredContent"]["tags"].as_array().unwrap();
    assert!(!tags.is_empty(), "{listed}");
    assert!(
        tags.iter()
            .all(|t| t["created_by_principal"] == pa.as_str())
    );
}
