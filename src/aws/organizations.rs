//! AWS Organizations: the effective tag policy of an account (`DescribeEffectivePolicy`), the
//! merge of every tag policy from the root down that AWS has already computed — which is why
//! importing it beats merging policy files by hand. Any member account may read its own; the
//! management account (or a delegated administrator) may name another.

use aws_config::{Region, SdkConfig};
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::EffectivePolicyType;
use serde_json::json;

use super::{AwsTuning, CallCounter, load_sdk_config, summarise_sdk_error};

/// An Organizations client, counted when `counter` is given.
pub(crate) fn client(
    sdk: &SdkConfig,
    counter: Option<&CallCounter>,
) -> aws_sdk_organizations::Client {
    let mut config = aws_sdk_organizations::config::Builder::from(sdk);
    if let Some(counter) = counter {
        config = config.interceptor(counter.clone());
    }
    // Organizations has one endpoint per partition; any region of it resolves there.
    if sdk.region().is_none() {
        config = config.region(Region::new("us-east-1"));
    }
    aws_sdk_organizations::Client::from_conf(config.build())
}

/// `DescribeEffectivePolicy(TAG_POLICY)` for `account` (None: the caller's account), as the
/// JSON the AWS CLI prints (`{"EffectivePolicy": {"PolicyContent": "...", ...}}`).
pub(crate) async fn effective_tag_policy(
    tuning: &AwsTuning,
    account: Option<&str>,
) -> Result<serde_json::Value, String> {
    let sdk = load_sdk_config(tuning).await;
    let client = client(&sdk, None);
    let place = account.map_or_else(
        || "the caller's account".to_string(),
        |a| format!("account {a}"),
    );
    let answer = client
        .describe_effective_policy()
        .policy_type(EffectivePolicyType::TagPolicy)
        .set_target_id(account.map(str::to_string))
        .send()
        .await
        .map_err(|e| {
            let code = e
                .as_service_error()
                .and_then(|s| s.code())
                .unwrap_or_default();
            match code {
                "EffectivePolicyNotFoundException" => {
                    format!("no tag policy applies to {place} (DescribeEffectivePolicy found none)")
                }
                "AWSOrganizationsNotInUseException" => format!(
                    "{place} is not in an AWS Organization: there is no tag policy to import"
                ),
                "TargetNotFoundException" => {
                    format!("AWS Organizations does not know {place}")
                }
                "AccessDeniedException" => format!(
                    "DescribeEffectivePolicy in {place} was refused: grant \
                     organizations:DescribeEffectivePolicy (another account's policy can only be \
                     read from the management account or a delegated administrator)"
                ),
                _ => summarise_sdk_error("DescribeEffectivePolicy", &place, &e),
            }
        })?;
    let Some(policy) = answer.effective_policy() else {
        return Err(format!(
            "DescribeEffectivePolicy in {place} returned no policy"
        ));
    };
    Ok(json!({
        "EffectivePolicy": {
            "PolicyContent": policy.policy_content(),
            "LastUpdatedTimestamp": policy
                .last_updated_timestamp()
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            "TargetId": policy.target_id(),
            "PolicyType": policy.policy_type().map(|t| t.as_str()),
        }
    }))
}
