//! The filters of a compliance question as history snapshots record them: the canonical JSON
//! stored with each snapshot (its hash groups snapshots of one scope) and the typed view the
//! history tools report. Pure: no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::policy::Severity;

/// The filters a snapshot was taken with, as the history tools report them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct SnapshotFilters {
    #[serde(default)]
    pub resource_types: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub tag_keys: Vec<String>,
    #[serde(default = "lowest")]
    pub min_severity: Severity,
}

fn lowest() -> Severity {
    Severity::Low
}

impl SnapshotFilters {
    /// No filter narrows the question: its score is the whole estate's.
    pub(crate) fn is_whole_estate(&self) -> bool {
        self.resource_types.is_empty()
            && self.regions.is_empty()
            && self.accounts.is_empty()
            && self.tag_keys.is_empty()
            && self.min_severity == Severity::Low
    }

    /// As snapshots record them (see `snapshot_filters`).
    pub(crate) fn to_value(&self) -> serde_json::Value {
        snapshot_filters(
            &self.resource_types,
            &self.regions,
            &self.accounts,
            &self.tag_keys,
            self.min_severity,
        )
    }

    /// Reads stored filters (always written by `snapshot_filters`; anything unreadable shows as
    /// no filters rather than failing the answer).
    pub(crate) fn from_stored(value: &serde_json::Value) -> SnapshotFilters {
        serde_json::from_value(value.clone()).unwrap_or(SnapshotFilters {
            resource_types: Vec::new(),
            regions: Vec::new(),
            accounts: Vec::new(),
            tag_keys: Vec::new(),
            min_severity: Severity::Low,
        })
    }
}

/// The filters of a compliance question as snapshots record them (lists sorted, so the same
/// scope asked in another order finds the same history).
pub fn snapshot_filters(
    resource_types: &[String],
    regions: &[String],
    accounts: &[String],
    tag_keys: &[String],
    min_severity: Severity,
) -> serde_json::Value {
    let sorted = |items: &[String]| {
        let mut v = items.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    };
    serde_json::json!({
        "resource_types": sorted(resource_types),
        "regions": sorted(regions),
        "accounts": sorted(accounts),
        "tag_keys": sorted(tag_keys),
        "min_severity": min_severity,
    })
}
