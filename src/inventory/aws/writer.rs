//! Writing real tags: the one place Tagwarden changes the cloud. `TagWriter` is the narrow
//! surface the promotion use-case needs — `TagResources` for one region and one tag set, and
//! `GetResources(ResourceARNList)` to read tags back — so the planning, batching and retry
//! logic above it is tested without I/O, and the AWS implementation stays a thin adapter.
//!
//! The SDK retries throttling and transient errors of a whole request (standard retry
//! strategy); per-ARN failures inside a successful answer (`FailedResourcesMap`) are returned
//! as they are, for the caller to retry or report. Limits (20 ARNs, 50 tags per call; 100 ARNs
//! per read) are the caller's to respect and are checked here once more, since moto does not
//! enforce them and real AWS refuses the whole call.
//!
//! Several accounts: with a writer role (`--aws-writer-role-name`), each call is made in the
//! ARN's account through that role, assumed once per account (never the read role of the
//! scan: reading and writing are separate grants).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::config::Region;
use tokio::sync::{Mutex, OnceCell};

use super::accounts::role_arn;
use super::assume::RoleChain;
use crate::aws::{AwsTuning, CallCounter, load_sdk_config, next_token, summarise_sdk_error};

/// Most ARNs in one `TagResources` call.
pub(crate) const MAX_ARNS_PER_WRITE: usize = 20;
/// Most tags in one `TagResources` call (and user tags on one resource).
pub(crate) const MAX_TAGS_PER_WRITE: usize = 50;
/// Most ARNs in one `GetResources(ResourceARNList)` call.
pub(crate) const MAX_ARNS_PER_READ: usize = 100;

/// One entry of `FailedResourcesMap`: a resource the call did not tag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailedResource {
    pub arn: String,
    /// The HTTP-like status AWS gives the entry (0 when absent).
    pub status_code: i32,
    /// `InternalServiceException`, `InvalidParameterException` or a service's own code.
    pub error_code: String,
    pub message: String,
}

/// Tags as AWS holds them, per ARN.
pub(crate) type LiveTags = BTreeMap<String, BTreeMap<String, String>>;

/// Writes and reads back real tags through the Resource Groups Tagging API.
#[async_trait]
pub(crate) trait TagWriter: Send + Sync {
    /// Where resources without a region in their ARN (S3 buckets) are tagged and read when
    /// the inventory does not say.
    async fn default_region(&self) -> Result<String, String>;
    /// One `TagResources` call: `tags` on every ARN of `arns` (≤ 20 ARNs, ≤ 50 tags), in
    /// `region`. Ok holds the entries AWS did not tag; Err is a failure of the whole call.
    async fn tag_resources(
        &self,
        account: &str,
        region: &str,
        arns: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<FailedResource>, String>;
    /// The tags of `arns` (≤ 100, of one account) in `region`, as AWS answers now. An ARN AWS
    /// does not list (unknown, or never tagged) is absent.
    async fn read_tags(
        &self,
        account: &str,
        region: &str,
        arns: &[String],
    ) -> Result<LiveTags, String>;
    /// HTTP requests sent so far, retries included.
    fn requests(&self) -> u64;
}

/// The role written through in each account (`--aws-writer-role-name`).
#[derive(Debug, Clone)]
pub(crate) struct WriterRole {
    /// Role name, optionally with an IAM path.
    pub role_name: String,
    /// `ExternalId` passed to `AssumeRole`, when the role's trust policy requires one.
    pub external_id: Option<String>,
}

/// The AWS implementation: the standard credentials chain of the caller's account, or a
/// writer role assumed in each ARN's account.
pub(crate) struct AwsTagWriter {
    tuning: AwsTuning,
    sdk: OnceCell<aws_config::SdkConfig>,
    counter: CallCounter,
    role: Option<WriterRole>,
    /// The writer role's session per account, assumed on first use.
    chains: Mutex<HashMap<String, Arc<RoleChain>>>,
}

impl AwsTagWriter {
    pub(crate) fn new(tuning: AwsTuning, role: Option<WriterRole>) -> AwsTagWriter {
        AwsTagWriter {
            counter: tuning.counter(),
            tuning,
            sdk: OnceCell::new(),
            role,
            chains: Mutex::new(HashMap::new()),
        }
    }

    async fn base(&self) -> &aws_config::SdkConfig {
        self.sdk.get_or_init(|| load_sdk_config(&self.tuning)).await
    }

