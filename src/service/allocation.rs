//! Shared-cost allocation in the cost gap: applies the question's allocation rules to the
//! call's cost lines and reports, per key a rule allocates onto, the gap before and after the
//! split — exact, in micro-units next to the decimal amounts. The splitting itself is pure
//! (`cost::allocation`); this module selects the charges and the spend each value carries, and
//! decides which rules apply: the question's, a rules file's, or those stored in history.db.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::costs::{Amount, amount};
use crate::app::{Call, ToolError};
use crate::compliance::ResourceFilter;
use crate::cost::allocation::{self, AllocationRule, MethodName, UNALLOCATED};
use crate::cost::attribution::{AttributionInput, GroupBy, KeyJudge, attribute, pct};
use crate::cost::{CostLine, Micros};
use crate::inventory::Resource;
use crate::store::allocation_rules::AllocationRuleRow;

/// At most this many rules per question.
pub(crate) const MAX_RULES: usize = 20;

/// The group `group_by tag` gives spend whose resource the key is not required of.
const NOT_REQUIRED: &str = "(not required)";

/// One part of a rule's split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct AllocatedPart {
    /// The tag value receiving the part, or `(unallocated)` for what stays unattributed.
    pub value: String,
    pub amount: Amount,
    /// The same in millionths of the currency: the parts add up to `charges_micros` exactly.
    pub amount_micros: i64,
}

/// What one rule split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct RuleAllocation {
    pub name: String,
    /// The policy's spelling of the key.
    pub key: String,
    pub method: MethodName,
    /// The selected charges that the key does not attribute (a charge selected by an earlier
    /// rule for the same key is that rule's).
    pub charges: Amount,
    pub charges_micros: i64,
    /// Values in name order, `(unallocated)` last.
    pub parts: Vec<AllocatedPart>,
}

/// A value's spend by the key, before and after allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ValueAllocation {
    /// A valid value of the key, or `(not required)` for spend the key is not required of.
    pub value: String,
    pub before_micros: i64,
    pub allocated_micros: i64,
    pub after: Amount,
    pub after_micros: i64,
}

/// The gap by one key before and after allocation. Exact: Σ values' `after_micros` +
/// `unattributable_after_micros` = `total_micros`, and `unattributable_after_micros` =
/// `unattributable_before_micros` − `allocated_micros`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct KeyAllocation {
    pub key: String,
    pub total_micros: i64,
    pub unattributable_before: Amount,
    pub unattributable_before_micros: i64,
    /// unattributable ÷ total before allocation, in % (null when the total is 0).
    pub gap_pct_before: Option<f64>,
    /// What this key's rules gave to values (their `(unallocated)` parts excluded).
    pub allocated: Amount,
    pub allocated_micros: i64,
    pub unattributable_after: Amount,
    pub unattributable_after_micros: i64,
    pub gap_pct_after: Option<f64>,
    /// Every value carrying spend or receiving a part, in name order.
    pub values: Vec<ValueAllocation>,
}

/// Where the rules a gap applied came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RulesSource {
    /// The question's `allocation_rules` argument.
    Argument,
    /// A rules file (`--allocation-rules FILE`).
    File,
    /// The rules stored in history.db (`manage_allocation_rules`).
    Stored,
}

impl RulesSource {
    /// Its name as answers write it (`argument`, `file`, `stored`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RulesSource::Argument => "argument",
            RulesSource::File => "file",
            RulesSource::Stored => "stored",
        }
    }

    /// Where the rules came from, as error messages name it.
    pub(crate) fn origin(self) -> &'static str {
        match self {
            RulesSource::Argument => "argument `allocation_rules`",
            RulesSource::File => "--allocation-rules FILE",
            RulesSource::Stored => "stored allocation rules",
        }
    }
}

/// Which allocation rules a gap question applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum RulesChoice {
    /// None (no `allocation` section).
    #[default]
    NoRules,
    /// The stored rules, when a store is open and holds any.
    Stored,
    /// These rules (an empty list: none).
    Given {
        rules: Vec<AllocationRule>,
        source: RulesSource,
    },
}

/// A stored rule that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct SkippedRule {
    pub name: String,
    /// What keeps it from applying (the policy changed under it, or it is unreadable), and
    /// what to do.
    pub reason: String,
}

/// The answer's `allocation` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct AllocationReport {
    /// Where the rules came from: `argument`, `file` or `stored`.
    pub source: RulesSource,
    /// The names of the rules applied, in order.
    pub applied: Vec<String>,
    /// Stored rules not applied (each with the reason); the others still are.
    #[serde(default)]
    pub skipped: Vec<SkippedRule>,
    /// Per rule, in the order given.
    pub rules: Vec<RuleAllocation>,
    /// Per key some rule allocates onto, in the order first named.
    pub by_key: Vec<KeyAllocation>,
}

