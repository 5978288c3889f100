//! The audit log fails closed: when a row cannot be written, the call is answered with an error
//! that says so (no data), tools that change data are refused before running, /healthz says
//! `failing` with a 503, and `audit verify` counts exactly the rows of the calls that were
//! answered. The full disk is made real with `--audit-max-bytes` (SQLite's page cap), and —
//! since CI runs as root — once more with a small tmpfs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{HttpClient, HttpServer, StdioClient, run};
use serde_json::{Value, json};

/// No budget or loop refusals: every call below is meant to reach the audit log.
const NO_LIMITS: &[(&str, &str)] = &[
    ("TAGWARDEN_BUDGET_BURST", "0"),
    ("TAGWARDEN_BUDGET_PER_HOUR", "0"),
    ("TAGWARDEN_BUDGET_GLOBAL_PER_HOUR", "0"),
    ("TAGWARDEN_LOOP_MAX_REPEATS", "0"),
];

const WITHHELD: &str = "audit row could not be written";

/// A cheap call whose answer carries data (`marker` comes back in it).
fn proposed(marker: &str) -> Value {
    json!({"resource_type": "ec2:instance", "tags": {"Environment": marker}})
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn correlation(result: &Value) -> String {
    result["_meta"]["tagwarden/correlation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no correlation id: {result}"))
        .to_string()
}

/// A withheld answer: an error saying why, with nothing of the tool's answer.
fn assert_withheld(result: &Value, marker: &str) {
    assert_eq!(result["isError"], true, "{result}");
    assert!(result.get("structuredContent").is_none(), "{result}");
    let text = text_of(result);
    assert!(text.contains(WITHHELD), "{text}");
    assert!(
        !text.contains(marker),
        "data leaked into a withheld answer: {text}"
    );
}

fn correlation_ids_on_disk(dir: &Path) -> BTreeSet<String> {
    let db = rusqlite::Connection::open(dir.join("audit.db")).unwrap();
    let mut stmt = db.prepare("SELECT correlation_id FROM audit").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn verify(dir: &Path) -> String {
    let (code, stdout, stderr) = run(
        &["audit", "verify", "--data-dir", &dir.to_string_lossy()],
        &[],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    stdout
}

/// Calls until the log is full; returns the correlation ids of the calls answered (their rows
/// must be on disk) and those withheld (their rows must not be).
fn fill(c: &mut StdioClient) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut answered = BTreeSet::new();
    let mut withheld = BTreeSet::new();
    for i in 0..3000 {
        let marker = format!("prod-{i:05}");
        let r = c.call("validate_resource_tags", proposed(&marker));
        if text_of(&r).contains(WITHHELD) {
            assert_withheld(&r, &marker);
            withheld.insert(correlation(&r));
            return (answered, withheld);
        }
        assert_ne!(r["isError"], true, "call {i}: {r}");
        assert!(r.to_string().contains(&marker), "{r}");
        answered.insert(correlation(&r));
    }
    panic!("3000 calls fitted in the bounded audit log");
}

#[test]
fn a_full_audit_log_fails_closed() {
    let mut args = vec!["--demo", "--no-prewarm", "--audit-max-bytes", "64K"];
    args.extend(["--audit-wait", "10s"]);
    let (mut c, _) = StdioClient::initialized(&args, NO_LIMITS);
    let (mut answered, mut withheld) = fill(&mut c);
    assert!(
        answered.len() > 10,
        "{} calls fitted in 64 KiB",
        answered.len()
    );
    eprintln!(
        "{} calls answered before the 64 KiB log was full",
        answered.len()
    );

    // Every later call is withheld the same way ...
    for i in 0..3 {
        let marker = format!("later-{i}");
        let r = c.call("validate_resource_tags", proposed(&marker));
        assert_withheld(&r, &marker);
        withheld.insert(correlation(&r));
    }
    // ... and a tool that changes data does not even run.
    let r = c.call(
        "apply_virtual_tag",
        json!({"resource_ids": ["arn:aws:s3:::nope-bucket"], "key": "Owner",
               "value": "a@b.co", "reason": "test"}),
    );
    assert_eq!(r["isError"], true, "{r}");
    let text = text_of(&r);
    assert!(
        text.contains("Refused before running") || text.contains("refused before running"),
        "{text}"
    );
    assert!(text.contains("audit log"), "{text}");
    // Its short refusal row may still fit; either way the answer says what happened.
    if text.contains(WITHHELD) {
        withheld.insert(correlation(&r));
    } else {
        answered.insert(correlation(&r));
    }
    let history = rusqlite::Connection::open(c.data_dir.path().join("history.db")).unwrap();
    let tags: i64 = history
        .query_row("SELECT COUNT(*) FROM vt_tags", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tags, 0, "the write tool ran unaudited");
    drop(history);

    let (code, dir) = c.finish();
    assert_eq!(code, 0, "clean shutdown");
    // What is on disk is exactly what was answered; nothing withheld was recorded.
    let on_disk = correlation_ids_on_disk(dir.path());
    assert_eq!(on_disk, answered);
    assert!(on_disk.is_disjoint(&withheld));
    let out = verify(dir.path());
    assert!(
        out.contains(&format!("intact: {} rows", answered.len())),
        "{out}"
    );
}

#[tokio::test]
async fn healthz_reports_a_failing_audit_log() {
    let mut envs = NO_LIMITS.to_vec();
    envs.push(("TAGWARDEN_AUDIT_MAX_BYTES", "64K"));
    let server = HttpServer::start(&["--demo", "--no-prewarm"], &envs);
    let http = reqwest::Client::new();
    let health = |http: reqwest::Client, url: String| async move {
        let resp = http.get(url).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap())
    };
    let url = format!("{}/healthz", server.base);
    let (status, body) = health(http.clone(), url.clone()).await;
    assert_eq!((status, &body["audit"]), (200, &json!("ok")), "{body}");

    let mut c = HttpClient::new(&server.base);
    c.initialize().await;
    let mut full = false;
    for i in 0..3000 {
        let marker = format!("prod-{i:05}");
        let r = c.call("validate_resource_tags", proposed(&marker)).await;
        if text_of(&r).contains(WITHHELD) {
            assert_withheld(&r, &marker);
            full = true;
            break;
        }
        assert_ne!(r["isError"], true, "{r}");
    }
    assert!(full, "the 64 KiB log never filled");
    let (status, body) = health(http.clone(), url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "failing", "{body}");
    let audit = body["audit"].as_str().unwrap();
    assert!(
        audit.starts_with("failing: ") && audit.contains("--audit-max-bytes"),
        "{audit}"
    );
    assert!(!audit.contains('/'), "no paths in /healthz: {audit}");
}

