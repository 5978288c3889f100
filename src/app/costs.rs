//! Costs as answers carry them: amounts, the `cost_quality` block, the spend of a compliance
//! answer, and the resource costs that put money on findings. Shared by every tool and
//! use-case that reports money, so it sits with the call context rather than in one tool.

use std::sync::Arc;

use compact_str::CompactString;
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cost::explorer::USD_PER_REQUEST;
use crate::cost::{CostMetric, CostReport, LineCosts, Micros, Period, RowProblem};

/// An amount of money in the answer's currency (exact to the millionth).
pub type Amount = f64;

pub fn amount(micros: Micros) -> Amount {
    crate::cost::micros_to_amount(micros)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_a_cent_per_request() {
        assert_eq!(api_charge(8), 0.08);
        assert_eq!(api_charge(0), 0.0);
    }
}
