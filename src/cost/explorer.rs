//! AWS Cost Explorer as a cost source. Every request is billed by AWS (USD 0.01), so a gap
//! question costs a fixed, small number of them whatever the estate's size, made one after
//! another in a fixed order:
//!
//! 1. `GetCostAndUsage` grouped by `TAG` for each required key, in policy order (untagged
//!    spend is the `Key$` group) — spend per value, judged valid or not;
//! 2. `GetCostAndUsage` grouped by the breakdown's dimension — the total, per group;
//! 3. `GetCostAndUsage` grouped by that dimension, filtered to spend whose every required key
//!    has a valid value — the attributable spend, per group (skipped when a key has no valid
//!    value at all: nothing is attributable);
//! 4. `GetCostAndUsageWithResources` grouped by `RESOURCE_ID` over the last 14 days of the
//!    period (the most AWS keeps at resource level, EC2 compute only) — the unattributed
//!    resources that cost most. AWS refuses it unless resource-level data is enabled in the
//!    Cost Explorer settings; then the figures stand and `notes` says the list is missing.
//!
//! That is at most (required keys + 3) requests, plus one per extra page of a large answer.
//! Cost Explorer groups by native tag keys exactly as billing records them: value aliases are
//! applied when judging values, but key aliases and case variants are separate keys there.
//!
//! Grouped billing data cannot tell charges tied to no resource (support, tax, fees) from
//! resource spend: they are judged like all spend, by the keys required of every type; when no
//! key is, the overall figure counts them attributable and `notes` says so. In the
//! resource-level list, billing's `NoResourceId` group is a charge tied to no resource (an empty
//! id), judged as such by `attribution`.
//!
//! Amounts are summed exactly or not at all: a sum past what `Micros` holds is an error.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::config::Region;
use aws_sdk_costexplorer::types::{
    DateInterval, Dimension, DimensionValues, Expression, Granularity, GroupDefinition,
    GroupDefinitionType, MatchOption, MetricValue, ResultByTime, TagValues,
};
use chrono::{Duration, NaiveDate, Utc};
use compact_str::CompactString;

use super::attribution::{Attribution, GroupBy, GroupSplit, KeyJudge, Split, Unattributed};
use super::{
    CostError, CostLine, CostMetric, CostProvider, CostQuery, CostReport, LineCosts, Magnitude,
    Micros, Period, ResourceIndex, choose_metric, parse_micros,
};
use crate::aws::{AwsTuning, CallCounter, load_sdk_config, summarise_sdk_error};

mod daily;
use crate::inventory::{Provider, Resource, Tags};

const METRICS: &[CostMetric] = &[
    CostMetric::UnblendedCost,
    CostMetric::AmortizedCost,
    CostMetric::NetAmortizedCost,
];

/// What AWS charges per Cost Explorer API request, in USD.
pub(crate) const USD_PER_REQUEST: f64 = 0.01;

/// The only service AWS keeps resource-level costs for.
const RESOURCE_LEVEL_SERVICE: &str = "Amazon Elastic Compute Cloud - Compute";

/// Days of resource-level data AWS keeps.
const RESOURCE_LEVEL_DAYS: i64 = 14;

/// The `RESOURCE_ID` group of resource-level spend tied to no resource.
const NO_RESOURCE_ID: &str = "NoResourceId";

pub struct CostExplorer {
    tuning: AwsTuning,
    sdk: tokio::sync::OnceCell<aws_config::SdkConfig>,
}

/// One question's client: a fresh call counter, so each answer reports its own requests.
struct Session {
    client: Client,
    counter: CallCounter,
}

/// The gap as Cost Explorer can give it.
pub struct ExplorerGap {
    pub attribution: Attribution,
    pub currency: String,
    pub period: Period,
    pub metric: CostMetric,
    pub report: CostReport,
}

impl CostExplorer {
    pub fn new(tuning: AwsTuning) -> CostExplorer {
        CostExplorer {
            tuning,
            sdk: tokio::sync::OnceCell::new(),
        }
    }

    async fn session(&self) -> Session {
        let sdk = self.sdk.get_or_init(|| load_sdk_config(&self.tuning)).await;
        let counter = self.tuning.counter();
        // Cost Explorer has one endpoint, in us-east-1, whatever region the estate is in.
        let config = aws_sdk_costexplorer::config::Builder::from(sdk)
            .region(Region::new("us-east-1"))
            .interceptor(counter.clone())
            .build();
        Session {
            client: Client::from_conf(config),
            counter,
        }
    }

