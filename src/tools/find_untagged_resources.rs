//! `find_untagged_resources`: resources missing given tag keys (or the required keys that apply
//! to them), so they can be fixed or given virtual tags.

use serde_json::Value;
use std::collections::BTreeMap;

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::quality::DataQuality;
use crate::service::paging::Paging;
use crate::app::costs::{Amount, CostQuality, amount};
use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::inventory::Resource;
use crate::policy::{EvaluationRef, Policy, View, ViolationKind};
use crate::service::scope::{ScopeArgs, ScopeDocs};

pub(crate) struct FindUntaggedResources;

fn default_limit() -> u32 {
    50
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Keys that must be present, e.g. `["CostCenter", "Owner"]` (any key, governed by the
    /// policy or not). Default: the policy's required keys that apply to each resource (a
    /// conditional key only where its condition holds).
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub tag_keys: Vec<String>,
    #[serde(flatten)]
    pub scope: ScopeArgs<UntaggedDocs>,
    /// `effective` (default): a key present under an alias or another case counts as present.
    /// `native`: only the exact key counts.
    #[serde(default)]
    pub view: View,
    /// Count a key with an empty value as missing (default true).
    #[serde(default = "default_true")]
    pub include_empty: bool,
    /// Only resources with no user tags at all (`aws:` keys aside).
    #[serde(default)]
    pub only_without_any_tags: bool,
    /// Only resources that cost at least this much over the cost period (in the costs'
    /// currency); needs a cost source.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub min_cost: Option<f64>,
    /// Rescan the source instead of using the cached inventory.
    #[serde(default)]
    pub force_refresh: bool,
    #[serde(default = "default_limit")]
    #[schemars(range(min = 0, max = 500))]
    pub limit: u32,
    /// `next_cursor` from a previous answer to the same question.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub cursor: Option<String>,
}

/// The descriptions of the scope arguments in this tool's schema.
pub(crate) struct UntaggedDocs;

impl ScopeDocs for UntaggedDocs {
    const RESOURCE_TYPES: Option<&'static str> = Some(
        "Only resources whose canonical type matches one of these patterns (`ec2:*`, `s3:bucket`).",
    );
    const REGIONS: Option<&'static str> = None;
    const ACCOUNTS: Option<&'static str> = None;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct UntaggedResource {
    pub resource_id: String,
    pub resource_type: String,
    pub name: String,
    pub region: String,
    pub account: String,
    pub missing_keys: Vec<String>,
    /// User tags present (`aws:` keys not counted).
    pub user_tag_count: usize,
    /// What it cost over the cost period, when costs are known (null: no cost recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Amount>,
}

/// The cost of what was found, when a cost source is configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct FoundSpend {
    pub currency: String,
    pub period: crate::cost::Period,
    /// Spend of every resource found (all pages).
    pub total_cost: Amount,
    pub cost_quality: CostQuality,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    /// Resources missing at least one key (exact; `resources` is a page).
    pub total: usize,
    /// Resources examined (after the type/region/account filters).
    pub examined: usize,
    /// Resources missing each key.
    pub by_missing_key: BTreeMap<String, usize>,
    pub by_type: BTreeMap<String, usize>,
    /// Most costly first when costs are known, else most missing keys first; then by id.
    pub resources: Vec<UntaggedResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<FoundSpend>,
    /// Why costs are missing although a cost source is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_unavailable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub view: View,
    pub data_quality: DataQuality,
}

