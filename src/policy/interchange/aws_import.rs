//! AWS Organizations tag policy → Tagwarden policy.
//!
//! Accepts a tag policy document (`{"tags": {...}}`, values bare or under `@@assign` /
//! `@@append` / `@@remove`), `DescribeEffectivePolicy`'s answer (its `PolicyContent` is the
//! document as a JSON *string*) and `DescribePolicy`'s answer (`Policy.Content`). The mapping
//! follows AWS's own rules, because the imported policy must judge resources as AWS does:
//!
//! - `tag_key` (else the policy key in lower case) is the key's required capitalisation: the
//!   key is governed with case-insensitive matching, so a case variant is a `misnamed_key` in
//!   the native view (AWS's verdict) and is read as the key in the effective view;
//! - `tag_value` becomes allowed values checked wherever the key is present (an optional tag:
//!   AWS never makes a key required through `tag_value`), `*` kept as a wildcard;
//! - `report_required_tag_for` makes the key required on those types (`ec2:ALL_SUPPORTED` →
//!   `ec2:*`);
//! - `enforced_for` blocks tagging operations in AWS; Tagwarden reports and does not block, so
//!   it is recorded in the description and never treated as "required";
//! - `scope: ["*"]`, because AWS's value and capitalisation rules hold for every type, not only
//!   where a tag is required.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{InterchangeError, LossItem, LossKind};
use crate::policy::compiled::Policy;
use crate::policy::loader::PolicyError;
use crate::policy::model::{KeyMatching, OptionalTag, PolicyFile, RequiredTag, Severity};

const CHILD_CONTROL: &str = "@@operators_allowed_for_child_policies";

/// The envelope the tag policy came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AwsSource {
    /// A policy document as written (`{"tags": {...}}`): one policy, before inheritance.
    PolicyDocument,
    /// `DescribeEffectivePolicy`'s answer: the merged policy in force for one account.
    EffectivePolicy,
    /// `DescribePolicy`'s answer: one policy as attached, before inheritance.
    DescribePolicy,
}

/// The converted policy and what could not be carried over.
#[derive(Debug, Clone)]
pub(crate) struct AwsImport {
    pub policy: PolicyFile,
    pub source: AwsSource,
    /// The account (or OU) an effective policy is for.
    pub target_id: Option<String>,
    /// Tag policy keys read.
    pub keys: usize,
    pub lossiness: Vec<LossItem>,
}

/// Converts a tag policy (any of the accepted envelopes) into a Tagwarden policy that compiles.
pub(crate) fn import_aws_tag_policy(text: &str) -> Result<AwsImport, InterchangeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| InterchangeError::syntax(&e))?;
    import_aws_tag_policy_value(value)
}

/// As [`import_aws_tag_policy`], for a document already parsed.
pub(crate) fn import_aws_tag_policy_value(value: Value) -> Result<AwsImport, InterchangeError> {
    let envelope = unwrap_envelope(value)?;
    let mut loss = Vec::new();
    let keys = read_keys(&envelope.document, &mut loss)?;
    let mut policy = PolicyFile {
        description: Some(envelope.description()),
        last_updated: envelope.last_updated.clone(),
        key_matching: Some(KeyMatching::CaseInsensitive),
        fail_at: Some(Severity::Low),
        ..PolicyFile::default()
    };
    for key in &keys {
        key.add_to(&mut policy);
    }
    if !keys.is_empty() {
        policy.scope = Some(vec!["*".to_string()]);
        loss.push(LossItem::new(
            LossKind::Approximated,
            "tags",
            "AWS evaluates a tag policy only on the resource types that support tag policies; \
             the imported policy judges every resource type (scope [\"*\"])",
        ));
    }
    if keys.iter().any(|k| !k.required_for.is_empty()) {
        loss.push(LossItem::new(
            LossKind::Approximated,
            "report_required_tag_for",
            "a required key whose value is empty or blank is an empty_value violation in \
             Tagwarden; AWS counts the key as present",
        ));
    }
    // The output must load: compile it now so a key AWS accepts but Tagwarden refuses (such as
    // one with surrounding spaces) is reported here, with the tag policy key named.
    if let Err(e) = Policy::compile(policy.clone(), String::new()) {
        let (path, reason) = match e {
            PolicyError::Invalid { path, reason } => (path, reason),
            other => ("$".to_string(), other.to_string()),
        };
        return Err(InterchangeError::invalid(
            "tags",
            format!("the converted policy is refused at `{path}`: {reason}"),
        ));
    }
    Ok(AwsImport {
        policy,
        source: envelope.source,
        target_id: envelope.target_id,
        keys: keys.len(),
        lossiness: loss,
    })
}

