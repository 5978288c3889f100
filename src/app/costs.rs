//! Costs as answers carry them: amounts, the `cost_quality` block, the spend of a compliance
//! answer, and the resource costs that put money on findings. Shared by every tool and
//! use-case that reports money, so it sits with the call context rather than in one tool.

use std::sync::Arc;

use compact_str::CompactString;
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::time::Instant;

use super::App;
use crate::cost::explorer::{CostExplorer, USD_PER_REQUEST};
use crate::cost::{
    CostError, CostMetric, CostProvider, CostQuery, CostReport, LineCosts, Micros, Period,
    RowProblem,
};

/// An amount of money in the answer's currency (exact to the millionth).
pub(crate) type Amount = f64;

pub(crate) fn amount(micros: Micros) -> Amount {
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

pub(crate) fn api_charge(calls: u64) -> f64 {
    ((calls as f64 * USD_PER_REQUEST) * 100.0).round() / 100.0
}

/// Spend of the resources a compliance answer covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct SpendSummary {
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

/// A cost source: resource-level lines (FOCUS files, the demo), or Cost Explorer, which
/// answers the gap from aggregates and gives resource-level lines only for recent EC2.
#[derive(Clone)]
pub enum CostSource {
    Lines(Arc<dyn CostProvider>),
    Explorer(Arc<CostExplorer>),
}

impl CostSource {
    pub fn provider(&self) -> Arc<dyn CostProvider> {
        match self {
            CostSource::Lines(p) => p.clone(),
            CostSource::Explorer(e) => e.clone(),
        }
    }
}

/// Resource-level costs for an answer, and whether they were read for it (else reused).
#[derive(Clone)]
pub struct CostsForAnswer {
    pub costs: Arc<LineCosts>,
    /// Each resource's cost over all its lines, computed once when the costs are read.
    pub by_resource: Arc<rustc_hash::FxHashMap<compact_str::CompactString, crate::cost::Micros>>,
    pub reused: bool,
}

/// Resource-level costs read at an instant (or why they could not be).
pub(super) type KeptCosts = (Instant, Result<CostsForAnswer, CostError>);

/// Cost questions kept at once (a handful of periods and metrics).
const LINE_COSTS_KEPT: usize = 8;

impl App {
    /// What identifies the cost data in cached answers' keys (empty without a cost source).
    pub fn costs_version(&self) -> String {
        self.costs
            .as_ref()
            .map(|c| c.provider().version())
            .unwrap_or_default()
    }

    /// Resource-level costs for a question, read once per TTL (failures too: a refused Cost
    /// Explorer request is not repeated on every answer). None without a cost source.
    pub async fn line_costs(
        &self,
        query: &CostQuery,
        resources: &[crate::inventory::Resource],
        inventory_version: &str,
        force_refresh: bool,
    ) -> Option<Result<CostsForAnswer, CostError>> {
        let provider = self.costs.as_ref()?.provider();
        // Lines are joined to the inventory when read: a rescan reads them again.
        let key = format!("{}|{:?}|{inventory_version}", provider.version(), query);
        let mut kept = self.line_costs.lock().await;
        if !force_refresh
            && let Some((at, result)) = kept.get(&key)
            && at.elapsed() < self.ttl
        {
            return Some(result.clone().map(|costs| CostsForAnswer {
                reused: true,
                ..costs
            }));
        }
        let result = provider
            .line_costs(query, resources)
            .await
            // Sources check their sums; this keeps a wrong total out of every answer whatever
            // the source.
            .and_then(|costs| costs.check_sums().map(|()| costs))
            .map(|mut costs| {
                crate::cost::join_to_inventory(&mut costs.lines, resources);
                CostsForAnswer {
                    by_resource: Arc::new(crate::cost::attribution::cost_by_resource(&costs.lines)),
                    costs: Arc::new(costs),
                    reused: false,
                }
            });
        if let Err(e) = &result {
            tracing::warn!(error = %e, "costs unavailable");
        }
        if kept.len() >= LINE_COSTS_KEPT {
            kept.clear();
        }
        if !self.ttl.is_zero() {
            kept.insert(key, (Instant::now(), result.clone()));
        }
        Some(result)
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
