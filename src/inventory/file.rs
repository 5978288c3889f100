//! Inventory files: the JSON that `aws resourcegroupstaggingapi get-resources` prints
//! (`{"ResourceTagMappingList": [...]}`), or an array of such pages; one or many files. Azure
//! Resource Graph and GCP Cloud Asset Inventory exports are read too (`azure`, `gcp`): each
//! file's format is told from its first bytes (`format::sniff`), so one flag takes them all,
//! mixed in one run.
//!
//! A file that cannot be read or parsed is an error (the user named it); entries inside a good
//! file that are not ARNs are skipped and reported, making the inventory partial. Files are
//! streamed: each entry becomes a resource as it is parsed.
//!
//! A good scan is kept by the application for the inventory TTL; a failed one is not, so every
//! question would parse a broken (say, truncated) multi-gigabyte file again. The provider keeps
//! parse failures instead, for the same TTL, keyed by the file's identity (path, size,
//! modification time): an unchanged file fails at once, saying so; a changed one is read again.
//! Read errors (missing file, permissions) are cheap to hit and often fixed quickly: not kept.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arcstr::ArcStr;
use async_trait::async_trait;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::format::{ACCEPTED, FileFormat, ParsedFile, SNIFF_BYTES, sniff};
use super::id::arn::resource_from_arn_in;
use super::{
    Coverage, CoverageFailure, Interner, Inventory, InventoryError, InventoryProvider, Provider,
    Resource, ScanOptions, ScanPart, ScanReport, SourceCoverage, SourceKind, azure, gcp,
};

/// Region given to resources whose ARN has none (S3 buckets and other global resources).
pub(crate) const GLOBAL_REGION: &str = "global";

/// A get-resources page. Texts borrow from the document where they can (a slice without
/// escapes): a reader interns them straight from the input, with no copy per tag.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Page<'a> {
    #[serde(default, borrow)]
    pub resource_tag_mapping_list: Vec<Mapping<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination_token: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct Mapping<'a> {
    #[serde(rename = "ResourceARN", borrow)]
    pub resource_arn: Cow<'a, str>,
    #[serde(rename = "Tags", default, borrow)]
    pub tags: Vec<TagPair<'a>>,
}

#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct TagPair<'a> {
    #[serde(rename = "Key", borrow)]
    pub key: Cow<'a, str>,
    /// The API omits `Value` for an empty value; read it as "".
    #[serde(rename = "Value", default, borrow)]
    pub value: Cow<'a, str>,
}

pub(crate) struct FileProvider {
    paths: Vec<PathBuf>,
    failures: Arc<KnownFailures>,
}

