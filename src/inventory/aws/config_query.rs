//! The AWS Config source (`--aws-coverage config`): the estate from Config's advanced query,
//! never-tagged resources included.
//!
//! With `--aws-config-aggregator NAME`, one `SelectAggregateResourceConfig` query covers every
//! account and region the aggregator aggregates (sent to the configured region, where the
//! aggregator lives; `--regions` narrows it in the `WHERE` clause). Without one,
//! `SelectResourceConfig` asks each region's own recorder (the configured region, or one query
//! per `--regions` region, concurrently), for the caller's account. Pages are 100 results
//! (`Limit=100`, the maximum), so API calls = pages.
//!
//! What Config cannot see is stated in the coverage: only the types its recorder records are
//! listed, tags are as last recorded, and results without an ARN that cannot be built are
//! counted there. Config is the only source in this mode (the Tagging API is not merged in).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_config::Client;
use aws_sdk_config::config::Region;
use chrono::Utc;
use tokio::sync::Semaphore;

use super::AwsScanSettings;
use super::config_rows::{Filters, Row, expression, read_row};
use super::tagging::ScanTally;
use crate::aws::{next_token, summarise_sdk_error};
use crate::inventory::Interner;
use crate::inventory::listing_cache::{PartResult, SharedListings};
use crate::inventory::{
    Coverage, CoverageFailure, Inventory, InventoryError, Provider, Resource, ScanOptions,
    ScanPart, ScanReport, SourceCoverage, SourceKind,
};

/// Results per page: the most Config allows.
const PAGE: i32 = 100;

/// What Config cannot see, whatever the scan.
const NOTE: &str = "AWS Config lists only the resource types its configuration recorder \
                    records, with tags as last recorded";

/// Where one query goes.
#[derive(Debug, Clone)]
enum Target {
    /// One query over an aggregator, sent to `region`.
    Aggregator { name: String, region: String },
    /// One region's own recorder.
    Region(String),
}

impl Target {
    fn region(&self) -> &str {
        match self {
            Target::Aggregator { region, .. } | Target::Region(region) => region,
        }
    }

    /// Where, for messages: `aggregator org-all` or `us-east-1`.
    fn place(&self) -> String {
        match self {
            Target::Aggregator { name, .. } => format!("aggregator {name}"),
            Target::Region(r) => r.clone(),
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            Target::Aggregator { .. } => "SelectAggregateResourceConfig",
            Target::Region(_) => "SelectResourceConfig",
        }
    }
}

