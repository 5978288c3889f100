//! The weekly summary (`serve --alert-weekly-summary`): once every seven days, the latest
//! scheduled audit against the audit of about a week before — effective and native score,
//! critical violations, the unattributed share of spend, the keys whose violations grew most —
//! and its three renderings (webhook JSON, Slack Block Kit, e-mail). Pure: whether a summary is
//! due is decided from the time of the last one, which the caller reads from history.db.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use super::{EmailText, critical, round2, unattributed_pct};
use crate::history::SnapshotMeta;

/// Days between two summaries, and how far back "a week ago" looks.
pub(crate) const SUMMARY_EVERY_DAYS: i64 = 7;
/// Keys listed under "top regressing keys".
pub(crate) const TOP_KEYS: usize = 5;
/// The event type of the webhook body.
pub(crate) const SUMMARY_EVENT: &str = "tagwarden.weekly_summary";

/// Whether a summary is due at `now`: none was ever sent, or the last one is at least seven
/// days old. A clock set back (last summary "in the future") waits rather than resends.
pub(crate) fn summary_due(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|t| now - t >= Duration::days(SUMMARY_EVERY_DAYS))
}

/// The snapshot to compare `current` with, among `candidates` of the same scope (any order):
/// the latest taken at least seven days before it; when history is shorter, the oldest one
/// before it (the summary shows its real time). None when `current` is the first.
pub(crate) fn baseline(candidates: &[SnapshotMeta], current: &SnapshotMeta) -> Option<i64> {
    let week_ago = current.taken_at - Duration::days(SUMMARY_EVERY_DAYS);
    let earlier = candidates.iter().filter(|m| {
        m.id != current.id
            && m.filters_hash == current.filters_hash
            && (m.taken_at, m.id) < (current.taken_at, current.id)
    });
    let at_or_before = earlier
        .clone()
        .filter(|m| m.taken_at <= week_ago)
        .max_by_key(|m| (m.taken_at, m.id));
    at_or_before
        .or_else(|| earlier.min_by_key(|m| (m.taken_at, m.id)))
        .map(|m| m.id)
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct SummarySide {
    pub snapshot_id: i64,
    pub taken_at: DateTime<Utc>,
    /// Effective score (virtual tags and defaults count), percent.
    pub score_pct: Option<f64>,
    /// Score on native tags only, percent.
    pub native_score_pct: Option<f64>,
    pub critical_violations: Option<usize>,
    /// Share of spend on non-compliant resources, percent (needs a cost source).
    pub unattributed_spend_pct: Option<f64>,
}

impl SummarySide {
    fn of(m: &SnapshotMeta) -> SummarySide {
        SummarySide {
            snapshot_id: m.id,
            taken_at: m.taken_at,
            score_pct: m.score_pct,
            native_score_pct: m.native_score_pct,
            critical_violations: critical(&m.counts),
            unattributed_spend_pct: unattributed_pct(m),
        }
    }
}

/// A key whose violations grew over the week.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct KeyRegression {
    pub key: String,
    pub from: usize,
    pub to: usize,
    pub added: usize,
}

/// The weekly summary.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct WeeklySummary {
    pub current: SummarySide,
    /// The audit about a week before; none when the current one is the first of its scope.
    pub week_ago: Option<SummarySide>,
    /// Changes, current minus a week ago (percentage points; negative scores fell).
    pub score_change_pct_points: Option<f64>,
    pub native_score_change_pct_points: Option<f64>,
    pub critical_change: Option<i64>,
    pub unattributed_spend_change_pct_points: Option<f64>,
    /// Keys whose violations grew most (at most five), largest growth first.
    pub top_regressing_keys: Vec<KeyRegression>,
}

/// Composes the summary of `current` against `week_ago`.
pub(crate) fn weekly_summary(
    current: &SnapshotMeta,
    week_ago: Option<&SnapshotMeta>,
) -> WeeklySummary {
    let now = SummarySide::of(current);
    let then = week_ago.map(SummarySide::of);
    let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(round2(a - b)),
        _ => None,
    };
    let (score, native, crit, unattributed) = match &then {
        Some(t) => (
            diff(now.score_pct, t.score_pct),
            diff(now.native_score_pct, t.native_score_pct),
            match (now.critical_violations, t.critical_violations) {
                (Some(a), Some(b)) => Some(a as i64 - b as i64),
                _ => None,
            },
            diff(now.unattributed_spend_pct, t.unattributed_spend_pct),
        ),
        None => (None, None, None, None),
    };
    let top_regressing_keys = week_ago
        .map(|w| regressing_keys(&w.counts, &current.counts))
        .unwrap_or_default();
    WeeklySummary {
        current: now,
        week_ago: then,
        score_change_pct_points: score,
        native_score_change_pct_points: native,
        critical_change: crit,
        unattributed_spend_change_pct_points: unattributed,
        top_regressing_keys,
    }
}

