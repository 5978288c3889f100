//! The cache layer against a real Redis: answers cached and shared between server processes,
//! Redis killed in the middle of a session (answers unchanged, only `data_quality` says so, and
//! Redis used again once it is back), keys that change with the policy, and `force_refresh`.
//!
//! The shared Redis is `REDIS_URL` (default redis://127.0.0.1:6379; the test command starts one
//! when none answers); every test uses a key prefix of its own. The "Redis down" test starts a
//! private redis-server and kills it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::StdioClient;
use serde_json::{Value, json};

pub(crate) fn shared_redis_url() -> String {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let hostport = url
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .unwrap_or("127.0.0.1:6379")
        .rsplit('@')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_string();
    assert!(
        ping(&hostport),
        "no Redis answers at {url}: start one (redis-server) or set REDIS_URL; \
         ./scripts/test.sh starts one when none answers"
    );
    url
}

fn ping(hostport: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(hostport) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read(&mut buf)
        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

/// A key prefix no other test (or run) uses.
pub(crate) fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tagwarden-test:{test}:{}:{nanos}", std::process::id())
}

/// A redis-server of this test's own, on a free port, that the test can kill and restart.
pub(crate) struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(crate) fn start() -> PrivateRedis {
        let mut r = PrivateRedis {
            port: crate::common::free_port(),
            child: None,
        };
        r.restart();
        r
    }

    /// Makes the server unresponsive for `seconds` (DEBUG SLEEP), as an overloaded Redis is.
    fn stall(&self, seconds: u32) -> std::thread::JoinHandle<()> {
        let port = self.port;
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            let cmd = format!("DEBUG SLEEP {seconds}\r\n");
            s.write_all(cmd.as_bytes()).expect("send");
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            assert!(
                buf[..n].starts_with(b"+OK"),
                "{}",
                String::from_utf8_lossy(&buf[..n])
            );
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (is Redis installed?)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ping(&format!("127.0.0.1:{}", self.port)) {
            assert!(
                Instant::now() < deadline,
                "private redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn server(redis_url: Option<&str>, prefix: &str, extra: &[&str]) -> StdioClient {
    let mut args = vec!["--demo", "--no-prewarm"];
    args.extend_from_slice(extra);
    let mut env: Vec<(&str, &str)> = vec![
        ("TAGWARDEN_CACHE_PREFIX", prefix),
        ("TAGWARDEN_LOOP_MAX_REPEATS", "0"),
        ("TAGWARDEN_BUDGET_BURST", "0"),
        ("TAGWARDEN_BUDGET_PER_HOUR", "0"),
    ];
    if let Some(url) = redis_url {
        env.push(("REDIS_URL", url));
    }
    StdioClient::initialized(&args, &env).0
}

fn structured(result: &Value) -> Value {
    assert_ne!(result["isError"], true, "tool failed: {result}");
    result["structuredContent"].clone()
}

fn cache_of(answer: &Value) -> &Value {
    &answer["data_quality"]["cache"]
}

/// The answer without what may differ between equal answers (its data_quality).
/// The answer without its quality blocks (`data_quality`, and the costs' `cost_quality`,
/// which says whether the costs were read for this answer): what a cache must not change.
fn without_quality(mut answer: Value) -> Value {
    let map = answer.as_object_mut().expect("object answer");
    map.remove("data_quality");
    if let Some(spend) = map.get_mut("spend").and_then(Value::as_object_mut) {
        spend.remove("cost_quality");
    }
    answer
}

#[test]
fn answers_are_cached_and_shared_between_servers_through_redis() {
    let url = shared_redis_url();
    let prefix = unique_prefix("shared");
    let question = json!({"resource_types": ["ec2:*"], "limit": 5});

    let mut a = server(Some(&url), &prefix, &[]);
    let first = structured(&a.call("check_tag_compliance", question.clone()));
    assert_eq!(cache_of(&first)["result"], "miss");
    assert_eq!(cache_of(&first)["layer"], "fresh_scan");
    assert_eq!(cache_of(&first)["shared_cache"], "available");
    let again = structured(&a.call("check_tag_compliance", question.clone()));
    assert_eq!(cache_of(&again)["result"], "hit");
    assert_eq!(cache_of(&again)["result_layer"], "in_process");
    assert_eq!(cache_of(&again)["hit"], true);
    assert_eq!(without_quality(again), without_quality(first.clone()));

    // Another server process with the same Redis: the same question on the same data is
    // answered from Redis.
    let mut b = server(Some(&url), &prefix, &[]);
    let shared = structured(&b.call("check_tag_compliance", question.clone()));
    assert_eq!(cache_of(&shared)["result"], "hit", "{}", cache_of(&shared));
    assert_eq!(cache_of(&shared)["result_layer"], "redis");
    assert_eq!(without_quality(shared), without_quality(first));

    // A server told to reuse nothing (--inventory-ttl 0) does not read cached answers either.
    let mut never = server(Some(&url), &prefix, &["--inventory-ttl", "0"]);
    let fresh = structured(&never.call("check_tag_compliance", question.clone()));
    assert_eq!(cache_of(&fresh)["result"], "miss");
    assert_eq!(cache_of(&fresh)["layer"], "fresh_scan");

    // force_refresh rescans and does not reuse the cached answer.
    let mut forced_q = question.clone();
    forced_q["force_refresh"] = json!(true);
    let forced = structured(&b.call("check_tag_compliance", forced_q));
    assert_eq!(cache_of(&forced)["result"], "bypassed");
    assert_eq!(cache_of(&forced)["layer"], "fresh_scan");
    assert_eq!(cache_of(&forced)["hit"], false);
}

#[test]
fn killing_redis_changes_no_answer_only_data_quality() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let prefix = unique_prefix("killed");
    let q1 = json!({"limit": 3});
    let q2 = json!({"regions": ["eu-west-1"], "limit": 3});

    let mut s = server(Some(&url), &prefix, &[]);
    let a1 = structured(&s.call("check_tag_compliance", q1.clone()));
    assert_eq!(cache_of(&a1)["shared_cache"], "available");

    redis.kill();
    // A new question needs Redis (a miss in process), which is gone: the call still succeeds.
    let a2 = structured(&s.call("check_tag_compliance", q2.clone()));
    assert_eq!(
        cache_of(&a2)["shared_cache"],
        "unavailable",
        "{}",
        cache_of(&a2)
    );
    assert!(cache_of(&a2)["shared_cache_error"].is_string());
    assert_eq!(cache_of(&a2)["result"], "miss");
    // The earlier question is answered from this process, unchanged.
    let a1_again = structured(&s.call("check_tag_compliance", q1.clone()));
    assert_eq!(cache_of(&a1_again)["result"], "hit");
    assert_eq!(without_quality(a1_again), without_quality(a1.clone()));

    // The same questions asked of a server that never had Redis: identical answers.
    let mut plain = server(None, &prefix, &[]);
    let p1 = structured(&plain.call("check_tag_compliance", q1.clone()));
    let p2 = structured(&plain.call("check_tag_compliance", q2));
    assert_eq!(cache_of(&p1)["shared_cache"], "not_configured");
    assert_eq!(without_quality(p1), without_quality(a1));
    assert_eq!(without_quality(p2), without_quality(a2));

    // Redis back: a background probe notices within a second or two, so even an answer this
    // process holds (which needs no Redis) reports the shared cache available again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let again = structured(&s.call("check_tag_compliance", q1.clone()));
        assert_eq!(cache_of(&again)["result"], "hit");
        if cache_of(&again)["shared_cache"] == "available" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Redis not seen again: {}",
            cache_of(&again)
        );
    }
    // And it is used: a new answer is stored there and found by another server.
    let q3 = json!({"resource_types": ["s3:bucket"], "limit": 3});
    let a3 = structured(&s.call("check_tag_compliance", q3.clone()));
    assert_eq!(cache_of(&a3)["shared_cache"], "available");
    let mut other = server(Some(&url), &prefix, &[]);
    let from_redis = structured(&other.call("check_tag_compliance", q3));
    assert_eq!(cache_of(&from_redis)["result_layer"], "redis");
}

