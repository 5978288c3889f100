//! `detect_tag_drift`: what changed between two snapshots, or between a snapshot and the
//! current inventory — tags added, removed and changed per resource, resources that became
//! non-compliant or were fixed, and resources that appeared or disappeared.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check_tag_compliance::{Scoped, SnapshotFilters};
use super::common::DataQuality;
use super::history_common::history_store;
use super::{Call, Tool, ToolError, read_only_annotations};
use crate::history::{DriftFilter, DriftReport, MemberRecord, SnapshotMeta, drift};

pub struct DetectTagDrift;

fn default_limit() -> u32 {
    50
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
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
pub struct Side {
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
pub struct Output {
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

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let store = history_store(call)?;
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
                let (members, side, quality) =
                    current_members(call, &from.filters, args.force_refresh).await?;
                (members, side, Some(quality))
            }
        };
        let filter = DriftFilter {
            tag_keys: args.tag_keys,
            resource_types: args.resource_types,
        };
        let limit = args.limit as usize;
        let report = tokio::task::spawn_blocking(move || drift(&older, &newer, &filter, limit))
            .await
            .map_err(|e| ToolError::Internal(format!("the comparison stopped: {e}")))?;
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

/// The snapshots to compare: (older, newer or None for the current inventory).
async fn pick_snapshots(
    store: &std::sync::Arc<dyn crate::store::HistoryStore>,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<(SnapshotMeta, Option<SnapshotMeta>), ToolError> {
    let get = |id: i64, name: &'static str| {
        let store = store.clone();
        async move {
            store.get(id).await?.ok_or_else(|| {
                ToolError::invalid(format!(
                    "argument `{name}`: there is no snapshot {id}; get_violation_history lists \
                     snapshot ids"
                ))
            })
        }
    };
    let newer = match to {
        Some(id) => Some(get(id, "to_snapshot").await?),
        None => None,
    };
    let older = match (from, &newer) {
        (Some(id), _) => get(id, "from_snapshot").await?,
        (None, Some(n)) => {
            let id = n.id;
            store.before(id).await?.ok_or_else(|| {
                ToolError::invalid(format!(
                    "snapshot {id} is the first of its scope; pass `from_snapshot`"
                ))
            })?
        }
        (None, None) => store.latest(None).await?.ok_or_else(|| {
            ToolError::Unavailable(
                "there are no snapshots yet; take one with \
                     check_tag_compliance(store_snapshot=true), then ask again after the tags \
                     change"
                    .into(),
            )
        })?,
    };
    if let Some(n) = &newer {
        if n.id == older.id {
            return Err(ToolError::invalid(
                "`from_snapshot` and `to_snapshot` are the same snapshot",
            ));
        }
        if (n.taken_at, n.id) < (older.taken_at, older.id) {
            return Err(ToolError::invalid(format!(
                "snapshot {} ({}) is newer than snapshot {} ({}); pass the older one as \
                 `from_snapshot`",
                older.id,
                older
                    .taken_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                n.id,
                n.taken_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        if n.filters_hash != older.filters_hash {
            return Err(ToolError::invalid(format!(
                "snapshots {} and {} were taken with different filters ({} vs {}); compare \
                 snapshots of the same scope",
                older.id,
                n.id,
                crate::util::canonical_json(&older.filters),
                crate::util::canonical_json(&n.filters)
            )));
        }
    }
    Ok((older, newer))
}

/// The current inventory as a snapshot would record it, under the older snapshot's filters.
async fn current_members(
    call: &Call<'_>,
    stored_filters: &Value,
    force_refresh: bool,
) -> Result<(Vec<MemberRecord>, Side, DataQuality), ToolError> {
    let estate = call.estate(force_refresh).await?;
    let filters = SnapshotFilters::from_stored(stored_filters);
    let scoped = Scoped::new(&estate, &filters).map_err(|unknown| {
        ToolError::invalid(format!(
            "the snapshot's tag_keys {} are not in the current policy; compare two \
             snapshots instead",
            unknown.join(", ")
        ))
    })?;
    let fetched_at = estate.inventory.fetched_at;
    let record = scoped.record(&estate, stored_filters.clone(), fetched_at, call.trigger());
    let side = Side {
        snapshot_id: None,
        taken_at: fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        policy_hash: estate.policy().hash().to_string(),
        resources: scoped.summary.resources,
        score_pct: scoped.summary.effective.score_pct,
    };
    Ok((record.members, side, call.data_quality(&estate)))
}
