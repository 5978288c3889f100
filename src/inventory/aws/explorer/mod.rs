//! The Resource Explorer (`resource-explorer-2`) listing of one account: unlike the Tagging
//! API it lists resources that were never tagged, so with it the estate is complete.
//!
//! `ListIndexes` finds the account's indexes; then `ListResources` (pages of 1,000, not
//! `Search`, which stops at 1,000 results) lists the aggregator index's view once for every
//! region, or each scanned region's local index (see `plan`). Only resources of the scanned
//! regions (and global ones) and of the type filters are kept; tags come from the `tags`
//! property when the view includes it. No index, no permission, no default view (or indexes
//! that cannot be listed at all) is a *setup problem*, said with what to do; a listing that
//! fails on the way (throttling, a 500) is a failed part that keeps what it fetched. Listings and the index list are shared through the cache like the Tagging
//! API's partitions.

pub(crate) mod entry;
mod join;
pub(crate) mod plan;

pub(crate) use join::join;

use std::sync::Arc;

use aws_sdk_resourceexplorer2::Client;
use aws_sdk_resourceexplorer2::config::Region;
use aws_sdk_resourceexplorer2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_resourceexplorer2::types::IndexType;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::tagging::ScanTally;
use crate::aws::{CallCounter, next_token, summarise_sdk_error};
use crate::inventory::listing_cache::{PartResult, SharedListings};
use crate::inventory::{CoverageFailure, ScanPart};
use entry::{Entry, region_of, tags_from_property, wanted};
use plan::{Index, Listing};

/// The most `ListResources` returns per page.
const PAGE_SIZE: i32 = 1000;

/// One account's Resource Explorer listing: where and how.
pub(crate) struct ExplorerScan<'a> {
    /// SDK configuration with the account's credentials.
    pub sdk: &'a aws_config::SdkConfig,
    pub regions: &'a [String],
    pub resource_types: &'a [String],
    /// `--resource-explorer-view`; `None`: the default view of the listing's region.
    pub view_arn: Option<&'a str>,
    /// The limit the Tagging API's partitions share, so the scan stays under one limit.
    pub limit: Arc<Semaphore>,
    pub counter: CallCounter,
    pub tally: Arc<ScanTally>,
    /// The shared cache and who is asking, when listings are shared.
    pub shared: Option<(SharedListings, String)>,
    /// Prefix of every part's scope, e.g. `aws`.
    pub scope_prefix: String,
    pub force_refresh: bool,
}

/// What Resource Explorer gave.
#[derive(Debug, Default)]
pub(crate) struct ExplorerListing {
    /// The wanted resources, in listing order (a global resource listed by two local indexes
    /// appears twice; the merge keeps it once).
    pub entries: Vec<Entry>,
    /// One part per `ListResources` listing made (or taken from the shared cache).
    pub parts: Vec<ScanPart>,
    /// Scanned regions a successful listing covered.
    pub covered: Vec<String>,
    /// What keeps Resource Explorer from covering the scan (no index, no permission, no
    /// default view, a region without an index), with what to do.
    pub setup: Vec<CoverageFailure>,
    /// When the oldest listing was read from AWS.
    pub fetched_at: Option<DateTime<Utc>>,
}

/// Why a call failed: the account's setup (permanent until someone acts) or a failure on the
/// way (the SDK retried it already).
enum Problem {
    Setup(String),
    Failed(String),
}

