//! `generate_custodian_policy`: Cloud Custodian policies (YAML) that find the resources failing
//! the policy in force, one per resource type, with the chosen actions.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::policy::interchange::{
    CustodianAction, CustodianOptions, GeneratedPolicy, LossItem, generate_custodian,
};

pub(crate) struct GenerateCustodianPolicy;

fn default_days() -> u32 {
    CustodianOptions::default().mark_days
}

fn default_to() -> Vec<String> {
    CustodianOptions::default().notify_to
}

fn default_prefix() -> String {
    CustodianOptions::default().name_prefix
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Actions on non-compliant resources: `mark-for-op` (tag tagwarden_status for a notify
    /// after mark_days), `notify` (a message through an SQS queue for c7n-mailer; needs
    /// notify_queue), `tag` (tagwarden_compliance=non-compliant). Empty: the policies only
    /// report.
    #[serde(default)]
    #[schemars(length(max = 3))]
    pub actions: Vec<CustodianAction>,
    /// Resource types, canonical (`ec2:instance`) or patterns (`rds:*`). Empty: every type the
    /// policy judges that Custodian knows. Types without a Custodian resource come back in
    /// unmapped_types.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub resource_types: Vec<String>,
    /// Days before the marked notify (mark-for-op).
    #[serde(default = "default_days")]
    #[schemars(range(max = 365))]
    pub mark_days: u32,
    /// Recipients of notify: c7n-mailer addresses, or `resource-owner`.
    #[serde(default = "default_to")]
    #[schemars(length(max = 20))]
    pub notify_to: Vec<String>,
    /// The SQS queue URL c7n-mailer reads (required with notify).
    #[serde(default)]
    #[schemars(length(max = 512))]
    pub notify_queue: Option<String>,
    /// First part of each policy name (letters, digits, single hyphens; starts with a letter).
    #[serde(default = "default_prefix")]
    #[schemars(regex(pattern = r"^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*$"), length(max = 64))]
    pub name_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    /// The Cloud Custodian policy file (YAML): save it and run `custodian run -s out FILE`.
    pub yaml: String,
    /// The policies in the file.
    pub policies: Vec<GeneratedPolicy>,
    /// Types asked for (or named by the policy) that no Custodian resource is mapped to.
    pub unmapped_types: Vec<String>,
    /// What the Custodian policies do not check as Tagwarden does.
    pub lossiness: Vec<LossItem>,
    /// The hash of the policy the file was generated from.
    pub policy_hash: String,
}

impl Tool for GenerateCustodianPolicy {
    const NAME: &'static str = "generate_custodian_policy";
    const TITLE: &'static str = "Generate Cloud Custodian policy";
    const DESCRIPTION: &'static str = "Generates Cloud Custodian policies (YAML that `custodian validate` accepts) \
from the tagging policy in force: one policy per resource type (aws.ec2, aws.ebs, aws.rds, aws.s3, aws.lambda, ...), \
whose filters match resources with a required key absent or blank, a value outside the allowed values or failing \
the regex, a prohibited key or a conflict, on the tags as the cloud holds them. Actions are selectable: mark-for-op, \
notify (SQS, for c7n-mailer), tag. Returns the YAML, the policies, unmapped types and what Custodian cannot check \
as Tagwarden does. Nothing is run or written.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    fn annotations() -> ToolAnnotations {
        read_only_annotations(false)
    }

    fn example() -> Value {
        serde_json::json!({"actions": ["mark-for-op", "tag"], "resource_types": ["ec2:instance", "s3:bucket"]})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"actions": ["delete"]}), "actions")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let policy = call.policy();
        let options = CustodianOptions {
            actions: args.actions,
            resource_types: args.resource_types,
            mark_days: args.mark_days,
            notify_to: args.notify_to,
            notify_queue: args.notify_queue,
            name_prefix: args.name_prefix,
        };
        let export = generate_custodian(&policy, &options).map_err(|e| ToolError::invalid(e.to_string()))?;
        Ok(Output {
            yaml: export.yaml,
            policies: export.policies,
            unmapped_types: export.unmapped_types,
            lossiness: export.lossiness,
            policy_hash: policy.hash().to_string(),
        })
    }
}
