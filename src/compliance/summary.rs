//! Aggregation: scores and counts for a filtered slice of an evaluated inventory, and the
//! violations in worst-first order (by severity, then inventory order) without sorting them all.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::filter::{ResourceFilter, ViolationFilter};
use crate::inventory::Resource;
use crate::policy::evaluate::{NO_KEY, RuleRef};
use crate::policy::{Evaluations, Policy, Severity, Violation, ViolationKind};

/// Compliance of the in-scope resources in one view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Score {
    pub compliant: usize,
    pub non_compliant: usize,
    /// compliant ÷ in-scope × 100, rounded to 2 decimals; null when nothing is in scope.
    pub score_pct: Option<f64>,
    /// Violations counted (after the key, kind and severity filters).
    pub violations: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
}

impl SeverityCounts {
    fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
        }
    }

    pub fn get(&self, s: Severity) -> usize {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// Counts for one value of a grouping (a type, a region, an account).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupCount {
    pub name: String,
    /// The account's name, in `by_account` groups when the inventory knows it (`name` stays
    /// the account id, which the `accounts` filter also takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    pub in_scope: usize,
    pub compliant: usize,
    pub non_compliant: usize,
    pub violations: usize,
    pub score_pct: Option<f64>,
}

/// A violation by position: resource index in the inventory, violation index in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViolationRef {
    pub resource: u32,
    pub violation: u16,
}

/// Everything a compliance answer needs, for one set of filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Resources selected by the resource filter.
    pub resources: usize,
    pub in_scope: usize,
    pub effective: Score,
    pub native: Score,
    pub by_severity: SeverityCounts,
    pub by_kind: BTreeMap<ViolationKind, usize>,
    pub native_by_kind: BTreeMap<ViolationKind, usize>,
    pub by_key: BTreeMap<String, usize>,
    pub by_type: Vec<GroupCount>,
    pub by_region: Vec<GroupCount>,
    pub by_account: Vec<GroupCount>,
    /// Effective-view violations, worst first (severity, then inventory order).
    pub worst: Vec<ViolationRef>,
}

pub(crate) fn pct(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| ((part as f64 / whole as f64) * 10_000.0).round() / 100.0)
}

/// The name a violation is counted under in `by_key`, if any.
pub(crate) fn key_label<'p>(policy: &'p Policy, v: &Violation) -> Option<&'p str> {
    match v.rule {
        RuleRef::Prohibited(i) => Some(policy.prohibited_rules()[i as usize].name.as_str()),
        _ if v.key != NO_KEY => Some(policy.key_name(v.key)),
        _ => None,
    }
}

/// Summarises evaluated resources for one set of filters: scores, breakdowns, worst first.
pub fn summarize(
    policy: &Policy,
    resources: &[Resource],
    evaluations: &Evaluations,
    resource_filter: &ResourceFilter,
    violation_filter: &ViolationFilter,
) -> Summary {
    let fail_at = policy.fail_at();
    let mut s = Summary::default();
    let mut by_type: FxHashMap<&str, GroupCount> = FxHashMap::default();
    let mut by_region: FxHashMap<&str, GroupCount> = FxHashMap::default();
    let mut by_account: FxHashMap<&str, GroupCount> = FxHashMap::default();
    // One bucket per severity, filled in inventory order: concatenated critical → low, they are
    // already worst-first.
    let mut buckets: [Vec<ViolationRef>; 4] = Default::default();

    for (index, (r, e)) in resources.iter().zip(evaluations.iter()).enumerate() {
        if !resource_filter.matches(r) {
            continue;
        }
        s.resources += 1;
        if !e.in_scope {
            continue;
        }
        s.in_scope += 1;
        let effective_fails = violation_filter.fails(e.effective, fail_at);
        let native_fails = violation_filter.fails(e.native, fail_at);
        tally(&mut s.effective, effective_fails);
        tally(&mut s.native, native_fails);

        let mut counted = 0;
        for (vi, v) in e.effective.iter().enumerate() {
            if !violation_filter.counts(v) {
                continue;
            }
            counted += 1;
            s.by_severity.add(v.severity);
            *s.by_kind.entry(v.kind).or_default() += 1;
            if let Some(label) = key_label(policy, v) {
                *s.by_key.entry(label.to_string()).or_default() += 1;
            }
            buckets[3 - v.severity as usize].push(ViolationRef {
                resource: index as u32,
                violation: vi as u16,
            });
        }
        s.effective.violations += counted;
        for v in e.native.iter().filter(|v| violation_filter.counts(v)) {
            s.native.violations += 1;
            *s.native_by_kind.entry(v.kind).or_default() += 1;
        }
        for (map, name) in [
            (&mut by_type, r.resource_type.as_str()),
            (&mut by_region, r.region.as_str()),
            (&mut by_account, r.account.as_str()),
        ] {
            let g = map.entry(name).or_default();
            g.in_scope += 1;
            g.violations += counted;
            if effective_fails {
                g.non_compliant += 1;
            } else {
                g.compliant += 1;
            }
        }
    }
    s.effective.score_pct = pct(s.effective.compliant, s.in_scope);
    s.native.score_pct = pct(s.native.compliant, s.in_scope);
    s.by_type = finish_groups(by_type);
    s.by_region = finish_groups(by_region);
    s.by_account = finish_groups(by_account);
    s.worst = buckets.into_iter().flatten().collect();
    s
}

