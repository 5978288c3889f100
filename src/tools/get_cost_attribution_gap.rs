//! `get_cost_attribution_gap`: how much spend cannot be allocated because of tagging gaps —
//! overall, per required key, per group and per provider, before and after virtual tags — and
//! the unattributed resources that cost most.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::cost::CostMetric;
use crate::service::allocation::{RulesChoice, RulesSource};
use crate::service::costs::{GapQuestion, GapReport, gap};
pub(crate) use crate::service::costs::{GroupByArg, TimePeriodArg};
use crate::service::scope::{ScopeArgs, ScopeDocs};

pub(crate) struct GetCostAttributionGap;

fn default_top() -> u32 {
    10
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The period. Default: the last 30 complete days; with FOCUS cost files, every day the
    /// files cover.
    #[serde(default)]
    pub time_period: Option<TimePeriodArg>,
    /// Breakdown of the spend (default `service`).
    #[serde(default)]
    pub group_by: GroupByArg,
    /// The key to group by when `group_by` is `tag`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub tag_key: Option<String>,
    /// Cost figure: Cost Explorer offers UnblendedCost (default), AmortizedCost and
    /// NetAmortizedCost; FOCUS files and the demo offer BilledCost (default) and EffectiveCost.
    #[serde(default)]
    pub metric: Option<CostMetric>,
    #[serde(flatten)]
    pub scope: ScopeArgs<GapDocs>,
    /// How many unattributed resources to list, most costly first.
    #[serde(default = "default_top")]
    #[schemars(range(min = 0, max = 100))]
    pub top: u32,
    /// Re-read the inventory and the costs instead of using cached ones (Cost Explorer
    /// requests are billed by AWS).
    #[serde(default)]
    pub force_refresh: bool,
    /// Shared-cost allocation: split charges no tag attributes (support, tax, a shared
    /// account) across a required key's values — `proportional` to the spend each value
    /// carries, `even`, or `fixed` shares in basis points — and report that key's gap before
    /// and after (the `allocation` section). Parts add up exactly; what cannot be given to a
    /// value stays `(unallocated)`. Needs line-level costs (files, demo). Absent: the rules
    /// stored with manage_allocation_rules apply (`allocation.source` says which); `[]`: none.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub allocation_rules: Option<Vec<crate::cost::allocation::AllocationRule>>,
}

/// The descriptions of the scope arguments in this tool's schema.
pub(crate) struct GapDocs;

impl ScopeDocs for GapDocs {
    const RESOURCE_TYPES: Option<&'static str> =
        Some("Only spend on resources of these types (`ec2:*`); needs resource-level costs.");
    const REGIONS: Option<&'static str> = Some("Only spend in these regions.");
    const ACCOUNTS: Option<&'static str> =
        Some("Only spend in these accounts (subscriptions, projects), by id or by name.");
}

/// The answer: the use-case's report as it is.
pub(crate) type Output = GapReport;

impl Tool for GetCostAttributionGap {
    const NAME: &'static str = "get_cost_attribution_gap";
    const TITLE: &'static str = "Cost attribution gap";
    const DESCRIPTION: &'static str = "Measures the spend that cannot be allocated because of tagging gaps. \
A line of spend is attributable when its resource has a valid value (present, non-empty, allowed by the policy) \
for every required tag key. Returns the total, attributable and unattributable spend and the gap % for a period \
— overall, per required key, per provider and per group (group_by service, resource_type, region, account, \
provider or a tag key) — before and after virtual tags, the unattributed resources that cost most with the keys \
they lack, the currency, and cost_quality (source, rows skipped, Cost Explorer requests made and their \
estimated charge). With allocation_rules — or, without them, the rules \
stored with manage_allocation_rules — it also splits shared charges (support, tax, a shared account) across a \
required key's values — proportionally, evenly or by fixed shares — and reports that key's gap before and after, \
exact to the micro-unit, naming the rules applied and their source (argument or stored). Use it for 'what does our tagging gap cost?' or 'which untagged resources cost most?'. Costs \
come from FOCUS cost files, the demo estate or AWS Cost Explorer (a handful of billed requests per question; \
answers are cached).";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;
    const VIEW: Option<super::views::View> = Some(super::views::View::CostGap);

    fn caches_answer(_args: &serde_json::Value) -> bool {
        true
    }

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    fn example() -> Value {
        serde_json::json!({"group_by": "resource_type", "top": 3})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"group_by": "colour"}), "group_by")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let question = GapQuestion {
            time_period: args.time_period,
            group_by: args.group_by,
            tag_key: args.tag_key,
            metric: args.metric,
            scope: args.scope.scope,
            top: args.top,
            force_refresh: args.force_refresh,
            allocation: match args.allocation_rules {
                None => RulesChoice::Stored,
                Some(rules) => RulesChoice::Given {
                    rules,
                    source: RulesSource::Argument,
                },
            },
        };
        gap(call, question).await
    }
}
