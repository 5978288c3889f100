//! What changed between two snapshots: tags added, removed or edited on each resource, resources
//! that started or stopped failing the policy, and resources that appeared or disappeared.
//! Pure: the caller loads both member lists from the history store.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use arcstr::ArcStr;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::MemberRecord;
use crate::policy::pattern::TypePatterns;

/// Narrows a drift report.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DriftFilter {
    /// Only changes to these tag keys (case-insensitive); empty means every key.
    pub tag_keys: Vec<String>,
    /// Type patterns such as `ec2:*`, `s3:bucket` or `rds`; empty means every type.
    pub resource_types: Vec<String>,
}

/// A tag as it was added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct TagValue {
    /// The tag key.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// A tag whose value changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct TagChange {
    /// The tag key (same on both sides; a renamed key is a removal plus an addition).
    pub key: String,
    /// The value in the older snapshot.
    pub old: String,
    /// The value in the newer snapshot.
    pub new: String,
}

/// The tag edits on one resource between the two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ResourceTagDrift {
    /// The resource's id (ARN or provider id).
    pub resource_id: String,
    /// Canonical type, `service:kind`.
    pub resource_type: String,
    /// The resource's name in the newer snapshot.
    pub name: String,
    /// Tags present only in the newer snapshot, by key.
    pub added: Vec<TagValue>,
    /// Tags present only in the older snapshot, by key.
    pub removed: Vec<TagValue>,
    /// Tags whose value differs (compared exactly: `Prod` → `prod` is a change), by key.
    pub changed: Vec<TagChange>,
}

/// A resource named in a compliance transition, an appearance or a disappearance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ResourceBrief {
    /// The resource's id (ARN or provider id).
    pub resource_id: String,
    /// Canonical type, `service:kind`.
    pub resource_type: String,
    /// The resource's name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// Violation labels (`kind:key`) in the newer snapshot; in the older one for fixed and
    /// disappeared resources.
    pub violations: Vec<String>,
}

/// What changed between two snapshots. Lists are sorted by resource id and cut to `limit`;
/// the `_total` counts are always exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct DriftReport {
    /// Resources (of the selected types) present in both snapshots.
    pub resources_compared: usize,
    /// Individual tag additions, removals and value changes (of the selected keys).
    pub tag_changes_total: usize,
    /// Resources with at least one such change.
    pub resources_with_tag_changes_total: usize,
    /// Tag edits per resource.
    pub tag_changes: Vec<ResourceTagDrift>,
    /// Resources failing the policy now that were passing (or not in scope) before.
    pub became_non_compliant_total: usize,
    /// Those resources, with their current violations.
    pub became_non_compliant: Vec<ResourceBrief>,
    /// Resources that were failing and pass now.
    pub fixed_total: usize,
    /// Those resources, with the violations they had.
    pub fixed: Vec<ResourceBrief>,
    /// Resources present only in the newer snapshot.
    pub appeared_total: usize,
    /// Those resources, with their violations.
    pub appeared: Vec<ResourceBrief>,
    /// Resources present only in the older snapshot.
    pub disappeared_total: usize,
    /// Those resources, with the violations they had.
    pub disappeared: Vec<ResourceBrief>,
    /// The most entries listed per list.
    pub limit: usize,
}

/// Compares two member lists by resource id. The type filter applies to every list (judged by
/// the newer side's type for resources on both sides); the key filter only to tag changes, so a
/// resource whose only edits are to other keys is not listed. Compliance transitions are only
/// reported for resources present on both sides.
pub(crate) fn drift(
    from: &[MemberRecord],
    to: &[MemberRecord],
    filter: &DriftFilter,
    limit: usize,
) -> DriftReport {
    let types = TypePatterns::new(&filter.resource_types);
    let keys = KeySelection::new(&filter.tag_keys);
    let older: HashMap<&str, &MemberRecord> =
        from.iter().map(|m| (m.resource_id.as_str(), m)).collect();
    let newer_ids: HashSet<&str> = to.iter().map(|m| m.resource_id.as_str()).collect();

    let mut acc = Accumulator::default();
    for new in to.iter().filter(|m| types.matches(&m.resource_type)) {
        match older.get(new.resource_id.as_str()) {
            Some(old) => acc.compare(old, new, &keys),
            None => acc.appeared.push(brief(new)),
        }
    }
    for old in from.iter().filter(|m| types.matches(&m.resource_type)) {
        if !newer_ids.contains(old.resource_id.as_str()) {
            acc.disappeared.push(brief(old));
        }
    }
    acc.into_report(limit)
}