/// The tag policy document and what its envelope said about it.
struct Envelope {
    document: Value,
    source: AwsSource,
    target_id: Option<String>,
    policy_name: Option<String>,
    last_updated: Option<String>,
}

impl Envelope {
    fn description(&self) -> String {
        match (self.source, &self.target_id, &self.policy_name) {
            (AwsSource::EffectivePolicy, Some(target), _) => {
                format!("Imported from the effective AWS Organizations tag policy of {target}.")
            }
            (AwsSource::EffectivePolicy, None, _) => {
                "Imported from an effective AWS Organizations tag policy.".to_string()
            }
            (AwsSource::DescribePolicy, _, Some(name)) => {
                format!("Imported from the AWS Organizations tag policy `{name}`.")
            }
            _ => "Imported from an AWS Organizations tag policy.".to_string(),
        }
    }
}

fn unwrap_envelope(value: Value) -> Result<Envelope, InterchangeError> {
    let Value::Object(mut outer) = value else {
        return Err(InterchangeError::invalid(
            "$",
            "expected a tag policy object (`{\"tags\": {...}}`) or DescribeEffectivePolicy's answer",
        ));
    };
    // `{"EffectivePolicy": {...}}` (the CLI's answer) or the EffectivePolicy object itself.
    let effective = match outer.remove("EffectivePolicy") {
        Some(Value::Object(inner)) => Some(("EffectivePolicy.", inner)),
        Some(_) => {
            return Err(InterchangeError::invalid(
                "EffectivePolicy",
                "expected an object with PolicyContent",
            ));
        }
        None if outer.contains_key("PolicyContent") => Some(("", std::mem::take(&mut outer))),
        None => None,
    };
    if let Some((prefix, inner)) = effective {
        if let Some(kind) = inner.get("PolicyType").and_then(Value::as_str)
            && kind != "TAG_POLICY"
        {
            return Err(InterchangeError::invalid(
                format!("{prefix}PolicyType"),
                format!("this is a {kind} policy, not a TAG_POLICY"),
            ));
        }
        let document = content(&inner, "PolicyContent", prefix)?;
        return Ok(Envelope {
            document,
            source: AwsSource::EffectivePolicy,
            target_id: inner
                .get("TargetId")
                .and_then(Value::as_str)
                .map(str::to_string),
            policy_name: None,
            last_updated: inner.get("LastUpdatedTimestamp").and_then(|t| match t {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        });
    }
    if let Some(Value::Object(policy)) = outer.get("Policy") {
        let summary = policy.get("PolicySummary");
        if let Some(kind) = summary.and_then(|s| s.get("Type")).and_then(Value::as_str)
            && kind != "TAG_POLICY"
        {
            return Err(InterchangeError::invalid(
                "Policy.PolicySummary.Type",
                format!("this is a {kind} policy, not a TAG_POLICY"),
            ));
        }
        let document = content(policy, "Content", "Policy.")?;
        return Ok(Envelope {
            document,
            source: AwsSource::DescribePolicy,
            target_id: None,
            policy_name: summary
                .and_then(|s| s.get("Name"))
                .and_then(Value::as_str)
                .map(str::to_string),
            last_updated: None,
        });
    }
    Ok(Envelope {
        document: Value::Object(outer),
        source: AwsSource::PolicyDocument,
        target_id: None,
        policy_name: None,
        last_updated: None,
    })
}

/// A policy held as a JSON string (AWS's answers), parsed; an object is accepted as is.
fn content(map: &Map<String, Value>, field: &str, prefix: &str) -> Result<Value, InterchangeError> {
    let path = format!("{prefix}{field}");
    match map.get(field) {
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| {
            InterchangeError::invalid(
                &path,
                format!("is not valid JSON: {}", InterchangeError::syntax(&e)),
            )
        }),
        Some(object @ Value::Object(_)) => Ok(object.clone()),
        _ => Err(InterchangeError::invalid(
            path,
            "missing: expected the tag policy as a JSON string",
        )),
    }
}

/// One tag policy key, after its operators.
#[derive(Debug, Default)]
struct KeyRule {
    policy_key: String,
    /// The required capitalisation.
    name: String,
    values: Option<Vec<String>>,
    required_for: Vec<String>,
    enforced_for: Vec<String>,
}

impl KeyRule {
    fn add_to(&self, policy: &mut PolicyFile) {
        let enforced = if self.enforced_for.is_empty() {
            String::new()
        } else {
            format!(
                " AWS blocks non-compliant tagging operations on {} (enforced_for); Tagwarden \
                 reports, it does not block.",
                self.enforced_for.join(", ")
            )
        };
        if !self.required_for.is_empty() {
            policy.required_tags.push(RequiredTag {
                name: self.name.clone(),
                description: Some(format!(
                    "AWS tag policy key `{}`: required on {} (report_required_tag_for).{enforced}",
                    self.policy_key,
                    self.required_for.join(", ")
                )),
                applies_to: Some(self.required_for.clone()),
                ..RequiredTag::default()
            });
        }
        // A value rule holds wherever the key is present; a key with neither values nor a
        // requirement still governs its capitalisation.
        if self.values.is_some() || self.required_for.is_empty() {
            let what = match &self.values {
                Some(v) if !v.is_empty() => {
                    "the value must be one of the listed values wherever the key is present \
                     (tag_value)"
                }
                _ => "its capitalisation is checked wherever it is present (tag_key)",
            };
            policy.optional_tags.push(OptionalTag {
                name: self.name.clone(),
                description: Some(format!(
                    "AWS tag policy key `{}`: {what}.{}",
                    self.policy_key,
                    if self.required_for.is_empty() {
                        enforced.as_str()
                    } else {
                        ""
                    }
                )),
                allowed_values: self.values.clone().filter(|v| !v.is_empty()),
                validation_regex: None,
                // Any AWS non-compliance counts the same; `high` is what a required key gets.
                severity: self
                    .values
                    .as_ref()
                    .filter(|v| !v.is_empty())
                    .map(|_| Severity::High),
            });
        }
    }
}

fn read_keys(document: &Value, loss: &mut Vec<LossItem>) -> Result<Vec<KeyRule>, InterchangeError> {
    let Value::Object(doc) = document else {
        return Err(InterchangeError::invalid(
            "$",
            "a tag policy is a JSON object with a `tags` member",
        ));
    };
    for field in doc.keys().filter(|k| *k != "tags") {
        if field == CHILD_CONTROL {
            loss.push(child_control(field));
        } else {
            loss.push(LossItem::new(
                LossKind::Dropped,
                field,
                "not part of a tag policy; ignored",
            ));
        }
    }
    let tags = match doc.get("tags") {
        Some(Value::Object(tags)) => tags,
        Some(_) => {
            return Err(InterchangeError::invalid(
                "tags",
                "expected an object of tag policy keys",
            ));
        }
        None => {
            return Err(InterchangeError::invalid(
                "tags",
                "missing: a tag policy is `{\"tags\": {\"costcenter\": {\"tag_key\": ...}}}`",
            ));
        }
    };
    let mut keys: Vec<KeyRule> = Vec::new();
    for (policy_key, entry) in tags {
        let path = format!("tags.{policy_key}");
        if policy_key == CHILD_CONTROL {
            loss.push(child_control(&path));
            continue;
        }
        if policy_key.starts_with("@@") {
            return Err(unknown_operator(&path, policy_key));
        }
        if let Some(previous) = keys
            .iter()
            .find(|k| k.policy_key.to_lowercase() == policy_key.to_lowercase())
        {
            return Err(InterchangeError::invalid(
                path,
                format!(
                    "policy keys are case-insensitive: `{policy_key}` repeats `{}`",
                    previous.policy_key
                ),
            ));
        }
        keys.push(read_key(policy_key, entry, &path, loss)?);
    }
    Ok(keys)
}

fn read_key(
    policy_key: &str,
    entry: &Value,
    path: &str,
    loss: &mut Vec<LossItem>,
) -> Result<KeyRule, InterchangeError> {
    let Value::Object(fields) = entry else {
        return Err(InterchangeError::invalid(
            path,
            "expected an object with tag_key, tag_value, enforced_for or report_required_tag_for",
        ));
    };
    let mut rule = KeyRule {
        policy_key: policy_key.to_string(),
        ..KeyRule::default()
    };
    let mut tag_key = None;
    let mut enforced = None;
    let mut required = None;
    for (field, value) in fields {
        let fpath = format!("{path}.{field}");
        match field.as_str() {
            "tag_key" => tag_key = single_setting(value, &fpath, loss)?,
            "tag_value" => rule.values = list_setting(value, &fpath, loss)?,
            "enforced_for" => enforced = list_setting(value, &fpath, loss)?,
            "report_required_tag_for" => required = list_setting(value, &fpath, loss)?,
            CHILD_CONTROL => loss.push(child_control(&fpath)),
            other if other.starts_with("@@") => return Err(unknown_operator(&fpath, other)),
            _ => loss.push(LossItem::new(
                LossKind::Dropped,
                fpath,
                "not a tag policy field (tag_key, tag_value, enforced_for, \
                 report_required_tag_for); ignored",
            )),
        }
    }
    rule.name = match tag_key {
        Some(name) => {
            if name.to_lowercase() != policy_key.to_lowercase() {
                return Err(InterchangeError::invalid(
                    format!("{path}.tag_key"),
                    format!(
                        "`{name}` must be the policy key `{policy_key}` (capitalisation may differ)"
                    ),
                ));
            }
            name
        }
        // Without tag_key AWS requires the key in lower case.
        None => policy_key.to_lowercase(),
    };
    if rule.name.to_lowercase().starts_with("aws:") {
        return Err(InterchangeError::invalid(
            path,
            "keys starting with `aws:` are reserved by AWS and cannot be governed",
        ));
    }
    if let Some(values) = &rule.values {
        let vpath = format!("{path}.tag_value");
        if values.is_empty() {
            loss.push(LossItem::new(
                LossKind::Approximated,
                &vpath,
                "an empty list of values: imported as any value",
            ));
        }
        for v in values.iter().filter(|v| v.matches('*').count() > 1) {
            loss.push(LossItem::new(
                LossKind::Approximated,
                &vpath,
                format!(
                    "`{v}` has more than one `*`, which AWS refuses; imported as a wildcard \
                     pattern (each `*` matches any run of characters)"
                ),
            ));
        }
    }
    if let Some(types) = enforced {
        let epath = format!("{path}.enforced_for");
        rule.enforced_for = convert_types(&types, &epath, loss);
        if !rule.enforced_for.is_empty() {
            loss.push(LossItem::new(
                LossKind::Recorded,
                epath,
                format!(
                    "AWS blocks non-compliant tagging operations on {}; Tagwarden reports and does \
                     not block: recorded in the description, not made required",
                    rule.enforced_for.join(", ")
                ),
            ));
        }
    }
    if let Some(types) = required {
        rule.required_for = convert_types(&types, &format!("{path}.report_required_tag_for"), loss);
    }
    Ok(rule)
}

/// `service:type` entries as Tagwarden type patterns: `service:ALL_SUPPORTED` (and the older
/// `service:*`) → `service:*`; anything AWS would refuse is reported and left out.
fn convert_types(types: &[String], path: &str, loss: &mut Vec<LossItem>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let converted = match t.split_once(':') {
            Some((service, kind))
                if !service.is_empty() && !service.contains('*') && !kind.is_empty() =>
            {
                if kind.eq_ignore_ascii_case("ALL_SUPPORTED") || kind == "*" {
                    Some(format!("{service}:*"))
                } else if kind.contains('*') {
                    None
                } else {
                    Some(t.clone())
                }
            }
            _ => None,
        };
        match converted {
            Some(c) if !out.contains(&c) => out.push(c),
            Some(_) => {}
            None => loss.push(LossItem::new(
                LossKind::Dropped,
                path,
                format!(
                    "`{t}` is not `service:type` or `service:ALL_SUPPORTED` (AWS allows no other \
                     wildcard); left out"
                ),
            )),
        }
    }
    out
}

