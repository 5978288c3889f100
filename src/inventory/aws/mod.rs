//! AWS live inventory. The Resource Groups Tagging API (`tagging`) lists tagged resources of
//! every configured region concurrently; what the scan could see — and that the Tagging API never
//! lists resources that were never tagged — is stated in the report's coverage.
//!
//! Throttling and transient failures are retried by the SDK (exponential backoff with jitter); a
//! part that still fails is reported with the reason and the resources fetched before the
//! failure are kept. Global resources (S3) listed in several regions are kept once.
//!
//! With a shared cache (Redis), each partition's listing is kept there for the inventory TTL
//! under a key of the credentials identity, region and type filter, so another server (or a
//! restart) reuses it without calling AWS; `force_refresh` reads AWS regardless (see
//! `listing_cache`).
//!
//! With an account list (`accounts`: the organisation or a c7n-org accounts.yml) the scan fans
//! out over accounts × regions through a role in each (`fanout`, `accounts`, `assume`).

pub mod accounts;
mod assume;
mod fanout;
pub mod tagging;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use compact_str::CompactString;
use tokio::sync::Semaphore;

use super::file::GLOBAL_REGION;
use super::id::arn::resource_from_arn;
use super::listing_cache::SharedListings;
use super::{
    Coverage, CoverageFailure, Inventory, InventoryError, InventoryProvider, Provider, Resource,
    ScanOptions, ScanReport, SourceCoverage, SourceKind,
};
use crate::aws::{AwsTuning, CallCounter, load_sdk_config};
use accounts::{AccountSource, RoleSettings};
use tagging::{ScanTally, TaggingScan};

/// What to scan.
#[derive(Debug, Clone, Default)]
pub struct AwsScanSettings {
    /// Regions to scan; empty means the SDK's configured region.
    pub regions: Vec<String>,
    /// Resource-type filters (`ec2:instance`, `s3`, ...). Empty means every type, one partition
    /// per region; otherwise one partition per filter, fetched in parallel.
    pub resource_types: Vec<String>,
    /// Partitions scanned at the same time (bounded to stay clear of API rate limits).
    pub concurrency: usize,
    pub tuning: AwsTuning,
    /// Scan several accounts (the organisation's, or an accounts file's) through a role in
    /// each; None scans the caller's own account.
    pub accounts: Option<AccountSource>,
    /// The role assumed in each account of `accounts`, and its external id.
    pub roles: RoleSettings,
}

pub struct AwsProvider {
    settings: AwsScanSettings,
    shared: Option<SharedListings>,
}

/// One listed resource: its ARN and tags.
type Mapping = (CompactString, super::Tags);

impl AwsProvider {
    pub fn new(settings: AwsScanSettings) -> Self {
        AwsProvider {
            settings,
            shared: None,
        }
    }

    /// Keeps partition listings in the shared cache, when there is one.
    pub fn with_shared_listings(mut self, shared: Option<SharedListings>) -> Self {
        self.shared = shared;
        self
    }
}

/// Who is asking AWS, hashed: the endpoint and the access key id of the credentials the SDK
/// resolved (whatever their source: environment, profile, SSO, instance or task role), so
/// listings are shared only between servers that see AWS as the same principal. None when the
/// credentials cannot be resolved (then nothing is shared; the scan itself reports the error).
async fn identity(sdk: &aws_config::SdkConfig) -> Option<String> {
    use aws_sdk_resourcegroupstagging::config::ProvideCredentials;
    use sha2::{Digest, Sha256};
    let credentials = sdk
        .credentials_provider()?
        .provide_credentials()
        .await
        .ok()?;
    let mut h = Sha256::new();
    h.update(
        std::env::var("AWS_ENDPOINT_URL")
            .unwrap_or_default()
            .as_bytes(),
    );
    h.update([0]);
    h.update(credentials.access_key_id().as_bytes());
    Some(hex::encode(&h.finalize()[..12]))
}

