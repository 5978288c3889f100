//! Alerts after audits against a local HTTP receiver started by the test: a planted
//! regression sends exactly one signed webhook (the receiver checks the HMAC over the
//! timestamp and the raw body) and one Slack Block Kit message — from `tagwarden alerts check`
//! and from `serve --snapshot-every`; nothing regressed sends nothing; a failing receiver is
//! retried with backoff and an undelivered alert is reported.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use tagwarden::{HistoryDb, MemberRecord, NewSnapshot, Severity, snapshot_filters};

use crate::common::{StdioClient, path_str, run};

const SECRET: &str = "test-signing-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A tiny HTTP/1.1 receiver: answers each POST with the next scripted status for its path
/// (200 when the script is empty) and records it.
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(script: &[(&str, &[u16])]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut script: HashMap<String, VecDeque<u16>> = script
            .iter()
            .map(|(p, s)| (p.to_string(), s.iter().copied().collect()))
            .collect();
        let record = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let status = script
                    .get_mut(&path)
                    .and_then(|s| s.pop_front())
                    .unwrap_or(200);
                record.lock().unwrap().push(Received {
                    path,
                    headers,
                    body,
                });
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
            }
        });
        Receiver { base, got }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn at(&self, path: &str) -> Vec<Received> {
        let got = self.got.lock().unwrap();
        got.iter().filter(|r| r.path == path).cloned().collect()
    }

    fn total(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

/// Checks the signature headers of a webhook request; its JSON body.
fn verified(r: &Received) -> Value {
    let ts = &r.headers["x-tagwarden-timestamp"];
    let age = Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..300).contains(&age), "fresh timestamp: {ts}");
    let mut mac = Hmac::<sha2_hmac::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.headers["x-tagwarden-signature"], expected);
    assert_eq!(r.headers["content-type"], "application/json");
    serde_json::from_slice(&r.body).unwrap()
}

/// A whole-estate snapshot with the given score and critical violations.
fn snapshot(taken_at: DateTime<Utc>, score: f64, critical: usize) -> NewSnapshot {
    NewSnapshot {
        taken_at,
        trigger: "cli".into(),
        source: "planted".into(),
        policy_hash: "p1".into(),
        filters: snapshot_filters(&[], &[], &[], &[], Severity::Low),
        resources: 100,
        in_scope: 100,
        compliant: score as usize,
        violations: 100 - score as usize,
        score_pct: Some(score),
        native_score_pct: None,
        spend_score_pct: None,
        counts: json!({"by_severity": {"critical": critical, "high": 0, "medium": 0, "low": 0}}),
        by_violation: BTreeMap::new(),
        members: vec![MemberRecord {
            resource_id: "arn:aws:s3:::b".into(),
            resource_type: "s3:bucket".into(),
            region: "global".into(),
            account: "1".into(),
            name: "b".into(),
            tags: vec![],
            violations: vec![],
            failing: false,
            in_scope: true,
        }],
    }
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, 6, 0, 0).unwrap()
}

/// A data dir with the two snapshots `(score, critical)`, oldest first.
fn history_with(a: (f64, usize), b: (f64, usize)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = HistoryDb::open(&dir.path().join("history.db")).unwrap();
    store.insert(&snapshot(day(1), a.0, a.1)).unwrap();
    store.insert(&snapshot(day(2), b.0, b.1)).unwrap();
    dir
}

fn alerts_check(dir: &tempfile::TempDir, rx: &Receiver, extra: &[&str]) -> (i32, Value, String) {
    let data_dir = path_str(dir.path());
    let hook = rx.url("/hook");
    let slack = rx.url("/slack");
    let mut args = vec![
        "alerts",
        "check",
        "--data-dir",
        &data_dir,
        "--notify-webhook",
        &hook,
        "--notify-slack",
        &slack,
        "--notify-backoff",
        "50ms",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args, &[("TAGWARDEN_NOTIFY_SECRET", SECRET)]);
    let outcome = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, outcome, err)
}

