//! Budgets and loop detection shared by replicas through Redis: two `serve --http` replicas
//! sharing the real Redis at `REDIS_URL` (default redis://127.0.0.1:6379, a key prefix per
//! test) enforce one budget and one loop detector per principal; with Redis unreachable each
//! replica enforces its own and `/healthz` says so, and once Redis answers they share again.
//!
//! An MCP session (2025-11-25) lives in the replica that issued it, so a client that alternates
//! replicas sends stateless (2026-07-28) requests: the principal's budgets are the ones they
//! share.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cache_redis::{PrivateRedis, shared_redis_url, unique_prefix};
use crate::common::{HttpClient, HttpServer, messages};

const TOKENS: (&str, &str) = ("TAGWARDEN_API_TOKENS", "token-a,token-b");

/// A replica of a deployment: `--demo`, tokens A and B, Redis at `redis_url` under `prefix`.
/// The Redis timeout is generous: a loaded test machine must not make a replica fall back.
fn replica(redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> HttpServer {
    let mut all = vec![
        TOKENS,
        ("REDIS_URL", redis_url),
        ("TAGWARDEN_CACHE_PREFIX", prefix),
        ("TAGWARDEN_CACHE_TIMEOUT", "5s"),
    ];
    all.extend_from_slice(env);
    HttpServer::start(&["--demo", "--no-prewarm"], &all)
}

/// One stateless (2026-07-28) tools/call with a bearer token: `ok` or the refusal's text.
async fn call(base: &str, token: &str, tool: &str, args: Value) -> String {
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
        .body(body.to_string())
        .send()
        .await
        .expect("POST /mcp");
    let status = resp.status();
    assert_eq!(status, 200, "{}", resp.text().await.unwrap_or_default());
    let ct = resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    let msgs = messages(&ct, &resp.text().await.unwrap_or_default());
    let reply = msgs.iter().find(|m| m["id"] == 1).expect("a reply");
    let result = &reply["result"];
    if result["isError"] == true {
        result["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string()
    } else {
        "ok".to_string()
    }
}

async fn guard_state(server: &HttpServer) -> String {
    let health: Value = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("GET /healthz")
        .json()
        .await
        .expect("/healthz is JSON");
    health["guard_state"].as_str().unwrap_or("").to_string()
}

/// One RESP command to the Redis at `url` (no credentials, no database index): the reply's
/// lines.
fn redis_command(url: &str, args: &[&str]) -> Vec<String> {
    let hostport = url.trim_start_matches("redis://");
    let hostport = hostport.split(['/', '?']).next().unwrap_or(hostport);
    let mut s = TcpStream::connect(hostport).expect("connect to Redis");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).expect("send to Redis");
    // Replies here are small: read until the reply is complete enough to parse.
    let mut text = String::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if n == 0 || complete(&text) {
            break;
        }
    }
    text.lines().map(str::to_string).collect()
}

/// Whether a RESP reply of a simple value or an array of bulk strings has fully arrived.
fn complete(text: &str) -> bool {
    let lines: Vec<&str> = text.split("\r\n").collect();
    match lines.first().and_then(|l| l.strip_prefix('*')) {
        Some(n) => {
            let n: usize = n.parse().unwrap_or(0);
            lines.len() > 2 * n + 1
        }
        None => text.ends_with("\r\n"),
    }
}

/// The keys under `prefix` (`KEYS` is fine on a test Redis with few keys).
fn keys_under(url: &str, prefix: &str) -> Vec<String> {
    let lines = redis_command(url, &["KEYS", &format!("{prefix}:*")]);
    lines
        .into_iter()
        .skip(1)
        .filter(|l| !l.starts_with('$'))
        .collect()
}

