//! Inventories: the resources of an estate and their native tags, from one provider behind one
//! trait (AWS live, inventory files, the built-in demo estate).
//!
//! A scan never silently drops a region, type or file that failed: it is listed in the
//! `ScanReport` with the reason, and the inventory is marked partial.

pub(crate) mod accounts;
pub(crate) mod aws;
pub(crate) mod azure;
pub(crate) mod coverage;
pub(crate) mod demo;
pub(crate) mod file;
pub(crate) mod format;
mod framed;
pub(crate) mod gcp;
pub(crate) mod id;
pub(crate) mod intern;
pub(crate) mod irregular;
pub(crate) mod listing_cache;

use arcstr::ArcStr;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compact_str::CompactString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) use accounts::{AccountDirectory, AccountInfo};
pub(crate) use coverage::{Coverage, CoverageFailure, SourceCoverage, SourceKind};
pub(crate) use intern::Interner;

/// The tags of a resource: unique keys, sorted. Keys and values are shared strings (8 bytes
/// each): readers intern them (`Interner`), so a million resources repeating the same few
/// hundred keys and values hold each text once.
pub(crate) type Tags = Vec<(ArcStr, ArcStr)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Aws,
    Azure,
    Gcp,
    File,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
            Provider::File => "file",
        }
    }

    /// The provider's name in messages: `AWS`, `Azure`, `GCP`, `file`.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Aws => "AWS",
            Provider::Azure => "Azure",
            Provider::Gcp => "GCP",
            Provider::File => "file",
        }
    }
}

/// Facts about a resource used for suggestions and grouping (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<ArcStr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<ArcStr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<ArcStr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<ArcStr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<ArcStr>,
    /// Other ids billing data names the resource by, for joining costs (GCP: the full name
    /// with the numeric id, as Cloud Billing's `resource.global_name` writes Compute Engine
    /// resources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alt_ids: Vec<CompactString>,
}

/// A resource's `Attributes`, kept behind a pointer and absent when empty: most resources have
/// none (the Tagging API gives none), and inline they took 144 of each resource's bytes — 144 MB
/// for a million. Reads see an empty `Attributes` when absent; the first write allocates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(Option<Box<Attributes>>);

static NO_ATTRIBUTES: Attributes = Attributes {
    vpc: None,
    subnet: None,
    stack: None,
    creator: None,
    created_at: None,
    alt_ids: Vec::new(),
};

impl std::ops::Deref for Attrs {
    type Target = Attributes;

    fn deref(&self) -> &Attributes {
        self.0.as_deref().unwrap_or(&NO_ATTRIBUTES)
    }
}

impl std::ops::DerefMut for Attrs {
    fn deref_mut(&mut self) -> &mut Attributes {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<Attributes> for Attrs {
    fn from(a: Attributes) -> Attrs {
        if a == NO_ATTRIBUTES {
            Attrs(None)
        } else {
            Attrs(Some(Box::new(a)))
        }
    }
}

/// One cloud resource and its native tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// ARN for AWS; the provider's id otherwise.
    pub id: CompactString,
    /// The cloud it lives in.
    pub provider: Provider,
    /// Account (subscription, project) id.
    pub account: ArcStr,
    /// Region (location), or `global`.
    pub region: ArcStr,
    /// Canonical `service:kind`, e.g. `ec2:instance`.
    pub resource_type: ArcStr,
    /// Display name (the last part of the id when the source has none).
    pub name: ArcStr,
    /// Native tags, sorted by key (`normalise_tags`).
    pub tags: Tags,
    /// Facts used for suggestions and grouping.
    pub attributes: Attrs,
}

/// The tags AWS itself puts on resources that name a resource's CloudFormation stack and its
/// creator: `stack()` and `creator()` read them rather than each resource holding a copy.
const AWS_STACK_TAG: &str = "aws:cloudformation:stack-name";
const AWS_CREATOR_TAG: &str = "aws:createdBy";

impl Resource {
    /// The stack (deployment) the resource belongs to: its attribute, else (AWS) the
    /// `aws:cloudformation:stack-name` tag.
    pub fn stack(&self) -> Option<&str> {
        self.attributes
            .stack
            .as_deref()
            .or_else(|| self.aws_tag(AWS_STACK_TAG))
    }

