//! The policy file format, exactly as users write it.
//!
//! It reads the policy files of the best-known Python tag-compliance MCP server unchanged
//! (`required_tags`, `optional_tags`, `tag_naming_rules`, `version`, `last_updated`, plus the
//! documentation-only `description` and `supported_resource_types`) and adds Tagwarden's
//! extensions (severity, aliases, conditions, prohibited tags, limits, conflicts). Only the shape
//! lives here; meaning is given by `compiled.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// How bad a violation is. Ordered: `Low < Medium < High < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
// Variant doc comments would become `oneOf` descriptions in the tools' JSON schemas.
#[allow(missing_docs)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, worst first.
    pub const ALL_DESCENDING: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    /// The severity as written in policies and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How tag keys on resources are matched to the policy's canonical keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyMatching {
    /// Only the exact key (and listed aliases, exactly) count.
    Exact,
    /// Case variants and aliases of a canonical key are recognised (and flagged as misnamed).
    #[default]
    CaseInsensitive,
}

/// The whole policy file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Violations at or above this severity make a resource non-compliant (default `low`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_at: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_matching: Option<KeyMatching>,
    /// Resource type globs judged even where no required tag applies, so that optional,
    /// prohibited, misnamed-key, naming and conflict rules reach them too (an imported AWS tag
    /// policy's value and capitalisation rules hold for every type). Missing: a resource is in
    /// scope only where a required tag applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// canonical key → variants that mean the same key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, Vec<String>>,
    /// canonical key → canonical value → variants that mean the same value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_aliases: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub required_tags: Vec<RequiredTag>,
    #[serde(default)]
    pub optional_tags: Vec<OptionalTag>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prohibited_tags: Vec<ProhibitedTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tags: Option<MaxTags>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_naming_rules: Option<TagNamingRules>,
    /// Documentation block of the Python peer's files; kept for display, never evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_resource_types: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RequiredTag {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_values: Option<Vec<String>>,
    #[serde(default)]
    pub validation_regex: Option<String>,
    /// Resource type globs (`*`, `ec2:*`, `s3:bucket`); missing or empty means every type.
    #[serde(default)]
    pub applies_to: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The rule applies only to resources where this condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OptionalTag {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_regex: Option<String>,
    /// Severity of an invalid value on an optional tag (default `low`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// A prohibited key: either `"tmp"` or `{ "name": "tmp", "severity": "low" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProhibitedTag {
    Name(String),
    Rule(ProhibitedRule),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProhibitedRule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// `max_tags`: either `40` or `{ "limit": 40, "severity": "low" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxTags {
    Limit(u32),
    Rule {
        limit: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<Severity>,
    },
}

/// `{key, equals}`, `{key, in: [...]}` or `{key, exists: bool}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Conflict {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub tags: Vec<Condition>,
}

/// The Python peer's naming block. Unknown members are kept (its generator may add more).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TagNamingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitivity: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_special_characters: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value_length: Option<usize>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `"version": "1.1"` and `"version": 2` are both seen in the wild.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(serde_json::Number),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::S(s) => s,
        Raw::N(n) => n.to_string(),
    }))
}
