//! Virtual tags laid over native tags, pure. Effective tags are the native tags normalised by
//! the policy, then overlaid by approved virtual tags; the native view never sees them.
//!
//! A virtual tag never hides a valid native value unless it was created with
//! `override_native`: when the resource already carries the key (under its canonical name, a
//! case variant or an alias) with a value the policy accepts, the native value stays. Otherwise
//! every native spelling of the key is dropped and the virtual value takes its place. The
//! resulting tag list is evaluated for the effective view; resources without virtual tags are
//! evaluated exactly as before.

use compact_str::CompactString;
use rustc_hash::FxHashMap;

use crate::inventory::{Resource, Tags, normalise_tags};
use crate::policy::{Evaluation, Evaluations, Policy, View, ViolationKind};

/// One approved virtual tag in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualValue {
    pub key: CompactString,
    pub value: CompactString,
    pub override_native: bool,
}

/// The approved virtual tags in effect, by resource id, and the store generation they were
/// read at (part of cache keys).
#[derive(Debug, Clone, Default)]
pub struct VirtualOverlay {
    by_resource: FxHashMap<CompactString, Vec<VirtualValue>>,
    pub generation: u64,
    tags: usize,
    /// A content hash of the tags in effect: part of cached answers' keys and cursors, so two
    /// stores (or two moments of one) with different tags never share an answer.
    pub fingerprint: String,
}

