//! The multi-account scan (`--aws-org`, `--aws-accounts FILE`): list the accounts, then scan
//! accounts × regions under one concurrency limit, each account through its role.
//!
//! A failed account — its role refused, or every region failed — is named in the coverage
//! with the reason, and the scan goes on with the others; the answer is partial, not an error,
//! unless every account failed. Calls made: the `ListAccounts` pages, one `AssumeRole` per
//! account (per role of a chain) and the `GetResources` pages — none per resource, and no
//! `AssumeRole` for an account whose listings all come from the shared cache.
//!
//! Shared-cache keys are the account, its role chain and the region (not the access key id,
//! which changes with every assumed-role session).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::accounts::{
    AccountSource, AccountTarget, list_organization, parse_accounts_file, targets_from_org,
    validate_settings,
};
use super::assume::RoleChain;
use super::tagging::{ScanTally, TaggingScan};
use super::{AwsProvider, Mapping};
use crate::aws::{CallCounter, load_sdk_config};
use crate::inventory::Interner;
use crate::inventory::coverage::TAGGING_API_NOTE;
use crate::inventory::file::{GLOBAL_REGION, display_name};
use crate::inventory::id::arn::resource_from_arn_in;
use crate::inventory::listing_cache::{PartResult, SharedListings};
use crate::inventory::{
    AccountDirectory, Coverage, CoverageFailure, Inventory, InventoryError, InventoryProvider,
    Provider, Resource, ScanOptions, ScanPart, ScanReport, SourceCoverage, SourceKind,
};

/// The longest wait for one account's credentials (AssumeRole with its retries).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(60);

/// What every account's scan shares.
struct FanOut<'a> {
    base: &'a aws_config::SdkConfig,
    resource_types: &'a [String],
    limit: Arc<Semaphore>,
    counter: CallCounter,
    tally: Arc<ScanTally>,
    shared: Option<SharedListings>,
    force_refresh: bool,
    sts_region: String,
}

/// How one account's scan went.
struct AccountScan {
    resources: Vec<Resource>,
    parts: Vec<ScanPart>,
    /// Why the account could not be scanned at all (role refused, or every region failed).
    failure: Option<String>,
    fetched_at: Option<DateTime<Utc>>,
}

/// One account to scan and its regions.
struct Planned {
    target: AccountTarget,
    regions: Vec<String>,
}

