//! Cost anomalies as a use-case: daily usage costs grouped per service, account and required
//! tag key (with `untagged`), checked by the pure detector (`cost::anomaly`), each anomaly
//! explained by the resources that drove it (their own baseline on the same day), their
//! owners from effective tags and the untagged share of the excess, with the decision recorded
//! on it. `get_cost_anomalies` and `tagwarden anomalies` both ask it.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::costs::{Amount, CostQuality, amount};
use crate::app::quality::DataQuality;
use crate::app::{Call, ToolError};
use crate::cost::anomaly::{
    Baseline, DetectConfig, MAD_FLOOR_MICROS, MAD_FLOOR_SHARE, anomaly_id, detect, score_day,
};
use crate::cost::attribution::{KeyJudge, pct};
use crate::cost::daily::DailyCosts;
use crate::cost::{CostMetric, CostQuery, Micros, Period};
use crate::store::anomalies::{AnomalyDecision, AnomalyDecisionRow};

/// Anomalies listed at most.
const MAX_LISTED: usize = 200;

/// The value of a tag dimension for spend without a valid value of the key.
pub(crate) const UNTAGGED: &str = "untagged";

/// What to group the daily series by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DimensionArg {
    Service,
    Account,
    /// Each required tag key (or `tag_keys`), spend without a valid value as `untagged`.
    Tag,
}

/// How a day's expected cost is found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BaselineArg {
    /// Median of the same weekday over the previous `weeks` weeks (default).
    #[default]
    SameWeekday,
    /// Median of the previous 28 days.
    Trailing28,
}

/// An anomaly question in plain types.
#[derive(Debug, Clone)]
pub(crate) struct AnomalyQuestion {
    /// Recent complete days to check.
    pub days: u32,
    pub dimensions: Vec<DimensionArg>,
    /// Tag keys for the `tag` dimension (empty: every required key).
    pub tag_keys: Vec<String>,
    pub baseline: BaselineArg,
    pub weeks: u32,
    pub z_threshold: f64,
    /// Absolute floor, in the currency.
    pub min_impact: f64,
    pub min_impact_pct: f64,
    /// Check the last day of the data too (normally still accruing).
    pub include_last_day: bool,
    pub top_resources: u32,
    pub metric: Option<CostMetric>,
    pub force_refresh: bool,
}

impl Default for AnomalyQuestion {
    fn default() -> Self {
        AnomalyQuestion {
            days: 14,
            dimensions: Vec::new(),
            tag_keys: Vec::new(),
            baseline: BaselineArg::SameWeekday,
            weeks: 8,
            z_threshold: crate::cost::anomaly::DEFAULT_Z_THRESHOLD,
            min_impact: 10.0,
            min_impact_pct: 20.0,
            include_last_day: false,
            top_resources: 5,
            metric: None,
            force_refresh: false,
        }
    }
}

/// A resource (or resource-less charge) behind an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Driver {
    /// Empty for a charge tied to no resource.
    pub resource_id: String,
    pub name: String,
    pub resource_type: String,
    pub service: String,
    pub account: String,
    pub actual: Amount,
    /// The line's own baseline for the day (same method).
    pub expected: Amount,
    pub impact: Amount,
    /// The value of the policy's owner key (a required key named like owner or team), from
    /// effective tags; null when it has none.
    pub owner: Option<String>,
    /// Effective values of the required keys it has.
    pub tags: BTreeMap<String, String>,
    /// Required keys without a valid value (missing or invalid).
    pub untagged_keys: Vec<String>,
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct AnomalyItem {
    /// Stable across runs (a hash of dimension, value and day): decide on it.
    pub anomaly_id: String,
    /// `service`, `account` or `tag:KEY`.
    pub dimension: String,
    /// The service, account or tag value (`untagged`: no valid value).
    pub value: String,
    /// YYYY-MM-DD.
    pub day: NaiveDate,
    pub actual: Amount,
    /// The baseline median.
    pub expected: Amount,
    /// actual − expected.
    pub impact: Amount,
    /// impact ÷ expected, in % (null when expected ≤ 0).
    pub impact_pct: Option<f64>,
    /// Modified z-score (0.6745·(actual − median)/MAD, MAD floored).
    pub score: f64,
    /// `pending`, `acknowledged`, `dismissed` or `planned`.
    pub status: String,
    /// The latest decision, when there is one.
    pub decision: Option<AnomalyDecisionRow>,
    /// The lines whose rise over their own baseline drove it, largest first.
    pub drivers: Vec<Driver>,
    /// Lines that rose that day (the list is the top).
    pub drivers_total: usize,
    /// Of the rise of the lines that rose, the part on lines without a valid value for some
    /// required key.
    pub untagged_impact: Amount,
    /// untagged_impact ÷ the rise of the lines that rose, in % (null when nothing rose).
    pub untagged_share_pct: Option<f64>,
}

