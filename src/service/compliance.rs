//! The compliance use-case: a compliance question (scope, keys, severity, page) answered over
//! the call's estate — score, counts, a page of the worst violations with their costs — and,
//! when asked, recorded as a history snapshot. Callers: the check_tag_compliance tool,
//! `tagwarden check` and the scheduled snapshots.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::costs::{Amount, ResourceCosts, SpendSummary, amount};
use crate::app::quality::DataQuality;
use crate::app::{Call, Estate, ToolError};
use crate::compliance::capture::{CaptureContext, capture};
use crate::compliance::{
    GroupCount, ResourceFilter, Scope, Score, SeverityCounts, Summary, ViolationFilter, summarize,
};
use crate::history::SnapshotFilters;
use crate::metrics::ScoreView;
use crate::policy::{Severity, View, ViolationDetail, ViolationKind};
use crate::service::paging::{Paging, cap};

/// The name paging cursors are bound to (the tool's name, kept so cursors stay valid).
const PAGING_NAME: &str = "check_tag_compliance";

pub(crate) const DEFAULT_LIMIT: u32 = 20;
const MAX_GROUPS: usize = 50;

/// A compliance question in plain types (the tool's arguments without their schema).
#[derive(Debug, Clone, Default)]
pub(crate) struct ComplianceQuestion {
    pub scope: Scope,
    pub tag_keys: Vec<String>,
    /// Default: `low`.
    pub min_severity: Option<Severity>,
    pub force_refresh: bool,
    /// How many violations to list, worst first.
    pub limit: u32,
    pub cursor: Option<String>,
    /// Also record the answer as a history snapshot.
    pub store_snapshot: bool,
}

/// A listed violation with the resource it is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ViolationItem {
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

// The answer, published as check_tag_compliance's output schema (so no doc comment here); the
// field order is the order of `tagwarden check --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ComplianceReport {
    /// Headline: % of in-scope resources compliant on their effective tags (native tags
    /// normalised by the policy's aliases); null when nothing is in scope.
    pub score_pct: Option<f64>,
    /// The same on native tags exactly as the cloud holds them.
    pub native_score_pct: Option<f64>,
    /// Resources selected by the resource filters.
    pub resources: usize,
    /// Of those, resources the policy judges: a required rule applies to them, or the policy's
    /// `scope` names their type.
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

/// Answers a compliance question (and stores the snapshot when asked).
pub(crate) async fn check(
    call: &Call<'_>,
    q: ComplianceQuestion,
) -> Result<ComplianceReport, ToolError> {
    let estate = call.estate(q.force_refresh).await?;
    let policy = estate.policy();
    let min_severity = q.min_severity.unwrap_or(Severity::Low);
    let Scope {
        resource_types,
        regions,
        accounts,
    } = q.scope;
    let filters = SnapshotFilters {
        resource_types,
        regions,
        accounts,
        tag_keys: q.tag_keys,
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
    let paging = Paging::new(PAGING_NAME, &question, &estate);
    let offset = paging.offset(q.cursor.as_deref())?;
    let summary = &scoped.summary;
    if filters.is_whole_estate() {
        let metrics = call.metrics();
        if let Some(pct) = summary.effective.score_pct {
            metrics.compliance_score_pct(ScoreView::Effective, pct);
        }
        if let Some(pct) = summary.native.score_pct {
            metrics.compliance_score_pct(ScoreView::Native, pct);
        }
    }
    let total = summary.worst.len();
    let page: Vec<ViolationItem> = summary
        .worst
        .iter()
        .skip(offset)
        .take(q.limit as usize)
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
    let (costs, spend_unavailable) = match call.resource_costs(&estate, q.force_refresh).await {
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
    let snapshot_id = if q.store_snapshot {
        let mut record = scoped.record(&estate, question, call.snapshot_time(), call.trigger());
        record.spend_score_pct = spend.as_ref().and_then(|s| s.spend_weighted_score_pct);
        let id = super::snapshot::record(call, record).await?;
        Some(id)
    } else {
        None
    };
    let summary = scoped.summary;
    let (by_type, types_total) = cap(summary.by_type, MAX_GROUPS);
    let (by_region, regions_total) = cap(summary.by_region, MAX_GROUPS);
    let (mut by_account, accounts_total) = cap(summary.by_account, MAX_GROUPS);
    for group in &mut by_account {
        group.account_name = estate
            .inventory
            .accounts
            .name(&group.name)
            .map(str::to_string);
    }
    Ok(ComplianceReport {
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

/// A compliance question's filters applied to one evaluated inventory: what both an answer
/// and a snapshot (stored, or the "now" side of a drift) are made from.
pub(crate) struct Scoped {
    pub resource_filter: ResourceFilter,
    pub violation_filter: ViolationFilter,
    pub summary: Summary,
}

impl Scoped {
    /// Err: the requested tag keys the policy does not know.
    pub(crate) fn new(estate: &Estate, filters: &SnapshotFilters) -> Result<Scoped, Vec<String>> {
        let policy = estate.policy();
        let resource_filter = Scope {
            resource_types: filters.resource_types.clone(),
            regions: filters.regions.clone(),
            accounts: filters.accounts.clone(),
        }
        .filter_in(&estate.inventory.accounts);
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
    pub(crate) fn spend(&self, estate: &Estate, costs: &ResourceCosts) -> SpendSummary {
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
    pub(crate) fn record(
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
