//! Azure Resource Graph exports as inventory files: every resource of the subscriptions the
//! query covered, tagged or not (`Resources` lists them all, unlike AWS's Tagging API).
//!
//! Three shapes are read, streamed row by row: `az graph query -o json` of resource-graph
//! extension 2.x (`{"count", "data": [...], "skip_token", "total_records"}`), the bare array
//! extension 1.x printed, and the REST response (`{"totalRecords", "count", "resultTruncated",
//! "$skipToken", "data", "facets"}`). Rows carry `id, name, type, location, resourceGroup,
//! subscriptionId, tags` (`tags` an object or `null`); only `id` is required.
//!
//! Pages: one query's pages share `total_records`. When the files given hold fewer distinct
//! rows of a query than its total and a page has a skip token, the next page was not given:
//! the inventory is partial and coverage says which file and how to fetch the rest
//! ([`paging_failures`]). The skip token itself cannot tell which file is the next page (a page
//! does not repeat the token that fetched it), so counting rows is the check.

use std::io::Read;

use arcstr::ArcStr;
use compact_str::CompactString;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::format::ParsedFile;
use super::id::azure::{AzureId, canonical_type, join_key};
use super::{
    Attrs, CoverageFailure, Interner, InventoryError, Provider, Resource, Tags, normalise_tags,
};
use crate::inventory::file::GLOBAL_REGION;

/// One row of a Resource Graph `Resources` query. Columns beyond these are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Row {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<ArcStr>,
    #[serde(default, rename = "type")]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub location: Option<ArcStr>,
    #[serde(default, rename = "subscriptionId")]
    pub subscription_id: Option<ArcStr>,
    #[serde(default, deserialize_with = "tag_object")]
    pub tags: Tags,
}

/// `tags`: an object of names to values, or `null` (a resource never tagged). Values are
/// strings; anything else is kept as its JSON text, `null` as empty.
fn tag_object<'de, D: Deserializer<'de>>(d: D) -> Result<Tags, D::Error> {
    let map = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?;
    Ok(map.map(json_tags).unwrap_or_default())
}

/// Tags from a JSON object (Azure tags, GCP labels): string values as they are, `null` as
/// empty, other values as their JSON text.
pub(crate) fn json_tags(map: serde_json::Map<String, serde_json::Value>) -> Tags {
    map.into_iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => ArcStr::from(s),
                serde_json::Value::Null => ArcStr::default(),
                other => ArcStr::from(other.to_string()),
            };
            (ArcStr::from(k), value)
        })
        .collect()
}

/// The resource a row describes, or why it cannot be one. Pure.
///
/// Type from `type` (else the id), account from `subscriptionId` (else the id), region from
/// `location` in lower case (`global` when absent or empty), name from `name` (else the id's
/// last segment).
pub(crate) fn resource_from_row(row: Row) -> Result<Resource, String> {
    let Some(id) = row.id.filter(|id| !id.trim().is_empty()) else {
        return Err("(no id)".to_string());
    };
    let Some(parsed) = AzureId::parse(&id) else {
        return Err(id);
    };
    let resource_type = match row.resource_type.as_deref().map(canonical_type) {
        Some(t) if !t.is_empty() => t,
        _ => parsed.resource_type.clone(),
    };
    let non_empty = |v: Option<ArcStr>| v.filter(|s| !s.trim().is_empty());
    let account = non_empty(row.subscription_id).unwrap_or_else(|| parsed.subscription.into());
    let region = non_empty(row.location)
        .map_or_else(|| GLOBAL_REGION.into(), |l| l.to_ascii_lowercase().into());
    let name = non_empty(row.name).unwrap_or_else(|| parsed.name.into());
    Ok(Resource {
        id: CompactString::from(id.as_str()),
        provider: Provider::Azure,
        account,
        region,
        resource_type: resource_type.as_str().into(),
        name,
        tags: normalise_tags(row.tags),
        attributes: Attrs::default(),
    })
}

/// What a file says about the query it is a page of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Paging {
    /// `skip_token` / `$skipToken`: more rows follow this page.
    pub skip_token: Option<String>,
    /// `total_records` / `totalRecords`: rows the query matched, over all pages.
    pub total_records: Option<u64>,
    /// `resultTruncated: true`: Resource Graph cut the result short.
    pub truncated: bool,
    /// Case-insensitive hashes of the ids of the rows in this file, skipped rows counted in
    /// `rows_without_id`: what the page check counts.
    pub id_hashes: FxHashSet<u64>,
    pub rows_without_id: u64,
}