/// What the allocation reads: the same lines, filter and tags as the gap itself.
pub(crate) struct AllocationInput<'a> {
    pub judge: &'a KeyJudge<'a>,
    pub lines: &'a [CostLine],
    pub resources: &'a [Resource],
    pub filter: &'a ResourceFilter,
    pub overlay: &'a dyn Fn(&str, &mut BTreeMap<String, String>),
}

/// Rules ready to apply: checked, with their keys in the policy's spelling.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub rules: Vec<AllocationRule>,
    pub keys: Vec<String>,
    pub source: RulesSource,
    pub skipped: Vec<SkippedRule>,
}

/// The rules a question applies, checked against the policy: given rules must all be valid
/// (the error names the rule and field); stored rules that no longer fit the policy are
/// skipped, each with its reason, and the rest still apply. `None`: nothing to apply.
pub(crate) async fn resolve(
    call: &Call<'_>,
    choice: &RulesChoice,
    judge: &KeyJudge<'_>,
) -> Result<Option<Resolved>, ToolError> {
    match choice {
        RulesChoice::NoRules => Ok(None),
        RulesChoice::Given { rules, .. } if rules.is_empty() => Ok(None),
        RulesChoice::Given { rules, source } => {
            let what = source.origin();
            if *source != RulesSource::Argument {
                allocation::validate_complete(rules)
                    .map_err(|e| ToolError::invalid(format!("{what}: {e}")))?;
            }
            let keys = check_rules(rules, judge, what)?;
            Ok(Some(Resolved {
                rules: rules.clone(),
                keys,
                source: *source,
                skipped: Vec::new(),
            }))
        }
        RulesChoice::Stored => {
            let Some(store) = call.allocation_rules() else {
                return Ok(None);
            };
            let rows = store.list().await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut resolved = Resolved {
                rules: Vec::new(),
                keys: Vec::new(),
                source: RulesSource::Stored,
                skipped: Vec::new(),
            };
            for row in rows {
                let checked = parse_stored(&row).and_then(|rule| {
                    allocation::validate_complete(std::slice::from_ref(&rule))
                        .map_err(|e| e.to_string())?;
                    let keys = check_rules(std::slice::from_ref(&rule), judge, "stored rule")
                        .map_err(|e| e.to_string())?;
                    Ok((rule, keys))
                });
                match checked {
                    Ok((rule, keys)) => {
                        resolved.rules.push(rule);
                        resolved.keys.extend(keys);
                    }
                    Err(reason) => resolved.skipped.push(SkippedRule {
                        name: row.name.clone(),
                        reason: format!(
                            "{reason}; fix it with manage_allocation_rules (upsert) or remove it"
                        ),
                    }),
                }
            }
            Ok(Some(resolved))
        }
    }
}

/// A stored rule's definition.
pub(crate) fn parse_stored(row: &AllocationRuleRow) -> Result<AllocationRule, String> {
    serde_json::from_str(&row.spec)
        .map_err(|e| format!("stored allocation rule {:?} is unreadable: {e}", row.name))
}

/// Checks the rules and resolves their keys to the policy's required keys (canonical names).
/// `what` names where the rules came from in errors (`argument `allocation_rules``).
pub(crate) fn check_rules(
    rules: &[AllocationRule],
    judge: &KeyJudge<'_>,
    what: &str,
) -> Result<Vec<String>, ToolError> {
    if rules.len() > MAX_RULES {
        return Err(ToolError::invalid(format!(
            "{what}: {} rules, at most {MAX_RULES}",
            rules.len()
        )));
    }
    allocation::validate(rules).map_err(|e| ToolError::invalid(format!("{what}: {e}")))?;
    let policy = judge.policy();
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let key = policy.canonical_key(&rule.key);
            if let Some(index) = judge.keys().position(|k| k == key) {
                if let Some(bad) = rule
                    .shares
                    .iter()
                    .find(|s| s.value != UNALLOCATED && !judge.value_is_valid(index, &s.value))
                {
                    return Err(ToolError::invalid(format!(
                        "{what}: allocation rule {i} ({:?}): `shares.value` {:?} is not a valid \
                         value of {key} under the policy",
                        rule.name, bad.value
                    )));
                }
                Ok(key.to_string())
            } else {
                Err(ToolError::invalid(format!(
                    "{what}: allocation rule {i} ({:?}): `key` {:?} is not a required key of \
                     the policy; use one of {}",
                    rule.name,
                    rule.key,
                    judge.keys().collect::<Vec<_>>().join(", ")
                )))
            }
        })
        .collect()
}