    /// The attribution gap of `period` from Cost Explorer (see the module docs for the
    /// requests). `resources` and `overlay` judge the resource-level list with effective tags.
    pub async fn gap(
        &self,
        judge: &KeyJudge<'_>,
        period: Period,
        metric: Option<CostMetric>,
        group_by: &GroupBy,
        resources: &[Resource],
        overlay: &(dyn Fn(&str, &mut BTreeMap<String, String>) + Sync),
    ) -> Result<ExplorerGap, CostError> {
        let metric = choose_metric(METRICS, metric, "AWS Cost Explorer")?;
        let dimension = group_definition(group_by)?;
        let session = self.session().await;
        let mut currency = None;
        let mut key_groups = Vec::new();
        for key in judge.keys() {
            let tag = GroupDefinition::builder()
                .r#type(GroupDefinitionType::Tag)
                .key(key)
                .build();
            let groups = fetch_groups(&session, period, metric, tag, None, &mut currency).await?;
            key_groups.push(groups);
        }
        let totals = fetch_groups(
            &session,
            period,
            metric,
            dimension.clone(),
            None,
            &mut currency,
        )
        .await?;
        let valid = valid_values(judge, &key_groups);
        let requires_nothing = overall_requires_nothing(judge);
        let attributable = match all_valid_filter(judge, &valid) {
            // No key is required of every resource: the overall figure requires none, so all
            // spend is attributable (per-key figures still show each key's gap).
            _ if requires_nothing => totals.clone(),
            Some(filter) => {
                fetch_groups(
                    &session,
                    period,
                    metric,
                    dimension,
                    Some(filter),
                    &mut currency,
                )
                .await?
            }
            None => Vec::new(),
        };
        let mut attribution = attribution_from_groups(judge, &key_groups, &totals, &attributable)?;
        let mut notes = vec![
            "Cost Explorer groups spend by native tag keys as billing records them: a key \
             spelled another way (an alias or another case) counts as missing here"
                .to_string(),
        ];
        let partial: Vec<&str> = judge
            .keys()
            .enumerate()
            .filter(|(i, _)| !judge.applies_to_every_type(*i))
            .map(|(_, k)| k)
            .collect();
        if requires_nothing && !partial.is_empty() {
            notes.push(
                "no required key applies to every resource type, and grouped billing data cannot \
                 tell charges tied to no resource (support, tax, fees) from resource spend: the \
                 overall figure counts them attributable, where resource-level cost files \
                 (--cost) require every key of them"
                    .to_string(),
            );
        }
        if !partial.is_empty() {
            notes.push(format!(
                "{} {} required of some resources only (by type or condition); billing data cannot tell which, so the \
                 overall figure does not require {} and the per-key figure counts all spend",
                partial.join(", "),
                if partial.len() == 1 { "is" } else { "are" },
                if partial.len() == 1 { "it" } else { "them" },
            ));
        }
        let recent = resource_level_period(period);
        let resource_costs = match recent {
            Some(recent) => fetch_resource_costs(&session, recent, metric).await,
            None => Err(OUTSIDE_RESOURCE_LEVEL.to_string()),
        };
        match (resource_costs, recent) {
            (Ok(costs), Some(recent)) => {
                attribution.unattributed =
                    unattributed_resources(judge, &costs, resources, overlay);
                notes.push(format!(
                    "top unattributed resources are EC2 compute over {} to {} (the resource-level \
                     data AWS keeps)",
                    recent.start, recent.end
                ));
            }
            (Err(e), _) => notes.push(format!(
                "resource-level costs are unavailable, so no resources are listed (the figures \
                 above stand): {e}"
            )),
            // Without a period no request is made, so there is nothing to list.
            (Ok(_), None) => {}
        }
        let api_calls = session.counter.attempts();
        Ok(ExplorerGap {
            attribution,
            currency: currency.unwrap_or_else(|| "USD".to_string()),
            period,
            metric,
            report: CostReport {
                source: self.describe(),
                complete: true,
                api_calls,
                notes,
                ..CostReport::default()
            },
        })
    }
}

#[async_trait]
impl CostProvider for CostExplorer {
    fn describe(&self) -> String {
        "AWS Cost Explorer".to_string()
    }

