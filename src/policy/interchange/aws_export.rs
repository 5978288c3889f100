//! Tagwarden policy → AWS Organizations tag policy (`@@assign` only).
//!
//! What maps: each governed key becomes a policy key (lower case) with `tag_key` (its
//! capitalisation), `tag_value` (the allowed values of its rules, `*` kept when there is at most
//! one per value) and `report_required_tag_for` (the types of its unconditional required rules,
//! `ec2:*` → `ec2:ALL_SUPPORTED`). Everything else has no AWS equivalent and is listed in the
//! lossiness report: regexes, `when` conditions, severities and `fail_at`, aliases and value
//! aliases, prohibited tags, `max_tags`, conflicts, length limits, requirements on every type.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{LossItem, LossKind};
use crate::policy::compiled::Policy;
use crate::policy::model::{KeyMatching, MaxTags, PolicyFile};

/// The AWS tag policy document and what could not be carried over.
#[derive(Debug, Clone)]
pub(crate) struct AwsExport {
    pub document: Value,
    pub keys: usize,
    pub lossiness: Vec<LossItem>,
}

/// One AWS policy key being built.
#[derive(Debug, Default)]
struct KeyOut {
    tag_key: String,
    /// None: no rule constrains the value.
    values: Option<Vec<String>>,
    /// A rule of this key accepts any value.
    any_value: bool,
    required_for: Vec<String>,
}

/// Writes the policy as an AWS tag policy.
pub(crate) fn export_aws_tag_policy(policy: &Policy) -> AwsExport {
    let file = policy.file();
    let mut loss = Vec::new();
    let mut keys: BTreeMap<String, KeyOut> = BTreeMap::new();

    for (i, rule) in file.required_tags.iter().enumerate() {
        let path = format!("required_tags[{i}]");
        if rule.when.is_some() {
            // The key is still governed (its capitalisation is checked in the native view).
            key_out(&mut keys, &rule.name, &path, &mut loss);
            loss.push(LossItem::new(
                LossKind::Dropped,
                format!("{path}.when"),
                format!(
                    "`{}` is required only under a condition, which AWS cannot express: only its \
                     capitalisation is exported",
                    rule.name
                ),
            ));
            continue;
        }
        let Some(key) = key_out(&mut keys, &rule.name, &path, &mut loss) else {
            continue;
        };
        let types = required_types(rule.applies_to.as_deref(), &rule.name, &path, &mut loss);
        for t in types {
            if !key.required_for.contains(&t) {
                key.required_for.push(t);
            }
        }
        let restricted = rule
            .applies_to
            .as_ref()
            .is_some_and(|a| !a.is_empty() && !a.iter().any(|p| p.trim() == "*"));
        add_values(
            key,
            rule.allowed_values.as_deref(),
            &path,
            restricted,
            &mut loss,
        );
        regex_loss(rule.validation_regex.as_deref(), &path, &mut loss);
    }
    for (i, rule) in file.optional_tags.iter().enumerate() {
        let path = format!("optional_tags[{i}]");
        let Some(key) = key_out(&mut keys, &rule.name, &path, &mut loss) else {
            continue;
        };
        add_values(key, rule.allowed_values.as_deref(), &path, false, &mut loss);
        regex_loss(rule.validation_regex.as_deref(), &path, &mut loss);
    }
    other_losses(policy, file, &mut loss);

    let mut tags = serde_json::Map::new();
    for (policy_key, key) in &keys {
        let mut entry = serde_json::Map::new();
        entry.insert("tag_key".into(), json!({ "@@assign": key.tag_key }));
        // A rule accepting any value wins: AWS's one value list holds for every type.
        if let Some(values) = key.values.as_ref().filter(|_| !key.any_value) {
            entry.insert("tag_value".into(), json!({ "@@assign": values }));
        }
        if !key.required_for.is_empty() {
            entry.insert(
                "report_required_tag_for".into(),
                json!({ "@@assign": key.required_for }),
            );
        }
        tags.insert(policy_key.clone(), Value::Object(entry));
    }
    AwsExport {
        document: json!({ "tags": tags }),
        keys: keys.len(),
        lossiness: loss,
    }
}

/// The AWS entry for a key; None (reported) when another key differs from it only in case,
/// which AWS's case-insensitive policy keys cannot tell apart.
fn key_out<'k>(
    keys: &'k mut BTreeMap<String, KeyOut>,
    name: &str,
    path: &str,
    loss: &mut Vec<LossItem>,
) -> Option<&'k mut KeyOut> {
    let entry = keys.entry(name.to_lowercase()).or_insert_with(|| KeyOut {
        tag_key: name.to_string(),
        ..KeyOut::default()
    });
    if entry.tag_key != name {
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("{path}.name"),
            format!(
                "AWS policy keys ignore case: `{name}` and `{}` would be one key; kept `{}`",
                entry.tag_key, entry.tag_key
            ),
        ));
        return None;
    }
    Some(entry)
}