impl ExplorerScan<'_> {
    fn client(&self, region: &str) -> Client {
        let config = aws_sdk_resourceexplorer2::config::Builder::from(self.sdk)
            .region(Region::new(region.to_string()))
            .interceptor(self.counter.clone())
            .build();
        Client::from_conf(config)
    }

    fn scope(&self, what: &str) -> String {
        format!("{} {what}", self.scope_prefix)
    }

    /// Lists what Resource Explorer can see of the scanned regions.
    pub(crate) async fn run(&self) -> ExplorerListing {
        let mut out = ExplorerListing::default();
        let Some(home) = plan::discovery_region(self.regions, self.view_arn) else {
            let why = match self.view_arn {
                Some(view) => format!(
                    "`{view}` is not a Resource Explorer view ARN \
                     (arn:aws:resource-explorer-2:REGION:ACCOUNT:view/NAME/ID)"
                ),
                None => "no region was scanned".to_string(),
            };
            out.setup.push(self.setup_failure(why));
            return out;
        };
        // Until the indexes are known, Resource Explorer is not in use: any failure to list them
        // (refused, or an endpoint that does not serve Resource Explorer) is a setup problem.
        let indexes = match self.indexes(&home).await {
            Ok(indexes) => indexes,
            Err(Problem::Setup(why) | Problem::Failed(why)) => {
                out.setup.push(self.setup_failure(why));
                return out;
            }
        };
        let plan = match plan::plan(&indexes, self.regions, self.view_arn) {
            Ok(plan) => plan,
            Err(why) => {
                out.setup.push(self.setup_failure(why));
                return out;
            }
        };
        for (region, why) in plan.uncovered {
            out.setup.push(CoverageFailure {
                scope: self.scope(&region),
                reason: why,
            });
        }
        let listed = self.list_all(plan.listings).await;
        let mut covered: Vec<String> = Vec::new();
        for (listing, result, problem) in listed {
            if let Some(Problem::Setup(why)) = problem {
                out.setup.push(CoverageFailure {
                    scope: result.part.scope,
                    reason: why,
                });
                continue;
            }
            // A listing that failed on the way keeps what it fetched, as the Tagging API's
            // partitions do; only a whole listing covers its regions.
            if result.part.ok {
                covered.extend(listing.covers.iter().cloned());
            }
            out.fetched_at = Some(match out.fetched_at {
                Some(t) => t.min(result.fetched_at),
                None => result.fetched_at,
            });
            let before = out.entries.len();
            out.entries.extend(
                result
                    .mappings
                    .into_iter()
                    .filter(|e| wanted(e, self.regions, self.resource_types)),
            );
            let mut part = result.part;
            part.resources = out.entries.len() - before;
            out.parts.push(part);
        }
        // In scan order, once each.
        out.covered = self
            .regions
            .iter()
            .filter(|r| covered.contains(r))
            .cloned()
            .collect();
        out
    }

    /// A problem of the whole account (no index, no permission): scoped to the account.
    fn setup_failure(&self, reason: String) -> CoverageFailure {
        CoverageFailure {
            scope: self.scope_prefix.clone(),
            reason,
        }
    }

    /// The account's indexes (every page), through the shared cache.
    async fn indexes(&self, home: &str) -> Result<Vec<Index>, Problem> {
        let client = self.client(home);
        let scope = self.scope(&format!("resource-explorer indexes {home}"));
        let mut problem = None;
        let scan = async {
            let _permit = self.limit.acquire().await;
            let (result, p) = list_indexes(&client, home, scope.clone()).await;
            problem = p;
            result
        };
        let result = match &self.shared {
            Some((listings, who)) => {
                let key = listings.key(b"aws", who, &["resource-explorer", "indexes", home]);
                listings
                    .through(&key, self.force_refresh, scope.clone(), scan)
                    .await
            }
            None => scan.await,
        };
        match problem {
            Some(p) => Err(p),
            None => Ok(result.mappings),
        }
    }

    /// Every listing, at the same time under the shared limit; results in plan order.
    async fn list_all(
        &self,
        listings: Vec<Listing>,
    ) -> Vec<(Listing, PartResult<Entry>, Option<Problem>)> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, listing) in listings.into_iter().enumerate() {
            let client = self.client(&listing.region);
            let limit = self.limit.clone();
            let tally = self.tally.clone();
            let scope = self.scope(&format!("resource-explorer {}", listing.region));
            let shared = self.shared.as_ref().map(|(listings, who)| {
                let view = listing.view_arn.as_deref().unwrap_or_default();
                let key = listings.key(b"aws", who, &["resource-explorer", &listing.region, view]);
                (listings.clone(), key)
            });
            let force = self.force_refresh;
            tasks.spawn(async move {
                let mut problem = None;
                let scan = async {
                    let _permit = limit.acquire().await;
                    let (result, p) =
                        list_resources(&client, &listing, scope.clone(), &tally).await;
                    problem = p;
                    result
                };
                let result = match &shared {
                    Some((listings, key)) => {
                        listings.through(key, force, scope.clone(), scan).await
                    }
                    None => scan.await,
                };
                (index, listing, result, problem)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(r) => results.push(r),
                Err(e) => tracing::error!(error = %e, "Resource Explorer listing task failed"),
            }
        }
        results.sort_by_key(|(i, ..)| *i);
        results
            .into_iter()
            .map(|(_, listing, result, problem)| (listing, result, problem))
            .collect()
    }
}

/// `ListIndexes`, every page. The result is `ok` only when every page came.
async fn list_indexes(
    client: &Client,
    home: &str,
    scope: String,
) -> (PartResult<Index>, Option<Problem>) {
    let mut indexes = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u64;
    let problem = loop {
        let response = client
            .list_indexes()
            .max_results(100)
            .set_next_token(token.clone())
            .send()
            .await;
        let output = match response {
            Ok(o) => o,
            Err(e) => break Some(explain("ListIndexes", home, None, &e)),
        };
        pages += 1;
        for index in output.indexes() {
            if let Some(region) = index.region() {
                indexes.push(Index {
                    region: region.to_string(),
                    aggregator: index.r#type() == Some(&IndexType::Aggregator),
                });
            }
        }
        match next_token(token.as_deref(), output.next_token(), "ListIndexes", home) {
            Ok(Some(t)) => token = Some(t),
            Ok(None) => break None,
            Err(why) => break Some(Problem::Failed(why)),
        }
    };
    (result(scope, indexes, pages, &problem), problem)
}

