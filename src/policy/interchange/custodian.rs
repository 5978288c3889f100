//! Tagwarden policy → Cloud Custodian policy file (YAML, written with `serde_norway`).
//!
//! One Custodian policy per resource type (there is no `resource: aws.*`), whose filters match
//! the resources that fail the Tagwarden policy as Custodian can see them: a required key absent
//! or blank, a value outside the allowed values or failing the regex, a prohibited key present,
//! a conflict holding. Only rules at or above `fail_at` are exported (the others never make a
//! resource non-compliant). Custodian reads tags as the cloud holds them, so the file judges the
//! *native* view; what it cannot express is listed in the lossiness report.

use serde::{Deserialize, Serialize};

use super::c7n_types::{C7N_TYPES, C7nType};
use super::custodian_filters::{Filter, glob_alternation, python_regex};
use super::{InterchangeError, LossItem, LossKind};
use crate::policy::compiled::{Policy, ValueCheck};
use crate::policy::model::KeyMatching;
use crate::policy::pattern::TypePatterns;

/// The tag `mark-for-op` writes (Custodian's default is `maid_status`).
pub(crate) const MARK_TAG: &str = "tagwarden_status";
/// The tag the `tag` action writes, and its value.
pub(crate) const MARKER_KEY: &str = "tagwarden_compliance";
pub(crate) const MARKER_VALUE: &str = "non-compliant";

/// A Custodian action on the matching resources.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CustodianAction {
    /// `mark-for-op`: tag the resource (`tagwarden_status`) for a `notify` after `mark_days`.
    MarkForOp,
    /// `notify`: a message through an SQS queue (c7n-mailer delivers it).
    Notify,
    /// `tag`: set `tagwarden_compliance=non-compliant` on the resource.
    Tag,
}

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct CustodianOptions {
    pub actions: Vec<CustodianAction>,
    /// Canonical types or patterns (`ec2:instance`, `rds:*`); empty: every mapped type the
    /// policy judges.
    pub resource_types: Vec<String>,
    /// Days before the marked operation (mark-for-op).
    pub mark_days: u32,
    /// Recipients of notify (c7n-mailer addresses, or `resource-owner`).
    pub notify_to: Vec<String>,
    /// The SQS queue (URL) c7n-mailer reads; required with notify.
    pub notify_queue: Option<String>,
    /// First part of each policy name.
    pub name_prefix: String,
}

impl Default for CustodianOptions {
    fn default() -> Self {
        CustodianOptions {
            actions: Vec::new(),
            resource_types: Vec::new(),
            mark_days: 7,
            notify_to: vec!["resource-owner".to_string()],
            notify_queue: None,
            name_prefix: "tagwarden".to_string(),
        }
    }
}

/// One generated Custodian policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct GeneratedPolicy {
    pub name: String,
    /// The Custodian resource, e.g. `aws.ec2`.
    pub resource: String,
    /// The Tagwarden type it covers, e.g. `ec2:instance`.
    pub resource_type: String,
    /// Checks in its filter (one per absent, blank, value, regex, prohibited or conflict test).
    pub checks: usize,
}

/// The YAML file and what it covers.
#[derive(Debug, Clone)]
pub(crate) struct CustodianExport {
    pub yaml: String,
    pub policies: Vec<GeneratedPolicy>,
    /// Types asked for (or named by the policy) that no Custodian resource is mapped to.
    pub unmapped_types: Vec<String>,
    pub lossiness: Vec<LossItem>,
}

#[derive(Serialize)]
struct File {
    policies: Vec<C7nPolicy>,
}