    /// Who created the resource: its attribute, else (AWS) the `aws:createdBy` tag.
    pub fn creator(&self) -> Option<&str> {
        self.attributes
            .creator
            .as_deref()
            .or_else(|| self.aws_tag(AWS_CREATOR_TAG))
    }

    fn aws_tag(&self, key: &str) -> Option<&str> {
        if self.provider != Provider::Aws {
            return None;
        }
        self.tag(key).filter(|v| !v.is_empty())
    }

    /// The value of a native tag (exact key).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.tags[i].1.as_str())
    }
}

/// Sorts tags by key and drops repeated keys (the first value wins), so lookups can binary-search
/// and evaluation is deterministic whatever order a source returned.
pub(crate) fn normalise_tags(mut tags: Tags) -> Tags {
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    tags.dedup_by(|later, earlier| later.0 == earlier.0);
    // Parsers grow lists by doubling: a resource keeps its tags for the life of a scan.
    tags.shrink_to_fit();
    tags
}

/// Sorts resources by id and keeps the first of each id (stable: the first part or file that
/// listed a resource wins). Returns how many repeats were dropped. Global resources (S3) are
/// listed by every region, and files may overlap.
pub fn sort_and_dedupe(resources: &mut Vec<Resource>) -> usize {
    if !resources.is_sorted_by(|a, b| a.id <= b.id) {
        match u32::try_from(resources.len()) {
            // A resource is a few hundred bytes: a merge sort would move each one ~log n times
            // (gigabytes for a million). Sort their positions (stable: the first listed of
            // equal ids stays first) and move each resource once.
            Ok(_) => {
                let keys = resources
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.id.as_str(), i as u32))
                    .collect();
                let order = sorted_positions(keys);
                permute(resources, order);
            }
            Err(_) => resources.sort_by(|a, b| a.id.cmp(&b.id)),
        }
    }
    let before = resources.len();
    resources.dedup_by(|later, earlier| later.id == earlier.id);
    before - resources.len()
}

/// Below this many keys one thread sorts (a thread costs more than it saves).
const SORT_ON_TWO_THREADS_FROM: usize = 1 << 16;

/// The positions of `keys` in ascending (text, position) order — equal texts keep their
/// listing order. Each key carries its text so comparisons read one array, not the resources
/// (a million ARNs share long prefixes: the sort was ~15% of a check). Large inputs are
/// sorted in two halves on two threads and merged.
fn sorted_positions(mut keys: Vec<(&str, u32)>) -> Vec<u32> {
    if keys.len() < SORT_ON_TWO_THREADS_FROM {
        keys.sort_unstable();
        return keys.into_iter().map(|(_, at)| at).collect();
    }
    let mid = keys.len() / 2;
    let (first, second) = keys.split_at_mut(mid);
    std::thread::scope(|s| {
        let other = s.spawn(|| second.sort_unstable());
        first.sort_unstable();
        other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
    let (first, second) = keys.split_at(mid);
    let mut order = Vec::with_capacity(keys.len());
    let (mut i, mut j) = (0, 0);
    while i < first.len() && j < second.len() {
        if first[i] <= second[j] {
            order.push(first[i].1);
            i += 1;
        } else {
            order.push(second[j].1);
            j += 1;
        }
    }
    order.extend(first[i..].iter().chain(&second[j..]).map(|(_, at)| *at));
    order
}

/// Reorders `items` so that `items[i]` becomes the old `items[order[i]]`, following each cycle
/// of the permutation with swaps (no second copy of the items). `order` must be a permutation
/// of `0..items.len()`.
fn permute<T>(items: &mut [T], mut order: Vec<u32>) {
    const DONE: u32 = u32::MAX;
    for start in 0..order.len() {
        if order[start] == DONE {
            continue;
        }
        let mut current = start;
        loop {
            let next = order[current] as usize;
            order[current] = DONE;
            if next == start {
                break;
            }
            items.swap(current, next);
            current = next;
        }
    }
}

/// The position of the resource with this id. `resources` must be in `sort_and_dedupe` order
/// (by id, one resource per id), as every inventory is after a scan.
pub(crate) fn index_of(resources: &[Resource], id: &str) -> Option<usize> {
    resources.binary_search_by(|r| r.id.as_str().cmp(id)).ok()
}

/// How one part of a scan went (a region, a region × type filter, a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanPart {
    /// What was scanned, e.g. `aws us-east-1`, `aws eu-west-1 ec2:instance`, `file estate.json`.
    pub scope: String,
    pub ok: bool,
    pub resources: usize,
    /// API pages fetched (0 for files and the demo).
    pub pages: u64,
    /// Why this part failed and what to do, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Taken from the shared cache (Redis) instead of the cloud: no API calls were made for it.
    #[serde(default)]
    pub cached: bool,
}

/// How a whole scan went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanReport {
    /// True when every part succeeded.
    pub complete: bool,
    pub parts: Vec<ScanPart>,
    /// HTTP requests made to the cloud API, retries included.
    pub api_calls: u64,
    /// Of those, retries after throttling or transient errors.
    pub retries: u64,
    /// Resources seen more than once (global resources listed in every region, or repeated
    /// across files) and kept once; counted when the scan is loaded.
    pub duplicates_dropped: usize,
    pub duration_ms: u64,
    /// What the sources could see: never-tagged resources, accounts, regions, types, failures.
    #[serde(default)]
    pub coverage: Coverage,
}

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub resources: Vec<Resource>,
    pub report: ScanReport,
    /// Human description of the source (`demo estate (seed 42)`, `aws us-east-1`, ...).
    pub source: String,
    /// When the data was read from the source (the oldest part, when parts came from the
    /// shared cache).
    pub fetched_at: DateTime<Utc>,
    /// Names, OU paths and tags of the accounts, when the source knows them (empty otherwise).
    pub accounts: AccountDirectory,
}