#[async_trait]
impl InventoryProvider for AwsProvider {
    fn describe(&self) -> String {
        if let Some(source) = &self.settings.accounts {
            return match source {
                AccountSource::Organization => "AWS organization".to_string(),
                AccountSource::File(path) => {
                    format!("AWS accounts of {}", super::file::display_name(path))
                }
            };
        }
        if self.settings.regions.is_empty() {
            "AWS (configured region)".to_string()
        } else {
            format!("AWS {}", self.settings.regions.join(", "))
        }
    }

    async fn scan(&self, options: &ScanOptions) -> Result<Inventory, InventoryError> {
        if let Some(source) = &self.settings.accounts {
            return fanout::scan_accounts(self, source, options).await;
        }
        let started = Instant::now();
        let sdk = load_sdk_config(&self.settings.tuning).await;
        let regions = if self.settings.regions.is_empty() {
            match sdk.region() {
                Some(r) => vec![r.to_string()],
                None => {
                    return Err(InventoryError::Config {
                        provider: Provider::Aws,
                        message: "no AWS region is configured: set AWS_REGION (or a profile \
                                  region), or pass --regions us-east-1,eu-west-1"
                            .into(),
                    });
                }
            }
        } else {
            self.settings.regions.clone()
        };
        let counter = CallCounter::new();
        let tally = Arc::new(ScanTally::new(
            TaggingScan::partition_count(regions.len(), self.settings.resource_types.len()),
            options,
        ));
        let who = match &self.shared {
            Some(_) => identity(&sdk).await,
            None => None,
        };
        let tagging = TaggingScan {
            sdk: &sdk,
            regions: &regions,
            resource_types: &self.settings.resource_types,
            limit: Arc::new(Semaphore::new(self.settings.concurrency.max(1))),
            counter: counter.clone(),
            tally,
            shared: self.shared.clone().zip(who),
            scope_prefix: "aws".into(),
            force_refresh: options.force_refresh,
        };
        let results = tagging.run().await;
        let all_failed = !results.is_empty() && results.iter().all(|r| !r.part.ok);
        if all_failed {
            let first = results
                .iter()
                .find_map(|r| r.part.error.clone())
                .unwrap_or_default();
            return Err(InventoryError::Unavailable {
                provider: Provider::Aws,
                part: "region",
                reason: first,
            });
        }
        let account = results
            .iter()
            .flat_map(|r| r.mappings.iter())
            .find_map(|(arn, _)| {
                super::id::arn::parse(arn)
                    .map(|a| a.account)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".to_string());
        let mut resources: Vec<Resource> = Vec::new();
        let mut report = ScanReport {
            complete: true,
            ..ScanReport::default()
        };
        let fetched_at = results
            .iter()
            .map(|r| r.fetched_at)
            .min()
            .unwrap_or_else(Utc::now);
        let mut coverage = SourceCoverage::new(SourceKind::TaggingApi, 0);
        coverage.accounts = vec![account.clone()];
        coverage.regions = regions.clone();
        coverage.resource_types = self.settings.resource_types.clone();
        for result in results {
            let mut part = result.part;
            let mut kept = 0;
            for (arn, tags) in result.mappings {
                match resource_from_arn(&arn, tags, GLOBAL_REGION, &account) {
                    Some(r) => {
                        resources.push(r);
                        kept += 1;
                    }
                    None => {
                        tracing::warn!(%arn, "GetResources returned a value that is not an ARN")
                    }
                }
            }
            part.resources = kept;
            coverage.resources += kept;
            if let Some(error) = &part.error {
                coverage.failed.push(CoverageFailure {
                    scope: part.scope.clone(),
                    reason: error.clone(),
                });
            }
            report.complete &= part.ok;
            report.parts.push(part);
        }
        report.coverage = Coverage::of(vec![coverage]);
        report.api_calls = counter.attempts();
        report.retries = counter.retries();
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            resources = resources.len(),
            api_calls = report.api_calls,
            ms = report.duration_ms,
            "AWS scan finished"
        );
        Ok(Inventory {
            resources,
            report,
            source: format!("AWS {}", regions.join(", ")),
            fetched_at,
            accounts: super::AccountDirectory::default(),
        })
    }
}