#[test]
fn a_regression_sends_one_signed_webhook_and_one_slack_message() {
    let dir = history_with((95.0, 0), (80.0, 2));
    let rx = Receiver::start(&[]);
    let (code, outcome, err) = alerts_check(&dir, &rx, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(outcome["previous"], 1);
    assert_eq!(outcome["current"], 2);
    assert_eq!(
        outcome["sent"],
        json!([
            {"channel": "webhook", "delivered": true, "attempts": 1, "error": null, "dead_letter": null},
            {"channel": "slack", "delivered": true, "attempts": 1, "error": null, "dead_letter": null},
        ])
    );
    assert_eq!(rx.total(), 2);
    let hooks = rx.at("/hook");
    assert_eq!(hooks.len(), 1);
    let body = verified(&hooks[0]);
    assert_eq!(body["event"], "tagwarden.compliance_regression");
    assert_eq!(body["previous"]["id"], 1);
    assert_eq!(body["current"]["id"], 2);
    assert_eq!(
        body["regressions"],
        json!([
            {"kind": "score_drop", "from_pct": 95.0, "to_pct": 80.0, "drop_pct_points": 15.0},
            {"kind": "new_critical_violations", "from": 0, "to": 2, "added": 2},
        ])
    );
    let slack = rx.at("/slack");
    assert_eq!(slack.len(), 1);
    assert!(!slack[0].headers.contains_key("x-tagwarden-signature"));
    let msg: Value = serde_json::from_slice(&slack[0].body).unwrap();
    assert_eq!(msg["blocks"][0]["type"], "header");
    assert_eq!(
        msg["blocks"][1]["text"]["text"],
        "• Compliance score fell 15 points: 95% → 80%\n• 2 new critical violations: 0 → 2"
    );
    // Neither the secret nor the URLs' paths reach the logs.
    assert!(!err.contains(SECRET) && !err.contains("/hook"), "{err}");
}

#[test]
fn nothing_regressed_sends_nothing() {
    // Same figures; then a drop of exactly the threshold (1 point is not more than 1).
    for (a, b) in [
        ((90.0, 1), (90.0, 1)),
        ((90.0, 1), (89.0, 1)),
        ((80.0, 3), (95.0, 0)),
    ] {
        let dir = history_with(a, b);
        let rx = Receiver::start(&[]);
        let (code, outcome, err) = alerts_check(&dir, &rx, &[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(outcome["regressions"], json!([]));
        assert_eq!(outcome["sent"], json!([]));
        assert_eq!(rx.total(), 0);
    }
}

#[test]
fn a_failing_receiver_is_retried_then_the_failure_is_reported() {
    let dir = history_with((95.0, 0), (80.0, 0));
    // The webhook fails twice (503) then accepts; Slack refuses for good (400: no retry).
    let rx = Receiver::start(&[("/hook", &[503, 503]), ("/slack", &[400])]);
    let (code, outcome, _) = alerts_check(&dir, &rx, &[]);
    assert_eq!(code, 1, "an undelivered alert fails the command");
    assert_eq!(
        outcome["sent"],
        json!([
            {"channel": "webhook", "delivered": true, "attempts": 3, "error": null, "dead_letter": null},
            {"channel": "slack", "delivered": false, "attempts": 1,
             "error": "the receiver answered HTTP 400 Bad Request", "dead_letter": 1},
        ])
    );
    let hooks = rx.at("/hook");
    assert_eq!(hooks.len(), 3);
    for h in &hooks {
        verified(h);
    }
    assert_eq!(rx.at("/slack").len(), 1);

    // Always failing: bounded by --notify-attempts.
    let rx = Receiver::start(&[("/hook", &[500; 10]), ("/slack", &[500; 10])]);
    let (code, outcome, _) = alerts_check(&dir, &rx, &["--notify-attempts", "2"]);
    assert_eq!(code, 1);
    assert_eq!(outcome["sent"][0]["attempts"], 2);
    assert_eq!(outcome["sent"][0]["delivered"], false);
    assert_eq!(rx.at("/hook").len(), 2);
    assert_eq!(rx.at("/slack").len(), 2);
    assert_eq!(outcome["sent"][0]["dead_letter"], 2);
    assert_eq!(outcome["sent"][1]["dead_letter"], 3);

    // The undelivered alerts are kept in the store, newest first, with their exact bodies.
    let data_dir = path_str(dir.path());
    let (code, out, err) = run(&["alerts", "dead-letters", "--data-dir", &data_dir], &[]);
    assert_eq!(code, 0, "{err}");
    let letters: Value = serde_json::from_str(&out).unwrap();
    let summary: Vec<(i64, String, i64, String)> = letters
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["channel"].as_str().unwrap().to_string(),
                l["attempts"].as_i64().unwrap(),
                l["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let e500 = "the receiver answered HTTP 500 Internal Server Error".to_string();
    assert_eq!(
        summary,
        vec![
            (3, "slack".into(), 2, e500.clone()),
            (2, "webhook".into(), 2, e500),
            (
                1,
                "slack".into(),
                1,
                "the receiver answered HTTP 400 Bad Request".into()
            ),
        ]
    );
    for l in letters.as_array().unwrap() {
        assert_eq!(l["snapshot_id"], 2);
    }
    assert_eq!(
        letters[1]["payload"]["event"],
        "tagwarden.compliance_regression"
    );
    assert_eq!(letters[0]["payload"]["blocks"][0]["type"], "header");
    assert!(!out.contains(&rx.base), "no URL kept: {out}");
}

#[test]
fn a_webhook_without_its_secret_is_refused() {
    let dir = history_with((95.0, 0), (80.0, 0));
    let data_dir = path_str(dir.path());
    let (code, _, err) = run(
        &[
            "alerts",
            "check",
            "--data-dir",
            &data_dir,
            "--notify-webhook",
            "http://127.0.0.1:9/hook",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("TAGWARDEN_NOTIFY_SECRET"), "{err}");
}

#[test]
fn a_scheduled_audit_after_a_planted_regression_alerts_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = path_str(dir.path());
    // The planted previous audit: a perfect estate an hour ago.
    {
        let store = HistoryDb::open(&dir.path().join("history.db")).unwrap();
        let planted = snapshot(Utc::now() - chrono::Duration::hours(1), 100.0, 0);
        store.insert(&planted).unwrap();
    }
    let rx = Receiver::start(&[]);
    let hook = rx.url("/hook");
    let slack = rx.url("/slack");
    let c = StdioClient::initialized(
        &[
            "--demo",
            "--no-prewarm",
            "--audit-every", // the alias of --snapshot-every
            "1s",
            "--notify-webhook",
            &hook,
            "--notify-slack",
            &slack,
        ],
        &[
            ("TAGWARDEN_DATA_DIR", &data_dir),
            ("TAGWARDEN_NOTIFY_SECRET", SECRET),
        ],
    )
    .0;
    // Three scheduled audits: the first regresses from the planted one, the next two equal
    // it. Each alert check finishes before the next audit starts.
    let db = dir.path().join("history.db");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let scheduled: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM snapshots WHERE trigger = 'schedule'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if scheduled >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "stderr:\n{}", c.drain_stderr());
        std::thread::sleep(Duration::from_millis(250));
    }
    let hooks = rx.at("/hook");
    assert_eq!(hooks.len(), 1, "exactly one webhook");
    assert_eq!(rx.at("/slack").len(), 1, "exactly one Slack message");
    let body = verified(&hooks[0]);
    assert_eq!(body["previous"]["id"], 1);
    assert_eq!(body["previous"]["score_pct"], 100.0);
    assert_eq!(body["current"]["id"], 2);
    assert_eq!(body["current"]["trigger"], "schedule");
    assert_eq!(body["regressions"][0]["kind"], "score_drop");
    let stderr = c.drain_stderr();
    assert!(
        !stderr.contains(SECRET) && !stderr.contains("/slack"),
        "{stderr}"
    );
}
