//! `/metrics` on the real binary: known calls on the demo estate become exact counts, the
//! text is parsed by the Prometheus project's own OpenMetrics parser (Python
//! `prometheus_client`), the endpoint needs the bearer token like `/mcp`, and
//! `--metrics-listen` serves it without a token on loopback only.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{HttpClient, HttpServer, free_port, run, venv_bin, wait_for_port};

const TOKEN: &str = "metrics-test-token";

/// Parses OpenMetrics text with `prometheus_client.openmetrics.parser` (strict: it rejects
/// a malformed exposition) and lists every family's type and every sample.
const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families, samples = {}, []
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = family.type
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps({"families": families, "samples": samples}))
"#;

fn parse_openmetrics(text: &str) -> Value {
    let mut child = Command::new(venv_bin("python"))
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the venv's python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed the parser");
    let out = child.wait_with_output().expect("parser output");
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser JSON")
}

/// The value of the sample `name` whose labels include `labels` (None: no such sample).
fn sample(parsed: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parsed["samples"]
        .as_array()?
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
        })
        .and_then(|s| s["value"].as_f64())
}

fn authorised() -> reqwest::Client {
    crate::common::bearer_client(TOKEN)
}

#[tokio::test]
async fn known_calls_become_exact_series_behind_the_token() {
    let server = HttpServer::start(
        &["--demo", "--no-prewarm"],
        &[("TAGWARDEN_API_TOKENS", TOKEN)],
    );
    let mut c = HttpClient::new(&server.base);
    c.http = authorised();
    c.initialize().await;

    let first = c.call("check_tag_compliance", json!({})).await;
    assert_eq!(first["isError"], json!(false), "{first}");
    let second = c.call("check_tag_compliance", json!({})).await;
    assert_eq!(second["isError"], json!(false), "{second}");
    // Over the 2 KiB string limit: the validation guard refuses it before the tool runs.
    let refused = c
        .call("get_tagging_policy", json!({"note": "x".repeat(5000)}))
        .await;
    assert_eq!(refused["isError"], json!(true), "{refused}");
    // A limit that is not a number: the tool's schema check answers with an error result.
    let bad = c
        .call("check_tag_compliance", json!({"limit": "many"}))
        .await;
    assert_eq!(bad["isError"], json!(true), "{bad}");
    let gap = c.call("get_cost_attribution_gap", json!({})).await;
    assert_eq!(gap["isError"], json!(false), "{gap}");

    let url = format!("{}/metrics", server.base);
    let anonymous = reqwest::get(&url).await.expect("GET /metrics");
    assert_eq!(anonymous.status(), 401, "no token, no metrics");
    let wrong = reqwest::Client::new()
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let resp = authorised().get(&url).send().await.expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let m = parse_openmetrics(&text);

    let calls = |tool: &str, outcome: &str| {
        sample(
            &m,
            "tagwarden_tool_calls_total",
            &[("tool", tool), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("check_tag_compliance", "ok"), Some(2.0), "{text}");
    assert_eq!(calls("check_tag_compliance", "tool_error"), Some(1.0));
    assert_eq!(calls("get_tagging_policy", "refused"), Some(1.0));
    assert_eq!(calls("get_cost_attribution_gap", "ok"), Some(1.0));
    assert_eq!(calls("check_tag_compliance", "refused"), None);
    assert_eq!(
        sample(
            &m,
            "tagwarden_tool_call_duration_seconds_count",
            &[("tool", "check_tag_compliance"), ("outcome", "ok")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            "tagwarden_guard_refusals_total",
            &[("guard", "validation")]
        ),
        Some(1.0)
    );
    // One scan of the demo estate; every later call used it.
    assert_eq!(
        sample(
            &m,
            "tagwarden_scan_duration_seconds_count",
            &[("source", "demo")]
        ),
        Some(1.0)
    );
    // The second identical check was answered from the in-process answer cache.
    assert!(
        sample(
            &m,
            "tagwarden_cache_lookups_total",
            &[("layer", "in_process"), ("result", "hit")]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // The gauges carry the last whole-estate answers, as ratios.
    let score = first["structuredContent"]["score_pct"].as_f64().unwrap();
    let native = first["structuredContent"]["native_score_pct"]
        .as_f64()
        .unwrap();
    let ratio = |name: &str, labels: &[(&str, &str)]| sample(&m, name, labels).unwrap();
    assert!(
        (ratio("tagwarden_compliance_score_ratio", &[("view", "effective")]) - score / 100.0).abs()
            < 1e-9
    );
    assert!(
        (ratio("tagwarden_compliance_score_ratio", &[("view", "native")]) - native / 100.0).abs()
            < 1e-9
    );
    let gap_pct = gap["structuredContent"]["gap_pct"].as_f64().unwrap();
    assert!((ratio("tagwarden_unattributed_cost_ratio", &[]) - gap_pct / 100.0).abs() < 1e-9);
    // The demo estate makes no cloud request and costs nothing in Cost Explorer.
    assert_eq!(
        sample(&m, "tagwarden_cloud_requests_total", &[("provider", "aws")]),
        None
    );
    assert_eq!(
        sample(&m, "tagwarden_cost_explorer_charge_usd_total", &[]),
        Some(0.0)
    );
    // Every row was written before its answer left: nothing is queued.
    assert_eq!(sample(&m, "tagwarden_audit_queue_depth", &[]), Some(0.0));
    assert_eq!(
        sample(
            &m,
            "tagwarden_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // The HTTP side: every request the router answered, by route, method and status (this
    // scrape is counted after its own answer is rendered, so it is not in it).
    let http = |route: &str, method: &str, status: &str| {
        sample(
            &m,
            "tagwarden_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(http("mcp", "POST", "200"), Some(6.0), "{text}");
    assert_eq!(http("mcp", "POST", "202"), Some(1.0), "{text}");
    assert_eq!(http("metrics", "GET", "401"), Some(2.0), "{text}");
    assert_eq!(http("metrics", "GET", "200"), None);
    assert_eq!(
        sample(
            &m,
            "tagwarden_http_request_duration_seconds_count",
            &[("route", "mcp")]
        ),
        Some(7.0)
    );
    assert_eq!(sample(&m, "tagwarden_mcp_sessions_open", &[]), Some(1.0));
    assert!(
        sample(&m, "tagwarden_http_connections_open", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let families = &m["families"];
    assert_eq!(families["tagwarden_http_requests"], "counter");
    assert_eq!(families["tagwarden_tool_calls"], "counter");
    assert_eq!(
        families["tagwarden_tool_call_duration_seconds"],
        "histogram"
    );
    assert_eq!(families["tagwarden_compliance_score_ratio"], "gauge");
    assert_eq!(families["tagwarden_build"], "info");

    // No label carries what a client sent, a session or the token.
    let session = c.session.clone().unwrap();
    for forbidden in [TOKEN, session.as_str(), "xxxxxxxx", "many"] {
        assert!(
            !text.contains(forbidden),
            "`{forbidden}` leaked into:\n{text}"
        );
    }
}

#[tokio::test]
async fn metrics_listen_serves_loopback_without_a_token() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = HttpServer::start(
        &["--demo", "--no-prewarm", "--metrics-listen", &listen],
        &[("TAGWARDEN_API_TOKENS", TOKEN)],
    );
    wait_for_port(port, std::time::Duration::from_secs(10));
    let resp = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .expect("GET /metrics on --metrics-listen");
    assert_eq!(resp.status(), 200);
    let m = parse_openmetrics(&resp.text().await.unwrap());
    assert_eq!(
        sample(
            &m,
            "tagwarden_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // A page rebinding its name to loopback is refused.
    let rebound = reqwest::Client::new()
        .get(format!("http://{listen}/metrics"))
        .header("Host", format!("evil.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // Only /metrics is there: no MCP without a token.
    let mcp = reqwest::Client::new()
        .post(format!("http://{listen}/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 404);
    // The main listener still wants the token.
    let main = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(main.status(), 401);
}

#[test]
fn metrics_listen_beyond_loopback_is_refused() {
    let (code, _, stderr) = run(
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--demo",
            "--no-prewarm",
            "--metrics-listen",
            "0.0.0.0:0",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--metrics-listen must be a loopback address"),
        "{stderr}"
    );
}

/// Against moto: every AWS request the scan made is a `cloud_requests` sample, and their sum is
/// the `data_quality.api_calls` the answer reports (the same SDK interceptor counts both).
#[tokio::test]
async fn aws_requests_are_counted_by_operation_and_outcome() {
    let moto = crate::common::moto::Moto::start_seeded();
    let env = moto.env_as("AKIDMETRICSTEST");
    let policy = crate::common::path_str(&crate::common::fixture("moto_policy.json"));
    let mut envs = crate::common::moto::env_refs(&env);
    envs.push(("TAGWARDEN_API_TOKENS", TOKEN));
    let server = HttpServer::start(
        &[
            "--aws",
            "--regions",
            "us-east-1,eu-west-1",
            "--aws-coverage",
            "tagging",
            "--policy",
            &policy,
            "--no-prewarm",
        ],
        &envs,
    );
    let mut c = HttpClient::new(&server.base);
    c.http = authorised();
    c.initialize().await;
    let answer = c.call("check_tag_compliance", json!({"limit": 1})).await;
    assert_eq!(answer["isError"], json!(false), "{answer}");
    let api_calls = answer["structuredContent"]["data_quality"]["api_calls"]
        .as_u64()
        .expect("api_calls");
    assert!(api_calls >= 2, "one page per region at least: {answer}");
    let seen: u64 = moto
        .calls_by("AKIDMETRICSTEST")
        .as_object()
        .expect("moto counted this key's calls")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(seen, api_calls, "moto saw what the answer reports");

    let text = authorised()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse_openmetrics(&text);
    assert_eq!(
        sample(
            &m,
            "tagwarden_cloud_requests_total",
            &[
                ("provider", "aws"),
                ("operation", "GetResources"),
                ("outcome", "ok")
            ]
        ),
        Some(api_calls as f64),
        "{text}"
    );
    let all: f64 = m["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "tagwarden_cloud_requests_total")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert_eq!(all, api_calls as f64, "{text}");
    assert_eq!(
        sample(
            &m,
            "tagwarden_scan_duration_seconds_count",
            &[("source", "aws")]
        ),
        Some(1.0)
    );
    // No account id, region or ARN of the estate is a label.
    assert!(
        !text.contains("arn:") && !text.contains("eu-west-1"),
        "{text}"
    );
}
