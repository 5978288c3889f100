//! `promote_virtual_tags`: turns approved virtual tags into real AWS tags in four steps — `plan`
//! (a stored dry run), `approve` (a person, recorded), `apply` (only that approved plan, only
//! while its inputs are unchanged; writes, verifies, records) and `show`.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Principal, Role, Tool, ToolError};
use crate::service::promote::{self, PlanHeadline, PlanView, Selection};

pub(crate) struct PromoteVirtualTags;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// Make a plan (dry run, stored): per ARN the tags to add or change, counts, the tags
    /// left and why, the IAM actions needed. Writes nothing to the cloud.
    #[default]
    Plan,
    /// Record a person's approval of a plan (`plan_id`, `reason`).
    Approve,
    /// Apply an approved plan (`plan_id`): refused when not approved, already applied, or
    /// stale (its inputs changed since it was made).
    Apply,
    /// Show a plan (`plan_id`) with its status and, once applied, each ARN's outcome.
    Show,
    /// List the newest plans with their status (no `plan_id`).
    List,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default)]
    pub action: Action,
    /// The plan to approve, apply or show (from `plan`).
    #[serde(default)]
    pub plan_id: Option<i64>,
    /// plan: only the virtual tags of these resources (ARNs). Default: every approved one.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub resource_ids: Vec<String>,
    /// plan: only these keys (an alias is read as its canonical key). Default: every key.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub keys: Vec<String>,
    /// approve: why (kept with the approval), e.g. "owners confirmed in the FinOps review".
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
    /// approve: who approves, when not the caller's own identity (e.g. the person the
    /// assistant acts for). Stored as given; the principal the server verified is stored
    /// beside it.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub approved_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub action: Action,
    /// The plan made, approved, applied or shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanView>,
    /// list: the newest plans (at most 50).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<PlanHeadline>,
    /// list: how many plans there are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans_total: Option<usize>,
}

impl Tool for PromoteVirtualTags {
    const NAME: &'static str = "promote_virtual_tags";
    const TITLE: &'static str = "Promote virtual tags to real tags";
    const DESCRIPTION: &'static str = "Writes approved virtual tags to AWS as real tags, in steps a person controls. \
action=plan makes a stored dry run (nothing is written): per ARN the tags to add, and to change only where a \
virtual tag says override_native; tags left and why (aws: keys never, a native value kept, already native, over \
50 tags); counts; the IAM actions needed. action=approve records a person's approval of plan_id with a reason \
(and the verified principal). action=apply writes only an approved plan whose inputs (the approved virtual tags \
and the tags AWS holds on its resources) are unchanged — otherwise it refuses as stale and writes nothing — in \
TagResources calls of at most 20 ARNs and 50 tags, retrying AWS-side failures, then reads every ARN back with \
GetResources: verified tags mark their virtual tags promoted (kept for history), each written ARN gets an audit \
row, and refusals (unsupported service, tag policy) are reported per ARN. action=show reads a plan back; action=list lists the newest plans. \
Changes real cloud resources: plan and show first.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    /// Show and list read; a plan is stored (an approver's); approving a plan and applying
    /// it change the cloud: an administrator's.
    fn role(args: &Args, _caller: &Principal) -> Role {
        match args.action {
            Action::Show | Action::List => Role::Viewer,
            Action::Plan => Role::Approver,
            Action::Approve | Action::Apply => Role::Admin,
        }
    }

    fn annotations() -> ToolAnnotations {
        // apply changes tags on real cloud resources; an applied plan cannot be applied again.
        ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true)
    }

    fn example() -> Value {
        serde_json::json!({"action": "list"})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"action": "push"}), "action")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let action = args.action;
        if action == Action::List {
            let (plans, total) = promote::list(call, 50).await?;
            return Ok(Output {
                action,
                plan: None,
                plans,
                plans_total: Some(total),
            });
        }
        let plan = Self::plan_action(call, args).await?;
        Ok(Output {
            action,
            plan: Some(plan),
            plans: Vec::new(),
            plans_total: None,
        })
    }
}

impl PromoteVirtualTags {
    async fn plan_action(call: &Call<'_>, args: Args) -> Result<PlanView, ToolError> {
        let plan_id = || {
            args.plan_id.ok_or_else(|| {
                ToolError::invalid(
                    "argument `plan_id`: give the id of a plan (action `plan` makes one)",
                )
            })
        };
        match args.action {
            Action::Plan => {
                if args.plan_id.is_some() || args.reason.is_some() {
                    return Err(ToolError::invalid(
                        "action `plan` takes `resource_ids` and `keys`; `plan_id` and \
                         `reason` are for approve, apply and show",
                    ));
                }
                promote::make_plan(
                    call,
                    Selection {
                        resource_ids: args.resource_ids,
                        keys: args.keys,
                    },
                )
                .await
            }
            Action::Approve => {
                let id = plan_id()?;
                let reason = args.reason.filter(|r| r.trim().len() >= 3).ok_or_else(|| {
                    ToolError::invalid(
                        "argument `reason`: say why the plan is approved (kept with the \
                         approval), e.g. \"owners confirmed in the FinOps review\"",
                    )
                })?;
                promote::approve(call, id, reason, args.approved_by).await
            }
            Action::Apply => promote::apply(call, plan_id()?).await,
            Action::Show | Action::List => promote::show(call, plan_id()?).await,
        }
    }
}