/// Applies the resolved rules.
pub(crate) fn allocate(resolved: &Resolved, input: &AllocationInput<'_>) -> AllocationReport {
    let rules = &resolved.rules;
    let keys = &resolved.keys;
    let attribution_of = |lines: &[CostLine], group_by: &GroupBy| {
        attribute(&AttributionInput {
            judge: input.judge,
            lines,
            resources: input.resources,
            filter: input.filter,
            group_by,
            overlay: input.overlay,
        })
    };
    let mut by_key: Vec<KeyAllocation> = Vec::new();
    let mut results = Vec::with_capacity(rules.len());
    for (index, (rule, key)) in rules.iter().zip(keys).enumerate() {
        let position = match by_key.iter().position(|k| &k.key == key) {
            Some(p) => p,
            None => {
                by_key.push(key_before(
                    input.judge,
                    key,
                    &attribution_of(input.lines, &GroupBy::Tag(key.clone())),
                ));
                by_key.len() - 1
            }
        };
        let entry = &mut by_key[position];
        // A charge belongs to the first rule for its key that selects it.
        let selected: Vec<CostLine> = input
            .lines
            .iter()
            .filter(|l| {
                rule.charges.selects(l)
                    && !rules[..index]
                        .iter()
                        .zip(keys)
                        .any(|(earlier, k)| k == key && earlier.charges.selects(l))
            })
            .cloned()
            .collect();
        let charges = attribution_of(&selected, &GroupBy::Service)
            .by_key
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, split)| split.unattributable);
        let targets: Vec<(String, Micros)> = entry
            .values
            .iter()
            .filter(|v| v.value != NOT_REQUIRED)
            .map(|v| (v.value.clone(), v.before_micros))
            .collect();
        let parts = allocation::split(charges, &targets, &rule.method());
        for (value, part) in &parts {
            if value == UNALLOCATED {
                continue;
            }
            entry.allocated_micros += part;
            match entry.values.iter_mut().find(|v| &v.value == value) {
                Some(v) => v.allocated_micros += part,
                None => entry.values.push(ValueAllocation {
                    value: value.clone(),
                    before_micros: 0,
                    allocated_micros: *part,
                    after: 0.0,
                    after_micros: 0,
                }),
            }
        }
        results.push(RuleAllocation {
            name: rule.name.clone(),
            key: key.clone(),
            method: rule.method,
            charges: amount(charges),
            charges_micros: charges,
            parts: parts
                .into_iter()
                .map(|(value, micros)| AllocatedPart {
                    value,
                    amount: amount(micros),
                    amount_micros: micros,
                })
                .collect(),
        });
    }
    for k in &mut by_key {
        k.allocated = amount(k.allocated_micros);
        k.unattributable_after_micros = k.unattributable_before_micros - k.allocated_micros;
        k.unattributable_after = amount(k.unattributable_after_micros);
        k.gap_pct_after = pct(k.unattributable_after_micros, k.total_micros);
        for v in &mut k.values {
            v.after_micros = v.before_micros + v.allocated_micros;
            v.after = amount(v.after_micros);
        }
        k.values.sort_by(|a, b| a.value.cmp(&b.value));
    }
    AllocationReport {
        source: resolved.source,
        applied: rules.iter().map(|r| r.name.clone()).collect(),
        skipped: resolved.skipped.clone(),
        rules: results,
        by_key,
    }
}

/// A key's figures before allocation, from the spend grouped by its value.
fn key_before(
    judge: &KeyJudge<'_>,
    key: &str,
    grouped: &crate::cost::attribution::Attribution,
) -> KeyAllocation {
    let split = grouped
        .by_key
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let index = judge.keys().position(|k| k == key).unwrap_or_default();
    let values_in = grouped
        .groups
        .iter()
        .filter(|g| g.group != "(missing)" && g.group != "(invalid)");
    // Spend the key is not required of shows under its value, valid or not (or under no
    // value): only valid values receive parts; the rest is one `(not required)` entry.
    let mut values: Vec<ValueAllocation> = Vec::new();
    for g in values_in {
        let valid = !g.group.is_empty() && judge.value_is_valid(index, &g.group);
        let value = if valid {
            g.group.as_str()
        } else {
            NOT_REQUIRED
        };
        match values.iter_mut().find(|v| v.value == value) {
            Some(v) => v.before_micros += g.split.total(),
            None => values.push(ValueAllocation {
                value: value.to_string(),
                before_micros: g.split.total(),
                allocated_micros: 0,
                after: 0.0,
                after_micros: 0,
            }),
        }
    }
    KeyAllocation {
        key: key.to_string(),
        total_micros: split.total(),
        unattributable_before: amount(split.unattributable),
        unattributable_before_micros: split.unattributable,
        gap_pct_before: pct(split.unattributable, split.total()),
        allocated: 0.0,
        allocated_micros: 0,
        unattributable_after: 0.0,
        unattributable_after_micros: 0,
        gap_pct_after: None,
        values,
    }
}
