//! The violation export: one row per effective-view violation, with the resource, what was
//! found and expected, its cost, a suggested value and the owner — the shape a spreadsheet, a
//! ticketing import or a CI report takes (`tagwarden export violations`, export_violations_csv).
//!
//! Pure: rows are built from one resource's evaluation and facts gathered by the caller (cost,
//! owner, suggestions); the writers (`to_csv`, `to_junit`) format rows onto any `io::Write`, one
//! resource at a time, so an estate of any size streams without being held as text.

pub(crate) mod to_csv;
pub(crate) mod to_junit;

use std::collections::BTreeMap;

use crate::inventory::Resource;
use crate::policy::evaluate::RuleRef;
use crate::policy::render::Expected;
use crate::policy::{Policy, Severity, View, Violation, ViolationKind};

use super::ViolationFilter;

/// Money in integer micro-units (millionths of the currency), as the cost module counts it;
/// spelled out here because `cost` reads `compliance`, not the other way round.
pub(crate) type Micros = i64;

/// The CSV columns, in order (the header row).
pub(crate) const COLUMNS: [&str; 14] = [
    "resource_id",
    "account",
    "region",
    "type",
    "name",
    "key",
    "kind",
    "current",
    "expected",
    "severity",
    "monthly_cost",
    "suggested_value",
    "suggestion_confidence",
    "owner",
];

/// The keys whose effective value is a resource's owner, first present wins, when the caller
/// names none: the default policy's `Owner` (a team mailbox), then the optional `Team`.
pub(crate) const DEFAULT_OWNER_KEYS: [&str; 2] = ["Owner", "Team"];

/// One violation as exported.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub resource_id: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub name: String,
    /// The canonical key (the prohibited key's name for `prohibited_tag`); empty for
    /// violations of no key (`too_many_tags`, `conflicting_tags`).
    pub key: String,
    pub kind: ViolationKind,
    /// The value on the resource, when there is one.
    pub current: Option<String>,
    /// What the policy expects, in words (`one of: a, b`; `matches CC-[0-9]{4}`; ...).
    pub expected: String,
    pub severity: Severity,
    /// The smallest change that fixes it (JUnit messages; not a CSV column).
    pub fix: String,
    /// The resource's spend over the cost period, when costs are known.
    pub monthly_cost: Option<Micros>,
    /// The best suggested value and its confidence, when one reaches the threshold.
    pub suggestion: Option<(String, f64)>,
    pub owner: Option<String>,
}

/// The best suggested value per canonical key of one resource.
pub(crate) type Suggestions = BTreeMap<String, (String, f64)>;

/// What the caller knows about a resource besides its tags and violations.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceFacts {
    pub cost: Option<Micros>,
    pub owner: Option<String>,
    pub suggestions: Suggestions,
}

/// How many of `violations` the filter counts (the resource's rows).
pub(crate) fn counted(filter: &ViolationFilter, violations: &[Violation]) -> usize {
    violations.iter().filter(|v| filter.counts(v)).count()
}

/// Whether a suggestion can fix this violation: a required key that is missing, blank or
/// has a value the rule refuses (the suggester answers exactly those).
pub(crate) fn wants_suggestion(v: &Violation) -> bool {
    matches!(v.rule, RuleRef::Required(_))
        && matches!(
            v.kind,
            ViolationKind::MissingRequiredTag
                | ViolationKind::ConditionalRequirement
                | ViolationKind::EmptyValue
                | ViolationKind::InvalidValue
                | ViolationKind::InvalidFormat
        )
}

/// The rows of one resource: its counted effective violations, ordered by key, then kind
/// (then as evaluated). `tags` are the tags the effective view was evaluated on.
pub(crate) fn rows_of<K: AsRef<str>, V: AsRef<str>>(
    policy: &Policy,
    filter: &ViolationFilter,
    r: &Resource,
    tags: &[(K, V)],
    violations: &[Violation],
    facts: &ResourceFacts,
) -> Vec<Row> {
    let mut rows: Vec<Row> = violations
        .iter()
        .filter(|v| filter.counts(v))
        .map(|v| {
            let d = policy.render(&r.id, tags, View::Effective, v);
            let key = d.tag_key.unwrap_or_default();
            let suggestion = wants_suggestion(v)
                .then(|| facts.suggestions.get(&key).cloned())
                .flatten();
            Row {
                resource_id: r.id.to_string(),
                account: r.account.to_string(),
                region: r.region.to_string(),
                resource_type: r.resource_type.to_string(),
                name: r.name.to_string(),
                expected: expected_text(d.kind, &d.expected),
                key,
                kind: d.kind,
                current: d.current_value,
                severity: d.severity,
                fix: d.fix,
                monthly_cost: facts.cost,
                suggestion,
                owner: facts.owner.clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key).then(a.kind.cmp(&b.kind)));
    rows
}

/// What the policy expects, in one cell: the parts that apply, separated by `; `.
pub(crate) fn expected_text(kind: ViolationKind, e: &Expected) -> String {
    let mut parts: Vec<String> = Vec::new();
    match kind {
        ViolationKind::ProhibitedTag => parts.push("tag absent".into()),
        ViolationKind::ConflictingTags => {
            if let Some(c) = &e.condition {
                parts.push(format!("not all of: {c}"));
            }
            return parts.join("; ");
        }
        _ => {}
    }
    if let Some(key) = &e.key {
        parts.push(format!("key {key}"));
    }
    if let Some(values) = &e.allowed_values {
        parts.push(format!("one of: {}", values.join(", ")));
    }
    if let Some(pattern) = &e.pattern {
        parts.push(format!("matches {pattern}"));
    }
    if let Some(max) = e.max_tags {
        parts.push(format!("at most {max} tags"));
    }
    if let Some(max) = e.max_length {
        parts.push(format!("at most {max} characters"));
    }
    let wants_value = matches!(
        kind,
        ViolationKind::MissingRequiredTag
            | ViolationKind::ConditionalRequirement
            | ViolationKind::EmptyValue
    );
    if wants_value && e.allowed_values.is_none() && e.pattern.is_none() {
        parts.push("any non-empty value".into());
    }
    if let Some(c) = &e.condition {
        parts.push(format!("required when {c}"));
    }
    parts.join("; ")
}

/// The owner: the effective value of the first of `keys` the resource has (non-empty). A
/// policy key is read through its aliases and case variants (they are renamed in `effective`);
/// another key matches exactly, else ignoring case when the policy matches keys so.
pub(crate) fn owner_of(
    policy: &Policy,
    effective: &BTreeMap<String, String>,
    keys: &[String],
) -> Option<String> {
    keys.iter().find_map(|k| {
        let name = policy.canonical_key(k);
        let folds = policy.key_matching() == crate::policy::KeyMatching::CaseInsensitive;
        effective
            .get(name)
            .or_else(|| {
                folds
                    .then(|| {
                        effective
                            .iter()
                            .find(|(key, _)| key.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v)
                    })
                    .flatten()
            })
            .filter(|v| !v.trim().is_empty())
            .cloned()
    })
}

/// An amount of micro-units as a plain decimal for machines: no thousands separators, at least
/// two decimals, exact (`21.92`, `0.123456`, `-3.50`).
pub(crate) fn decimal(micros: Micros) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let (units, fraction) = (abs / 1_000_000, abs % 1_000_000);
    let mut digits = format!("{fraction:06}");
    while digits.len() > 2 && digits.ends_with('0') {
        digits.pop();
    }
    format!("{sign}{units}.{digits}")
}

#[cfg(test)]
mod tests;
