//! `detect_tag_drift`: what changed between two snapshots, or between a snapshot and the
//! current inventory — tags added, removed and changed per resource, resources that became
//! non-compliant or were fixed, and resources that appeared or disappeared.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::quality::DataQuality;
use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::history::{DriftFilter, DriftReport, SnapshotFilters, SnapshotMeta};
use crate::service::snapshot::{compare, current_members, pick_snapshots, require_history};

pub(crate) struct DetectTagDrift;

fn default_limit() -> u32 {
    50
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The older snapshot's id. Default: with `to_snapshot`, the snapshot of the same scope
    /// before it; without, the latest snapshot.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub from_snapshot: Option<i64>,
    /// The newer snapshot's id. Default: the current inventory (evaluated with the older
    /// snapshot's filters, so like is compared with like).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub to_snapshot: Option<i64>,
    /// Only changes to these tag keys (case-insensitive). Default: every key.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub tag_keys: Vec<String>,
    /// Only resources of these types (`ec2:instance`, `ec2:*`, `rds`). Default: every type.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub resource_types: Vec<String>,
    /// Entries listed per list (totals are always exact).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 0, max = 500))]
    pub limit: u32,
    /// When comparing with the current inventory: rescan instead of using the cached scan.
    #[serde(default)]
    pub force_refresh: bool,
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Side {
    /// The snapshot's id; absent for the current inventory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<i64>,
    /// When the data was taken (RFC 3339, UTC).
    pub taken_at: String,
    pub policy_hash: String,
    pub resources: usize,
    pub score_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub from: Side,
    pub to: Side,
    /// The scope both sides cover (the older snapshot's filters).
    pub filters: SnapshotFilters,
    /// The policy differs between the sides: compliance changes may come from the policy, not
    /// from tag edits.
    pub policy_changed: bool,
    #[serde(flatten)]
    pub drift: DriftReport,
    /// Present when the newer side is the current inventory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_quality: Option<DataQuality>,
}

impl Tool for DetectTagDrift {
    const NAME: &'static str = "detect_tag_drift";
    const TITLE: &'static str = "Detect tag drift";
    const DESCRIPTION: &'static str = "Compares two stored compliance snapshots, or a snapshot and the current \
inventory: per resource the tags added, removed and changed (old and new value), resources that became \
non-compliant and those fixed, and resources that appeared or disappeared. Lists are bounded by limit; totals are \
exact. Without arguments it compares the latest snapshot with the current inventory. Filter by tag_keys and \
resource_types. Snapshot ids come from check_tag_compliance(store_snapshot=true) and get_violation_history.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    fn example() -> Value {
        // Compares the snapshot check_tag_compliance stored (listed, so called, first).
        serde_json::json!({"limit": 5})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"from_snapshot": "first"}), "from_snapshot")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let store = require_history(call)?;
        let (from, to) = pick_snapshots(&store, args.from_snapshot, args.to_snapshot).await?;
        let from_id = from.id;
        let older = store.members(from_id).await?;
        let (newer, to_side, data_quality) = match to {
            Some(to) => {
                let to_id = to.id;
                let members = store.members(to_id).await?;
                (members, side_of(&to), None)
            }
            None => {
                let now = current_members(call, &from.filters, args.force_refresh).await?;
                let side = Side {
                    snapshot_id: None,
                    taken_at: now
                        .taken_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    policy_hash: now.policy_hash,
                    resources: now.resources,
                    score_pct: now.score_pct,
                };
                (now.members, side, Some(now.data_quality))
            }
        };
        let filter = DriftFilter {
            tag_keys: args.tag_keys,
            resource_types: args.resource_types,
        };
        let report = compare(older, newer, filter, args.limit as usize).await?;
        Ok(Output {
            policy_changed: from.policy_hash != to_side.policy_hash,
            from: side_of(&from),
            to: to_side,
            filters: SnapshotFilters::from_stored(&from.filters),
            drift: report,
            data_quality,
        })
    }
}

fn side_of(s: &SnapshotMeta) -> Side {
    Side {
        snapshot_id: Some(s.id),
        taken_at: s
            .taken_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        policy_hash: s.policy_hash.clone(),
        resources: s.resources,
        score_pct: s.score_pct,
    }
}
