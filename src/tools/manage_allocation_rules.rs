//! `manage_allocation_rules`: the shared-cost allocation rules kept in history.db — list, add,
//! upsert, remove, and test (a dry run of the rules on the current costs, before and after,
//! storing nothing). The cost gap, `tagwarden check` and the report apply the stored rules when
//! a question gives none. Every change is recorded with who made it.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Principal, Role, Tool, ToolError};
use crate::cost::allocation::AllocationRule;
use crate::service::allocation_rules::{self as rules, DryRun, StoredRuleView};
use crate::service::costs::TimePeriodArg;
use crate::store::allocation_rules::RuleChange;

pub(crate) struct ManageAllocationRules;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// The stored rules, in the order they apply.
    #[default]
    List,
    /// Store `rule` (checked first); refused when a rule of its name is stored.
    Add,
    /// Store `rule`, replacing the stored rule of its name in its place (or adding it).
    Upsert,
    /// Remove the rule named `name`.
    Remove,
    /// Dry run: the cost gap before and after the stored rules — with `rule`, if given, added
    /// or in place of its namesake — on the current costs. Stores nothing.
    Test,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default)]
    pub action: Action,
    /// The rule to add, upsert or test: a name, the required key whose values receive the
    /// charges, which charges (`without_resource`, `services`, `accounts`) and the method
    /// (`proportional`, `even`, or `fixed` with `shares` adding up to 10,000 basis points —
    /// name `(unallocated)` for what should stay unattributed).
    #[serde(default)]
    pub rule: Option<AllocationRule>,
    /// The rule to remove.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub name: Option<String>,
    /// test: the period (default: the last 30 complete days; with FOCUS cost files, every day
    /// they cover).
    #[serde(default)]
    pub time_period: Option<TimePeriodArg>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub action: Action,
    /// The stored rules, in the order they apply (after the change).
    pub rules: Vec<StoredRuleView>,
    /// add, upsert, remove: what was done (`added`, `updated`, `unchanged`, `removed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<RuleChange>,
    /// add, upsert: the rule as stored; remove: the rule as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<StoredRuleView>,
    /// test: the gap before and after allocation on the current costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<DryRun>,
}

impl Tool for ManageAllocationRules {
    const NAME: &'static str = "manage_allocation_rules";
    const ROLE: Role = Role::Viewer;

    /// Listing and testing read; adding, replacing and removing change what every cost
    /// answer applies.
    fn role(args: &Args, _caller: &Principal) -> Role {
        match args.action {
            Action::List | Action::Test => Role::Viewer,
            Action::Add | Action::Upsert | Action::Remove => Role::Approver,
        }
    }
    const TITLE: &'static str = "Manage shared-cost allocation rules";
    const DESCRIPTION: &'static str = "Keeps the shared-cost allocation rules that split charges no tag \
attributes (support, tax, fees, a shared platform account) across a required tag key's values — proportionally \
to the spend each value carries, evenly, or by fixed shares in basis points that add up to 10,000 (name \
`(unallocated)` for a share that should stay unattributed). get_cost_attribution_gap, generate_compliance_report \
and `tagwarden check` apply the stored rules, in order, when a question gives none. Actions: list; add (refused \
when the name is taken) and upsert (replaces the rule of that name in its place), each checked first — the key \
must be a required key of the policy, share values allowed by it, shares adding up to 100%, names unique; remove \
(by `name`); test (a dry run on the current costs: each key's unattributed spend before and after, exact to the \
micro-unit; with `rule`, as if it were stored; stores nothing). Every change is recorded with who made it.";

    type Args = Args;
    type Output = Output;

    fn annotations() -> ToolAnnotations {
        // Changes Tagwarden's own rules (recorded, never the cloud); remove takes a rule out of
        // use.
        ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false)
    }

    fn example() -> Value {
        serde_json::json!({"action": "list"})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"action": "allocate"}), "action")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let only = |allowed: &[&str]| -> Result<(), ToolError> {
            let given = [
                ("rule", args.rule.is_some()),
                ("name", args.name.is_some()),
                ("time_period", args.time_period.is_some()),
            ];
            match given
                .iter()
                .find(|(n, set)| *set && !allowed.contains(n))
            {
                Some((n, _)) => Err(ToolError::invalid(format!(
                    "argument `{n}` is not used by action {}; remove it",
                    serde_json::to_value(args.action)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ))),
                None => Ok(()),
            }
        };
        let empty = |action| Output {
            action,
            rules: Vec::new(),
            change: None,
            rule: None,
            test: None,
        };
        match args.action {
            Action::List => {
                only(&[])?;
                Ok(Output {
                    rules: rules::list(call).await?,
                    ..empty(Action::List)
                })
            }
            Action::Add | Action::Upsert => {
                only(&["rule"])?;
                let rule = args.rule.as_ref().ok_or_else(|| {
                    ToolError::invalid(
                        "argument `rule`: give the rule (name, key, charges, method; shares \
                         with method fixed)",
                    )
                })?;
                let (stored, change) = rules::put(call, rule, args.action == Action::Upsert).await?;
                Ok(Output {
                    rules: rules::list(call).await?,
                    change: Some(change),
                    rule: Some(stored),
                    ..empty(args.action)
                })
            }
            Action::Remove => {
                only(&["name"])?;
                let name = args.name.as_deref().ok_or_else(|| {
                    ToolError::invalid(
                        "argument `name`: which rule to remove (names from action list)",
                    )
                })?;
                let removed = rules::remove(call, name).await?;
                Ok(Output {
                    rules: rules::list(call).await?,
                    change: Some(RuleChange::Removed),
                    rule: Some(removed),
                    ..empty(Action::Remove)
                })
            }
            Action::Test => {
                only(&["rule", "time_period"])?;
                let test = rules::dry_run(call, args.rule.as_ref(), args.time_period).await?;
                Ok(Output {
                    rules: rules::list(call).await?,
                    test: Some(test),
                    ..empty(Action::Test)
                })
            }
        }
    }
}
