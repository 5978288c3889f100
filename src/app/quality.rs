//! The `data_quality` block every answer built on a scan carries: how complete and fresh the
//! inventory is and how the caches served it. Built from the estate of a call (see
//! `Call::data_quality`), so it sits with the call context rather than in one tool.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Estate, ScanSource};
use crate::cache::{Cache, Layer, SharedState};
use crate::inventory::{Coverage, ScanPart};

/// How complete and fresh the data behind an answer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DataQuality {
    /// `complete` when every part of the scan succeeded and its sources list every resource,
    /// never-tagged ones included (see `coverage`); otherwise `partial`.
    pub status: DataStatus,
    /// What was scanned (`demo estate ...`, `AWS us-east-1, eu-west-1`, `inventory file(s) ...`).
    pub source: String,
    pub resources_scanned: usize,
    /// Parts that failed, with the reason and what to do.
    pub failures: Vec<ScanPart>,
    /// Parts scanned in all (regions × type filters, files).
    pub parts_total: usize,
    /// Cloud API requests made for this answer (retries included): the scan's requests when
    /// this answer scanned, 0 when it reused a scan (in process or from the shared cache) and
    /// for files and the demo.
    pub api_calls: u64,
    pub retries: u64,
    /// Parts of the scan taken from the shared cache instead of the cloud.
    pub parts_from_shared_cache: usize,
    pub duplicates_dropped: usize,
    /// When the scan finished (RFC 3339, UTC).
    pub fetched_at: String,
    /// Whether this answer reused a cached scan, and its age.
    pub cache: CacheInfo,
    /// What the sources could see: whether never-tagged resources are included, which accounts,
    /// regions and types were covered, which failed, and warnings in words.
    pub coverage: Coverage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataStatus {
    Complete,
    Partial,
}

/// How the cache served this answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CacheInfo {
    /// True when no scan was made for this answer (a cached scan or a cached answer was used).
    pub hit: bool,
    /// Age of the data behind the answer, since it was read from the cloud or files.
    pub age_seconds: u64,
    /// Where the inventory came from: `in_process` (a scan this server holds), `redis` (every
    /// part from the shared cache, no cloud calls) or `fresh_scan`.
    pub layer: String,
    /// The answer itself: `hit` (computed earlier for the same question on the same data,
    /// policy and virtual tags), `miss` (computed now and cached), `bypassed` (force_refresh
    /// or a snapshot was asked for) or `not_cached` (this tool's answers are not cached).
    pub result: String,
    /// Where a cached answer came from (`in_process` or `redis`), on a hit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_layer: Option<Layer>,
    /// The shared cache (Redis): `not_configured`, `available` or `unavailable` (then answers
    /// come from this server's own cache or a fresh scan; nothing else changes).
    pub shared_cache: SharedState,
    /// Why the shared cache is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_cache_error: Option<String>,
}

impl DataQuality {
    pub fn of(estate: &Estate, cache: &Cache) -> DataQuality {
        let inv = &estate.inventory;
        let report = &inv.report;
        let fresh = estate.scan_source == ScanSource::FreshScan;
        DataQuality {
            status: if report.complete && report.coverage.complete {
                DataStatus::Complete
            } else {
                DataStatus::Partial
            },
            source: inv.source.clone(),
            resources_scanned: inv.resources.len(),
            failures: report
                .parts
                .iter()
                .filter(|p| !p.ok)
                .take(50)
                .cloned()
                .collect(),
            parts_total: report.parts.len(),
            api_calls: if fresh { report.api_calls } else { 0 },
            retries: if fresh { report.retries } else { 0 },
            parts_from_shared_cache: report.parts.iter().filter(|p| p.cached).count(),
            duplicates_dropped: report.duplicates_dropped,
            fetched_at: inv
                .fetched_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cache: CacheInfo {
                hit: estate.scan_source != ScanSource::FreshScan,
                age_seconds: estate.age.as_secs(),
                layer: match estate.scan_source {
                    ScanSource::FreshScan => "fresh_scan",
                    ScanSource::InProcess => "in_process",
                    ScanSource::SharedCache => "redis",
                }
                .to_string(),
                result: "not_cached".to_string(),
                result_layer: None,
                shared_cache: cache.status(),
                shared_cache_error: cache.shared_error(),
            },
            coverage: report.coverage.clone(),
        }
    }
}
