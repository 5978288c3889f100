//! AWS live inventory through the Resource Groups Tagging API (`GetResources`).
//!
//! Every configured region is scanned concurrently; within a region the scan can be partitioned
//! by resource-type filters so their pages are fetched in parallel. Pages are 100 resources
//! (`ResourcesPerPage=100, TagsPerPage=500`), so API calls = pages needed; nothing is fetched per
//! resource. Throttling and transient failures are retried by the SDK (exponential backoff with
//! jitter); a part that still fails is reported with the reason and the resources fetched before
//! the failure are kept. Global resources (S3) listed in several regions are kept once.
//!
//! With a shared cache (Redis), each partition's listing is kept there for the inventory TTL
//! under a key of the credentials identity, region and type filter, so another server (or a
//! restart) reuses it without calling AWS; `force_refresh` reads AWS regardless (see
//! `listing_cache`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::config::Region;
use chrono::Utc;
use compact_str::CompactString;
use tokio::sync::Semaphore;

use super::file::GLOBAL_REGION;
use super::id::arn::resource_from_arn;
use super::listing_cache::{PartResult, SharedListings};
use super::{
    Inventory, InventoryError, InventoryProvider, Provider, Resource, ScanOptions, ScanPart,
    ScanReport,
};
use crate::aws::{AwsTuning, CallCounter, load_sdk_config, summarise_sdk_error};

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

/// Counts pages across partitions for progress reports.
struct ScanTally {
    pages: AtomicU64,
    parts_done: AtomicU64,
    parts_total: u64,
    options: ScanOptions,
}

impl ScanTally {
    fn page(&self) {
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        self.report(pages);
    }

    fn part_done(&self) {
        self.parts_done.fetch_add(1, Ordering::Relaxed);
        self.report(self.pages.load(Ordering::Relaxed));
    }

    fn report(&self, pages: u64) {
        let done = self.parts_done.load(Ordering::Relaxed);
        self.options.report(
            pages + done,
            None,
            &format!(
                "AWS: {pages} pages fetched, {done}/{} parts done",
                self.parts_total
            ),
        );
    }
}

/// One unit of parallel work: a region, optionally narrowed to one type filter.
#[derive(Debug, Clone)]
struct Partition {
    region: String,
    type_filter: Option<String>,
}

impl Partition {
    /// Where, for messages: `us-east-1` or `us-east-1 ec2:instance`.
    fn place(&self) -> String {
        match &self.type_filter {
            Some(t) => format!("{} {t}", self.region),
            None => self.region.clone(),
        }
    }

    fn scope(&self) -> String {
        match &self.type_filter {
            Some(t) => format!("aws {} {t}", self.region),
            None => format!("aws {}", self.region),
        }
    }
}

#[async_trait]
impl InventoryProvider for AwsProvider {
    fn describe(&self) -> String {
        if self.settings.regions.is_empty() {
            "AWS (configured region)".to_string()
        } else {
            format!("AWS {}", self.settings.regions.join(", "))
        }
    }

    async fn scan(&self, options: &ScanOptions) -> Result<Inventory, InventoryError> {
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
        let limit = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut partitions = Vec::new();
        for region in &regions {
            if self.settings.resource_types.is_empty() {
                partitions.push(Partition {
                    region: region.clone(),
                    type_filter: None,
                });
            } else {
                for t in &self.settings.resource_types {
                    partitions.push(Partition {
                        region: region.clone(),
                        type_filter: Some(t.clone()),
                    });
                }
            }
        }
        let tally = Arc::new(ScanTally {
            pages: AtomicU64::new(0),
            parts_done: AtomicU64::new(0),
            parts_total: partitions.len() as u64,
            options: options.clone(),
        });
        let identity = match &self.shared {
            Some(_) => identity(&sdk).await,
            None => None,
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (index, partition) in partitions.into_iter().enumerate() {
            let config = aws_sdk_resourcegroupstagging::config::Builder::from(&sdk)
                .region(Region::new(partition.region.clone()))
                .interceptor(counter.clone())
                .build();
            let client = Client::from_conf(config);
            let limit = limit.clone();
            let tally = tally.clone();
            let shared = self.shared.clone().filter(|_| identity.is_some());
            let identity = identity.clone().unwrap_or_default();
            let key = shared.as_ref().map(|s| {
                let filter = partition.type_filter.as_deref().unwrap_or_default();
                s.key(b"aws", &identity, &[&partition.region, filter])
            });
            let force = options.force_refresh;
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let scan = async {
                    let result = scan_partition(&client, &partition, &tally).await;
                    tally.part_done();
                    result
                };
                let result = match (&shared, &key) {
                    (Some(shared), Some(key)) => {
                        let result = shared.through(key, force, partition.scope(), scan).await;
                        if result.part.cached {
                            tally.part_done();
                        }
                        result
                    }
                    _ => scan.await,
                };
                (index, result)
            });
        }
        let mut results: Vec<(usize, PartResult<Mapping>)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(r) => results.push(r),
                Err(e) => tracing::error!(error = %e, "AWS scan task failed"),
            }
        }
        // Deterministic order whatever finished first.
        results.sort_by_key(|(i, _)| *i);
        let all_failed = !results.is_empty() && results.iter().all(|(_, r)| !r.part.ok);
        if all_failed {
            let first = results
                .iter()
                .find_map(|(_, r)| r.part.error.clone())
                .unwrap_or_default();
            return Err(InventoryError::Unavailable {
                provider: Provider::Aws,
                part: "region",
                reason: first,
            });
        }
        let account = results
            .iter()
            .flat_map(|(_, r)| r.mappings.iter())
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
            .map(|(_, r)| r.fetched_at)
            .min()
            .unwrap_or_else(Utc::now);
        for (_, result) in results {
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
            report.complete &= part.ok;
            report.parts.push(part);
        }
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
        })
    }
}

/// Fetches every page of one partition. On failure, keeps what was fetched and says why.
async fn scan_partition(
    client: &Client,
    partition: &Partition,
    tally: &ScanTally,
) -> PartResult<Mapping> {
    let mut mappings = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u64;
    let error = loop {
        let response = client
            .get_resources()
            .resources_per_page(100)
            .tags_per_page(500)
            .set_resource_type_filters(partition.type_filter.clone().map(|t| vec![t]))
            .set_pagination_token(token.clone())
            .send()
            .await;
        let output = match response {
            Ok(o) => o,
            Err(e) => break Some(summarise_sdk_error("GetResources", &partition.place(), &e)),
        };
        pages += 1;
        tally.page();
        for m in output.resource_tag_mapping_list() {
            let Some(arn) = m.resource_arn() else {
                continue;
            };
            let tags = m
                .tags()
                .iter()
                .map(|t| (CompactString::from(t.key()), CompactString::from(t.value())))
                .collect();
            mappings.push((CompactString::from(arn), tags));
        }
        match output.pagination_token() {
            // A token equal to the one just sent would loop forever: stop and say so.
            Some(t) if !t.is_empty() && token.as_deref() == Some(t) => {
                break Some(format!(
                    "GetResources in {} returned the same pagination token twice; the listing \
                     may be incomplete",
                    partition.place()
                ));
            }
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break None,
        }
    };
    if let Some(error) = &error {
        tracing::warn!(%error, "AWS scan part failed");
    }
    PartResult {
        part: ScanPart {
            scope: partition.scope(),
            ok: error.is_none(),
            resources: mappings.len(),
            pages,
            error,
            cached: false,
        },
        mappings,
        fetched_at: Utc::now(),
    }
}