/// Keys (`counts.by_key`) whose violations grew, largest growth first (ties by key).
fn regressing_keys(then: &Value, now: &Value) -> Vec<KeyRegression> {
    let count = |counts: &Value, key: &str| {
        counts
            .get("by_key")
            .and_then(|k| k.get(key))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
    };
    let Some(keys) = now.get("by_key").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out: Vec<KeyRegression> = keys
        .keys()
        .filter_map(|key| {
            let (from, to) = (count(then, key), count(now, key));
            (to > from).then(|| KeyRegression {
                key: key.clone(),
                from,
                to,
                added: to - from,
            })
        })
        .collect();
    out.sort_by(|a, b| b.added.cmp(&a.added).then_with(|| a.key.cmp(&b.key)));
    out.truncate(TOP_KEYS);
    out
}

/// `95.5%`, or `n/a` for an unknown figure.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v}%"))
}

/// `+1.5`, `-2`, or empty for an unknown change.
fn signed(v: Option<f64>) -> String {
    match v {
        Some(v) if v > 0.0 => format!(" ({v:+} points)"),
        Some(v) => format!(" ({v} points)"),
        None => String::new(),
    }
}

/// The summary's lines for people (Slack, e-mail).
pub(crate) fn summary_lines(s: &WeeklySummary) -> Vec<String> {
    let then = s.week_ago.as_ref();
    let mut lines = vec![
        format!(
            "Effective score: {} → {}{}",
            pct(then.and_then(|t| t.score_pct)),
            pct(s.current.score_pct),
            signed(s.score_change_pct_points)
        ),
        format!(
            "Native score: {} → {}{}",
            pct(then.and_then(|t| t.native_score_pct)),
            pct(s.current.native_score_pct),
            signed(s.native_score_change_pct_points)
        ),
        format!(
            "Critical violations: {} → {}",
            then.and_then(|t| t.critical_violations)
                .map_or_else(|| "n/a".into(), |n| n.to_string()),
            s.current
                .critical_violations
                .map_or_else(|| "n/a".into(), |n| n.to_string())
        ),
        format!(
            "Unattributed spend: {} → {}{}",
            pct(then.and_then(|t| t.unattributed_spend_pct)),
            pct(s.current.unattributed_spend_pct),
            signed(s.unattributed_spend_change_pct_points)
        ),
    ];
    if s.top_regressing_keys.is_empty() {
        lines.push("Top regressing keys: none".into());
    } else {
        let keys: Vec<String> = s
            .top_regressing_keys
            .iter()
            .map(|k| format!("{} +{} ({} → {})", k.key, k.added, k.from, k.to))
            .collect();
        lines.push(format!("Top regressing keys: {}", keys.join(", ")));
    }
    lines
}

fn period(s: &WeeklySummary) -> String {
    match &s.week_ago {
        Some(t) => format!(
            "snapshot {} ({}) vs snapshot {} ({})",
            s.current.snapshot_id,
            s.current.taken_at.to_rfc3339(),
            t.snapshot_id,
            t.taken_at.to_rfc3339()
        ),
        None => format!(
            "snapshot {} ({}); no earlier snapshot of this scope",
            s.current.snapshot_id,
            s.current.taken_at.to_rfc3339()
        ),
    }
}

/// The generic webhook's JSON body.
pub(crate) fn summary_webhook_body(s: &WeeklySummary) -> Value {
    json!({"event": SUMMARY_EVENT, "summary": s})
}

/// The Slack message (Block Kit, with a plain-text fallback).
pub(crate) fn summary_slack_message(s: &WeeklySummary) -> Value {
    let title = "Tagwarden: weekly compliance summary";
    let lines: Vec<String> = summary_lines(s)
        .into_iter()
        .map(|l| format!("• {l}"))
        .collect();
    json!({
        "text": format!("{title}\n{}", lines.join("\n")),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": period(s)}]},
        ],
    })
}