#[tokio::test]
async fn a_client_alternating_between_replicas_has_one_budget() {
    let url = shared_redis_url();
    let prefix = unique_prefix("shared-guard-budget");
    let no_loops = [("TAGWARDEN_LOOP_MAX_REPEATS", "0")];
    let a = replica(&url, &prefix, &no_loops);
    let b = replica(&url, &prefix, &no_loops);
    assert_eq!(guard_state(&a).await, "shared");
    assert_eq!(guard_state(&b).await, "shared");

    let mut outcomes = Vec::new();
    for i in 0..22 {
        let to = if i % 2 == 0 { &a } else { &b };
        outcomes.push(call(&to.base, "token-a", "get_tagging_policy", json!({})).await);
    }
    let answered = outcomes.iter().take_while(|o| *o == "ok").count();
    assert_eq!(answered, 20, "one burst of 20 a minute: {outcomes:?}");
    // The 21st call (on replica A) and the 22nd (on B) are refused with today's words.
    for refusal in &outcomes[20..] {
        assert!(
            refusal.contains("20 calls per minute, all its sessions together")
                && refusal.contains("TAGWARDEN_BUDGET_PRINCIPAL_BURST")
                && refusal.contains("the next call is allowed in"),
            "{refusal}"
        );
    }
    // Another principal has its own budget, on either replica.
    assert_eq!(
        call(&b.base, "token-b", "get_tagging_policy", json!({})).await,
        "ok"
    );
    assert_eq!(
        call(&a.base, "token-b", "get_tagging_policy", json!({})).await,
        "ok"
    );

    // The keys: under the prefix, hashed principals, each with an expiry.
    let keys = keys_under(&url, &prefix);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{prefix}:guard:v1:principal-burst:"))),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("{prefix}:guard:v1:global-hour")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.contains("token")),
        "no token or principal id in a key: {keys:?}"
    );
    for key in keys.iter().filter(|k| k.contains(":guard:")) {
        let ttl = redis_command(&url, &["PTTL", key]);
        let ms: i64 = ttl[0].trim_start_matches(':').parse().unwrap_or(-1);
        assert!(ms > 0, "{key} expires: PTTL {ttl:?}");
    }
}

#[tokio::test]
async fn a_sessions_budget_is_kept_in_redis_beside_its_principals() {
    let url = shared_redis_url();
    let prefix = unique_prefix("shared-guard-session");
    let env = [
        ("TAGWARDEN_LOOP_MAX_REPEATS", "0"),
        ("TAGWARDEN_BUDGET_BURST", "3"),
        ("TAGWARDEN_BUDGET_PRINCIPAL_BURST", "5"),
    ];
    let a = replica(&url, &prefix, &env);
    let b = replica(&url, &prefix, &env);
    // A 2025-11-25 session of token A on replica A.
    let mut session = HttpClient::authenticated(&a.base, "token-a").await;
    let outcome = |r: Value| {
        if r["isError"] == true {
            r["content"][0]["text"].as_str().unwrap_or("").to_string()
        } else {
            "ok".to_string()
        }
    };
    for i in 0..3 {
        let r = outcome(session.call("get_tagging_policy", json!({})).await);
        assert_eq!(r, "ok", "session call {}", i + 1);
    }
    let refusal = outcome(session.call("get_tagging_policy", json!({})).await);
    assert!(
        refusal.contains("this session may make 3 calls per minute"),
        "{refusal}"
    );
    // The refused call took nothing from the principal's burst of 5: two more calls of token
    // A, on the other replica, are answered, and the third is refused for the principal.
    for _ in 0..2 {
        assert_eq!(
            call(&b.base, "token-a", "get_tagging_policy", json!({})).await,
            "ok"
        );
    }
    let refusal = call(&b.base, "token-a", "get_tagging_policy", json!({})).await;
    assert!(
        refusal.contains("5 calls per minute, all its sessions together"),
        "{refusal}"
    );
    let keys = keys_under(&url, &prefix);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{prefix}:guard:v1:session-burst:"))),
        "{keys:?}"
    );
}

