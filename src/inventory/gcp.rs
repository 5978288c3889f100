//! GCP Cloud Asset Inventory files as inventories: every resource the scope holds, labelled or
//! not.
//!
//! Two outputs are read, streamed asset by asset:
//! - `gcloud asset search-all-resources --format=json`: an array of `ResourceSearchResult`
//!   (`name, assetType, project, location, displayName, labels{}, tags[], createTime, ...`), or
//!   the REST response `{"results": [...], "nextPageToken"}` (a non-empty token means the
//!   inventory is partial);
//! - `gcloud asset export --content-type=resource`: NDJSON in snake_case (`name, asset_type,
//!   resource{data{labels, ...}, location}, ancestors[]`), read with serde_json's streaming
//!   deserializer. `gcloud asset list --format=json` (the same assets, camelCase, in an array)
//!   reads too.
//!
//! Labels are the tags. Resource Manager tags (`tags[]` of search results: `tagKey`
//! `123/env`, `tagValue` `123/env/prod`) are added by their short names (`env: prod`) unless a
//! label has that key. Inherited tags (`effectiveTags`) are not: they belong to the folder or
//! project. The account is the project: the number of `project` (`projects/NUM`) or of the
//! `ancestors`, else the project id of the name, else the nearest ancestor (`folders/N`,
//! `organizations/N`) for resources above projects. The region is `location` in lower case
//! (buckets write `EU`, other assets `eu`; `global` when absent).

use std::io::Read;

use arcstr::ArcStr;
use compact_str::CompactString;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::azure::json_tags;
use super::format::ParsedFile;
use super::id::gcp::{GcpName, canonical_type, with_numeric_id};
use super::{
    Attributes, Attrs, Interner, InventoryError, Provider, Resource, Tags, normalise_tags,
};
use crate::inventory::file::GLOBAL_REGION;

/// One asset, in any of the outputs (camelCase fields with their snake_case aliases). Fields
/// beyond these are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Asset {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, alias = "asset_type")]
    pub asset_type: Option<String>,
    /// `projects/NUM` (search results).
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub location: Option<ArcStr>,
    #[serde(default, alias = "display_name")]
    pub display_name: Option<ArcStr>,
    #[serde(default, deserialize_with = "label_object")]
    pub labels: Option<Tags>,
    #[serde(default)]
    pub tags: Option<Vec<TagBinding>>,
    #[serde(default, alias = "additional_attributes")]
    pub additional_attributes: Option<Extra>,
    #[serde(default, alias = "create_time")]
    pub create_time: Option<ArcStr>,
    /// The resource itself (export and list outputs).
    #[serde(default)]
    pub resource: Option<AssetResource>,
    #[serde(default)]
    pub ancestors: Vec<String>,
    /// `organizations/N` (search results).
    #[serde(default)]
    pub organization: Option<String>,
}

/// A Resource Manager tag bound to the resource (search results).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagBinding {
    #[serde(default, alias = "tag_key")]
    pub tag_key: Option<String>,
    #[serde(default, alias = "tag_value")]
    pub tag_value: Option<String>,
}

/// `additionalAttributes`: only the numeric id is used.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Extra {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AssetResource {
    #[serde(default)]
    pub data: Option<ResourceData>,
    #[serde(default)]
    pub location: Option<ArcStr>,
}

/// The resource's own representation (its API's fields, camelCase).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceData {
    #[serde(default, deserialize_with = "label_object")]
    pub labels: Option<Tags>,
    /// GKE clusters keep their labels here.
    #[serde(default, deserialize_with = "label_object")]
    pub resource_labels: Option<Tags>,
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub name: Option<serde_json::Value>,
    #[serde(default)]
    pub display_name: Option<ArcStr>,
    #[serde(default)]
    pub creation_timestamp: Option<ArcStr>,
    #[serde(default)]
    pub time_created: Option<ArcStr>,
    #[serde(default)]
    pub create_time: Option<ArcStr>,
}

fn label_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tags>, D::Error> {
    let map = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?;
    Ok(map.map(json_tags))
}

/// A JSON id (`"1234"` or `1234`) as text.
fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The segment after `prefix/` in a `prefix/value` reference (`projects/123` → `123`).
fn reference<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| !r.is_empty() && !r.contains('/'))
}

