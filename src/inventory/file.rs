//! Inventory files: the JSON that `aws resourcegroupstaggingapi get-resources` prints
//! (`{"ResourceTagMappingList": [...]}`), or an array of such pages; one or many files.
//!
//! A file that cannot be read or parsed is an error (the user named it); entries inside a good
//! file that are not ARNs are skipped and reported, making the inventory partial. Files are
//! streamed: each entry becomes a resource as it is parsed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use compact_str::CompactString;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::arn::resource_from_arn;
use super::{
    Inventory, InventoryError, InventoryProvider, Resource, ScanOptions, ScanPart, ScanReport,
};

/// Region given to resources whose ARN has none (S3 buckets and other global resources).
pub const GLOBAL_REGION: &str = "global";

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Page {
    #[serde(default)]
    pub resource_tag_mapping_list: Vec<Mapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination_token: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Mapping {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: CompactString,
    #[serde(rename = "Tags", default)]
    pub tags: Vec<TagPair>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct TagPair {
    #[serde(rename = "Key")]
    pub key: CompactString,
    /// The API omits `Value` for an empty value; read it as "".
    #[serde(rename = "Value", default)]
    pub value: CompactString,
}

pub struct FileProvider {
    paths: Vec<PathBuf>,
}

impl FileProvider {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        FileProvider { paths }
    }
}

/// The file name only: outputs never reveal the server's directory layout.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "inventory".to_string())
}

#[async_trait]
impl InventoryProvider for FileProvider {
    fn describe(&self) -> String {
        let names: Vec<String> = self.paths.iter().map(|p| display_name(p)).collect();
        format!("inventory file(s) {}", names.join(", "))
    }

    async fn scan(&self, options: &ScanOptions) -> Result<Inventory, InventoryError> {
        let paths = self.paths.clone();
        let source = self.describe();
        let options = options.clone();
        tokio::task::spawn_blocking(move || read_files(&paths, source, &options))
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
) -> Result<Inventory, InventoryError> {
    let started = Instant::now();
    let mut report = ScanReport {
        complete: true,
        ..ScanReport::default()
    };
    let mut resources: Vec<Resource> = Vec::new();
    for path in paths {
        let name = display_name(path);
        let mut sink = Sink::default();
        read_into(path, &name, &mut sink)?;
        let error = sink.skipped.map(|(n, first)| {
            format!("{n} entries skipped: `ResourceARN` is not an ARN (first: `{first}`)")
        });
        report.complete &= error.is_none();
        report.parts.push(ScanPart {
            scope: format!("file {name}"),
            ok: error.is_none(),
            resources: sink.resources.len(),
            pages: 0,
            error,
            cached: false,
        });
        resources.extend(sink.resources);
        let done = report.parts.len() as u64;
        options.report(
            done,
            Some(paths.len() as u64),
            &format!("{done}/{} inventory files read", paths.len()),
        );
    }
    fill_missing_accounts(&mut resources);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(Inventory {
        resources,
        report,
        source,
        fetched_at: chrono::Utc::now(),
    })
}

/// Where parsed entries go: converted to resources one by one as the file streams in, so a
/// large export never sits in memory twice.
#[derive(Default)]
struct Sink {
    resources: Vec<Resource>,
    /// Count and first example of entries that are not ARNs.
    skipped: Option<(usize, String)>,
}

impl Sink {
    fn push(&mut self, mapping: Mapping) {
        let tags = mapping.tags.into_iter().map(|t| (t.key, t.value)).collect();
        match resource_from_arn(&mapping.resource_arn, tags, GLOBAL_REGION, "") {
            Some(r) => self.resources.push(r),
            None => match &mut self.skipped {
                Some((n, _)) => *n += 1,
                None => self.skipped = Some((1, mapping.resource_arn.to_string())),
            },
        }
    }
}

fn read_into(path: &Path, name: &str, sink: &mut Sink) -> Result<(), InventoryError> {
    let file = File::open(path).map_err(|e| InventoryError::FileRead {
        file: name.to_string(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file (check --inventory)".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        },
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let many = first_byte(&mut reader, name)? == b'[';
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = if many {
        de.deserialize_seq(PagesVisitor { sink })
    } else {
        de.deserialize_map(PageVisitor { sink })
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
        })
}

/// The first non-blank byte, without consuming it.
fn first_byte(reader: &mut BufReader<File>, name: &str) -> Result<u8, InventoryError> {
    loop {
        let buf = reader.fill_buf().map_err(|e| InventoryError::FileRead {
            file: name.to_string(),
            reason: e.to_string(),
        })?;
        if buf.is_empty() {
            return Err(InventoryError::FileFormat {
                file: name.to_string(),
                reason: "the file is empty".to_string(),
            });
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => return Ok(buf[at]),
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
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
    if !resources.iter().any(|r| r.account.is_empty()) {
        return;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in resources.iter().filter(|r| !r.account.is_empty()) {
        *counts.entry(r.account.as_str()).or_default() += 1;
    }
    let account: CompactString = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(a, _)| a.into())
        .unwrap_or_else(|| "unknown".into());
    for r in resources.iter_mut().filter(|r| r.account.is_empty()) {
        r.account = account.clone();
    }
}

/// Writes resources as a get-resources page (used by `tagwarden demo export`).
pub fn to_page(resources: &[Resource]) -> Page {
    Page {
        resource_tag_mapping_list: resources
            .iter()
            .map(|r| Mapping {
                resource_arn: r.id.clone(),
                tags: r
                    .tags
                    .iter()
                    .map(|(k, v)| TagPair {
                        key: k.clone(),
                        value: v.clone(),
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
}
