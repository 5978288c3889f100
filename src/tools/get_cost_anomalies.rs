//! `get_cost_anomalies`: days whose usage cost rose well above its robust baseline, per
//! service, account and required tag key (`untagged` included), with the resources that drove
//! each rise, their owners and the untagged share; and the decision on one (acknowledged,
//! dismissed, planned), recorded with who decided and why.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Principal, Role, Tool, ToolError, own_store_annotations};
use crate::cost::CostMetric;
use crate::service::anomalies::{
    AnomalyQuestion, AnomalyReport, BaselineArg, DecideRequest, DimensionArg, anomalies,
};
use crate::store::anomalies::AnomalyDecision;

pub(crate) struct GetCostAnomalies;

fn default_days() -> u32 {
    14
}
fn default_weeks() -> u32 {
    8
}
fn default_z() -> f64 {
    3.5
}
fn default_min_impact() -> f64 {
    10.0
}
fn default_min_impact_pct() -> f64 {
    20.0
}
fn default_top() -> u32 {
    5
}

/// A decision on one anomaly.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decide {
    /// The anomaly's id (`anm-…`, from a listing with the same settings).
    #[schemars(length(min = 20, max = 20))]
    pub anomaly_id: String,
    pub decision: AnomalyDecision,
    /// Why (kept with the decision and in the audit log).
    #[schemars(length(min = 3, max = 500))]
    pub reason: String,
    /// Who decides, when not the caller's own identity; the verified principal is stored
    /// beside it.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub decided_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Recent complete days to check (the data's last day, still accruing, is left out).
    #[serde(default = "default_days")]
    #[schemars(range(min = 1, max = 90))]
    pub days: u32,
    /// Series to check (default all: service, account and tag).
    #[serde(default)]
    pub dimensions: Vec<DimensionArg>,
    /// Keys for the `tag` dimension (default: every required key of the policy).
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub tag_keys: Vec<String>,
    /// Baseline: `same_weekday` (default; median of the same weekday over `weeks`) or
    /// `trailing_28` (median of the previous 28 days).
    #[serde(default)]
    pub baseline: BaselineArg,
    #[serde(default = "default_weeks")]
    #[schemars(range(min = 4, max = 8))]
    pub weeks: u32,
    /// Flag above this modified z-score (default 3.5).
    #[serde(default = "default_z")]
    #[schemars(range(min = 0.5, max = 100.0))]
    pub z_threshold: f64,
    /// The rise must be at least this much, in the currency (default 10).
    #[serde(default = "default_min_impact")]
    #[schemars(range(min = 0.0))]
    pub min_impact: f64,
    /// And at least this % of the expected cost (default 20).
    #[serde(default = "default_min_impact_pct")]
    #[schemars(range(min = 0.0))]
    pub min_impact_pct: f64,
    /// Check the data's last day too (normally still accruing).
    #[serde(default)]
    pub include_last_day: bool,
    /// Resources listed per anomaly, largest rise first.
    #[serde(default = "default_top")]
    #[schemars(range(min = 0, max = 50))]
    pub top_resources: u32,
    /// FOCUS files and the demo offer BilledCost (default) and EffectiveCost.
    #[serde(default)]
    pub metric: Option<CostMetric>,
    /// Record a decision on one anomaly found with these settings.
    #[serde(default)]
    pub decide: Option<Decide>,
    /// Re-read the inventory instead of using the cached one.
    #[serde(default)]
    pub force_refresh: bool,
}

pub(crate) type Output = AnomalyReport;

impl Tool for GetCostAnomalies {
    const NAME: &'static str = "get_cost_anomalies";
    const TITLE: &'static str = "Cost anomalies";
    const DESCRIPTION: &'static str = "Finds days whose usage cost rose well above its own baseline, per service, \
account and required tag key (spend without a valid value as `untagged`), over the last `days` complete days. \
Baseline: the median of the same weekday over 4–8 weeks (default 8) or of the trailing 28 days; a day is \
flagged when its modified z-score (0.6745·(x − median)/MAD, MAD floored at 1% of the median) is above 3.5 AND \
its rise clears both an absolute floor (min_impact) and a % floor (min_impact_pct). Non-usage charges \
(purchases, tax, credits, one-time fees) and the still-incomplete last day are left out. Each anomaly has a \
stable id, actual, expected, impact, impact %, score, the resources that drove it (their rise over their own \
baseline) with their owners from effective tags, the untagged share of the rise, and its status (pending, \
acknowledged, dismissed, planned). Pass `decide` to acknowledge, dismiss or mark one planned, with a reason \
(recorded with who decided and in the audit log). Costs come from FOCUS files or the demo estate.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    /// Listing reads; a decision (acknowledge, dismiss, planned) is an approver's.
    fn role(args: &Args, _caller: &Principal) -> Role {
        if args.decide.is_some() { Role::Approver } else { Role::Viewer }
    }

    fn annotations() -> ToolAnnotations {
        // Decisions change Tagwarden's own store (recorded, never deleted), never the cloud.
        own_store_annotations()
    }

    fn example() -> Value {
        serde_json::json!({"days": 14, "dimensions": ["service"], "top_resources": 3})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"weeks": 12}), "weeks")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let question = AnomalyQuestion {
            days: args.days,
            dimensions: args.dimensions,
            tag_keys: args.tag_keys,
            baseline: args.baseline,
            weeks: args.weeks,
            z_threshold: args.z_threshold,
            min_impact: args.min_impact,
            min_impact_pct: args.min_impact_pct,
            include_last_day: args.include_last_day,
            top_resources: args.top_resources,
            metric: args.metric,
            force_refresh: args.force_refresh,
        };
        let decide = args.decide.map(|d| DecideRequest {
            anomaly_id: d.anomaly_id,
            decision: d.decision,
            reason: d.reason,
            decided_by: d.decided_by,
        });
        anomalies(call, question, decide).await
    }
}
