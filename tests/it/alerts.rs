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
    // The demo's daily costs carry three planted spikes (2, 5 and 9 days before its last,
    // still-accruing day, today): their anomalies in every series are announced with the first
    // alert as one regression, the five largest listed, and not again by the next audits
    // (exactly one webhook above).
    let anomalies = body["regressions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "cost_anomalies")
        .unwrap_or_else(|| panic!("no cost_anomalies regression: {body}"));
    let listed = anomalies["anomalies"].as_array().unwrap();
    let count = anomalies["count"].as_u64().unwrap() as usize;
    assert!(count >= 3 && listed.len() == count.min(5), "{anomalies}");
    let today = Utc::now().date_naive();
    let planted: Vec<String> = [2, 5, 9]
        .iter()
        .map(|d| (today - chrono::Duration::days(*d)).to_string())
        .collect();
    for a in listed {
        assert!(
            planted.contains(&a["day"].as_str().unwrap().to_string()),
            "{a} not on a planted day {planted:?}"
        );
    }
    assert_eq!(anomalies["currency"], "USD");
    let slack: Value = serde_json::from_slice(&rx.at("/slack")[0].body).unwrap();
    assert!(
        slack
            .to_string()
            .contains(&format!("{count} new cost anomalies")),
        "{slack}"
    );
    let stderr = c.drain_stderr();
    assert!(
        !stderr.contains(SECRET) && !stderr.contains("/slack"),
        "{stderr}"
    );
}