/// How anomalies were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Method {
    /// `same_weekday` (over `weeks`) or `trailing_28`.
    pub baseline: BaselineArg,
    pub weeks: Option<u32>,
    pub z_threshold: f64,
    /// The MAD never counts below max(mad_floor_share × |median|, mad_floor) — documented.
    pub mad_floor_share: f64,
    pub mad_floor: Amount,
    pub min_impact: Amount,
    pub min_impact_pct: f64,
}

// The answer of `get_cost_anomalies`. No doc comment: it would become the output schema's
// description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct AnomalyReport {
    /// The days the costs cover.
    pub period: Period,
    /// The days checked: `start` included, `end` excluded.
    pub checked: Period,
    /// The last day of the data, left out as still incomplete (null when included).
    pub last_day_skipped: Option<NaiveDate>,
    pub metric: CostMetric,
    pub currency: String,
    pub method: Method,
    /// Most impact first (at most 200; see `anomalies_total`).
    pub anomalies: Vec<AnomalyItem>,
    pub anomalies_total: usize,
    /// Of them, without a decision.
    pub pending: usize,
    /// Series checked (one per dimension value).
    pub series_checked: usize,
    /// Days not judged for want of history (fewer than 4 same weekdays, or 14 trailing days).
    pub days_short_history: usize,
    /// The decision this call recorded, when it made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<AnomalyDecisionRow>,
    pub cost_quality: CostQuality,
    pub data_quality: DataQuality,
}

/// A decision to record with the question.
#[derive(Debug, Clone)]
pub(crate) struct DecideRequest {
    pub anomaly_id: String,
    pub decision: AnomalyDecision,
    pub reason: String,
    pub decided_by: Option<String>,
}

/// Per line: its value in each series, whether it lacks a required key, its owner and tags.
struct LineFacts {
    groups: Vec<(usize, String)>,
    untagged_keys: Vec<String>,
    owner: Option<String>,
    tags: BTreeMap<String, String>,
}

