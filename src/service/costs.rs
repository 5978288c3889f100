//! The cost attribution gap as a use-case: how much spend cannot be allocated because of
//! tagging gaps, computed from the costs and the estate of one call. The MCP tool
//! `get_cost_attribution_gap` and `tagwarden check` both ask it; the `time_period` checks live
//! here too, so every cost question reads days the same way.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::allocation::{AllocationInput, AllocationReport, RulesChoice, allocate, resolve};
use crate::app::costs::{Amount, CostQuality, amount};
use crate::app::quality::DataQuality;
use crate::app::{Call, CostSource, ToolError};
use crate::compliance::Scope;
use crate::cost::attribution::{
    Attribution, AttributionInput, GroupBy, GroupSplit, KeyJudge, Split, attribute, pct,
};
use crate::cost::{CostMetric, CostQuery, Period};

const MAX_GROUPS: usize = 50;

/// Longest period a question may span.
const MAX_PERIOD_DAYS: i64 = 400;

/// How to break the spend down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GroupByArg {
    /// The service the spend is billed under (default).
    #[default]
    Service,
    /// Canonical resource type (`ec2:instance`); needs resource-level costs (files, demo).
    ResourceType,
    Region,
    Account,
    /// aws / azure / gcp; needs resource-level costs (files, demo).
    Provider,
    /// The value of the tag key given in `tag_key`.
    Tag,
}

/// A period of days: `start` included, `end` excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimePeriodArg {
    /// First day, `YYYY-MM-DD`.
    #[schemars(length(min = 10, max = 10))]
    pub start: String,
    /// Day after the last day, `YYYY-MM-DD` (as Cost Explorer takes it).
    #[schemars(length(min = 10, max = 10))]
    pub end: String,
}

/// A cost attribution gap question in plain types (the tool's arguments without their schema
/// wrappers).
#[derive(Debug, Clone, Default)]
pub(crate) struct GapQuestion {
    /// The period; `None`: the last 30 complete days, or every day the cost files cover.
    pub time_period: Option<TimePeriodArg>,
    pub group_by: GroupByArg,
    /// The key to group by when `group_by` is `Tag`.
    pub tag_key: Option<String>,
    pub metric: Option<CostMetric>,
    pub scope: Scope,
    /// How many unattributed resources to list, most costly first.
    pub top: u32,
    /// Re-read the inventory and the costs instead of using cached ones.
    pub force_refresh: bool,
    /// Which shared-cost allocation rules to apply (none: no `allocation` section).
    pub allocation: RulesChoice,
}

/// Attributable and unattributable spend and the gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct GapFigures {
    pub attributable: Amount,
    pub unattributable: Amount,
    /// unattributable ÷ total, in % (null when the total is 0).
    pub gap_pct: Option<f64>,
}

