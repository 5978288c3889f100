//! AWS failure handling against a stub Tagging API that throttles, refuses a region, answers
//! with an HTML error page and paginates: retries are counted, a failed region is reported in
//! data_quality (never dropped silently), what was fetched is kept, nothing crashes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Default)]
struct Stub {
    throttled: AtomicU32,
    requests: AtomicU32,
}

fn region_of(headers: &HeaderMap) -> String {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Credential=AKID/20261122/us-east-1/tagging/aws4_request
    auth.split('/').nth(2).unwrap_or("").to_string()
}

fn page(from: usize, to: usize, token: Option<&str>) -> Value {
    let list: Vec<Value> = (from..to)
        .map(|i| {
            json!({"ResourceARN": format!("arn:aws:sqs:us-east-1:123456789012:q-{i:03}"),
                   "Tags": [{"Key": "Environment", "Value": if i % 2 == 0 { "production" } else { "qa" }}]})
        })
        .collect();
    let mut body = json!({"ResourceTagMappingList": list});
    if let Some(t) = token {
        body["PaginationToken"] = json!(t);
    }
    body
}

fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response()
}

async fn handle(stub: Arc<Stub>, headers: HeaderMap, body: Bytes) -> Response {
    stub.requests.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    match region_of(&headers).as_str() {
        "us-east-1" => {
            if stub.throttled.fetch_add(1, Ordering::SeqCst) == 0 {
                return aws_error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded");
            }
            let body = match request.get("PaginationToken").and_then(Value::as_str) {
                None | Some("") => page(0, 100, Some("page-2")),
                Some("page-2") => page(100, 130, None),
                Some(_) => return aws_error(StatusCode::BAD_REQUEST, "PaginationTokenExpiredException", "bad token"),
            };
            (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], body.to_string()).into_response()
        }
        "eu-west-1" => aws_error(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            "User arn:aws:iam::123456789012:user/secret-person (key AKIAIOSFODNN7EXAMPLE) is not authorized <internal detail>",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/html")],
            "<html><body><h1>500 Internal Server Error</h1><pre>Traceback (most recent call last)</pre></body></html>",
        )
            .into_response(),
    }
}

async fn start_stub() -> (String, Arc<Stub>) {
    let stub = Arc::new(Stub::default());
    let state = stub.clone();
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: Bytes| handle(state.clone(), headers, body)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), stub)
}

fn env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", url.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        // This stub is a Tagging API only: the faults tested here are the Tagging API's.
        ("TAGWARDEN_AWS_COVERAGE", "tagging".into()),
    ]
}

async fn check(url: String, regions: &str) -> (i32, String, String) {
    let regions = regions.to_string();
    tokio::task::spawn_blocking(move || {
        let e = env(&url);
        let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::common::run(
            &[
                "check",
                "--aws",
                "--regions",
                &regions,
                "--format",
                "json",
                "--limit",
                "0",
            ],
            &refs,
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn throttling_is_retried_and_a_refused_region_is_reported() {
    let (url, stub) = start_stub().await;
    let (code, stdout, stderr) = check(url, "us-east-1,eu-west-1,ap-south-1").await;
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["resources"], 130, "both pages of us-east-1 kept");
    let dq = &out["data_quality"];
    assert_eq!(dq["status"], "partial");
    assert_eq!(dq["parts_total"], 3);
    let failures = dq["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    let denied = failures
        .iter()
        .find(|f| f["scope"] == "aws eu-west-1")
        .expect("eu-west-1 reported");
    let message = denied["error"].as_str().unwrap();
    assert!(
        message.contains("AccessDeniedException") && message.contains("tag:GetResources"),
        "{message}"
    );
    assert!(
        !message.contains("secret-person")
            && !message.contains("internal detail")
            && !message.contains("AKIAIOSFODNN7EXAMPLE"),
        "upstream text is summarised: {message}"
    );
    let html = failures
        .iter()
        .find(|f| f["scope"] == "aws ap-south-1")
        .expect("ap-south-1 reported");
    let message = html["error"].as_str().unwrap();
    assert!(
        !message.contains("<html") && !message.contains("Traceback"),
        "{message}"
    );
    // us-east-1: 1 throttled + 2 pages; eu-west-1: 1 (not retryable); ap-south-1: a 500 is
    // retried up to the attempt limit (6).
    let requests = stub.requests.load(Ordering::SeqCst) as u64;
    assert_eq!(
        dq["api_calls"].as_u64().unwrap(),
        requests,
        "every HTTP request counted"
    );
    assert_eq!(requests, 3 + 1 + 6);
    assert_eq!(dq["retries"], 1 + 5);
    assert_eq!(out["by_key"]["Environment"], 65, "the qa half is invalid");
}

#[tokio::test]
async fn every_region_failing_is_one_clear_error() {
    let (url, _) = start_stub().await;
    let (code, stdout, stderr) = check(url, "eu-west-1").await;
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("AWS scan failed in every region")
            && stderr.contains("AccessDeniedException"),
        "{stderr}"
    );
}
