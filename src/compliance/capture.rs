//! Turns one compliance answer (an evaluated inventory, the question's filters and its summary)
//! into a history snapshot: the headline numbers, the breakdowns, and per resource its native
//! tags, counted violations and pass/fail — what drift and trends are computed from later.
//! Pure: the caller supplies the clock and stores the result.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::filter::{ResourceFilter, ViolationFilter};
use super::summary::{Summary, key_label};
use crate::history::{MemberRecord, NewSnapshot};
use crate::inventory::Resource;
use crate::policy::{Evaluations, Policy, Violation};

/// What the snapshot is of, besides the data.
pub(crate) struct CaptureContext<'a> {
    pub taken_at: DateTime<Utc>,
    /// `tool`, `cli` or `schedule`.
    pub trigger: &'a str,
    pub source: &'a str,
    /// The question's filters, as the history tools will be asked for them.
    pub filters: Value,
}

/// The label a violation is recorded under: `kind:key`, or `kind` when it has no key.
pub(crate) fn violation_label(policy: &Policy, v: &Violation) -> String {
    match key_label(policy, v) {
        Some(key) => format!("{}:{key}", v.kind.as_str()),
        None => v.kind.as_str().to_string(),
    }
}

pub(crate) fn capture(
    policy: &Policy,
    resources: &[Resource],
    evaluations: &Evaluations,
    resource_filter: &ResourceFilter,
    violation_filter: &ViolationFilter,
    summary: &Summary,
    context: CaptureContext<'_>,
) -> NewSnapshot {
    // Copying a million resources' strings is a second or more: two threads, halves in order.
    let n = resources.len().min(evaluations.len());
    let part = |range: std::ops::Range<usize>| {
        members_of(
            policy,
            &resources[range.clone()],
            evaluations,
            range.start,
            resource_filter,
            violation_filter,
        )
    };
    let ((mut members, mut by_violation), (rest, rest_counts)) = if n >= PARALLEL_FROM {
        crate::util::on_two_halves(n, part)
    } else {
        (part(0..n), Default::default())
    };
    members.extend(rest);
    for (label, count) in rest_counts {
        *by_violation.entry(label).or_default() += count;
    }
    NewSnapshot {
        taken_at: context.taken_at,
        trigger: context.trigger.to_string(),
        source: context.source.to_string(),
        policy_hash: policy.hash().to_string(),
        filters: context.filters,
        resources: summary.resources,
        in_scope: summary.in_scope,
        compliant: summary.effective.compliant,
        violations: summary.effective.violations,
        score_pct: summary.effective.score_pct,
        native_score_pct: summary.native.score_pct,
        spend_score_pct: None,
        counts: json!({
            "by_severity": summary.by_severity,
            "by_kind": summary.by_kind,
            "native_by_kind": summary.native_by_kind,
            "by_key": summary.by_key,
            "by_type": summary.by_type,
            "by_region": summary.by_region,
            "by_account": summary.by_account,
        }),
        by_violation,
        members,
    }
}

/// Members at or above this many are captured on two threads.
const PARALLEL_FROM: usize = 50_000;

/// The member records of `resources` (the evaluations' `offset`-th onwards) that pass the
/// filter, and how often each violation label is counted among them.
fn members_of(
    policy: &Policy,
    resources: &[Resource],
    evaluations: &Evaluations,
    offset: usize,
    resource_filter: &ResourceFilter,
    violation_filter: &ViolationFilter,
) -> (Vec<MemberRecord>, BTreeMap<String, usize>) {
    let fail_at = policy.fail_at();
    let mut members = Vec::with_capacity(resources.len());
    let mut by_violation: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        let e = evaluations.get(offset + i);
        if !resource_filter.matches(r) {
            continue;
        }
        let mut labels: Vec<String> = Vec::new();
        if e.in_scope {
            for v in e.effective.iter().filter(|v| violation_filter.counts(v)) {
                let label = violation_label(policy, v);
                // Looked up before inserting: a million members must not clone a million labels.
                match by_violation.get_mut(&label) {
                    Some(n) => *n += 1,
                    None => {
                        by_violation.insert(label.clone(), 1);
                    }
                }
                labels.push(label);
            }
        }
        labels.sort_unstable();
        members.push(MemberRecord {
            resource_id: r.id.as_str().to_owned(),
            resource_type: r.resource_type.clone(),
            region: r.region.clone(),
            account: r.account.clone(),
            name: r.name.clone(),
            tags: r.tags.clone(),
            violations: labels,
            failing: e.in_scope && violation_filter.fails(e.effective, fail_at),
            in_scope: e.in_scope,
        });
    }
    (members, by_violation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::{evaluate_inventory, summarize};
    use crate::inventory::demo;
    use crate::policy::{Severity, default_policy};

    #[test]
    fn a_snapshot_agrees_with_the_summary_it_was_taken_from() {
        let policy = default_policy();
        let estate = demo::generate(7, 400);
        let evaluations = evaluate_inventory(&policy, &estate.resources);
        let rf = ResourceFilter::new(&["ec2:*".to_string()], &[], &[]);
        let vf = ViolationFilter::new(&policy, &[], &[], Severity::Low).unwrap();
        let summary = summarize(&policy, &estate.resources, &evaluations, &rf, &vf);
        let s = capture(
            &policy,
            &estate.resources,
            &evaluations,
            &rf,
            &vf,
            &summary,
            CaptureContext {
                taken_at: Utc::now(),
                trigger: "cli",
                source: "demo",
                filters: json!({"resource_types": ["ec2:*"]}),
            },
        );
        assert_eq!(s.members.len(), summary.resources);
        assert!(
            s.members
                .iter()
                .all(|m| m.resource_type.starts_with("ec2:"))
        );
        assert_eq!(
            s.members.iter().filter(|m| m.in_scope).count(),
            summary.in_scope
        );
        assert_eq!(
            s.members
                .iter()
                .filter(|m| m.in_scope && !m.failing)
                .count(),
            summary.effective.compliant
        );
        let labelled: usize = s.members.iter().map(|m| m.violations.len()).sum();
        assert_eq!(labelled, summary.effective.violations);
        assert_eq!(s.by_violation.values().sum::<usize>(), labelled);
        assert_eq!(s.score_pct, summary.effective.score_pct);
        assert!(
            s.by_violation
                .keys()
                .any(|l| l.starts_with("missing_required_tag:"))
        );
    }
}