impl GapFigures {
    fn of(split: Split) -> GapFigures {
        GapFigures {
            attributable: amount(split.attributable),
            unattributable: amount(split.unattributable),
            gap_pct: pct(split.unattributable, split.total()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct KeyGap {
    pub key: String,
    #[serde(flatten)]
    pub figures: GapFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct GroupGap {
    pub group: String,
    pub total: Amount,
    #[serde(flatten)]
    pub figures: GapFigures,
}

impl GroupGap {
    fn of(g: GroupSplit) -> GroupGap {
        GroupGap {
            group: g.group,
            total: amount(g.split.total()),
            figures: GapFigures::of(g.split),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct KeyProblemItem {
    pub key: String,
    /// `missing` (absent or empty) or `invalid` (not an allowed value / not the pattern).
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct UnattributedItem {
    /// Empty for a charge tied to no resource (support, tax, credits).
    pub resource_id: String,
    pub provider: String,
    pub resource_type: String,
    pub name: String,
    pub account: String,
    pub region: String,
    /// Services the spend is billed under.
    pub services: Vec<String>,
    pub cost: Amount,
    /// Which required keys keep it from being attributed.
    pub problems: Vec<KeyProblemItem>,
    /// False when only the cost data knows the resource (another cloud, or not scanned).
    pub in_inventory: bool,
}

// The answer of `get_cost_attribution_gap`. No doc comment: it would become the description
// of the tool's output schema (tools/*.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct GapReport {
    pub period: Period,
    pub metric: CostMetric,
    /// Currency of every amount (ISO 4217).
    pub currency: String,
    /// All spend in the period matching the filters. Every amount is in `currency`, exact to
    /// the millionth; attributable + unattributable = total everywhere.
    pub total: Amount,
    /// After virtual tags (effective tags: native tags normalised by the policy, approved
    /// virtual tags on top): the headline.
    #[serde(flatten)]
    pub figures: GapFigures,
    /// The same on effective tags without virtual tags (equal when none apply).
    pub before_virtual_tags: GapFigures,
    /// Per required key: spend whose resource has a valid value for that key.
    pub by_key: Vec<KeyGap>,
    pub by_provider: Vec<GroupGap>,
    /// What `groups` is grouped by (`service`, `resource_type`, `region`, `account`,
    /// `provider`, `tag:KEY`).
    pub group_by: String,
    /// Most unattributable spend first (at most 50; see `groups_total`).
    pub groups: Vec<GroupGap>,
    pub groups_total: usize,
    /// Spend on charges tied to no resource (part of the figures above).
    pub without_resource: GapFigures,
    /// The unattributed resources that cost most.
    pub top_unattributed: Vec<UnattributedItem>,
    /// Unattributed resources (and resource-less charges) in all (exact; the list is the top).
    pub unattributed_total: usize,
    /// Distinct resources priced, and of those how many the inventory holds.
    pub resources_priced: usize,
    pub resources_in_inventory: usize,
    /// When allocation rules apply (the `allocation_rules` argument, else the stored rules):
    /// where they came from, what each rule split and, per key they allocate onto, the gap
    /// before and after allocation (absent without rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<AllocationReport>,
    pub cost_quality: CostQuality,
    pub data_quality: DataQuality,
}

/// Answers a gap question from the call's costs and estate (one estate per call).
pub(crate) async fn gap(call: &Call<'_>, q: GapQuestion) -> Result<GapReport, ToolError> {
    let source = call.cost_source().cloned().ok_or_else(no_cost_source)?;
    let today = Utc::now().date_naive();
    let period = match &q.time_period {
        Some(p) => Some(period_arg(&p.start, &p.end, today)?),
        None => None,
    };
    let group_by = group_by(&q)?;
    let estate = call.estate(q.force_refresh).await?;
    let policy = estate.policy();
    // Effective tags carry canonical keys: `team` groups by the policy's `Team`.
    let group_by = match group_by {
        GroupBy::Tag(key) => GroupBy::Tag(policy.canonical_key(&key).to_string()),
        other => other,
    };
    let judge = KeyJudge::new(policy);
    if judge.is_empty() {
        return Err(ToolError::invalid(
            "the policy requires no tag keys, so no spend can be judged attributable; add \
             required_tags to the policy",
        ));
    }
    let mut rules = resolve(call, &q.allocation, &judge).await?;
    let mut allocation = None;
    let no_virtual_tags = |_: &str, _: &mut BTreeMap<String, String>| {};
    let resources = &estate.inventory.resources;
    let evaluated = &estate.evaluated;
    // Where approved virtual tags took effect, the effective tags are those the compliance
    // evaluation read (the same precedence: a valid native value stays).
    let with_virtual_tags = |id: &str, tags: &mut BTreeMap<String, String>| {
        if evaluated.combined.is_empty() {
            return;
        }
        if let Some(i) = crate::inventory::index_of(resources, id)
            && let Some(combined) = evaluated.combined.get(&(i as u32))
        {
            *tags = policy.effective_tags(combined);
        }
    };
    let mut notes_extra = Vec::new();
    let (attribution, before, period, metric, currency, mut report, reused) = match &source {
        CostSource::Explorer(explorer) => {
            match rules.take() {
                Some(r) if r.source == super::allocation::RulesSource::Stored => {
                    notes_extra.push(format!(
                        "The stored allocation rules ({}) are not applied: allocation needs \
                         line-level costs, which Cost Explorer does not give here; give FOCUS \
                         cost files with --cost",
                        r.rules.len()
                    ));
                }
                Some(r) => {
                    let what = r.source.origin();
                    return Err(ToolError::invalid(format!(
                        "{what}: allocation needs line-level costs, which Cost Explorer does \
                         not give here; give FOCUS cost files with --cost"
                    )));
                }
                None => {}
            }
            if !q.scope.resource_types.is_empty() {
                return Err(ToolError::invalid(
                    "argument `resource_types`: Cost Explorer has no resource types; filter \
                     by regions or accounts, or give FOCUS cost files with --cost",
                ));
            }
            if !q.scope.regions.is_empty() || !q.scope.accounts.is_empty() {
                return Err(ToolError::invalid(
                    "arguments `regions`/`accounts` are not supported with Cost Explorer \
                     yet; group_by region or account instead",
                ));
            }
            let period = period.unwrap_or_else(|| crate::cost::demo::default_period(today));
            crate::cost::explorer::check_period(period, today)
                .map_err(|e| ToolError::invalid(e.to_string()))?;
            let gap = explorer
                .gap(
                    &judge,
                    period,
                    q.metric,
                    &group_by,
                    resources,
                    &with_virtual_tags,
                )
                .await
                .map_err(cost_error)?;
            if !evaluated.combined.is_empty() {
                notes_extra.push(
                    "Cost Explorer's figures come from billing's native tags, so they are the \
                     same before and after virtual tags; the resource list uses them"
                        .to_string(),
                );
            }
            let before = gap.attribution.overall;
            (
                gap.attribution,
                before,
                gap.period,
                gap.metric,
                gap.currency,
                gap.report,
                false,
            )
        }
        CostSource::Lines(_) => {
            let query = CostQuery {
                period,
                metric: q.metric,
            };
            let costs = call
                .line_costs(&query, &estate, q.force_refresh)
                .await
                .ok_or_else(no_cost_source)?
                .map_err(cost_error)?;
            let filter = q.scope.filter_in(&estate.inventory.accounts);
            let input = |overlay| AttributionInput {
                judge: &judge,
                lines: &costs.costs.lines,
                resources,
                filter: &filter,
                group_by: &group_by,
                overlay,
            };
            let attribution = attribute(&input(&with_virtual_tags));
            if let Some(resolved) = &rules {
                allocation = Some(allocate(
                    resolved,
                    &AllocationInput {
                        judge: &judge,
                        lines: &costs.costs.lines,
                        resources,
                        filter: &filter,
                        overlay: &with_virtual_tags,
                    },
                ));
            }
            let before = if evaluated.combined.is_empty() {
                attribution.overall
            } else {
                attribute(&input(&no_virtual_tags)).overall
            };
            let c = &costs.costs;
            (
                attribution,
                before,
                c.period,
                c.metric,
                c.currency.clone(),
                c.report.clone(),
                costs.reused,
            )
        }
    };
    report.notes.extend(notes_extra);
    let mut answer = output(
        attribution,
        before,
        &q,
        &group_by,
        period,
        metric,
        currency,
        CostQuality::of(&report, reused),
        call.data_quality(&estate),
    );
    answer.allocation = allocation;
    // The gauge follows the default question only (the whole estate, the default period):
    // a narrowed question's gap is not the estate's.
    let whole_estate = q.time_period.is_none()
        && q.scope.resource_types.is_empty()
        && q.scope.regions.is_empty()
        && q.scope.accounts.is_empty();
    if whole_estate && let Some(pct) = answer.figures.gap_pct {
        call.metrics().unattributed_cost_pct(pct);
    }
    Ok(answer)
}

#[allow(clippy::too_many_arguments)]
fn output(
    attribution: Attribution,
    before: Split,
    q: &GapQuestion,
    group_by: &GroupBy,
    period: Period,
    metric: CostMetric,
    currency: String,
    cost_quality: CostQuality,
    data_quality: DataQuality,
) -> GapReport {
    let keys = attribution.by_key;
    let unattributed_total = attribution.unattributed.len();
    let top = attribution
        .unattributed
        .into_iter()
        .take(q.top as usize)
        .map(|u| UnattributedItem {
            resource_id: u.resource_id.to_string(),
            provider: u.provider.as_str().to_string(),
            resource_type: u.resource_type.to_string(),
            name: u.name.to_string(),
            account: u.account.to_string(),
            region: u.region.to_string(),
            services: u.services.iter().map(|s| s.to_string()).collect(),
            cost: amount(u.cost),
            problems: u
                .problems
                .into_iter()
                .map(|(key, p)| KeyProblemItem {
                    key,
                    problem: p.as_str().to_string(),
                })
                .collect(),
            in_inventory: u.in_inventory,
        })
        .collect();
    let mut groups = attribution.groups;
    let groups_total = groups.len();
    groups.truncate(MAX_GROUPS);
    GapReport {
        period,
        metric,
        currency,
        total: amount(attribution.overall.total()),
        figures: GapFigures::of(attribution.overall),
        before_virtual_tags: GapFigures::of(before),
        by_key: keys
            .into_iter()
            .map(|(key, split)| KeyGap {
                key,
                figures: GapFigures::of(split),
            })
            .collect(),
        by_provider: attribution
            .by_provider
            .into_iter()
            .map(GroupGap::of)
            .collect(),
        group_by: match group_by {
            GroupBy::Service => "service".to_string(),
            GroupBy::ResourceType => "resource_type".to_string(),
            GroupBy::Region => "region".to_string(),
            GroupBy::Account => "account".to_string(),
            GroupBy::Provider => "provider".to_string(),
            GroupBy::Tag(k) => format!("tag:{k}"),
        },
        groups: groups.into_iter().map(GroupGap::of).collect(),
        groups_total,
        without_resource: GapFigures::of(attribution.without_resource),
        top_unattributed: top,
        unattributed_total,
        resources_priced: attribution.resources,
        resources_in_inventory: attribution.resources_in_inventory,
        allocation: None,
        cost_quality,
        data_quality,
    }
}

fn group_by(q: &GapQuestion) -> Result<GroupBy, ToolError> {
    match (q.group_by, &q.tag_key) {
        (GroupByArg::Tag, Some(key)) if !key.trim().is_empty() => Ok(GroupBy::Tag(key.clone())),
        (GroupByArg::Tag, _) => Err(ToolError::invalid(
            "argument `tag_key`: group_by tag needs the key to group by, e.g. \"tag_key\": \"Team\"",
        )),
        (_, Some(_)) => Err(ToolError::invalid(
            "argument `tag_key` is only used with group_by tag; remove it or set group_by to tag",
        )),
        (GroupByArg::Service, None) => Ok(GroupBy::Service),
        (GroupByArg::ResourceType, None) => Ok(GroupBy::ResourceType),
        (GroupByArg::Region, None) => Ok(GroupBy::Region),
        (GroupByArg::Account, None) => Ok(GroupBy::Account),
        (GroupByArg::Provider, None) => Ok(GroupBy::Provider),
    }
}

fn no_cost_source() -> ToolError {
    ToolError::Unavailable(
        "no cost data is configured: start the server with --cost FILE (FOCUS 1.x CSV exports, \
         any cloud) or --cost-explorer (AWS Cost Explorer; each request is billed USD 0.01), or \
         use --demo"
            .into(),
    )
}

fn cost_error(e: crate::cost::CostError) -> ToolError {
    match e {
        crate::cost::CostError::Invalid(m) => ToolError::InvalidArgument(m),
        other => ToolError::Unavailable(other.to_string()),
    }
}

/// Validates a `time_period` argument.
pub(crate) fn period_arg(start: &str, end: &str, today: NaiveDate) -> Result<Period, ToolError> {
    let start_day = parse_day(start, "time_period.start")?;
    let end_day = parse_day(end, "time_period.end")?;
    if start_day >= end_day {
        return Err(ToolError::invalid(format!(
            "argument `time_period`: start {start} must be before end {end} (end is excluded: \
             one day is start=2026-10-01, end=2026-10-02)"
        )));
    }
    if end_day > today + Duration::days(1) {
        return Err(ToolError::invalid(format!(
            "argument `time_period.end`: {end} is in the future; costs are known up to today \
             (end {} at the latest)",
            today + Duration::days(1)
        )));
    }
    if (end_day - start_day).num_days() > MAX_PERIOD_DAYS {
        return Err(ToolError::invalid(format!(
            "argument `time_period`: at most {MAX_PERIOD_DAYS} days per question; split the \
             period"
        )));
    }
    Ok(Period {
        start: start_day,
        end: end_day,
    })
}

/// `YYYY-MM-DD` → date, for messages that name the argument.
pub(crate) fn parse_day(text: &str, argument: &str) -> Result<NaiveDate, ToolError> {
    let padded = text.len() == 10;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| padded)
        .ok_or_else(|| {
            ToolError::invalid(format!(
                "argument `{argument}`: {text:?} is not a date; use YYYY-MM-DD, e.g. {}",
                Utc::now().date_naive() - Duration::days(30)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_validated() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let p = period_arg("2026-10-01", "2026-11-01", today).unwrap();
        assert_eq!(p.days(), 31);
        assert!(period_arg("2026-11-01", "2026-10-01", today).is_err());
        assert!(period_arg("2026-10-01", "2026-10-01", today).is_err());
        assert!(period_arg("2026-10-01", "2026-12-01", today).is_err());
        assert!(period_arg("2026-10-1", "2026-11-01", today).is_err());
        assert!(period_arg("2024-01-01", "2026-11-01", today).is_err());
        assert!(period_arg("2026-11-27", "2026-11-28", today).is_ok());
        let e = period_arg("2026-13-01", "2026-11-01", today).unwrap_err();
        assert!(e.to_string().contains("time_period.start"), "{e}");
    }
}
