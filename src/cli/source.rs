//! Where the inventory comes from and which policy applies: the flags shared by `check` and
//! `serve`, and turning them into an `App`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::app::{App, CostSource, PolicyHolder};
use crate::aws::AwsTuning;
use crate::cache::{Cache, CacheConfig};
use crate::cost::demo::DemoCosts;
use crate::cost::explorer::CostExplorer;
use crate::cost::focus::FocusProvider;
use crate::inventory::InventoryProvider;
use crate::inventory::aws::accounts::{AccountSource, DEFAULT_ROLE_NAME, RoleSettings};
use crate::inventory::aws::writer::{AwsTagWriter, TagWriter, WriterRole};
use crate::inventory::aws::{AwsCoverage, AwsProvider, AwsScanSettings};
use crate::inventory::demo::{DEFAULT_SEED, DEFAULT_SIZE, DemoProvider};
use crate::inventory::file::FileProvider;
use crate::inventory::listing_cache::SharedListings;
use crate::metrics::Metrics;
use crate::util::parse_duration;

#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Use the built-in demo estate (no cloud account needed).
    #[arg(
        long,
        env = "TAGWARDEN_DEMO",
        conflicts_with_all = ["inventory", "aws", "aws_org", "aws_accounts"]
    )]
    pub demo: bool,
    /// Seed of the demo estate.
    #[arg(long, env = "TAGWARDEN_DEMO_SEED", default_value_t = DEFAULT_SEED)]
    pub demo_seed: u64,
    /// Resources in the demo estate.
    #[arg(long, env = "TAGWARDEN_DEMO_SIZE", default_value_t = DEFAULT_SIZE)]
    pub demo_size: usize,
    /// Inventory file(s): `aws resourcegroupstaggingapi get-resources` JSON, Azure Resource
    /// Graph (`az graph query -o json`) or GCP Cloud Asset Inventory (`gcloud asset
    /// search-all-resources --format=json`, `gcloud asset export` NDJSON) exports, each told
    /// apart by its content (repeat the flag or separate with commas).
    #[arg(
        long,
        env = "TAGWARDEN_INVENTORY",
        value_delimiter = ',',
        value_name = "FILE",
        conflicts_with_all = ["aws", "aws_org", "aws_accounts"]
    )]
    pub inventory: Vec<PathBuf>,
    /// Scan AWS live (the default when no other source is given). Credentials, region and
    /// endpoint come from the standard AWS configuration (AWS_PROFILE, AWS_REGION,
    /// AWS_ENDPOINT_URL, ...).
    #[arg(long, env = "TAGWARDEN_AWS")]
    pub aws: bool,
    /// AWS regions to scan, comma-separated (default: the configured region).
    #[arg(
        long,
        env = "TAGWARDEN_REGIONS",
        value_delimiter = ',',
        value_name = "REGIONS"
    )]
    pub regions: Vec<String>,
    /// Scan only these resource types, one parallel partition each (e.g. `ec2:instance,s3`).
    /// Default: every type, one partition per region.
    #[arg(
        long,
        env = "TAGWARDEN_AWS_RESOURCE_TYPES",
        value_delimiter = ',',
        value_name = "TYPES"
    )]
    pub aws_resource_types: Vec<String>,
    /// AWS Config configuration aggregator to query (in the configured region): one query for
    /// every account and region it aggregates. Without it, `--aws-coverage config` queries
    /// each region's own Config recorder in the caller's account.
    #[arg(long, env = "TAGWARDEN_AWS_CONFIG_AGGREGATOR", value_name = "NAME")]
    pub aws_config_aggregator: Option<String>,
    /// Where the AWS estate is listed from: `auto` (Resource Explorer next to the Tagging API
    /// when the account has an index, so never-tagged resources are included; otherwise the
    /// Tagging API alone, and coverage says why), `tagging` (the Tagging API only: never-tagged
    /// resources are missing), `resource-explorer` (required: when it cannot be used, the scan
    /// reports a failed part) or `config` (AWS Config's advanced query: every resource its
    /// recorder records, tagged or not). Default: `config` when --aws-config-aggregator is
    /// given, else `auto`.
    #[arg(
        long,
        env = "TAGWARDEN_AWS_COVERAGE",
        value_name = "auto|tagging|resource-explorer|config",
        value_parser = AwsCoverage::parse
    )]
    pub aws_coverage: Option<AwsCoverage>,
    /// Resource Explorer view to list, by ARN (it is called in the view's region). Default: the
    /// default view of the aggregator index's region (or of each region's local index).
    #[arg(long, env = "TAGWARDEN_RESOURCE_EXPLORER_VIEW", value_name = "ARN")]
    pub resource_explorer_view: Option<String>,
    /// AWS scan partitions (account × region × type filter) fetched at the same time, over
    /// the whole scan.
    #[arg(long, env = "TAGWARDEN_AWS_CONCURRENCY", default_value_t = 8)]
    pub aws_concurrency: usize,
    /// Scan every ACTIVE account of the AWS Organization (organizations:ListAccounts with the
    /// caller's credentials: management or delegated administrator account), through
    /// --aws-role-name in each.
    #[arg(long, env = "TAGWARDEN_AWS_ORG", conflicts_with = "aws_accounts")]
    pub aws_org: bool,
    /// Scan the accounts of a Cloud Custodian c7n-org accounts file (accounts: [{account_id,
    /// name, regions, role, external_id, tags}]), through each account's `role` (default
    /// --aws-role-name).
    #[arg(long, env = "TAGWARDEN_AWS_ACCOUNTS", value_name = "FILE")]
    pub aws_accounts: Option<PathBuf>,
    /// Role assumed in each account of --aws-org or --aws-accounts (a name, optionally with
    /// an IAM path).
    #[arg(
        long,
        env = "TAGWARDEN_AWS_ROLE_NAME",
        value_name = "NAME",
        default_value = DEFAULT_ROLE_NAME
    )]
    pub aws_role_name: String,
    /// ExternalId passed to AssumeRole in each account (when the role's trust policy asks for
    /// one; an accounts file's `external_id` wins).
    #[arg(
        long,
        env = "TAGWARDEN_AWS_EXTERNAL_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    pub aws_external_id: Option<String>,
    /// Role through which promoted virtual tags are written in each account of --aws-org or
    /// --aws-accounts (promote_virtual_tags; never the read role). Without it, promotion is
    /// available for a single-account scan only.
    #[arg(long, env = "TAGWARDEN_AWS_WRITER_ROLE_NAME", value_name = "NAME")]
    pub aws_writer_role_name: Option<String>,
    /// Attempts per AWS request (retries use exponential backoff with jitter).
    #[arg(long, env = "TAGWARDEN_AWS_MAX_ATTEMPTS", default_value_t = 6)]
    pub aws_max_attempts: u32,
    /// Policy file (default: policies/tagging_policy.json if present, else the built-in policy).
    #[arg(long, env = "TAGWARDEN_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// How long a scan (and answers computed from it) is reused before the next question
    /// rescans (e.g. 30m, 1h, 0 = always).
    #[arg(long, env = "TAGWARDEN_INVENTORY_TTL", default_value = "1h", value_parser = parse_duration)]
    pub inventory_ttl: Duration,
    /// Redis for the shared cache (`redis://host:6379/0`), so servers share scans and answers.
    /// Without it everything is cached in process. Redis down or slow never fails a call.
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every key this server writes in Redis.
    #[arg(long, env = "TAGWARDEN_CACHE_PREFIX", default_value = "tagwarden")]
    pub cache_prefix: String,
    /// Cost file(s) in FOCUS 1.x CSV (any cloud): resource-level spend for the cost gap and
    /// money on findings (repeat the flag or separate with commas).
    #[arg(
        long = "cost",
        env = "TAGWARDEN_COST_FILES",
        value_delimiter = ',',
        value_name = "FILE",
        conflicts_with = "cost_explorer"
    )]
    pub cost_files: Vec<PathBuf>,
    /// Read costs from AWS Cost Explorer (GetCostAndUsage; AWS bills USD 0.01 per request,
    /// and each answer reports how many were made). Off by default for that reason.
    #[arg(long, env = "TAGWARDEN_COST_EXPLORER")]
    pub cost_explorer: bool,
    /// Longest wait for one Redis operation before answering without it.
    #[arg(long, env = "TAGWARDEN_CACHE_TIMEOUT", default_value = "50ms", value_parser = parse_duration)]
    pub cache_timeout: Duration,
}