#[test]
fn a_policy_change_changes_the_key_so_the_answer_is_recomputed() {
    let url = shared_redis_url();
    let prefix = unique_prefix("policy");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let original =
        std::fs::read_to_string(crate::common::repo().join("policies/tagging_policy.json"))
            .expect("default policy file");
    std::fs::write(&policy, &original).unwrap();
    let policy_arg = crate::common::path_str(&policy);
    let mut s = server(Some(&url), &prefix, &["--policy", &policy_arg]);
    let q = json!({"limit": 0});
    let before = structured(&s.call("check_tag_compliance", q.clone()));
    let hit = structured(&s.call("check_tag_compliance", q.clone()));
    assert_eq!(cache_of(&hit)["result"], "hit");

    // A stricter policy: the file watcher reloads it within a few seconds.
    let mut changed: Value = serde_json::from_str(&original).unwrap();
    changed["max_tags"] = json!(3);
    std::fs::write(&policy, serde_json::to_string_pretty(&changed).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        std::thread::sleep(Duration::from_millis(500));
        let a = structured(&s.call("check_tag_compliance", q.clone()));
        if a["policy_hash"] != before["policy_hash"] {
            break a;
        }
        assert!(Instant::now() < deadline, "policy was not reloaded");
    };
    assert_eq!(cache_of(&after)["result"], "miss", "{}", cache_of(&after));
    assert!(after["by_kind"]["too_many_tags"].as_u64().unwrap_or(0) > 0);
    assert_ne!(after["violations_total"], before["violations_total"]);
}

#[test]
fn a_slow_redis_is_not_waited_for() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    let prefix = unique_prefix("slow");
    let mut s = server(Some(&url), &prefix, &[]);
    let warm = structured(&s.call("check_tag_compliance", json!({"limit": 1})));
    assert_eq!(cache_of(&warm)["shared_cache"], "available");

    // Redis stops answering for 3 s; a new question is answered without it.
    let stalled = redis.stall(3);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let answer = structured(&s.call("check_tag_compliance", json!({"limit": 2})));
    let took = started.elapsed();
    assert_eq!(
        cache_of(&answer)["shared_cache"],
        "unavailable",
        "{}",
        cache_of(&answer)
    );
    let why = cache_of(&answer)["shared_cache_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("no answer within"), "{why}");
    stalled.join().unwrap();
    // Said, not asserted (no timing assertions): how long the call took while Redis slept.
    eprintln!("answered in {took:?} while Redis slept");
}
