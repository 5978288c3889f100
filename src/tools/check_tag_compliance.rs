//! `check_tag_compliance`: the compliance score of the estate (or a filtered part), counts by
//! severity/kind/key/type/region/account, and the worst violations first.

use std::collections::BTreeMap;

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DataQuality, Paging, cap};
use super::costs::{Amount, ResourceCosts, SpendSummary, amount};
use super::{Call, Tool, ToolError};
use crate::app::Estate;
use crate::compliance::capture::{CaptureContext, capture};
use crate::compliance::{
    GroupCount, ResourceFilter, Scope, Score, SeverityCounts, Summary, ViolationFilter, summarize,
};
use crate::policy::{Severity, View, ViolationDetail, ViolationKind};
use crate::service::scope::{ScopeArgs, ScopeDocs};

pub struct CheckTagCompliance;

pub const DEFAULT_LIMIT: u32 = 20;
const MAX_GROUPS: usize = 50;

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// Which resources and violations to include. Every filter narrows both the counts and the score.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
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
pub struct CheckDocs;

impl ScopeDocs for CheckDocs {
    const RESOURCE_TYPES: Option<&'static str> = Some(
        "Only resources whose canonical type matches one of these patterns, e.g. `ec2:instance`,\n`ec2:*`, `s3:bucket`, `rds` (= `rds:*`). Default: every type.",
    );
    const REGIONS: Option<&'static str> = Some(
        "Only resources in these regions, e.g. `us-east-1` (`global` for S3 buckets read from\nARNs). Default: every region.",
    );
    const ACCOUNTS: Option<&'static str> =
        Some("Only resources in these account ids. Default: every account.");
}

/// A listed violation with the resource it is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ViolationItem {
    #[serde(flatten)]
    pub detail: ViolationDetail,
    pub resource_type: String,
    pub resource_name: String,
    pub region: String,
    pub account: String,
    /// What the resource cost over `spend.period`, when costs are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_cost: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// Headline: % of in-scope resources compliant on their effective tags (native tags
    /// normalised by the policy's aliases); null when nothing is in scope.
    pub score_pct: Option<f64>,
    /// The same on native tags exactly as the cloud holds them.
    pub native_score_pct: Option<f64>,
    /// Resources selected by the resource filters.
    pub resources: usize,
    /// Of those, resources at least one required rule applies to.
    pub in_scope: usize,
    pub effective: Score,
    pub native: Score,
    /// A resource fails when it has a violation at or above this severity (policy `fail_at`,
    /// raised by `min_severity`).
    pub fail_threshold: Severity,
    pub policy_hash: String,
    /// Effective-view violations per severity.
    pub by_severity: SeverityCounts,
    /// Effective-view violations per kind.
    pub by_kind: BTreeMap<ViolationKind, usize>,
    /// Native-view violations per kind (shows what normalisation fixes: `misnamed_key` etc.).
    pub native_by_kind: BTreeMap<ViolationKind, usize>,
    /// Effective-view violations per tag key (too_many_tags and length violations are not
    /// keyed).
    pub by_key: BTreeMap<String, usize>,
    /// Per resource type, most non-compliant first (at most 50; see `groups_total`).
    pub by_type: Vec<GroupCount>,
    pub by_region: Vec<GroupCount>,
    pub by_account: Vec<GroupCount>,
    /// Number of groups before truncation: [types, regions, accounts].
    pub groups_total: [usize; 3],
    /// This page of effective-view violations, worst first (severity, then resource id).
    pub violations: Vec<ViolationItem>,
    /// All violations matching the filters (exact; the list is a page of them).
    pub violations_total: usize,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Spend of the resources selected and the spend-weighted score, when a cost source is
    /// configured (FOCUS files, the demo, Cost Explorer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<SpendSummary>,
    /// Why spend is missing although a cost source is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_unavailable: Option<String>,
    /// The id of the snapshot stored, when `store_snapshot` was true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<i64>,
    pub data_quality: DataQuality,
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

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let estate = call.estate(args.force_refresh).await?;
        let policy = estate.policy();
        let min_severity = args.min_severity.unwrap_or(Severity::Low);
        let Scope {
            resource_types,
            regions,
            accounts,
        } = args.scope.scope;
        let filters = SnapshotFilters {
            resource_types,
            regions,
            accounts,
            tag_keys: args.tag_keys,
            min_severity,
        };
        let scoped = Scoped::new(&estate, &filters).map_err(|unknown| {
            ToolError::invalid(format!(
                "argument `tag_keys`: the policy has no key {}; its keys are: {}",
                unknown.join(", "),
                policy.required_key_names().join(", ")
            ))
        })?;
        let resources = &estate.inventory.resources;
        let evaluations = &estate.evaluated.evaluations;
        let question = filters.to_value();
        let paging = Paging::new(Self::NAME, &question, &estate);
        let offset = paging.offset(args.cursor.as_deref())?;
        let summary = &scoped.summary;
        let total = summary.worst.len();
        let page: Vec<ViolationItem> = summary
            .worst
            .iter()
            .skip(offset)
            .take(args.limit as usize)
            .map(|at| {
                let r = &resources[at.resource as usize];
                let v = &evaluations.get(at.resource as usize).effective[at.violation as usize];
                ViolationItem {
                    detail: policy.render(
                        &r.id,
                        estate
                            .evaluated
                            .effective_input(at.resource as usize, &r.tags),
                        View::Effective,
                        v,
                    ),
                    resource_type: r.resource_type.to_string(),
                    resource_name: r.name.to_string(),
                    region: r.region.to_string(),
                    account: r.account.to_string(),
                    resource_cost: None,
                }
            })
            .collect();
        let next_cursor = paging.next(offset, page.len(), total);
        let (costs, spend_unavailable) =
            match call.resource_costs(&estate, args.force_refresh).await {
                Ok(costs) => (costs, None),
                Err(why) => (None, Some(why)),
            };
        let mut page = page;
        if let Some(costs) = &costs {
            for item in &mut page {
                item.resource_cost = costs.of(&item.detail.resource_id).map(amount);
            }
        }
        let spend = costs.map(|c| scoped.spend(&estate, &c));
        let snapshot_id = if args.store_snapshot {
            let history = call.history().cloned().ok_or_else(|| {
                ToolError::Unavailable(
                    "no history store is open, so the snapshot cannot be kept; serve with a \
                     writable --data-dir (TAGWARDEN_DATA_DIR)"
                        .into(),
                )
            })?;
            let mut record = scoped.record(&estate, question, call.snapshot_time(), call.trigger());
            record.spend_score_pct = spend.as_ref().and_then(|s| s.spend_weighted_score_pct);
            let members = record.members.len();
            let id = history.insert(record).await?;
            tracing::info!(snapshot = id, members, "snapshot stored");
            Some(id)
        } else {
            None
        };
        let summary = scoped.summary;
        let (by_type, types_total) = cap(summary.by_type, MAX_GROUPS);
        let (by_region, regions_total) = cap(summary.by_region, MAX_GROUPS);
        let (by_account, accounts_total) = cap(summary.by_account, MAX_GROUPS);
        Ok(Output {
            score_pct: summary.effective.score_pct,
            native_score_pct: summary.native.score_pct,
            resources: summary.resources,
            in_scope: summary.in_scope,
            effective: summary.effective,
            native: summary.native,
            fail_threshold: policy.fail_at().max(min_severity),
            policy_hash: policy.hash().to_string(),
            by_severity: summary.by_severity,
            by_kind: summary.by_kind,
            native_by_kind: summary.native_by_kind,
            by_key: summary.by_key,
            by_type,
            by_region,
            by_account,
            groups_total: [types_total, regions_total, accounts_total],
            violations: page,
            violations_total: total,
            next_cursor,
            spend,
            spend_unavailable,
            snapshot_id,
            data_quality: call.data_quality(&estate),
        })
    }
}