/// The resource an asset describes, or the id to report when it cannot be one. Pure.
pub(crate) fn resource_from_asset(asset: Asset) -> Result<Resource, String> {
    let Some(name) = asset.name.filter(|n| !n.trim().is_empty()) else {
        return Err("(no name)".to_string());
    };
    let Some(parsed) = GcpName::parse(&name) else {
        return Err(name);
    };
    let resource_type = match asset.asset_type.as_deref().map(canonical_type) {
        Some(t) if !t.is_empty() => t,
        _ => parsed.resource_type.clone(),
    };
    let project_number = asset
        .project
        .as_deref()
        .and_then(|p| reference(p, "projects"))
        .or_else(|| {
            asset
                .ancestors
                .iter()
                .find_map(|a| reference(a, "projects"))
        });
    let account: ArcStr = match project_number {
        Some(n) => n.into(),
        None if !parsed.project.is_empty() => parsed.project.into(),
        None => asset
            .ancestors
            .first()
            .cloned()
            .or(asset.organization)
            .unwrap_or_default()
            .into(),
    };
    let (data, resource_location) = match asset.resource {
        Some(r) => (r.data.unwrap_or_default(), r.location),
        None => (ResourceData::default(), None),
    };
    let non_empty = |v: Option<ArcStr>| v.filter(|s| !s.trim().is_empty());
    let region = non_empty(asset.location)
        .or_else(|| non_empty(resource_location))
        .or_else(|| non_empty(Some(parsed.region.into())))
        .map_or_else(|| GLOBAL_REGION.into(), |r| r.to_ascii_lowercase().into());
    let display = non_empty(asset.display_name)
        .or_else(|| non_empty(data.display_name))
        .or_else(|| match &data.name {
            // Some APIs write their relative name here (`projects/p/serviceAccounts/x`).
            Some(serde_json::Value::String(s)) => non_empty(s.rsplit('/').next().map(ArcStr::from)),
            _ => None,
        })
        .unwrap_or_else(|| parsed.name.into());
    // Labels first: on a repeated key the first wins (normalise_tags).
    let mut tags: Tags = asset
        .labels
        .or(data.labels)
        .or(data.resource_labels)
        .unwrap_or_default();
    for binding in asset.tags.unwrap_or_default() {
        let short = |t: Option<String>| {
            t.and_then(|t| t.rsplit('/').next().map(ArcStr::from))
                .filter(|s| !s.is_empty())
        };
        if let (Some(k), Some(v)) = (short(binding.tag_key), short(binding.tag_value)) {
            tags.push((k, v));
        }
    }
    let numeric = asset
        .additional_attributes
        .and_then(|a| a.id)
        .or(data.id)
        .as_ref()
        .and_then(id_text);
    let alt_ids = numeric
        .and_then(|id| with_numeric_id(&name, &id))
        .map(CompactString::from)
        .into_iter()
        .collect();
    let created_at = non_empty(asset.create_time)
        .or_else(|| non_empty(data.creation_timestamp))
        .or_else(|| non_empty(data.time_created))
        .or_else(|| non_empty(data.create_time));
    Ok(Resource {
        id: CompactString::from(name.as_str()),
        provider: Provider::Gcp,
        account,
        region,
        resource_type: resource_type.as_str().into(),
        name: display,
        tags: normalise_tags(tags),
        attributes: Attrs::from(Attributes {
            created_at,
            alt_ids,
            ..Attributes::default()
        }),
    })
}

const SKIP_REASON: &str = "`name` is not a full resource name (//<service>.googleapis.com/...)";

fn format_error(name: &str, e: &serde_json::Error, expected: &str) -> InventoryError {
    InventoryError::FileFormat {
        file: name.to_string(),
        reason: if e.is_syntax() || e.is_eof() {
            format!("invalid JSON at line {}, column {}", e.line(), e.column())
        } else {
            format!("{e} at line {}; expected {expected}", e.line())
        },
    }
}

