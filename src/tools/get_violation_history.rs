//! `get_violation_history`: is tagging getting better? A series of stored compliance snapshots
//! (the last one of each day, week or month), the trend with its threshold, the change, and how
//! the most common violations moved.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::history::{
    GroupBy, HistoryPoint, SnapshotFilters, TREND_THRESHOLD_PCT_POINTS, Trend, ViolationMovement,
    filters_hash, series, snapshot_filters, trend, violation_movements,
};
use crate::policy::Severity;
use crate::service::scope::{ScopeArgs, ScopeDocs};
use crate::service::snapshot::{FilterSet, other_filter_sets, require_history};

pub(crate) struct GetViolationHistory;

fn default_days() -> u32 {
    30
}

fn default_top() -> u32 {
    10
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// How far back to look, in days (1–400).
    #[serde(default = "default_days")]
    #[schemars(range(min = 1, max = 400))]
    pub days_back: u32,
    /// One point per `day`, `week` (ISO weeks) or `month`: the last snapshot of each.
    #[serde(default = "default_group_by")]
    pub group_by: GroupBy,
    /// How many of the most common violations to show.
    #[serde(default = "default_top")]
    #[schemars(range(min = 0, max = 50))]
    pub top_violations: u32,
    #[serde(flatten)]
    pub scope: ScopeArgs<HistoryDocs>,
    /// The `tag_keys` the snapshots were taken with.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub tag_keys: Vec<String>,
    /// The `min_severity` the snapshots were taken with (default `low`).
    #[serde(default)]
    pub min_severity: Option<Severity>,
}

/// The descriptions of the scope arguments in this tool's schema.
pub(crate) struct HistoryDocs;

impl ScopeDocs for HistoryDocs {
    const RESOURCE_TYPES: Option<&'static str> = Some(
        "The `resource_types` the snapshots were taken with (default: none, the whole estate).",
    );
    const REGIONS: Option<&'static str> = Some("The `regions` the snapshots were taken with.");
    const ACCOUNTS: Option<&'static str> = Some("The `accounts` the snapshots were taken with.");
}

fn default_group_by() -> GroupBy {
    GroupBy::Day
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    /// One point per period that has a snapshot, oldest first; periods without one are absent.
    pub points: Vec<HistoryPoint>,
    /// First point against the last.
    pub trend: Trend,
    /// The most common violations at either end of the window, with their counts at the first
    /// and the last point.
    pub top_violations: Vec<ViolationMovement>,
    /// Distinct violations (kind and key) at either end.
    pub violations_distinct: usize,
    /// Snapshots of this scope in the window (several may fall in one period).
    pub snapshots_in_window: usize,
    pub group_by: GroupBy,
    /// Start of the window (RFC 3339, UTC).
    pub since: String,
    /// The scope asked for: only snapshots taken with exactly these filters are used.
    pub filters: SnapshotFilters,
    /// When there are no snapshots of this scope: the scopes that have some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_scopes: Vec<FilterSet>,
    /// What to do when the answer is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Tool for GetViolationHistory {
    const NAME: &'static str = "get_violation_history";
    const TITLE: &'static str = "Get violation history";
    const DESCRIPTION: &'static str = "Shows whether tag compliance is getting better, from stored snapshots: one \
point per day, week or month (the last snapshot of each; periods without a snapshot are absent, not zero) with \
score, native score, resources, compliant and violations; the trend (improving, declining or stable — beyond a \
stated threshold in percentage points — or insufficient_data), absolute and relative change, and the most common \
violations with their counts at the start and end of the window. The filters must equal those the snapshots were \
taken with (check_tag_compliance store_snapshot=true, `tagwarden check --snapshot`, or scheduled snapshots); \
when none match, the answer lists the scopes that have history.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;
    const VIEW: Option<super::views::View> = Some(super::views::View::History);

    fn annotations() -> ToolAnnotations {
        read_only_annotations(false)
    }

    fn example() -> Value {
        serde_json::json!({"days_back": 7, "group_by": "week"})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"days_back": 401}), "days_back")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let store = require_history(call)?;
        let filters = snapshot_filters(
            &args.scope.resource_types,
            &args.scope.regions,
            &args.scope.accounts,
            &args.tag_keys,
            args.min_severity.unwrap_or(Severity::Low),
        );
        let hash = filters_hash(&filters);
        let since = chrono::Utc::now() - chrono::Duration::days(i64::from(args.days_back));
        let snapshots = store.list_headlines(since, Some(hash.clone())).await?;
        let points = series(&snapshots, args.group_by);
        let trend = trend(&points, TREND_THRESHOLD_PCT_POINTS);
        // Breakdowns only for the two ends of the window.
        let ends = points
            .first()
            .zip(points.last())
            .map(|(a, b)| (a.snapshot_id, b.snapshot_id));
        let (top_violations, violations_distinct) = match ends {
            Some((first, last)) => {
                let (a, b) = (store.get(first).await?, store.get(last).await?);
                match (a, b) {
                    (Some(a), Some(b)) => violation_movements(&a, &b, args.top_violations as usize),
                    _ => (Vec::new(), 0),
                }
            }
            None => (Vec::new(), 0),
        };
        let (other_scopes, note) = if snapshots.is_empty() {
            let others = other_filter_sets(store, hash).await?;
            let note = if others.is_empty() {
                format!(
                    "no snapshots in the last {} days; take them with \
                     check_tag_compliance(store_snapshot=true) or `serve --snapshot-every 6h`",
                    args.days_back
                )
            } else {
                format!(
                    "no snapshots of this scope in the last {} days; other_scopes lists the \
                     filters that have history — ask again with one of them",
                    args.days_back
                )
            };
            (others, Some(note))
        } else {
            (Vec::new(), None)
        };
        Ok(Output {
            points,
            trend,
            top_violations,
            violations_distinct,
            snapshots_in_window: snapshots.len(),
            group_by: args.group_by,
            since: since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            filters: SnapshotFilters::from_stored(&filters),
            other_scopes,
            note,
        })
    }
}