/// Tag keys to report, compared case-insensitively.
struct KeySelection(Option<HashSet<String>>);

impl KeySelection {
    fn new(keys: &[String]) -> Self {
        KeySelection((!keys.is_empty()).then(|| keys.iter().map(|k| k.to_lowercase()).collect()))
    }

    fn selects(&self, key: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|set| set.contains(&key.to_lowercase()))
    }
}

#[derive(Default)]
struct Accumulator {
    compared: usize,
    tag_changes_total: usize,
    tag_changes: Vec<ResourceTagDrift>,
    became_non_compliant: Vec<ResourceBrief>,
    fixed: Vec<ResourceBrief>,
    appeared: Vec<ResourceBrief>,
    disappeared: Vec<ResourceBrief>,
}

impl Accumulator {
    fn compare(&mut self, old: &MemberRecord, new: &MemberRecord, keys: &KeySelection) {
        self.compared += 1;
        let edits = tag_drift(old, new, keys);
        let count = edits.added.len() + edits.removed.len() + edits.changed.len();
        if count > 0 {
            self.tag_changes_total += count;
            self.tag_changes.push(edits);
        }
        if new.failing && (!old.failing || !old.in_scope) {
            self.became_non_compliant.push(brief(new));
        } else if old.failing && !new.failing && new.in_scope {
            // A resource no rule applies to any more is not "fixed", just out of scope.
            self.fixed.push(brief(old));
        }
    }

    fn into_report(self, limit: usize) -> DriftReport {
        let resources_with_tag_changes_total = self.tag_changes.len();
        let (tag_changes, _) = sorted_and_cut(self.tag_changes, limit, |d| &d.resource_id);
        let (became_non_compliant, became_non_compliant_total) =
            briefs(self.became_non_compliant, limit);
        let (fixed, fixed_total) = briefs(self.fixed, limit);
        let (appeared, appeared_total) = briefs(self.appeared, limit);
        let (disappeared, disappeared_total) = briefs(self.disappeared, limit);
        DriftReport {
            resources_compared: self.compared,
            tag_changes_total: self.tag_changes_total,
            resources_with_tag_changes_total,
            tag_changes,
            became_non_compliant_total,
            became_non_compliant,
            fixed_total,
            fixed,
            appeared_total,
            appeared,
            disappeared_total,
            disappeared,
            limit,
        }
    }
}

fn briefs(list: Vec<ResourceBrief>, limit: usize) -> (Vec<ResourceBrief>, usize) {
    sorted_and_cut(list, limit, |b| &b.resource_id)
}

/// Sorts by resource id and keeps the first `limit`; returns the list and its full length.
fn sorted_and_cut<T>(
    mut list: Vec<T>,
    limit: usize,
    id: impl Fn(&T) -> &String,
) -> (Vec<T>, usize) {
    let total = list.len();
    list.sort_by(|a, b| id(a).cmp(id(b)));
    list.truncate(limit);
    (list, total)
}

/// Key-by-key comparison of the two tag sets (keys compared exactly, so a key whose case
/// changed is removed under the old spelling and added under the new).
fn tag_drift(old: &MemberRecord, new: &MemberRecord, keys: &KeySelection) -> ResourceTagDrift {
    let before: BTreeMap<&str, &str> = tag_map(&old.tags);
    let after: BTreeMap<&str, &str> = tag_map(&new.tags);
    let all_keys: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    let mut drift = ResourceTagDrift {
        resource_id: new.resource_id.clone(),
        resource_type: new.resource_type.to_string(),
        name: new.name.to_string(),
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
    };
    for key in all_keys.into_iter().filter(|k| keys.selects(k)) {
        match (before.get(key), after.get(key)) {
            (None, Some(v)) => drift.added.push(tag_value(key, v)),
            (Some(v), None) => drift.removed.push(tag_value(key, v)),
            (Some(a), Some(b)) if a != b => drift.changed.push(TagChange {
                key: key.to_string(),
                old: a.to_string(),
                new: b.to_string(),
            }),
            _ => {}
        }
    }
    drift
}