/// Reads `gcloud asset search-all-resources --format=json` output (or `gcloud asset list`'s, or
/// the REST response). Returns the resources and the REST `nextPageToken`, when one is set.
pub(crate) fn read_search<R: Read>(
    reader: R,
    name: &str,
) -> Result<(ParsedFile, Option<String>), InventoryError> {
    let mut sink = AssetSink::default();
    let mut de = serde_json::Deserializer::from_reader(reader);
    de.deserialize_any(SearchVisitor { sink: &mut sink })
        .and_then(|()| de.end())
        .map_err(|e| {
            format_error(
                name,
                &e,
                "the output of `gcloud asset search-all-resources --format=json` (an array of \
                 {name, assetType, project, location, labels, ...})",
            )
        })?;
    Ok((sink.parsed, sink.next_page_token.filter(|t| !t.is_empty())))
}

/// Reads `gcloud asset export --content-type=resource` NDJSON: one asset per line (any
/// whitespace between values is accepted).
pub(crate) fn read_export<R: Read>(reader: R, name: &str) -> Result<ParsedFile, InventoryError> {
    let mut sink = AssetSink::default();
    for asset in serde_json::Deserializer::from_reader(reader).into_iter::<Asset>() {
        let asset = asset.map_err(|e| {
            format_error(
                name,
                &e,
                "`gcloud asset export --content-type=resource` NDJSON (one {name, asset_type, \
                 resource: {data, location}, ancestors} per line)",
            )
        })?;
        sink.push(asset);
    }
    Ok(sink.parsed)
}

#[derive(Default)]
struct AssetSink {
    parsed: ParsedFile,
    next_page_token: Option<String>,
    texts: Interner,
}

impl AssetSink {
    fn push(&mut self, asset: Asset) {
        self.parsed.skip_reason = SKIP_REASON;
        match resource_from_asset(asset) {
            Ok(r) => {
                let r = self.texts.share(r);
                self.parsed.resources.push(r);
            }
            Err(id) => self.parsed.skip(&id),
        }
    }
}

/// The top level of a search output: an array of results, or `{"results", "nextPageToken"}`.
struct SearchVisitor<'a> {
    sink: &'a mut AssetSink,
}

impl<'de> Visitor<'de> for SearchVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of search results, or an object with `results`")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        AssetsSeed { sink: self.sink }.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "results" => map.next_value_seed(AssetsSeed {
                    sink: &mut *self.sink,
                })?,
                "nextPageToken" => {
                    self.sink.next_page_token = map.next_value::<Option<String>>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct AssetsSeed<'a> {
    sink: &'a mut AssetSink,
}