impl SourceArgs {
    /// The cache: in process, with Redis in front when `--redis-url`/`REDIS_URL` is set.
    pub(crate) fn cache(&self, metrics: &Arc<Metrics>) -> anyhow::Result<Arc<Cache>> {
        let config = CacheConfig {
            redis_url: self.redis_url.clone(),
            prefix: self.cache_prefix.clone(),
            timeout: self.cache_timeout,
            ..CacheConfig::default()
        };
        Ok(Arc::new(Cache::new(&config)?.with_metrics(metrics.clone())))
    }

    pub(crate) fn provider(
        &self,
        cache: &Arc<Cache>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Arc<dyn InventoryProvider>> {
        Ok(if self.demo {
            Arc::new(DemoProvider::new(self.demo_seed, self.demo_size))
        } else if !self.inventory.is_empty() {
            Arc::new(FileProvider::new(self.inventory.clone()).with_failure_ttl(self.inventory_ttl))
        } else {
            let tuning = AwsTuning {
                max_attempts: self.aws_max_attempts.max(1),
                metrics: Some(metrics.clone()),
                ..AwsTuning::default()
            };
            let coverage =
                AwsCoverage::resolve(self.aws_coverage, self.aws_config_aggregator.as_deref())
                    .map_err(anyhow::Error::msg)?;
            let accounts = self.account_source();
            if accounts.is_some()
                && matches!(
                    coverage,
                    AwsCoverage::Config | AwsCoverage::ResourceExplorer
                )
            {
                anyhow::bail!(
                    "--aws-coverage {} does not combine with --aws-org/--aws-accounts yet: an \
                     organisation-wide AWS Config aggregator (--aws-config-aggregator NAME, \
                     without --aws-org) covers every account, never-tagged resources included; \
                     --aws-org scans each account with the Tagging API",
                    coverage.as_str()
                );
            }
            Arc::new(
                AwsProvider::new(AwsScanSettings {
                    regions: self.regions.clone(),
                    resource_types: self.aws_resource_types.clone(),
                    concurrency: self.aws_concurrency.max(1),
                    tuning,
                    coverage,
                    config_aggregator: self.aws_config_aggregator.clone(),
                    resource_explorer_view: self.resource_explorer_view.clone(),
                    accounts,
                    roles: RoleSettings {
                        role_name: self.aws_role_name.clone(),
                        external_id: self.aws_external_id.clone(),
                    },
                })
                .with_shared_listings(SharedListings::new(cache.clone(), self.inventory_ttl)),
            )
        })
    }

    /// Where promoted virtual tags are written, when the inventory is live AWS: the caller's
    /// own account for a single-account scan; with --aws-org/--aws-accounts, each account
    /// through --aws-writer-role-name (none without it: the read role never writes).
    fn tag_writer(&self, metrics: &Arc<Metrics>) -> Option<Arc<dyn TagWriter>> {
        if self.demo || !self.inventory.is_empty() {
            return None;
        }
        let role = match (&self.aws_writer_role_name, self.account_source()) {
            (Some(name), _) => Some(WriterRole {
                role_name: name.clone(),
                external_id: self.aws_external_id.clone(),
            }),
            (None, Some(_)) => return None,
            (None, None) => None,
        };
        let tuning = AwsTuning {
            max_attempts: self.aws_max_attempts.max(1),
            metrics: Some(metrics.clone()),
            ..AwsTuning::default()
        };
        Some(Arc::new(AwsTagWriter::new(tuning, role)))
    }

    /// The accounts to fan out over, when several were asked for.
    fn account_source(&self) -> Option<AccountSource> {
        match (&self.aws_accounts, self.aws_org) {
            (Some(file), _) => Some(AccountSource::File(file.clone())),
            (None, true) => Some(AccountSource::Organization),
            (None, false) => None,
        }
    }

    pub fn app(&self) -> anyhow::Result<App> {
        let policy = PolicyHolder::open(self.policy.as_deref()).map_err(|e| {
            let name = self
                .policy
                .as_deref()
                .map(crate::inventory::file::display_name)
                .unwrap_or_else(|| "tagging_policy.json".to_string());
            anyhow::anyhow!("cannot use policy {name}: {e}")
        })?;
        // One set of series for everything this application does: the cache, the AWS clients
        // and the tool calls record into it; `serve` exposes it at /metrics.
        let metrics = Arc::new(Metrics::new());
        let cache = self.cache(&metrics)?;
        Ok(
            App::new(policy, self.provider(&cache, &metrics)?, self.inventory_ttl)
                .with_cache(cache)
                .with_costs(self.costs(&metrics))
                .with_tag_writer(self.tag_writer(&metrics))
                .with_metrics(metrics),
        )
    }

    /// Cost files win; then Cost Explorer when asked for; the demo estate brings its own.
    pub(crate) fn costs(&self, metrics: &Arc<Metrics>) -> Option<CostSource> {
        if !self.cost_files.is_empty() {
            Some(CostSource::Lines(Arc::new(FocusProvider::new(
                self.cost_files.clone(),
            ))))
        } else if self.cost_explorer {
            let tuning = AwsTuning {
                max_attempts: self.aws_max_attempts.max(1),
                metrics: Some(metrics.clone()),
                ..AwsTuning::default()
            };
            Some(CostSource::Explorer(Arc::new(CostExplorer::new(tuning))))
        } else if self.demo {
            Some(CostSource::Lines(Arc::new(DemoCosts::new(self.demo_seed))))
        } else {
            None
        }
    }
}

/// A size in bytes: `65536`, `64K`, `500M`, `2G` (powers of 1024; `KiB`, `MB`, ... too).
pub(super) fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size (use e.g. 65536, 64K, 500M, 2G)"))?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use K, M, G or T)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("500M"), Ok(500 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5X").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }
}
