//! Scans against moto, counted by moto itself: a repeated question makes no AWS call and says
//! it was a cache hit; `force_refresh` rescans; a second server sharing Redis reuses the first
//! one's listings without calling AWS; a slow scan reports MCP progress.
//!
//! moto here is this binary's own, and the tests take turns (a lock), so the request counts one
//! test reads are its own.

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::common::moto::{Moto, env_refs};
use crate::common::{StdioClient, fixture, path_str};
use serde_json::{Value, json};

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start_seeded)
}

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const REGIONS: &str = "us-east-1,eu-west-1";

fn server(extra_env: &[(&'static str, &str)]) -> StdioClient {
    let m = moto();
    let policy = path_str(&fixture("moto_policy.json"));
    let env = m.env();
    let mut env = env_refs(&env);
    env.extend_from_slice(extra_env);
    StdioClient::initialized(
        &[
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--no-prewarm",
        ],
        &env,
    )
    .0
}

fn answer(c: &mut StdioClient, args: Value) -> Value {
    let r = c.call("check_tag_compliance", args);
    assert_ne!(r["isError"], true, "{r}");
    r["structuredContent"].clone()
}

#[test]
fn a_repeated_question_makes_no_aws_call_and_force_refresh_rescans() {
    let _turn = one_at_a_time();
    let m = moto();
    // A scan's calls: the Tagging API's pages and one ListIndexes (auto coverage looks for a
    // Resource Explorer index; this account has none). Both answers are shared through Redis.
    let scan_calls = m.expected["api_calls"].as_u64().unwrap() + 1;
    let mut c = server(&[]);

    let before = m.calls();
    let first = answer(&mut c, json!({"limit": 5}));
    assert_eq!(
        m.calls() - before,
        scan_calls,
        "the first answer scans: one call per page, and ListIndexes"
    );
    assert_eq!(first["data_quality"]["api_calls"], scan_calls);
    assert_eq!(first["data_quality"]["cache"]["layer"], "fresh_scan");

    let before = m.calls();
    let second = answer(&mut c, json!({"limit": 5}));
    assert_eq!(m.calls() - before, 0, "no AWS call for the same question");
    assert_eq!(second["data_quality"]["cache"]["hit"], true);
    assert_eq!(second["data_quality"]["cache"]["result"], "hit");
    assert_eq!(second["data_quality"]["api_calls"], 0);

    // Another question on the same scan: still no call, the scan is reused.
    let before = m.calls();
    let other = answer(&mut c, json!({"regions": ["eu-west-1"], "limit": 1}));
    assert_eq!(m.calls() - before, 0);
    assert_eq!(other["data_quality"]["cache"]["layer"], "in_process");
    assert_eq!(other["data_quality"]["cache"]["result"], "miss");

    let before = m.calls();
    let forced = answer(&mut c, json!({"limit": 5, "force_refresh": true}));
    assert_eq!(m.calls() - before, scan_calls, "force_refresh rescans");
    assert_eq!(forced["data_quality"]["cache"]["hit"], false);
    assert_eq!(forced["data_quality"]["cache"]["result"], "bypassed");
    assert_eq!(forced["effective"], first["effective"]);
}

#[test]
fn a_second_server_reuses_listings_from_redis_without_calling_aws() {
    let _turn = one_at_a_time();
    let m = moto();
    // A scan's calls: the Tagging API's pages and one ListIndexes (auto coverage looks for a
    // Resource Explorer index; this account has none). Both answers are shared through Redis.
    let scan_calls = m.expected["api_calls"].as_u64().unwrap() + 1;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!(
        "tagwarden-test:aws:{}:{}",
        std::process::id(),
        chrono_free_nanos()
    );
    let shared = [
        ("REDIS_URL", url.as_str()),
        ("TAGWARDEN_CACHE_PREFIX", prefix.as_str()),
    ];

    let mut a = server(&shared);
    let before = m.calls();
    let first = answer(&mut a, json!({"limit": 0}));
    assert_eq!(m.calls() - before, scan_calls);
    assert_eq!(first["data_quality"]["cache"]["shared_cache"], "available");

    // A different question, so the answer itself is not cached: only the listings are shared.
    let mut b = server(&shared);
    let before = m.calls();
    let second = answer(&mut b, json!({"limit": 1, "min_severity": "high"}));
    assert_eq!(m.calls() - before, 0, "listings came from Redis");
    let dq = &second["data_quality"];
    assert_eq!(dq["cache"]["layer"], "redis", "{dq}");
    assert_eq!(dq["cache"]["hit"], true);
    assert_eq!(dq["parts_from_shared_cache"], dq["parts_total"]);
    assert_eq!(dq["api_calls"], 0);
    assert_eq!(
        dq["resources_scanned"],
        first["data_quality"]["resources_scanned"]
    );

    // force_refresh goes to AWS even though Redis holds the listings.
    let before = m.calls();
    let forced = answer(&mut b, json!({"limit": 0, "force_refresh": true}));
    assert_eq!(m.calls() - before, scan_calls);
    assert_eq!(forced["data_quality"]["parts_from_shared_cache"], 0);
    assert_eq!(forced["effective"], first["effective"]);
}

#[test]
fn a_scan_reports_progress_to_a_client_that_asked_for_it() {
    let _turn = one_at_a_time();
    let mut c = server(&[("TAGWARDEN_PROGRESS_AFTER", "0")]);
    let id = json!(77);
    c.send_raw(
        &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "check_tag_compliance", "arguments": {"limit": 0},
            "_meta": {"progressToken": "scan-1"}}})
        .to_string(),
    );
    let mut progress: Vec<Value> = Vec::new();
    let result = loop {
        let msg = c.next_message();
        if msg["method"] == "notifications/progress" {
            progress.push(msg["params"].clone());
        } else if msg["id"] == id {
            break msg;
        }
    };
    assert_ne!(result["result"]["isError"], true, "{result}");
    assert!(!progress.is_empty(), "no progress notifications");
    let mut last = -1.0;
    for p in &progress {
        assert_eq!(p["progressToken"], "scan-1");
        let value = p["progress"].as_f64().unwrap();
        assert!(value > last, "progress must increase: {progress:?}");
        last = value;
        assert!(p["message"].as_str().unwrap().starts_with("AWS: "), "{p}");
    }

    // Without a token, nothing is sent.
    let quiet = c.request(
        "tools/call",
        json!({"name": "check_tag_compliance", "arguments": {"limit": 0, "force_refresh": true}}),
    );
    assert!(quiet.get("result").is_some());
    assert!(
        c.try_next_message(std::time::Duration::from_millis(300))
            .is_none()
    );
}

fn chrono_free_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