/// The e-mail.
pub(crate) fn summary_email(s: &WeeklySummary) -> EmailText {
    let mut text = format!("Weekly compliance summary: {}.\n\n", period(s));
    for l in summary_lines(s) {
        text.push_str(&format!("- {l}\n"));
    }
    text.push_str("-- \nSent by Tagwarden once every seven days after a scheduled audit.\n");
    EmailText {
        subject: format!(
            "Tagwarden: weekly compliance summary (score {})",
            pct(s.current.score_pct)
        ),
        text,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;

    fn meta(id: i64, day: u32, score: f64, critical: usize, by_key: Value) -> SnapshotMeta {
        SnapshotMeta {
            id,
            taken_at: Utc.with_ymd_and_hms(2026, 3, day, 6, 0, 0).unwrap(),
            trigger: "schedule".into(),
            source: "demo".into(),
            policy_hash: "p".into(),
            filters: json!({}),
            filters_hash: "h".into(),
            resources: 100,
            in_scope: 100,
            compliant: 90,
            violations: 10,
            score_pct: Some(score),
            native_score_pct: Some(score - 10.0),
            spend_score_pct: None,
            counts: json!({"by_severity": {"critical": critical}, "by_key": by_key}),
            by_violation: BTreeMap::new(),
        }
    }

    #[test]
    fn due_once_every_seven_days() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 6, 0, 0).unwrap();
        assert!(summary_due(None, now));
        assert!(summary_due(Some(now - Duration::days(7)), now));
        assert!(summary_due(Some(now - Duration::days(30)), now));
        assert!(!summary_due(
            Some(now - Duration::days(7) + Duration::seconds(1)),
            now
        ));
        assert!(!summary_due(Some(now), now));
        // A clock set back does not make it due.
        assert!(!summary_due(Some(now + Duration::days(1)), now));
    }

    #[test]
    fn baseline_is_the_latest_a_week_before_else_the_oldest() {
        let e = json!({});
        let all = vec![
            meta(1, 1, 90.0, 0, e.clone()),
            meta(2, 3, 90.0, 0, e.clone()),
            meta(3, 6, 90.0, 0, e.clone()),
            meta(4, 10, 90.0, 0, e.clone()),
        ];
        // 10 March: a week before is 3 March, 06:00 → snapshot 2 (taken exactly then).
        assert_eq!(baseline(&all, &all[3]), Some(2));
        // 6 March: nothing a week before; the oldest earlier one.
        assert_eq!(baseline(&all, &all[2]), Some(1));
        assert_eq!(baseline(&all, &all[0]), None);
        // Other scopes never count.
        let mut other = meta(5, 1, 10.0, 0, e);
        other.filters_hash = "other".into();
        assert_eq!(baseline(&[other], &all[3]), None);
    }

    #[test]
    fn summary_compares_scores_criticals_and_keys() {
        let then = meta(
            1,
            1,
            92.5,
            1,
            json!({"Owner": 3, "Env": 5, "CostCenter": 2, "Gone": 4}),
        );
        let now = meta(
            2,
            8,
            90.0,
            4,
            json!({"Owner": 7, "Env": 5, "CostCenter": 4, "New": 2}),
        );
        let s = weekly_summary(&now, Some(&then));
        assert_eq!(s.score_change_pct_points, Some(-2.5));
        assert_eq!(s.native_score_change_pct_points, Some(-2.5));
        assert_eq!(s.critical_change, Some(3));
        assert_eq!(s.unattributed_spend_change_pct_points, None);
        let keys: Vec<(&str, usize)> = s
            .top_regressing_keys
            .iter()
            .map(|k| (k.key.as_str(), k.added))
            .collect();
        assert_eq!(keys, vec![("Owner", 4), ("CostCenter", 2), ("New", 2)]);
        assert_eq!(
            summary_lines(&s),
            vec![
                "Effective score: 92.5% → 90% (-2.5 points)",
                "Native score: 82.5% → 80% (-2.5 points)",
                "Critical violations: 1 → 4",
                "Unattributed spend: n/a → n/a",
                "Top regressing keys: Owner +4 (3 → 7), CostCenter +2 (2 → 4), New +2 (0 → 2)",
            ]
        );
        let body = summary_webhook_body(&s);
        assert_eq!(body["event"], SUMMARY_EVENT);
        assert_eq!(body["summary"]["week_ago"]["snapshot_id"], 1);
        let mail = summary_email(&s);
        assert_eq!(
            mail.subject,
            "Tagwarden: weekly compliance summary (score 90%)"
        );
        assert!(
            mail.text.contains("- Critical violations: 1 → 4\n"),
            "{}",
            mail.text
        );
        let slack = summary_slack_message(&s);
        assert_eq!(slack["blocks"][0]["type"], "header");
    }

    #[test]
    fn first_summary_has_no_changes() {
        let now = meta(1, 8, 90.0, 4, json!({"Owner": 7}));
        let s = weekly_summary(&now, None);
        assert_eq!(s.week_ago, None);
        assert_eq!(s.score_change_pct_points, None);
        assert_eq!(s.top_regressing_keys, vec![]);
        assert_eq!(summary_lines(&s)[0], "Effective score: n/a → 90%");
    }

    #[test]
    fn at_most_five_keys() {
        let keys: serde_json::Map<String, Value> =
            (0..8).map(|i| (format!("K{i}"), json!(i + 1))).collect();
        let s = weekly_summary(
            &meta(2, 8, 90.0, 0, Value::Object(keys)),
            Some(&meta(1, 1, 90.0, 0, json!({}))),
        );
        assert_eq!(s.top_regressing_keys.len(), TOP_KEYS);
        assert_eq!(s.top_regressing_keys[0].key, "K7");
    }
}