/// The Config scan: the targets, the query, and the settings it came from.
pub(super) async fn scan(
    settings: &AwsScanSettings,
    shared: Option<SharedListings>,
    options: &ScanOptions,
) -> Result<Inventory, InventoryError> {
    let started = Instant::now();
    let sdk = crate::aws::load_sdk_config(&settings.tuning).await;
    let configured = sdk.region().map(|r| r.to_string());
    let (targets, filters) = match &settings.config_aggregator {
        Some(name) => {
            let Some(region) = configured else {
                return Err(InventoryError::Config {
                    provider: Provider::Aws,
                    message: format!(
                        "the AWS Config aggregator `{name}` (--aws-config-aggregator) is \
                         queried in its own region: set AWS_REGION (or a profile region) to \
                         the region where it was created"
                    ),
                });
            };
            let target = Target::Aggregator {
                name: name.clone(),
                region,
            };
            let filters = Filters {
                resource_types: settings.resource_types.clone(),
                regions: settings.regions.clone(),
            };
            (vec![target], filters)
        }
        None => {
            let regions = if settings.regions.is_empty() {
                match configured {
                    Some(r) => vec![r],
                    None => {
                        return Err(InventoryError::Config {
                            provider: Provider::Aws,
                            message: "no AWS region is configured: set AWS_REGION (or a \
                                      profile region), or pass --regions us-east-1,eu-west-1"
                                .into(),
                        });
                    }
                }
            } else {
                settings.regions.clone()
            };
            let filters = Filters {
                resource_types: settings.resource_types.clone(),
                // Each region's recorder answers for its own region (and global resources).
                regions: Vec::new(),
            };
            (regions.into_iter().map(Target::Region).collect(), filters)
        }
    };
    // Regions narrow an aggregator's query; a region's own recorder needs no region condition.
    let query = expression(&settings.resource_types, &filters.regions);
    tracing::debug!(%query, "AWS Config query");

    let counter = settings.tuning.counter();
    let tally = Arc::new(ScanTally::new(targets.len() as u64, options));
    let who = match &shared {
        Some(_) => super::identity(&sdk).await,
        None => None,
    };
    let shared = shared.zip(who);
    let limit = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.iter().cloned().enumerate() {
        let config = aws_sdk_config::config::Builder::from(&sdk)
            .region(Region::new(target.region().to_string()))
            .interceptor(counter.clone())
            .build();
        let client = Client::from_conf(config);
        let limit = limit.clone();
        let tally = tally.clone();
        let query = query.clone();
        let cache = shared.as_ref().map(|(listings, who)| {
            let (kind, name) = match &target {
                Target::Aggregator { name, region } => ("aggregator", format!("{name}@{region}")),
                Target::Region(r) => ("region", r.clone()),
            };
            let key = listings.key(b"aws-config", who, &[kind, &name, &query]);
            (listings.clone(), key)
        });
        let force = options.force_refresh;
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let scope = format!("aws-config {}", target.place());
            let run = async {
                let result = query_pages(&client, &target, &query, &tally).await;
                tally.part_done();
                result
            };
            let result = match &cache {
                Some((listings, key)) => {
                    let result = listings.through(key, force, scope, run).await;
                    if result.part.cached {
                        tally.part_done();
                    }
                    result
                }
                None => run.await,
            };
            (index, result)
        });
    }
    let mut results: Vec<(usize, PartResult<String>)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => tracing::error!(error = %e, "AWS Config query task failed"),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<PartResult<String>> = results.into_iter().map(|(_, r)| r).collect();

    if !results.is_empty() && results.iter().all(|r| !r.part.ok) {
        let first = results
            .iter()
            .find_map(|r| r.part.error.clone())
            .unwrap_or_default();
        return Err(InventoryError::Unavailable {
            provider: Provider::Aws,
            part: if settings.config_aggregator.is_some() {
                "aggregator"
            } else {
                "region"
            },
            reason: first,
        });
    }

    let fetched_at = results
        .iter()
        .map(|r| r.fetched_at)
        .min()
        .unwrap_or_else(Utc::now);
    let mut assembled = Assembled::default();
    let mut report = ScanReport {
        complete: true,
        ..ScanReport::default()
    };
    let mut failed = Vec::new();
    for result in results {
        let mut part = result.part;
        part.resources = assembled.add(&result.mappings, &filters);
        if let Some(error) = &part.error {
            failed.push(CoverageFailure {
                scope: part.scope.clone(),
                reason: error.clone(),
            });
        }
        report.complete &= part.ok;
        report.parts.push(part);
    }
    let covered_regions = match &settings.config_aggregator {
        Some(_) if settings.regions.is_empty() => assembled.regions.iter().cloned().collect(),
        Some(_) => settings.regions.clone(),
        None => targets.iter().map(|t| t.region().to_string()).collect(),
    };
    let mut coverage = SourceCoverage::new(SourceKind::AwsConfig, assembled.resources.len());
    coverage.note = Some(assembled.note(settings.config_aggregator.as_deref()));
    coverage.accounts = assembled.accounts.iter().cloned().collect();
    coverage.regions = covered_regions;
    coverage.resource_types = settings.resource_types.clone();
    failed.extend(assembled.gaps());
    coverage.failed = failed;
    report.coverage = Coverage::of(vec![coverage]);
    report.api_calls = counter.attempts();
    report.retries = counter.retries();
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        resources = assembled.resources.len(),
        without_arn = assembled.without_arn,
        api_calls = report.api_calls,
        ms = report.duration_ms,
        "AWS Config scan finished"
    );
    let source = match &settings.config_aggregator {
        Some(name) => format!("AWS Config aggregator {name}"),
        None => format!(
            "AWS Config {}",
            targets
                .iter()
                .map(|t| t.region().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(Inventory {
        resources: assembled.resources,
        report,
        source,
        fetched_at,
        accounts: Default::default(),
    })
}

/// The resources read from every part's results, and what was left out.
#[derive(Default)]
struct Assembled {
    resources: Vec<Resource>,
    accounts: BTreeSet<String>,
    /// Config's regions of the resources kept (S3's own region, `global` for IAM).
    regions: BTreeSet<String>,
    built_arns: usize,
    /// Results Tagwarden cannot name (no ARN, and none can be built), by Config type.
    without_arn: usize,
    without_arn_types: BTreeSet<String>,
    unreadable: usize,
    texts: Interner,
}

impl Assembled {
    /// Reads one part's results; returns how many resources it added.
    fn add(&mut self, results: &[String], filters: &Filters) -> usize {
        let before = self.resources.len();
        for text in results {
            match read_row(text, filters) {
                Row::Resource {
                    resource,
                    built_arn,
                    region,
                } => {
                    self.built_arns += usize::from(built_arn);
                    self.accounts.insert(resource.account.to_string());
                    self.regions.insert(region);
                    self.resources.push(self.texts.share(*resource));
                }
                Row::Excluded => {}
                Row::NoArn { config_type } => {
                    self.without_arn += 1;
                    self.without_arn_types.insert(config_type);
                }
                Row::Unreadable { reason } => {
                    self.unreadable += 1;
                    tracing::warn!(%reason, "an AWS Config result was left out");
                }
            }
        }
        self.resources.len() - before
    }

    /// What the listing leaves out, in words (results it could not use are `gaps`).
    fn note(&self, aggregator: Option<&str>) -> String {
        let mut note = NOTE.to_string();
        match aggregator {
            Some(name) => note.push_str(&format!(
                ", in the accounts and regions aggregator {name} aggregates"
            )),
            None => note.push_str(", in the caller's account"),
        }
        if self.built_arns > 0 {
            note.push_str(&format!(
                "; {} ARN{} built from Config's resource ids",
                self.built_arns,
                plural(self.built_arns)
            ));
        }
        note
    }

    /// Resources Config returned that are not in the inventory: each makes the coverage
    /// incomplete, since every count leaves them out.
    fn gaps(&self) -> Vec<CoverageFailure> {
        let mut gaps = Vec::new();
        if self.without_arn > 0 {
            gaps.push(CoverageFailure {
                scope: format!(
                    "{} resource{} without an ARN ({})",
                    self.without_arn,
                    plural(self.without_arn),
                    self.without_arn_types
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                reason: "Config returned no ARN and none can be built from its ids; left out \
                         of every count"
                    .into(),
            });
        }
        if self.unreadable > 0 {
            gaps.push(CoverageFailure {
                scope: format!(
                    "{} unreadable result{}",
                    self.unreadable,
                    plural(self.unreadable)
                ),
                reason: "not a configuration item Tagwarden can read (see the log); left out of \
                         every count"
                    .into(),
            });
        }
        gaps
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Every page of one query. On failure, keeps what was fetched and says why.
async fn query_pages(
    client: &Client,
    target: &Target,
    query: &str,
    tally: &ScanTally,
) -> PartResult<String> {
    let mut results = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u64;
    let place = target.place();
    let error = loop {
        let page = match target {
            Target::Aggregator { name, .. } => client
                .select_aggregate_resource_config()
                .configuration_aggregator_name(name)
                .expression(query)
                .limit(PAGE)
                .set_next_token(token.clone())
                .send()
                .await
                .map(|o| (o.results.unwrap_or_default(), o.next_token))
                .map_err(|e| summarise_sdk_error(target.operation(), &place, &e)),
            Target::Region(_) => client
                .select_resource_config()
                .expression(query)
                .limit(PAGE)
                .set_next_token(token.clone())
                .send()
                .await
                .map(|o| (o.results.unwrap_or_default(), o.next_token))
                .map_err(|e| summarise_sdk_error(target.operation(), &place, &e)),
        };
        let (page_results, next) = match page {
            Ok(p) => p,
            Err(e) => break Some(e),
        };
        pages += 1;
        tally.page();
        results.extend(page_results);
        match next_token(
            token.as_deref(),
            next.as_deref(),
            target.operation(),
            &place,
        ) {
            Ok(Some(t)) => token = Some(t),
            Ok(None) => break None,
            Err(why) => break Some(why),
        }
    };
    if let Some(error) = &error {
        tracing::warn!(%error, "AWS Config query failed");
    }
    PartResult {
        part: ScanPart {
            scope: format!("aws-config {place}"),
            ok: error.is_none(),
            resources: results.len(),
            pages,
            error,
            cached: false,
        },
        mappings: results,
        fetched_at: Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_says_what_config_leaves_out() {
        let mut a = Assembled::default();
        let rows = [
            r#"{"resourceType":"AWS::EC2::Volume","resourceId":"vol-1","accountId":"1","awsRegion":"us-east-1","tags":[]}"#,
            r#"{"resourceType":"AWS::SQS::Queue","resourceId":"q","accountId":"1","awsRegion":"us-east-1"}"#,
            r#"{"resourceType":"AWS::SNS::Topic","resourceId":"t","accountId":"1","awsRegion":"us-east-1"}"#,
            r#"{"resourceType":"AWS::S3::Bucket","arn":"arn:aws:s3:::b","accountId":"2","awsRegion":"eu-west-1","tags":[]}"#,
            "garbage",
        ]
        .map(String::from);
        assert_eq!(a.add(&rows, &Filters::default()), 2);
        assert_eq!(a.accounts.iter().collect::<Vec<_>>(), vec!["1", "2"]);
        assert_eq!(
            a.regions.iter().collect::<Vec<_>>(),
            vec!["eu-west-1", "us-east-1"]
        );
        assert_eq!(
            a.note(Some("org")),
            format!(
                "{NOTE}, in the accounts and regions aggregator org aggregates; 1 ARN built from \
                 Config's resource ids"
            )
        );
        let gaps = a.gaps();
        assert_eq!(gaps.len(), 2);
        assert_eq!(
            gaps[0].scope,
            "2 resources without an ARN (AWS::SNS::Topic, AWS::SQS::Queue)"
        );
        assert_eq!(gaps[1].scope, "1 unreadable result");
        assert!(Assembled::default().gaps().is_empty());
        assert_eq!(
            Assembled::default().note(None),
            format!("{NOTE}, in the caller's account")
        );
    }
}
