//! History over MCP from real SQLite files: a year of generated daily snapshots grouped by day,
//! week and month with exact points, trend and change; scheduled snapshots while serving; and
//! retention pruning what is older than `--keep-days`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::StdioClient;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde_json::{Value, json};
use tagwarden::HistoryDb;
use tagwarden::Severity;
use tagwarden::snapshot_filters;
use tagwarden::{MemberRecord, NewSnapshot};

/// A snapshot of the whole-estate scope with the given figures (members: one resource, enough
/// for the history store; the series only reads the figures).
fn generated(taken_at: DateTime<Utc>, compliant: usize, violations: usize) -> NewSnapshot {
    let in_scope = 1000;
    let mut by_violation = BTreeMap::new();
    by_violation.insert("missing_required_tag:CostCenter".to_string(), violations);
    NewSnapshot {
        taken_at,
        trigger: "cli".into(),
        source: "generated".into(),
        policy_hash: "p1".into(),
        filters: snapshot_filters(&[], &[], &[], &[], Severity::Low),
        resources: in_scope,
        in_scope,
        compliant,
        violations,
        score_pct: Some((compliant as f64 / in_scope as f64 * 10_000.0).round() / 100.0),
        native_score_pct: None,
        spend_score_pct: None,
        counts: json!({}),
        by_violation,
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

fn server(data_dir: &str, extra: &[&str]) -> StdioClient {
    let mut args = vec!["--demo", "--no-prewarm"];
    args.extend_from_slice(extra);
    StdioClient::initialized(&args, &[("TAGWARDEN_DATA_DIR", data_dir)]).0
}

fn history(c: &mut StdioClient, args: Value) -> Value {
    let r = c.call("get_violation_history", args);
    assert_ne!(r["isError"], true, "{r}");
    r["structuredContent"].clone()
}

#[test]
fn a_year_of_daily_snapshots_groups_by_day_week_and_month_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = HistoryDb::open(&dir.path().join("history.db")).unwrap();
    // 399 days ending yesterday noon (all within the default 400-day retention): compliant grows by 1 a day from 500; two snapshots on
    // each day (morning and noon: the noon one is the day's point); every 10th day missing.
    let end = Utc::now().date_naive().pred_opt().unwrap();
    let mut expected_days: Vec<(String, usize)> = Vec::new();
    for back in (0..399).rev() {
        let day = end - chrono::Days::new(back);
        if back % 10 == 5 {
            continue;
        }
        let compliant = 500 + (398 - back as usize);
        let morning = Utc.from_utc_datetime(&day.and_hms_opt(6, 0, 0).unwrap());
        let noon = Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap());
        store.insert(&generated(morning, 0, 9999)).unwrap();
        store
            .insert(&generated(noon, compliant, 1000 - compliant))
            .unwrap();
        expected_days.push((day.format("%Y-%m-%d").to_string(), compliant));
    }
    drop(store);
    let data_dir = crate::common::path_str(dir.path());
    let mut c = server(&data_dir, &[]);

    // Days: the last 30 days' points (days_back counts back from now).
    let h = history(&mut c, json!({"days_back": 30, "group_by": "day"}));
    let points = h["points"].as_array().unwrap();
    let cutoff = (Utc::now() - chrono::Duration::days(30)).naive_utc();
    let want: Vec<&(String, usize)> = expected_days
        .iter()
        .filter(|(d, _)| {
            let noon = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap();
            noon >= cutoff
        })
        .collect();
    assert_eq!(
        points.len(),
        want.len(),
        "missing days are absent, not zero"
    );
    for (p, (day, compliant)) in points.iter().zip(&want) {
        assert_eq!(p["period"], day.as_str());
        assert_eq!(p["compliant"], *compliant, "the day's last snapshot");
    }
    let first = want.first().unwrap().1 as f64 / 10.0;
    let last = want.last().unwrap().1 as f64 / 10.0;
    let trend = &h["trend"];
    assert_eq!(
        trend["absolute_change_pct_points"].as_f64().unwrap(),
        ((last - first) * 100.0).round() / 100.0
    );
    assert_eq!(trend["direction"], "improving");
    assert_eq!(
        trend["compliant_change"],
        want.last().unwrap().1 as i64 - want.first().unwrap().1 as i64
    );
    assert_eq!(
        h["top_violations"][0]["violation"],
        "missing_required_tag:CostCenter"
    );

    // Months over the whole year: one point per month that has a snapshot, each the month's
    // last noon snapshot.
    let m = history(&mut c, json!({"days_back": 400, "group_by": "month"}));
    let mut by_month: BTreeMap<String, usize> = BTreeMap::new();
    let since = (Utc::now() - chrono::Duration::days(400)).naive_utc();
    for (day, compliant) in &expected_days {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        if date.and_hms_opt(12, 0, 0).unwrap() < since {
            continue;
        }
        by_month.insert(
            format!("{:04}-{:02}", date.year(), date.month()),
            *compliant,
        );
    }
    let got: Vec<(String, u64)> = m["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["period"].as_str().unwrap().to_string(),
                p["compliant"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = by_month.into_iter().map(|(k, v)| (k, v as u64)).collect();
    assert_eq!(got, want);

    // ISO weeks: labels like 2026-W47, one per week, in order.
    let w = history(&mut c, json!({"days_back": 60, "group_by": "week"}));
    let weeks: Vec<&str> = w["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["period"].as_str().unwrap())
        .collect();
    assert!(weeks.len() >= 8 && weeks.len() <= 10, "{weeks:?}");
    assert!(weeks.windows(2).all(|p| p[0] < p[1]), "{weeks:?}");
    assert!(weeks.iter().all(|p| p.len() == 8 && &p[4..6] == "-W"));

    // Another scope has no history: the answer says which scopes do.
    let other = history(&mut c, json!({"regions": ["eu-west-1"]}));
    assert_eq!(other["points"], json!([]));
    assert_eq!(other["trend"]["direction"], "insufficient_data");
    assert_eq!(
        other["other_scopes"][0]["snapshots"],
        2 * expected_days.len()
    );
    assert!(other["note"].as_str().unwrap().contains("other_scopes"));
}

#[test]
fn scheduled_snapshots_are_taken_and_old_ones_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = crate::common::path_str(dir.path());
    // An old snapshot (500 days ago) from the CLI, beyond --keep-days 400.
    let old = (Utc::now() - chrono::Duration::days(500)).to_rfc3339();
    let (code, _, err) = crate::common::run(
        &[
            "check",
            "--demo",
            "--snapshot",
            "--taken-at",
            &old,
            "--format",
            "json",
        ],
        &[("TAGWARDEN_DATA_DIR", &data_dir)],
    );
    assert_eq!(code, 0, "{err}");

    let mut c = server(&data_dir, &["--snapshot-every", "1s", "--keep-days", "400"]);
    let db = dir.path().join("history.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (scheduled, old_left) = loop {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        let scheduled = count("SELECT COUNT(*) FROM snapshots WHERE trigger = 'schedule'");
        let old_left = count("SELECT COUNT(*) FROM snapshots WHERE trigger = 'cli'");
        if scheduled >= 2 && old_left == 0 {
            break (scheduled, old_left);
        }
        assert!(
            Instant::now() < deadline,
            "scheduled={scheduled} old={old_left}; stderr:\n{}",
            c.drain_stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(scheduled >= 2);
    assert_eq!(old_left, 0, "the 500-day-old snapshot is pruned");
    // The scheduled snapshots are the whole estate, visible to the history tool.
    let h = history(&mut c, json!({"days_back": 1}));
    assert!(h["snapshots_in_window"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["points"].as_array().unwrap().len(), 1);
    assert_eq!(h["points"][0]["resources"], 5000);
}