/// Scans every account of `source`.
pub(super) async fn scan_accounts(
    provider: &AwsProvider,
    source: &AccountSource,
    options: &ScanOptions,
) -> Result<Inventory, InventoryError> {
    let started = Instant::now();
    let settings = &provider.settings;
    let config_error = |message: String| InventoryError::Config {
        provider: Provider::Aws,
        message,
    };
    validate_settings(&settings.roles).map_err(config_error)?;
    let sdk = load_sdk_config(&settings.tuning).await;
    let counter = settings.tuning.counter();
    let targets = match source {
        AccountSource::Organization => {
            let (listed, pages) = list_organization(&sdk, &counter).await.map_err(|e| {
                config_error(format!(
                    "cannot list the organization's accounts: {e} (--aws-org needs \
                     organizations:ListAccounts in the management or a delegated \
                     administrator account)"
                ))
            })?;
            let (targets, skipped) = targets_from_org(&listed, &settings.roles);
            tracing::info!(
                accounts = listed.len(),
                active = targets.len(),
                pages,
                "organization listed"
            );
            if !skipped.is_empty() {
                tracing::info!(skipped = %skipped.join("; "), "accounts not ACTIVE are not scanned");
            }
            targets
        }
        AccountSource::File(path) => {
            let file = display_name(path);
            let text =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| InventoryError::FileRead {
                        file: file.clone(),
                        reason: e.to_string(),
                    })?;
            parse_accounts_file(&text, &settings.roles)
                .map_err(|reason| InventoryError::FileFormat { file, reason })?
        }
    };
    if targets.is_empty() {
        return Err(config_error(
            "the organization has no ACTIVE account to scan".into(),
        ));
    }
    let default_regions = if settings.regions.is_empty() {
        sdk.region()
            .map(|r| vec![r.to_string()])
            .unwrap_or_default()
    } else {
        settings.regions.clone()
    };
    let mut plan = Vec::with_capacity(targets.len());
    for target in targets {
        let regions = if target.regions.is_empty() {
            default_regions.clone()
        } else {
            target.regions.clone()
        };
        if regions.is_empty() {
            return Err(config_error(format!(
                "no AWS region for account {}: set AWS_REGION (or a profile region), pass \
                 --regions, or give the account `regions` in the accounts file",
                target.label()
            )));
        }
        plan.push(Planned { target, regions });
    }
    let parts_total: u64 = plan
        .iter()
        .map(|p| TaggingScan::partition_count(p.regions.len(), settings.resource_types.len()))
        .sum();
    let sts_region = sdk
        .region()
        .map(|r| r.to_string())
        .or_else(|| plan.first().and_then(|p| p.regions.first().cloned()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let fan = FanOut {
        base: &sdk,
        resource_types: &settings.resource_types,
        // One limit for the whole scan: every account's regions wait for the same permits.
        limit: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        counter: counter.clone(),
        tally: Arc::new(ScanTally::new(parts_total, options)),
        shared: provider.shared.clone(),
        force_refresh: options.force_refresh,
        sts_region,
    };
    let scans = futures_util::future::join_all(
        plan.iter()
            .map(|p| scan_account(&fan, &p.target, &p.regions)),
    )
    .await;
    assemble(&plan, scans, &counter, started, provider)
}

/// Scans one account: enters it through its role chain and lists its regions with the Tagging
/// API. (Other per-account listings, such as Resource Explorer's, belong here too.)
async fn scan_account(fan: &FanOut<'_>, target: &AccountTarget, regions: &[String]) -> AccountScan {
    let chain = RoleChain::new(
        fan.base,
        &target.roles,
        target.external_id.as_deref(),
        &fan.counter,
        &fan.sts_region,
        CREDENTIALS_TIMEOUT,
    );
    let who = fan
        .shared
        .as_ref()
        .map(|_| account_identity(&target.id, &target.roles));
    let tagging = TaggingScan {
        sdk: &chain.sdk,
        regions,
        resource_types: fan.resource_types,
        limit: fan.limit.clone(),
        counter: fan.counter.clone(),
        tally: fan.tally.clone(),
        shared: fan.shared.clone().zip(who),
        scope_prefix: format!("aws {}", target.id),
        force_refresh: fan.force_refresh,
    };
    let results = tagging.run().await;
    let role_failure = chain.failure().await.map(|reason| {
        if target.management {
            format!(
                "{reason}; this is the organization's management account, which has no \
                 OrganizationAccountAccessRole: create the read role there too (service-managed \
                 StackSets do not deploy to it), or list the accounts with --aws-accounts"
            )
        } else {
            reason
        }
    });
    account_result(target, results, role_failure)
}

/// One account's listing as resources and parts; a refused role is the reason of every part
/// that failed (they failed for want of credentials).
fn account_result(
    target: &AccountTarget,
    results: Vec<PartResult<Mapping>>,
    role_failure: Option<String>,
) -> AccountScan {
    let mut resources = Vec::new();
    let mut parts = Vec::with_capacity(results.len());
    let mut fetched_at: Option<DateTime<Utc>> = None;
    let mut texts = Interner::default();
    for result in results {
        let mut part = result.part;
        if !part.ok
            && let Some(reason) = &role_failure
        {
            part.error = Some(reason.clone());
        }
        let mut kept = 0;
        for (arn, tags) in result.mappings {
            let tags = texts.share_tags(tags);
            match resource_from_arn_in(&mut texts, &arn, tags, GLOBAL_REGION, &target.id) {
                Some(r) => {
                    resources.push(r);
                    kept += 1;
                }
                None => tracing::warn!(%arn, "GetResources returned a value that is not an ARN"),
            }
        }
        part.resources = kept;
        if part.ok {
            fetched_at = Some(fetched_at.map_or(result.fetched_at, |f| f.min(result.fetched_at)));
        }
        parts.push(part);
    }
    let failure = if parts.iter().all(|p| !p.ok) {
        role_failure.or_else(|| parts.iter().find_map(|p| p.error.clone()))
    } else {
        None
    };
    if let Some(reason) = &failure {
        tracing::warn!(account = %target.label(), %reason, "account not scanned");
    }
    AccountScan {
        resources,
        parts,
        failure,
        fetched_at,
    }
}

/// Puts the accounts' scans together: resources, parts, coverage (accounts covered, failures
/// named) and the account names.
fn assemble(
    plan: &[Planned],
    scans: Vec<AccountScan>,
    counter: &CallCounter,
    started: Instant,
    provider: &AwsProvider,
) -> Result<Inventory, InventoryError> {
    let mut resources = Vec::new();
    let mut report = ScanReport {
        complete: true,
        ..ScanReport::default()
    };
    let mut coverage = SourceCoverage::new(SourceKind::TaggingApi, 0);
    coverage.note = Some(format!(
        "{TAGGING_API_NOTE}; a multi-account scan does not list Resource Explorer per account \
         yet: an organisation-wide AWS Config aggregator (--aws-config-aggregator) includes them"
    ));
    coverage.resource_types = provider.settings.resource_types.clone();
    let mut accounts = AccountDirectory::new();
    let mut fetched_at: Option<DateTime<Utc>> = None;
    let mut first_failure: Option<String> = None;
    for (planned, scan) in plan.iter().zip(scans) {
        let target = &planned.target;
        accounts.insert(target.id.clone(), target.info());
        for r in &planned.regions {
            if !coverage.regions.contains(r) {
                coverage.regions.push(r.clone());
            }
        }
        match scan.failure {
            Some(reason) => {
                first_failure.get_or_insert_with(|| format!("{}: {reason}", target.label()));
                coverage.failed.push(CoverageFailure {
                    scope: target.label(),
                    reason,
                });
            }
            None => {
                coverage.accounts.push(target.label());
                for part in scan.parts.iter().filter(|p| !p.ok) {
                    coverage.failed.push(CoverageFailure {
                        scope: part.scope.clone(),
                        reason: part.error.clone().unwrap_or_default(),
                    });
                }
            }
        }
        if let Some(f) = scan.fetched_at {
            fetched_at = Some(fetched_at.map_or(f, |all| all.min(f)));
        }
        coverage.resources += scan.resources.len();
        resources.extend(scan.resources);
        report.complete &= scan.parts.iter().all(|p| p.ok);
        report.parts.extend(scan.parts);
    }
    if coverage.accounts.is_empty() {
        return Err(InventoryError::Unavailable {
            provider: Provider::Aws,
            part: "account",
            reason: first_failure.unwrap_or_default(),
        });
    }
    let scanned = coverage.accounts.len();
    let description = format!(
        "{} ({} of {} accounts; {})",
        provider.describe(),
        scanned,
        plan.len(),
        coverage.regions.join(", ")
    );
    report.coverage = Coverage::of(vec![coverage]);
    report.api_calls = counter.attempts();
    report.retries = counter.retries();
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        resources = resources.len(),
        accounts = plan.len(),
        scanned,
        api_calls = report.api_calls,
        ms = report.duration_ms,
        "AWS multi-account scan finished"
    );
    Ok(Inventory {
        resources,
        report,
        source: description,
        fetched_at: fetched_at.unwrap_or_else(Utc::now),
        accounts,
    })
}

