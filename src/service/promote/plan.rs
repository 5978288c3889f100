//! The promotion diff, pure: from the approved virtual tags and the tags AWS holds now, what to
//! write on each ARN (adds, and changes only where a virtual tag says `override_native`), what
//! to leave (with why), and a fingerprint of those inputs so an apply can tell that nothing
//! moved since the plan was approved.
//!
//! Rules, in order, per virtual tag: only AWS ARNs; never an `aws:` key (reserved, AWS refuses
//! it); key 1–128 and value 0–256 characters; a native value equal to the virtual one needs no
//! write (`already_native`); a different native value is kept unless the tag overrides it;
//! and a resource whose user tags would pass 50 is left whole (AWS would refuse the call).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::inventory::aws::writer::{LiveTags, MAX_TAGS_PER_WRITE};
use crate::store::virtual_tags::ActiveTag;

/// Longest tag key and value AWS accepts (characters).
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

/// What one ARN gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Entry {
    pub arn: String,
    /// The account in the ARN (empty for S3 buckets).
    pub account: String,
    /// The region the write goes to (the ARN's; the default region for S3 buckets).
    pub region: String,
    /// Tags to write, key → value (additions and changes).
    pub tags: BTreeMap<String, String>,
    /// Of those, the native values they replace (key → current value): only tags whose
    /// virtual tag says `override_native`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replaces: BTreeMap<String, String>,
    /// The virtual tags written here, promoted once the write is verified.
    pub virtual_tag_ids: Vec<i64>,
}

/// Why a virtual tag is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SkipReason {
    /// Not an AWS ARN: only AWS tags are written.
    NotAws,
    /// An `aws:` key: reserved by AWS, never written.
    ReservedKey,
    /// The key is empty or longer than 128 characters.
    InvalidKey,
    /// The value is longer than 256 characters.
    InvalidValue,
    /// AWS already holds this value (no write; the virtual tag is promoted at apply).
    AlreadyNative,
    /// AWS holds another value and the virtual tag does not override native values.
    NativeValueKept,
    /// The resource would carry more than 50 user tags.
    TooManyTags,
}

/// A virtual tag the plan leaves, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Skipped {
    pub arn: String,
    pub key: String,
    pub value: String,
    pub virtual_tag_id: i64,
    pub reason: SkipReason,
    /// The native value, when one decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_value: Option<String>,
}

/// The diff: entries by ARN, and the tags left.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Diff {
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

/// The account and region of an AWS ARN (`arn:partition:service:region:account:resource`);
/// None for anything else.
pub(crate) fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(_)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if partition.is_empty() || service.is_empty() {
        return None;
    }
    Some((service, region, account))
}

/// Where a resource lives when its ARN does not say (S3 buckets): account and region, from
/// the inventory that listed it.
pub(crate) type Homes = BTreeMap<String, (String, String)>;

/// Where an ARN is written and read: its account and region from the ARN, else from `homes`
/// (S3 buckets: the region the scan found the bucket in, since the Tagging API lists and tags
/// a bucket in its own region), else `default_region`. None for anything but an AWS ARN.
pub(crate) fn place(arn: &str, homes: &Homes, default_region: &str) -> Option<(String, String)> {
    let (_, region, account) = arn_parts(arn)?;
    let home = homes.get(arn);
    let account = if account.is_empty() {
        home.map(|h| h.0.clone()).unwrap_or_default()
    } else {
        account.to_string()
    };
    let region = match (region, home) {
        ("", Some((_, r))) if !r.is_empty() => r.clone(),
        ("", _) => default_region.to_string(),
        (r, _) => r.to_string(),
    };
    Some((account, region))
}

