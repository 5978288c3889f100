//! The history use-cases around stored snapshots: recording one, finding the history store,
//! saying which scopes have history when the asked-for one has none, picking the two snapshots
//! a drift compares (or the current inventory as the newer side), the drift computation off
//! the async threads, and pruning old snapshots.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::compliance::Scoped;
use crate::app::quality::DataQuality;
use crate::app::{Call, ToolError};
use crate::history::{
    DriftFilter, DriftReport, MemberRecord, NewSnapshot, SnapshotFilters, SnapshotMeta, drift,
};
use crate::store::{HistoryStore, StoreError};

/// A filter set that has snapshots, shown when the asked-for one has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct FilterSet {
    pub filters: SnapshotFilters,
    pub snapshots: usize,
}

/// The history store, or why there is none (and how to get one).
pub(crate) fn require_history(call: &Call<'_>) -> Result<Arc<dyn HistoryStore>, ToolError> {
    call.history().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "no history store is open; serve with a writable --data-dir (TAGWARDEN_DATA_DIR) \
             and take snapshots with check_tag_compliance(store_snapshot=true), \
             `tagwarden check --snapshot` or `serve --snapshot-every 6h`"
                .into(),
        )
    })
}

/// Stores a snapshot in the call's history store; its id.
pub(crate) async fn record(call: &Call<'_>, snapshot: NewSnapshot) -> Result<i64, ToolError> {
    let history = call.history().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "no history store is open, so the snapshot cannot be kept; serve with a \
             writable --data-dir (TAGWARDEN_DATA_DIR)"
                .into(),
        )
    })?;
    let members = snapshot.members.len();
    let id = history.insert(snapshot).await?;
    tracing::info!(snapshot = id, members, "snapshot stored");
    Ok(id)
}

/// Other filter sets with snapshots (at most 20), for an empty answer to say what exists.
pub(crate) async fn other_filter_sets(
    store: Arc<dyn HistoryStore>,
    except: String,
) -> Result<Vec<FilterSet>, ToolError> {
    let sets = store.filter_sets().await?;
    Ok(sets
        .into_iter()
        .filter(|(_, hash, _)| *hash != except)
        .take(20)
        .map(|(filters, _, snapshots)| FilterSet {
            filters: SnapshotFilters::from_stored(&filters),
            snapshots,
        })
        .collect())
}

/// The snapshots to compare: (older, newer or None for the current inventory).
pub(crate) async fn pick_snapshots(
    store: &Arc<dyn HistoryStore>,
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

/// The current inventory as the newer side of a drift.
pub(crate) struct Current {
    pub members: Vec<MemberRecord>,
    /// When the inventory was fetched.
    pub taken_at: DateTime<Utc>,
    pub policy_hash: String,
    pub resources: usize,
    pub score_pct: Option<f64>,
    pub data_quality: DataQuality,
}

/// The current inventory as a snapshot would record it, under the older snapshot's filters.
pub(crate) async fn current_members(
    call: &Call<'_>,
    stored_filters: &Value,
    force_refresh: bool,
) -> Result<Current, ToolError> {
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
    Ok(Current {
        members: record.members,
        taken_at: fetched_at,
        policy_hash: estate.policy().hash().to_string(),
        resources: scoped.summary.resources,
        score_pct: scoped.summary.effective.score_pct,
        data_quality: call.data_quality(&estate),
    })
}

/// What changed between two member lists, computed on a blocking thread (it is CPU work on
/// possibly large snapshots).
pub(crate) async fn compare(
    older: Vec<MemberRecord>,
    newer: Vec<MemberRecord>,
    filter: DriftFilter,
    limit: usize,
) -> Result<DriftReport, ToolError> {
    tokio::task::spawn_blocking(move || drift(&older, &newer, &filter, limit))
        .await
        .map_err(|e| ToolError::Internal(format!("the comparison stopped: {e}")))
}

/// Deletes snapshots older than `keep`; failures are logged (retention never stops serving).
pub(crate) async fn prune(history: Arc<dyn HistoryStore>, keep: chrono::Duration) {
    let cutoff = chrono::Utc::now() - keep;
    match history.prune(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(snapshots = n, "old snapshots pruned"),
        Err(StoreError::Stopped(e)) => {
            tracing::error!(error = %e, "pruning task failed")
        }
        Err(e) => tracing::error!(error = %e, "pruning old snapshots failed"),
    }
}