impl<'de> DeserializeSeed<'de> for AssetsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AssetsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of assets")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(asset) = seq.next_element::<Asset>()? {
            self.sink.push(asset);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str =
        "//compute.googleapis.com/projects/shop-prod/zones/europe-west1-b/instances/web-1";

    #[test]
    fn search_results_read_into_resources() {
        let text = format!(
            r#"[{{"name": "{VM}", "assetType": "compute.googleapis.com/Instance",
                 "project": "projects/123456", "location": "europe-west1-b",
                 "displayName": "web-1", "labels": {{"cost_center": "cc-1", "team": "web"}},
                 "tags": [{{"tagKey": "123/env", "tagValue": "123/env/prod", "tagKeyId": "tagKeys/1"}},
                          {{"tagKey": "123/team", "tagValue": "123/team/other"}}],
                 "additionalAttributes": {{"id": "8812"}}, "createTime": "2026-01-02T00:00:00Z",
                 "state": "RUNNING"}},
                {{"name": "//storage.googleapis.com/projects/_/buckets/lake",
                  "assetType": "storage.googleapis.com/Bucket", "project": "projects/123456",
                  "location": "eu", "labels": null}}]"#
        );
        let (parsed, token) = read_search(text.as_bytes(), "s.json").unwrap();
        assert_eq!(token, None);
        assert_eq!(parsed.resources.len(), 2);
        let vm = &parsed.resources[0];
        assert_eq!(vm.provider, Provider::Gcp);
        assert_eq!(vm.resource_type, "gcp:compute/instance");
        assert_eq!(
            (vm.account.as_str(), vm.region.as_str()),
            ("123456", "europe-west1-b")
        );
        assert_eq!(vm.tag("cost_center"), Some("cc-1"));
        assert_eq!(
            vm.tag("env"),
            Some("prod"),
            "a Resource Manager tag by short name"
        );
        assert_eq!(vm.tag("team"), Some("web"), "the label wins over the tag");
        assert_eq!(
            vm.attributes.alt_ids,
            vec![CompactString::from(
                "//compute.googleapis.com/projects/shop-prod/zones/europe-west1-b/instances/8812"
            )]
        );
        assert_eq!(
            vm.attributes.created_at.as_deref(),
            Some("2026-01-02T00:00:00Z")
        );
        let lake = &parsed.resources[1];
        assert!(lake.tags.is_empty());
        assert_eq!(lake.name, "lake");
        assert_eq!(lake.resource_type, "gcp:storage/bucket");
        // The REST shape, with a page still to fetch.
        let rest = format!(r#"{{"results": [{{"name": "{VM}"}}], "nextPageToken": "p2"}}"#);
        let (parsed, token) = read_search(rest.as_bytes(), "r.json").unwrap();
        assert_eq!(token.as_deref(), Some("p2"));
        let r = &parsed.resources[0];
        assert_eq!(
            (r.account.as_str(), r.region.as_str()),
            ("shop-prod", "europe-west1-b")
        );
        assert_eq!(r.resource_type, "gcp:compute/instance", "from the name");
    }

    #[test]
    fn export_ndjson_reads_snake_case_assets() {
        let text = format!(
            "{{\"name\":\"{VM}\",\"asset_type\":\"compute.googleapis.com/Instance\",\
              \"resource\":{{\"version\":\"v1\",\"discovery_name\":\"Instance\",\
              \"data\":{{\"id\":\"8812\",\"name\":\"web-1\",\"labels\":{{\"owner\":\"ana\"}},\
              \"creationTimestamp\":\"2026-01-01\"}},\"location\":\"europe-west1-b\"}},\
              \"ancestors\":[\"projects/123456\",\"folders/7\",\"organizations/9\"],\
              \"update_time\":\"2026-02-01T00:00:00Z\"}}\n\
             {{\"name\":\"//container.googleapis.com/projects/shop-prod/locations/europe-west1/clusters/k1\",\
              \"asset_type\":\"container.googleapis.com/Cluster\",\
              \"resource\":{{\"data\":{{\"resourceLabels\":{{\"team\":\"data\"}}}}}},\
              \"ancestors\":[\"projects/123456\"]}}\n\
             {{\"name\":\"//cloudresourcemanager.googleapis.com/folders/7\",\
              \"asset_type\":\"cloudresourcemanager.googleapis.com/Folder\",\
              \"ancestors\":[\"folders/7\",\"organizations/9\"]}}\n\
             {{\"name\":\"not a name\",\"asset_type\":\"x\"}}\n"
        );
        let parsed = read_export(text.as_bytes(), "e.ndjson").unwrap();
        assert_eq!(parsed.resources.len(), 3);
        let vm = &parsed.resources[0];
        assert_eq!(vm.tag("owner"), Some("ana"));
        assert_eq!((vm.account.as_str(), vm.name.as_str()), ("123456", "web-1"));
        assert_eq!(vm.region, "europe-west1-b");
        assert_eq!(vm.attributes.alt_ids.len(), 1);
        assert_eq!(vm.attributes.created_at.as_deref(), Some("2026-01-01"));
        let gke = &parsed.resources[1];
        assert_eq!(gke.resource_type, "gcp:container/cluster");
        assert_eq!(gke.tag("team"), Some("data"));
        assert_eq!(gke.region, "europe-west1", "from the name");
        let folder = &parsed.resources[2];
        assert_eq!(
            (folder.account.as_str(), folder.region.as_str()),
            ("folders/7", GLOBAL_REGION)
        );
        assert_eq!(parsed.skipped, 1);
        assert_eq!(parsed.first_skipped, "not a name");
        assert!(
            parsed
                .skipped_error()
                .unwrap()
                .contains("full resource name")
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let e = read_export(
            "{\"name\": \"//a.googleapis.com/x/y\"}\n{\"name\": ".as_bytes(),
            "e.ndjson",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("e.ndjson") && e.contains("invalid JSON at line 2"),
            "{e}"
        );
        let e = read_export("{\"labels\": [1]}".as_bytes(), "e.ndjson")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gcloud asset export"), "{e}");
        let e = read_search("[{\"name\": 5}]".as_bytes(), "s.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("search-all-resources"), "{e}");
        let e = read_search("\"text\"".as_bytes(), "s.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("search-all-resources"), "{e}");
    }
}