/// Answers an anomaly question; records `decide` first when given (the anomaly must be among
/// those found with the same settings).
pub(crate) async fn anomalies(
    call: &Call<'_>,
    q: AnomalyQuestion,
    decide: Option<DecideRequest>,
) -> Result<AnomalyReport, ToolError> {
    let config = config(&q)?;
    let source = call.cost_source().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "no cost data is configured: start the server with --cost FILE (FOCUS 1.x CSV \
             exports with ChargePeriodStart per day) or use --demo"
                .into(),
        )
    })?;
    let estate = call.estate(q.force_refresh).await?;
    let costs = source
        .provider()
        .daily_costs(
            &CostQuery {
                period: None,
                metric: q.metric,
            },
            &estate.inventory.resources,
        )
        .await
        .map_err(|e| match e {
            crate::cost::CostError::Invalid(m) => ToolError::InvalidArgument(m),
            other => ToolError::Unavailable(other.to_string()),
        })?;
    let mut costs = costs;
    {
        let mut lines: Vec<crate::cost::CostLine> =
            costs.lines.iter().map(|l| l.line.clone()).collect();
        crate::cost::join_to_inventory(&mut lines, &estate.inventory.resources);
        for (d, l) in costs.lines.iter_mut().zip(lines) {
            d.line = l;
        }
    }
    let policy = estate.policy();
    let judge = KeyJudge::new(policy);
    let keys: Vec<String> = if q.tag_keys.is_empty() {
        judge.keys().map(str::to_string).collect()
    } else {
        q.tag_keys
            .iter()
            .map(|k| policy.canonical_key(k).to_string())
            .collect()
    };
    let dimensions = if q.dimensions.is_empty() {
        vec![
            DimensionArg::Service,
            DimensionArg::Account,
            DimensionArg::Tag,
        ]
    } else {
        q.dimensions.clone()
    };
    let mut names: Vec<String> = Vec::new();
    for d in &dimensions {
        match d {
            DimensionArg::Service => names.push("service".into()),
            DimensionArg::Account => names.push("account".into()),
            DimensionArg::Tag => names.extend(keys.iter().map(|k| format!("tag:{k}"))),
        }
    }
    let owner_key = judge
        .keys()
        .find(|k| k.to_ascii_lowercase().contains("owner"))
        .or_else(|| {
            judge
                .keys()
                .find(|k| k.to_ascii_lowercase().contains("team"))
        })
        .map(str::to_string);
    let resources = &estate.inventory.resources;
    let evaluated = &estate.evaluated;
    let facts: Vec<LineFacts> = costs
        .lines
        .iter()
        .map(|d| {
            let line = &d.line;
            let inventory = if line.resource_id.is_empty() {
                None
            } else {
                crate::inventory::index_of(resources, &line.resource_id)
            };
            let as_resource;
            let resource: &crate::inventory::Resource = match inventory {
                Some(i) => &resources[i],
                None => {
                    as_resource = line.as_resource();
                    &as_resource
                }
            };
            let mut effective = policy.effective_tags(&resource.tags);
            if let Some(i) = inventory
                && let Some(combined) = evaluated.combined.get(&(i as u32))
            {
                effective = policy.effective_tags(combined);
            }
            let problems = if line.resource_id.is_empty() {
                judge.problems_without_resource(&effective)
            } else {
                judge.problems(&resource.resource_type, &effective)
            };
            let key_names: Vec<&str> = judge.keys().collect();
            let untagged_keys: Vec<String> = problems
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_some())
                .map(|(i, _)| key_names[i].to_string())
                .collect();
            let mut groups = Vec::new();
            let mut at = 0;
            for d in &dimensions {
                match d {
                    DimensionArg::Service => {
                        groups.push((at, non_empty(&line.service, "(no service)")));
                        at += 1;
                    }
                    DimensionArg::Account => {
                        groups.push((at, non_empty(&line.account, "(no account)")));
                        at += 1;
                    }
                    DimensionArg::Tag => {
                        for k in &keys {
                            let valid = key_names
                                .iter()
                                .position(|n| n == k)
                                .map(|i| problems[i].is_none())
                                .unwrap_or(true);
                            let value = effective
                                .get(k)
                                .filter(|v| valid && !v.trim().is_empty())
                                .cloned()
                                .unwrap_or_else(|| UNTAGGED.to_string());
                            groups.push((at, value));
                            at += 1;
                        }
                    }
                }
            }
            let tags = key_names
                .iter()
                .filter_map(|k| effective.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            LineFacts {
                groups,
                owner: owner_key
                    .as_ref()
                    .and_then(|k| effective.get(k).cloned())
                    .filter(|v| !v.trim().is_empty()),
                untagged_keys,
                tags,
            }
        })
        .collect();

    // The window: the `days` days before the last day with data (which is left out unless
    // asked for), never today or later.
    let today = Utc::now().date_naive();
    let last = costs.last_day().unwrap_or(today);
    let (end, skipped) = if q.include_last_day && last < today {
        (last + Duration::days(1), None)
    } else {
        (last.min(today), Some(last))
    };
    let start = end - Duration::days(i64::from(q.days));
    let checked = Period { start, end };

    // Series per (dimension, value).
    let mut members: BTreeMap<(usize, &str), Vec<usize>> = BTreeMap::new();
    for (i, f) in facts.iter().enumerate() {
        for (dim, value) in &f.groups {
            members.entry((*dim, value.as_str())).or_default().push(i);
        }
    }
    let mut found: Vec<AnomalyItem> = Vec::new();
    let mut days_short_history = 0;
    for ((dim, value), lines) in &members {
        let series = costs.series(lines.iter().map(|&i| &costs.lines[i]));
        let detection = detect(&series, start, end, &config);
        days_short_history += detection.days_short_history;
        for a in detection.anomalies {
            let (drivers, drivers_total, untagged, rose) = drivers_of(
                &costs,
                &facts,
                lines,
                a.day,
                config.baseline,
                q.top_resources,
            );
            found.push(AnomalyItem {
                anomaly_id: anomaly_id(&names[*dim], value, a.day),
                dimension: names[*dim].clone(),
                value: value.to_string(),
                day: a.day,
                actual: amount(a.actual),
                expected: amount(a.expected),
                impact: amount(a.impact),
                impact_pct: a.impact_pct.map(|p| (p * 10.0).round() / 10.0),
                score: (a.score * 100.0).round() / 100.0,
                status: "pending".into(),
                decision: None,
                drivers,
                drivers_total,
                untagged_impact: amount(untagged),
                untagged_share_pct: pct(untagged, rose),
            });
        }
    }
    found.sort_by(|a, b| {
        b.impact
            .total_cmp(&a.impact)
            .then_with(|| a.anomaly_id.cmp(&b.anomaly_id))
    });

    let store = call.anomalies();
    let mut recorded = None;
    if let Some(d) = decide {
        let store = store.ok_or_else(|| {
            ToolError::Unavailable(
                "decisions need the data directory (history.db); serve with --data-dir".into(),
            )
        })?;
        let reason = d.reason.trim().to_string();
        if reason.len() < 3 {
            return Err(ToolError::invalid(
                "argument `decide.reason`: say why (kept with the decision and in the audit \
                 log), e.g. \"planned load test\"",
            ));
        }
        let anomaly = found
            .iter()
            .find(|a| a.anomaly_id == d.anomaly_id)
            .ok_or_else(|| {
                ToolError::invalid(format!(
                    "argument `decide.anomaly_id`: no anomaly {} among those found with these \
                     settings; list them first (same days, floors and method)",
                    d.anomaly_id
                ))
            })?;
        let row = store
            .record(crate::store::anomalies::NewAnomalyDecision {
                anomaly_id: anomaly.anomaly_id.clone(),
                dimension: anomaly.dimension.clone(),
                value: anomaly.value.clone(),
                day: anomaly.day.to_string(),
                decision: d.decision,
                reason,
                decided_by: d
                    .decided_by
                    .filter(|b| !b.trim().is_empty())
                    .unwrap_or_else(|| call.actor().to_string()),
                decided_by_principal: call.principal().id.clone(),
                impact_micros: (anomaly.impact * 1e6).round() as Micros,
            })
            .await?;
        recorded = Some(row);
    }
    if let Some(store) = store
        && !found.is_empty()
    {
        let rows = store
            .latest(found.iter().map(|a| a.anomaly_id.clone()).collect())
            .await?;
        for a in &mut found {
            if let Some(row) = rows.iter().find(|r| r.anomaly_id == a.anomaly_id) {
                a.status = row.decision.as_str().to_string();
                a.decision = Some(row.clone());
            }
        }
    }
    let anomalies_total = found.len();
    let pending = found.iter().filter(|a| a.status == "pending").count();
    found.truncate(MAX_LISTED);
    Ok(AnomalyReport {
        period: costs.period,
        checked,
        last_day_skipped: skipped,
        metric: costs.metric,
        currency: costs.currency.clone(),
        method: Method {
            baseline: q.baseline,
            weeks: (q.baseline == BaselineArg::SameWeekday).then_some(q.weeks),
            z_threshold: q.z_threshold,
            mad_floor_share: MAD_FLOOR_SHARE,
            mad_floor: amount(MAD_FLOOR_MICROS),
            min_impact: q.min_impact,
            min_impact_pct: q.min_impact_pct,
        },
        anomalies: found,
        anomalies_total,
        pending,
        series_checked: members.len(),
        days_short_history,
        recorded,
        cost_quality: CostQuality::of(&costs.report, false),
        data_quality: call.data_quality(&estate),
    })
}

