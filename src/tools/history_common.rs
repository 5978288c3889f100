//! What the history tools share: finding the history store, and saying which scopes have
//! history when the asked-for one has none.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_tag_compliance::SnapshotFilters;
use super::{Call, ToolError};
use crate::store::HistoryStore;

/// A filter set that has snapshots, shown when the asked-for one has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FilterSet {
    pub filters: SnapshotFilters,
    pub snapshots: usize,
}

pub fn history_store(call: &Call<'_>) -> Result<Arc<dyn HistoryStore>, ToolError> {
    call.history().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "no history store is open; serve with a writable --data-dir (TAGWARDEN_DATA_DIR) \
             and take snapshots with check_tag_compliance(store_snapshot=true), \
             `tagwarden check --snapshot` or `serve --snapshot-every 6h`"
                .into(),
        )
    })
}

/// Other filter sets with snapshots (at most 20), for an empty answer to say what exists.
pub async fn other_filter_sets(
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