impl Inventory {
    /// A content hash of the resources and their tags (after `sort_and_dedupe`): equal
    /// inventories give equal fingerprints in any process, so cached answers can be shared.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        // The bytes are gathered and hashed 64 KiB at a time: a few bytes per `update` cost
        // more in bookkeeping than in hashing. (The same bytes, so the same fingerprints.)
        const BATCH: usize = 1 << 16;
        let mut h = Sha256::new();
        let mut buf: Vec<u8> = Vec::with_capacity(BATCH + 4096);
        for r in &self.resources {
            for field in [
                r.id.as_str(),
                &r.account,
                &r.region,
                &r.resource_type,
                &r.name,
            ] {
                buf.extend_from_slice(field.as_bytes());
                buf.push(0);
            }
            for (k, v) in &r.tags {
                buf.extend_from_slice(k.as_bytes());
                buf.push(1);
                buf.extend_from_slice(v.as_bytes());
                buf.push(2);
            }
            buf.push(3);
            if buf.len() >= BATCH {
                h.update(&buf);
                buf.clear();
            }
        }
        h.update(&buf);
        // Account names show in answers: a renamed account is different data. (Nothing is
        // added when there are none, so such inventories keep their fingerprints.)
        for (id, info) in self.accounts.iter() {
            h.update(id.as_bytes());
            h.update([4]);
            h.update(info.name.as_deref().unwrap_or_default().as_bytes());
            h.update([5]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// Told how a long scan is going (pages fetched, parts done), to show progress.
pub trait ScanProgress: Send + Sync {
    /// `done` only grows; `total` when known.
    fn update(&self, done: u64, total: Option<u64>, message: &str);
}

/// How to scan.
#[derive(Clone, Default)]
pub struct ScanOptions {
    /// Read the cloud even when the shared cache holds a fresh copy.
    pub force_refresh: bool,
    pub progress: Option<std::sync::Arc<dyn ScanProgress>>,
}

impl ScanOptions {
    pub fn report(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(p) = &self.progress {
            p.update(done, total, message);
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum InventoryError {
    #[error("cannot read inventory file {file}: {reason}")]
    FileRead { file: String, reason: String },
    #[error("inventory file {file} is not in the expected format: {reason}")]
    FileFormat { file: String, reason: String },
    /// The provider is not configured well enough to scan; the message says what to set.
    #[error("{message}")]
    Config { provider: Provider, message: String },
    /// Every part of the scan failed (`part`: what the scan is split into, e.g. "region"); the
    /// reason is the first part's.
    #[error("{} scan failed in every {part}: {reason}", provider.label())]
    Unavailable {
        provider: Provider,
        part: &'static str,
        reason: String,
    },
}

/// A source of resources. Implementations do I/O; everything downstream is pure.
#[async_trait]
pub trait InventoryProvider: Send + Sync {
    /// What this provider scans, for logs and `data_quality`.
    fn describe(&self) -> String;
    /// Where it reads from, as the scan-duration metric labels it.
    fn metrics_source(&self) -> crate::metrics::InventorySource {
        crate::metrics::InventorySource::Other
    }
    async fn scan(&self, options: &ScanOptions) -> Result<Inventory, InventoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_sorted_and_the_first_copy_kept() {
        let r = |id: &str, name: &str| Resource {
            id: id.into(),
            provider: Provider::Aws,
            account: "1".into(),
            region: "r".into(),
            resource_type: "s3:bucket".into(),
            name: name.into(),
            tags: Tags::new(),
            attributes: Attrs::default(),
        };
        let mut v = vec![r("b", "first-b"), r("a", "a"), r("b", "second-b")];
        assert_eq!(sort_and_dedupe(&mut v), 1);
        let names: Vec<&str> = v.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["a", "first-b"]);
    }

    #[test]
    fn sorting_by_positions_agrees_with_a_stable_sort_on_shuffled_lists_with_repeats() {
        let r = |id: u64, copy: usize| Resource {
            id: format!("arn:aws:s3:::b-{id:03}").into(),
            provider: Provider::Aws,
            account: "1".into(),
            region: "r".into(),
            resource_type: "s3:bucket".into(),
            name: format!("copy-{copy}").into(),
            tags: Tags::new(),
            attributes: Attrs::default(),
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in [0usize, 1, 2, 3, 10, 257, 1000] {
            let mut v: Vec<Resource> = (0..n).map(|i| r(next() % 300, i)).collect();
            let mut expected = v.clone();
            expected.sort_by(|a, b| a.id.cmp(&b.id));
            expected.dedup_by(|later, earlier| later.id == earlier.id);
            let dropped = sort_and_dedupe(&mut v);
            assert_eq!(dropped, n - expected.len());
            assert_eq!(v, expected, "n = {n}");
        }
        // The two-thread path: halves sorted apart and merged, repeats across the halves.
        let n = SORT_ON_TWO_THREADS_FROM + 12_345;
        let texts: Vec<String> = (0..n).map(|_| format!("arn:{}", next() % 5_000)).collect();
        let keys = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let mut expected: Vec<u32> = (0..n as u32).collect();
        expected.sort_by(|&a, &b| texts[a as usize].cmp(&texts[b as usize]));
        assert_eq!(sorted_positions(keys), expected);
        let mut letters = vec!['d', 'a', 'c', 'b', 'e'];
        permute(&mut letters, vec![1, 3, 2, 0, 4]);
        assert_eq!(letters, vec!['a', 'b', 'c', 'd', 'e']);
    }

    #[test]
    fn empty_attributes_take_no_allocation_and_read_as_empty() {
        let mut a = Attrs::from(Attributes::default());
        assert_eq!(a, Attrs::default());
        assert!(a.stack.is_none() && a.alt_ids.is_empty());
        a.stack = Some("s".into());
        assert_eq!(a.stack.as_deref(), Some("s"));
        let b = Attrs::from(Attributes {
            vpc: Some("vpc-1".into()),
            ..Attributes::default()
        });
        assert_eq!(b.vpc.as_deref(), Some("vpc-1"));
        assert_ne!(b, Attrs::default());
        assert_eq!(std::mem::size_of::<Attrs>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn tags_are_sorted_and_deduplicated() {
        let t = normalise_tags(vec![
            ("b".into(), "2".into()),
            ("a".into(), "1".into()),
            ("b".into(), "3".into()),
        ]);
        assert_eq!(t, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
    }

    #[test]
    fn an_unavailable_provider_is_named_in_the_message() {
        let e = InventoryError::Unavailable {
            provider: Provider::Aws,
            part: "region",
            reason: "throttled".into(),
        };
        assert_eq!(e.to_string(), "AWS scan failed in every region: throttled");
    }
}
