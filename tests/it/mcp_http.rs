//! MCP over Streamable HTTP against the real binary on the demo estate: sessions (2025-11-25),
//! stateless requests (2026-07-28), errors, DNS-rebinding and token protection.

use crate::common::{HttpClient, HttpServer, check_json, messages, without_timing};
use serde_json::{Value, json};

const DEMO: &[&str] = &["--demo", "--no-prewarm"];

#[tokio::test]
async fn session_lists_tools_and_matches_the_cli() {
    let server = HttpServer::start(DEMO, &[]);
    let mut c = HttpClient::new(&server.base);
    let init = c.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "tagwarden");

    let list = c.request("tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), crate::common::tool_count());
    for t in tools {
        assert!(t["inputSchema"].is_object() && t["outputSchema"].is_object());
    }

    let r = c.call("check_tag_compliance", json!({"limit": 10})).await;
    let cli = check_json(&["--demo", "--limit", "10"], &[]);
    assert_eq!(
        without_timing(r["structuredContent"].clone()),
        without_timing(cli)
    );

    let bad = c.call("check_tag_compliance", json!({"limit": -1})).await;
    assert_eq!(bad["isError"], true);
    assert!(
        bad["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("limit")
    );

    let unknown = c
        .request("tools/call", json!({"name": "nope", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602);
}

#[tokio::test]
async fn stateless_2026_07_28_requests_are_served() {
    let server = HttpServer::start(DEMO, &[]);
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "check_tag_compliance", "arguments": {"limit": 1},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let resp = http
        .post(format!("{}/mcp", server.base))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "check_tag_compliance")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("mcp-session-id").is_none(),
        "no session in 2026-07-28"
    );
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let msgs = messages(&ct, &resp.text().await.unwrap());
    let reply = msgs.iter().find(|m| m["id"] == 7).expect("reply");
    assert_eq!(reply["result"]["structuredContent"]["resources"], 5000);
}

#[tokio::test]
async fn malformed_json_gets_a_jsonrpc_parse_error_and_serving_continues() {
    let server = HttpServer::start(DEMO, &[]);
    let mut c = HttpClient::new(&server.base);
    c.initialize().await;
    let resp = c
        .http
        .post(&c.url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    let list = c.request("tools/list", json!({})).await;
    assert_eq!(
        list["result"]["tools"].as_array().unwrap().len(),
        crate::common::tool_count()
    );
}

#[tokio::test]
async fn healthz_and_host_checks() {
    let server = HttpServer::start(DEMO, &[]);
    let http = reqwest::Client::new();
    let health: Value = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["policy_hash"].as_str().unwrap().len(), 64);

    // DNS rebinding: a foreign Host header is refused.
    let resp = http
        .post(format!("{}/mcp", server.base))
        .header("Host", "attacker.example")
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // A browser page from another origin is refused.
    let resp = http
        .post(format!("{}/mcp", server.base))
        .header("Origin", "https://attacker.example")
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": crate::common::PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "x", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn bearer_tokens_are_enforced_when_configured() {
    let server = HttpServer::start(DEMO, &[("TAGWARDEN_API_TOKENS", "s3cret-token,other")]);
    let mut c = HttpClient::new(&server.base);
    let (status, headers, _) = c
        .post(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": crate::common::PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "x", "version": "1"}}}),
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    c.http = crate::common::bearer_client("s3cret-token");
    let init = c.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "tagwarden");
}

#[test]
fn non_loopback_bind_without_tokens_is_refused() {
    let (code, _, stderr) = crate::common::run(&["serve", "--http", "0.0.0.0:0", "--demo"], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("TAGWARDEN_API_TOKENS"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

/// Regression: when whoever reads the server's stderr goes away, log writes fail (EPIPE). The
/// server must keep answering and still shut down on SIGTERM.
#[tokio::test]
async fn server_survives_its_stderr_reader_going_away() {
    use std::io::BufRead;
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(crate::common::bin())
        .args(["serve", "--http", "127.0.0.1:0", "--demo", "--no-prewarm"])
        .env("TAGWARDEN_DATA_DIR", data.path())
        .env("TAGWARDEN_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("a log line").unwrap();
        if let Some(at) = line.find("listening on http://") {
            break line[at + "listening on ".len()..]
                .trim()
                .trim_end_matches("/mcp")
                .to_string();
        }
    };
    drop(lines); // the reader goes away: every later log write fails
    let mut c = HttpClient::new(&base);
    c.initialize().await;
    for i in 0..3 {
        let r = c.call("check_tag_compliance", json!({"limit": i})).await;
        assert_eq!(r["structuredContent"]["resources"], 5000);
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit after SIGTERM: {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