fn child_control(path: &str) -> LossItem {
    LossItem::new(
        LossKind::Dropped,
        path,
        "@@operators_allowed_for_child_policies only limits what child policies may change; it \
         is not a rule on resources",
    )
}

fn unknown_operator(path: &str, op: &str) -> InterchangeError {
    InterchangeError::invalid(
        path,
        format!(
            "unknown operator `{op}` (AWS has @@assign, @@append, @@remove and \
             @@operators_allowed_for_child_policies)"
        ),
    )
}

/// A setting's operators: a bare value (as in effective policies) is `@@assign`.
#[derive(Default)]
struct Operators<'a> {
    assign: Option<&'a Value>,
    append: Option<&'a Value>,
    remove: Option<&'a Value>,
}

fn operators<'a>(
    value: &'a Value,
    path: &str,
    loss: &mut Vec<LossItem>,
) -> Result<Operators<'a>, InterchangeError> {
    let Value::Object(map) = value else {
        return Ok(Operators {
            assign: Some(value),
            ..Operators::default()
        });
    };
    let mut ops = Operators::default();
    for (op, v) in map {
        match op.as_str() {
            "@@assign" => ops.assign = Some(v),
            "@@append" => ops.append = Some(v),
            "@@remove" => ops.remove = Some(v),
            CHILD_CONTROL => loss.push(child_control(&format!("{path}.{op}"))),
            other if other.starts_with("@@") => {
                return Err(unknown_operator(&format!("{path}.{other}"), other));
            }
            other => {
                return Err(InterchangeError::invalid(
                    format!("{path}.{other}"),
                    "expected a value or an object of @@ operators (@@assign, @@append, @@remove)",
                ));
            }
        }
    }
    Ok(ops)
}

