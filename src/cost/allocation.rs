//! Shared-cost allocation, pure: splits a charge that no tag attributes (support, tax, a shared
//! platform account) across the values of one tag key — in proportion to the spend each value
//! already carries, evenly, or by fixed percentages — so that the parts add up to the charge
//! exactly, to the micro-unit.
//!
//! Rounding is largest-remainder (Hamilton): each part gets the floor of its exact quota (toward
//! zero), then the micro-units left over (fewer than the number of parts) go one each to the
//! parts with the largest fractional remainders, ties to the earlier value by name. Credits
//! (negative amounts) are split as their absolute value and negated, so a credit and a charge of
//! the same size split symmetrically.
//!
//! What cannot be given to a value goes to the bucket named `UNALLOCATED` (`(unallocated)`),
//! which stays part of the gap: the share that fixed percentages below 100% leave, and the whole
//! charge when there is nothing to split onto (no value carries positive spend for a
//! proportional or an even split).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CostLine, Micros};

/// The bucket for what a split cannot give to a tag value; it stays unattributed.
pub(crate) const UNALLOCATED: &str = "(unallocated)";

/// Basis points in 100%.
pub(crate) const FULL_BASIS_POINTS: u32 = 10_000;

/// How a charge is split across a key's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Method {
    /// In proportion to the spend each value already carries (values with none get nothing).
    Proportional,
    /// The same share to every value that carries positive spend.
    Even,
    /// Fixed shares; what they leave below 100% goes to `(unallocated)`.
    Fixed { shares: Vec<FixedShare> },
}

/// The name of a rule's method, as rules write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MethodName {
    /// In proportion to the spend each value already carries (values with none get nothing).
    Proportional,
    /// The same share to every value that carries positive spend.
    Even,
    /// Fixed shares (`shares`); what they leave below 100% stays `(unallocated)`.
    Fixed,
}

impl MethodName {
    /// Its name as rules write it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MethodName::Proportional => "proportional",
            MethodName::Even => "even",
            MethodName::Fixed => "fixed",
        }
    }
}

/// One value's fixed share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixedShare {
    /// The tag value receiving the share.
    #[schemars(length(min = 1, max = 256))]
    pub value: String,
    /// Its share in basis points (1% = 100, 100% = 10,000).
    #[schemars(range(min = 0, max = 10_000))]
    pub basis_points: u32,
}

/// Which charges a rule splits. Every condition given must hold; a charge must also lack a
/// valid value for the rule's key (spend already attributed by the key is never moved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChargeSelector {
    /// Only charges tied to no resource (support, tax, fees, account-level credits).
    #[serde(default)]
    pub without_resource: bool,
    /// Only charges billed under one of these services (exact names, e.g. `AWS Support
    /// (Business)`, `Tax`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Only charges in one of these accounts (ids, e.g. a shared platform account).
    #[serde(default)]
    pub accounts: Vec<String>,
}

impl ChargeSelector {
    /// Whether the line is one of the charges the rule splits (its key aside).
    pub(crate) fn selects(&self, line: &CostLine) -> bool {
        (!self.without_resource || line.resource_id.is_empty())
            && (self.services.is_empty() || self.services.iter().any(|s| *s == line.service))
            && (self.accounts.is_empty() || self.accounts.iter().any(|a| *a == line.account))
    }

    fn is_empty(&self) -> bool {
        !self.without_resource && self.services.is_empty() && self.accounts.is_empty()
    }
}

/// A named rule: split the selected charges that key `key` does not attribute across its
/// values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllocationRule {
    /// A name to report the rule's result under.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// The tag key whose values receive the charge (a required key of the policy).
    #[schemars(length(min = 1, max = 128))]
    pub key: String,
    /// Which charges are split.
    pub charges: ChargeSelector,
    /// How they are split.
    pub method: MethodName,
    /// With method `fixed`: each value's share in basis points (1% = 100), adding up to at
    /// most 10,000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<FixedShare>,
}

impl AllocationRule {
    /// The rule's method with its shares.
    pub(crate) fn method(&self) -> Method {
        match self.method {
            MethodName::Proportional => Method::Proportional,
            MethodName::Even => Method::Even,
            MethodName::Fixed => Method::Fixed {
                shares: self.shares.clone(),
            },
        }
    }
}

/// A rule that cannot be applied, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allocation rule {index} ({name:?}): `{field}` {reason}")]
pub(crate) struct RuleError {
    pub index: usize,
    pub name: String,
    pub field: &'static str,
    pub reason: String,
}