fn tag_map(tags: &[(ArcStr, ArcStr)]) -> BTreeMap<&str, &str> {
    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn tag_value(key: &str, value: &str) -> TagValue {
    TagValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn brief(m: &MemberRecord) -> ResourceBrief {
    ResourceBrief {
        resource_id: m.resource_id.clone(),
        resource_type: m.resource_type.to_string(),
        name: m.name.to_string(),
        region: m.region.to_string(),
        account: m.account.to_string(),
        violations: m.violations.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, ty: &str, tags: &[(&str, &str)]) -> MemberRecord {
        MemberRecord {
            resource_id: id.into(),
            resource_type: ty.into(),
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            name: arcstr::format!("name-{id}"),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            violations: vec![],
            failing: false,
            in_scope: true,
        }
    }

    fn failing(mut m: MemberRecord, violations: &[&str]) -> MemberRecord {
        m.failing = true;
        m.violations = violations.iter().map(|v| v.to_string()).collect();
        m
    }

    fn all() -> DriftFilter {
        DriftFilter::default()
    }

    fn ids(list: &[ResourceBrief]) -> Vec<&str> {
        list.iter().map(|b| b.resource_id.as_str()).collect()
    }

    fn tv(key: &str, value: &str) -> TagValue {
        tag_value(key, value)
    }

    #[test]
    fn known_tag_edits() {
        let from = vec![member(
            "r1",
            "ec2:instance",
            &[
                ("CostCenter", "CC-1"),
                ("Environment", "Prod"),
                ("Owner", "alice"),
                ("costcentre", "x"),
                ("Team", "payments"),
            ],
        )];
        let to = vec![member(
            "r1",
            "ec2:instance",
            &[
                ("CostCenter", "CC-2"),  // value changed
                ("Environment", "prod"), // case change is a change
                ("Project", "atlas"),    // added
                ("CostCentre", "x"),     // renamed key: costcentre removed, CostCentre added
                ("Team", "payments"),    // unchanged
            ],
        )];
        let r = drift(&from, &to, &all(), 10);
        assert_eq!(r.resources_compared, 1);
        assert_eq!(r.tag_changes_total, 6);
        assert_eq!(r.resources_with_tag_changes_total, 1);
        let d = &r.tag_changes[0];
        assert_eq!(d.resource_id, "r1");
        assert_eq!(d.name, "name-r1");
        assert_eq!(d.added, vec![tv("CostCentre", "x"), tv("Project", "atlas")]);
        assert_eq!(d.removed, vec![tv("Owner", "alice"), tv("costcentre", "x")]);
        assert_eq!(
            d.changed,
            vec![
                TagChange {
                    key: "CostCenter".into(),
                    old: "CC-1".into(),
                    new: "CC-2".into()
                },
                TagChange {
                    key: "Environment".into(),
                    old: "Prod".into(),
                    new: "prod".into()
                },
            ]
        );
        assert!(r.appeared.is_empty() && r.disappeared.is_empty());
        assert_eq!((r.became_non_compliant_total, r.fixed_total), (0, 0));
    }

    #[test]
    fn unchanged_resources_are_not_listed() {
        let side = vec![member("r1", "s3:bucket", &[("Owner", "a")])];
        let r = drift(&side, &side, &all(), 10);
        assert_eq!(r.resources_compared, 1);
        assert_eq!(
            (r.tag_changes_total, r.resources_with_tag_changes_total),
            (0, 0)
        );
        assert!(r.tag_changes.is_empty());
    }

    #[test]
    fn key_filter_is_case_insensitive_and_only_narrows_tag_changes() {
        let from = vec![
            member("a", "ec2:instance", &[("Owner", "x"), ("Team", "t1")]),
            member("b", "ec2:instance", &[("Team", "t1")]),
            failing(member("c", "ec2:instance", &[]), &["missing_tag:Owner"]),
        ];
        let to = vec![
            member("a", "ec2:instance", &[("Owner", "y"), ("Team", "t2")]),
            member("b", "ec2:instance", &[("Team", "t2")]),
            member("c", "ec2:instance", &[("Team", "t9")]),
        ];
        let filter = DriftFilter {
            tag_keys: vec!["owner".into()],
            resource_types: vec![],
        };
        let r = drift(&from, &to, &filter, 10);
        assert_eq!(r.resources_compared, 3);
        assert_eq!(r.tag_changes_total, 1);
        assert_eq!(r.resources_with_tag_changes_total, 1);
        assert_eq!(r.tag_changes[0].resource_id, "a");
        assert!(r.tag_changes[0].added.is_empty() && r.tag_changes[0].removed.is_empty());
        assert_eq!(r.tag_changes[0].changed[0].key, "Owner");
        // The key filter does not hide compliance transitions.
        assert_eq!(ids(&r.fixed), vec!["c"]);

        // A filter matching both spellings of a renamed key reports both halves.
        let from = vec![member("r", "ec2:instance", &[("costcenter", "1")])];
        let to = vec![member("r", "ec2:instance", &[("CostCenter", "1")])];
        let filter = DriftFilter {
            tag_keys: vec!["COSTCENTER".into()],
            resource_types: vec![],
        };
        let r = drift(&from, &to, &filter, 10);
        assert_eq!(r.tag_changes_total, 2);
        assert_eq!(r.tag_changes[0].added, vec![tv("CostCenter", "1")]);
        assert_eq!(r.tag_changes[0].removed, vec![tv("costcenter", "1")]);
    }

    #[test]
    fn type_filter_applies_to_every_list() {
        let from = vec![
            member("ec2-same", "ec2:instance", &[("A", "1")]),
            member("s3-same", "s3:bucket", &[("A", "1")]),
            member("ec2-gone", "ec2:volume", &[]),
            member("rds-gone", "rds:db", &[]),
            failing(member("ec2-fixed", "ec2:instance", &[]), &["missing_tag:A"]),
            failing(
                member("lambda-fixed", "lambda:function", &[]),
                &["missing_tag:A"],
            ),
        ];
        let to = vec![
            member("ec2-same", "ec2:instance", &[("A", "2")]),
            member("s3-same", "s3:bucket", &[("A", "2")]),
            member("ec2-new", "ec2:instance", &[]),
            member("s3-new", "s3:bucket", &[]),
            member("ec2-fixed", "ec2:instance", &[("A", "1")]),
            member("lambda-fixed", "lambda:function", &[("A", "1")]),
        ];
        let filter = DriftFilter {
            tag_keys: vec![],
            resource_types: vec!["ec2:*".into(), "rds".into()],
        };
        let r = drift(&from, &to, &filter, 10);
        assert_eq!(r.resources_compared, 2);
        assert_eq!(r.tag_changes_total, 2);
        let changed: Vec<&str> = r
            .tag_changes
            .iter()
            .map(|d| d.resource_id.as_str())
            .collect();
        assert_eq!(changed, vec!["ec2-fixed", "ec2-same"]);
        assert_eq!(ids(&r.appeared), vec!["ec2-new"]);
        assert_eq!(ids(&r.disappeared), vec!["ec2-gone", "rds-gone"]);
        assert_eq!(ids(&r.fixed), vec!["ec2-fixed"]);

        let exact = DriftFilter {
            tag_keys: vec![],
            resource_types: vec!["s3:bucket".into()],
        };
        let r = drift(&from, &to, &exact, 10);
        assert_eq!(r.resources_compared, 1);
        assert_eq!(ids(&r.appeared), vec!["s3-new"]);
        assert!(r.disappeared.is_empty() && r.fixed.is_empty());
    }

    #[test]
    fn compliance_transitions() {
        let mut out_of_scope_failing =
            failing(member("d", "ec2:instance", &[]), &["prohibited_tag:x"]);
        out_of_scope_failing.in_scope = false;
        let from = vec![
            member("a", "ec2:instance", &[]),
            failing(member("b", "ec2:instance", &[]), &["missing_tag:Owner"]),
            failing(member("c", "ec2:instance", &[]), &["missing_tag:Owner"]),
            out_of_scope_failing,
            member("e", "ec2:instance", &[]),
            failing(member("g", "ec2:instance", &[]), &["missing_tag:Owner"]),
        ];
        let mut now_out_of_scope = member("g", "ec2:instance", &[]);
        now_out_of_scope.in_scope = false;
        let to = vec![
            failing(
                member("a", "ec2:instance", &[]),
                &["invalid_value:Environment"],
            ),
            member("b", "ec2:instance", &[("Owner", "o")]),
            failing(member("c", "ec2:instance", &[]), &["missing_tag:Owner"]),
            failing(member("d", "ec2:instance", &[]), &["missing_tag:Owner"]),
            member("e", "ec2:instance", &[]),
            // Appeared already failing: not a transition, only an appearance.
            failing(member("f", "ec2:instance", &[]), &["missing_tag:Owner"]),
            // No rule applies any more (e.g. a policy change): out of scope, not fixed.
            now_out_of_scope,
        ];
        let r = drift(&from, &to, &all(), 10);
        assert_eq!(ids(&r.became_non_compliant), vec!["a", "d"]);
        assert_eq!(r.became_non_compliant_total, 2);
        // Newer-side violations for those that became non-compliant.
        assert_eq!(
            r.became_non_compliant[0].violations,
            vec!["invalid_value:Environment"]
        );
        // Older-side violations for the fixed.
        assert_eq!(ids(&r.fixed), vec!["b"]);
        assert_eq!(r.fixed[0].violations, vec!["missing_tag:Owner"]);
        assert_eq!(ids(&r.appeared), vec!["f"]);
        assert_eq!(r.appeared[0].violations, vec!["missing_tag:Owner"]);
        assert_eq!(r.resources_compared, 6);
    }

    #[test]
    fn appeared_and_disappeared_carry_their_details() {
        let mut gone = failing(member("old", "rds:db", &[]), &["missing_tag:Owner"]);
        gone.region = "us-east-1".into();
        gone.account = "999".into();
        let from = vec![gone];
        let to = vec![member("new", "s3:bucket", &[("Owner", "o")])];
        let r = drift(&from, &to, &all(), 10);
        assert_eq!(r.resources_compared, 0);
        assert_eq!(
            r.disappeared,
            vec![ResourceBrief {
                resource_id: "old".into(),
                resource_type: "rds:db".into(),
                name: "name-old".into(),
                region: "us-east-1".into(),
                account: "999".into(),
                violations: vec!["missing_tag:Owner".into()],
            }]
        );
        assert_eq!(ids(&r.appeared), vec!["new"]);
        assert_eq!(r.appeared[0].violations, Vec::<String>::new());
        // Tags of appeared resources are not counted as tag changes.
        assert_eq!(r.tag_changes_total, 0);
    }

    #[test]
    fn totals_stay_exact_when_lists_are_cut() {
        let from: Vec<MemberRecord> = (0..50)
            .map(|i| {
                failing(
                    member(&format!("r{i:03}"), "ec2:instance", &[("K", "1")]),
                    &["x"],
                )
            })
            .chain((0..7).map(|i| member(&format!("gone{i}"), "ec2:volume", &[])))
            .collect();
        let to: Vec<MemberRecord> = (0..50)
            .rev()
            .map(|i| {
                member(
                    &format!("r{i:03}"),
                    "ec2:instance",
                    &[("K", "2"), ("L", "x")],
                )
            })
            .chain((0..9).map(|i| member(&format!("new{i}"), "ec2:volume", &[])))
            .collect();
        let r = drift(&from, &to, &all(), 3);
        assert_eq!(r.limit, 3);
        assert_eq!(r.resources_compared, 50);
        assert_eq!(r.tag_changes_total, 100);
        assert_eq!(r.resources_with_tag_changes_total, 50);
        assert_eq!(r.fixed_total, 50);
        assert_eq!(r.appeared_total, 9);
        assert_eq!(r.disappeared_total, 7);
        assert_eq!(r.became_non_compliant_total, 0);
        let changed: Vec<&str> = r
            .tag_changes
            .iter()
            .map(|d| d.resource_id.as_str())
            .collect();
        assert_eq!(changed, vec!["r000", "r001", "r002"]);
        assert_eq!(ids(&r.fixed), vec!["r000", "r001", "r002"]);
        assert_eq!(ids(&r.appeared), vec!["new0", "new1", "new2"]);
        assert_eq!(ids(&r.disappeared), vec!["gone0", "gone1", "gone2"]);

        let r = drift(&from, &to, &all(), 0);
        assert!(r.tag_changes.is_empty() && r.fixed.is_empty());
        assert_eq!((r.tag_changes_total, r.fixed_total), (100, 50));
    }

    #[test]
    fn empty_sides() {
        let side = vec![
            member("b", "ec2:instance", &[]),
            member("a", "s3:bucket", &[]),
        ];
        let r = drift(&[], &side, &all(), 10);
        assert_eq!((r.resources_compared, r.appeared_total), (0, 2));
        assert_eq!(ids(&r.appeared), vec!["a", "b"]);
        let r = drift(&side, &[], &all(), 10);
        assert_eq!(ids(&r.disappeared), vec!["a", "b"]);
        let r = drift(&[], &[], &all(), 10);
        assert_eq!(
            r,
            DriftReport {
                resources_compared: 0,
                tag_changes_total: 0,
                resources_with_tag_changes_total: 0,
                tag_changes: vec![],
                became_non_compliant_total: 0,
                became_non_compliant: vec![],
                fixed_total: 0,
                fixed: vec![],
                appeared_total: 0,
                appeared: vec![],
                disappeared_total: 0,
                disappeared: vec![],
                limit: 10,
            }
        );
    }
}
