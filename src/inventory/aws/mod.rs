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
//! Resource Explorer (`explorer`), when the account has an index, lists the resources the
//! Tagging API cannot see (never tagged); its listing is merged by ARN (`merge`) and its
//! coverage stated next to the Tagging API's. `AwsCoverage` chooses.
//!
//! With an account list (`accounts`: the organisation or a c7n-org accounts.yml) the scan fans
//! out over accounts × regions through a role in each (`fanout`, `accounts`, `assume`).

pub(crate) mod accounts;
mod assume;
pub(crate) mod config_query;
pub(crate) mod config_rows;
pub(crate) mod config_types;
pub(crate) mod explorer;
mod fanout;
pub(crate) mod merge;
pub(crate) mod tagging;
pub(crate) mod writer;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use compact_str::CompactString;
use tokio::sync::Semaphore;

use super::file::GLOBAL_REGION;
use super::id::arn::resource_from_arn_in;
use super::listing_cache::SharedListings;
use super::{
    Coverage, CoverageFailure, Inventory, InventoryError, InventoryProvider, Provider, Resource,
    ScanOptions, ScanReport, SourceCoverage, SourceKind,
};
use crate::aws::{AwsTuning, load_sdk_config};
use crate::inventory::Interner;
use accounts::{AccountSource, RoleSettings};
use explorer::ExplorerScan;
use tagging::{ScanTally, TaggingScan};

/// What to scan.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsScanSettings {
    /// Regions to scan; empty means the SDK's configured region.
    pub regions: Vec<String>,
    /// Resource-type filters (`ec2:instance`, `s3`, ...). Empty means every type, one partition
    /// per region; otherwise one partition per filter, fetched in parallel.
    pub resource_types: Vec<String>,
    /// Partitions scanned at the same time (bounded to stay clear of API rate limits).
    pub concurrency: usize,
    pub tuning: AwsTuning,
    /// Which sources list the estate (`--aws-coverage`).
    pub coverage: AwsCoverage,
    /// The AWS Config aggregator to query in `config` mode (`--aws-config-aggregator`).
    pub config_aggregator: Option<String>,
    /// Resource Explorer view to list (`--resource-explorer-view`); default: the default view.
    pub resource_explorer_view: Option<String>,
    /// Scan several accounts (the organisation's, or an accounts file's) through a role in
    /// each; None scans the caller's own account.
    pub accounts: Option<AccountSource>,
    /// The role assumed in each account of `accounts`, and its external id.
    pub roles: RoleSettings,
}

/// Which sources list the AWS estate (`--aws-coverage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AwsCoverage {
    /// Resource Explorer next to the Tagging API when the account has an index (never-tagged
    /// resources included); otherwise the Tagging API alone, and coverage says why.
    #[default]
    Auto,
    /// The Tagging API only: never-tagged resources are missing (coverage says so).
    Tagging,
    /// Resource Explorer is required: when it cannot be used, the scan reports a failed part
    /// (the Tagging API's listing is kept).
    ResourceExplorer,
    /// AWS Config's advanced query (`config_query`): never-tagged resources included, for the
    /// types the Config recorder records.
    Config,
}

impl AwsCoverage {
    /// The flag's values, in help and messages.
    pub const VALUES: &'static str = "auto, tagging, resource-explorer, config";

    /// Parses a `--aws-coverage` value.
    pub fn parse(text: &str) -> Result<AwsCoverage, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(AwsCoverage::Auto),
            "tagging" | "tagging-api" => Ok(AwsCoverage::Tagging),
            "resource-explorer" | "resource_explorer" => Ok(AwsCoverage::ResourceExplorer),
            "config" => Ok(AwsCoverage::Config),
            other => Err(format!(
                "unknown AWS coverage `{other}` (use one of: {})",
                Self::VALUES
            )),
        }
    }

    /// The mode's name, as the flag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AwsCoverage::Auto => "auto",
            AwsCoverage::Tagging => "tagging",
            AwsCoverage::ResourceExplorer => "resource-explorer",
            AwsCoverage::Config => "config",
        }
    }

    /// The mode to use: the one asked for; `config` when only an aggregator is named (naming
    /// one says where the estate is); an aggregator with another mode is a mistake, said so.
    pub fn resolve(
        asked: Option<AwsCoverage>,
        aggregator: Option<&str>,
    ) -> Result<AwsCoverage, String> {
        match (asked, aggregator) {
            (Some(AwsCoverage::Config), _) | (None, Some(_)) => Ok(AwsCoverage::Config),
            (Some(other), Some(_)) => Err(format!(
                "--aws-config-aggregator is for --aws-coverage config, not --aws-coverage {}",
                other.as_str()
            )),
            (Some(other), None) => Ok(other),
            (None, None) => Ok(AwsCoverage::default()),
        }
    }

    /// Whether Resource Explorer is listed at all.
    fn uses_resource_explorer(self) -> bool {
        matches!(self, AwsCoverage::Auto | AwsCoverage::ResourceExplorer)
    }
}

pub(crate) struct AwsProvider {
    settings: AwsScanSettings,
    shared: Option<SharedListings>,
}

/// One listed resource: its ARN and tags.
type Mapping = (CompactString, super::Tags);

impl AwsProvider {
    pub(crate) fn new(settings: AwsScanSettings) -> Self {
        AwsProvider {
            settings,
            shared: None,
        }
    }