    fn metrics(&self) -> &'static [CostMetric] {
        METRICS
    }

    /// Cost Explorer's figures for past days settle within a day.
    fn version(&self) -> String {
        format!("cost-explorer:{}", Utc::now().date_naive())
    }

    /// Daily usage per service and account and per value of each of `tag_keys` (see
    /// `explorer::daily`): 1 + `tag_keys` requests, plus extra pages.
    async fn daily_costs(
        &self,
        query: &CostQuery,
        tag_keys: &[String],
        _resources: &[Resource],
    ) -> Result<super::daily::DailyCosts, CostError> {
        let metric = choose_metric(METRICS, query.metric, "AWS Cost Explorer")?;
        let today = Utc::now().date_naive();
        let period = daily::daily_period(query.period, today);
        check_period(period, today)?;
        let session = self.session().await;
        let costs = daily::daily_costs(&session, period, metric, tag_keys, self.describe()).await;
        costs.map_err(|e| match e {
            CostError::Unavailable(m) => CostError::Unavailable(format!(
                "{m} ({} Cost Explorer request(s) made)",
                session.counter.attempts()
            )),
            other => other,
        })
    }

    /// Resource-level costs (EC2 compute, the last 14 days of the period): what AWS keeps.
    async fn line_costs(
        &self,
        query: &CostQuery,
        resources: &[Resource],
    ) -> Result<LineCosts, CostError> {
        let metric = choose_metric(METRICS, query.metric, "AWS Cost Explorer")?;
        let period = resource_level_period(
            query
                .period
                .unwrap_or_else(|| super::demo::default_period(Utc::now().date_naive())),
        )
        .ok_or_else(|| {
            CostError::Unavailable(format!("resource-level costs: {OUTSIDE_RESOURCE_LEVEL}"))
        })?;
        let session = self.session().await;
        let costs = fetch_resource_costs(&session, period, metric).await;
        let api_calls = session.counter.attempts();
        let costs = costs.map_err(|e| {
            CostError::Unavailable(format!("{e} ({api_calls} Cost Explorer request(s) made)"))
        })?;
        let costs = LineCosts {
            lines: resource_lines(costs, resources),
            currency: "USD".to_string(),
            period,
            metric,
            report: CostReport {
                source: self.describe(),
                complete: true,
                api_calls,
                notes: vec![format!(
                    "resource-level costs are EC2 compute only, {} to {} (what AWS keeps)",
                    period.start, period.end
                )],
                ..CostReport::default()
            },
        };
        costs.check_sums()?;
        Ok(costs)
    }
}

/// Resource-level spend (billing id, amount) as cost lines, joined to the inventory where it
/// holds the resource. `NoResourceId` spend is a line tied to no resource (an empty id), which
/// attribution judges as shared cost, not as a resource of unknown type; a resource the
/// inventory lacks is an EC2 instance (the only spend AWS keeps by resource), as in the list of
/// unattributed resources, so rules for that type apply to it.
fn resource_lines(costs: Vec<(String, Micros)>, resources: &[Resource]) -> Vec<CostLine> {
    let index = ResourceIndex::new(resources);
    costs
        .into_iter()
        .map(|(id, amount)| {
            let id = if id == NO_RESOURCE_ID {
                String::new()
            } else {
                id
            };
            let resource = index.find(&id).filter(|_| !id.is_empty());
            let resource_type = match resource {
                Some(r) => r.resource_type.clone(),
                None if id.is_empty() => arcstr::ArcStr::new(),
                None => "ec2:instance".into(),
            };
            CostLine {
                resource_id: resource.map(|r| r.id.clone()).unwrap_or_else(|| id.into()),
                provider: Provider::Aws,
                account: resource.map(|r| r.account.clone()).unwrap_or_default(),
                region: resource.map(|r| r.region.clone()).unwrap_or_default(),
                service: RESOURCE_LEVEL_SERVICE.into(),
                resource_type,
                name: resource.map(|r| r.name.clone()).unwrap_or_default(),
                tags: resource.map(|r| r.tags.clone()).unwrap_or_default(),
                amount,
            }
        })
        .collect()
}

/// The part of `period` AWS keeps resource-level data for: the last 14 days up to today. None
/// when the period lies wholly before them.
fn resource_level_period(period: Period) -> Option<Period> {
    let today = Utc::now().date_naive();
    let end = period.end.min(today + Duration::days(1));
    let start = period
        .start
        .max(today - Duration::days(RESOURCE_LEVEL_DAYS));
    (start < end).then_some(Period { start, end })
}