/// The diff of `active` (approved virtual tags, any order) against `native` (what AWS holds
/// per ARN; an ARN it did not list holds nothing). Entries and skipped tags come sorted by
/// ARN, then key. `accounts` and `default_region` as for `place`.
pub(crate) fn diff(
    active: &[ActiveTag],
    native: &LiveTags,
    homes: &Homes,
    default_region: &str,
) -> Diff {
    let mut by_arn: BTreeMap<&str, Vec<&ActiveTag>> = BTreeMap::new();
    for t in active {
        by_arn.entry(t.resource_id.as_str()).or_default().push(t);
    }
    let empty = BTreeMap::new();
    let mut out = Diff::default();
    for (arn, mut tags) in by_arn {
        tags.sort_by(|a, b| a.key.cmp(&b.key).then(a.id.cmp(&b.id)));
        let skip = |t: &ActiveTag, reason, native_value: Option<&String>| Skipped {
            arn: arn.to_string(),
            key: t.key.clone(),
            value: t.value.clone(),
            virtual_tag_id: t.id,
            reason,
            native_value: native_value.cloned(),
        };
        let Some((account, region)) = place(arn, homes, default_region) else {
            out.skipped
                .extend(tags.iter().map(|t| skip(t, SkipReason::NotAws, None)));
            continue;
        };
        let held = native.get(arn).unwrap_or(&empty);
        let mut entry = Entry {
            arn: arn.to_string(),
            account,
            region,
            tags: BTreeMap::new(),
            replaces: BTreeMap::new(),
            virtual_tag_ids: Vec::new(),
        };
        let mut left = Vec::new();
        for t in tags {
            let current = held.get(&t.key);
            let reason = if t.key.to_ascii_lowercase().starts_with("aws:") {
                Some(SkipReason::ReservedKey)
            } else if t.key.is_empty() || t.key.chars().count() > MAX_KEY_CHARS {
                Some(SkipReason::InvalidKey)
            } else if t.value.chars().count() > MAX_VALUE_CHARS {
                Some(SkipReason::InvalidValue)
            } else {
                match current {
                    Some(v) if *v == t.value => Some(SkipReason::AlreadyNative),
                    Some(_) if !t.override_native => Some(SkipReason::NativeValueKept),
                    _ => None,
                }
            };
            match reason {
                Some(r) => left.push(skip(t, r, current)),
                None => {
                    if let Some(old) = current {
                        entry.replaces.insert(t.key.clone(), old.clone());
                    }
                    entry.tags.insert(t.key.clone(), t.value.clone());
                    entry.virtual_tag_ids.push(t.id);
                }
            }
        }
        let user_tags = held
            .keys()
            .filter(|k| !k.to_ascii_lowercase().starts_with("aws:"))
            .count();
        let added = entry.tags.len() - entry.replaces.len();
        if user_tags + added > MAX_TAGS_PER_WRITE {
            for (key, value) in &entry.tags {
                if let Some(t) = active
                    .iter()
                    .find(|t| t.resource_id == arn && &t.key == key && &t.value == value)
                {
                    left.push(skip(t, SkipReason::TooManyTags, held.get(key)));
                }
            }
            entry.tags.clear();
        }
        left.sort_by(|a, b| a.key.cmp(&b.key));
        out.skipped.extend(left);
        if !entry.tags.is_empty() {
            out.entries.push(entry);
        }
    }
    out
}

/// SHA-256 (hex) of the plan's inputs: the selection, the approved virtual tags chosen, and
/// the native tags of their ARNs. Any change to one of them changes it.
pub(crate) fn fingerprint(selection: &str, active: &[ActiveTag], native: &LiveTags) -> String {
    let mut tags: Vec<(&str, &str, &str, bool, i64)> = active
        .iter()
        .map(|t| {
            (
                t.resource_id.as_str(),
                t.key.as_str(),
                t.value.as_str(),
                t.override_native,
                t.id,
            )
        })
        .collect();
    tags.sort();
    let native: BTreeMap<&str, &BTreeMap<String, String>> = tags
        .iter()
        .filter_map(|(arn, ..)| native.get(*arn).map(|n| (*arn, n)))
        .collect();
    let inputs = serde_json::json!({
        "selection": selection,
        "virtual_tags": tags,
        "native": native,
    });
    hex::encode(Sha256::digest(inputs.to_string().as_bytes()))
}