    /// Keeps partition listings in the shared cache, when there is one.
    pub(crate) fn with_shared_listings(mut self, shared: Option<SharedListings>) -> Self {
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
    fn metrics_source(&self) -> crate::metrics::InventorySource {
        crate::metrics::InventorySource::Aws
    }

    fn describe(&self) -> String {
        if self.settings.coverage == AwsCoverage::Config {
            return match &self.settings.config_aggregator {
                Some(name) => format!("AWS Config aggregator {name}"),
                None if self.settings.regions.is_empty() => {
                    "AWS Config (configured region)".to_string()
                }
                None => format!("AWS Config {}", self.settings.regions.join(", ")),
            };
        }
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
        if self.settings.coverage == AwsCoverage::Config {
            return config_query::scan(&self.settings, self.shared.clone(), options).await;
        }
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
        let counter = self.settings.tuning.counter();
        let tally = Arc::new(ScanTally::new(
            TaggingScan::partition_count(regions.len(), self.settings.resource_types.len()),
            options,
        ));
        let who = match &self.shared {
            Some(_) => identity(&sdk).await,
            None => None,
        };
        let limit = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let tagging = TaggingScan {
            sdk: &sdk,
            regions: &regions,
            resource_types: &self.settings.resource_types,
            limit: limit.clone(),
            counter: counter.clone(),
            tally: tally.clone(),
            shared: self.shared.clone().zip(who.clone()),
            scope_prefix: "aws".into(),
            force_refresh: options.force_refresh,
        };
        let explorer = self
            .settings
            .coverage
            .uses_resource_explorer()
            .then(|| ExplorerScan {
                sdk: &sdk,
                regions: &regions,
                resource_types: &self.settings.resource_types,
                view_arn: self.settings.resource_explorer_view.as_deref(),
                limit,
                counter: counter.clone(),
                tally,
                shared: self.shared.clone().zip(who),
                scope_prefix: "aws".into(),
                force_refresh: options.force_refresh,
            });
        // Both listings at once, under the one limit.
        let (results, explorer) = tokio::join!(tagging.run(), async {
            match &explorer {
                Some(scan) => Some(scan.run().await),
                None => None,
            }
        });
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
            .flat_map(|r| r.mappings.iter().map(|(arn, _)| arn))
            .chain(
                explorer
                    .iter()
                    .flat_map(|e| e.entries.iter().map(|e| &e.arn)),
            )
            .find_map(|arn| {
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
            .chain(explorer.as_ref().and_then(|e| e.fetched_at))
            .min()
            .unwrap_or_else(Utc::now);
        let mut coverage = SourceCoverage::new(SourceKind::TaggingApi, 0);
        coverage.accounts = vec![account.clone()];
        coverage.regions = regions.clone();
        coverage.resource_types = self.settings.resource_types.clone();
        let mut texts = Interner::default();
        for result in results {
            let mut part = result.part;
            let mut kept = 0;
            for (arn, tags) in result.mappings {
                let tags = texts.share_tags(tags);
                match resource_from_arn_in(&mut texts, &arn, tags, GLOBAL_REGION, &account) {
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
        let mut sources = vec![coverage];
        if let Some(listing) = explorer {
            let required = self.settings.coverage == AwsCoverage::ResourceExplorer;
            sources.push(explorer::join(
                listing,
                required,
                &mut resources,
                &mut report,
                &account,
                &self.settings.resource_types,
            ));
        }
        report.coverage = Coverage::of(sources);
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

#[cfg(test)]
mod tests {
    use super::AwsCoverage;

    #[test]
    fn an_aggregator_alone_means_config_and_contradicts_other_modes() {
        assert_eq!(AwsCoverage::resolve(None, None), Ok(AwsCoverage::Auto));
        assert_eq!(
            AwsCoverage::resolve(None, Some("org")),
            Ok(AwsCoverage::Config)
        );
        assert_eq!(
            AwsCoverage::resolve(Some(AwsCoverage::Config), None),
            Ok(AwsCoverage::Config)
        );
        let err = AwsCoverage::resolve(Some(AwsCoverage::Tagging), Some("org")).unwrap_err();
        assert!(err.contains("--aws-config-aggregator"), "{err}");
    }

    #[test]
    fn modes_by_name() {
        assert_eq!(AwsCoverage::parse("config"), Ok(AwsCoverage::Config));
        assert_eq!(AwsCoverage::parse("Tagging"), Ok(AwsCoverage::Tagging));
        assert!(AwsCoverage::parse("everything").is_err());
    }

    #[test]
    fn coverage_modes_parse_and_unknown_ones_name_the_choices() {
        assert_eq!(AwsCoverage::parse("auto"), Ok(AwsCoverage::Auto));
        assert_eq!(AwsCoverage::parse("Tagging"), Ok(AwsCoverage::Tagging));
        assert_eq!(
            AwsCoverage::parse(" resource-explorer "),
            Ok(AwsCoverage::ResourceExplorer)
        );
        assert_eq!(AwsCoverage::default(), AwsCoverage::Auto);
        assert!(AwsCoverage::Auto.uses_resource_explorer());
        assert!(AwsCoverage::ResourceExplorer.uses_resource_explorer());
        assert!(!AwsCoverage::Tagging.uses_resource_explorer());
        let why = AwsCoverage::parse("everything").unwrap_err();
        assert!(
            why.contains("auto, tagging, resource-explorer, config"),
            "{why}"
        );
    }
}