impl Tool for FindUntaggedResources {
    const NAME: &'static str = "find_untagged_resources";
    const TITLE: &'static str = "Find untagged resources";
    const DESCRIPTION: &'static str = "Lists resources that lack tag keys: by default the policy's required keys that \
apply to each resource, or the keys you name in tag_keys (any key). Each result gives the resource id, type, \
name, region, account and exactly which keys are missing; totals per missing key and per type are exact. \
Use it for 'which resources have no CostCenter?' or 'what is completely untagged in eu-west-1?' \
(only_without_any_tags). view=effective (default) counts a key present under an alias or another case as \
present; view=native demands the exact key. When costs are known each result carries its cost, results are \
ordered most costly first and min_cost keeps only resources costing at least that much; otherwise they are \
ordered by number of missing keys. Page with next_cursor.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    fn caches_answer(_args: &serde_json::Value) -> bool {
        true
    }

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    fn example() -> Value {
        serde_json::json!({"limit": 3, "tag_keys": ["CostCenter"]})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"view": "sideways"}), "view")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let estate = call.estate(args.force_refresh).await?;
        let policy = estate.policy();
        let filter = args.scope.filter_in(&estate.inventory.accounts);
        let resources = &estate.inventory.resources;
        let evaluations = &estate.evaluated.evaluations;

        let mut examined = 0;
        let mut found: Vec<(usize, Vec<String>)> = Vec::new();
        for (index, (r, e)) in resources.iter().zip(evaluations.iter()).enumerate() {
            if !filter.matches(r) {
                continue;
            }
            examined += 1;
            let without_tags = user_tag_count(r) == 0;
            if args.only_without_any_tags && !without_tags {
                continue;
            }
            let missing = if args.tag_keys.is_empty() {
                missing_required(policy, e, args.view, args.include_empty)
            } else {
                // The effective view reads approved virtual tags too.
                let tags = match args.view {
                    View::Effective => estate.evaluated.effective_input(index, &r.tags),
                    View::Native => &r.tags,
                };
                missing_named(policy, tags, &args.tag_keys, args.view, args.include_empty)
            };
            // A resource with no tags at all is what only_without_any_tags asks for, even when
            // the policy requires nothing of its type.
            if missing.is_empty() && !args.only_without_any_tags {
                continue;
            }
            found.push((index, missing));
        }
        let (costs, spend_unavailable) =
            match call.resource_costs(&estate, args.force_refresh).await {
                Ok(costs) => (costs, None),
                Err(why) => (None, Some(why)),
            };
        let cost_of = |index: usize| costs.as_ref().and_then(|c| c.of(&resources[index].id));
        if let Some(min) = args.min_cost {
            if costs.is_none() {
                return Err(ToolError::invalid(format!(
                    "argument `min_cost` needs cost data: {}",
                    spend_unavailable.as_deref().unwrap_or(
                        "no cost source is configured (--cost FILE, --cost-explorer or --demo)"
                    )
                )));
            }
            let min = crate::cost::parse_micros(&min.to_string()).unwrap_or(i64::MAX);
            found.retain(|(index, _)| cost_of(*index).unwrap_or(0) >= min);
        }
        if costs.is_some() {
            // Most costly first; resources without a cost last.
            found.sort_by(|a, b| {
                cost_of(b.0)
                    .cmp(&cost_of(a.0))
                    .then(b.1.len().cmp(&a.1.len()))
                    .then(a.0.cmp(&b.0))
            });
        } else {
            // Most missing first; inventory order (resource id) breaks ties.
            found.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        }
        let spend = costs.as_ref().map(|c| FoundSpend {
            currency: c.costs.currency.clone(),
            period: c.costs.period,
            total_cost: amount(found.iter().filter_map(|(i, _)| cost_of(*i)).sum()),
            cost_quality: c.quality.clone(),
        });

        let mut by_missing_key: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for (index, missing) in &found {
            for k in missing {
                *by_missing_key.entry(k.clone()).or_default() += 1;
            }
            *by_type
                .entry(resources[*index].resource_type.to_string())
                .or_default() += 1;
        }
        let question = serde_json::json!({
            "tag_keys": args.tag_keys, "resource_types": args.scope.resource_types,
            "regions": args.scope.regions, "accounts": args.scope.accounts, "view": args.view,
            "include_empty": args.include_empty, "only_without_any_tags": args.only_without_any_tags,
            "min_cost": args.min_cost,
            // The order follows costs when they are known: new costs, new pages.
            "costs": call.costs_version(),
        });
        let paging = Paging::new(Self::NAME, &question, &estate);
        let offset = paging.offset(args.cursor.as_deref())?;
        let page: Vec<UntaggedResource> = found
            .iter()
            .skip(offset)
            .take(args.limit as usize)
            .map(|(index, missing)| {
                let r = &resources[*index];
                UntaggedResource {
                    resource_id: r.id.to_string(),
                    resource_type: r.resource_type.to_string(),
                    name: r.name.to_string(),
                    region: r.region.to_string(),
                    account: r.account.to_string(),
                    missing_keys: missing.clone(),
                    user_tag_count: user_tag_count(r),
                    cost: cost_of(*index).map(amount),
                }
            })
            .collect();
        Ok(Output {
            total: found.len(),
            examined,
            by_missing_key,
            by_type,
            next_cursor: paging.next(offset, page.len(), found.len()),
            resources: page,
            spend,
            spend_unavailable,
            view: args.view,
            data_quality: call.data_quality(&estate),
        })
    }
}

fn user_tag_count(r: &Resource) -> usize {
    r.tags
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .count()
}

/// Required keys reported missing (or empty) by the evaluation in this view.
fn missing_required(
    policy: &Policy,
    e: EvaluationRef<'_>,
    view: View,
    include_empty: bool,
) -> Vec<String> {
    let mut keys: Vec<String> = e
        .violations(view)
        .iter()
        .filter(|v| match v.kind {
            ViolationKind::MissingRequiredTag | ViolationKind::ConditionalRequirement => true,
            ViolationKind::EmptyValue => include_empty,
            _ => false,
        })
        .map(|v| policy.key_name(v.key).to_string())
        .collect();
    keys.dedup();
    keys
}

fn missing_named(
    policy: &Policy,
    tags: &crate::inventory::Tags,
    keys: &[String],
    view: View,
    include_empty: bool,
) -> Vec<String> {
    keys.iter()
        .filter(|k| match policy.value_of(tags, k, view) {
            None => true,
            Some(v) => include_empty && v.trim().is_empty(),
        })
        .cloned()
        .collect()
}
