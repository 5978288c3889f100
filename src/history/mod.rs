//! Compliance history: what a snapshot of a compliance check records, and the pure computations
//! over stored snapshots — a score series with its trend (`series`) and what changed between two
//! snapshots (`drift`). Storing snapshots is the store layer's job; this module does no I/O.

pub(crate) mod alerts;
pub(crate) mod drift;
pub(crate) mod filters;
pub(crate) mod series;

use arcstr::ArcStr;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(crate) use drift::{DriftFilter, DriftReport, drift};
pub(crate) use filters::{SnapshotFilters, snapshot_filters};
pub(crate) use series::{
    GroupBy, HistoryPoint, TREND_THRESHOLD_PCT_POINTS, Trend, ViolationMovement, series, trend,
    violation_movements,
};

/// What a snapshot records of one resource (the filtered scope of the check it was taken with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The resource's id (ARN for AWS).
    pub resource_id: String,
    /// Canonical `service:kind`.
    pub resource_type: ArcStr,
    /// Region, or `global`.
    pub region: ArcStr,
    /// Account (subscription, project) id.
    pub account: ArcStr,
    /// Display name.
    pub name: ArcStr,
    /// Native tags, sorted by key. (Shared strings: a snapshot of a million resources shares
    /// the inventory's texts instead of copying them.)
    pub tags: Vec<(ArcStr, ArcStr)>,
    /// Effective-view violations counted by the check, as sorted labels `kind:key` (e.g.
    /// `missing_tag:CostCenter`, `too_many_tags` when no key).
    pub violations: Vec<String>,
    /// Fails the policy (a violation at or above the fail threshold).
    pub failing: bool,
    /// At least one required rule applies.
    pub in_scope: bool,
}

/// A snapshot as the caller builds it from an evaluated inventory, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSnapshot {
    /// When the check ran.
    pub taken_at: DateTime<Utc>,
    /// `tool`, `cli` or `schedule`.
    pub trigger: String,
    /// Where the inventory came from, e.g. `demo estate (seed 42, 5000 resources)`.
    pub source: String,
    /// Hash of the policy the check used.
    pub policy_hash: String,
    /// The check's filters as a JSON object; stored canonically and hashed (`filters_hash`) so
    /// that only snapshots of the same scope are compared.
    pub filters: Value,
    /// Resources the filters selected.
    pub resources: usize,
    /// Of those, resources at least one required rule applies to.
    pub in_scope: usize,
    /// In-scope resources that pass the policy (effective tags).
    pub compliant: usize,
    /// Effective-view violations counted.
    pub violations: usize,
    /// Compliant ÷ in scope, in percent, on effective tags.
    pub score_pct: Option<f64>,
    /// The same on native tags only.
    pub native_score_pct: Option<f64>,
    /// Share of spend on compliant resources, when costs were known.
    pub spend_score_pct: Option<f64>,
    /// Breakdowns (by severity, kind, key, type, region, account) as the caller built them;
    /// stored opaquely.
    pub counts: Value,
    /// `kind:key` label → number of such violations.
    pub by_violation: BTreeMap<String, usize>,
    /// Every selected resource, as recorded.
    pub members: Vec<MemberRecord>,
}

/// A stored snapshot without its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotMeta {
    /// The snapshot's id in the history store.
    pub id: i64,
    /// When the check ran (UTC).
    pub taken_at: DateTime<Utc>,
    /// What took it: `tool`, `cli` or `schedule`.
    pub trigger: String,
    /// Where the inventory came from.
    pub source: String,
    /// Hash of the policy the check evaluated; scores under different policies are not
    /// strictly comparable.
    pub policy_hash: String,
    /// The check's filters (resource types, regions, accounts, keys, ...).
    pub filters: Value,
    /// SHA-256 (hex) of the canonical JSON of `filters`: snapshots with equal hashes cover the
    /// same scope.
    pub filters_hash: String,
    /// Resources the check covered.
    pub resources: usize,
    /// Resources to which at least one required rule applies.
    pub in_scope: usize,
    /// In-scope resources that pass the policy.
    pub compliant: usize,
    /// Violations counted by the check.
    pub violations: usize,
    /// Compliance score (percent of in-scope resources compliant); none when nothing is in
    /// scope.
    pub score_pct: Option<f64>,
    /// Score judged on native tags only (before inherited or default values).
    pub native_score_pct: Option<f64>,
    /// Score weighted by spend, when spend is known.
    pub spend_score_pct: Option<f64>,
    /// Breakdowns by severity, kind, key, type, region and account, as recorded.
    pub counts: Value,
    /// Number of violations per `kind:key` label.
    pub by_violation: BTreeMap<String, usize>,
}

/// SHA-256 (hex) of the canonical JSON of a filter object, so that the same filters written in
/// any key order identify the same history.
pub(crate) fn filters_hash(filters: &Value) -> String {
    hex::encode(Sha256::digest(
        crate::util::canonical_json(filters).as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_hash_ignores_key_order() {
        let a = json!({"regions": ["eu-west-1"], "resource_types": ["ec2:*"]});
        let b = json!({"resource_types": ["ec2:*"], "regions": ["eu-west-1"]});
        assert_eq!(filters_hash(&a), filters_hash(&b));
        assert_eq!(filters_hash(&a).len(), 64);
        assert_ne!(filters_hash(&a), filters_hash(&json!({})));
    }
}