/// The filters a snapshot was taken with, as the history tools report them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotFilters {
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
    /// The resource scope these filters select.
    pub fn scope(&self) -> Scope {
        Scope {
            resource_types: self.resource_types.clone(),
            regions: self.regions.clone(),
            accounts: self.accounts.clone(),
        }
    }

    /// As snapshots record them (see `snapshot_filters`).
    pub fn to_value(&self) -> serde_json::Value {
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
    pub fn from_stored(value: &serde_json::Value) -> SnapshotFilters {
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

/// A compliance question's filters applied to one evaluated inventory: what both an answer
/// and a snapshot (stored, or the "now" side of a drift) are made from.
pub struct Scoped {
    pub resource_filter: ResourceFilter,
    pub violation_filter: ViolationFilter,
    pub summary: Summary,
}

impl Scoped {
    /// Err: the requested tag keys the policy does not know.
    pub fn new(estate: &Estate, filters: &SnapshotFilters) -> Result<Scoped, Vec<String>> {
        let policy = estate.policy();
        let resource_filter = filters.scope().filter();
        let violation_filter =
            ViolationFilter::new(policy, &filters.tag_keys, &[], filters.min_severity)?;
        let summary = summarize(
            policy,
            &estate.inventory.resources,
            &estate.evaluated.evaluations,
            &resource_filter,
            &violation_filter,
        );
        Ok(Scoped {
            resource_filter,
            violation_filter,
            summary,
        })
    }

    /// Spend of the selected in-scope resources, and of the compliant ones among them.
    pub fn spend(&self, estate: &Estate, costs: &ResourceCosts) -> SpendSummary {
        let fail_at = estate.policy().fail_at();
        let (mut in_scope, mut compliant, mut native_compliant, mut priced) = (0, 0, 0, 0);
        let resources = &estate.inventory.resources;
        for (r, e) in resources.iter().zip(estate.evaluated.evaluations.iter()) {
            if !e.in_scope || !self.resource_filter.matches(r) {
                continue;
            }
            let Some(cost) = costs.of(&r.id) else {
                continue;
            };
            // A weight, not a balance: a resource whose credits exceed its charges weighs 0
            // (else the score could leave 0–100%).
            let cost = cost.max(0);
            priced += 1;
            in_scope += cost;
            if !self.violation_filter.fails(e.effective, fail_at) {
                compliant += cost;
            }
            if !self.violation_filter.fails(e.native, fail_at) {
                native_compliant += cost;
            }
        }
        let c = &costs.costs;
        SpendSummary {
            currency: c.currency.clone(),
            period: c.period,
            metric: c.metric,
            in_scope_spend: amount(in_scope),
            compliant_spend: amount(compliant),
            spend_weighted_score_pct: crate::cost::attribution::pct(compliant, in_scope),
            native_spend_weighted_score_pct: crate::cost::attribution::pct(
                native_compliant,
                in_scope,
            ),
            priced_resources: priced,
            cost_quality: costs.quality.clone(),
        }
    }

    /// This answer as a history snapshot (`filters` as `SnapshotFilters::to_value` gives them).
    pub fn record(
        &self,
        estate: &Estate,
        filters: serde_json::Value,
        taken_at: chrono::DateTime<chrono::Utc>,
        trigger: &str,
    ) -> crate::history::NewSnapshot {
        capture(
            estate.policy(),
            &estate.inventory.resources,
            &estate.evaluated.evaluations,
            &self.resource_filter,
            &self.violation_filter,
            &self.summary,
            CaptureContext {
                taken_at,
                trigger,
                source: &estate.inventory.source,
                filters,
            },
        )
    }
}