impl VirtualOverlay {
    pub fn new(
        generation: u64,
        tags: impl IntoIterator<Item = (CompactString, VirtualValue)>,
    ) -> VirtualOverlay {
        let mut by_resource: FxHashMap<CompactString, Vec<VirtualValue>> = FxHashMap::default();
        let mut count = 0;
        for (id, v) in tags {
            let list = by_resource.entry(id).or_default();
            // One value per key: the last given wins.
            list.retain(|existing| existing.key != v.key);
            list.push(v);
            count += 1;
        }
        let fingerprint = fingerprint(&by_resource);
        VirtualOverlay {
            by_resource,
            generation,
            tags: count,
            fingerprint,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_resource.is_empty()
    }

    /// Virtual tags in effect.
    pub fn len(&self) -> usize {
        self.tags
    }

    /// Resources carrying at least one.
    pub fn resources(&self) -> usize {
        self.by_resource.len()
    }

    pub fn of(&self, resource_id: &str) -> Option<&[VirtualValue]> {
        self.by_resource.get(resource_id).map(Vec::as_slice)
    }
}

fn fingerprint(by_resource: &FxHashMap<CompactString, Vec<VirtualValue>>) -> String {
    use sha2::{Digest, Sha256};
    if by_resource.is_empty() {
        return "none".to_string();
    }
    let mut ids: Vec<&CompactString> = by_resource.keys().collect();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in ids {
        let mut tags: Vec<&VirtualValue> = by_resource[id].iter().collect();
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        for t in tags {
            for part in [id.as_str(), t.key.as_str(), t.value.as_str()] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.update([u8::from(t.override_native)]);
        }
    }
    hex::encode(&h.finalize()[..16])
}

/// Kinds that mean a key's native value cannot be used as it is.
fn value_problem(kind: ViolationKind) -> bool {
    matches!(
        kind,
        ViolationKind::MissingRequiredTag
            | ViolationKind::EmptyValue
            | ViolationKind::InvalidValue
            | ViolationKind::InvalidFormat
            | ViolationKind::ConditionalRequirement
    )
}

/// The tag list the effective view evaluates: `native` with `virtuals` laid over (see the
/// module docs). `native_eval` is the evaluation of the native tags alone. Returns None when no
/// virtual tag takes effect (every key already valid natively, none overriding).
pub(crate) fn combine(
    policy: &Policy,
    native: &Tags,
    native_eval: &Evaluation,
    virtuals: &[VirtualValue],
) -> Option<Tags> {
    let mut combined: Tags = native.clone();
    let mut changed = false;
    for v in virtuals {
        let key_id = policy.key_id(&v.key);
        let natively_valid = policy
            .value_of(native, &v.key, View::Effective)
            .is_some_and(|value| !value.trim().is_empty())
            && !native_eval
                .violations(View::Effective)
                .iter()
                .any(|x| Some(x.key) == key_id && value_problem(x.kind));
        if natively_valid && !v.override_native {
            continue;
        }
        // Drop every native spelling of the key (canonical, case variant, alias).
        combined.retain(|(k, _)| policy.canonical_key(k) != v.key.as_str());
        combined.push((v.key.as_str().into(), v.value.as_str().into()));
        changed = true;
    }
    changed.then(|| normalise_tags(combined))
}

/// Evaluates every resource; resources with virtual tags in effect get their effective view
/// from the combined tags. Returns the evaluations and, by resource index, the combined tag
/// lists (the effective view's violations point into them).
pub(crate) fn evaluate_with_overlay(
    policy: &Policy,
    resources: &[Resource],
    overlay: &VirtualOverlay,
) -> (Evaluations, FxHashMap<u32, Tags>) {
    if resources.len() < EVALUATE_ON_TWO_THREADS_FROM {
        return evaluate_range(policy, resources, 0, overlay);
    }
    let ((mut out, mut combined), (second, second_combined)) =
        crate::util::on_two_halves(resources.len(), |range| {
            let first = range.start;
            evaluate_range(policy, &resources[range], first, overlay)
        });
    out.append(second);
    combined.extend(second_combined);
    (out, combined)
}

/// Below this many resources one thread evaluates (a thread costs more than it saves).
const EVALUATE_ON_TWO_THREADS_FROM: usize = 1 << 15;

/// `evaluate_with_overlay` for `resources`, the first of which is resource `first` of the
/// inventory (the combined tags are keyed by inventory index).
fn evaluate_range(
    policy: &Policy,
    resources: &[Resource],
    first: usize,
    overlay: &VirtualOverlay,
) -> (Evaluations, FxHashMap<u32, Tags>) {
    let mut evaluator = policy.evaluator();
    let mut out = Evaluations::with_capacity(resources.len());
    let mut combined_tags = FxHashMap::default();
    for (index, r) in (first..).zip(resources) {
        let Some(virtuals) = overlay.of(&r.id) else {
            evaluator.evaluate_into(&r.resource_type, &r.tags, &mut out);
            continue;
        };
        let native_eval = evaluator.evaluate(&r.resource_type, &r.tags);
        match combine(policy, &r.tags, &native_eval, virtuals) {
            None => out.push_evaluation(&native_eval),
            Some(combined) => {
                let with_virtual = evaluator.evaluate(&r.resource_type, &combined);
                out.push_evaluation(&Evaluation {
                    in_scope: native_eval.in_scope,
                    effective: with_virtual.effective,
                    native: native_eval.native,
                });
                combined_tags.insert(index as u32, combined);
            }
        }
    }
    (out, combined_tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Attrs, Provider};
    use crate::policy::parse_policy;

    fn policy() -> Policy {
        parse_policy(
            r#"{"aliases": {"Environment": ["env"]},
                "required_tags": [
                  {"name": "Environment", "allowed_values": ["production", "dev"]},
                  {"name": "Team"}]}"#,
        )
        .unwrap()
    }

    fn resource(id: &str, tags: &[(&str, &str)]) -> Resource {
        Resource {
            id: id.into(),
            provider: Provider::Aws,
            account: "1".into(),
            region: "r".into(),
            resource_type: "s3:bucket".into(),
            name: id.into(),
            tags: normalise_tags(
                tags.iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            ),
            attributes: Attrs::default(),
        }
    }

    fn v(key: &str, value: &str, override_native: bool) -> VirtualValue {
        VirtualValue {
            key: key.into(),
            value: value.into(),
            override_native,
        }
    }