/// Who is asking, for shared-cache keys: the endpoint, the account and its role chain, hashed.
/// Not the access key id: assumed-role sessions get a new one each time, and the listing of an
/// account read through the same roles is the same whoever's session read it.
fn account_identity(account: &str, roles: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(
        std::env::var("AWS_ENDPOINT_URL")
            .unwrap_or_default()
            .as_bytes(),
    );
    h.update([0]);
    h.update(account.as_bytes());
    for role in roles {
        h.update([1]);
        h.update(role.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use compact_str::CompactString;

    fn target(id: &str, name: &str) -> AccountTarget {
        AccountTarget {
            id: id.into(),
            name: Some(name.into()),
            regions: Vec::new(),
            roles: vec![format!("arn:aws:iam::{id}:role/R")],
            external_id: None,
            paths: Vec::new(),
            tags: Vec::new(),
            management: false,
        }
    }

    fn part(scope: &str, ok: bool, arns: &[&str]) -> PartResult<Mapping> {
        PartResult {
            part: ScanPart {
                scope: scope.into(),
                ok,
                resources: arns.len(),
                pages: 1,
                error: (!ok).then(|| "GetResources in eu-west-1 failed: timeout".to_string()),
                cached: false,
            },
            mappings: arns
                .iter()
                .map(|a| (CompactString::from(*a), Vec::new()))
                .collect(),
            fetched_at: Utc::now(),
        }
    }

    #[test]
    fn a_refused_role_is_the_reason_of_every_failed_part_and_of_the_account() {
        let t = target("222222222222", "dev");
        let scan = account_result(
            &t,
            vec![
                part("aws 222222222222 us-east-1", false, &[]),
                part("aws 222222222222 eu-west-1", false, &[]),
            ],
            Some("AssumeRole in arn:aws:iam::222222222222:role/R failed: AccessDenied".into()),
        );
        assert!(scan.failure.as_deref().unwrap().contains("AccessDenied"));
        assert!(
            scan.parts
                .iter()
                .all(|p| p.error.as_deref().unwrap().starts_with("AssumeRole"))
        );
        assert!(scan.fetched_at.is_none());
    }

    #[test]
    fn an_account_with_one_region_left_is_scanned_and_its_s3_buckets_are_its_own() {
        let t = target("111111111111", "prod");
        let scan = account_result(
            &t,
            vec![
                part(
                    "aws 111111111111 us-east-1",
                    true,
                    &[
                        "arn:aws:s3:::logs",
                        "arn:aws:ec2:us-east-1:111111111111:volume/vol-1",
                    ],
                ),
                part("aws 111111111111 eu-west-1", false, &[]),
            ],
            None,
        );
        assert!(scan.failure.is_none());
        assert_eq!(scan.resources.len(), 2);
        assert!(scan.resources.iter().all(|r| r.account == "111111111111"));
        assert_eq!(scan.parts[0].resources, 2);
        // Every region failed, no role refused: the first region's reason.
        let all_failed = account_result(&t, vec![part("x", false, &[])], None);
        assert!(all_failed.failure.unwrap().contains("timeout"));
    }

    #[test]
    fn shared_cache_identities_are_per_account_and_role_chain() {
        let a = account_identity("111111111111", &["arn:aws:iam::111111111111:role/R".into()]);
        assert_eq!(
            a,
            account_identity("111111111111", &["arn:aws:iam::111111111111:role/R".into()])
        );
        assert_ne!(
            a,
            account_identity("111111111111", &["arn:aws:iam::111111111111:role/S".into()])
        );
        assert_ne!(
            a,
            account_identity("222222222222", &["arn:aws:iam::111111111111:role/R".into()])
        );
    }
}