/// Reads one export (any of the three shapes) from `reader`. `name` names the file in errors.
pub(crate) fn read<R: Read>(reader: R, name: &str) -> Result<(ParsedFile, Paging), InventoryError> {
    let mut sink = RowSink::default();
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = de
        .deserialize_any(TopVisitor { sink: &mut sink })
        .and_then(|()| de.end());
    parsed.map_err(|e| InventoryError::FileFormat {
        file: name.to_string(),
        reason: if e.is_syntax() || e.is_eof() {
            format!("invalid JSON at line {}, column {}", e.line(), e.column())
        } else {
            format!(
                "{e}; expected `az graph query -q \"Resources | project id, name, type, \
                 location, resourceGroup, subscriptionId, tags\" -o json` output ({{\"data\": \
                 [...], \"skip_token\": ...}}, a bare array of rows, or the REST response with \
                 `data` as an array of objects)"
            )
        },
    })?;
    let paging = Paging {
        skip_token: sink.skip_token.filter(|t| !t.is_empty()),
        total_records: sink.total_records,
        truncated: sink.truncated,
        id_hashes: sink.id_hashes,
        rows_without_id: sink.parsed.skipped as u64,
    };
    let mut parsed = sink.parsed;
    parsed.skip_reason = "`id` is not an Azure resource id (/subscriptions/...)";
    Ok((parsed, paging))
}

#[derive(Default)]
struct RowSink {
    parsed: ParsedFile,
    skip_token: Option<String>,
    total_records: Option<u64>,
    truncated: bool,
    id_hashes: FxHashSet<u64>,
    texts: Interner,
}

impl RowSink {
    fn push(&mut self, row: Row) {
        match resource_from_row(row) {
            Ok(r) => {
                let r = self.texts.share(r);
                if let Some(key) = join_key(&r.id) {
                    self.id_hashes.insert(hash_of(&key));
                }
                self.parsed.resources.push(r);
            }
            Err(id) => self.parsed.skip(&id),
        }
    }
}

fn hash_of(text: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(text)
}

/// The top level: an object (az 2.x, REST) or an array of rows (az 1.x).
struct TopVisitor<'a> {
    sink: &'a mut RowSink,
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Resource Graph result: an object with `data`, or an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        RowsVisitor { sink: self.sink }.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut saw_data = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "data" => {
                    saw_data = true;
                    map.next_value_seed(RowsVisitor {
                        sink: &mut *self.sink,
                    })?;
                }
                "skip_token" | "$skipToken" => {
                    self.sink.skip_token = map.next_value::<Option<String>>()?;
                }
                "total_records" | "totalRecords" => {
                    self.sink.total_records = map.next_value::<Option<u64>>()?;
                }
                "resultTruncated" => {
                    self.sink.truncated = map.next_value::<Truncated>()?.0;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if saw_data {
            Ok(())
        } else {
            Err(serde::de::Error::custom("the object has no `data` member"))
        }
    }
}

/// `resultTruncated`: the REST API writes `"true"`/`"false"`; a boolean is taken too.
struct Truncated(bool);

impl<'de> Deserialize<'de> for Truncated {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
            Null(()),
        }
        Ok(Truncated(match Raw::deserialize(d)? {
            Raw::B(b) => b,
            Raw::S(s) => s.eq_ignore_ascii_case("true"),
            Raw::Null(()) => false,
        }))
    }
}

/// `data`: an array of row objects, streamed.
struct RowsVisitor<'a> {
    sink: &'a mut RowSink,
}

impl<'de> DeserializeSeed<'de> for RowsVisitor<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows ({id, name, type, location, subscriptionId, tags})")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<Row>()? {
            self.sink.push(row);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom(
            "`data` is a table ({columns, rows}); ask Resource Graph for the objectArray \
             result format (the default of `az graph query` and of API version 2021-03-01 \
             and later)",
        ))
    }
}

/// One file's paging, for [`paging_failures`].
pub(crate) struct FilePaging<'a> {
    pub file: &'a str,
    pub paging: &'a Paging,
}