impl FileProvider {
    /// Failures are not kept until `with_failure_ttl` says for how long.
    pub(crate) fn new(paths: Vec<PathBuf>) -> Self {
        FileProvider {
            paths,
            failures: Arc::new(KnownFailures {
                ttl: Duration::ZERO,
                by_path: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Keeps a file's parse failure for `ttl` (the inventory TTL) while the file is unchanged.
    pub(crate) fn with_failure_ttl(mut self, ttl: Duration) -> Self {
        self.failures = Arc::new(KnownFailures {
            ttl,
            by_path: Mutex::new(HashMap::new()),
        });
        self
    }
}

/// What tells a file's content apart without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileIdentity {
    /// None when the file cannot be looked at (then nothing is kept for it).
    fn of(path: &Path) -> Option<FileIdentity> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileIdentity {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Parse failures of unchanged files, per path.
struct KnownFailures {
    ttl: Duration,
    by_path: Mutex<HashMap<PathBuf, KnownFailure>>,
}

struct KnownFailure {
    identity: FileIdentity,
    at: Instant,
    error: InventoryError,
}

impl KnownFailures {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, KnownFailure>> {
        // A poisoned lock only means a panic elsewhere; the map is still consistent.
        self.by_path.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The failure kept for `path`, when the file is unchanged since and the TTL has not
    /// passed, as an error that says it was not parsed again.
    fn known(&self, path: &Path) -> Option<InventoryError> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut map = self.map();
        let kept = map.get(path)?;
        let age = kept.at.elapsed();
        if age >= self.ttl || FileIdentity::of(path) != Some(kept.identity) {
            map.remove(path);
            return None;
        }
        let again = format!(
            "; unchanged since this failure {} s ago, so not parsed again (it is read again \
             when it changes, or after {} s)",
            age.as_secs(),
            self.ttl.as_secs()
        );
        Some(match &kept.error {
            InventoryError::FileFormat { file, reason } => InventoryError::FileFormat {
                file: file.clone(),
                reason: format!("{reason}{again}"),
            },
            other => other.clone(),
        })
    }

    /// Keeps a parse failure of the file as it was (`identity`, taken before reading it: a
    /// file rewritten meanwhile differs from it and is read again).
    fn remember(&self, path: &Path, identity: Option<FileIdentity>, error: &InventoryError) {
        if self.ttl.is_zero() || !matches!(error, InventoryError::FileFormat { .. }) {
            return;
        }
        if let Some(identity) = identity {
            self.map().insert(
                path.to_path_buf(),
                KnownFailure {
                    identity,
                    at: Instant::now(),
                    error: error.clone(),
                },
            );
        }
    }
}

/// The file name only: outputs never reveal the server's directory layout.
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "inventory".to_string())
}

#[async_trait]
impl InventoryProvider for FileProvider {
    fn metrics_source(&self) -> crate::metrics::InventorySource {
        crate::metrics::InventorySource::File
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.paths.iter().map(|p| display_name(p)).collect();
        format!("inventory file(s) {}", names.join(", "))
    }

    async fn scan(&self, options: &ScanOptions) -> Result<Inventory, InventoryError> {
        let paths = self.paths.clone();
        let source = self.describe();
        let options = options.clone();
        let failures = self.failures.clone();
        tokio::task::spawn_blocking(move || read_files(&paths, source, &options, &failures))
            .await
            .map_err(|e| InventoryError::FileRead {
                file: "inventory".into(),
                reason: format!("reader task failed: {e}"),
            })?
    }
}

fn read_files(
    paths: &[PathBuf],
    source: String,
    options: &ScanOptions,
    failures: &KnownFailures,
) -> Result<Inventory, InventoryError> {
    // A known failure fails the scan before any other file is read.
    if let Some(e) = paths.iter().find_map(|p| failures.known(p)) {
        return Err(e);
    }
    let started = Instant::now();
    let mut report = ScanReport {
        complete: true,
        ..ScanReport::default()
    };
    let mut resources: Vec<Resource> = Vec::new();
    let mut read: Vec<ReadFile> = Vec::new();
    for path in paths {
        let name = display_name(path);
        let identity = FileIdentity::of(path);
        let file = match read_into(path, &name) {
            Ok(file) => file,
            Err(e) => {
                failures.remember(path, identity, &e);
                return Err(e);
            }
        };
        let error = file.parsed.skipped_error();
        report.complete &= error.is_none();
        report.parts.push(ScanPart {
            scope: format!("file {name}"),
            ok: error.is_none(),
            resources: file.parsed.resources.len(),
            pages: 0,
            error,
            cached: false,
        });
        let start = resources.len();
        let ParsedFile {
            resources: parsed, ..
        } = file.parsed;
        // One file (the usual case) is moved, not copied: a million resources are ~300 MB.
        if resources.is_empty() {
            resources = parsed;
        } else {
            resources.extend(parsed);
        }
        read.push(ReadFile {
            name,
            format: file.format,
            range: start..resources.len(),
            azure_paging: file.azure_paging,
            next_page_token: file.next_page_token,
        });
        let done = report.parts.len() as u64;
        options.report(
            done,
            Some(paths.len() as u64),
            &format!("{done}/{} inventory files read", paths.len()),
        );
    }
    fill_missing_accounts(&mut resources);
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.coverage = file_coverage(&report, &resources, &read);
    Ok(Inventory {
        resources,
        report,
        source,
        fetched_at: chrono::Utc::now(),
        accounts: super::AccountDirectory::default(),
    })
}

/// What one file gave, beyond its resources (which sit at `range` in the scan's list).
struct ReadFile {
    name: String,
    format: FileFormat,
    range: std::ops::Range<usize>,
    azure_paging: Option<azure::Paging>,
    next_page_token: Option<String>,
}

/// One source per kind of file read, in a fixed order. A Tagging API file lists only resources
/// that were ever tagged, like the API it came from; Azure and GCP exports list every resource.
/// Entries that could not be read and pages missing from an export are named as failures.
fn file_coverage(report: &ScanReport, resources: &[Resource], files: &[ReadFile]) -> Coverage {
    let kind_of = |f: FileFormat| match f {
        FileFormat::TaggingApi => SourceKind::TaggingApiFile,
        FileFormat::AzureResourceGraph => SourceKind::AzureResourceGraph,
        FileFormat::GcpSearch | FileFormat::GcpExport => SourceKind::GcpAssetInventory,
    };
    let mut sources = Vec::new();
    for kind in [
        SourceKind::TaggingApiFile,
        SourceKind::AzureResourceGraph,
        SourceKind::GcpAssetInventory,
    ] {
        let of_kind: Vec<(usize, &ReadFile)> = files
            .iter()
            .enumerate()
            .filter(|(_, f)| kind_of(f.format) == kind)
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let listed: Vec<&Resource> = of_kind
            .iter()
            .flat_map(|(_, f)| &resources[f.range.clone()])
            .collect();
        let mut source = SourceCoverage::new(kind, listed.len());
        source.accounts = covered_accounts(&listed);
        let regions: std::collections::BTreeSet<&str> =
            listed.iter().map(|r| r.region.as_str()).collect();
        source.regions = regions.into_iter().map(str::to_string).collect();
        source.failed = of_kind
            .iter()
            .filter_map(|(i, _)| {
                let p = report.parts.get(*i)?;
                p.error.as_ref().map(|e| CoverageFailure {
                    scope: p.scope.clone(),
                    reason: e.clone(),
                })
            })
            .collect();
        let azure_pages: Vec<azure::FilePaging<'_>> = of_kind
            .iter()
            .filter_map(|(_, f)| {
                f.azure_paging.as_ref().map(|paging| azure::FilePaging {
                    file: &f.name,
                    paging,
                })
            })
            .collect();
        source.failed.extend(azure::paging_failures(&azure_pages));
        for (_, f) in &of_kind {
            if let Some(token) = &f.next_page_token {
                source.failed.push(CoverageFailure {
                    scope: format!("file {}", f.name),
                    reason: format!(
                        "this export has more pages: nextPageToken {token} is set; use `gcloud \
                         asset search-all-resources`, which fetches every page, or pass every \
                         page's file"
                    ),
                });
            }
        }
        sources.push(source);
    }
    let mixed = sources.len() > 1
        && sources
            .iter()
            .any(|s| s.source == SourceKind::TaggingApiFile);
    let mut coverage = Coverage::of(sources);
    if mixed {
        // `Coverage::of` counts a listing of never-tagged resources as covering the others'
        // (sources of one estate); Tagging API files and another cloud's exports cover
        // different resources, so the AWS part still lacks its never-tagged resources.
        coverage.complete = false;
        coverage.warnings.insert(
            0,
            format!(
                "{}: the AWS resources from Tagging API files leave them out (the Azure and GCP \
                 exports list every resource of theirs)",
                super::coverage::TAGGING_API_NOTE
            ),
        );
    }
    coverage
}

/// The accounts resources name, sorted; a GCP project number is shown with the project id
/// its resources' names give (`123456 (shop-prod)`).
fn covered_accounts(resources: &[&Resource]) -> Vec<String> {
    let mut names: HashMap<&str, Option<&str>> = HashMap::new();
    for r in resources {
        let id = (r.provider == Provider::Gcp)
            .then(|| super::id::gcp::GcpName::parse(&r.id))
            .flatten()
            .map(|n| n.project)
            .filter(|p| !p.is_empty() && *p != r.account.as_str());
        let entry = names.entry(r.account.as_str()).or_default();
        if entry.is_none() {
            *entry = id;
        }
    }
    let mut accounts: Vec<String> = names
        .into_iter()
        .map(|(account, id)| match id {
            Some(id) => format!("{account} ({id})"),
            None => account.to_string(),
        })
        .collect();
    accounts.sort();
    accounts
}

/// Where parsed entries go: converted to resources one by one as the file streams in, so a
/// large export never sits in memory twice.
#[derive(Default)]
struct Sink {
    parsed: ParsedFile,
    texts: Interner,
    /// Checking a framed file's skeleton (`framed`): its placeholders are not resources.
    ignore: bool,
}

impl Sink {
    fn push(&mut self, mapping: Mapping) {
        if self.ignore {
            return;
        }
        let texts = &mut self.texts;
        let tags = mapping
            .tags
            .iter()
            .map(|t| (texts.intern(&t.key), texts.intern(&t.value)))
            .collect();
        match resource_from_arn_in(texts, &mapping.resource_arn, tags, GLOBAL_REGION, "") {
            Some(r) => self.parsed.resources.push(r),
            None => self.parsed.skip(&mapping.resource_arn),
        }
    }
}

/// One file read: its format, its resources, and what its format says about missing pages.
struct FileRead {
    format: FileFormat,
    parsed: ParsedFile,
    azure_paging: Option<azure::Paging>,
    next_page_token: Option<String>,
}

/// Opens a file, tells its format from its first bytes and reads it with that format's reader.
fn read_into(path: &Path, name: &str) -> Result<FileRead, InventoryError> {
    let read_error = |e: std::io::Error| InventoryError::FileRead {
        file: name.to_string(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file (check --inventory)".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        },
    };
    let mut file = File::open(path).map_err(read_error)?;
    let mut prefix = Vec::with_capacity(8192);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(read_error)?;
    let whole = prefix.len() < SNIFF_BYTES;
    let format_error = |reason: String| InventoryError::FileFormat {
        file: name.to_string(),
        reason,
    };
    let Some(&first) = prefix.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(format_error("the file is empty".to_string()));
    };
    let format = sniff(&prefix, whole).ok_or_else(|| {
        format_error(format!(
            "not an inventory export Tagwarden reads; {ACCEPTED}"
        ))
    })?;
    tracing::debug!(
        file = name,
        format = format.label(),
        "inventory file format"
    );
    let reader = BufReader::with_capacity(1 << 20, std::io::Cursor::new(prefix).chain(file));
    let mut read = FileRead {
        format,
        parsed: ParsedFile::default(),
        azure_paging: None,
        next_page_token: None,
    };
    match format {
        FileFormat::TaggingApi => {
            let many = first == b'[';
            read.parsed = match read_tagging_framed(reader, many) {
                Some(parsed) => parsed,
                None => {
                    // Not what the fast path expects (or not valid): the streaming reader
                    // decides, and words the error.
                    tracing::debug!(
                        file = name,
                        "reading the inventory file with the streaming parser"
                    );
                    let file = File::open(path).map_err(read_error)?;
                    read_tagging(BufReader::with_capacity(1 << 20, file), name, many)?
                }
            }
        }
        FileFormat::AzureResourceGraph => {
            let (parsed, paging) = azure::read(reader, name)?;
            read.parsed = parsed;
            read.azure_paging = Some(paging);
        }
        FileFormat::GcpSearch => {
            let (parsed, token) = gcp::read_search(reader, name)?;
            read.parsed = parsed;
            read.next_page_token = token;
        }
        FileFormat::GcpExport => read.parsed = gcp::read_export(reader, name)?,
    }
    Ok(read)
}

/// Reads a Tagging API file the fast way: each mapping framed and parsed from its own slice
/// (`framed`), then the document around them checked by the streaming reader's visitors, so
/// what is accepted is exactly what `read_tagging` accepts. `None` when the file is not one the
/// framing handles or is not valid: the caller reads it with `read_tagging`. The framing gives
/// up at the first mapping it cannot parse or key it does not handle; only a file whose
/// mappings all parse but whose surrounding document is wrong is read twice (an error case).
fn read_tagging_framed<R: std::io::BufRead>(reader: R, many: bool) -> Option<ParsedFile> {
    let mut sink = Sink::default();
    let skeleton = super::framed::scan(reader, many, |bytes| {
        match serde_json::from_slice::<Mapping>(bytes) {
            Ok(m) => {
                sink.push(m);
                true
            }
            Err(_) => false,
        }
    })?;
    let mut check = Sink {
        ignore: true,
        ..Sink::default()
    };
    let mut de = serde_json::Deserializer::from_slice(&skeleton);
    let checked = if many {
        de.deserialize_seq(PagesVisitor { sink: &mut check })
    } else {
        de.deserialize_map(PageVisitor { sink: &mut check })
    };
    checked.and_then(|()| de.end()).ok()?;
    sink.parsed.skip_reason = "`ResourceARN` is not an ARN";
    Some(sink.parsed)
}

/// Reads a Tagging API file: one page (`many` false) or an array of pages.
fn read_tagging<R: Read>(reader: R, name: &str, many: bool) -> Result<ParsedFile, InventoryError> {
    let mut sink = Sink::default();
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = if many {
        de.deserialize_seq(PagesVisitor { sink: &mut sink })
    } else {
        de.deserialize_map(PageVisitor { sink: &mut sink })
    };
    parsed
        .and_then(|()| de.end())
        .map_err(|e| InventoryError::FileFormat {
            file: name.to_string(),
            reason: if e.is_syntax() || e.is_eof() {
                format!("invalid JSON at line {}, column {}", e.line(), e.column())
            } else {
                "expected the output of `aws resourcegroupstaggingapi get-resources` \
             ({\"ResourceTagMappingList\": [{\"ResourceARN\": ..., \"Tags\": [...]}]}) \
             or an array of such pages"
                    .to_string()
            },
        })?;
    sink.parsed.skip_reason = "`ResourceARN` is not an ARN";
    Ok(sink.parsed)
}

struct PagesVisitor<'a> {
    sink: &'a mut Sink,
}

impl<'de> Visitor<'de> for PagesVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of get-resources pages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(PageSeed {
                sink: &mut *self.sink,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct PageSeed<'a> {
    sink: &'a mut Sink,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(PageVisitor { sink: self.sink })
    }
}

struct PageVisitor<'a> {
    sink: &'a mut Sink,
}

impl<'de> Visitor<'de> for PageVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a get-resources page")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "ResourceTagMappingList" {
                map.next_value_seed(MappingsSeed {
                    sink: &mut *self.sink,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct MappingsSeed<'a> {
    sink: &'a mut Sink,
}

impl<'de> DeserializeSeed<'de> for MappingsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MappingsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of {ResourceARN, Tags}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(mapping) = seq.next_element::<Mapping>()? {
            self.sink.push(mapping);
        }
        Ok(())
    }
}