#[derive(Serialize)]
struct C7nPolicy {
    name: String,
    resource: &'static str,
    description: String,
    filters: Vec<Filter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Action {
    MarkForOp {
        #[serde(rename = "type")]
        kind: &'static str,
        tag: &'static str,
        op: &'static str,
        days: u32,
    },
    Notify {
        #[serde(rename = "type")]
        kind: &'static str,
        subject: String,
        to: Vec<String>,
        transport: Transport,
    },
    Tag {
        #[serde(rename = "type")]
        kind: &'static str,
        key: &'static str,
        value: &'static str,
    },
}

#[derive(Serialize)]
struct Transport {
    #[serde(rename = "type")]
    kind: &'static str,
    queue: String,
}

/// Generates the Custodian policies for `policy`.
pub(crate) fn generate_custodian(
    policy: &Policy,
    options: &CustodianOptions,
) -> Result<CustodianExport, InterchangeError> {
    if !valid_name(&options.name_prefix) {
        return Err(InterchangeError::invalid(
            "name_prefix",
            format!(
                "`{}` cannot start a Custodian policy name: letters, digits and single hyphens, \
                 starting with a letter",
                options.name_prefix
            ),
        ));
    }
    let notify_queue = match (
        options.actions.contains(&CustodianAction::Notify),
        &options.notify_queue,
    ) {
        (true, None) => {
            return Err(InterchangeError::invalid(
                "notify_queue",
                "the notify action needs the SQS queue URL c7n-mailer reads",
            ));
        }
        (true, Some(q)) if q.trim().is_empty() => {
            return Err(InterchangeError::invalid(
                "notify_queue",
                "the notify action needs the SQS queue URL c7n-mailer reads",
            ));
        }
        (true, Some(_)) if options.notify_to.is_empty() => {
            return Err(InterchangeError::invalid(
                "notify_to",
                "the notify action needs at least one recipient",
            ));
        }
        (true, Some(q)) => Some(q.trim().to_string()),
        (false, _) => None,
    };

    let mut loss = Vec::new();
    let (selected, unmapped) = select_types(policy, &options.resource_types);
    let hash = &policy.hash()[..policy.hash().len().min(12)];
    let mut policies = Vec::new();
    let mut generated = Vec::new();
    let mut skipped = Vec::new();
    let mut seen_checks: Vec<(&'static str, Vec<Filter>)> = Vec::new();
    for t in selected {
        if !policy.in_scope(t.canonical) {
            skipped.push(t.canonical);
            continue;
        }
        // The same canonical type (ELB) gives the same checks: report its losses once.
        let checks = match seen_checks.iter().find(|(c, _)| *c == t.canonical) {
            Some((_, checks)) => checks.clone(),
            None => {
                let checks = checks_for(policy, t.canonical, &mut loss);
                seen_checks.push((t.canonical, checks.clone()));
                checks
            }
        };
        if checks.is_empty() {
            skipped.push(t.canonical);
            continue;
        }
        let name = format!(
            "{}-{}",
            options.name_prefix,
            t.resource.trim_start_matches("aws.")
        );
        let actions = actions_for(t, options, notify_queue.as_deref(), &mut loss);
        generated.push(GeneratedPolicy {
            name: name.clone(),
            resource: t.resource.to_string(),
            resource_type: t.canonical.to_string(),
            checks: checks.len(),
        });
        policies.push(C7nPolicy {
            name,
            resource: t.resource,
            description: format!(
                "{} resources that fail the Tagwarden tagging policy {hash} (tags as the cloud \
                 holds them).",
                t.canonical
            ),
            filters: vec![Filter::any(checks)],
            actions,
        });
    }
    skipped.dedup();
    for t in skipped {
        loss.push(LossItem::new(
            LossKind::Dropped,
            t,
            "no rule of the policy applies to this type at or above fail_at: no Custodian \
             policy generated",
        ));
    }
    general_losses(policy, &mut loss);
    let body = serde_norway::to_string(&File { policies })
        .map_err(|e| InterchangeError::invalid("$", format!("could not write YAML: {e}")))?;
    let yaml = format!(
        "# Cloud Custodian policies generated by Tagwarden from the tagging policy {hash}.\n\
         # One policy per resource type; each matches the resources that fail the policy on the\n\
         # tags as the cloud holds them. Check with `custodian validate <file>`.\n{body}"
    );
    Ok(CustodianExport {
        yaml,
        policies: generated,
        unmapped_types: unmapped,
        lossiness: loss,
    })
}

/// Custodian's rule for policy names: `^[A-z][A-z0-9]*(-[A-z0-9]+)*$` (c7n/schema.py), kept to
/// ASCII letters (`A-z` also spans `[\]^_` and a backtick, which we never emit).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut parts = name.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    first
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && first.chars().all(|c| c.is_ascii_alphanumeric())
        && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The Custodian resources to generate, in table order, and the patterns none maps to.
fn select_types(policy: &Policy, asked: &[String]) -> (Vec<&'static C7nType>, Vec<String>) {
    let patterns: Vec<String> = if asked.is_empty() {
        let file = policy.file();
        let mut p: Vec<String> = Vec::new();
        for rule in &file.required_tags {
            match rule.applies_to.as_deref() {
                None | Some([]) => p.push("*".into()),
                Some(list) => p.extend(list.iter().cloned()),
            }
        }
        p.extend(file.scope.iter().flatten().cloned());
        p
    } else {
        asked.to_vec()
    };
    let mut selected: Vec<&'static C7nType> = Vec::new();
    let mut unmapped = Vec::new();
    for pattern in patterns {
        let matcher = TypePatterns::new(std::slice::from_ref(&pattern));
        let matched: Vec<&'static C7nType> = C7N_TYPES
            .iter()
            .filter(|t| matcher.matches(t.canonical))
            .collect();
        if matched.is_empty() {
            if !unmapped.contains(&pattern) {
                unmapped.push(pattern);
            }
            continue;
        }
        for t in matched {
            if !selected.iter().any(|s| s.resource == t.resource) {
                selected.push(t);
            }
        }
    }
    selected.sort_by_key(|t| C7N_TYPES.iter().position(|x| x.resource == t.resource));
    (selected, unmapped)
}

/// The failing conditions of one type, at or above `fail_at`.
fn checks_for(policy: &Policy, canonical: &str, loss: &mut Vec<LossItem>) -> Vec<Filter> {
    let fail_at = policy.fail_at();
    let mut checks = Vec::new();
    for &i in &policy.rules_for_type(canonical) {
        let rule = &policy.required_rules()[i as usize];
        if rule.severity < fail_at {
            continue;
        }
        let key = policy.key_name(rule.key);
        let path = format!("required_tags[{i}]");
        let mut any = vec![Filter::absent(key), Filter::blank(key)];
        any.extend(value_checks(key, &rule.check, &path, loss));
        match &rule.when {
            Some(when) => checks.push(Filter::And {
                and: vec![Filter::condition(&when.source), Filter::any(any)],
            }),
            None => checks.extend(any),
        }
    }
    for (i, rule) in policy.optional_rules().iter().enumerate() {
        if rule.severity < fail_at || rule.check.is_unconstrained() {
            continue;
        }
        let key = policy.key_name(rule.key);
        let values = value_checks(key, &rule.check, &format!("optional_tags[{i}]"), loss);
        if !values.is_empty() {
            checks.push(Filter::And {
                and: vec![Filter::present(key), Filter::any(values)],
            });
        }
    }
    for rule in policy.prohibited_rules() {
        if rule.severity >= fail_at {
            checks.push(Filter::present(&rule.name));
        }
    }
    for conflict in policy.conflict_rules() {
        if conflict.severity >= fail_at {
            checks.push(Filter::And {
                and: conflict
                    .conditions
                    .iter()
                    .map(|c| Filter::condition(&c.source))
                    .collect(),
            });
        }
    }
    checks
}

/// Filters matching a present value the check refuses: outside the allowed values (not-in, or
/// a regex when they hold wildcards), or failing the regex.
fn value_checks(
    key: &str,
    check: &ValueCheck,
    path: &str,
    loss: &mut Vec<LossItem>,
) -> Vec<Filter> {
    let mut out = Vec::new();
    if let Some(allowed) = &check.allowed {
        let values = allowed.values();
        if values.iter().any(|v| v.contains('*')) {
            out.push(Filter::fails_regex(key, &glob_alternation(values)));
        } else {
            out.push(Filter::not_in(key, values));
        }
    }
    if let Some(source) = &check.regex_source {
        match python_regex(source) {
            Ok(python) => out.push(Filter::fails_regex(key, &python)),
            Err(why) => {
                let item = LossItem::new(
                    LossKind::Dropped,
                    format!("{path}.validation_regex"),
                    format!("`{source}`: {why}; the value's format is not checked by Custodian"),
                );
                if !loss.contains(&item) {
                    loss.push(item);
                }
            }
        }
    }
    out
}

fn actions_for(
    t: &C7nType,
    options: &CustodianOptions,
    notify_queue: Option<&str>,
    loss: &mut Vec<LossItem>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut chosen = options.actions.clone();
    chosen.sort();
    chosen.dedup();
    for action in chosen {
        match action {
            CustodianAction::MarkForOp if !t.mark_for_op => loss.push(LossItem::new(
                LossKind::Dropped,
                t.resource,
                "Cloud Custodian has no mark-for-op action for this resource: left out",
            )),
            CustodianAction::MarkForOp => actions.push(Action::MarkForOp {
                kind: "mark-for-op",
                tag: MARK_TAG,
                op: "notify",
                days: options.mark_days,
            }),
            CustodianAction::Notify => actions.push(Action::Notify {
                kind: "notify",
                subject: format!("{} resources fail the tagging policy", t.canonical),
                to: options.notify_to.clone(),
                transport: Transport {
                    kind: "sqs",
                    queue: notify_queue.unwrap_or_default().to_string(),
                },
            }),
            CustodianAction::Tag => actions.push(Action::Tag {
                kind: "tag",
                key: MARKER_KEY,
                value: MARKER_VALUE,
            }),
        }
    }
    actions
}

/// What no Custodian filter here expresses.
fn general_losses(policy: &Policy, loss: &mut Vec<LossItem>) {
    let file = policy.file();
    if policy.key_matching() == KeyMatching::CaseInsensitive
        || !file.aliases.is_empty()
        || !file.value_aliases.is_empty()
    {
        loss.push(LossItem::new(
            LossKind::Approximated,
            "aliases",
            "Custodian reads tags as the cloud holds them (Tagwarden's native view): a case \
             variant or alias of a required key counts as absent, one of a prohibited key or of \
             a key that need not be present is not flagged, and value aliases are not applied",
        ));
    }
    if policy.max_tags().is_some() {
        loss.push(LossItem::new(
            LossKind::Dropped,
            "max_tags",
            "the number of tags is not checked by the Custodian policies",
        ));
    }
    if let Some(rules) = &file.tag_naming_rules
        && (rules.max_key_length.is_some() || rules.max_value_length.is_some())
    {
        loss.push(LossItem::new(
            LossKind::Dropped,
            "tag_naming_rules",
            "key and value lengths are not checked by the Custodian policies",
        ));
    }
    let below: Vec<String> = policy
        .required_rules()
        .iter()
        .filter(|r| r.severity < policy.fail_at())
        .map(|r| policy.key_name(r.key).to_string())
        .collect();
    if !below.is_empty() {
        loss.push(LossItem::new(
            LossKind::Dropped,
            "severity",
            format!(
                "rules below fail_at ({}) never make a resource non-compliant and are left out: \
                 {}",
                policy.fail_at(),
                below.join(", ")
            ),
        ));
    }
}