/// `applies_to` as `report_required_tag_for` entries.
fn required_types(
    applies_to: Option<&[String]>,
    name: &str,
    path: &str,
    loss: &mut Vec<LossItem>,
) -> Vec<String> {
    let patterns: Vec<&str> = applies_to
        .unwrap_or_default()
        .iter()
        .map(|p| p.trim())
        .collect();
    if patterns.is_empty() || patterns.contains(&"*") {
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("{path}.applies_to"),
            format!(
                "`{name}` is required on every resource type; AWS's report_required_tag_for \
                 needs `service:type` or `service:ALL_SUPPORTED` entries: not exported as \
                 required (list the services you use)"
            ),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in patterns {
        let converted = match p.split_once(':') {
            None if !p.contains('*') => Some(format!("{p}:ALL_SUPPORTED")),
            Some((service, "*")) if !service.contains('*') && !service.is_empty() => {
                Some(format!("{service}:ALL_SUPPORTED"))
            }
            Some((service, kind))
                if !service.is_empty() && !kind.is_empty() && !p.contains('*') =>
            {
                Some(p.to_string())
            }
            _ => None,
        };
        match converted {
            Some(c) => out.push(c),
            None => loss.push(LossItem::new(
                LossKind::Dropped,
                format!("{path}.applies_to"),
                format!(
                    "`{p}` is a pattern AWS cannot express (only `service:type` and \
                     `service:ALL_SUPPORTED`): not exported"
                ),
            )),
        }
    }
    out
}

fn add_values(
    key: &mut KeyOut,
    values: Option<&[String]>,
    path: &str,
    restricted: bool,
    loss: &mut Vec<LossItem>,
) {
    let Some(values) = values.filter(|v| !v.is_empty()) else {
        if key.values.is_some() && !key.any_value {
            loss.push(any_value_wins(&key.tag_key, path));
        }
        key.any_value = true;
        return;
    };
    let mut kept = Vec::new();
    for v in values {
        if v.matches('*').count() > 1 {
            loss.push(LossItem::new(
                LossKind::Dropped,
                format!("{path}.allowed_values"),
                format!("`{v}` has more than one `*`, which AWS refuses: not exported"),
            ));
        } else {
            kept.push(v.clone());
        }
    }
    if restricted {
        loss.push(LossItem::new(
            LossKind::Approximated,
            format!("{path}.allowed_values"),
            format!(
                "AWS checks `{}`'s tag_value on every resource type; here the values apply only \
                 where the rule does",
                key.tag_key
            ),
        ));
    }
    if key.any_value {
        loss.push(any_value_wins(&key.tag_key, path));
        return;
    }
    match &mut key.values {
        None => key.values = Some(kept),
        Some(existing) => {
            let before = existing.len();
            let differs =
                existing.len() != kept.len() || kept.iter().any(|v| !existing.contains(v));
            for v in kept {
                if !existing.contains(&v) {
                    existing.push(v);
                }
            }
            if differs {
                loss.push(LossItem::new(
                    LossKind::Approximated,
                    format!("{path}.allowed_values"),
                    format!(
                        "AWS has one value list per key: `{}`'s lists are merged ({before} → {} \
                         values)",
                        key.tag_key,
                        existing.len()
                    ),
                ));
            }
        }
    }
}

fn any_value_wins(key: &str, path: &str) -> LossItem {
    LossItem::new(
        LossKind::Approximated,
        format!("{path}.allowed_values"),
        format!(
            "one rule of `{key}` accepts any value and another lists values; AWS has one value \
             list per key: exported without tag_value (any value)"
        ),
    )
}

fn regex_loss(regex: Option<&str>, path: &str, loss: &mut Vec<LossItem>) {
    if let Some(r) = regex.map(str::trim).filter(|r| !r.is_empty()) {
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("{path}.validation_regex"),
            format!("AWS tag policies have no regular expressions: `{r}` is not exported"),
        ));
    }
}

/// Whole-policy features with no AWS equivalent.
fn other_losses(policy: &Policy, file: &PolicyFile, loss: &mut Vec<LossItem>) {
    let severities = file.required_tags.iter().any(|r| r.severity.is_some())
        || file.optional_tags.iter().any(|r| r.severity.is_some())
        || file.fail_at.is_some();
    if severities {
        loss.push(LossItem::new(
            LossKind::Dropped,
            "severity",
            format!(
                "severities and fail_at ({}) have no AWS equivalent: in AWS every violation \
                 makes a resource non-compliant",
                policy.fail_at()
            ),
        ));
    }
    for key in file.aliases.keys() {
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("aliases.{key}"),
            "AWS has no key aliases: a variant that differs only in case is non-compliant, any \
             other is an unrelated key",
        ));
    }
    for key in file.value_aliases.keys() {
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("value_aliases.{key}"),
            "AWS has no value aliases: a variant value is simply not an allowed value",
        ));
    }
    for (i, _) in file.prohibited_tags.iter().enumerate() {
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("prohibited_tags[{i}]"),
            "AWS tag policies cannot forbid a key: not exported",
        ));
    }
    if let Some(max) = &file.max_tags {
        let limit = match max {
            MaxTags::Limit(n) | MaxTags::Rule { limit: n, .. } => *n,
        };
        loss.push(LossItem::new(
            LossKind::Dropped,
            "max_tags",
            format!("AWS tag policies cannot limit the number of tags ({limit}): not exported"),
        ));
    }
    for (i, _) in file.conflicts.iter().enumerate() {
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("conflicts[{i}]"),
            "AWS tag policies cannot relate two tags: not exported",
        ));
    }
    if let Some(rules) = &file.tag_naming_rules
        && (rules.max_key_length.is_some() || rules.max_value_length.is_some())
    {
        loss.push(LossItem::new(
            LossKind::Dropped,
            "tag_naming_rules",
            "AWS tag policies have no length limits: not exported",
        ));
    }
    if policy.key_matching() == KeyMatching::Exact {
        loss.push(LossItem::new(
            LossKind::Approximated,
            "key_matching",
            "AWS matches policy keys ignoring case and flags any other capitalisation; with \
             exact matching Tagwarden treats a case variant as an unrelated key",
        ));
    }
}