/// ARNs of global resources (S3) carry no account: give them the account most other resources
/// name.
fn fill_missing_accounts(resources: &mut [Resource]) {
    let aws = |r: &Resource| r.provider == Provider::Aws;
    if !resources.iter().any(|r| aws(r) && r.account.is_empty()) {
        return;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in resources.iter().filter(|r| aws(r) && !r.account.is_empty()) {
        *counts.entry(r.account.as_str()).or_default() += 1;
    }
    let account: ArcStr = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(a, _)| a.into())
        .unwrap_or_else(|| "unknown".into());
    for r in resources
        .iter_mut()
        .filter(|r| aws(r) && r.account.is_empty())
    {
        r.account = account.clone();
    }
}

/// Writes resources as a get-resources page (used by `tagwarden demo export`).
pub(crate) fn to_page(resources: &[Resource]) -> Page<'_> {
    Page {
        resource_tag_mapping_list: resources
            .iter()
            .map(|r| Mapping {
                resource_arn: Cow::Borrowed(r.id.as_str()),
                tags: r
                    .tags
                    .iter()
                    .map(|(k, v)| TagPair {
                        key: Cow::Borrowed(k.as_str()),
                        value: Cow::Borrowed(v.as_str()),
                    })
                    .collect(),
            })
            .collect(),
        pagination_token: Some(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        let mut f = File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path
    }

    /// The framed reader accepts exactly what the streaming reader accepts and reads the same
    /// resources: on the demo and irregular estates as exported, as pages, with odd spacing and
    /// escapes, and on documents the framing must hand back or that are not valid.
    #[test]
    fn framed_reading_agrees_with_the_streaming_reader() {
        let slow = |text: &str, many: bool| {
            read_tagging(text.as_bytes(), "f", many).map(|p| (p.resources, p.skipped))
        };
        let fast = |text: &str, many: bool| {
            read_tagging_framed(std::io::BufReader::with_capacity(7, text.as_bytes()), many)
                .map(|p| (p.resources, p.skipped))
        };
        let page = |resources: &[Resource]| serde_json::to_string(&to_page(resources)).unwrap();
        let demo = crate::inventory::demo::generate(7, 400).resources;
        let irregular = crate::inventory::irregular::generate(11, 400).resources;
        let mut documents = vec![
            (page(&demo), false),
            (page(&irregular), false),
            (format!("[{}, {}]", page(&demo[..100]), page(&irregular[..50])), true),
            (serde_json::to_string_pretty(&to_page(&demo[..30])).unwrap(), false),
            (PAGE.to_string(), false),
            (format!("[{PAGE}]"), true),
            (r#"{"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::a"}{b", "Tags": [{"Key": "k\", "Value": "]}["}]}], "X": {"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::hidden"}]}}"#.to_string(), false),
            (r#"{"ResourceTagMappingList": [{"ResourceARN": "not-an-arn"}, {"ResourceARN": "arn:aws:s3:::b"}]}"#.to_string(), false),
            (r#"{"ResourceTagMappingList": [], "ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::twice"}]}"#.to_string(), false),
        ];
        // Documents the fast path must not accept (the slow one errs or reads differently).
        let refused = [
            (
                r#"{"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::escaped-key"}]}"#,
                false,
            ),
            (
                r#"[1, {"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::a"}]}]"#,
                true,
            ),
            (
                r#"{"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::a"} {"ResourceARN": "arn:aws:s3:::b"}]}"#,
                false,
            ),
            (r#"{"ResourceTagMappingList": [{"ResourceARN": 5}]}"#, false),
            (
                r#"{"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::a"}]} trailing"#,
                false,
            ),
            (
                r#"{"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::a"}"#,
                false,
            ),
            (r#"{"ResourceTagMappingList": ["x"]}"#, false),
        ];
        for (text, many) in refused {
            documents.push((text.to_string(), many));
        }
        for (text, many) in &documents {
            let (slow, fast) = (slow(text, *many), fast(text, *many));
            match (&slow, &fast) {
                (Ok(a), Some(b)) => assert_eq!(a, b, "{text}"),
                (Ok(_), None) => {
                    // Handing back is allowed only for what the framing does not handle.
                    assert!(
                        text.contains(r"\u0054"),
                        "fast path gave up on valid {text}"
                    );
                }
                (Err(_), Some(_)) => panic!("fast path accepted what the reader refuses: {text}"),
                (Err(_), None) => {}
            }
        }
        assert!(slow(&documents[0].0, false).unwrap().0.len() == 400);
    }

    const PAGE: &str = r#"{"ResourceTagMappingList": [
        {"ResourceARN": "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
         "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "Env"}],
         "ComplianceDetails": {"ComplianceStatus": true}},
        {"ResourceARN": "arn:aws:s3:::bucket-a", "Tags": []}
    ], "PaginationToken": ""}"#;

    #[tokio::test]
    async fn reads_get_resources_output() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "a.json", PAGE);
        let inv = FileProvider::new(vec![p])
            .scan(&ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(inv.resources.len(), 2);
        let web = &inv.resources[0];
        assert_eq!(web.name, "web-1");
        assert_eq!(web.tag("Env"), Some(""), "missing Value reads as empty");
        let bucket = &inv.resources[1];
        assert_eq!(bucket.account, "111122223333");
        assert_eq!(bucket.region, GLOBAL_REGION);
        assert!(inv.report.complete);
        assert_eq!(inv.report.parts[0].scope, "file a.json");
    }

    #[tokio::test]
    async fn many_files_and_page_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&dir, "a.json", PAGE);
        let b = write(&dir, "b.json", &format!("[{PAGE}, {PAGE}]"));
        let mut inv = FileProvider::new(vec![a, b])
            .scan(&ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(
            inv.resources.len(),
            6,
            "repeats are dropped when the scan is loaded"
        );
        assert_eq!(crate::inventory::sort_and_dedupe(&mut inv.resources), 4);
        assert_eq!(inv.report.parts.len(), 2);
    }

    #[tokio::test]
    async fn bad_entries_are_skipped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.json",
            r#"{"ResourceTagMappingList": [{"ResourceARN": "i-123"}, {"ResourceARN": "arn:aws:sqs:us-east-1:1:q"}]}"#,
        );
        let inv = FileProvider::new(vec![p])
            .scan(&ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(inv.resources.len(), 1);
        assert!(!inv.report.complete);
        let err = inv.report.parts[0].error.as_deref().unwrap();
        assert!(
            err.contains("1 entries skipped") && err.contains("i-123"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_and_malformed_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = FileProvider::new(vec![missing])
            .scan(&ScanOptions::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read inventory file nope.json: no such file (check --inventory)"
        );
        let bad = write(&dir, "bad.json", "{\"ResourceTagMappingList\": [");
        let err = FileProvider::new(vec![bad])
            .scan(&ScanOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid JSON at line 1"), "{err}");
        let wrong = write(&dir, "wrong.json", "{\"ResourceTagMappingList\": 5}");
        let err = FileProvider::new(vec![wrong])
            .scan(&ScanOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("get-resources"), "{err}");
    }

    /// Writes `text` with modification time `second` past the epoch.
    fn write_at(path: &Path, text: &str, second: u64) {
        std::fs::write(path, text).unwrap();
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(second))
            .unwrap();
    }

    /// Issue 12: a failed (truncated) file was parsed again on every call. Its failure is kept
    /// while the file is unchanged: a good file of the same size and time (which a new parse
    /// would accept) still gets the kept error, so nothing was read; a changed file is read.
    #[tokio::test]
    async fn a_parse_failure_is_kept_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inv.json");
        // Cut short, padded to the good file's size.
        let truncated = format!("{}{}", &PAGE[..PAGE.len() - 30], " ".repeat(30));
        write_at(&path, &truncated, 1_000);
        let other = write(&dir, "other.json", PAGE);
        let provider = FileProvider::new(vec![other, path.clone()])
            .with_failure_ttl(Duration::from_secs(3600));
        let options = ScanOptions::default();
        let scan = || provider.scan(&options);
        let first = scan().await.unwrap_err().to_string();
        assert!(
            first.contains("inv.json") && first.contains("invalid JSON"),
            "{first}"
        );
        assert!(!first.contains("not parsed again"), "{first}");
        let again = scan().await.unwrap_err().to_string();
        assert!(
            again.starts_with(&first) && again.contains("not parsed again"),
            "{again}"
        );
        write_at(&path, PAGE, 1_000);
        let unchanged = scan().await.unwrap_err().to_string();
        assert!(unchanged.contains("not parsed again"), "{unchanged}");
        // A new modification time is a new file: read, and good.
        write_at(&path, PAGE, 2_000);
        assert_eq!(scan().await.unwrap().resources.len(), 4);

        // Without a TTL nothing is kept; read errors are never kept.
        write_at(&path, &truncated, 3_000);
        let plain = FileProvider::new(vec![path.clone()]);
        for _ in 0..2 {
            let e = plain.scan(&ScanOptions::default()).await.unwrap_err();
            assert!(!e.to_string().contains("not parsed again"), "{e}");
        }
        let missing = FileProvider::new(vec![dir.path().join("gone.json")])
            .with_failure_ttl(Duration::from_secs(3600));
        for _ in 0..2 {
            let e = missing.scan(&ScanOptions::default()).await.unwrap_err();
            assert!(e.to_string().contains("no such file"), "{e}");
            assert!(!e.to_string().contains("not parsed again"), "{e}");
        }
    }

    const AZURE_PAGE_1: &str = r#"{"count": 2, "data": [
        {"id": "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1",
         "name": "vm-1", "type": "microsoft.compute/virtualmachines", "location": "westeurope",
         "resourceGroup": "rg", "subscriptionId": "sub-1", "tags": {"Owner": "ana"}},
        {"id": "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1",
         "name": "st1", "type": "microsoft.storage/storageaccounts", "location": "westeurope",
         "resourceGroup": "rg", "subscriptionId": "sub-1", "tags": null}],
        "skip_token": "c2tpcA==", "total_records": 3}"#;

    const AZURE_PAGE_2: &str = r#"[{"id": "/subscriptions/sub-2/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip",
        "type": "microsoft.network/publicipaddresses", "subscriptionId": "sub-2",
        "resourceGroup": "rg", "tags": {}}]"#;

    const GCP_NDJSON: &str = "{\"name\":\"//compute.googleapis.com/projects/shop/zones/z/instances/w\",\
        \"asset_type\":\"compute.googleapis.com/Instance\",\"resource\":{\"data\":{},\"location\":\"z\"},\
        \"ancestors\":[\"projects/42\"]}\n";

    /// Each file's format is told from its content: one scan reads AWS, Azure and GCP files,
    /// with one coverage source per kind; the Tagging API file keeps coverage incomplete.
    #[tokio::test]
    async fn mixed_formats_in_one_scan() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            write(&dir, "aws.json", PAGE),
            write(&dir, "az.json", AZURE_PAGE_1),
            write(&dir, "gcp.ndjson", GCP_NDJSON),
        ];
        let inv = FileProvider::new(files)
            .scan(&ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(inv.resources.len(), 5);
        let kinds: Vec<SourceKind> = inv
            .report
            .coverage
            .sources
            .iter()
            .map(|s| s.source)
            .collect();
        assert_eq!(
            kinds,
            vec![
                SourceKind::TaggingApiFile,
                SourceKind::AzureResourceGraph,
                SourceKind::GcpAssetInventory
            ]
        );
        let azure = &inv.report.coverage.sources[1];
        assert_eq!(azure.resources, 2);
        assert_eq!(azure.accounts, vec!["sub-1".to_string()]);
        assert_eq!(azure.regions, vec!["westeurope".to_string()]);
        assert_eq!(
            inv.report.coverage.sources[2].accounts,
            vec!["42 (shop)".to_string()]
        );
        assert!(!inv.report.coverage.complete);
        assert!(
            inv.report.coverage.warnings[0].contains("Tagging API files leave them out"),
            "{:?}",
            inv.report.coverage.warnings
        );
        // The Azure file has a skip token and 2 of 3 records: partial, the file named.
        assert_eq!(azure.failed.len(), 1, "{:?}", azure.failed);
        assert_eq!(azure.failed[0].scope, "file az.json");
        assert!(
            azure.failed[0]
                .reason
                .starts_with("this export has more pages")
        );
    }

    #[tokio::test]
    async fn every_page_given_makes_azure_coverage_complete() {
        let dir = tempfile::tempdir().unwrap();
        // The second page, written by extension 1.x as a bare array, carries no paging fields;
        // the first page's total counts it.
        let second = AZURE_PAGE_2
            .replace(
                '[',
                r#"{"count": 1, "total_records": 3, "skip_token": null, "data": ["#,
            )
            .replacen(']', "]}", 1);
        let files = vec![
            write(&dir, "p1.json", AZURE_PAGE_1),
            write(&dir, "p2.json", &second),
        ];
        let inv = FileProvider::new(files)
            .scan(&ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(inv.resources.len(), 3);
        let c = &inv.report.coverage;
        assert!(c.complete, "{c:?}");
        assert_eq!(
            c.sources[0].accounts,
            vec!["sub-1".to_string(), "sub-2".to_string()]
        );
        assert_eq!(
            c.sources[0].regions,
            vec![GLOBAL_REGION.to_string(), "westeurope".to_string()]
        );
        // A bare array alone: nothing says pages are missing.
        let bare = write(&dir, "bare.json", AZURE_PAGE_2);
        let inv = FileProvider::new(vec![bare])
            .scan(&ScanOptions::default())
            .await
            .unwrap();
        assert!(inv.report.coverage.complete);
        assert_eq!(
            inv.resources[0].account, "sub-2",
            "never filled from another account"
        );
    }

    #[tokio::test]
    async fn an_unknown_format_lists_the_accepted_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "odd.json", r#"{"Items": [{"Id": "x"}]}"#);
        let err = FileProvider::new(vec![p])
            .scan(&ScanOptions::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("inventory file odd.json is not in the expected format"),
            "{text}"
        );
        for needle in [
            "get-resources",
            "az graph query",
            "search-all-resources",
            "asset export",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        let blank = write(&dir, "blank.json", "  \n ");
        let err = FileProvider::new(vec![blank])
            .scan(&ScanOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().ends_with("the file is empty"), "{err}");
    }
}
