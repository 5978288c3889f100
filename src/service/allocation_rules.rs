//! Keeping shared-cost allocation rules, below the tool layer: listing the stored rules,
//! checking a new one against the policy and the rules already stored before it is kept,
//! storing and removing rules (who did it is recorded with each change), and the dry run that
//! shows what the rules would do to the current costs without storing anything.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::allocation::{AllocationReport, RulesChoice, RulesSource, check_rules, parse_stored};
use super::costs::{GapQuestion, TimePeriodArg, gap};
use crate::app::costs::Amount;
use crate::app::{Call, ToolError};
use crate::cost::Period;
use crate::cost::allocation::{AllocationRule, validate_complete};
use crate::cost::attribution::KeyJudge;
use crate::store::AllocationRuleStore;
use crate::store::allocation_rules::{AllocationRuleRow, PutAllocationRule, RuleChange};

/// The allocation-rule store, or an answer saying how to get one.
pub(crate) fn require_store(call: &Call<'_>) -> Result<Arc<dyn AllocationRuleStore>, ToolError> {
    call.allocation_rules().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "no allocation-rule store is open; serve with a writable --data-dir \
             (TAGWARDEN_DATA_DIR), where history.db keeps allocation rules"
                .into(),
        )
    })
}

/// A stored rule with who made and last changed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct StoredRuleView {
    pub rule: AllocationRule,
    pub created_by: String,
    /// Who the server verified the rule's author to be.
    pub created_by_principal: String,
    pub created_at: String,
    pub updated_by: String,
    pub updated_by_principal: String,
    pub updated_at: String,
}

/// The stored rules, in the order they apply.
pub(crate) async fn list(call: &Call<'_>) -> Result<Vec<StoredRuleView>, ToolError> {
    let store = require_store(call)?;
    store.list().await?.iter().map(view).collect()
}

fn view(row: &AllocationRuleRow) -> Result<StoredRuleView, ToolError> {
    Ok(StoredRuleView {
        rule: parse_stored(row)
            .map_err(|e| ToolError::Internal(format!("{e}; replace it (upsert) or remove it")))?,
        created_by: row.created_by.clone(),
        created_by_principal: row.created_by_principal.clone(),
        created_at: row.created_at.clone(),
        updated_by: row.updated_by.clone(),
        updated_by_principal: row.updated_by_principal.clone(),
        updated_at: row.updated_at.clone(),
    })
}

/// Checks a rule to keep: valid on its own (fixed shares spelling out 100%), its key a
/// required key of the policy and its values ones the policy allows, its name free (unless
/// replacing) — and, with the stored rules it joins, still a valid set. Returns the rules as
/// they would be stored, in order (a replaced rule keeps its place).
pub(crate) fn check_new(
    call: &Call<'_>,
    stored: &[AllocationRuleRow],
    rule: &AllocationRule,
    replace: bool,
) -> Result<Vec<AllocationRule>, ToolError> {
    let what = "argument `rule`";
    validate_complete(std::slice::from_ref(rule))
        .map_err(|e| ToolError::invalid(format!("{what}: {e}")))?;
    let policy = call.policy();
    let judge = KeyJudge::new(&policy);
    check_rules(std::slice::from_ref(rule), &judge, what)?;
    if !replace && stored.iter().any(|r| r.name == rule.name) {
        return Err(ToolError::invalid(format!(
            "{what}: a rule named {:?} is stored already; pick another name, or use action \
             upsert to replace it",
            rule.name
        )));
    }
    // The stored rules as they would be: unreadable ones are left out here (they are skipped
    // where rules apply, and listed as such).
    let mut all: Vec<AllocationRule> = stored.iter().filter_map(|r| parse_stored(r).ok()).collect();
    match all.iter_mut().find(|r| r.name == rule.name) {
        Some(slot) => *slot = rule.clone(),
        None => all.push(rule.clone()),
    }
    if all.len() > crate::store::allocation_rules::MAX_STORED {
        return Err(ToolError::invalid(format!(
            "{} allocation rules are stored, the most kept at once; remove one first",
            crate::store::allocation_rules::MAX_STORED
        )));
    }
    Ok(all)
}

/// Stores a rule (checked first); returns what the store did and the rule as stored.
pub(crate) async fn put(
    call: &Call<'_>,
    rule: &AllocationRule,
    replace: bool,
) -> Result<(StoredRuleView, RuleChange), ToolError> {
    let store = require_store(call)?;
    let stored = store.list().await?;
    check_new(call, &stored, rule, replace)?;
    let spec = serde_json::to_string(rule)
        .map_err(|e| ToolError::Internal(format!("rule not encodable: {e}")))?;
    let (row, change) = store
        .put(PutAllocationRule {
            name: rule.name.clone(),
            spec,
            replace,
            by_name: call.actor().to_string(),
            by_principal: call.principal().id.clone(),
        })
        .await?;
    Ok((view(&row)?, change))
}

/// Removes the rule of this name; returns it as it was.
pub(crate) async fn remove(call: &Call<'_>, name: &str) -> Result<StoredRuleView, ToolError> {
    let store = require_store(call)?;
    let row = store
        .remove(
            name.to_string(),
            call.actor().to_string(),
            call.principal().id.clone(),
        )
        .await?;
    view(&row)
}

/// What the dry run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct DryRun {
    pub period: Period,
    /// Currency of every amount.
    pub currency: String,
    /// All spend in the period.
    pub total: Amount,
    /// The rules tried, in order: the stored rules, with the candidate `rule` in its place
    /// (replacing the stored rule of its name) or last.
    pub rules_tried: Vec<String>,
    /// The gap before and after allocation, per key; null when no rule is stored or given.
    pub allocation: Option<AllocationReport>,
}

/// Shows what the stored rules — with `candidate` added or in place of its namesake — would
/// do to the current costs. Stores nothing.
pub(crate) async fn dry_run(
    call: &Call<'_>,
    candidate: Option<&AllocationRule>,
    time_period: Option<TimePeriodArg>,
) -> Result<DryRun, ToolError> {
    let store = require_store(call)?;
    let stored = store.list().await?;
    let rules = match candidate {
        Some(rule) => check_new(call, &stored, rule, true)?,
        None => stored
            .iter()
            .map(|r| {
                parse_stored(r).map_err(|e| {
                    ToolError::Internal(format!("{e}; replace it (upsert) or remove it"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let answer = gap(
        call,
        GapQuestion {
            time_period,
            top: 0,
            allocation: RulesChoice::Given {
                rules: rules.clone(),
                source: RulesSource::Stored,
            },
            ..Default::default()
        },
    )
    .await?;
    Ok(DryRun {
        period: answer.period,
        currency: answer.currency,
        total: answer.total,
        rules_tried: rules.into_iter().map(|r| r.name).collect(),
        allocation: answer.allocation,
    })
}