/// Checks rules before any is applied: names unique and non-empty, a key, a selector that
/// selects something narrower than all spend, fixed shares within 100% and values unique. A
/// share may name `(unallocated)` to say outright what stays unattributed (stored rules must
/// add up to 100%, see `validate_complete`).
pub(crate) fn validate(rules: &[AllocationRule]) -> Result<(), RuleError> {
    for (index, rule) in rules.iter().enumerate() {
        let error = |field: &'static str, reason: String| RuleError {
            index,
            name: rule.name.clone(),
            field,
            reason,
        };
        if rule.name.trim().is_empty() {
            return Err(error("name", "is empty; give the rule a name".into()));
        }
        if rules[..index].iter().any(|r| r.name == rule.name) {
            return Err(error(
                "name",
                "is used by an earlier rule; names must be unique".into(),
            ));
        }
        if rule.key.trim().is_empty() {
            return Err(error(
                "key",
                "is empty; name the tag key to allocate onto".into(),
            ));
        }
        if rule.charges.is_empty() {
            return Err(error(
                "charges",
                "selects every charge; set without_resource, services or accounts".into(),
            ));
        }
        let shares = &rule.shares;
        if rule.method != MethodName::Fixed && !shares.is_empty() {
            return Err(error(
                "shares",
                "is only read with method fixed; remove it or set method to fixed".into(),
            ));
        }
        if rule.method == MethodName::Fixed {
            if shares.is_empty() {
                return Err(error(
                    "shares",
                    "is empty; give at least one value with its basis points".into(),
                ));
            }
            let mut sum: u64 = 0;
            for (i, share) in shares.iter().enumerate() {
                if share.value.trim().is_empty() {
                    return Err(error("shares.value", format!("of share {i} is empty")));
                }
                if shares[..i].iter().any(|s| s.value == share.value) {
                    return Err(error(
                        "shares.value",
                        format!("{:?} appears twice", share.value),
                    ));
                }
                sum += u64::from(share.basis_points);
            }
            if sum > u64::from(FULL_BASIS_POINTS) {
                return Err(error(
                    "shares.basis_points",
                    format!(
                        "add up to {}, over 10,000 (100%)",
                        crate::util::thousands(sum)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The stricter check for rules that are kept (stored in history.db or read from a rules file):
/// on top of `validate`, fixed shares add up to exactly 100%, so a stored rule never leaves
/// part of a charge unattributed by accident — what should stay so is named `(unallocated)`.
pub(crate) fn validate_complete(rules: &[AllocationRule]) -> Result<(), RuleError> {
    validate(rules)?;
    for (index, rule) in rules.iter().enumerate() {
        if rule.method != MethodName::Fixed {
            continue;
        }
        let sum: u64 = rule.shares.iter().map(|s| u64::from(s.basis_points)).sum();
        if sum != u64::from(FULL_BASIS_POINTS) {
            let left = u64::from(FULL_BASIS_POINTS) - sum;
            return Err(RuleError {
                index,
                name: rule.name.clone(),
                field: "shares.basis_points",
                reason: format!(
                    "add up to {}, not 10,000 (100%); give the remaining {} to a value, or to \
                     `{UNALLOCATED}` to leave them unattributed on purpose",
                    crate::util::thousands(sum),
                    crate::util::thousands(left)
                ),
            });
        }
    }
    Ok(())
}

/// Splits `amount` across `targets` (value, spend it carries; sorted by value, unique) by
/// `method`. The parts (value order, then `(unallocated)` when it receives anything) add up to
/// `amount` exactly; values that receive 0 are left out.
pub(crate) fn split(
    amount: Micros,
    targets: &[(String, Micros)],
    method: &Method,
) -> Vec<(String, Micros)> {
    let weights: Vec<(&str, u128)> = match method {
        Method::Proportional => targets
            .iter()
            .filter(|(_, spend)| *spend > 0)
            .map(|(v, spend)| (v.as_str(), *spend as u128))
            .collect(),
        Method::Even => targets
            .iter()
            .filter(|(_, spend)| *spend > 0)
            .map(|(v, _)| (v.as_str(), 1))
            .collect(),
        Method::Fixed { shares } => {
            // A share named `(unallocated)` is what the shares leave, spelled out: it joins
            // the bucket below rather than standing as a value of its own.
            let to_values = || shares.iter().filter(|s| s.value != UNALLOCATED);
            let mut w: Vec<(&str, u128)> = to_values()
                .filter(|s| s.basis_points > 0)
                .map(|s| (s.value.as_str(), u128::from(s.basis_points)))
                .collect();
            let given: u32 = to_values().map(|s| s.basis_points).sum();
            if given < FULL_BASIS_POINTS {
                w.push((UNALLOCATED, u128::from(FULL_BASIS_POINTS - given)));
            }
            w
        }
    };
    let mut parts = hamilton(amount, &weights);
    if parts.is_empty() && amount != 0 {
        parts.push((UNALLOCATED.to_string(), amount));
    }
    parts.retain(|(_, a)| *a != 0);
    // Values in name order, the bucket last.
    parts.sort_by(|a, b| {
        (a.0 == UNALLOCATED)
            .cmp(&(b.0 == UNALLOCATED))
            .then_with(|| a.0.cmp(&b.0))
    });
    parts
}

/// Largest-remainder apportionment of `amount` by `weights` (positive); empty when the weights
/// are. Exact: the quotas are computed in `u128` (|amount| < 2^63, total weight < 2^64).
fn hamilton(amount: Micros, weights: &[(&str, u128)]) -> Vec<(String, Micros)> {
    let total: u128 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return Vec::new();
    }
    let magnitude = u128::from(amount.unsigned_abs());
    let mut floors: Vec<(usize, u128, u128)> = weights
        .iter()
        .enumerate()
        .map(|(i, (_, w))| {
            let exact = magnitude * w;
            (i, exact / total, exact % total)
        })
        .collect();
    let given: u128 = floors.iter().map(|(_, f, _)| f).sum();
    let left = (magnitude - given) as usize;
    // Largest remainder first; ties to the earlier value by name.
    let mut order: Vec<usize> = (0..floors.len()).collect();
    order.sort_by(|&a, &b| {
        floors[b]
            .2
            .cmp(&floors[a].2)
            .then_with(|| weights[a].0.cmp(weights[b].0))
    });
    for &i in order.iter().take(left) {
        floors[i].1 += 1;
    }
    floors
        .into_iter()
        .map(|(i, part, _)| {
            // part ≤ |amount| ≤ i64::MAX: the cast is exact.
            let part = part as i64;
            let signed = if amount < 0 { -part } else { part };
            (weights[i].0.to_string(), signed)
        })
        .collect()
}

#[cfg(test)]
mod tests;
