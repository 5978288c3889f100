//! `apply_virtual_tag`: sets a governed virtual tag on resources chosen by ids or a filter, as
//! approved (source manual), after checking the key and value against the policy — or, with
//! `dry_run`, only says what it would change: the compliance score and cost gap before → after.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::quality::DataQuality;
use super::{Call, Principal, Role, Tool, ToolError, own_store_annotations};
use crate::service::virtual_tags::{
    Effect, MAX_RESOURCES, ResourceSelector, check_key_value, effect, require_store, select,
    virtual_value,
};
use crate::store::virtual_tags::{NewVirtualTag, TagSource, TagStatus};

pub(crate) struct ApplyVirtualTag;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Resources to tag (ARNs / provider ids), at most 10,000. Or use `filter`.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub resource_ids: Vec<String>,
    /// Resources to tag, chosen by type, region, account, name (glob or regex) and tags.
    #[serde(default)]
    pub filter: Option<ResourceSelector>,
    /// A key the policy governs (canonical name; an alias is accepted and stored as the
    /// canonical key).
    #[schemars(length(min = 1, max = 128))]
    pub key: String,
    /// The value; must be one the policy allows for the key.
    #[schemars(length(min = 1, max = 256))]
    pub value: String,
    /// Why (kept with the tag and in the audit log), e.g. "payments team confirmed ownership".
    #[schemars(length(min = 3, max = 500))]
    pub reason: String,
    /// Let the virtual tag win over a valid native value of the same key (default false: a
    /// valid native value is never hidden).
    #[serde(default)]
    pub override_native: bool,
    /// Only report what would change; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub dry_run: bool,
    /// The canonical key stored.
    pub key: String,
    pub value: String,
    /// Resources chosen.
    pub matched: usize,
    /// Virtual tags written (0 on a dry run; a resource already carrying the same approved
    /// virtual tag is not written again).
    pub written: usize,
    /// Ids given that are not in the inventory.
    pub not_found: Vec<String>,
    /// Compliance score and cost gap before → after.
    pub effect: Effect,
    /// Ids of the stored tags (first 100).
    pub tag_ids: Vec<i64>,
    pub data_quality: DataQuality,
}

impl Tool for ApplyVirtualTag {
    const NAME: &'static str = "apply_virtual_tag";
    const TITLE: &'static str = "Apply a virtual tag";
    const DESCRIPTION: &'static str = "Sets a virtual tag — a governed tag Tagwarden keeps on top of the cloud's own tags, \
used by compliance and cost attribution at once while the real tags are being fixed — on resources given by \
resource_ids or chosen by a filter (types, regions, accounts, name glob or regex, tags equal / missing), up to \
10,000 per call in one transaction. The key and value are checked against the policy (a value outside the \
allowed values is refused with the allowed list). The tag is approved at once (source manual) and recorded with \
who and why; it never hides a valid native value unless override_native is true. Returns how many resources \
matched and were written and the effect: compliance score and cost gap before → after. Use dry_run=true first \
to see the effect without writing. Nothing in the cloud changes.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    /// A dry run only reads (the effect is computed, nothing stored).
    fn role(args: &Args, _caller: &Principal) -> Role {
        if args.dry_run { Role::Viewer } else { Role::Approver }
    }

    fn annotations() -> ToolAnnotations {
        // Writes to Tagwarden's own store (append-only), never to the cloud.
        own_store_annotations()
    }

    fn example() -> Value {
        serde_json::json!({"filter": {"name_glob": "payments-*"}, "key": "CostCenter", "value": "CC-1234", "reason": "sdk test", "dry_run": true})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"key": 5, "value": "x", "reason": "abc"}), "key")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let store = require_store(call)?;
        let estate = call.estate(false).await?;
        let policy = estate.policy();
        let key = check_key_value(policy, &args.key, &args.value)?;
        let (chosen, not_found) = select(
            &estate,
            &args.resource_ids,
            args.filter.as_ref(),
            MAX_RESOURCES,
        )?;
        if chosen.is_empty() {
            return Err(ToolError::invalid(if not_found.is_empty() {
                "no resource matches the filter; widen it (find_untagged_resources lists \
                 candidates)"
                    .to_string()
            } else {
                format!(
                    "none of the resource_ids is in the inventory (e.g. {}); use ids from \
                     check_tag_compliance or find_untagged_resources",
                    not_found[0]
                )
            }));
        }
        let costs = call.resource_costs(&estate, false).await.ok().flatten();
        let additions: FxHashMap<usize, Vec<_>> = chosen
            .iter()
            .map(|&i| {
                (
                    i,
                    vec![virtual_value(&key, &args.value, args.override_native)],
                )
            })
            .collect();
        let effect = effect(&estate, costs.as_ref(), &additions);
        let (tag_ids, written) = if args.dry_run {
            (Vec::new(), 0)
        } else {
            let resources = &estate.inventory.resources;
            let rows: Vec<NewVirtualTag> = chosen
                .iter()
                .map(|&i| NewVirtualTag {
                    resource_id: resources[i].id.to_string(),
                    key: key.clone(),
                    value: args.value.clone(),
                    source: TagSource::Manual,
                    confidence: 1.0,
                    status: TagStatus::Approved,
                    rule_id: None,
                    reason: args.reason.clone(),
                    override_native: args.override_native,
                    evidence: Vec::new(),
                    created_by: call.actor().to_string(),
                    created_by_principal: call.principal().id.clone(),
                })
                .collect();
            let (mut ids, written) = store.add(rows).await?;
            ids.truncate(100);
            (ids, written)
        };
        Ok(Output {
            dry_run: args.dry_run,
            key,
            value: args.value,
            matched: chosen.len(),
            written,
            not_found,
            effect,
            tag_ids,
            data_quality: call.data_quality(&estate),
        })
    }
}