    /// The credentials of `account`: the caller's own, or the writer role's session there.
    async fn account_sdk(
        &self,
        account: &str,
        partition: &str,
    ) -> Result<(aws_config::SdkConfig, Option<Arc<RoleChain>>), String> {
        let base = self.base().await;
        let Some(role) = &self.role else {
            return Ok((base.clone(), None));
        };
        if account.is_empty() {
            return Err(
                "the resource's account is unknown (not in its ARN nor in the \
                        inventory), so the writer role cannot be chosen"
                    .into(),
            );
        }
        let mut chains = self.chains.lock().await;
        let chain = chains
            .entry(account.to_string())
            .or_insert_with(|| {
                Arc::new(RoleChain::new(
                    base,
                    &[role_arn(
                        partition,
                        account,
                        role.role_name.trim_matches('/'),
                    )],
                    role.external_id.as_deref(),
                    &self.counter,
                    "us-east-1",
                    Duration::from_secs(30),
                ))
            })
            .clone();
        Ok((chain.sdk.clone(), Some(chain)))
    }

    async fn client(
        &self,
        account: &str,
        region: &str,
        arns: &[String],
    ) -> Result<(Client, Option<Arc<RoleChain>>), String> {
        let partition = arns
            .first()
            .and_then(|a| a.split(':').nth(1))
            .filter(|p| !p.is_empty())
            .unwrap_or("aws");
        let (sdk, chain) = self.account_sdk(account, partition).await?;
        let config = aws_sdk_resourcegroupstagging::config::Builder::from(&sdk)
            .region(Region::new(region.to_string()))
            .interceptor(self.counter.clone())
            .build();
        Ok((Client::from_conf(config), chain))
    }
}

/// A failed call's reason: the writer role's refusal when that is what failed.
async fn why(chain: Option<&Arc<RoleChain>>, summary: String) -> String {
    match chain {
        Some(c) => c.failure().await.unwrap_or(summary),
        None => summary,
    }
}

#[async_trait]
impl TagWriter for AwsTagWriter {
    async fn default_region(&self) -> Result<String, String> {
        self.base()
            .await
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| {
                "no AWS region is configured; set AWS_REGION (S3 buckets are tagged there)"
                    .to_string()
            })
    }

    async fn tag_resources(
        &self,
        account: &str,
        region: &str,
        arns: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<FailedResource>, String> {
        if arns.is_empty() || arns.len() > MAX_ARNS_PER_WRITE {
            return Err(format!(
                "TagResources takes 1 to {MAX_ARNS_PER_WRITE} ARNs, not {}",
                arns.len()
            ));
        }
        if tags.is_empty() || tags.len() > MAX_TAGS_PER_WRITE {
            return Err(format!(
                "TagResources takes 1 to {MAX_TAGS_PER_WRITE} tags, not {}",
                tags.len()
            ));
        }
        let tags: HashMap<String, String> =
            tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (client, chain) = self.client(account, region, arns).await?;
        let output = match client
            .tag_resources()
            .set_resource_arn_list(Some(arns.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                let summary = summarise_sdk_error("TagResources", region, &e);
                return Err(why(chain.as_ref(), summary).await);
            }
        };
        let mut failed: Vec<FailedResource> = output
            .failed_resources_map()
            .into_iter()
            .flatten()
            .map(|(arn, info)| FailedResource {
                arn: arn.clone(),
                status_code: info.status_code(),
                error_code: info
                    .error_code()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                message: info.error_message().unwrap_or_default().to_string(),
            })
            .collect();
        failed.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(failed)
    }

    async fn read_tags(
        &self,
        account: &str,
        region: &str,
        arns: &[String],
    ) -> Result<LiveTags, String> {
        if arns.is_empty() {
            return Ok(LiveTags::new());
        }
        if arns.len() > MAX_ARNS_PER_READ {
            return Err(format!(
                "GetResources takes at most {MAX_ARNS_PER_READ} ARNs, not {}",
                arns.len()
            ));
        }
        let (client, chain) = self.client(account, region, arns).await?;
        let mut live = LiveTags::new();
        let mut token: Option<String> = None;
        loop {
            let output = match client
                .get_resources()
                .set_resource_arn_list(Some(arns.to_vec()))
                .set_pagination_token(token.clone())
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    let summary = summarise_sdk_error("GetResources", region, &e);
                    return Err(why(chain.as_ref(), summary).await);
                }
            };
            for m in output.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                let tags = m
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                live.insert(arn.to_string(), tags);
            }
            match next_token(
                token.as_deref(),
                output.pagination_token(),
                "GetResources",
                region,
            )? {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(live)
    }

    fn requests(&self) -> u64 {
        self.counter.attempts()
    }
}