const OUTSIDE_RESOURCE_LEVEL: &str = "the period ends before the last 14 days, the only days AWS \
    keeps resource-level costs for";

fn group_definition(group_by: &GroupBy) -> Result<GroupDefinition, CostError> {
    let dimension = |d: Dimension| {
        GroupDefinition::builder()
            .r#type(GroupDefinitionType::Dimension)
            .key(d.as_str())
            .build()
    };
    Ok(match group_by {
        GroupBy::Service => dimension(Dimension::Service),
        GroupBy::Region => dimension(Dimension::Region),
        GroupBy::Account => dimension(Dimension::LinkedAccount),
        GroupBy::Tag(key) => GroupDefinition::builder()
            .r#type(GroupDefinitionType::Tag)
            .key(key)
            .build(),
        GroupBy::ResourceType | GroupBy::Provider => {
            return Err(CostError::Invalid(
                "argument `group_by`: Cost Explorer cannot group spend by resource type or \
                 provider; use service, region, account or a tag key (or give FOCUS cost files \
                 with --cost for resource-level data)"
                    .into(),
            ));
        }
    })
}

fn interval(period: Period) -> Result<DateInterval, CostError> {
    DateInterval::builder()
        .start(period.start.to_string())
        .end(period.end.to_string())
        .build()
        .map_err(|e| CostError::Invalid(format!("bad time period: {e}")))
}

/// Spend per group key over every page and month of the answer, in the order AWS gives them.
async fn fetch_groups(
    session: &Session,
    period: Period,
    metric: CostMetric,
    group: GroupDefinition,
    filter: Option<Expression>,
    currency: &mut Option<String>,
) -> Result<Vec<(String, Micros)>, CostError> {
    let tag_prefix = match group.r#type() {
        Some(GroupDefinitionType::Tag) => group.key().map(|k| format!("{k}$")),
        _ => None,
    };
    let mut sums: Vec<(String, Micros)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let answer = session
            .client
            .get_cost_and_usage()
            .time_period(interval(period)?)
            .granularity(Granularity::Monthly)
            .metrics(metric.as_str())
            .group_by(group.clone())
            .set_filter(filter.clone())
            .set_next_page_token(token.take())
            .send()
            .await
            .map_err(|e| {
                CostError::Unavailable(summarise_sdk_error(
                    "Cost Explorer GetCostAndUsage",
                    "us-east-1",
                    &e,
                ))
            })?;
        add_groups(
            answer.results_by_time(),
            metric,
            tag_prefix.as_deref(),
            &mut sums,
            currency,
        )?;
        match answer.next_page_token().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(sums),
        }
    }
}