#[test]
fn refused_calls_write_small_rows() {
    // A client name of 50 KB and arguments just under the 64 KiB limit, refused for a long
    // string: the row keeps a short excerpt and the hash.
    let mut c = StdioClient::start(&["--demo", "--no-prewarm"], &[]);
    let init = c.request(
        "initialize",
        json!({"protocolVersion": crate::common::PROTOCOL, "capabilities": {},
               "clientInfo": {"name": "n".repeat(50_000), "version": "1"}}),
    );
    assert!(init.get("result").is_some(), "{init}");
    c.notify("notifications/initialized", json!({}));
    // 24 keys of 2 KB each, and one over the 2 KiB string limit at the end.
    let mut keys: Vec<String> = (0..24)
        .map(|i| format!("{i:02}{}", "k".repeat(2040)))
        .collect();
    keys.push("x".repeat(3000));
    let r = c.call("find_untagged_resources", json!({"tag_keys": keys}));
    let text = text_of(&r);
    assert!(
        text.contains("Refused before running"),
        "{}",
        &text[..text.len().min(300)]
    );
    let r = c.call(
        "find_untagged_resources",
        json!({"tag_keys": ["x".repeat(3000)]}),
    );
    let text = text_of(&r);
    assert!(
        text.contains("Refused before running"),
        "{}",
        &text[..text.len().min(300)]
    );
    let (_, dir) = c.finish();
    let db = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT outcome, length(ts) + length(correlation_id) + length(session) + length(client)
                 + length(transport) + length(tool) + length(arguments) + length(arguments_hash)
                 + length(outcome) + length(prev_hash) + length(hash)
             FROM audit ORDER BY seq",
        )
        .unwrap();
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (outcome, bytes) in &rows {
        assert!(outcome.starts_with("refused:"), "{outcome}");
        eprintln!("{outcome}: a {bytes}-byte row");
        assert!(*bytes <= 1600, "a refused row of {bytes} bytes ({outcome})");
    }
}

/// A tmpfs mounted for one test, unmounted however the test ends.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs (this test needs root, as CI has): {status}"
        );
        Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_fails_closed_and_recovers() {
    let disk = Tmpfs::mount("2m");
    let data = disk.path.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut envs = NO_LIMITS.to_vec();
    let data_str = data.to_string_lossy().to_string();
    envs.push(("TAGWARDEN_DATA_DIR", &data_str));
    let (mut c, _) = StdioClient::initialized(&["--demo", "--no-prewarm"], &envs);
    // Fill the disk but for a little room, so that a few rows fit and then none.
    let filler = disk.path.join("filler");
    let free = {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&disk.path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .expect("df prints the free bytes")
    };
    std::fs::write(&filler, vec![0u8; free.saturating_sub(64 * 1024) as usize]).unwrap_or(());
    let (answered, _) = fill(&mut c);
    eprintln!("{} calls answered before the disk was full", answered.len());

    // Room again: calls are answered again (the first may still be withheld while SQLite
    // recovers its journal; within a few it must work).
    std::fs::remove_file(&filler).unwrap();
    let mut recovered = false;
    for i in 0..5 {
        let marker = format!("again-{i}");
        let r = c.call("validate_resource_tags", proposed(&marker));
        if r["isError"] != true {
            assert!(r.to_string().contains(&marker));
            recovered = true;
            break;
        }
        assert_withheld(&r, &marker);
    }
    assert!(recovered, "calls are answered again once there is room");
    let (code, _dir) = c.finish();
    assert_eq!(code, 0);
    let out = verify(&data);
    assert!(out.contains("intact"), "{out}");
}
