//! A compliance score over time: one point per day, ISO week or month (the last snapshot taken
//! in it), the trend between the first and the last point, and which violations moved most.
//! Pure functions over stored snapshot metadata.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SnapshotMeta;

/// How snapshots are grouped into points (periods are UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum GroupBy {
    Day,
    Week,
    Month,
}

/// One point of the series: the last snapshot of its period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct HistoryPoint {
    /// The period: `2026-11-22` (day), `2026-W47` (ISO week) or `2026-11` (month), UTC.
    pub period: String,
    /// The snapshot the point shows (the last one taken in the period).
    pub snapshot_id: i64,
    /// When that snapshot was taken (RFC 3339, UTC).
    pub taken_at: String,
    /// Compliance score in percent; none when nothing was in scope.
    pub score_pct: Option<f64>,
    /// Score judged on native tags only.
    pub native_score_pct: Option<f64>,
    /// Spend-weighted score, when spend was known.
    pub spend_score_pct: Option<f64>,
    /// Resources the check covered.
    pub resources: usize,
    /// Resources to which at least one required rule applies.
    pub in_scope: usize,
    /// In-scope resources that pass the policy.
    pub compliant: usize,
    /// Violations counted.
    pub violations: usize,
    /// Hash of the policy evaluated.
    pub policy_hash: String,
}

/// Which way the score is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Direction {
    Improving,
    Declining,
    Stable,
    /// Fewer than two points, or a point without a score.
    InsufficientData,
}

/// The score's movement from the first point to the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Trend {
    /// Improving, declining, stable or insufficient_data.
    pub direction: Direction,
    /// Score change (percentage points) beyond which the trend is improving/declining.
    pub threshold_pct_points: f64,
    /// Score at the first point.
    pub first_score_pct: Option<f64>,
    /// Score at the last point.
    pub last_score_pct: Option<f64>,
    /// Last score minus first score, in percentage points; none with fewer than two points or
    /// a missing score.
    pub absolute_change_pct_points: Option<f64>,
    /// The change relative to the first score, in percent; none when the first score is 0 or
    /// missing.
    pub relative_change_pct: Option<f64>,
    /// Violations at the last point minus violations at the first.
    pub violations_change: i64,
    /// Compliant resources at the last point minus at the first.
    pub compliant_change: i64,
    /// Number of points compared over.
    pub points: usize,
    /// The policy changed between points: scores are not strictly comparable.
    pub policy_changed: bool,
}

/// How often one kind of violation occurred at the start and at the end of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ViolationMovement {
    /// The label, `kind:key` (or `kind` when the violation has no key).
    pub violation: String,
    /// The violation kind, e.g. `missing_tag`.
    pub kind: String,
    /// The tag key, when the violation concerns one.
    pub key: Option<String>,
    /// Count in the first snapshot of the window.
    pub first: usize,
    /// Count in the last snapshot of the window.
    pub last: usize,
    /// `last - first`.
    pub change: i64,
}

/// A change below one percentage point is noise for a practitioner, not a trend.
pub(crate) const TREND_THRESHOLD_PCT_POINTS: f64 = 1.0;

/// The period label of a time under a grouping (UTC; ISO weeks belong to their ISO year, so
/// 2027-01-01 is `2026-W53`).
pub(crate) fn period_of(at: &DateTime<Utc>, group_by: GroupBy) -> String {
    match group_by {
        GroupBy::Day => at.format("%Y-%m-%d").to_string(),
        GroupBy::Week => {
            let week = at.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        }
        GroupBy::Month => at.format("%Y-%m").to_string(),
    }
}

