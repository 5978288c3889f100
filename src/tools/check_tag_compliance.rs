//! `check_tag_compliance`: the compliance score of the estate (or a filtered part), counts by
//! severity/kind/key/type/region/account, and the worst violations first.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Call, Principal, Role, Tool, ToolError};
use crate::policy::Severity;
use crate::service::compliance::{self, ComplianceQuestion};
pub(crate) use crate::service::compliance::DEFAULT_LIMIT;
use crate::service::scope::{ScopeArgs, ScopeDocs};

pub(crate) struct CheckTagCompliance;

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// Which resources and violations to include. Every filter narrows both the counts and the score.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(flatten)]
    pub scope: ScopeArgs<CheckDocs>,
    /// Only violations of these tag keys (policy names; aliases accepted, case-insensitive).
    /// The score then means "compliant on these keys". Default: every key.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub tag_keys: Vec<String>,
    /// Only violations at or above this severity are counted, listed and allowed to fail a
    /// resource. Default: `low` (everything the policy's `fail_at` counts).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Rescan the source instead of using the cached inventory (slower; costs API calls).
    #[serde(default)]
    pub force_refresh: bool,
    /// How many violations to list, worst first (0 for counts only).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 0, max = 200))]
    pub limit: u32,
    /// `next_cursor` from a previous answer to the same question, for the next page.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub cursor: Option<String>,
    /// Also store this answer as a snapshot in the history (for get_violation_history and
    /// detect_tag_drift): the counts, scores, filters, and each resource's tags and violations.
    #[serde(default)]
    pub store_snapshot: bool,
}

/// The descriptions of the scope arguments in this tool's schema.
pub(crate) struct CheckDocs;

impl ScopeDocs for CheckDocs {
    const RESOURCE_TYPES: Option<&'static str> = Some(
        "Only resources whose canonical type matches one of these patterns, e.g. `ec2:instance`,\n`ec2:*`, `s3:bucket`, `rds` (= `rds:*`). Default: every type.",
    );
    const REGIONS: Option<&'static str> = Some(
        "Only resources in these regions, e.g. `us-east-1` (`global` for S3 buckets read from\nARNs). Default: every region.",
    );
    const ACCOUNTS: Option<&'static str> =
        Some("Only resources in these accounts, by id or by name (`prod`, as `by_account` shows it). Default: every account.");
}

/// The answer: `service::compliance::ComplianceReport` (also what `tagwarden check --format
/// json` prints).
pub(crate) type Output = compliance::ComplianceReport;

impl From<Args> for ComplianceQuestion {
    fn from(args: Args) -> ComplianceQuestion {
        ComplianceQuestion {
            scope: args.scope.scope,
            tag_keys: args.tag_keys,
            min_severity: args.min_severity,
            force_refresh: args.force_refresh,
            limit: args.limit,
            cursor: args.cursor,
            store_snapshot: args.store_snapshot,
        }
    }
}

impl Tool for CheckTagCompliance {
    const NAME: &'static str = "check_tag_compliance";
    const TITLE: &'static str = "Check tag compliance";
    const DESCRIPTION: &'static str = "Scores how well cloud resources follow the tagging policy and lists the worst \
violations first. Returns the compliance score on effective tags (native tags with the policy's key and value \
aliases applied) and on native tags, counts by severity, violation kind, tag key, resource type, region and \
account, a page of violations each with the exact fix, and data_quality (was the scan complete, how old is it). \
Use it first for questions such as 'how compliant is prod?' or 'what is wrong with our CostCenter tags?'. \
Filters (resource_types, regions, accounts, tag_keys, min_severity) narrow both the counts and the score. \
Uses the cached scan unless force_refresh is true. Page through violations with next_cursor; totals are always \
exact. When costs are known it adds the spend-weighted score and each listed resource's cost. \
store_snapshot=true also records the answer in the history (get_violation_history, detect_tag_drift).";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;
    const VIEW: Option<super::views::View> = Some(super::views::View::Compliance);

    /// Recording a snapshot writes the history: an approver's call.
    fn role(args: &Args, _caller: &Principal) -> Role {
        if args.store_snapshot { Role::Approver } else { Role::Viewer }
    }

    fn caches_answer(_args: &serde_json::Value) -> bool {
        true
    }

    fn annotations() -> ToolAnnotations {
        // Not read-only: `store_snapshot` adds a row to the history (never changes the cloud or
        // anything already stored).
        ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(false)
            .open_world(true)
    }

    fn example() -> Value {
        serde_json::json!({"limit": 10, "store_snapshot": true})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"limit": 100000}), "limit")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        compliance::check(call, args.into()).await
    }
}
