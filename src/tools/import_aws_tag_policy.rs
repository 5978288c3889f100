//! `import_aws_tag_policy`: converts an AWS Organizations tag policy into a Tagwarden policy
//! and says what could not be carried over. Read-only: the policy in force is not replaced (the
//! user saves the result as a policy file to use it).

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::policy::interchange::aws_import::AwsSource;
use crate::policy::interchange::{LossItem, import_aws_tag_policy, import_aws_tag_policy_value};

pub(crate) struct ImportAwsTagPolicy;

/// A tag policy as JSON text or as a JSON object.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum TagPolicyInput {
    /// The JSON text (for example DescribeEffectivePolicy's `PolicyContent`).
    Text(String),
    /// The JSON document itself.
    Document(serde_json::Map<String, Value>),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The AWS tag policy: a policy document (`{"tags": {"costcenter": {"tag_key": ...}}}`,
    /// values bare or under @@assign/@@append/@@remove), or DescribeEffectivePolicy's answer
    /// (`{"EffectivePolicy": {"PolicyContent": "..."}}`), or DescribePolicy's. Give it as a JSON
    /// object, or as JSON text when it is short (strings are limited in length).
    pub tag_policy: TagPolicyInput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    /// The converted Tagwarden policy document. It is NOT put in force: save it as a policy file
    /// (--policy) to use it.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub policy: Value,
    /// The envelope the tag policy came in.
    pub source: AwsSource,
    /// The account an effective policy is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Tag policy keys read.
    pub keys: usize,
    /// Keys required somewhere (report_required_tag_for), with the types.
    pub required: Vec<String>,
    /// Keys checked wherever present (tag_value, or capitalisation only).
    pub checked_when_present: Vec<String>,
    /// What could not be carried over exactly: dropped, approximated, or recorded only.
    pub lossiness: Vec<LossItem>,
    /// The converted policy in plain language.
    pub summary: Vec<String>,
}

impl Tool for ImportAwsTagPolicy {
    const NAME: &'static str = "import_aws_tag_policy";
    const TITLE: &'static str = "Import AWS tag policy";
    const DESCRIPTION: &'static str = "Converts an AWS Organizations tag policy (a policy document, or an account's \
effective policy from DescribeEffectivePolicy) into a Tagwarden policy, exactly as AWS judges resources: tag_key sets \
the required capitalisation (a case variant is a misnamed key in the native view), tag_value becomes allowed values \
checked wherever the key is present (* wildcards kept), report_required_tag_for makes the key required on those \
types (ec2:ALL_SUPPORTED → ec2:*), and enforced_for is recorded, never treated as required. Returns the policy, a \
plain summary and a lossiness report of what could not be carried over (@@append/@@remove relative to parent \
policies, child-control operators). Read-only: the policy in force is not changed.";

    type Args = Args;
    type Output = Output;

    // It converts and returns a policy; the policy in force never changes (putting one in
    // force would be an administrator's call).
    const ROLE: Role = Role::Viewer;

    fn annotations() -> ToolAnnotations {
        read_only_annotations(false)
    }

    fn example() -> Value {
        serde_json::json!({"tag_policy": {"tags": {"costcenter": {
            "tag_key": {"@@assign": "CostCenter"},
            "tag_value": {"@@assign": ["100", "200", "300*"]},
            "enforced_for": {"@@assign": ["ec2:instance"]},
            "report_required_tag_for": {"@@assign": ["ec2:ALL_SUPPORTED"]}
        }}}})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"tag_policy": 42}), "tag_policy")
    }

    async fn run(_call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let imported = match args.tag_policy {
            TagPolicyInput::Text(text) => import_aws_tag_policy(&text),
            TagPolicyInput::Document(map) => import_aws_tag_policy_value(Value::Object(map)),
        }
        .map_err(|e| ToolError::invalid(format!("tag_policy: {e}")))?;
        let text = serde_json::to_string(&imported.policy)
            .map_err(|e| ToolError::Internal(format!("could not encode the policy: {e}")))?;
        let summary = crate::policy::parse_policy(&text)
            .map(|p| p.summary_lines())
            .map_err(|e| ToolError::Internal(format!("the converted policy does not load: {e}")))?;
        let file = &imported.policy;
        Ok(Output {
            policy: serde_json::from_str(&text)
                .map_err(|e| ToolError::Internal(format!("could not encode the policy: {e}")))?,
            source: imported.source,
            target_id: imported.target_id,
            keys: imported.keys,
            required: file
                .required_tags
                .iter()
                .map(|r| {
                    format!(
                        "{} on {}",
                        r.name,
                        r.applies_to.as_deref().unwrap_or_default().join(", ")
                    )
                })
                .collect(),
            checked_when_present: file.optional_tags.iter().map(|o| o.name.clone()).collect(),
            lossiness: imported.lossiness,
            summary,
        })
    }
}
