//! Costs in tool outputs: amounts, the `cost_quality` block, period arguments, and the
//! resource costs that put money on compliance findings.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use compact_str::CompactString;
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Call, ToolError};
use crate::cost::explorer::USD_PER_REQUEST;
use crate::cost::{CostMetric, CostQuery, CostReport, LineCosts, Micros, Period, RowProblem};

/// An amount of money in the answer's currency (exact to the millionth).
pub type Amount = f64;

pub fn amount(micros: Micros) -> Amount {
    crate::cost::micros_to_amount(micros)
}

/// Longest period a question may span.
const MAX_PERIOD_DAYS: i64 = 400;

/// Where the costs behind an answer came from and how complete they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostQuality {
    /// `FOCUS file(s) ...`, `demo estate costs ...` or `AWS Cost Explorer`.
    pub source: String,
    /// False when cost rows were skipped as malformed (see `problems`).
    pub complete: bool,
    /// Cost file rows read, used (inside the period) and skipped as malformed.
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_skipped: u64,
    /// The first 50 skipped rows: file, line number, what is wrong.
    pub problems: Vec<RowProblem>,
    /// Cost Explorer requests made for this answer (0 when cached costs were used).
    pub api_calls: u64,
    /// What those requests cost (AWS bills USD 0.01 each).
    pub estimated_api_charge_usd: f64,
    /// True when the costs were read earlier and reused (no file read, no request made).
    pub cached: bool,
    /// Anything else to know about the figures (fallbacks, what a source cannot tell).
    pub notes: Vec<String>,
}

impl CostQuality {
    pub fn of(report: &CostReport, reused: bool) -> CostQuality {
        let api_calls = if reused { 0 } else { report.api_calls };
        CostQuality {
            source: report.source.clone(),
            complete: report.complete,
            rows_read: report.rows_read,
            rows_used: report.rows_used,
            rows_skipped: report.rows_skipped,
            problems: report.problems.iter().take(50).cloned().collect(),
            api_calls,
            estimated_api_charge_usd: api_charge(api_calls),
            cached: reused,
            notes: report.notes.clone(),
        }
    }
}

pub fn api_charge(calls: u64) -> f64 {
    ((calls as f64 * USD_PER_REQUEST) * 100.0).round() / 100.0
}

/// Validates a `time_period` argument.
pub fn period_arg(start: &str, end: &str, today: NaiveDate) -> Result<Period, ToolError> {
    let start_day = parse_day(start, "time_period.start")?;
    let end_day = parse_day(end, "time_period.end")?;
    if start_day >= end_day {
        return Err(ToolError::invalid(format!(
            "argument `time_period`: start {start} must be before end {end} (end is excluded: \
             one day is start=2026-10-01, end=2026-10-02)"
        )));
    }
    if end_day > today + Duration::days(1) {
        return Err(ToolError::invalid(format!(
            "argument `time_period.end`: {end} is in the future; costs are known up to today \
             (end {} at the latest)",
            today + Duration::days(1)
        )));
    }
    if (end_day - start_day).num_days() > MAX_PERIOD_DAYS {
        return Err(ToolError::invalid(format!(
            "argument `time_period`: at most {MAX_PERIOD_DAYS} days per question; split the \
             period"
        )));
    }
    Ok(Period {
        start: start_day,
        end: end_day,
    })
}

/// `YYYY-MM-DD` → date, for messages that name the argument.
pub fn parse_day(text: &str, argument: &str) -> Result<NaiveDate, ToolError> {
    let padded = text.len() == 10;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| padded)
        .ok_or_else(|| {
            ToolError::invalid(format!(
                "argument `{argument}`: {text:?} is not a date; use YYYY-MM-DD, e.g. {}",
                Utc::now().date_naive() - Duration::days(30)
            ))
        })
}

/// Spend of the resources a compliance answer covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpendSummary {
    pub currency: String,
    pub period: Period,
    pub metric: CostMetric,
    /// Spend of the in-scope resources selected.
    pub in_scope_spend: Amount,
    /// Of that, spend of compliant resources (effective tags).
    pub compliant_spend: Amount,
    /// compliant_spend ÷ in_scope_spend, in % (null when nothing selected costs anything).
    pub spend_weighted_score_pct: Option<f64>,
    /// The same on native tags.
    pub native_spend_weighted_score_pct: Option<f64>,
    /// In-scope resources selected that have a cost.
    pub priced_resources: usize,
    pub cost_quality: CostQuality,
}

/// The resource costs for money on findings: per resource id, over the cost source's default
/// period. `Ok(None)` when no cost source is configured; `Err` says why costs are missing.
pub struct ResourceCosts {
    pub costs: Arc<LineCosts>,
    pub by_resource: std::sync::Arc<FxHashMap<CompactString, Micros>>,
    pub quality: CostQuality,
}

impl ResourceCosts {
    pub fn of(&self, resource_id: &str) -> Option<Micros> {
        self.by_resource.get(resource_id).copied()
    }
}

pub async fn resource_costs(
    call: &Call<'_>,
    snapshot: &crate::app::Snapshot,
    force_refresh: bool,
) -> Result<Option<ResourceCosts>, String> {
    let query = CostQuery {
        period: None,
        metric: None,
    };
    let resources = &snapshot.inventory.resources;
    let version = &snapshot.inventory_version;
    match call
        .app
        .line_costs(&query, resources, version, force_refresh)
        .await
    {
        None => Ok(None),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(found)) => Ok(Some(ResourceCosts {
            by_resource: found.by_resource,
            quality: CostQuality::of(&found.costs.report, found.reused),
            costs: found.costs,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_validated() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let p = period_arg("2026-10-01", "2026-11-01", today).unwrap();
        assert_eq!(p.days(), 31);
        assert!(period_arg("2026-11-01", "2026-10-01", today).is_err());
        assert!(period_arg("2026-10-01", "2026-10-01", today).is_err());
        assert!(period_arg("2026-10-01", "2026-12-01", today).is_err());
        assert!(period_arg("2026-10-1", "2026-11-01", today).is_err());
        assert!(period_arg("2024-01-01", "2026-11-01", today).is_err());
        assert!(period_arg("2026-11-27", "2026-11-28", today).is_ok());
        let e = period_arg("2026-13-01", "2026-11-01", today).unwrap_err();
        assert!(e.to_string().contains("time_period.start"), "{e}");
    }

    #[test]
    fn charges_are_a_cent_per_request() {
        assert_eq!(api_charge(8), 0.08);
        assert_eq!(api_charge(0), 0.0);
    }
}