fn config(q: &AnomalyQuestion) -> Result<DetectConfig, ToolError> {
    if !(4..=8).contains(&q.weeks) {
        return Err(ToolError::invalid(
            "argument `weeks`: use 4 to 8 weeks of same-weekday history",
        ));
    }
    if !(q.z_threshold.is_finite() && q.z_threshold > 0.0) {
        return Err(ToolError::invalid(
            "argument `z_threshold`: a positive number (3.5 is the usual cut)",
        ));
    }
    let non_negative = |x: f64| x.is_finite() && x >= 0.0;
    if !non_negative(q.min_impact) || !non_negative(q.min_impact_pct) {
        return Err(ToolError::invalid(
            "arguments `min_impact`/`min_impact_pct`: zero or more",
        ));
    }
    Ok(DetectConfig {
        baseline: match q.baseline {
            BaselineArg::SameWeekday => Baseline::SameWeekday { weeks: q.weeks },
            BaselineArg::Trailing28 => Baseline::Trailing { days: 28 },
        },
        z_threshold: q.z_threshold,
        min_impact: (q.min_impact * 1e6).round() as Micros,
        min_impact_pct: q.min_impact_pct,
    })
}

fn non_empty(text: &str, instead: &str) -> String {
    if text.is_empty() {
        instead.to_string()
    } else {
        text.to_string()
    }
}