/// The pages missing from the files given, as coverage failures (pure). A file whose result
/// was truncated fails; so does every file of a query (files sharing `total_records`) whose
/// distinct rows fall short of the total, naming the skip token to fetch the next page with.
/// A file with a skip token and no total cannot be checked: it is reported too.
pub(crate) fn paging_failures(files: &[FilePaging<'_>]) -> Vec<CoverageFailure> {
    let mut failures = Vec::new();
    for f in files.iter().filter(|f| f.paging.truncated) {
        failures.push(CoverageFailure {
            scope: format!("file {}", f.file),
            reason: "Resource Graph truncated this result (resultTruncated: true); project \
                     `id` and page with --first and --skip-token, then pass every page"
                .to_string(),
        });
    }
    let mut queries: FxHashMap<u64, Vec<&FilePaging<'_>>> = FxHashMap::default();
    for f in files {
        match f.paging.total_records {
            Some(total) => queries.entry(total).or_default().push(f),
            None if f.paging.skip_token.is_some() => failures.push(CoverageFailure {
                scope: format!("file {}", f.file),
                reason: format!(
                    "this export has more pages: it has a skip token and no total_records to \
                     check the other files against; fetch the next page with `az graph query \
                     ... --skip-token {}` and pass every page",
                    clip(f.paging.skip_token.as_deref().unwrap_or_default())
                ),
            }),
            None => {}
        }
    }
    let mut totals: Vec<u64> = queries.keys().copied().collect();
    totals.sort_unstable();
    for total in totals {
        let pages = &queries[&total];
        let mut ids: FxHashSet<u64> = FxHashSet::default();
        let mut without_id = 0;
        for p in pages {
            ids.extend(p.paging.id_hashes.iter().copied());
            without_id += p.paging.rows_without_id;
        }
        let given = ids.len() as u64 + without_id;
        if given >= total {
            continue;
        }
        let with_token: Vec<&&FilePaging<'_>> = pages
            .iter()
            .filter(|p| p.paging.skip_token.is_some())
            .collect();
        let blamed: Vec<&&FilePaging<'_>> = if with_token.is_empty() {
            pages.iter().collect()
        } else {
            with_token
        };
        for p in blamed {
            let next = match &p.paging.skip_token {
                Some(token) => format!(
                    "fetch the next page with `az graph query -q \"<the same query>\" --first \
                     1000 --skip-token {}`",
                    clip(token)
                ),
                None => "export the query again with --first and --skip-token".to_string(),
            };
            failures.push(CoverageFailure {
                scope: format!("file {}", p.file),
                reason: format!(
                    "this export has more pages: the files of this query hold {given} of its \
                     {total} records; {next} and pass every page (--inventory a.json,b.json)"
                ),
            });
        }
    }
    failures
}

