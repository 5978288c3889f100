//! AWS Config advanced queries, pure: the `SELECT` Tagwarden sends and what it makes of each
//! result. No I/O here (`config_query` sends the query and pages through the answer).
//!
//! Each result is a JSON string, e.g.
//! `{"resourceId":"i-1","resourceType":"AWS::EC2::Instance","arn":"arn:aws:ec2:…",
//! "accountId":"111111111111","awsRegion":"us-east-1","tags":[{"key":"env","value":"prod"}]}`
//! (`tags` is a list of `{key, value}`; `[]` for a resource that has none). A resource is built
//! from its ARN exactly as from a Tagging API listing, so its id, type and account are the same
//! whichever source listed it; Config's account fills in ARNs without one (S3).

use serde::Deserialize;

use super::config_types::{
    CONFIG_RECORD_TYPES, build_arn, is_config_record, lookup, matches_filters, quoted_list,
    type_condition,
};
use crate::inventory::file::GLOBAL_REGION;
use crate::inventory::id::arn::resource_from_arn;
use crate::inventory::{Resource, Tags};

/// The properties every query selects (the `SELECT *` shorthand leaves `tags` out).
pub(crate) const SELECT: &str =
    "SELECT resourceId, resourceName, resourceType, arn, accountId, awsRegion, tags";

/// The query: every resource, or those of the `--aws-resource-types` filters when each of them
/// is a type Tagwarden knows (otherwise the filters apply to the results, see `Filters`), and
/// with an aggregator and `--regions`, only those regions (and `global`, where IAM lives).
/// Config's own compliance records are never asked for.
pub(crate) fn expression(resource_types: &[String], regions: &[String]) -> String {
    let mut conditions = Vec::new();
    match type_condition(resource_types) {
        Some(types) => conditions.push(types),
        None => conditions.push(format!(
            "NOT resourceType IN ({})",
            quoted_list(CONFIG_RECORD_TYPES)
        )),
    }
    if !regions.is_empty() {
        let mut with_global: Vec<&str> = regions.iter().map(String::as_str).collect();
        if !with_global.contains(&GLOBAL_REGION) {
            with_global.push(GLOBAL_REGION);
        }
        conditions.push(format!("awsRegion IN ({})", quoted_list(&with_global)));
    }
    format!("{SELECT} WHERE {}", conditions.join(" AND "))
}

/// What the results are checked against after the query (the query already asks for this; the
/// check keeps the answer exact whatever the `WHERE` clause could express).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub resource_types: Vec<String>,
    /// Empty: every region. Otherwise these and `global`.
    pub regions: Vec<String>,
}

/// One query result, read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Row {
    /// A resource of the estate.
    Resource {
        /// Boxed: a resource is far larger than the other variants.
        resource: Box<Resource>,
        /// The ARN was built from Config's ids (Config returned none).
        built_arn: bool,
        /// Config's region of the resource (`global` for IAM; S3's own region).
        region: String,
    },
    /// Left out on purpose: a Config compliance record, or outside the filters.
    Excluded,
    /// A resource Tagwarden cannot name: no ARN and none can be built for its type.
    NoArn { config_type: String },
    /// Not a result Tagwarden can read (not JSON, or no type and no ARN).
    Unreadable { reason: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawItem {
    resource_id: Option<String>,
    resource_name: Option<String>,
    resource_type: Option<String>,
    arn: Option<String>,
    account_id: Option<String>,
    aws_region: Option<String>,
    #[serde(default)]
    tags: serde_json::Value,
}

/// Reads one result string.
pub(crate) fn read_row(result: &str, filters: &Filters) -> Row {
    let raw: RawItem = match serde_json::from_str(result) {
        Ok(r) => r,
        Err(e) => {
            return Row::Unreadable {
                reason: format!("not a JSON object: {e}"),
            };
        }
    };
    let config_type = raw.resource_type.clone().unwrap_or_default();
    if is_config_record(&config_type) {
        return Row::Excluded;
    }
    let region = raw
        .aws_region
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| GLOBAL_REGION.to_string());
    if !filters.regions.is_empty() && region != GLOBAL_REGION && !filters.regions.contains(&region)
    {
        return Row::Excluded;
    }
    let account = raw.account_id.clone().unwrap_or_default();
    let (arn, built_arn) = match raw.arn.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => (a.to_string(), false),
        None => match build_arn(
            &config_type,
            raw.resource_id.as_deref(),
            raw.resource_name.as_deref(),
            &region,
            &account,
        ) {
            Some(a) => (a, true),
            None if config_type.is_empty() => {
                return Row::Unreadable {
                    reason: "a result with neither a resource type nor an ARN".into(),
                };
            }
            None => return Row::NoArn { config_type },
        },
    };
    let Some(resource) = resource_from_arn(&arn, tags_of(&raw.tags), GLOBAL_REGION, &account)
    else {
        return Row::Unreadable {
            reason: format!("`{arn}` is not an ARN"),
        };
    };
    if let Some(known) = lookup(&config_type)
        && known.canonical != resource.resource_type
    {
        tracing::debug!(
            %arn,
            config_type,
            table = known.canonical,
            "the ARN gives another type than the Config type table; the ARN's is kept"
        );
    }
    if !matches_filters(&resource.resource_type, &filters.resource_types) {
        return Row::Excluded;
    }
    Row::Resource {
        resource: Box::new(resource),
        built_arn,
        region,
    }
}

