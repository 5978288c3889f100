//! The Resource Groups Tagging API (`GetResources`) listing of one account: every region (and,
//! with type filters, every region × filter) is a partition fetched concurrently under a shared
//! limit. Pages are 100 resources (`ResourcesPerPage=100, TagsPerPage=500`), so API calls =
//! pages needed; nothing is fetched per resource. A partition that fails keeps what it fetched
//! and says why.
//!
//! On real AWS this API never lists a resource that was never tagged; the caller states that in
//! the scan's coverage and, where it can, completes the listing from Resource Explorer or Config.

use crate::inventory::Interner;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::config::Region;
use chrono::Utc;
use compact_str::CompactString;
use tokio::sync::Semaphore;

use super::Mapping;
use crate::aws::{CallCounter, next_token, summarise_sdk_error};
use crate::inventory::listing_cache::{PartResult, SharedListings};
use crate::inventory::{ScanOptions, ScanPart};

/// One account's Tagging API listing: where and how.
pub(crate) struct TaggingScan<'a> {
    /// SDK configuration with the account's credentials.
    pub sdk: &'a aws_config::SdkConfig,
    pub regions: &'a [String],
    pub resource_types: &'a [String],
    /// Shared by every partition of every account, so the whole scan stays under one limit.
    pub limit: Arc<Semaphore>,
    pub counter: CallCounter,
    pub tally: Arc<ScanTally>,
    /// The shared cache and the key prefix of this account's listings (who is asking), when
    /// listings are shared.
    pub shared: Option<(SharedListings, String)>,
    /// Prefix of every part's scope, e.g. `aws` or `aws 111111111111`.
    pub scope_prefix: String,
    pub force_refresh: bool,
}

impl TaggingScan<'_> {
    /// The partitions: a region each, or a region × type filter each.
    fn partitions(&self) -> Vec<Partition> {
        let mut partitions = Vec::new();
        for region in self.regions {
            if self.resource_types.is_empty() {
                partitions.push(Partition {
                    region: region.clone(),
                    type_filter: None,
                    scope_prefix: self.scope_prefix.clone(),
                });
            } else {
                for t in self.resource_types {
                    partitions.push(Partition {
                        region: region.clone(),
                        type_filter: Some(t.clone()),
                        scope_prefix: self.scope_prefix.clone(),
                    });
                }
            }
        }
        partitions
    }

    /// Partitions in one account (regions × type filters).
    pub(crate) fn partition_count(regions: usize, resource_types: usize) -> u64 {
        (regions * resource_types.max(1)) as u64
    }

    /// Lists every partition; results in partition order whatever finished first.
    pub(crate) async fn run(&self) -> Vec<PartResult<Mapping>> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, partition) in self.partitions().into_iter().enumerate() {
            let config = aws_sdk_resourcegroupstagging::config::Builder::from(self.sdk)
                .region(Region::new(partition.region.clone()))
                .interceptor(self.counter.clone())
                .build();
            let client = Client::from_conf(config);
            let limit = self.limit.clone();
            let tally = self.tally.clone();
            let shared = self.shared.as_ref().map(|(listings, who)| {
                let filter = partition.type_filter.as_deref().unwrap_or_default();
                let key = listings.key(b"aws", who, &[&partition.region, filter]);
                (listings.clone(), key)
            });
            let force = self.force_refresh;
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let scan = async {
                    let result = scan_partition(&client, &partition, &tally).await;
                    tally.part_done();
                    result
                };
                let result = match &shared {
                    Some((listings, key)) => {
                        let result = listings.through(key, force, partition.scope(), scan).await;
                        if result.part.cached {
                            tally.part_done();
                        }
                        result
                    }
                    None => scan.await,
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
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }
}

/// Counts pages across partitions for progress reports.
pub(crate) struct ScanTally {
    pages: AtomicU64,
    parts_done: AtomicU64,
    parts_total: u64,
    options: ScanOptions,
}

impl ScanTally {
    /// A tally for a scan of `parts_total` parts, reporting to `options`' progress.
    pub(crate) fn new(parts_total: u64, options: &ScanOptions) -> ScanTally {
        ScanTally {
            pages: AtomicU64::new(0),
            parts_done: AtomicU64::new(0),
            parts_total,
            options: options.clone(),
        }
    }

    /// One more page fetched.
    pub(crate) fn page(&self) {
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        self.report(pages);
    }

    /// One more part finished (listed, failed or taken from the shared cache).
    pub(crate) fn part_done(&self) {
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
    /// `aws` for the caller's account, `aws <account>` in a multi-account scan.
    scope_prefix: String,
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
        format!("{} {}", self.scope_prefix, self.place())
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
    let mut texts = Interner::default();
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
                .map(|t| (texts.intern(t.key()), texts.intern(t.value())))
                .collect();
            mappings.push((CompactString::from(arn), tags));
        }
        match next_token(
            token.as_deref(),
            output.pagination_token(),
            "GetResources",
            &partition.place(),
        ) {
            Ok(Some(t)) => token = Some(t),
            Ok(None) => break None,
            Err(why) => break Some(why),
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
