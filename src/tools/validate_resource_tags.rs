//! `validate_resource_tags`: the exact violations of given resources (or of a proposed tag set,
//! before it is applied), with the fix for each.

use arcstr::ArcStr;
use serde_json::Value;
use std::collections::BTreeMap;

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::quality::DataQuality;
use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::inventory::{Tags, normalise_tags};
use crate::policy::{Policy, View, ViolationDetail};

pub(crate) struct ValidateResourceTags;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Resources to validate: ARNs (or provider ids) as listed by the other tools. Up to 100.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub resource_ids: Vec<String>,
    /// Validate a proposed tag set instead of existing resources (key → value); give
    /// `resource_type` too. Nothing is written.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// The canonical type the proposed `tags` are for, e.g. `ec2:instance`.
    #[serde(default)]
    #[schemars(length(max = 128))]
    pub resource_type: Option<String>,
    /// Rescan the source before validating resource_ids.
    #[serde(default)]
    pub force_refresh: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ResourceResult {
    /// The resource id, or `proposed` for a proposed tag set.
    pub resource_id: String,
    pub resource_type: String,
    /// Whether the policy judges this type (a required rule applies to it, or its `scope`).
    pub in_scope: bool,
    /// No effective-view violation at or above the policy's fail_at (true when out of scope).
    pub compliant: bool,
    /// Compliant on native tags.
    pub native_compliant: bool,
    /// Effective-view violations, each with its fix.
    pub violations: Vec<ViolationDetail>,
    /// Native-view violations (adds misnamed keys and unaliased values).
    pub native_violations: Vec<ViolationDetail>,
    /// Tags as the cloud holds them.
    pub native_tags: BTreeMap<String, String>,
    /// Tags after the policy's key and value aliases.
    pub effective_tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub results: Vec<ResourceResult>,
    /// Requested ids that are not in the inventory.
    pub not_found: Vec<String>,
    pub policy_hash: String,
    /// Absent when only a proposed tag set was validated (no scan needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_quality: Option<DataQuality>,
}

impl Tool for ValidateResourceTags {
    const NAME: &'static str = "validate_resource_tags";
    const TITLE: &'static str = "Validate resource tags";
    const DESCRIPTION: &'static str = "Checks specific resources against the tagging policy and returns every \
violation with the smallest fix ('rename tag key env to Environment', 'change CostCenter from cc-1001 to \
CC-1001'), in the effective view (aliases applied) and the native view, plus both tag sets. Pass resource_ids \
(ARNs from the other tools, up to 100), or pass tags with resource_type to check a proposed tag set before \
applying it (nothing is written). Ids not in the inventory are listed in not_found.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    /// Only answers about inventory resources: a proposed tag set alone needs no scan (and is
    /// cheap to check).
    fn caches_answer(args: &serde_json::Value) -> bool {
        args.get("resource_ids")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|ids| !ids.is_empty())
    }

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    fn example() -> Value {
        serde_json::json!({"resource_type": "ec2:instance", "tags": {"Environment": "production"}})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"resource_ids": "not-a-list"}), "resource_ids")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        match (&args.tags, &args.resource_type) {
            (Some(_), None) => {
                return Err(ToolError::invalid(
                    "argument `resource_type` is required with `tags` (e.g. \"ec2:instance\")",
                ));
            }
            (None, Some(_)) => {
                return Err(ToolError::invalid(
                    "argument `tags` is required with `resource_type`",
                ));
            }
            _ => {}
        }
        if args.resource_ids.is_empty() && args.tags.is_none() {
            return Err(ToolError::invalid(
                "give `resource_ids` (ARNs from check_tag_compliance or find_untagged_resources), \
                 or `tags` with `resource_type` to validate a proposed tag set",
            ));
        }
        let mut results = Vec::new();
        let mut not_found = Vec::new();
        let mut data_quality = None;
        let mut policy = call.policy();
        if !args.resource_ids.is_empty() {
            let estate = call.estate(args.force_refresh).await?;
            policy = estate.evaluated.policy.clone();
            let resources = &estate.inventory.resources;
            for id in &args.resource_ids {
                match crate::inventory::index_of(resources, id) {
                    Some(i) => results.push(validate(
                        &policy,
                        id,
                        &resources[i].resource_type,
                        &resources[i].tags,
                        estate.evaluated.combined.get(&(i as u32)),
                    )),
                    None => not_found.push(id.clone()),
                }
            }
            data_quality = Some(call.data_quality(&estate));
        }
        if let (Some(tags), Some(ty)) = (&args.tags, &args.resource_type) {
            let tags: Tags = normalise_tags(
                tags.iter()
                    .map(|(k, v)| (ArcStr::from(k.as_str()), ArcStr::from(v.as_str())))
                    .collect(),
            );
            results.push(validate(&policy, "proposed", ty, &tags, None));
        }
        Ok(Output {
            results,
            not_found,
            policy_hash: policy.hash().to_string(),
            data_quality,
        })
    }
}

/// `with_virtual`: the tags the effective view reads when approved virtual tags take effect on
/// the resource (the native view always reads `tags`).
fn validate(
    policy: &Policy,
    id: &str,
    resource_type: &str,
    tags: &Tags,
    with_virtual: Option<&Tags>,
) -> ResourceResult {
    let native_eval = policy.evaluate(resource_type, tags);
    let effective_tags_in = with_virtual.unwrap_or(tags);
    let e = match with_virtual {
        None => native_eval,
        Some(combined) => {
            let virtual_eval = policy.evaluate(resource_type, combined);
            crate::policy::Evaluation {
                in_scope: native_eval.in_scope,
                effective: virtual_eval.effective,
                native: native_eval.native,
            }
        }
    };
    // A resource no rule applies to has nothing to fail: it passes, with in_scope false.
    let passes = |view: View| {
        !e.violations(view)
            .iter()
            .any(|v| v.severity >= policy.fail_at())
    };
    let render = |view: View| -> Vec<ViolationDetail> {
        let input = match view {
            View::Effective => effective_tags_in,
            View::Native => tags,
        };
        e.violations(view)
            .iter()
            .map(|v| policy.render(id, input, view, v))
            .collect()
    };
    ResourceResult {
        resource_id: id.to_string(),
        resource_type: resource_type.to_string(),
        in_scope: e.in_scope,
        compliant: passes(View::Effective),
        native_compliant: passes(View::Native),
        violations: render(View::Effective),
        native_violations: render(View::Native),
        native_tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        effective_tags: policy.effective_tags(effective_tags_in),
    }
}
