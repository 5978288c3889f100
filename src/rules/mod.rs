//! Virtual-tagging rules: ordered, first-match rules that derive tags for a resource from its
//! fields (name, type, account, ...) and its effective tags, so an estate can be tagged by
//! convention before anyone touches the cloud. Pure: no I/O. The caller (the
//! `manage_tag_rules` tool) stores the rules, runs them and records the results (approved for
//! trusted rules, pending otherwise).
//!
//! Rules run after the policy's normalisation: `tag:KEY` conditions read the *effective* tags
//! (aliases renamed to canonical keys, value aliases applied). Rules are tried by priority (lower
//! first, then id); the first enabled rule whose condition holds wins for that resource.
//!
//! A rule, as users write it:
//!
//! ```json
//! {
//!   "name": "application from instance name",
//!   "priority": 10,
//!   "trusted": true,
//!   "description": "EC2 names are <app>-<stage>-NN: backfill Application and Stage.",
//!   "when": {"all": [
//!     {"field": "type", "eq": "ec2:instance"},
//!     {"field": "tag:Application", "absent": true},
//!     {"field": "name", "regex": "^(?P<app>[a-z-]+)-(prod|stg|dev)-\\d+$"}
//!   ]},
//!   "set": {"Application": "{app}", "Stage": "{2}"}
//! }
//! ```
//!
//! `{2}` is group 2 of the first regex that matched (named groups are numbered too), `{app}` the
//! group named `app`. Another, with `any`, `not` and a glob:
//!
//! ```json
//! {
//!   "name": "payments data stores outside sandboxes",
//!   "priority": 20,
//!   "when": {"all": [
//!     {"any": [{"field": "name", "glob": "payments-*"}, {"field": "stack", "glob": "ledger-*"}]},
//!     {"not": {"field": "tag:Environment", "glob": "sandbox-*"}},
//!     {"field": "type", "in": ["rds:db", "dynamodb:table", "s3:bucket"]}
//!   ]},
//!   "set": {"Team": "payments", "DataClassification": "confidential"}
//! }
//! ```

mod compile;
mod eval;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

pub use compile::CompiledRules;

/// A virtual-tagging rule: when the condition holds for a resource, the rule proposes the tags
/// in `set`. Rules are tried by `priority` (lowest first); the first enabled rule that matches a
/// resource wins and later rules are not tried for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Short human name, shown with every tag the rule proposes.
    pub name: String,
    /// Evaluation order: lower runs first. Two enabled rules may not share a priority, so the
    /// order is never ambiguous; leave gaps (10, 20, 30) to insert rules later.
    pub priority: i64,
    /// Disabled rules are kept but never match.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Tags from a trusted rule are applied as approved; otherwise they wait for review.
    #[serde(default)]
    pub trusted: bool,
    /// Let the rule's values replace tags the resource already carries natively. Off by
    /// default: a native tag wins over a rule's value for the same key.
    #[serde(default)]
    pub override_native: bool,
    /// The condition a resource must meet.
    pub when: Condition,
    /// Tags to set: key → value. A value may use regex captures from `when`: `{1}` is group 1 of
    /// the first regex that matched, `{name}` the named group `(?P<name>...)`; `{{`/`}}` are
    /// literal braces. If a value comes out empty the rule does not match that resource.
    pub set: BTreeMap<String, String>,
    /// Why the rule exists (optional, for reviewers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// A condition on a resource. Either a combination — `{"all": [...]}` (every one holds),
/// `{"any": [...]}` (at least one holds), `{"not": {...}}` — or one test of one field:
/// `{"field": F, "eq": "x"}`, `{"field": F, "in": ["x", "y"]}`, `{"field": F, "glob": "pay-*"}`,
/// `{"field": F, "regex": "^(\\w+)-api-"}`, `{"field": F, "exists": true}` or
/// `{"field": F, "absent": true}`. Fields: `type` (e.g. `ec2:instance`), `name`, `id` (the
/// ARN), `account`, `region`, `provider` (`aws`, `azure`, `gcp`, `file`), `vpc`, `subnet`,
/// `stack`, `creator`, and `tag:KEY` for the resource's effective tag KEY (after the policy's
/// aliases, e.g. `tag:Environment`). All comparisons are case-sensitive; a test of a field the
/// resource lacks is false (except `absent`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum Condition {
    /// Holds when every condition in the list holds.
    All {
        /// Conditions that must all hold (at least one).
        #[schemars(length(min = 1))]
        all: Vec<Condition>,
    },
    /// Holds when at least one condition holds; captures come from the first one that does.
    Any {
        /// Conditions of which one must hold (at least one).
        #[schemars(length(min = 1))]
        any: Vec<Condition>,
    },
    /// Holds when the inner condition does not. Regexes inside `not` provide no captures.
    Not {
        /// The condition that must not hold.
        not: Box<Condition>,
    },
    /// The field equals the value exactly.
    Eq {
        /// `type`, `name`, `id`, `account`, `region`, `provider`, `vpc`, `subnet`, `stack`,
        /// `creator`, or `tag:KEY`.
        field: String,
        /// The exact value.
        eq: String,
    },
    /// The field equals one of the values exactly.
    In {
        /// `type`, `name`, `id`, `account`, `region`, `provider`, `vpc`, `subnet`, `stack`,
        /// `creator`, or `tag:KEY`.
        field: String,
        /// Accepted values (at least one).
        #[serde(rename = "in")]
        #[schemars(length(min = 1))]
        values: Vec<String>,
    },
    /// The whole field matches a wildcard pattern: `*` is any run of characters, `?` one
    /// character; nothing else is special.
    Glob {
        /// `type`, `name`, `id`, `account`, `region`, `provider`, `vpc`, `subnet`, `stack`,
        /// `creator`, or `tag:KEY`.
        field: String,
        /// The pattern, e.g. `payments-*`.
        glob: String,
    },
    /// The field contains a match of a regular expression (Rust `regex` syntax; not anchored,
    /// so write `^`/`$`; `(?i)` for case-insensitive). Its groups feed `{1}`/`{name}` in `set`.
    Regex {
        /// `type`, `name`, `id`, `account`, `region`, `provider`, `vpc`, `subnet`, `stack`,
        /// `creator`, or `tag:KEY`.
        field: String,
        /// The regular expression, e.g. `^(?P<app>[a-z-]+)-prod-`.
        regex: String,
    },
    /// With `true`: the field has a non-empty value. With `false`: it has none.
    Exists {
        /// `type`, `name`, `id`, `account`, `region`, `provider`, `vpc`, `subnet`, `stack`,
        /// `creator`, or `tag:KEY`.
        field: String,
        exists: bool,
    },
    /// With `true`: the field is missing or empty (e.g. an untagged key). With `false`: it has a
    /// value.
    Absent {
        /// `type`, `name`, `id`, `account`, `region`, `provider`, `vpc`, `subnet`, `stack`,
        /// `creator`, or `tag:KEY`.
        field: String,
        absent: bool,
    },
}