/// A local SMTP sink (tests/support/smtp_sink.py, aiosmtpd) saving each message, decoded by
/// Python's e-mail package, as `<n>.json` in a directory.
struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let port = crate::common::free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(crate::common::venv_bin("python"))
            .arg(crate::common::repo().join("tests/support/smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the SMTP sink");
        crate::common::wait_for_port(port, Duration::from_secs(30));
        SmtpSink { port, dir, child }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, in order.
    fn mails(&self) -> Vec<Value> {
        let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| {
                let mut v: Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                if let Some(t) = v["text"].as_str() {
                    v["text"] = Value::String(t.replace("\r\n", "\n"));
                }
                v
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn email_check(dir: &tempfile::TempDir, smtp_url: &str, extra: &[&str]) -> (i32, Value, String) {
    let data_dir = path_str(dir.path());
    let mut args = vec![
        "alerts",
        "check",
        "--data-dir",
        &data_dir,
        "--notify-email",
        "ops@example.com,Team Lead <lead@example.com>",
        "--smtp-url",
        smtp_url,
        "--smtp-from",
        "Tagwarden <tagwarden@example.com>",
        "--notify-backoff",
        "50ms",
        "--notify-timeout",
        "5s",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args, &[]);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

#[test]
fn a_regression_sends_exactly_one_email_and_no_regression_none() {
    let sink = SmtpSink::start();
    let dir = history_with((95.0, 0), (80.0, 2));
    let (code, outcome, err) = email_check(&dir, &sink.url(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        outcome["sent"],
        json!([{"channel": "email", "delivered": true, "attempts": 1, "error": null, "dead_letter": null}])
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(
        m["subject"],
        "Tagwarden: compliance regressed (snapshot 1 → 2)"
    );
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["mail_from"], "tagwarden@example.com");
    assert_eq!(
        m["rcpt_tos"],
        json!(["ops@example.com", "lead@example.com"])
    );
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains(
            "- Compliance score fell 15 points: 95% → 80%\n- 2 new critical violations: 0 → 2\n"
        ),
        "{text}"
    );

    // Nothing regressed: no mail.
    let same = history_with((90.0, 1), (90.0, 1));
    let (code, outcome, err) = email_check(&same, &sink.url(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(outcome["sent"], json!([]));
    assert_eq!(sink.mails().len(), 1);
}

#[test]
fn a_down_smtp_server_ends_in_a_dead_letter_that_resend_delivers() {
    let dir = history_with((95.0, 0), (80.0, 0));
    let data_dir = path_str(dir.path());
    let down = format!("smtp://127.0.0.1:{}", closed_port());
    let (code, outcome, _) = email_check(&dir, &down, &["--notify-attempts", "2"]);
    assert_eq!(code, 1, "an undelivered alert fails the command");
    let sent = &outcome["sent"][0];
    assert_eq!(sent["channel"], "email");
    assert_eq!(sent["delivered"], false);
    assert_eq!(sent["attempts"], 2);
    assert_eq!(sent["dead_letter"], 1);
    let letters = |dir: &str| -> Value {
        let (code, out, err) = run(&["alerts", "dead-letters", "--data-dir", dir], &[]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let kept = letters(&data_dir);
    assert_eq!(kept.as_array().unwrap().len(), 1);
    assert_eq!(kept[0]["channel"], "email");
    assert_eq!(kept[0]["attempts"], 2);
    assert_eq!(
        kept[0]["payload"]["subject"],
        "Tagwarden: compliance regressed (snapshot 1 → 2)"
    );
    // No address is kept with the letter.
    assert!(!kept.to_string().contains("ops@example.com"), "{kept}");

    let resend = |smtp_url: &str, extra: &[&str]| -> (i32, Value, String) {
        let mut args = vec![
            "alerts",
            "resend",
            "--data-dir",
            &data_dir,
            "--notify-email",
            "ops@example.com",
            "--smtp-url",
            smtp_url,
            "--smtp-from",
            "tagwarden@example.com",
            "--notify-attempts",
            "1",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args, &[]);
        (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
    };
    // Still down: the letter stays, its attempts raised.
    let (code, out, err) = resend(&down, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out[0]["id"], 1);
    assert_eq!(out[0]["delivered"], false);
    assert_eq!(out[0]["total_attempts"], 3);
    assert_eq!(letters(&data_dir)[0]["attempts"], 3);

    // An unknown id is refused.
    let (code, _, err) = resend(&down, &["--id", "9"]);
    assert_eq!(code, 1);
    assert!(err.contains("no dead letter 9"), "{err}");

    // Up again: delivered once, and removed.
    let sink = SmtpSink::start();
    let (code, out, err) = resend(&sink.url(), &["--id", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        json!([{"id": 1, "channel": "email", "delivered": true, "attempts": 1, "error": null}])
    );
    assert_eq!(letters(&data_dir), json!([]));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0]["subject"],
        "Tagwarden: compliance regressed (snapshot 1 → 2)"
    );
    assert_eq!(mails[0]["rcpt_tos"], json!(["ops@example.com"]));
}

#[test]
fn resend_delivers_webhook_letters_signed_anew() {
    let dir = history_with((95.0, 0), (80.0, 0));
    let data_dir = path_str(dir.path());
    // The webhook refuses once (400: kept at once), then a resend delivers it.
    let rx = Receiver::start(&[("/hook", &[400])]);
    let hook = rx.url("/hook");
    let args = |cmd: &'static str| {
        vec![
            "alerts".to_string(),
            cmd.to_string(),
            "--data-dir".into(),
            data_dir.clone(),
            "--notify-webhook".into(),
            hook.clone(),
        ]
    };
    let check = args("check");
    let refs: Vec<&str> = check.iter().map(String::as_str).collect();
    let (code, _, _) = run(&refs, &[("TAGWARDEN_NOTIFY_SECRET", SECRET)]);
    assert_eq!(code, 1);
    let resend = args("resend");
    let refs: Vec<&str> = resend.iter().map(String::as_str).collect();
    let (code, out, err) = run(&refs, &[("TAGWARDEN_NOTIFY_SECRET", SECRET)]);
    assert_eq!(code, 0, "{err}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out[0]["delivered"], true);
    let hooks = rx.at("/hook");
    assert_eq!(hooks.len(), 2);
    // The same body, with a fresh valid signature.
    assert_eq!(hooks[0].body, hooks[1].body);
    assert_eq!(
        verified(&hooks[1])["event"],
        "tagwarden.compliance_regression"
    );
}

/// Scheduled snapshots in a history.db.
fn scheduled_snapshots(db: &std::path::Path) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM snapshots WHERE trigger = 'schedule'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn wait_for_scheduled(db: &std::path::Path, n: i64, c: &StdioClient) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while scheduled_snapshots(db) < n {
        assert!(Instant::now() < deadline, "stderr:\n{}", c.drain_stderr());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_weekly_summary_goes_to_every_channel_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = path_str(dir.path());
    // A perfect audit eight days ago: the week-ago side of the first summary.
    {
        let store = HistoryDb::open(&dir.path().join("history.db")).unwrap();
        let planted = snapshot(Utc::now() - chrono::Duration::days(8), 100.0, 0);
        store.insert(&planted).unwrap();
    }
    let rx = Receiver::start(&[]);
    let sink = SmtpSink::start();
    let hook = rx.url("/hook");
    let smtp = sink.url();
    let serve = |rx_hook: &str| {
        StdioClient::initialized(
            &[
                "--demo",
                "--no-prewarm",
                "--audit-every",
                "1s",
                "--alert-weekly-summary",
                "--notify-webhook",
                rx_hook,
                "--notify-email",
                "ops@example.com",
                "--smtp-url",
                &smtp,
                "--smtp-from",
                "tagwarden@example.com",
            ],
            &[
                ("TAGWARDEN_DATA_DIR", &data_dir),
                ("TAGWARDEN_NOTIFY_SECRET", SECRET),
            ],
        )
        .0
    };
    let db = dir.path().join("history.db");
    let c = serve(&hook);
    wait_for_scheduled(&db, 3, &c);
    drop(c);
    let events = |rx: &Receiver| -> Vec<Value> { rx.at("/hook").iter().map(verified).collect() };
    let summaries: Vec<Value> = events(&rx)
        .into_iter()
        .filter(|b| b["event"] == "tagwarden.weekly_summary")
        .collect();
    assert_eq!(summaries.len(), 1, "one summary in three audits");
    let s = &summaries[0]["summary"];
    assert_eq!(s["week_ago"]["snapshot_id"], 1);
    assert_eq!(s["week_ago"]["score_pct"], 100.0);
    assert_eq!(s["current"]["snapshot_id"], 2);
    assert!(s["score_change_pct_points"].as_f64().unwrap() < 0.0, "{s}");
    assert!(s["top_regressing_keys"].as_array().unwrap().len() <= 5);
    // E-mail got the regression alert and the summary, once each.
    let subjects: Vec<String> = sink
        .mails()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert_eq!(
        subjects[0],
        "Tagwarden: compliance regressed (snapshot 1 → 2)"
    );
    assert!(
        subjects[1].starts_with("Tagwarden: weekly compliance summary"),
        "{subjects:?}"
    );

    // A restart a moment later: the last summary's time is read from history.db, so none goes
    // out again.
    let before = scheduled_snapshots(&db);
    let c = serve(&hook);
    wait_for_scheduled(&db, before + 2, &c);
    drop(c);
    let summaries = events(&rx)
        .into_iter()
        .filter(|b| b["event"] == "tagwarden.weekly_summary")
        .count();
    assert_eq!(summaries, 1, "no second summary after the restart");
    assert_eq!(sink.mails().len(), 2);
}

#[test]
fn the_schedule_tool_reports_and_runs_an_audit_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = path_str(dir.path());
    {
        let store = HistoryDb::open(&dir.path().join("history.db")).unwrap();
        let planted = snapshot(Utc::now() - chrono::Duration::hours(1), 100.0, 0);
        store.insert(&planted).unwrap();
    }
    let rx = Receiver::start(&[]);
    let hook = rx.url("/hook?token=t0ken");
    let mut c = StdioClient::initialized(
        &[
            "--demo",
            "--no-prewarm",
            "--audit-every",
            "6h",
            "--notify-webhook",
            &hook,
        ],
        &[
            ("TAGWARDEN_DATA_DIR", &data_dir),
            ("TAGWARDEN_NOTIFY_SECRET", SECRET),
        ],
    )
    .0;
    let status = c.call("schedule_compliance_audit", json!({"action": "status"}));
    assert_ne!(status["isError"], true, "{status}");
    let s = &status["structuredContent"]["status"];
    assert_eq!(s["scheduled"], true);
    assert_eq!(s["interval"], "6h");
    assert_eq!(s["interval_seconds"], 21600);
    assert_eq!(
        s["channels"],
        json!([{"channel": "webhook", "host": "127.0.0.1"}])
    );
    assert_eq!(s["dead_letters"], 0);
    assert_eq!(s["last_run"], Value::Null);
    assert!(s["next_run"].is_string(), "{s}");
    assert_eq!(s["run_now_available"], true);
    let text = status.to_string();
    assert!(!text.contains("t0ken") && !text.contains(SECRET), "{text}");

    let ran = c.call("schedule_compliance_audit", json!({"action": "run_now"}));
    assert_ne!(ran["isError"], true, "{ran}");
    let run = &ran["structuredContent"]["run"];
    assert_eq!(run["trigger"], "tool");
    assert_eq!(run["snapshot_id"], 2);
    assert_eq!(run["alert"]["previous"], 1);
    assert_eq!(run["alert"]["regressions"][0]["kind"], "score_drop");
    assert_eq!(
        run["alert"]["sent"],
        json!([{"channel": "webhook", "delivered": true, "attempts": 1, "error": null, "dead_letter": null}])
    );
    assert_eq!(run["weekly_summary"], Value::Null);
    let hooks = rx.at("/hook?token=t0ken");
    assert_eq!(hooks.len(), 1);
    assert_eq!(verified(&hooks[0])["current"]["trigger"], "tool");
    let after = &ran["structuredContent"]["status"];
    assert!(after["last_run"].is_string());
    assert_eq!(after["last_audit"]["snapshot_id"], 2);
    assert_eq!(after["run_now_available"], false);

    // Once a minute per server.
    let again = c.call("schedule_compliance_audit", json!({"action": "run_now"}));
    assert_eq!(again["isError"], true, "{again}");
    assert!(again.to_string().contains("once a minute"), "{again}");
    assert_eq!(rx.total(), 1);
}

#[test]
fn run_now_is_refused_without_a_schedule_or_a_channel() {
    let mut c = StdioClient::initialized(&["--demo", "--no-prewarm"], &[]).0;
    let status = c.call("schedule_compliance_audit", json!({}));
    let s = &status["structuredContent"]["status"];
    assert_eq!(s["scheduled"], false);
    assert_eq!(s["interval"], "not scheduled");
    assert_eq!(s["channels"], json!([]));
    let refused = c.call("schedule_compliance_audit", json!({"action": "run_now"}));
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(refused.to_string().contains("--audit-every"), "{refused}");

    // A schedule without a channel: refused too, and no snapshot is taken.
    let mut c = StdioClient::initialized(&["--demo", "--no-prewarm", "--audit-every", "6h"], &[]).0;
    let refused = c.call("schedule_compliance_audit", json!({"action": "run_now"}));
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused.to_string().contains("no alert channel"),
        "{refused}"
    );
}