/// The last snapshot (latest `taken_at`, then highest id) of each period that has one, in time
/// order. Empty periods are left out rather than zero-filled: no snapshot is not a zero score.
pub(crate) fn series(snapshots: &[SnapshotMeta], group_by: GroupBy) -> Vec<HistoryPoint> {
    let mut last_of_period: HashMap<String, &SnapshotMeta> = HashMap::new();
    for snapshot in snapshots {
        let period = period_of(&snapshot.taken_at, group_by);
        let slot = last_of_period.entry(period).or_insert(snapshot);
        if order_key(snapshot) > order_key(slot) {
            *slot = snapshot;
        }
    }
    let mut chosen: Vec<(String, &SnapshotMeta)> = last_of_period.into_iter().collect();
    chosen.sort_by_key(|(_, s)| order_key(s));
    chosen
        .into_iter()
        .map(|(period, s)| point(period, s))
        .collect()
}

fn order_key(s: &SnapshotMeta) -> (DateTime<Utc>, i64) {
    (s.taken_at, s.id)
}

fn point(period: String, s: &SnapshotMeta) -> HistoryPoint {
    HistoryPoint {
        period,
        snapshot_id: s.id,
        taken_at: s.taken_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        score_pct: s.score_pct,
        native_score_pct: s.native_score_pct,
        spend_score_pct: s.spend_score_pct,
        resources: s.resources,
        in_scope: s.in_scope,
        compliant: s.compliant,
        violations: s.violations,
        policy_hash: s.policy_hash.clone(),
    }
}

/// Compares the first and the last point. The change is rounded to 2 decimals before it is
/// compared with the threshold, so the verdict agrees with the number shown (79.3 → 80.3 is
/// +1.00, improving, although the float difference is 0.99999…). A negative or non-finite
/// threshold is read as its magnitude or the default.
pub(crate) fn trend(points: &[HistoryPoint], threshold: f64) -> Trend {
    let threshold = if threshold.is_finite() {
        threshold.abs()
    } else {
        TREND_THRESHOLD_PCT_POINTS
    };
    let first = points.first();
    let last = points.last();
    let first_score = first.and_then(|p| p.score_pct);
    let last_score = last.and_then(|p| p.score_pct);
    let change = first_score
        .zip(last_score)
        .filter(|_| points.len() >= 2)
        .map(|(a, b)| round2(b - a));
    let relative = first_score
        .zip(change)
        .filter(|(a, _)| *a != 0.0)
        .map(|(a, c)| round2(c / a * 100.0));
    let direction = change.map_or(Direction::InsufficientData, |c| direction_of(c, threshold));
    Trend {
        direction,
        threshold_pct_points: threshold,
        first_score_pct: first_score,
        last_score_pct: last_score,
        absolute_change_pct_points: change,
        relative_change_pct: relative,
        violations_change: count_change(first, last, |p| p.violations),
        compliant_change: count_change(first, last, |p| p.compliant),
        points: points.len(),
        policy_changed: points
            .iter()
            .any(|p| first.is_some_and(|f| f.policy_hash != p.policy_hash)),
    }
}

fn direction_of(change: f64, threshold: f64) -> Direction {
    // `change > 0` keeps a zero threshold from calling an unchanged score improving.
    if change >= threshold && change > 0.0 {
        Direction::Improving
    } else if change <= -threshold && change < 0.0 {
        Direction::Declining
    } else {
        Direction::Stable
    }
}

fn count_change(
    first: Option<&HistoryPoint>,
    last: Option<&HistoryPoint>,
    count: impl Fn(&HistoryPoint) -> usize,
) -> i64 {
    match (first, last) {
        (Some(f), Some(l)) => signed(count(l)) - signed(count(f)),
        _ => 0,
    }
}

