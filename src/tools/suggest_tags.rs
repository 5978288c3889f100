//! `suggest_tags`: likely values for a resource's missing or invalid required keys, each with a
//! calibrated confidence, its evidence and one line of reasoning; optionally proposes the
//! confident ones as pending virtual tags for review (never approved automatically).

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::quality::DataQuality;
use super::{Call, Principal, Role, Tool, ToolError, own_store_annotations};
use crate::service::suggestions::SuggestionInputs;
use crate::service::virtual_tags::{ResourceSelector, require_store, select};
use crate::store::virtual_tags::{NewVirtualTag, TagSource, TagStatus};
use crate::suggest::{Band, KeySuggestion};

pub(crate) struct SuggestTags;

/// Most resources one call suggests for.
const MAX_RESOURCES: usize = 1000;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Resources to suggest for (at most 1,000). Or use `filter`.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub resource_ids: Vec<String>,
    /// Resources chosen by type, region, account, name and tags (at most 1,000 may match).
    #[serde(default)]
    pub filter: Option<ResourceSelector>,
    /// Only these keys (default: every required key that is missing or invalid).
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub keys: Vec<String>,
    /// Store each best suggestion at or above 0.9 confidence as a *pending* virtual tag, for
    /// review with review_virtual_tags (never approved automatically).
    #[serde(default)]
    pub propose: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ResourceSuggestions {
    pub resource_id: String,
    pub resource_type: String,
    pub name: String,
    pub suggestions: Vec<KeySuggestion>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct BandCounts {
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    /// Keys with no candidate at all.
    pub none: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub resources: Vec<ResourceSuggestions>,
    /// Ids given that are not in the inventory.
    pub not_found: Vec<String>,
    /// Keys needing a value, by the band of their best candidate (high ≥ 0.9: may be proposed;
    /// medium 0.7–0.9: suggestions; low < 0.7: options only).
    pub by_band: BandCounts,
    /// Pending virtual tags stored (propose=true).
    pub proposed: usize,
    pub proposed_ids: Vec<i64>,
    /// Evidence sources whose weight users' decisions have changed (approved, denied).
    pub feedback: std::collections::BTreeMap<String, (u64, u64)>,
    pub data_quality: DataQuality,
}

impl Tool for SuggestTags {
    const NAME: &'static str = "suggest_tags";
    const TITLE: &'static str = "Suggest tag values";
    const DESCRIPTION: &'static str = "Suggests values for the required tags a resource lacks or carries invalid values \
for — for one resource, a list of ids or a filter (up to 1,000). Each candidate has a confidence in [0,1] \
(calibrated on labelled data: at 0.9 and above at least 9 in 10 are right), a band (high ≥ 0.9, medium 0.7–0.9, \
low < 0.7 = options only), the evidence (name tokens, similar resources in the same stack, VPC, account or name \
prefix, matching rules, the policy's allowed values — never a value the policy would refuse) and one line of \
reasoning. propose=true stores the high-confidence ones as pending virtual tags for review_virtual_tags (never \
approved automatically). Approvals and denials of suggested tags tune how much each evidence source is trusted.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    /// Proposing stores pending virtual tags: an approver's call.
    fn role(args: &Args, _caller: &Principal) -> Role {
        if args.propose { Role::Approver } else { Role::Viewer }
    }

    fn annotations() -> ToolAnnotations {
        // propose=true adds pending rows to Tagwarden's own store; nothing takes effect
        // without a review, and the cloud is never changed.
        own_store_annotations()
    }

    fn example() -> Value {
        serde_json::json!({"filter": {"resource_types": ["ec2:instance"], "tags_missing": ["Owner"]}, "keys": ["Owner"]})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"keys": "Owner"}), "keys")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let estate = call.estate(false).await?;
        let (chosen, not_found) = select(
            &estate,
            &args.resource_ids,
            args.filter.as_ref(),
            MAX_RESOURCES,
        )?;
        let inputs = SuggestionInputs::read(call).await?;
        let resources = &estate.inventory.resources;
        // Synchronous work in its own scope: the suggester's closures are not `Send`, so it
        // must be gone before the store is awaited.
        let (out, by_band, proposals) = {
            let suggester = inputs.suggester(call, &estate);
            let mut by_band = BandCounts::default();
            let mut out = Vec::with_capacity(chosen.len());
            let mut proposals = Vec::new();
            for &i in &chosen {
                let r = &resources[i];
                let suggestions = suggester.suggest(i, &args.keys);
                for s in &suggestions {
                    match s.candidates.first() {
                        None => by_band.none += 1,
                        Some(best) => {
                            match best.band {
                                Band::High => by_band.high += 1,
                                Band::Medium => by_band.medium += 1,
                                Band::Low => by_band.low += 1,
                            }
                            if args.propose && best.band == Band::High {
                                proposals.push(NewVirtualTag {
                                    resource_id: r.id.to_string(),
                                    key: s.key.clone(),
                                    value: best.value.clone(),
                                    source: TagSource::Suggestion,
                                    confidence: best.confidence,
                                    status: TagStatus::Pending,
                                    rule_id: None,
                                    reason: best.reasoning.clone(),
                                    override_native: false,
                                    evidence: distinct_sources(best),
                                    created_by: call.actor().to_string(),
                                    created_by_principal: call.principal().id.clone(),
                                });
                            }
                        }
                    }
                }
                out.push(ResourceSuggestions {
                    resource_id: r.id.to_string(),
                    resource_type: r.resource_type.to_string(),
                    name: r.name.to_string(),
                    suggestions,
                });
            }
            (out, by_band, proposals)
        };
        let (proposed, proposed_ids) = if proposals.is_empty() {
            (0, Vec::new())
        } else {
            let store = require_store(call)?;
            let (mut ids, written) = store.add(proposals).await?;
            ids.truncate(1000);
            (written, ids)
        };
        Ok(Output {
            resources: out,
            not_found,
            by_band,
            proposed,
            proposed_ids,
            feedback: inputs.feedback,
            data_quality: call.data_quality(&estate),
        })
    }
}

fn distinct_sources(c: &crate::suggest::Candidate) -> Vec<String> {
    let mut sources: Vec<String> = Vec::new();
    for e in &c.evidence {
        if !sources.contains(&e.source) {
            sources.push(e.source.clone());
        }
    }
    sources
}