/// A skip token, cut short for messages (they are long base64 strings).
fn clip(token: &str) -> String {
    let mut cut: String = token.chars().take(24).collect();
    if cut.len() < token.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "/subscriptions/sub-1/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01";

    fn read_text(text: &str) -> Result<(ParsedFile, Paging), InventoryError> {
        read(text.as_bytes(), "x.json")
    }

    #[test]
    fn the_three_shapes_read_alike() {
        let row = format!(
            r#"{{"id": "{VM}", "name": "vm-web-01", "type": "microsoft.compute/virtualmachines",
               "location": "westeurope", "resourceGroup": "rg-web", "subscriptionId": "sub-1",
               "tags": {{"Owner": "ana", "env": "prod"}}}}"#
        );
        let cli =
            format!(r#"{{"count": 1, "data": [{row}], "skip_token": "tok", "total_records": 3}}"#);
        let bare = format!("[{row}]");
        let rest = format!(
            r#"{{"totalRecords": 3, "count": 1, "resultTruncated": "false", "$skipToken": null,
               "data": [{row}], "facets": []}}"#
        );
        for text in [&cli, &bare, &rest] {
            let (parsed, _) = read_text(text).unwrap();
            assert_eq!(parsed.resources.len(), 1, "{text}");
            let r = &parsed.resources[0];
            assert_eq!(r.id, VM);
            assert_eq!(r.provider, Provider::Azure);
            assert_eq!(r.resource_type, "azure:compute/virtualmachines");
            assert_eq!(
                (r.account.as_str(), r.region.as_str()),
                ("sub-1", "westeurope")
            );
            assert_eq!(r.name, "vm-web-01");
            assert_eq!(r.tag("Owner"), Some("ana"));
            assert_eq!(r.tag("env"), Some("prod"));
        }
        let (_, p) = read_text(&cli).unwrap();
        assert_eq!(
            (p.skip_token.as_deref(), p.total_records),
            (Some("tok"), Some(3))
        );
        let (_, p) = read_text(&rest).unwrap();
        assert_eq!(
            (p.skip_token, p.total_records, p.truncated),
            (None, Some(3), false)
        );
        let (_, p) = read_text(&bare).unwrap();
        assert_eq!(
            p,
            Paging {
                id_hashes: p.id_hashes.clone(),
                ..Paging::default()
            }
        );
    }

    #[test]
    fn null_tags_missing_columns_and_bad_ids() {
        let text = format!(
            r#"[{{"id": "{VM}", "tags": null}},
               {{"id": "/SUBSCRIPTIONS/sub-2/resourcegroups/rg/providers/microsoft.sql/servers/s1/databases/db1",
                 "location": "", "tags": {{"n": 5, "e": null}}}},
               {{"id": "not-an-azure-id", "tags": {{}}}},
               {{"name": "no id at all"}}]"#
        );
        let (parsed, paging) = read_text(&text).unwrap();
        assert_eq!(parsed.resources.len(), 2);
        let vm = &parsed.resources[0];
        assert!(vm.tags.is_empty(), "null tags are no tags");
        assert_eq!(
            vm.resource_type, "azure:compute/virtualmachines",
            "type from the id"
        );
        assert_eq!(
            (vm.account.as_str(), vm.region.as_str()),
            ("sub-1", GLOBAL_REGION)
        );
        assert_eq!(vm.name, "vm-web-01");
        let db = &parsed.resources[1];
        assert_eq!(db.resource_type, "azure:sql/servers/databases");
        assert_eq!(db.tag("n"), Some("5"));
        assert_eq!(db.tag("e"), Some(""));
        assert_eq!(parsed.skipped, 2);
        assert_eq!(parsed.first_skipped, "not-an-azure-id");
        assert_eq!(paging.rows_without_id, 2);
        assert_eq!(paging.id_hashes.len(), 2);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let cases = [
            ("{\"data\": [", "invalid JSON at line 1"),
            ("{\"count\": 1}", "no `data` member"),
            ("{\"data\": {\"columns\": [], \"rows\": []}}", "objectArray"),
            ("{\"data\": [{\"id\": 5}]}", "az graph query"),
            ("[{\"id\": \"x\", \"tags\": [1]}]", "expected"),
        ];
        for (text, needle) in cases {
            let e = read_text(text).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("x.json"), "{text}: {e}");
        }
    }

    fn paging(token: Option<&str>, total: Option<u64>, ids: &[&str]) -> Paging {
        Paging {
            skip_token: token.map(String::from),
            total_records: total,
            truncated: false,
            id_hashes: ids
                .iter()
                .map(|i| hash_of(&i.to_ascii_lowercase()))
                .collect(),
            rows_without_id: 0,
        }
    }

    #[test]
    fn a_missing_next_page_is_a_failure() {
        let first = paging(Some("tok-2"), Some(4), &["/a", "/b"]);
        let second = paging(None, Some(4), &["/c", "/D"]);
        let whole = [
            FilePaging {
                file: "p1.json",
                paging: &first,
            },
            FilePaging {
                file: "p2.json",
                paging: &second,
            },
        ];
        assert!(paging_failures(&whole).is_empty(), "both pages given");
        let alone = paging_failures(&whole[..1]);
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0].scope, "file p1.json");
        assert!(
            alone[0].reason.starts_with("this export has more pages")
                && alone[0].reason.contains("2 of its 4 records")
                && alone[0].reason.contains("--skip-token tok-2"),
            "{}",
            alone[0].reason
        );
        // The same page twice is not two pages; ids count whatever their case.
        let again = paging(Some("tok-2"), Some(4), &["/A", "/B"]);
        let twice = [
            FilePaging {
                file: "p1.json",
                paging: &first,
            },
            FilePaging {
                file: "p1-copy.json",
                paging: &again,
            },
        ];
        assert_eq!(paging_failures(&twice).len(), 2);
        // Another query (another total) does not stand in for the missing page.
        let other = paging(None, Some(2), &["/x", "/y"]);
        let mixed = [
            FilePaging {
                file: "p1.json",
                paging: &first,
            },
            FilePaging {
                file: "other.json",
                paging: &other,
            },
        ];
        assert_eq!(paging_failures(&mixed).len(), 1);
        // No total to count against: reported; no token and no total (az 1.x): nothing to say.
        let untold = paging(Some("t"), None, &["/a"]);
        let bare = paging(None, None, &["/a"]);
        let f = paging_failures(&[
            FilePaging {
                file: "u.json",
                paging: &untold,
            },
            FilePaging {
                file: "bare.json",
                paging: &bare,
            },
        ]);
        assert_eq!(f.len(), 1);
        assert!(f[0].reason.contains("no total_records"), "{}", f[0].reason);
    }

    #[test]
    fn a_truncated_result_is_a_failure() {
        let text = r#"{"totalRecords": 1, "count": 1, "resultTruncated": "true", "$skipToken": null,
                       "data": [{"id": "/subscriptions/s/resourceGroups/rg"}]}"#;
        let (parsed, p) = read_text(text).unwrap();
        assert!(p.truncated);
        assert_eq!(
            parsed.resources[0].resource_type,
            "azure:resources/subscriptions/resourcegroups"
        );
        let f = paging_failures(&[FilePaging {
            file: "t.json",
            paging: &p,
        }]);
        assert_eq!(f.len(), 1);
        assert!(f[0].reason.contains("resultTruncated"), "{}", f[0].reason);
    }
}