    #[test]
    fn virtual_tags_fill_gaps_and_replace_invalid_values() {
        let p = policy();
        let resources = vec![
            resource("a", &[("Environment", "production")]),
            resource("b", &[("env", "prd"), ("Team", "x")]),
            resource("c", &[("Team", "x")]),
        ];
        let overlay = VirtualOverlay::new(
            3,
            [
                ("a".into(), v("Team", "payments", false)),
                ("b".into(), v("Environment", "production", false)),
                ("c".into(), v("Environment", "dev", false)),
            ],
        );
        let (evals, combined) = evaluate_with_overlay(&p, &resources, &overlay);
        for i in 0..3 {
            assert!(evals.get(i).effective.is_empty(), "{i}: {:?}", evals.get(i));
            assert!(
                !evals.get(i).native.is_empty(),
                "native view unchanged for {i}"
            );
        }
        // The invalid alias spelling is gone from b's effective tags.
        let b = &combined[&1];
        assert!(b.iter().all(|(k, _)| k != "env"));
        assert_eq!(combined.len(), 3);
    }

    #[test]
    fn a_valid_native_value_is_kept_unless_overridden() {
        let p = policy();
        let resources = vec![resource("a", &[("env", "production"), ("Team", "x")])];
        let keep = VirtualOverlay::new(1, [("a".into(), v("Environment", "dev", false))]);
        let (_, combined) = evaluate_with_overlay(&p, &resources, &keep);
        assert!(combined.is_empty(), "the native value stays");
        let force = VirtualOverlay::new(2, [("a".into(), v("Environment", "dev", true))]);
        let (evals, combined) = evaluate_with_overlay(&p, &resources, &force);
        assert_eq!(
            combined[&0],
            normalise_tags(vec![
                ("Environment".into(), "dev".into()),
                ("Team".into(), "x".into())
            ])
        );
        assert!(evals.get(0).effective.is_empty());
    }

    #[test]
    fn two_threads_evaluate_as_one() {
        let p = policy();
        let n = EVALUATE_ON_TWO_THREADS_FROM + 1_001;
        let resources: Vec<Resource> = (0..n)
            .map(|i| {
                let id = format!("r-{i:06}");
                match i % 4 {
                    0 => resource(&id, &[("Environment", "production"), ("Team", "x")]),
                    1 => resource(&id, &[("env", "prd")]),
                    2 => resource(&id, &[("Team", "y")]),
                    _ => resource(&id, &[]),
                }
            })
            .collect();
        // Virtual tags on resources in both halves, one right at the split.
        let overlay = VirtualOverlay::new(
            1,
            [3, n / 2, n / 2 + 1, n - 2]
                .map(|i| (format!("r-{i:06}").into(), v("Environment", "dev", true))),
        );
        let (together, combined) = evaluate_with_overlay(&p, &resources, &overlay);
        let (alone, alone_combined) = evaluate_range(&p, &resources, 0, &overlay);
        assert_eq!(together.len(), n);
        assert!(together.iter().eq(alone.iter()));
        assert_eq!(combined, alone_combined);
        assert_eq!(combined.len(), 4);
        assert!(combined.contains_key(&((n / 2 + 1) as u32)));
    }

    #[test]
    fn fingerprints_follow_content_not_generation() {
        // Regression: answers were keyed by the store's generation, which two stores (or a
        // change racing an evaluation) can share with different tags.
        let a = VirtualOverlay::new(1, [("a".into(), v("Team", "x", false))]);
        let b = VirtualOverlay::new(1, [("a".into(), v("Team", "y", false))]);
        let a_again = VirtualOverlay::new(9, [("a".into(), v("Team", "x", false))]);
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint, a_again.fingerprint);
        assert_ne!(a.fingerprint, VirtualOverlay::new(1, []).fingerprint);
    }

    #[test]
    fn resources_without_virtual_tags_evaluate_as_before() {
        let p = policy();
        let resources = vec![resource("a", &[("env", "nope")]), resource("b", &[])];
        let plain = crate::compliance::evaluate_inventory(&p, &resources);
        let (evals, combined) = evaluate_with_overlay(&p, &resources, &VirtualOverlay::default());
        assert!(combined.is_empty());
        for i in 0..2 {
            assert_eq!(evals.get(i), plain.get(i));
        }
    }
}