/// The IAM actions a write of these ARNs needs: the Tagging API's, plus each service's own.
pub(crate) fn iam_actions<'a>(arns: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut actions = std::collections::BTreeSet::from([
        "tag:GetResources".to_string(),
        "tag:TagResources".to_string(),
    ]);
    for arn in arns {
        let Some((service, ..)) = arn_parts(arn) else {
            continue;
        };
        let own: &[&str] = match service {
            "ec2" => &["ec2:CreateTags"],
            // RGTA merges into S3's replace-all tag set: it reads, then writes the whole set.
            "s3" => &["s3:GetBucketTagging", "s3:PutBucketTagging"],
            "rds" => &["rds:AddTagsToResource"],
            "sqs" => &["sqs:TagQueue"],
            "elasticloadbalancing" => &["elasticloadbalancing:AddTags"],
            "elasticache" => &["elasticache:AddTagsToResource"],
            "efs" | "elasticfilesystem" => &["elasticfilesystem:TagResource"],
            _ => &[],
        };
        if own.is_empty() {
            actions.insert(format!("{service}:TagResource"));
        } else {
            actions.extend(own.iter().map(|a| a.to_string()));
        }
    }
    actions.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: i64, arn: &str, key: &str, value: &str, over: bool) -> ActiveTag {
        ActiveTag {
            id,
            resource_id: arn.into(),
            key: key.into(),
            value: value.into(),
            override_native: over,
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const EC2: &str = "arn:aws:ec2:eu-west-1:111111111111:instance/i-1";
    const S3: &str = "arn:aws:s3:::bucket-a";

    #[test]
    fn adds_changes_only_on_override_and_never_aws_keys() {
        let active = vec![
            tag(1, EC2, "CostCenter", "CC-1000", false),
            tag(2, EC2, "Owner", "team-a", false),
            tag(3, EC2, "Environment", "production", true),
            tag(4, EC2, "aws:cloudformation:stack-name", "x", true),
            tag(5, EC2, "AWS:Thing", "x", false),
            tag(6, S3, "CostCenter", "CC-2000", false),
            tag(7, S3, "Owner", "team-b", false),
            tag(8, "/subscriptions/s/resourceGroups/g", "Owner", "x", false),
            tag(9, EC2, &"k".repeat(129), "x", false),
            tag(10, EC2, "Long", &"v".repeat(257), false),
        ];
        let mut native = LiveTags::new();
        native.insert(
            EC2.into(),
            tags(&[("Owner", "team-z"), ("Environment", "qa"), ("Name", "web")]),
        );
        native.insert(S3.into(), tags(&[("Owner", "team-b")]));
        let d = diff(&active, &native, &BTreeMap::new(), "us-east-1");
        assert_eq!(
            d.entries,
            vec![
                Entry {
                    arn: EC2.into(),
                    account: "111111111111".into(),
                    region: "eu-west-1".into(),
                    tags: tags(&[("CostCenter", "CC-1000"), ("Environment", "production")]),
                    replaces: tags(&[("Environment", "qa")]),
                    virtual_tag_ids: vec![1, 3],
                },
                Entry {
                    arn: S3.into(),
                    account: String::new(),
                    region: "us-east-1".into(),
                    tags: tags(&[("CostCenter", "CC-2000")]),
                    replaces: BTreeMap::new(),
                    virtual_tag_ids: vec![6],
                },
            ]
        );
        let reasons: Vec<(i64, SkipReason, Option<&str>)> = d
            .skipped
            .iter()
            .map(|s| (s.virtual_tag_id, s.reason, s.native_value.as_deref()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (8, SkipReason::NotAws, None),
                (5, SkipReason::ReservedKey, None),
                (10, SkipReason::InvalidValue, None),
                (2, SkipReason::NativeValueKept, Some("team-z")),
                (4, SkipReason::ReservedKey, None),
                (9, SkipReason::InvalidKey, None),
                (7, SkipReason::AlreadyNative, Some("team-b")),
            ]
        );
        assert!(
            d.entries
                .iter()
                .all(|e| e.tags.keys().all(|k| !k.to_lowercase().starts_with("aws:")))
        );
    }

    #[test]
    fn a_resource_past_fifty_user_tags_is_left_whole() {
        let mut held: BTreeMap<String, String> =
            (0..49).map(|i| (format!("k{i:02}"), "v".into())).collect();
        // aws: tags do not count against the 50.
        held.insert("aws:createdBy".into(), "x".into());
        let mut native = LiveTags::new();
        native.insert(EC2.into(), held.clone());
        let one = vec![tag(1, EC2, "Owner", "a", false)];
        assert_eq!(
            diff(&one, &native, &BTreeMap::new(), "us-east-1")
                .entries
                .len(),
            1
        );
        let two = vec![
            tag(1, EC2, "Owner", "a", false),
            tag(2, EC2, "CostCenter", "CC-1", false),
        ];
        let d = diff(&two, &native, &BTreeMap::new(), "us-east-1");
        assert!(d.entries.is_empty());
        let left: Vec<(i64, SkipReason)> = d
            .skipped
            .iter()
            .map(|s| (s.virtual_tag_id, s.reason))
            .collect();
        assert_eq!(
            left,
            vec![(2, SkipReason::TooManyTags), (1, SkipReason::TooManyTags)]
        );
        // A change replaces a tag: it adds none.
        held.insert("Owner".into(), "old".into());
        held.remove("k00");
        native.insert(EC2.into(), held);
        let over = vec![
            tag(1, EC2, "Owner", "a", true),
            tag(2, EC2, "CostCenter", "CC-1", false),
        ];
        assert_eq!(
            diff(&over, &native, &BTreeMap::new(), "us-east-1")
                .entries
                .len(),
            1
        );
    }

    #[test]
    fn the_fingerprint_moves_with_every_input_and_not_with_order() {
        let a = vec![
            tag(1, EC2, "Owner", "a", false),
            tag(2, S3, "Owner", "b", false),
        ];
        let mut native = LiveTags::new();
        native.insert(EC2.into(), tags(&[("Name", "web")]));
        let base = fingerprint("{}", &a, &native);
        let reversed: Vec<ActiveTag> = a.iter().rev().cloned().collect();
        assert_eq!(fingerprint("{}", &reversed, &native), base);
        // Native tags of other ARNs are not inputs.
        let mut other = native.clone();
        other.insert(
            "arn:aws:ec2:us-east-1:1:volume/v".into(),
            tags(&[("x", "y")]),
        );
        assert_eq!(fingerprint("{}", &a, &other), base);
        let mut changed = native.clone();
        changed.insert(EC2.into(), tags(&[("Name", "web2")]));
        assert_ne!(fingerprint("{}", &a, &changed), base);
        let mut b = a.clone();
        b[0].value = "c".into();
        assert_ne!(fingerprint("{}", &b, &native), base);
        b = a.clone();
        b[0].override_native = true;
        assert_ne!(fingerprint("{}", &b, &native), base);
        assert_ne!(fingerprint("{\"keys\":[\"Owner\"]}", &a, &native), base);
    }

    #[test]
    fn iam_actions_name_the_tagging_api_and_each_service() {
        let arns = [
            EC2,
            S3,
            "arn:aws:sqs:us-east-1:1:q",
            "arn:aws:dynamodb:us-east-1:1:table/t",
            "nonsense",
        ];
        assert_eq!(
            iam_actions(arns.into_iter()),
            vec![
                "dynamodb:TagResource",
                "ec2:CreateTags",
                "s3:GetBucketTagging",
                "s3:PutBucketTagging",
                "sqs:TagQueue",
                "tag:GetResources",
                "tag:TagResources",
            ]
        );
    }

    #[test]
    fn arn_parts_reads_aws_arns_only() {
        assert_eq!(arn_parts(EC2), Some(("ec2", "eu-west-1", "111111111111")));
        assert_eq!(arn_parts(S3), Some(("s3", "", "")));
        let homes = Homes::from([(
            S3.to_string(),
            ("222222222222".to_string(), "ap-south-1".to_string()),
        )]);
        assert_eq!(
            place(S3, &homes, "us-east-1"),
            Some(("222222222222".into(), "ap-south-1".into()))
        );
        assert_eq!(
            place(S3, &Homes::new(), "us-east-1"),
            Some(("".into(), "us-east-1".into()))
        );
        assert_eq!(
            place(EC2, &homes, "us-east-1"),
            Some(("111111111111".into(), "eu-west-1".into()))
        );
        assert_eq!(arn_parts("arn:aws:ec2"), None);
        assert_eq!(arn_parts("//compute.googleapis.com/x"), None);
    }
}