fn signed(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The most common violations in a window: every label seen at either end, ordered by the
/// larger of its two counts (descending, then by label), cut to `top`. Also returns how many
/// distinct labels there were, so a caller can say how many were left out.
pub(crate) fn violation_movements(
    first: &SnapshotMeta,
    last: &SnapshotMeta,
    top: usize,
) -> (Vec<ViolationMovement>, usize) {
    let labels: BTreeSet<&String> = first
        .by_violation
        .keys()
        .chain(last.by_violation.keys())
        .collect();
    let total = labels.len();
    let mut movements: Vec<ViolationMovement> = labels
        .into_iter()
        .map(|label| {
            let a = first.by_violation.get(label).copied().unwrap_or(0);
            let b = last.by_violation.get(label).copied().unwrap_or(0);
            movement(label, a, b)
        })
        .collect();
    movements.sort_by(|x, y| {
        let peak = |m: &ViolationMovement| m.first.max(m.last);
        peak(y)
            .cmp(&peak(x))
            .then_with(|| x.violation.cmp(&y.violation))
    });
    movements.truncate(top);
    (movements, total)
}

fn movement(label: &str, first: usize, last: usize) -> ViolationMovement {
    // Kinds have no colon; keys may (`aws:cloudformation:stack-name`), so split at the first.
    let (kind, key) = match label.split_once(':') {
        Some((kind, key)) => (kind.to_string(), Some(key.to_string())),
        None => (label.to_string(), None),
    };
    ViolationMovement {
        violation: label.to_string(),
        kind,
        key,
        first,
        last,
        change: signed(last) - signed(first),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn snap(id: i64, taken_at: DateTime<Utc>, score: Option<f64>) -> SnapshotMeta {
        SnapshotMeta {
            id,
            taken_at,
            trigger: "tool".into(),
            source: "test".into(),
            policy_hash: "p1".into(),
            filters: json!({}),
            filters_hash: "f".into(),
            resources: 100,
            in_scope: 90,
            compliant: 50 + id as usize,
            violations: 200 - id as usize,
            score_pct: score,
            native_score_pct: score.map(|s| s - 5.0),
            spend_score_pct: None,
            counts: json!({}),
            by_violation: BTreeMap::new(),
        }
    }

    fn periods(points: &[HistoryPoint]) -> Vec<(&str, i64)> {
        points
            .iter()
            .map(|p| (p.period.as_str(), p.snapshot_id))
            .collect()
    }

    /// Several snapshots a day, gaps of days and weeks, across a month and a year boundary.
    fn estate() -> Vec<SnapshotMeta> {
        vec![
            snap(1, at(2026, 11, 30, 8, 0), Some(60.0)),
            snap(2, at(2026, 11, 30, 17, 0), Some(61.0)),
            snap(3, at(2026, 12, 1, 9, 0), Some(62.5)),
            snap(4, at(2026, 12, 1, 23, 59), Some(63.0)),
            // Gap: nothing from Dec 2 to Dec 27.
            snap(5, at(2026, 12, 28, 0, 0), Some(64.0)),
            snap(6, at(2026, 12, 31, 12, 0), Some(65.0)),
            snap(7, at(2027, 1, 1, 6, 0), Some(66.0)),
            snap(8, at(2027, 1, 3, 23, 0), Some(67.0)),
            snap(9, at(2027, 1, 4, 0, 0), Some(68.0)),
            snap(10, at(2027, 2, 15, 10, 0), Some(70.25)),
        ]
    }

    #[test]
    fn period_labels() {
        assert_eq!(
            period_of(&at(2026, 11, 22, 0, 0), GroupBy::Day),
            "2026-11-22"
        );
        assert_eq!(
            period_of(&at(2026, 11, 22, 0, 0), GroupBy::Week),
            "2026-W47"
        );
        assert_eq!(
            period_of(&at(2026, 11, 22, 0, 0), GroupBy::Month),
            "2026-11"
        );
        // ISO weeks belong to their ISO year.
        assert_eq!(
            period_of(&at(2026, 12, 31, 0, 0), GroupBy::Week),
            "2026-W53"
        );
        assert_eq!(period_of(&at(2027, 1, 1, 0, 0), GroupBy::Week), "2026-W53");
        assert_eq!(
            period_of(&at(2027, 1, 3, 23, 59), GroupBy::Week),
            "2026-W53"
        );
        assert_eq!(period_of(&at(2027, 1, 4, 0, 0), GroupBy::Week), "2027-W01");
        // Week 1 starting in the previous calendar year: 2024-12-30 is 2025-W01.
        assert_eq!(
            period_of(&at(2024, 12, 30, 0, 0), GroupBy::Week),
            "2025-W01"
        );
        assert_eq!(period_of(&at(2026, 1, 5, 0, 0), GroupBy::Week), "2026-W02");
    }

    #[test]
    fn series_by_day_keeps_the_last_snapshot_of_each_day() {
        let points = series(&estate(), GroupBy::Day);
        assert_eq!(
            periods(&points),
            vec![
                ("2026-11-30", 2),
                ("2026-12-01", 4),
                ("2026-12-28", 5),
                ("2026-12-31", 6),
                ("2027-01-01", 7),
                ("2027-01-03", 8),
                ("2027-01-04", 9),
                ("2027-02-15", 10),
            ]
        );
        let first = &points[0];
        assert_eq!(first.taken_at, "2026-11-30T17:00:00Z");
        assert_eq!(first.score_pct, Some(61.0));
        assert_eq!(first.native_score_pct, Some(56.0));
        assert_eq!(first.spend_score_pct, None);
        assert_eq!(
            (
                first.resources,
                first.in_scope,
                first.compliant,
                first.violations
            ),
            (100, 90, 52, 198)
        );
        assert_eq!(first.policy_hash, "p1");
    }

    #[test]
    fn series_by_week_uses_iso_weeks_across_the_year_boundary() {
        let points = series(&estate(), GroupBy::Week);
        assert_eq!(
            periods(&points),
            vec![
                ("2026-W49", 4), // Mon Nov 30 – Sun Dec 6
                ("2026-W53", 8), // Mon Dec 28 – Sun Jan 3
                ("2027-W01", 9),
                ("2027-W07", 10),
            ]
        );
    }

    #[test]
    fn series_by_month() {
        let points = series(&estate(), GroupBy::Month);
        assert_eq!(
            periods(&points),
            vec![
                ("2026-11", 2),
                ("2026-12", 6),
                ("2027-01", 9),
                ("2027-02", 10)
            ]
        );
    }

    #[test]
    fn series_accepts_any_input_order_and_breaks_time_ties_by_id() {
        let mut shuffled = estate();
        shuffled.reverse();
        shuffled.swap(2, 7);
        assert_eq!(
            series(&shuffled, GroupBy::Day),
            series(&estate(), GroupBy::Day)
        );
        let t = at(2026, 5, 5, 12, 0);
        let tied = vec![snap(12, t, Some(1.0)), snap(11, t, Some(2.0))];
        assert_eq!(
            periods(&series(&tied, GroupBy::Day)),
            vec![("2026-05-05", 12)]
        );
        // Later time beats higher id.
        let later = vec![snap(20, t, Some(1.0)), snap(3, at(2026, 5, 5, 12, 1), None)];
        assert_eq!(
            periods(&series(&later, GroupBy::Day)),
            vec![("2026-05-05", 3)]
        );
        assert!(series(&[], GroupBy::Month).is_empty());
    }

    #[test]
    fn series_periods_are_utc() {
        // 23:30 UTC on the 1st is still the 1st, whatever the local zone.
        let s = vec![snap(1, at(2026, 3, 1, 23, 30), Some(1.0))];
        assert_eq!(series(&s, GroupBy::Day)[0].period, "2026-03-01");
    }

    #[test]
    fn trend_over_the_estate() {
        let points = series(&estate(), GroupBy::Day);
        let t = trend(&points, TREND_THRESHOLD_PCT_POINTS);
        assert_eq!(
            t,
            Trend {
                direction: Direction::Improving,
                threshold_pct_points: 1.0,
                first_score_pct: Some(61.0),
                last_score_pct: Some(70.25),
                absolute_change_pct_points: Some(9.25),
                relative_change_pct: Some(15.16), // 9.25 / 61 = 15.1639…%
                violations_change: -8,            // 190 - 198
                compliant_change: 8,              // 60 - 52
                points: 8,
                policy_changed: false,
            }
        );
    }

    fn points_with(scores: &[Option<f64>]) -> Vec<HistoryPoint> {
        let snaps: Vec<SnapshotMeta> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| snap(i as i64 + 1, at(2026, 1, 1 + i as u32, 0, 0), *s))
            .collect();
        series(&snaps, GroupBy::Day)
    }

    fn direction(scores: &[Option<f64>]) -> Direction {
        trend(&points_with(scores), TREND_THRESHOLD_PCT_POINTS).direction
    }

    #[test]
    fn trend_threshold_is_inclusive() {
        assert_eq!(direction(&[Some(80.0), Some(81.0)]), Direction::Improving);
        assert_eq!(direction(&[Some(80.0), Some(79.0)]), Direction::Declining);
        assert_eq!(direction(&[Some(80.0), Some(80.99)]), Direction::Stable);
        assert_eq!(direction(&[Some(80.0), Some(79.01)]), Direction::Stable);
        assert_eq!(direction(&[Some(80.0), Some(80.0)]), Direction::Stable);
        // The float difference is 0.99999…; the rounded change is 1.00, as shown.
        assert_eq!(direction(&[Some(79.3), Some(80.3)]), Direction::Improving);
        assert_eq!(direction(&[Some(80.3), Some(79.3)]), Direction::Declining);
        // Only the ends count, not the path between them.
        assert_eq!(
            direction(&[Some(50.0), Some(90.0), Some(10.0), Some(50.5)]),
            Direction::Stable
        );
    }

    #[test]
    fn trend_threshold_edge_values() {
        let points = points_with(&[Some(80.0), Some(80.0)]);
        assert_eq!(trend(&points, 0.0).direction, Direction::Stable);
        let up = points_with(&[Some(80.0), Some(80.01)]);
        assert_eq!(trend(&up, 0.0).direction, Direction::Improving);
        assert_eq!(trend(&up, -0.01).threshold_pct_points, 0.01);
        assert_eq!(trend(&up, -0.01).direction, Direction::Improving);
        assert_eq!(trend(&up, f64::NAN).threshold_pct_points, 1.0);
        assert_eq!(trend(&up, 5.0).direction, Direction::Stable);
    }

    #[test]
    fn trend_needs_two_scored_points() {
        let none: Vec<HistoryPoint> = vec![];
        let t = trend(&none, 1.0);
        assert_eq!(t.direction, Direction::InsufficientData);
        assert_eq!(
            (t.points, t.violations_change, t.compliant_change),
            (0, 0, 0)
        );
        assert_eq!(t.first_score_pct, None);

        let one = points_with(&[Some(80.0)]);
        let t = trend(&one, 1.0);
        assert_eq!(t.direction, Direction::InsufficientData);
        assert_eq!(t.first_score_pct, Some(80.0));
        assert_eq!(t.absolute_change_pct_points, None);

        let t = trend(&points_with(&[None, Some(80.0)]), 1.0);
        assert_eq!(t.direction, Direction::InsufficientData);
        assert_eq!(
            (
                t.first_score_pct,
                t.last_score_pct,
                t.absolute_change_pct_points
            ),
            (None, Some(80.0), None)
        );
        assert_eq!(t.relative_change_pct, None);
        // Counts still move even without scores.
        assert_eq!((t.violations_change, t.compliant_change), (-1, 1));

        let t = trend(&points_with(&[Some(80.0), None]), 1.0);
        assert_eq!(t.direction, Direction::InsufficientData);
        // A missing score in the middle does not matter.
        assert_eq!(
            direction(&[Some(70.0), None, Some(75.0)]),
            Direction::Improving
        );
    }

    #[test]
    fn relative_change_from_zero_is_none() {
        let t = trend(&points_with(&[Some(0.0), Some(40.0)]), 1.0);
        assert_eq!(t.absolute_change_pct_points, Some(40.0));
        assert_eq!(t.relative_change_pct, None);
        assert_eq!(t.direction, Direction::Improving);
        let t = trend(&points_with(&[Some(40.0), Some(30.0)]), 1.0);
        assert_eq!(t.relative_change_pct, Some(-25.0));
        let t = trend(&points_with(&[Some(30.0), Some(40.0)]), 1.0);
        assert_eq!(t.relative_change_pct, Some(33.33));
    }

    #[test]
    fn policy_change_is_flagged() {
        let mut snaps = estate();
        assert!(!trend(&series(&snaps, GroupBy::Month), 1.0).policy_changed);
        snaps[5].policy_hash = "p2".into(); // id 6, last of December
        assert!(trend(&series(&snaps, GroupBy::Month), 1.0).policy_changed);
        // A change hidden inside a period (not the point shown) is not a change between points.
        assert!(!trend(&series(&snaps, GroupBy::Week), 1.0).policy_changed);
    }

    #[test]
    fn direction_serializes_snake_case() {
        assert_eq!(
            serde_json::to_value(Direction::InsufficientData).unwrap(),
            json!("insufficient_data")
        );
        assert_eq!(serde_json::to_value(GroupBy::Week).unwrap(), json!("week"));
        let g: GroupBy = serde_json::from_value(json!("month")).unwrap();
        assert_eq!(g, GroupBy::Month);
    }

    fn with_violations(id: i64, counts: &[(&str, usize)]) -> SnapshotMeta {
        let mut s = snap(id, at(2026, 1, 1, 0, 0), Some(1.0));
        s.by_violation = counts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        s
    }

    #[test]
    fn violation_movements_rank_by_peak_then_label() {
        let first = with_violations(
            1,
            &[
                ("missing_tag:CostCenter", 40),
                ("missing_tag:Owner", 10),
                ("invalid_value:Environment", 25),
                ("too_many_tags", 3),
            ],
        );
        let last = with_violations(
            2,
            &[
                ("missing_tag:CostCenter", 12),
                ("missing_tag:Owner", 25),
                ("prohibited_tag:aws:cloudformation:stack-name", 7),
                ("too_many_tags", 3),
            ],
        );
        let (all, total) = violation_movements(&first, &last, 10);
        assert_eq!(total, 5);
        let order: Vec<(&str, usize, usize, i64)> = all
            .iter()
            .map(|m| (m.violation.as_str(), m.first, m.last, m.change))
            .collect();
        assert_eq!(
            order,
            vec![
                ("missing_tag:CostCenter", 40, 12, -28),
                // Peak 25 on both: label order.
                ("invalid_value:Environment", 25, 0, -25),
                ("missing_tag:Owner", 10, 25, 15),
                ("prohibited_tag:aws:cloudformation:stack-name", 0, 7, 7),
                ("too_many_tags", 3, 3, 0),
            ]
        );
        assert_eq!(all[3].kind, "prohibited_tag");
        assert_eq!(all[3].key.as_deref(), Some("aws:cloudformation:stack-name"));
        assert_eq!(all[4].kind, "too_many_tags");
        assert_eq!(all[4].key, None);

        let (top2, total) = violation_movements(&first, &last, 2);
        assert_eq!(total, 5);
        assert_eq!(top2, all[..2].to_vec());
        let (none, total) = violation_movements(&first, &last, 0);
        assert!(none.is_empty());
        assert_eq!(total, 5);
    }

    #[test]
    fn violation_movements_of_clean_snapshots() {
        let a = with_violations(1, &[]);
        assert_eq!(violation_movements(&a, &a, 5), (vec![], 0));
    }
}