/// The lines of a group that rose over their own baseline on `day`, largest rise first (the
/// top `top`), how many rose, the rise on untagged lines and the rise in all.
fn drivers_of(
    costs: &DailyCosts,
    facts: &[LineFacts],
    lines: &[usize],
    day: NaiveDate,
    baseline: Baseline,
    top: u32,
) -> (Vec<Driver>, usize, Micros, Micros) {
    let mut rises: Vec<(Micros, usize, Micros, Micros)> = Vec::new();
    for &i in lines {
        let series = costs.series(std::iter::once(&costs.lines[i]));
        let Some(index) = series.index(day) else {
            continue;
        };
        let actual = series.values[index].unwrap_or(0);
        // Too little history of its own: a new line's whole cost is its rise.
        let expected = score_day(&series, index, baseline).map_or(0, |s| s.expected);
        let rise = actual - expected;
        if rise > 0 {
            rises.push((rise, i, actual, expected));
        }
    }
    rises.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let rose: Micros = rises.iter().map(|r| r.0).sum();
    let untagged: Micros = rises
        .iter()
        .filter(|r| !facts[r.1].untagged_keys.is_empty())
        .map(|r| r.0)
        .sum();
    let total = rises.len();
    let drivers = rises
        .into_iter()
        .take(top as usize)
        .map(|(rise, i, actual, expected)| {
            let l = &costs.lines[i].line;
            let f = &facts[i];
            Driver {
                resource_id: l.resource_id.to_string(),
                name: l.name.to_string(),
                resource_type: l.resource_type.to_string(),
                service: l.service.to_string(),
                account: l.account.to_string(),
                actual: amount(actual),
                expected: amount(expected),
                impact: amount(rise),
                owner: f.owner.clone(),
                tags: f.tags.clone(),
                untagged_keys: f.untagged_keys.clone(),
            }
        })
        .collect();
    (drivers, total, untagged, rose)
}

/// The anomalies an alerting step should announce: pending (no decision) and not announced
/// before. Pure: the caller keeps what it announced.
pub(crate) fn new_pending<'a>(
    anomalies: &'a [AnomalyItem],
    announced: &std::collections::HashSet<String>,
) -> Vec<&'a AnomalyItem> {
    anomalies
        .iter()
        .filter(|a| a.decision.is_none() && !announced.contains(&a.anomaly_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, decision: Option<AnomalyDecision>) -> AnomalyItem {
        AnomalyItem {
            anomaly_id: id.into(),
            dimension: "service".into(),
            value: "EC2".into(),
            day: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            actual: 2.0,
            expected: 1.0,
            impact: 1.0,
            impact_pct: Some(100.0),
            score: 9.0,
            status: decision.map_or("pending", |d| d.as_str()).into(),
            decision: decision.map(|d| AnomalyDecisionRow {
                id: 1,
                anomaly_id: id.into(),
                decision: d,
                reason: "r".into(),
                decided_by: "a".into(),
                decided_by_principal: "local".into(),
                decided_at: "t".into(),
            }),
            drivers: Vec::new(),
            drivers_total: 0,
            untagged_impact: 0.0,
            untagged_share_pct: None,
        }
    }

    /// Alerts go to anomalies without a decision that were not announced before.
    #[test]
    fn new_pending_skips_decided_and_announced() {
        let items = vec![
            item("anm-a", None),
            item("anm-b", Some(AnomalyDecision::Planned)),
            item("anm-c", None),
            item("anm-d", Some(AnomalyDecision::Acknowledged)),
        ];
        let announced = ["anm-c".to_string()].into_iter().collect();
        let ids: Vec<&str> = new_pending(&items, &announced)
            .iter()
            .map(|a| a.anomaly_id.as_str())
            .collect();
        assert_eq!(ids, vec!["anm-a"]);
    }

    #[test]
    fn settings_are_checked_and_converted() {
        let c = config(&AnomalyQuestion::default()).unwrap();
        assert_eq!(c.baseline, Baseline::SameWeekday { weeks: 8 });
        assert_eq!(c.min_impact, 10_000_000);
        assert_eq!(c.min_impact_pct, 20.0);
        let trailing = AnomalyQuestion {
            baseline: BaselineArg::Trailing28,
            ..AnomalyQuestion::default()
        };
        assert_eq!(
            config(&trailing).unwrap().baseline,
            Baseline::Trailing { days: 28 }
        );
        for bad in [
            AnomalyQuestion {
                weeks: 3,
                ..AnomalyQuestion::default()
            },
            AnomalyQuestion {
                z_threshold: 0.0,
                ..AnomalyQuestion::default()
            },
            AnomalyQuestion {
                min_impact: -1.0,
                ..AnomalyQuestion::default()
            },
            AnomalyQuestion {
                min_impact_pct: f64::NAN,
                ..AnomalyQuestion::default()
            },
        ] {
            assert!(config(&bad).is_err(), "{bad:?}");
        }
    }
}
