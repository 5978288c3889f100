//! What the history tools share: finding the history store, running its queries off the async
//! threads, and saying which scopes have history when the asked-for one has none.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_tag_compliance::SnapshotFilters;
use super::{Call, ToolError};
use crate::store::StoreError;
use crate::store::history::HistoryStore;

/// A filter set that has snapshots, shown when the asked-for one has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FilterSet {
    pub filters: SnapshotFilters,
    pub snapshots: usize,
}

pub fn history_store(call: &Call<'_>) -> Result<Arc<HistoryStore>, ToolError> {
    call.history().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "no history store is open; serve with a writable --data-dir (TAGWARDEN_DATA_DIR) \
             and take snapshots with check_tag_compliance(store_snapshot=true), \
             `tagwarden check --snapshot` or `serve --snapshot-every 6h`"
                .into(),
        )
    })
}

/// Runs a blocking store query on the blocking pool.
pub async fn query<T: Send + 'static>(
    store: Arc<HistoryStore>,
    f: impl FnOnce(&HistoryStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ToolError::Internal(format!("the history query stopped: {e}")))?
        .map_err(|e| ToolError::Unavailable(format!("the history store failed: {e}")))
}

/// Other filter sets with snapshots (at most 20), for an empty answer to say what exists.
pub async fn other_filter_sets(
    store: Arc<HistoryStore>,
    except: String,
) -> Result<Vec<FilterSet>, ToolError> {
    let sets = query(store, |s| s.filter_sets()).await?;
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
