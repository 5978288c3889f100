//! A moto server (local AWS look-alike) for one test binary, seeded with the known two-region
//! estate of tests/support/seed_moto.py, and the AWS environment that points Tagwarden at it.
//! The server counts the API requests it serves (`calls()`), so tests can check from outside
//! how many calls a scan made.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Moto {
    pub url: String,
    /// The independent recount printed by the seeding script.
    pub expected: Value,
    _child: Child,
}

impl Moto {
    /// Starts the test moto server (tests/support/moto_server.py) on a free port.
    fn spawn() -> (String, Child) {
        let port = super::free_port();
        let child = Command::new(super::venv_bin("python"))
            .arg(super::repo().join("tests/support/moto_server.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        super::wait_for_port(port, Duration::from_secs(60));
        (format!("http://127.0.0.1:{port}"), child)
    }

    pub fn start_seeded() -> Moto {
        Moto::start_seeded_by("seed_moto.py", &[])
    }

    /// A moto server seeded by `tests/support/<script> URL <args...>`, whose stdout is the
    /// independent recount (`expected`).
    pub fn start_seeded_by(script: &str, args: &[&str]) -> Moto {
        let (url, child) = Moto::spawn();
        let out = Command::new(super::venv_bin("python"))
            .arg(super::repo().join("tests/support").join(script))
            .arg(&url)
            .args(args)
            .output()
            .expect("seed moto");
        assert!(
            out.status.success(),
            "seeding failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = serde_json::from_slice(&out.stdout).expect("recount JSON");
        Moto {
            url,
            expected,
            _child: child,
        }
    }

    /// A moto server with nothing seeded (`expected` is null): for tests that set their own
    /// estate, e.g. AWS Config's (`set_config_estate`).
    pub fn start_bare() -> Moto {
        let (url, child) = Moto::spawn();
        Moto {
            url,
            expected: Value::Null,
            _child: child,
        }
    }

    /// Sets what AWS Config's advanced queries answer from (see tests/support/moto_server.py):
    /// `{"aggregators": {NAME: [item, ...]}, "recorders": {REGION: [item, ...]}}`. Clears the
    /// queries received so far.
    pub fn set_config_estate(&self, estate: &Value) {
        let answer = reqwest::blocking_post(
            &format!("{}/_tagwarden/config", self.url),
            &estate.to_string(),
        );
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains(" 200"),
            "{answer}"
        );
    }

    /// The AWS Config queries received since the estate was set: `[{operation, scope,
    /// expression, limit, next_token}]`.
    pub fn config_queries(&self) -> Vec<Value> {
        let body = reqwest::blocking_get(&format!("{}/_tagwarden/config-queries", self.url));
        serde_json::from_str(&body).expect("config queries JSON")
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// AWS API requests moto has served so far (all operations).
    pub fn calls(&self) -> u64 {
        self.counter()["total"].as_u64().expect("total")
    }

    /// Requests of one operation (`GetCostAndUsage`, `GetResources`, ...) served so far.
    pub fn calls_of(&self, operation: &str) -> u64 {
        self.counter()["by_operation"][operation]
            .as_u64()
            .unwrap_or(0)
    }

    /// Requests signed with `access_key`, by operation (tests that share a moto count their own
    /// calls by using their own access key).
    pub fn calls_by(&self, access_key: &str) -> Value {
        self.counter()["by_access_key"][access_key].clone()
    }

    /// The environment of `env()` with another access key id (same account).
    pub fn env_as(&self, access_key: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        for (k, v) in env.iter_mut() {
            if *k == "AWS_ACCESS_KEY_ID" {
                *v = access_key.to_string();
            }
        }
        env
    }

    /// Sets up the Resource Explorer stub for requests signed with `access_key` (see
    /// tests/support/resource_explorer_stub.py): indexes, default views, denials, page size.
    pub fn configure_resource_explorer(&self, access_key: &str, mut setup: Value) {
        setup["access_key"] = Value::String(access_key.to_string());
        let answer = reqwest::blocking_post(
            &format!("{}/_tagwarden/resource-explorer", self.url),
            &setup.to_string(),
        );
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains(" 200"),
            "{answer}"
        );
    }

    /// Makes `sts:AssumeRole` into these accounts answer AccessDenied, as AWS does when the
    /// role is missing or does not trust the caller (an empty list lets every role in again).
    pub fn deny_assume_role(&self, accounts: &[&str]) {
        let body = serde_json::json!({ "account_ids": accounts });
        let answer = reqwest::blocking_post(
            &format!("{}/_tagwarden/deny-assume-role", self.url),
            &body.to_string(),
        );
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains(" 200"),
            "{answer}"
        );
    }

    /// The RoleArn of every AssumeRole request served so far, in order.
    pub fn assumed_roles(&self) -> Vec<String> {
        let body = reqwest::blocking_get(&format!("{}/_tagwarden/assumed-roles", self.url));
        serde_json::from_str(&body).expect("assumed roles JSON")
    }

    /// Requests served so far, per operation.
    pub fn calls_by_operation(&self) -> Value {
        self.counter()["by_operation"].clone()
    }

    fn counter(&self) -> Value {
        let body = reqwest::blocking_get(&format!("{}/_tagwarden/calls", self.url));
        serde_json::from_str(&body).expect("moto call counter JSON")
    }

    /// Queues Cost Explorer `GetCostAndUsage` answers: each distinct request body takes the
    /// next one, in the order the requests arrive (a repeated body gets the same answer).
    pub fn queue_cost_results(&self, results: &[Value]) {
        let body = serde_json::json!({"results": results, "account_id": "123456789012"});
        let answer = reqwest::blocking_post(
            &format!("{}/moto-api/static/ce/cost-and-usage-results", self.url),
            &body.to_string(),
        );
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains(" 20"),
            "{answer}"
        );
    }
}

/// `(name, value)` pairs as the `&str` pairs the runners take.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A tiny blocking GET (the tests' reqwest is async-only).
mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get(url: &str) -> String {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(host).expect("connect to moto");
        write!(
            s,
            "GET /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        text.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default()
    }

    /// POSTs JSON; returns the whole response (status line included).
    pub fn blocking_post(url: &str, body: &str) -> String {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(host).expect("connect to moto");
        write!(
            s,
            "POST /{path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        text
    }
}