/// One metric's amount in micro-units, checking that every amount of an answer is in one
/// currency (the first unit seen is kept in `currency`). `whose` names the group in errors.
fn metric_amount(
    value: &MetricValue,
    currency: &mut Option<String>,
    whose: &str,
) -> Result<Micros, CostError> {
    let text = value.amount().unwrap_or("0");
    let amount = parse_micros(text).ok_or_else(|| {
        CostError::Unavailable(format!(
            "Cost Explorer returned an amount that is not a number ({text:?}) {whose}"
        ))
    })?;
    if let Some(unit) = value.unit().filter(|u| !u.is_empty()) {
        match currency {
            None => *currency = Some(unit.to_string()),
            Some(c) if c != unit => {
                return Err(CostError::Unavailable(format!(
                    "Cost Explorer returned amounts in both {c} and {unit}; its figures are \
                     summed in one currency"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(amount)
}

/// Adds each group's amount (a TAG group's key is `Key$value`: the value is kept) to `sums`.
fn add_groups(
    results: &[ResultByTime],
    metric: CostMetric,
    tag_prefix: Option<&str>,
    sums: &mut Vec<(String, Micros)>,
    currency: &mut Option<String>,
) -> Result<(), CostError> {
    // Position of each label in `sums` (resource-level answers have thousands of groups per
    // day, so a linear search per group would be quadratic).
    let mut at: rustc_hash::FxHashMap<String, usize> = sums
        .iter()
        .enumerate()
        .map(|(i, (label, _))| (label.clone(), i))
        .collect();
    for result in results {
        for group in result.groups() {
            let raw = group.keys().first().map(String::as_str).unwrap_or("");
            let label = match tag_prefix {
                Some(prefix) => raw.strip_prefix(prefix).unwrap_or(raw),
                None => raw,
            };
            let Some(value) = group.metrics().and_then(|m| m.get(metric.as_str())) else {
                continue;
            };
            let amount = metric_amount(value, currency, &format!("for {raw}"))?;
            match at.get(label) {
                Some(&i) => {
                    sums[i].1 = sums[i].1.checked_add(amount).ok_or_else(|| {
                        CostError::TooLarge(format!(
                            "AWS Cost Explorer's amounts for {raw} add up beyond {}, the \
                             largest total kept exactly",
                            super::money::format_amount(super::money::MAX_MICROS)
                        ))
                    })?;
                }
                None => {
                    at.insert(label.to_string(), sums.len());
                    sums.push((label.to_string(), amount));
                }
            }
        }
    }
    Ok(())
}

/// Per required key, the values billing saw that make spend attributable.
fn valid_values(judge: &KeyJudge<'_>, key_groups: &[Vec<(String, Micros)>]) -> Vec<Vec<String>> {
    let policy = judge.policy();
    judge
        .keys()
        .enumerate()
        .map(|(i, key)| {
            key_groups[i]
                .iter()
                .filter(|(value, _)| {
                    let canonical = policy
                        .effective_tags(&[(key, value.as_str())])
                        .remove(key)
                        .unwrap_or_else(|| value.clone());
                    judge.value_is_valid(i, &canonical)
                })
                .map(|(value, _)| value.clone())
                .collect()
        })
        .collect()
}

/// True when no required key applies to every resource: billing data cannot tell where the
/// others apply, so the overall figure requires none of them.
fn overall_requires_nothing(judge: &KeyJudge<'_>) -> bool {
    !(0..judge.len()).any(|i| judge.applies_to_every_type(i))
}

/// Spend whose every required key has one of its valid values; None when some key has none
/// (then nothing is attributable, and no request is needed). Keys required of some types only
/// are left out: billing data carries no resource types to tell where they apply.
fn all_valid_filter(judge: &KeyJudge<'_>, valid: &[Vec<String>]) -> Option<Expression> {
    let every_type: Vec<usize> = (0..judge.len())
        .filter(|i| judge.applies_to_every_type(*i))
        .collect();
    if every_type.is_empty() || every_type.iter().any(|i| valid[*i].is_empty()) {
        return None;
    }
    let keys: Vec<&str> = judge.keys().collect();
    let mut parts: Vec<Expression> = every_type
        .iter()
        .map(|&i| (keys[i], &valid[i]))
        .map(|(key, values)| {
            Expression::builder()
                .tags(
                    TagValues::builder()
                        .key(key)
                        .set_values(Some(values.clone()))
                        .match_options(MatchOption::Equals)
                        .build(),
                )
                .build()
        })
        .collect();
    // `And` takes two or more expressions.
    if parts.len() == 1 {
        parts.pop()
    } else {
        Some(Expression::builder().set_and(Some(parts)).build())
    }
}

/// The attribution from Cost Explorer's groupings (pure). Per key: spend on valid values is
/// attributable, the rest of the total is not. Overall and per group: the filtered grouping
/// is attributable, the rest of each group's total is not. Parts add up by construction.
/// Refused (`TooLarge`) when the groupings' amounts are too large to sum exactly.
pub(crate) fn attribution_from_groups(
    judge: &KeyJudge<'_>,
    key_groups: &[Vec<(String, Micros)>],
    totals: &[(String, Micros)],
    attributable: &[(String, Micros)],
) -> Result<Attribution, CostError> {
    // Every figure below is a sum, or a difference of sums, of these amounts: bounding their
    // magnitude together makes all of them exact.
    Magnitude::of(
        key_groups
            .iter()
            .map(Vec::as_slice)
            .chain([totals, attributable])
            .flat_map(|groups| groups.iter().map(|(_, a)| *a)),
    )
    .map_err(|e| CostError::TooLarge(format!("AWS Cost Explorer's figures: {e}")))?;
    let total: Micros = totals.iter().map(|(_, a)| a).sum();
    let valid = valid_values(judge, key_groups);
    let by_key = judge
        .keys()
        .enumerate()
        .map(|(i, key)| {
            let ok: Micros = key_groups[i]
                .iter()
                .filter(|(v, _)| valid[i].contains(v))
                .map(|(_, a)| a)
                .sum();
            (
                key.to_string(),
                Split {
                    attributable: ok,
                    unattributable: total - ok,
                },
            )
        })
        .collect();
    let mut groups: BTreeMap<&str, Split> = BTreeMap::new();
    for (label, amount) in totals {
        groups.entry(label).or_default().unattributable += amount;
    }
    for (label, amount) in attributable {
        let split = groups.entry(label).or_default();
        split.attributable += amount;
        split.unattributable -= amount;
    }
    let overall = Split {
        attributable: attributable.iter().map(|(_, a)| a).sum(),
        unattributable: total - attributable.iter().map(|(_, a)| a).sum::<Micros>(),
    };
    let mut groups: Vec<GroupSplit> = groups
        .into_iter()
        .map(|(label, split)| GroupSplit {
            group: if label.is_empty() {
                "(none)".to_string()
            } else {
                label.to_string()
            },
            split,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.split
            .unattributable
            .cmp(&a.split.unattributable)
            .then_with(|| a.group.cmp(&b.group))
    });
    Ok(Attribution {
        overall,
        by_key,
        by_provider: vec![GroupSplit {
            group: "aws".to_string(),
            split: overall,
        }],
        groups,
        unattributed: Vec::new(),
        without_resource: Split::default(),
        lines: 0,
        resources: 0,
        resources_in_inventory: 0,
    })
}

/// Resource-level EC2 compute costs, per resource id as billing writes it (`i-0abc...`).
async fn fetch_resource_costs(
    session: &Session,
    period: Period,
    metric: CostMetric,
) -> Result<Vec<(String, Micros)>, String> {
    let group = GroupDefinition::builder()
        .r#type(GroupDefinitionType::Dimension)
        .key(Dimension::ResourceId.as_str())
        .build();
    let filter = Expression::builder()
        .dimensions(
            DimensionValues::builder()
                .key(Dimension::Service)
                .values(RESOURCE_LEVEL_SERVICE)
                .build(),
        )
        .build();
    let mut sums = Vec::new();
    let mut currency = None;
    let mut token: Option<String> = None;
    loop {
        // One attempt: the list is optional, and a refusal (not enabled) is not worth retrying.
        let answer = session
            .client
            .get_cost_and_usage_with_resources()
            .time_period(interval(period).map_err(|e| e.to_string())?)
            .granularity(Granularity::Daily)
            .metrics(metric.as_str())
            .group_by(group.clone())
            .filter(filter.clone())
            .set_next_page_token(token.take())
            .customize()
            .config_override(
                aws_sdk_costexplorer::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(1)),
            )
            .send()
            .await
            .map_err(|e| {
                summarise_sdk_error(
                    "Cost Explorer GetCostAndUsageWithResources",
                    "us-east-1",
                    &e,
                )
            })?;
        add_groups(
            answer.results_by_time(),
            metric,
            None,
            &mut sums,
            &mut currency,
        )
        .map_err(|e| e.to_string())?;
        match answer.next_page_token().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(sums),
        }
    }
}

/// The resource-level costs that are not attributable, most costly first. Resources the
/// inventory does not hold are listed with every key missing (billing knows no tags for them
/// here).
fn unattributed_resources(
    judge: &KeyJudge<'_>,
    costs: &[(String, Micros)],
    resources: &[Resource],
    overlay: &(dyn Fn(&str, &mut BTreeMap<String, String>) + Sync),
) -> Vec<Unattributed> {
    let index = ResourceIndex::new(resources);
    let keys: Vec<&str> = judge.keys().collect();
    let mut out: Vec<Unattributed> = costs
        .iter()
        .filter(|(id, _)| !id.is_empty() && id != NO_RESOURCE_ID)
        .filter_map(|(id, amount)| {
            let resource = index.find(id);
            let tags: Tags = resource.map(|r| r.tags.clone()).unwrap_or_default();
            let mut effective = judge.policy().effective_tags(&tags);
            let resource_id: CompactString =
                resource.map(|r| r.id.clone()).unwrap_or_else(|| id.into());
            overlay(&resource_id, &mut effective);
            let resource_type = resource
                .map(|r| r.resource_type.clone())
                .unwrap_or_else(|| "ec2:instance".into());
            let problems: Vec<(String, super::attribution::KeyProblem)> = judge
                .problems(&resource_type, &effective)
                .into_iter()
                .enumerate()
                .filter_map(|(i, p)| p.map(|p| (keys[i].to_string(), p)))
                .collect();
            (!problems.is_empty()).then(|| Unattributed {
                resource_id,
                provider: Provider::Aws,
                resource_type,
                name: resource.map(|r| r.name.clone()).unwrap_or_default(),
                account: resource.map(|r| r.account.clone()).unwrap_or_default(),
                region: resource.map(|r| r.region.clone()).unwrap_or_default(),
                services: vec![RESOURCE_LEVEL_SERVICE.into()],
                cost: *amount,
                problems,
                in_inventory: resource.is_some(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.cost
            .cmp(&a.cost)
            .then_with(|| a.resource_id.cmp(&b.resource_id))
    });
    out
}

/// Checks a period for Cost Explorer: it keeps 14 months (38 for monthly data when enabled).
pub(crate) fn check_period(period: Period, today: NaiveDate) -> Result<(), CostError> {
    if period.start < today - Duration::days(14 * 31) {
        return Err(CostError::Invalid(format!(
            "argument `time_period`: Cost Explorer keeps about 14 months of data; start on or \
             after {}",
            today - Duration::days(14 * 31)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_policy;

    fn policy() -> crate::policy::Policy {
        parse_policy(
            r#"{"value_aliases":{"env":{"production":["prod"]}},
                "required_tags":[
                  {"name":"team","allowed_values":["payments","search"]},
                  {"name":"env","allowed_values":["production","dev"]}]}"#,
        )
        .unwrap()
    }

    fn g(items: &[(&str, Micros)]) -> Vec<(String, Micros)> {
        items.iter().map(|(l, a)| (l.to_string(), *a)).collect()
    }

    #[test]
    fn groups_give_exact_splits_that_add_up() {
        let p = policy();
        let judge = KeyJudge::new(&p);
        let key_groups = vec![
            g(&[("payments", 50), ("", 30), ("Payments", 20)]),
            g(&[("prod", 60), ("dev", 10), ("", 30)]),
        ];
        let totals = g(&[("Amazon EC2", 70), ("Amazon S3", 30)]);
        let attributable = g(&[("Amazon EC2", 40)]);
        let a = attribution_from_groups(&judge, &key_groups, &totals, &attributable).unwrap();
        assert_eq!(
            a.overall,
            Split {
                attributable: 40,
                unattributable: 60
            }
        );
        assert_eq!(
            a.by_key[0],
            (
                "team".into(),
                Split {
                    attributable: 50,
                    unattributable: 50
                }
            )
        );
        // `prod` is a value alias of `production`: valid.
        assert_eq!(
            a.by_key[1],
            (
                "env".into(),
                Split {
                    attributable: 70,
                    unattributable: 30
                }
            )
        );
        assert_eq!(a.groups[0].group, "Amazon EC2");
        assert_eq!(
            a.groups[0].split,
            Split {
                attributable: 40,
                unattributable: 30
            }
        );
        assert_eq!(
            a.groups[1].split,
            Split {
                attributable: 0,
                unattributable: 30
            }
        );
        let sum: Micros = a.groups.iter().map(|g| g.split.total()).sum();
        assert_eq!(sum, 100);
    }

    /// Issue 12: sums of large amounts wrapped to wrong figures. Each grouping alone may fit
    /// while figures mixing them (total - attributable) do not: all are bounded together.
    #[test]
    fn figures_too_large_to_sum_are_refused() {
        let p = policy();
        let judge = KeyJudge::new(&p);
        let big = 5_000_000_000_000_000_000;
        let key_groups = vec![g(&[("payments", big)]), g(&[("prod", big)])];
        let totals = g(&[("Amazon EC2", big)]);
        let err = attribution_from_groups(&judge, &key_groups, &totals, &totals).unwrap_err();
        assert!(matches!(err, CostError::TooLarge(_)), "{err}");
        assert!(err.to_string().contains("Cost Explorer"), "{err}");
        let small = vec![g(&[("payments", 1)]), g(&[("prod", 1)])];
        assert!(attribution_from_groups(&judge, &small, &g(&[("x", 1)]), &[]).is_ok());

        // Pages and months of one answer are summed checked.
        use aws_sdk_costexplorer::types::{Group, MetricValue};
        let result = |amount: &str| {
            ResultByTime::builder()
                .groups(
                    Group::builder()
                        .keys("Amazon EC2")
                        .metrics(
                            "UnblendedCost",
                            MetricValue::builder().amount(amount).unit("USD").build(),
                        )
                        .build(),
                )
                .build()
        };
        let mut sums = Vec::new();
        let mut currency = None;
        let month = [result("9000000000000")];
        add_groups(
            &month,
            CostMetric::UnblendedCost,
            None,
            &mut sums,
            &mut currency,
        )
        .unwrap();
        let err = add_groups(
            &month,
            CostMetric::UnblendedCost,
            None,
            &mut sums,
            &mut currency,
        )
        .unwrap_err();
        assert!(matches!(err, CostError::TooLarge(_)), "{err}");
        assert_eq!(sums, g(&[("Amazon EC2", 9_000_000_000_000_000_000)]));
    }

    /// Issue 12: billing's `NoResourceId` spend was a "resource" of no type, attributable
    /// whenever every rule names types. It is a charge tied to no resource now.
    #[test]
    fn spend_without_a_resource_id_is_a_resource_less_line() {
        let p = parse_policy(
            r#"{"required_tags": [{"name": "team", "applies_to": ["ec2:instance"]}]}"#,
        )
        .unwrap();
        let lines = resource_lines(g(&[(NO_RESOURCE_ID, 7), ("i-0unknown", 5)]), &[]);
        assert_eq!(lines[0].resource_id, "");
        assert_eq!(lines[0].resource_type, "");
        assert_eq!(lines[1].resource_id, "i-0unknown");
        assert_eq!(lines[1].resource_type, "ec2:instance");
        let judge = KeyJudge::new(&p);
        let a = crate::cost::attribution::attribute(&crate::cost::attribution::AttributionInput {
            judge: &judge,
            lines: &lines,
            resources: &[],
            filter: &crate::compliance::ResourceFilter::default(),
            group_by: &GroupBy::Service,
            overlay: &|_, _| {},
        });
        assert_eq!(
            a.without_resource,
            Split {
                attributable: 0,
                unattributable: 7
            }
        );
        assert_eq!(
            a.overall,
            Split {
                attributable: 0,
                unattributable: 7 + 5
            }
        );
    }

    #[test]
    fn the_filter_lists_valid_values_per_key() {
        let p = policy();
        let judge = KeyJudge::new(&p);
        let key_groups = vec![g(&[("payments", 1), ("", 1), ("x", 1)]), g(&[("prod", 1)])];
        let valid = valid_values(&judge, &key_groups);
        assert_eq!(
            valid,
            vec![vec!["payments".to_string()], vec!["prod".to_string()]]
        );
        let filter = all_valid_filter(&judge, &valid).unwrap();
        assert_eq!(filter.and().len(), 2);
        assert_eq!(filter.and()[0].tags().unwrap().key(), Some("team"));
        // A key without any valid value: nothing is attributable, no request.
        let none = valid_values(&judge, &[g(&[("", 1)]), g(&[("prod", 1)])]);
        assert!(all_valid_filter(&judge, &none).is_none());
    }

    #[test]
    fn keys_of_some_types_only_require_nothing_overall() {
        // Regression: such a policy reported 0 attributable (a 100% gap).
        let p = parse_policy(r#"{"required_tags": [{"name": "team", "applies_to": ["ec2:*"]}]}"#)
            .unwrap();
        assert!(overall_requires_nothing(&KeyJudge::new(&p)));
        assert!(!overall_requires_nothing(&KeyJudge::new(&policy())));
    }

    #[test]
    fn billing_ids_find_inventory_resources() {
        let estate = crate::inventory::demo::generate(42, 200);
        let mut resources = estate.resources;
        crate::inventory::sort_and_dedupe(&mut resources);
        let instance = resources
            .iter()
            .find(|r| r.resource_type == "ec2:instance")
            .unwrap();
        let short = instance.id.rsplit('/').next().unwrap();
        let index = ResourceIndex::new(&resources);
        assert_eq!(index.find(short).map(|r| &r.id), Some(&instance.id));
        assert_eq!(index.find(&instance.id).map(|r| &r.id), Some(&instance.id));
        assert!(index.find("i-nothere").is_none());
    }

    #[test]
    fn resource_level_period_is_the_last_14_days_at_most() {
        let today = Utc::now().date_naive();
        let p = resource_level_period(Period {
            start: today - Duration::days(60),
            end: today,
        })
        .unwrap();
        assert_eq!(p.days(), 14);
        assert_eq!(p.end, today);
        let short = resource_level_period(Period {
            start: today - Duration::days(3),
            end: today,
        })
        .unwrap();
        assert_eq!(short.days(), 3);
        // A period wholly before the window makes no request.
        let old = resource_level_period(Period {
            start: today - Duration::days(90),
            end: today - Duration::days(60),
        });
        assert_eq!(old, None);
    }
}
