//! MCP resources and prompts: the policy in force as a readable resource (JSON and a
//! plain-language summary), and a prompt that walks an assistant through a weekly compliance
//! review with the tools.

use rmcp::ErrorData as McpError;
use rmcp::model::{
    GetPromptResult, Prompt, PromptArgument, PromptMessage, Resource, ResourceContents, Role,
};
use serde_json::Value;

use crate::app::App;

pub(super) const POLICY_URI: &str = "tagwarden://policy";
pub(super) const POLICY_SUMMARY_URI: &str = "tagwarden://policy/summary";
pub(super) const WEEKLY_REVIEW: &str = "weekly_compliance_review";

pub(super) fn resources() -> Vec<Resource> {
    vec![
        Resource::new(POLICY_URI, "tagging-policy")
            .with_title("Tagging policy in force")
            .with_description(
                "The tagging policy document Tagwarden evaluates against, with its hash and source.",
            )
            .with_mime_type("application/json"),
        Resource::new(POLICY_SUMMARY_URI, "tagging-policy-summary")
            .with_title("Tagging policy, in plain language")
            .with_description("One sentence per rule of the policy in force.")
            .with_mime_type("text/markdown"),
    ]
}

/// Reads a resource; an unknown URI is a "resource not found" protocol error.
pub(super) fn read(app: &App, uri: &str) -> Result<ResourceContents, McpError> {
    let policy = app.policy().current();
    match uri {
        POLICY_URI => {
            let document = serde_json::json!({
                "hash": policy.hash(),
                "source": app.policy().source().display(),
                "policy": serde_json::to_value(policy.file()).unwrap_or(Value::Null),
            });
            let text = serde_json::to_string_pretty(&document).map_err(|e| {
                McpError::internal_error(format!("could not encode the policy: {e}"), None)
            })?;
            Ok(ResourceContents::text(text, uri).with_mime_type("application/json"))
        }
        POLICY_SUMMARY_URI => {
            let mut text = format!(
                "# Tagging policy ({}, hash {})\n\n",
                app.policy().source().display(),
                &policy.hash()[..12]
            );
            for line in policy.summary_lines() {
                text.push_str("- ");
                text.push_str(&line);
                text.push('\n');
            }
            Ok(ResourceContents::text(text, uri).with_mime_type("text/markdown"))
        }
        _ => Err(McpError::resource_not_found(
            format!("no resource `{uri}`; available: {POLICY_URI}, {POLICY_SUMMARY_URI}"),
            Some(serde_json::json!({ "uri": uri })),
        )),
    }
}

pub(super) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            WEEKLY_REVIEW,
            Some(
                "A weekly tag-compliance review: the score and its trend drivers, the biggest \
                 gaps by key, type and account, and the ten fixes worth doing first.",
            ),
            Some(vec![
                PromptArgument::new("scope")
                    .with_description(
                        "Optional focus, e.g. `production`, a region (`eu-west-1`) or an account id",
                    )
                    .with_required(false),
                PromptArgument::new("focus_key")
                    .with_description("Optional tag key to dig into, e.g. `CostCenter`")
                    .with_required(false),
            ]),
        )
        .with_title("Weekly compliance review"),
    ]
}

pub(super) fn get(
    name: &str,
    arguments: Option<&serde_json::Map<String, Value>>,
) -> Result<GetPromptResult, McpError> {
    if name != WEEKLY_REVIEW {
        return Err(McpError::invalid_params(
            format!("no prompt `{name}`; available: {WEEKLY_REVIEW}"),
            None,
        ));
    }
    let arg = |key: &str| -> Result<Option<String>, McpError> {
        match arguments.and_then(|a| a.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) if s.len() <= 200 && !s.chars().any(char::is_control) => {
                Ok(Some(s.trim().to_string()))
            }
            Some(_) => Err(McpError::invalid_params(
                format!("prompt argument `{key}` must be a short single-line string"),
                None,
            )),
        }
    };
    let scope = arg("scope")?;
    let focus = arg("focus_key")?;
    let scope_text = scope
        .as_ref()
        .map(|s| {
            format!(
                " for `{s}` (use it as the matching filter: resource_types, regions or accounts)"
            )
        })
        .unwrap_or_default();
    let focus_text = focus
        .as_ref()
        .map(|k| {
            format!(
                "\n5. Dig into `{k}`: call check_tag_compliance with tag_keys [\"{k}\"] and \
                 find_untagged_resources with tag_keys [\"{k}\"], and say which teams or \
                 accounts own most of the gap."
            )
        })
        .unwrap_or_default();
    let history_step = if focus.is_some() { 6 } else { 5 };
    let text = format!(
        "Run this week's tag-compliance review{scope_text} with the Tagwarden tools.\n\
         1. Call get_tagging_policy and note the required keys and the fail_at severity.\n\
         2. Call check_tag_compliance (limit 20). Report the effective and native scores, how \
         many resources the key and value aliases already fix, and violations by severity.\n\
         3. From by_key, by_type and by_account, name the three biggest gaps.\n\
         4. List the ten fixes worth doing first (critical and high severity first), each with \
         the resource, the key and the fix text.{focus_text}\n\
         {history_step}. Call get_violation_history (days_back 90, group_by week) with the same filters as \
         step 2 and say whether tagging is improving, declining or stable; if there is an \
         earlier snapshot, call detect_tag_drift to name what changed since it. Then keep this \
         week's figures: check_tag_compliance again with store_snapshot true and limit 0.\n\
         Finish with a short report: a table of the scores, the trend, the gaps, the fixes, and \
         any data_quality caveat (partial scan, cache age)."
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description("Weekly tag-compliance review"),
    )
}
