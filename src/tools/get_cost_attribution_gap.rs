//! `get_cost_attribution_gap`: how much spend cannot be allocated because of tagging gaps —
//! overall, per required key, per group and per provider, before and after virtual tags — and
//! the unattributed resources that cost most.

use std::collections::BTreeMap;

use chrono::Utc;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DataQuality, cap};
use super::costs::{Amount, CostQuality, amount, period_arg};
use super::{Call, Tool, ToolError, read_only_annotations};
use crate::app::CostSource;
use crate::cost::attribution::{
    Attribution, AttributionInput, GroupBy, GroupSplit, KeyJudge, Split, attribute, pct,
};
use crate::cost::{CostMetric, CostQuery, Period};
use crate::service::scope::{ScopeArgs, ScopeDocs};

pub struct GetCostAttributionGap;

const MAX_GROUPS: usize = 50;

fn default_top() -> u32 {
    10
}

/// How to break the spend down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupByArg {
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
pub struct TimePeriodArg {
    /// First day, `YYYY-MM-DD`.
    #[schemars(length(min = 10, max = 10))]
    pub start: String,
    /// Day after the last day, `YYYY-MM-DD` (as Cost Explorer takes it).
    #[schemars(length(min = 10, max = 10))]
    pub end: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The period. Default: the last 30 complete days; with FOCUS cost files, every day the
    /// files cover.
    #[serde(default)]
    pub time_period: Option<TimePeriodArg>,
    /// Breakdown of the spend (default `service`).
    #[serde(default)]
    pub group_by: GroupByArg,
    /// The key to group by when `group_by` is `tag`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub tag_key: Option<String>,
    /// Cost figure: Cost Explorer offers UnblendedCost (default), AmortizedCost and
    /// NetAmortizedCost; FOCUS files and the demo offer BilledCost (default) and EffectiveCost.
    #[serde(default)]
    pub metric: Option<CostMetric>,
    #[serde(flatten)]
    pub scope: ScopeArgs<GapDocs>,
    /// How many unattributed resources to list, most costly first.
    #[serde(default = "default_top")]
    #[schemars(range(min = 0, max = 100))]
    pub top: u32,
    /// Re-read the inventory and the costs instead of using cached ones (Cost Explorer
    /// requests are billed by AWS).
    #[serde(default)]
    pub force_refresh: bool,
}

/// The descriptions of the scope arguments in this tool's schema.
pub struct GapDocs;

impl ScopeDocs for GapDocs {
    const RESOURCE_TYPES: Option<&'static str> =
        Some("Only spend on resources of these types (`ec2:*`); needs resource-level costs.");
    const REGIONS: Option<&'static str> = Some("Only spend in these regions.");
    const ACCOUNTS: Option<&'static str> =
        Some("Only spend in these accounts (subscriptions, projects).");
}

/// Attributable and unattributable spend and the gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GapFigures {
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
pub struct KeyGap {
    pub key: String,
    #[serde(flatten)]
    pub figures: GapFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupGap {
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
pub struct KeyProblemItem {
    pub key: String,
    /// `missing` (absent or empty) or `invalid` (not an allowed value / not the pattern).
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnattributedItem {
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Output {
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
    pub cost_quality: CostQuality,
    pub data_quality: DataQuality,
}

impl Tool for GetCostAttributionGap {
    const NAME: &'static str = "get_cost_attribution_gap";
    const TITLE: &'static str = "Cost attribution gap";
    const DESCRIPTION: &'static str = "Measures the spend that cannot be allocated because of tagging gaps. \
A line of spend is attributable when its resource has a valid value (present, non-empty, allowed by the policy) \
for every required tag key. Returns the total, attributable and unattributable spend and the gap % for a period \
— overall, per required key, per provider and per group (group_by service, resource_type, region, account, \
provider or a tag key) — before and after virtual tags, the unattributed resources that cost most with the keys \
they lack, the currency, and cost_quality (source, rows skipped, Cost Explorer requests made and their \
estimated charge). Use it for 'what does our tagging gap cost?' or 'which untagged resources cost most?'. Costs \
come from FOCUS cost files, the demo estate or AWS Cost Explorer (a handful of billed requests per question; \
answers are cached).";

    type Args = Args;
    type Output = Output;

    fn caches_answer(_args: &serde_json::Value) -> bool {
        true
    }

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let source = call.cost_source().cloned().ok_or_else(no_cost_source)?;
        let today = Utc::now().date_naive();
        let period = match &args.time_period {
            Some(p) => Some(period_arg(&p.start, &p.end, today)?),
            None => None,
        };
        let group_by = group_by(&args)?;
        let estate = call.estate(args.force_refresh).await?;
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
                if !args.scope.resource_types.is_empty() {
                    return Err(ToolError::invalid(
                        "argument `resource_types`: Cost Explorer has no resource types; filter \
                         by regions or accounts, or give FOCUS cost files with --cost",
                    ));
                }
                if !args.scope.regions.is_empty() || !args.scope.accounts.is_empty() {
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
                        args.metric,
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
                    metric: args.metric,
                };
                let costs = call
                    .line_costs(&query, &estate, args.force_refresh)
                    .await
                    .ok_or_else(no_cost_source)?
                    .map_err(cost_error)?;
                let filter = args.scope.filter();
                let input = |overlay| AttributionInput {
                    judge: &judge,
                    lines: &costs.costs.lines,
                    resources,
                    filter: &filter,
                    group_by: &group_by,
                    overlay,
                };
                let attribution = attribute(&input(&with_virtual_tags));
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
        Ok(output(
            attribution,
            before,
            &args,
            &group_by,
            period,
            metric,
            currency,
            CostQuality::of(&report, reused),
            call.data_quality(&estate),
        ))
    }
}

#[allow(clippy::too_many_arguments)]
fn output(
    attribution: Attribution,
    before: Split,
    args: &Args,
    group_by: &GroupBy,
    period: Period,
    metric: CostMetric,
    currency: String,
    cost_quality: CostQuality,
    data_quality: DataQuality,
) -> Output {
    let keys = attribution.by_key;
    let unattributed_total = attribution.unattributed.len();
    let top = attribution
        .unattributed
        .into_iter()
        .take(args.top as usize)
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
    let (groups, groups_total) = cap(attribution.groups, MAX_GROUPS);
    Output {
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
        cost_quality,
        data_quality,
    }
}

fn group_by(args: &Args) -> Result<GroupBy, ToolError> {
    match (args.group_by, &args.tag_key) {
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
