use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

fn meta(id: i64, score: Option<f64>, critical: Option<usize>, spend: Option<f64>) -> SnapshotMeta {
    SnapshotMeta {
        id,
        taken_at: Utc.with_ymd_and_hms(2026, 1, id as u32, 0, 0, 0).unwrap(),
        trigger: "schedule".into(),
        source: "demo".into(),
        policy_hash: "p".into(),
        filters: json!({}),
        filters_hash: "h".into(),
        resources: 100,
        in_scope: 100,
        compliant: 90,
        violations: 10,
        score_pct: score,
        native_score_pct: None,
        spend_score_pct: spend,
        counts: match critical {
            Some(c) => json!({"by_severity": {"critical": c, "high": 0, "medium": 0, "low": 0}}),
            None => json!({}),
        },
        by_violation: BTreeMap::new(),
    }
}

fn t() -> AlertThresholds {
    AlertThresholds::default()
}

#[test]
fn nothing_regressed_means_no_regression() {
    let a = meta(1, Some(90.0), Some(3), Some(80.0));
    assert_eq!(
        regressions(&a, &meta(2, Some(90.0), Some(3), Some(80.0)), &t()),
        vec![]
    );
    // Improvements are not regressions.
    assert_eq!(
        regressions(&a, &meta(2, Some(95.0), Some(0), Some(99.0)), &t()),
        vec![]
    );
}

#[test]
fn score_drop_alerts_only_above_the_threshold() {
    let a = meta(1, Some(90.0), None, None);
    // Exactly the threshold (float noise included) is not more than it.
    assert_eq!(
        regressions(&a, &meta(2, Some(89.0), None, None), &t()),
        vec![]
    );
    let b = meta(1, Some(97.3), None, None);
    assert_eq!(
        regressions(&b, &meta(2, Some(96.3), None, None), &t()),
        vec![]
    );
    assert_eq!(
        regressions(&a, &meta(2, Some(88.99), None, None), &t()),
        vec![Regression::ScoreDrop {
            from_pct: 90.0,
            to_pct: 88.99,
            drop_pct_points: 1.01
        }]
    );
    let zero = AlertThresholds {
        score_drop_pct_points: 0.0,
        ..t()
    };
    assert_eq!(
        regressions(&a, &meta(2, Some(89.99), None, None), &zero).len(),
        1
    );
}

#[test]
fn an_unknown_score_on_either_side_is_not_compared() {
    let known = meta(1, Some(90.0), None, None);
    let unknown = meta(2, None, None, None);
    assert_eq!(regressions(&known, &unknown, &t()), vec![]);
    assert_eq!(regressions(&unknown, &known, &t()), vec![]);
}

#[test]
fn new_critical_violations_alert_beyond_the_allowed_increase() {
    let a = meta(1, None, Some(3), None);
    assert_eq!(regressions(&a, &meta(2, None, Some(3), None), &t()), vec![]);
    assert_eq!(
        regressions(&a, &meta(2, None, Some(5), None), &t()),
        vec![Regression::NewCriticalViolations {
            from: 3,
            to: 5,
            added: 2
        }]
    );
    let two = AlertThresholds {
        critical_increase: 2,
        ..t()
    };
    assert_eq!(regressions(&a, &meta(2, None, Some(5), None), &two), vec![]);
    assert_eq!(
        regressions(&a, &meta(2, None, Some(6), None), &two).len(),
        1
    );
    // Breakdowns missing on a side (an old snapshot): not compared.
    assert_eq!(
        regressions(
            &meta(1, None, None, None),
            &meta(2, None, Some(9), None),
            &t()
        ),
        vec![]
    );
}

#[test]
fn unattributed_spend_growth_is_the_fall_of_the_spend_weighted_score() {
    let a = meta(1, None, None, Some(80.0));
    assert_eq!(
        regressions(&a, &meta(2, None, None, Some(79.0)), &t()),
        vec![]
    );
    assert_eq!(
        regressions(&a, &meta(2, None, None, Some(75.5)), &t()),
        vec![Regression::UnattributedSpendGrowth {
            from_pct: 20.0,
            to_pct: 24.5,
            growth_pct_points: 4.5
        }]
    );
    assert_eq!(regressions(&a, &meta(2, None, None, None), &t()), vec![]);
}

#[test]
fn every_regression_is_reported_in_a_fixed_order() {
    let a = meta(1, Some(90.0), Some(0), Some(90.0));
    let b = meta(2, Some(80.0), Some(4), Some(70.0));
    let kinds: Vec<Value> = regressions(&a, &b, &t())
        .iter()
        .map(|r| serde_json::to_value(r).unwrap()["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        vec![
            json!("score_drop"),
            json!("new_critical_violations"),
            json!("unattributed_spend_growth")
        ]
    );
}

#[test]
fn the_webhook_body_names_both_snapshots_and_the_regressions() {
    let a = meta(1, Some(90.0), Some(1), None);
    let b = meta(2, Some(80.0), Some(1), None);
    let found = regressions(&a, &b, &t());
    let body = webhook_body(&a, &b, &found);
    assert_eq!(body["event"], "tagwarden.compliance_regression");
    assert_eq!(body["previous"]["id"], 1);
    assert_eq!(body["current"]["id"], 2);
    assert_eq!(body["current"]["score_pct"], 80.0);
    assert_eq!(body["current"]["critical_violations"], 1);
    assert_eq!(
        body["regressions"],
        json!([{"kind": "score_drop", "from_pct": 90.0, "to_pct": 80.0, "drop_pct_points": 10.0}])
    );
}

#[test]
fn the_slack_message_is_block_kit_with_a_fallback_text() {
    let a = meta(1, Some(90.0), Some(0), None);
    let b = meta(2, Some(80.0), Some(2), None);
    let found = regressions(&a, &b, &t());
    let msg = slack_message(&a, &b, &found);
    let title = "Tagwarden: compliance regressed (snapshot 1 → 2)";
    assert_eq!(msg["blocks"][0]["type"], "header");
    assert_eq!(msg["blocks"][0]["text"]["text"], title);
    let lines = "• Compliance score fell 10 points: 90% → 80%\n• 2 new critical violations: 0 → 2";
    assert_eq!(msg["blocks"][1]["text"]["type"], "mrkdwn");
    assert_eq!(msg["blocks"][1]["text"]["text"], lines);
    assert_eq!(msg["text"], format!("{title}\n{lines}"));
    assert_eq!(msg["blocks"][2]["type"], "context");
}

#[test]
fn the_email_lists_every_regression() {
    let a = meta(1, Some(95.0), Some(0), None);
    let b = meta(2, Some(80.0), Some(2), None);
    let found = regressions(&a, &b, &t());
    let mail = regression_email(&a, &b, &found);
    assert_eq!(
        mail.subject,
        "Tagwarden: compliance regressed (snapshot 1 → 2)"
    );
    assert!(
        mail.text.contains(
            "- Compliance score fell 15 points: 95% → 80%\n- 2 new critical violations: 0 → 2\n"
        ),
        "{}",
        mail.text
    );
}
