//! `get_tagging_policy`: the policy in force, its identity and a plain-language summary.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::policy::{KeyMatching, Severity};

pub(crate) struct GetTaggingPolicy;

/// No arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct RequiredKey {
    pub key: String,
    pub severity: Severity,
    /// Resource type patterns the rule applies to (empty: every type).
    pub applies_to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_regex: Option<String>,
    /// The condition that makes the rule apply, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Key variants accepted in the effective view.
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    /// SHA-256 of the policy's canonical JSON: changes whenever its content changes.
    pub hash: String,
    /// The policy file's name, or `built-in default policy`.
    pub source: String,
    pub loaded_at: String,
    pub version: Option<String>,
    pub last_updated: Option<String>,
    pub fail_at: Severity,
    pub key_matching: KeyMatching,
    pub required: Vec<RequiredKey>,
    pub optional_keys: Vec<String>,
    pub prohibited_keys: Vec<String>,
    pub max_tags: Option<u32>,
    /// One sentence per rule, for people.
    pub summary: Vec<String>,
    /// When the policy file was changed on disk but refused, why (the policy above stays in
    /// force until the file is fixed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_error: Option<String>,
    /// The policy document itself, as loaded.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub policy: serde_json::Value,
}

impl Tool for GetTaggingPolicy {
    const NAME: &'static str = "get_tagging_policy";
    const TITLE: &'static str = "Get tagging policy";
    const DESCRIPTION: &'static str = "Returns the tagging policy in force: required keys with their allowed values, \
patterns, severities, the resource types they apply to and their conditions, key aliases, optional and \
prohibited keys, the severity at which a resource fails, a plain-language summary, the policy's hash and the \
full document. Use it to explain why a resource fails or what a valid tag looks like. If the policy file was \
changed but refused, reload_error says why (the previous policy stays in force).";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    fn annotations() -> ToolAnnotations {
        read_only_annotations(false)
    }

    fn example() -> Value {
        serde_json::json!({})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"unexpected": 1}), "unexpected")
    }

    async fn run(call: &Call<'_>, _args: Args) -> Result<Output, ToolError> {
        let policy = call.policy();
        let file = policy.file();
        let required = policy
            .required_rules()
            .iter()
            .map(|r| {
                let key = policy.key_name(r.key).to_string();
                RequiredKey {
                    aliases: policy.aliases_of(&key).to_vec(),
                    key,
                    severity: r.severity,
                    applies_to: r.applies_to.patterns().map(str::to_string).collect(),
                    allowed_values: r.check.allowed.as_ref().map(|a| a.values().to_vec()),
                    validation_regex: r.check.regex_source.clone(),
                    when: r.when.as_ref().map(|w| w.describe()),
                    description: r.description.clone(),
                }
            })
            .collect();
        let document = serde_json::to_value(file)
            .map_err(|e| ToolError::Internal(format!("could not encode the policy: {e}")))?;
        Ok(Output {
            hash: policy.hash().to_string(),
            source: call.policy_holder().source().display(),
            loaded_at: call
                .policy_holder()
                .loaded_at()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            version: file.version.clone(),
            last_updated: file.last_updated.clone(),
            fail_at: policy.fail_at(),
            key_matching: policy.key_matching(),
            required,
            optional_keys: policy
                .optional_rules()
                .iter()
                .map(|o| policy.key_name(o.key).to_string())
                .collect(),
            prohibited_keys: policy
                .prohibited_rules()
                .iter()
                .map(|p| p.name.clone())
                .collect(),
            max_tags: policy.max_tags().map(|(limit, _)| limit),
            summary: policy.summary_lines(),
            reload_error: call.policy_holder().last_error(),
            policy: document,
        })
    }
}