/// Config's `tags`: a list of `{key, value}` (each may also carry `tag: "key=value"`). A map
/// `{key: value}` (the shape of configuration items elsewhere in Config) is read too. Anything
/// else is no tags.
fn tags_of(value: &serde_json::Value) -> Tags {
    use serde_json::Value;
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let mut tags = Tags::new();
    match value {
        Value::Array(items) => {
            for item in items {
                let key = text(item.get("key"));
                let value = text(item.get("value"));
                let (key, value) = match (key, value) {
                    (Some(k), v) => (k, v.unwrap_or_default()),
                    (None, _) => match text(item.get("tag"))
                        .as_deref()
                        .and_then(|t| t.split_once('='))
                    {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => continue,
                    },
                };
                if !key.is_empty() {
                    tags.push((key.into(), value.into()));
                }
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if !k.is_empty() {
                    let v = text(Some(v)).unwrap_or_default();
                    tags.push((k.as_str().into(), v.into()));
                }
            }
        }
        _ => {}
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_query_selects_tags_and_leaves_config_records_out() {
        assert_eq!(
            expression(&[], &[]),
            "SELECT resourceId, resourceName, resourceType, arn, accountId, awsRegion, tags \
             WHERE NOT resourceType IN ('AWS::Config::ResourceCompliance', \
             'AWS::Config::ConformancePackCompliance')"
        );
    }

    #[test]
    fn the_query_narrows_to_known_types_and_to_regions_with_global() {
        assert_eq!(
            expression(
                &strings(&["ec2:instance"]),
                &strings(&["us-east-1", "eu-west-1"])
            ),
            format!(
                "{SELECT} WHERE resourceType IN ('AWS::EC2::Instance') AND awsRegion IN \
                 ('us-east-1', 'eu-west-1', 'global')"
            )
        );
        // An unknown filter: every type is asked for (and filtered after).
        assert!(expression(&strings(&["glacier"]), &[]).contains("NOT resourceType IN"));
    }

    fn row(json: serde_json::Value) -> Row {
        read_row(&json.to_string(), &Filters::default())
    }

    #[test]
    fn a_result_becomes_the_resource_its_arn_names() {
        let Row::Resource {
            resource,
            built_arn,
            ..
        } = row(serde_json::json!({
            "resourceId": "i-1", "resourceType": "AWS::EC2::Instance",
            "arn": "arn:aws:ec2:us-east-1:111111111111:instance/i-1",
            "accountId": "111111111111", "awsRegion": "us-east-1",
            "tags": [{"key": "Name", "value": "web", "tag": "Name=web"}, {"key": "env", "value": "prod"}]
        }))
        else {
            panic!("a resource")
        };
        assert!(!built_arn);
        assert_eq!(
            resource.id,
            "arn:aws:ec2:us-east-1:111111111111:instance/i-1"
        );
        assert_eq!(resource.resource_type, "ec2:instance");
        assert_eq!(resource.account, "111111111111");
        assert_eq!(resource.region, "us-east-1");
        assert_eq!(resource.name, "web");
        assert_eq!(resource.tag("env"), Some("prod"));
        assert_eq!(resource.tags.len(), 2);
    }

    #[test]
    fn a_never_tagged_resource_has_no_tags_and_s3_takes_configs_account() {
        let Row::Resource { resource, .. } = row(serde_json::json!({
            "resourceId": "logs", "resourceName": "logs", "resourceType": "AWS::S3::Bucket",
            "arn": "arn:aws:s3:::logs", "accountId": "222222222222", "awsRegion": "eu-west-1",
            "tags": []
        })) else {
            panic!("a resource")
        };
        assert!(resource.tags.is_empty());
        assert_eq!(resource.account, "222222222222");
        // As from the Tagging API: an ARN without a region is global.
        assert_eq!(resource.region, GLOBAL_REGION);
        assert_eq!(resource.resource_type, "s3:bucket");
        // No `tags` at all is no tags too.
        let Row::Resource { resource, .. } = row(serde_json::json!({
            "resourceType": "AWS::S3::Bucket", "arn": "arn:aws:s3:::b", "accountId": "2"
        })) else {
            panic!("a resource")
        };
        assert!(resource.tags.is_empty());
    }

    #[test]
    fn tags_in_other_shapes() {
        let t = tags_of(&serde_json::json!([
            {"tag": "team=a"}, {"key": "n", "value": 3}, {"key": "", "value": "x"}, {"key": "k"}
        ]));
        assert_eq!(
            t,
            vec![
                ("team".into(), "a".into()),
                ("n".into(), "3".into()),
                ("k".into(), "".into())
            ]
        );
        let t = tags_of(&serde_json::json!({"env": "prod"}));
        assert_eq!(t, vec![("env".into(), "prod".into())]);
        assert!(tags_of(&serde_json::Value::Null).is_empty());
        assert!(tags_of(&serde_json::json!("env=prod")).is_empty());
    }

    #[test]
    fn a_missing_arn_is_built_when_the_type_allows_and_counted_otherwise() {
        let Row::Resource {
            resource,
            built_arn,
            ..
        } = row(serde_json::json!({
            "resourceId": "vol-9", "resourceType": "AWS::EC2::Volume",
            "accountId": "111111111111", "awsRegion": "eu-west-1", "tags": []
        }))
        else {
            panic!("a resource")
        };
        assert!(built_arn);
        assert_eq!(
            resource.id,
            "arn:aws:ec2:eu-west-1:111111111111:volume/vol-9"
        );
        assert_eq!(resource.resource_type, "ec2:volume");
        assert_eq!(
            row(serde_json::json!({"resourceId": "q", "resourceType": "AWS::SQS::Queue"})),
            Row::NoArn {
                config_type: "AWS::SQS::Queue".into()
            }
        );
        assert!(matches!(
            row(serde_json::json!({"resourceId": "q"})),
            Row::Unreadable { .. }
        ));
        assert!(matches!(
            read_row("not json", &Filters::default()),
            Row::Unreadable { .. }
        ));
        assert!(matches!(
            row(serde_json::json!({"resourceType": "AWS::EC2::Instance", "arn": "i-1"})),
            Row::Unreadable { .. }
        ));
    }

    #[test]
    fn config_records_and_rows_outside_the_filters_are_excluded() {
        assert_eq!(
            row(serde_json::json!({
                "resourceType": "AWS::Config::ResourceCompliance",
                "arn": "arn:aws:config:us-east-1:1:resource-compliance/x"
            })),
            Row::Excluded
        );
        let filters = Filters {
            resource_types: strings(&["ec2"]),
            regions: strings(&["us-east-1"]),
        };
        let read = |json: serde_json::Value| read_row(&json.to_string(), &filters);
        let instance = |region: &str| {
            serde_json::json!({
                "resourceType": "AWS::EC2::Instance", "awsRegion": region,
                "arn": format!("arn:aws:ec2:{region}:1:instance/i-1")
            })
        };
        assert!(matches!(read(instance("us-east-1")), Row::Resource { .. }));
        assert_eq!(read(instance("eu-west-1")), Row::Excluded);
        assert_eq!(
            read(serde_json::json!({
                "resourceType": "AWS::S3::Bucket", "awsRegion": "us-east-1", "arn": "arn:aws:s3:::b"
            })),
            Row::Excluded
        );
        // Global resources are in every region's listing.
        let filters = Filters {
            resource_types: Vec::new(),
            regions: strings(&["us-east-1"]),
        };
        assert!(matches!(
            read_row(
                &serde_json::json!({
                    "resourceType": "AWS::IAM::Role", "awsRegion": "global",
                    "arn": "arn:aws:iam::1:role/r"
                })
                .to_string(),
                &filters
            ),
            Row::Resource { .. }
        ));
    }
}