/// `ListResources` over one view, every page of 1,000.
async fn list_resources(
    client: &Client,
    listing: &Listing,
    scope: String,
    tally: &ScanTally,
) -> (PartResult<Entry>, Option<Problem>) {
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u64;
    let place = listing.region.as_str();
    let view = listing.view_arn.as_deref();
    let problem = loop {
        let response = client
            .list_resources()
            .max_results(PAGE_SIZE)
            .set_view_arn(listing.view_arn.clone())
            .set_next_token(token.clone())
            .send()
            .await;
        let output = match response {
            Ok(o) => o,
            Err(e) => break Some(explain("ListResources", place, view, &e)),
        };
        pages += 1;
        tally.page();
        for r in output.resources() {
            let Some(arn) = r.arn() else {
                continue;
            };
            let tags = r
                .properties()
                .iter()
                .find(|p| p.name().is_some_and(|n| n.eq_ignore_ascii_case("tags")))
                .and_then(|p| p.data())
                .and_then(tags_from_property);
            entries.push(Entry {
                arn: arn.into(),
                region: region_of(r.region()),
                resource_type: r.resource_type().unwrap_or_default().into(),
                tags,
            });
        }
        match next_token(
            token.as_deref(),
            output.next_token(),
            "ListResources",
            place,
        ) {
            Ok(Some(t)) => token = Some(t),
            Ok(None) => break None,
            Err(why) => break Some(Problem::Failed(why)),
        }
    };
    (result(scope, entries, pages, &problem), problem)
}

fn result<T>(
    scope: String,
    mappings: Vec<T>,
    pages: u64,
    problem: &Option<Problem>,
) -> PartResult<T> {
    let error = problem.as_ref().map(|p| match p {
        Problem::Setup(why) | Problem::Failed(why) => why.clone(),
    });
    if let Some(error) = &error {
        tracing::warn!(%error, "Resource Explorer listing failed");
    }
    PartResult {
        part: ScanPart {
            scope,
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

/// What a refused call means for the account's setup, and what to do; anything else is a
/// failure on the way, summarised as for the Tagging API.
fn explain<E, R>(operation: &str, place: &str, view: Option<&str>, err: &SdkError<E, R>) -> Problem
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.as_service_error().and_then(|e| e.code());
    match (code, view) {
        (Some("AccessDeniedException"), _) => Problem::Setup(format!(
            "{operation} in {place} was refused (AccessDeniedException): grant this identity \
             resource-explorer-2:ListIndexes and resource-explorer-2:ListResources (see the \
             README, Coverage)"
        )),
        (Some("UnauthorizedException"), None) => Problem::Setup(format!(
            "{operation} in {place} was refused (UnauthorizedException): the region has no \
             default view, or this identity may not use it; create one that includes tags (aws \
             resource-explorer-2 create-view --view-name all-resources --included-properties \
             Name=tags --region {place}, then aws resource-explorer-2 associate-default-view \
             --view-arn VIEW_ARN --region {place}) or name a view with --resource-explorer-view"
        )),
        (Some("UnauthorizedException"), Some(view)) => Problem::Setup(format!(
            "{operation} in {place} was refused (UnauthorizedException): this identity may not \
             use the view {view}; grant resource-explorer-2:ListResources on it"
        )),
        (Some("ResourceNotFoundException"), Some(view)) => Problem::Setup(format!(
            "{operation} in {place}: the view {view} does not exist; check \
             --resource-explorer-view"
        )),
        _ => Problem::Failed(summarise_sdk_error(operation, place, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_token_stops_the_listing() {
        assert_eq!(
            next_token(None, Some("a"), "ListResources", "r"),
            Ok(Some("a".into()))
        );
        assert_eq!(
            next_token(Some("a"), Some("b"), "ListResources", "r"),
            Ok(Some("b".into()))
        );
        assert_eq!(next_token(Some("a"), None, "ListResources", "r"), Ok(None));
        assert_eq!(
            next_token(Some("a"), Some(""), "ListResources", "r"),
            Ok(None)
        );
        let why = next_token(Some("a"), Some("a"), "ListResources", "r").unwrap_err();
        assert!(why.contains("same NextToken twice"), "{why}");
    }
}