/// The wire form of a condition, every key optional: read first and then checked by hand, so a
/// malformed condition gets a message that says what is wrong (an untagged enum would only say
/// that nothing matched).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    all: Option<Vec<Condition>>,
    any: Option<Vec<Condition>>,
    not: Option<Box<Condition>>,
    field: Option<String>,
    eq: Option<String>,
    #[serde(rename = "in")]
    values: Option<Vec<String>>,
    glob: Option<String>,
    regex: Option<String>,
    exists: Option<bool>,
    absent: Option<bool>,
}

const SHAPES: &str = "a condition is {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}, or \
                      {\"field\": F, and one of \"eq\", \"in\", \"glob\", \"regex\", \"exists\", \
                      \"absent\"}";

impl TryFrom<RawCondition> for Condition {
    type Error = String;

    fn try_from(raw: RawCondition) -> Result<Self, String> {
        let mut combinators: Vec<&str> = Vec::new();
        if raw.all.is_some() {
            combinators.push("all");
        }
        if raw.any.is_some() {
            combinators.push("any");
        }
        if raw.not.is_some() {
            combinators.push("not");
        }
        let mut tests: Vec<&str> = Vec::new();
        for (present, key) in [
            (raw.eq.is_some(), "eq"),
            (raw.values.is_some(), "in"),
            (raw.glob.is_some(), "glob"),
            (raw.regex.is_some(), "regex"),
            (raw.exists.is_some(), "exists"),
            (raw.absent.is_some(), "absent"),
        ] {
            if present {
                tests.push(key);
            }
        }
        let quoted = |keys: &[&str]| {
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        if combinators.len() > 1
            || (!combinators.is_empty() && (raw.field.is_some() || !tests.is_empty()))
        {
            let mut keys = combinators.clone();
            if raw.field.is_some() {
                keys.push("field");
            }
            keys.extend(&tests);
            return Err(format!(
                "one condition cannot combine {}: nest them in an `all` or `any` list",
                quoted(&keys)
            ));
        }
        if let Some(all) = raw.all {
            return Ok(Condition::All { all });
        }
        if let Some(any) = raw.any {
            return Ok(Condition::Any { any });
        }
        if let Some(not) = raw.not {
            return Ok(Condition::Not { not });
        }
        let Some(field) = raw.field else {
            return Err(match tests.first() {
                Some(test) => format!("`{test}` needs a `field` to test"),
                None => format!("empty condition: {SHAPES}"),
            });
        };
        if tests.len() > 1 {
            return Err(format!(
                "one condition tests one thing (got {}): combine tests with `all` or `any`",
                quoted(&tests)
            ));
        }
        if let Some(eq) = raw.eq {
            Ok(Condition::Eq { field, eq })
        } else if let Some(values) = raw.values {
            Ok(Condition::In { field, values })
        } else if let Some(glob) = raw.glob {
            Ok(Condition::Glob { field, glob })
        } else if let Some(regex) = raw.regex {
            Ok(Condition::Regex { field, regex })
        } else if let Some(exists) = raw.exists {
            Ok(Condition::Exists { field, exists })
        } else if let Some(absent) = raw.absent {
            Ok(Condition::Absent { field, absent })
        } else {
            Err(format!(
                "field `{field}` needs a test: one of `eq`, `in`, `glob`, `regex`, `exists`, \
                 `absent`"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawCondition::deserialize(deserializer)?;
        Condition::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// A rule failed validation. `path` points into the rule (`when.all[1].regex`, `set.Team`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("rule `{rule}`: {path}: {message}")]
pub struct RuleError {
    /// The rule's name (or `#ID` when it has none).
    pub rule: String,
    pub path: String,
    pub message: String,
}

/// The tags a rule proposes for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    pub rule_id: i64,
    pub rule_name: String,
    /// Key → value with captures substituted, sorted by key.
    pub tags: Vec<(String, String)>,
    pub override_native: bool,
    pub trusted: bool,
}

/// The outcome of running the rules over many resources.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RunResult {
    /// (resource index, match) for each resource some rule matched, in resource order.
    pub matches: Vec<(usize, RuleMatch)>,
    /// (rule id, resources it matched) for every rule, in evaluation order (zero counts
    /// included, so rules that never fire are visible).
    pub per_rule: Vec<(i64, u64)>,
}