#[tokio::test]
async fn the_loop_detector_trips_across_replicas() {
    let url = shared_redis_url();
    let prefix = unique_prefix("shared-guard-loops");
    let no_budgets = [
        ("TAGWARDEN_BUDGET_BURST", "0"),
        ("TAGWARDEN_BUDGET_PER_HOUR", "0"),
        ("TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR", "0"),
        ("TAGWARDEN_BUDGET_GLOBAL_PER_HOUR", "0"),
    ];
    let a = replica(&url, &prefix, &no_budgets);
    let b = replica(&url, &prefix, &no_budgets);
    let same = json!({"resource_types": ["ec2:*"], "limit": 3});

    // The same call three times, spread over both replicas; the 4th is refused on either.
    for (i, to) in [&a, &b, &a].into_iter().enumerate() {
        let r = call(&to.base, "token-a", "find_untagged_resources", same.clone()).await;
        assert_eq!(r, "ok", "call {}", i + 1);
    }
    let refusal = call(&b.base, "token-a", "find_untagged_resources", same.clone()).await;
    assert!(
        refusal.contains("loop detected")
            && refusal.contains("already called 3 times")
            && refusal.contains("TAGWARDEN_LOOP_MAX_REPEATS"),
        "{refusal}"
    );
    // A refused call is not remembered, and another principal is not affected.
    assert!(
        call(&a.base, "token-a", "find_untagged_resources", same.clone())
            .await
            .contains("already called 3 times")
    );
    assert_eq!(
        call(&a.base, "token-b", "find_untagged_resources", same.clone()).await,
        "ok"
    );

    // A-B-A-B across replicas (token B: its own calls).
    let x = json!({"resource_types": ["s3:*"], "limit": 2});
    let y = json!({"resource_types": ["rds:*"], "limit": 2});
    assert_eq!(
        call(&b.base, "token-b", "find_untagged_resources", x.clone()).await,
        "ok"
    );
    assert_eq!(
        call(&a.base, "token-b", "find_untagged_resources", y.clone()).await,
        "ok"
    );
    assert_eq!(
        call(&b.base, "token-b", "find_untagged_resources", x.clone()).await,
        "ok"
    );
    let refusal = call(&a.base, "token-b", "find_untagged_resources", y.clone()).await;
    assert!(refusal.contains("alternate"), "{refusal}");

    // The remembered calls expire with the window.
    let keys = keys_under(&url, &prefix);
    let loops: Vec<_> = keys.iter().filter(|k| k.contains(":loops:")).collect();
    assert_eq!(loops.len(), 2, "one list per principal: {keys:?}");
    for key in loops {
        let ttl = redis_command(&url, &["PTTL", key]);
        let ms: i64 = ttl[0].trim_start_matches(':').parse().unwrap_or(-1);
        assert!(ms > 0 && ms <= 300_000, "{key}: PTTL {ttl:?}");
    }
}

#[tokio::test]
async fn without_redis_each_replica_has_its_own_limits_until_redis_answers() {
    // A Redis of this test's own, stopped: its port is closed.
    let mut redis = PrivateRedis::start();
    redis.kill();
    let url = redis.url();
    let prefix = unique_prefix("shared-guard-down");
    let no_loops = [("TAGWARDEN_LOOP_MAX_REPEATS", "0")];
    let a = replica(&url, &prefix, &no_loops);
    let b = replica(&url, &prefix, &no_loops);
    assert_eq!(guard_state(&a).await, "local (redis unavailable)");
    assert_eq!(guard_state(&b).await, "local (redis unavailable)");

    // Each replica enforces its own burst of 20: together they admit 40.
    let mut outcomes = Vec::new();
    for i in 0..42 {
        let to = if i % 2 == 0 { &a } else { &b };
        outcomes.push(call(&to.base, "token-a", "get_tagging_policy", json!({})).await);
    }
    let answered = outcomes.iter().filter(|o| *o == "ok").count();
    assert_eq!(answered, 40, "20 per replica: {outcomes:?}");
    assert!(
        outcomes[40..]
            .iter()
            .all(|o| o.contains("20 calls per minute, all its sessions together")),
        "{outcomes:?}"
    );
    // Said once, at start-up, not once per call.
    assert_eq!(warnings_during_calls(&a, 21), 0);
    assert_eq!(warnings_during_calls(&b, 21), 0);

    // Redis answers again: the replicas share once their probe has seen it.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    for server in [&a, &b] {
        while guard_state(server).await != "shared" {
            assert!(
                Instant::now() < deadline,
                "the guard state did not turn shared again"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Token B's calls now go through the shared budget in that Redis.
    assert_eq!(
        call(&a.base, "token-b", "get_tagging_policy", json!({})).await,
        "ok"
    );
    let keys = keys_under(&url, &prefix);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{prefix}:guard:v1:principal-burst:"))),
        "{keys:?}"
    );
    assert_eq!(warnings_during_calls(&a, 1), 0);

    // Redis stops in the middle: calls are still answered, the log says so once, /healthz too.
    redis.kill();
    for _ in 0..5 {
        assert_eq!(
            call(&a.base, "token-b", "get_tagging_policy", json!({})).await,
            "ok"
        );
    }
    assert_eq!(warnings_during_calls(&a, 5), 1, "logged once");
    assert_eq!(guard_state(&a).await, "local (redis unavailable)");
}

/// The warnings that Redis is unavailable in the server's log up to the end of its next
/// `calls` tool calls (each logs `tool call ok|refused|failed` after its guard checks).
fn warnings_during_calls(server: &HttpServer, calls: usize) -> usize {
    let (mut seen, mut warnings) = (0, 0);
    while seen < calls {
        let line = server
            .stderr
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs each tool call");
        if line.contains("shared guard state unavailable") {
            warnings += 1;
        }
        if line.contains("tool call ") {
            seen += 1;
        }
    }
    warnings
}
