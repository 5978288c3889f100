//! One resource as Resource Explorer lists it, and the pure rules that read it: tags from the
//! `tags` property (present only when the view includes tags), the region (`global` or empty
//! for global resources) and the scan's region and type filters.

use aws_smithy_types::Document;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::inventory::Tags;
use crate::inventory::file::GLOBAL_REGION;

/// A listed resource, as kept in the shared cache (unfiltered, so one listing serves any
/// region or type filter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub arn: CompactString,
    /// The resource's region; `global` for global resources.
    pub region: CompactString,
    /// Resource Explorer's type, `service:type` (`ec2:instance`, `s3:bucket`).
    pub resource_type: CompactString,
    /// The tags, when the view includes them (`None`: the view shows no tags property).
    pub tags: Option<Tags>,
}

/// Resource Explorer's region for a resource: empty (or `global`) means a global resource.
pub(crate) fn region_of(region: Option<&str>) -> CompactString {
    match region {
        None | Some("") => GLOBAL_REGION.into(),
        Some(r) => r.into(),
    }
}

/// The tags in a resource's `tags` property (`Data` is a list of `{Key, Value}`); `None` when
/// the property is absent or not of that shape. Entries without a string `Key` are skipped; a
/// missing `Value` is an empty one.
pub(crate) fn tags_from_property(data: &Document) -> Option<Tags> {
    let list = data.as_array()?;
    let mut tags = Tags::with_capacity(list.len());
    for item in list {
        let Some(object) = item.as_object() else {
            continue;
        };
        let Some(key) = object.get("Key").and_then(Document::as_string) else {
            continue;
        };
        let value = object
            .get("Value")
            .and_then(Document::as_string)
            .unwrap_or_default();
        tags.push((key.into(), value.into()));
    }
    Some(tags)
}

/// Whether the scan wants this resource: in a scanned region (global resources always), and of
/// one of the type filters when there are any (`ec2:instance` exactly, or `ec2` for the whole
/// service, as the Tagging API's `ResourceTypeFilters`).
pub(crate) fn wanted(entry: &Entry, regions: &[String], type_filters: &[String]) -> bool {
    let in_region = entry.region == GLOBAL_REGION || regions.iter().any(|r| entry.region == r);
    if !in_region {
        return false;
    }
    if type_filters.is_empty() {
        return true;
    }
    let service = entry
        .resource_type
        .split_once(':')
        .map_or(entry.resource_type.as_str(), |(s, _)| s);
    type_filters
        .iter()
        .any(|f| f == entry.resource_type.as_str() || f == service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn s(v: &str) -> Document {
        Document::String(v.into())
    }

    fn tag(k: &str, v: &str) -> Document {
        Document::Object(HashMap::from([
            ("Key".to_string(), s(k)),
            ("Value".to_string(), s(v)),
        ]))
    }

    fn entry(region: &str, resource_type: &str) -> Entry {
        Entry {
            arn: "arn:aws:ec2:us-east-1:1:volume/v".into(),
            region: region.into(),
            resource_type: resource_type.into(),
            tags: None,
        }
    }

    fn regions() -> Vec<String> {
        vec!["us-east-1".into(), "eu-west-1".into()]
    }

    #[test]
    fn tags_come_from_the_key_value_list() {
        let data = Document::Array(vec![
            tag("Environment", "production"),
            tag("Owner", ""),
            Document::Object(HashMap::from([("Key".to_string(), s("NoValue"))])),
            Document::Object(HashMap::from([("Value".to_string(), s("no key"))])),
            s("not an object"),
        ]);
        let tags = tags_from_property(&data).unwrap();
        assert_eq!(
            tags,
            vec![
                ("Environment".into(), "production".into()),
                ("Owner".into(), "".into()),
                ("NoValue".into(), "".into()),
            ]
        );
        assert_eq!(tags_from_property(&Document::Array(vec![])), Some(vec![]));
        assert_eq!(tags_from_property(&s("x")), None);
        assert_eq!(tags_from_property(&Document::Null), None);
    }

    #[test]
    fn empty_and_global_regions_are_global() {
        assert_eq!(region_of(None), GLOBAL_REGION);
        assert_eq!(region_of(Some("")), GLOBAL_REGION);
        assert_eq!(region_of(Some("global")), GLOBAL_REGION);
        assert_eq!(region_of(Some("eu-west-1")), "eu-west-1");
    }

    #[test]
    fn only_scanned_regions_and_global_resources_are_kept() {
        assert!(wanted(&entry("us-east-1", "ec2:volume"), &regions(), &[]));
        assert!(wanted(&entry("eu-west-1", "ec2:volume"), &regions(), &[]));
        assert!(wanted(&entry("global", "iam:role"), &regions(), &[]));
        assert!(!wanted(&entry("ap-south-1", "ec2:volume"), &regions(), &[]));
        assert!(!wanted(&entry("us-east-1", "ec2:volume"), &[], &[]));
    }

    #[test]
    fn type_filters_match_a_type_or_a_whole_service() {
        let filters = vec!["ec2:instance".to_string(), "s3".to_string()];
        assert!(wanted(
            &entry("us-east-1", "ec2:instance"),
            &regions(),
            &filters
        ));
        assert!(wanted(
            &entry("us-east-1", "s3:bucket"),
            &regions(),
            &filters
        ));
        assert!(!wanted(
            &entry("us-east-1", "ec2:volume"),
            &regions(),
            &filters
        ));
        assert!(!wanted(
            &entry("us-east-1", "s3express:bucket"),
            &regions(),
            &filters
        ));
        assert!(!wanted(
            &entry("us-east-1", "ec2"),
            &regions(),
            &["ec2:instance".to_string()]
        ));
        assert!(wanted(
            &entry("us-east-1", "ec2"),
            &regions(),
            &["ec2".to_string()]
        ));
    }
}