fn tally(score: &mut Score, fails: bool) {
    if fails {
        score.non_compliant += 1;
    } else {
        score.compliant += 1;
    }
}

/// Worst groups first (most non-compliant resources), then by name.
fn finish_groups(map: FxHashMap<&str, GroupCount>) -> Vec<GroupCount> {
    let mut groups: Vec<GroupCount> = map
        .into_iter()
        .map(|(name, mut g)| {
            g.name = name.to_string();
            g.score_pct = pct(g.compliant, g.in_scope);
            g
        })
        .collect();
    groups.sort_by(|a, b| {
        b.non_compliant
            .cmp(&a.non_compliant)
            .then_with(|| a.name.cmp(&b.name))
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::evaluate_inventory;
    use crate::inventory::{Attrs, Provider};
    use crate::policy::parse_policy;

    fn resource(id: &str, ty: &str, region: &str, tags: &[(&str, &str)]) -> Resource {
        Resource {
            id: id.into(),
            provider: Provider::Aws,
            account: "1".into(),
            region: region.into(),
            resource_type: ty.into(),
            name: id.into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            attributes: Attrs::default(),
        }
    }

    fn setup() -> (Policy, Vec<Resource>) {
        let p = parse_policy(
            r#"{"aliases":{"Env":["env"]},
                "required_tags":[{"name":"Env","allowed_values":["prod","dev"],"severity":"critical","applies_to":["ec2:*","s3:*"]},
                                 {"name":"Owner","severity":"low","applies_to":["ec2:*"]}]}"#,
        )
        .unwrap();
        let rs = vec![
            resource(
                "a",
                "ec2:instance",
                "r1",
                &[("Env", "prod"), ("Owner", "x")],
            ),
            resource("b", "ec2:instance", "r1", &[("env", "prod")]),
            resource("c", "s3:bucket", "r2", &[("Env", "qa")]),
            resource("d", "lambda:function", "r2", &[]),
            resource("e", "s3:bucket", "r2", &[("Env", "dev")]),
        ];
        (p, rs)
    }

    #[test]
    fn scores_counts_and_order() {
        let (p, rs) = setup();
        let evals = evaluate_inventory(&p, &rs);
        let s = summarize(
            &p,
            &rs,
            &evals,
            &ResourceFilter::default(),
            &ViolationFilter::default(),
        );
        assert_eq!(s.resources, 5);
        assert_eq!(s.in_scope, 4);
        // effective: a ok, b missing Owner (low), c invalid Env, e ok
        assert_eq!((s.effective.compliant, s.effective.non_compliant), (2, 2));
        assert_eq!(s.effective.score_pct, Some(50.0));
        // native: b also misses Env and has a misnamed key
        assert_eq!((s.native.compliant, s.native.non_compliant), (2, 2));
        assert_eq!(s.native.violations, 4);
        assert_eq!(
            s.by_severity,
            SeverityCounts {
                critical: 1,
                high: 0,
                medium: 0,
                low: 1
            }
        );
        assert_eq!(s.by_key.get("Env"), Some(&1));
        assert_eq!(s.by_key.get("Owner"), Some(&1));
        let order: Vec<u32> = s.worst.iter().map(|w| w.resource).collect();
        assert_eq!(order, vec![2, 1], "critical (c) before low (b)");
        assert_eq!(s.by_type[0].name, "ec2:instance");
        assert_eq!(s.by_region.iter().map(|g| g.in_scope).sum::<usize>(), 4);
    }

    #[test]
    fn filters_narrow_resources_and_violations() {
        let (p, rs) = setup();
        let evals = evaluate_inventory(&p, &rs);
        let rf = ResourceFilter::new(&["s3:*".into()], &[], &[]);
        let s = summarize(&p, &rs, &evals, &rf, &ViolationFilter::default());
        assert_eq!((s.resources, s.in_scope, s.effective.compliant), (2, 2, 1));
        let vf = ViolationFilter::new(&p, &["owner".into()], &[], Severity::Low).unwrap();
        let s = summarize(&p, &rs, &evals, &ResourceFilter::default(), &vf);
        assert_eq!(s.effective.non_compliant, 1, "only b lacks Owner");
        assert_eq!(s.effective.violations, 1);
        let vf = ViolationFilter::new(&p, &[], &[], Severity::High).unwrap();
        let s = summarize(&p, &rs, &evals, &ResourceFilter::default(), &vf);
        assert_eq!(
            s.effective.non_compliant, 1,
            "the low Owner violation no longer fails b"
        );
        let err = ViolationFilter::new(&p, &["Nope".into()], &[], Severity::Low).unwrap_err();
        assert_eq!(err, vec!["Nope".to_string()]);
    }

    #[test]
    fn pct_rounding() {
        assert_eq!(pct(1, 3), Some(33.33));
        assert_eq!(pct(2, 3), Some(66.67));
        assert_eq!(pct(0, 0), None);
    }
}