/// A single-valued setting (`tag_key`): None when this policy does not set it.
fn single_setting(
    value: &Value,
    path: &str,
    loss: &mut Vec<LossItem>,
) -> Result<Option<String>, InterchangeError> {
    let ops = operators(value, path, loss)?;
    if ops.append.is_some() || ops.remove.is_some() {
        return Err(InterchangeError::invalid(
            path,
            "@@append and @@remove apply to lists only; tag_key is a single value (use @@assign)",
        ));
    }
    match ops.assign {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(InterchangeError::invalid(
            path,
            "expected the key as a non-empty string",
        )),
    }
}

/// A list setting after this policy's operators: None when the policy does not set it.
///
/// A single policy does not show what it inherits, so `@@append` is read as appending to
/// nothing and `@@remove` as removing nothing; both are reported (the effective policy has
/// them resolved already).
fn list_setting(
    value: &Value,
    path: &str,
    loss: &mut Vec<LossItem>,
) -> Result<Option<Vec<String>>, InterchangeError> {
    let ops = operators(value, path, loss)?;
    let mut values = match ops.assign {
        Some(v) => Some(strings(v, &format!("{path}.@@assign"))?),
        None => None,
    };
    if let Some(v) = ops.append {
        let appended = strings(v, &format!("{path}.@@append"))?;
        loss.push(LossItem::new(
            LossKind::Approximated,
            format!("{path}.@@append"),
            format!(
                "@@append adds {} to the values inherited from parent policies, which a single \
                 policy does not show: imported as if nothing were inherited (import the \
                 effective policy for the merged result)",
                quoted(&appended)
            ),
        ));
        values.get_or_insert_with(Vec::new).extend(appended);
    }
    if let Some(v) = ops.remove {
        let removed = strings(v, &format!("{path}.@@remove"))?;
        loss.push(LossItem::new(
            LossKind::Dropped,
            format!("{path}.@@remove"),
            format!(
                "@@remove takes {} out of the values inherited from parent policies, which a \
                 single policy does not show: nothing removed (import the effective policy for \
                 the merged result)",
                quoted(&removed)
            ),
        ));
    }
    Ok(values.map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|x| seen.insert(x.clone()));
        v
    }))
}

fn strings(value: &Value, path: &str) -> Result<Vec<String>, InterchangeError> {
    let Value::Array(items) = value else {
        return Err(InterchangeError::invalid(
            path,
            "expected a list of strings",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(InterchangeError::invalid(
                format!("{path}[{i}]"),
                "expected a string",
            )),
        })
        .collect()
}

fn quoted(values: &[String]) -> String {
    if values.is_empty() {
        return "nothing".to_string();
    }
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
