//! Policy evaluation: one resource's type and tags in, its violations in both views out.
//!
//! Pure and allocation-light: violations are 12-byte records that point back into the policy
//! and the resource's tag list, and are rendered to text only when shown (`render.rs`). An
//! `Evaluator` keeps scratch space and a per-type scope cache so evaluating millions of resources
//! does not allocate per resource beyond the result itself.
//!
//! Two views are computed together because they share the tag scan:
//! - **native**: only the exact canonical key satisfies a rule; every alias or case variant
//!   present is a `misnamed_key` violation;
//! - **effective**: variants are renamed to the canonical key (exact key first, then case
//!   variants, then aliases) and value aliases are applied; there is no `misnamed_key`.

use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::compiled::{KeyId, KeyRef, Policy, ValueProblem};
use super::model::Severity;

/// The kinds of violation (SPEC §3).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    MissingRequiredTag,
    EmptyValue,
    InvalidValue,
    InvalidFormat,
    MisnamedKey,
    ProhibitedTag,
    ConditionalRequirement,
    ConflictingTags,
    TooManyTags,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 9] = [
        ViolationKind::MissingRequiredTag,
        ViolationKind::EmptyValue,
        ViolationKind::InvalidValue,
        ViolationKind::InvalidFormat,
        ViolationKind::MisnamedKey,
        ViolationKind::ProhibitedTag,
        ViolationKind::ConditionalRequirement,
        ViolationKind::ConflictingTags,
        ViolationKind::TooManyTags,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::MissingRequiredTag => "missing_required_tag",
            ViolationKind::EmptyValue => "empty_value",
            ViolationKind::InvalidValue => "invalid_value",
            ViolationKind::InvalidFormat => "invalid_format",
            ViolationKind::MisnamedKey => "misnamed_key",
            ViolationKind::ProhibitedTag => "prohibited_tag",
            ViolationKind::ConditionalRequirement => "conditional_requirement",
            ViolationKind::ConflictingTags => "conflicting_tags",
            ViolationKind::TooManyTags => "too_many_tags",
        }
    }
}

/// Which view of a resource's tags is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Tags normalised by the policy (aliases and case variants renamed, value aliases applied).
    #[default]
    Effective,
    /// Tags exactly as the cloud holds them.
    Native,
}

/// The policy rule a violation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleRef {
    Required(u16),
    Optional(u16),
    Prohibited(u16),
    Conflict(u16),
    MaxTags,
    /// `tag_naming_rules` length limits.
    Naming,
    /// A misnamed key (no rule of its own: it belongs to the canonical key).
    Alias,
}

pub const NO_TAG: u16 = u16::MAX;
pub const NO_KEY: KeyId = KeyId::MAX;

/// One violation, compact: everything textual is looked up at render time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub severity: Severity,
    /// Canonical key id, or `NO_KEY` (prohibited, naming, too-many-tags).
    pub key: KeyId,
    /// Index of the resource's native tag involved, or `NO_TAG`.
    pub tag: u16,
    pub rule: RuleRef,
}

pub type Violations = SmallVec<[Violation; 2]>;

/// The result of evaluating one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// At least one required rule's `applies_to` matches the resource's type.
    pub in_scope: bool,
    pub effective: Violations,
    pub native: Violations,
}

impl Evaluation {
    pub fn violations(&self, view: View) -> &[Violation] {
        match view {
            View::Effective => &self.effective,
            View::Native => &self.native,
        }
    }

    /// Compliant when in scope and no violation is at or above `fail_at`.
    pub fn is_compliant(&self, view: View, fail_at: Severity) -> bool {
        self.in_scope && !self.violations(view).iter().any(|v| v.severity >= fail_at)
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    exact: u16,
    case: u16,
    alias: u16,
}

const EMPTY_SLOT: Slot = Slot {
    exact: NO_TAG,
    case: NO_TAG,
    alias: NO_TAG,
};

/// Evaluates resources against one policy, reusing scratch space between calls.
pub struct Evaluator<'p> {
    policy: &'p Policy,
    scope_cache: FxHashMap<Box<str>, Box<[u16]>>,
    scratch: Scratch,
}

/// Per-resource working state, reset after each resource.
struct Scratch {
    slots: Vec<Slot>,
    touched: Vec<KeyId>,
    misnamed: Vec<(u16, KeyId)>,
    prohibited: Vec<(u16, u16)>,
    lower: String,
    /// User tag keys (not `aws:`) on the resource.
    user_keys: usize,
    /// Tags that resolved to a canonical key (exactly or as a variant).
    resolved: usize,
}

impl Policy {
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            policy: self,
            scope_cache: FxHashMap::default(),
            scratch: Scratch {
                slots: vec![EMPTY_SLOT; self.keys.len()],
                touched: Vec::new(),
                misnamed: Vec::new(),
                prohibited: Vec::new(),
                lower: String::new(),
                user_keys: 0,
                resolved: 0,
            },
        }
    }

    /// Convenience for one-off checks; use `evaluator()` in loops.
    pub fn evaluate<K: AsRef<str>, V: AsRef<str>>(
        &self,
        resource_type: &str,
        tags: &[(K, V)],
    ) -> Evaluation {
        self.evaluator().evaluate(resource_type, tags)
    }
}

/// The tags of one resource as seen through one view.
struct Resolved<'a, K, V> {
    policy: &'a Policy,
    slots: &'a [Slot],
    tags: &'a [(K, V)],
    view: View,
}

impl<'a, K: AsRef<str>, V: AsRef<str>> Resolved<'a, K, V> {
    /// The tag index that supplies `key` in this view.
    fn tag_for(&self, key: KeyId) -> u16 {
        let s = self.slots[key as usize];
        match self.view {
            View::Native => s.exact,
            View::Effective => {
                if s.exact != NO_TAG {
                    s.exact
                } else if s.case != NO_TAG {
                    s.case
                } else {
                    s.alias
                }
            }
        }
    }

    /// The value of `key` in this view (value aliases applied in the effective view).
    fn value(&self, key: KeyId) -> Option<&'a str> {
        let tag = self.tag_for(key);
        if tag == NO_TAG {
            return None;
        }
        let raw = self.tags[tag as usize].1.as_ref();
        if self.view == View::Effective
            && let Some(canonical) = self.policy.keys[key as usize].value_aliases.get(raw)
        {
            return Some(canonical);
        }
        Some(raw)
    }
}

impl<'p> Evaluator<'p> {
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// Indices of the required rules whose `applies_to` matches this type (cached per type).
    pub fn rules_for_type(&mut self, resource_type: &str) -> &[u16] {
        scope(&mut self.scope_cache, self.policy, resource_type)
    }

    pub fn evaluate<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        resource_type: &str,
        tags: &[(K, V)],
    ) -> Evaluation {
        let mut out = Evaluation::default();
        let policy = self.policy;
        let rules = scope(&mut self.scope_cache, policy, resource_type);
        if rules.is_empty() {
            return out;
        }
        out.in_scope = true;
        let scratch = &mut self.scratch;
        scratch.scan(policy, tags);
        for view in [View::Effective, View::Native] {
            let resolved = Resolved {
                policy,
                slots: &scratch.slots,
                tags,
                view,
            };
            let list = match view {
                View::Effective => &mut out.effective,
                View::Native => &mut out.native,
            };
            check_required(policy, rules, &resolved, list);
            check_optional(policy, &resolved, list);
            if view == View::Native {
                for &(tag, key) in &scratch.misnamed {
                    list.push(Violation {
                        kind: ViolationKind::MisnamedKey,
                        severity: misnamed_severity(policy, rules, key),
                        key,
                        tag,
                        rule: RuleRef::Alias,
                    });
                }
            }
            for &(tag, rule) in &scratch.prohibited {
                list.push(Violation {
                    kind: ViolationKind::ProhibitedTag,
                    severity: policy.prohibited[rule as usize].severity,
                    key: NO_KEY,
                    tag,
                    rule: RuleRef::Prohibited(rule),
                });
            }
            check_naming(policy, tags, list);
            // In the effective view every variant merges into its canonical key.
            let key_count = match view {
                View::Native => scratch.user_keys,
                View::Effective => {
                    scratch.user_keys - scratch.resolved + scratch.touched.len()
                }
            };
            check_max_tags(policy, key_count, list);
            check_conflicts(policy, &resolved, list);
        }
        scratch.reset();
        out
    }
}

fn scope<'c>(
    cache: &'c mut FxHashMap<Box<str>, Box<[u16]>>,
    policy: &Policy,
    resource_type: &str,
) -> &'c [u16] {
    if !cache.contains_key(resource_type) {
        let rules = policy.rules_for_type(resource_type).into_boxed_slice();
        cache.insert(resource_type.into(), rules);
    }
    cache.get(resource_type).map(|b| &b[..]).unwrap_or(&[])
}

impl Scratch {
    /// Resolves every tag to a canonical key slot, a misnamed variant or a prohibited key.
    fn scan<K: AsRef<str>, V: AsRef<str>>(&mut self, policy: &Policy, tags: &[(K, V)]) {
        for (i, (key, _)) in tags.iter().enumerate() {
            let key = key.as_ref();
            if key.starts_with("aws:") || i >= NO_TAG as usize {
                continue;
            }
            self.user_keys += 1;
            let i = i as u16;
            let (target, exact_name) = match policy.exact.get(key) {
                Some(r) => (*r, true),
                None => {
                    if policy.folded.is_empty() {
                        continue;
                    }
                    fold_into(&mut self.lower, key);
                    match policy.folded.get(self.lower.as_str()) {
                        Some(r) => (*r, false),
                        None => continue,
                    }
                }
            };
            let id = match target {
                KeyRef::Prohibited(rule) => {
                    self.prohibited.push((i, rule));
                    continue;
                }
                KeyRef::Canonical(id) | KeyRef::Alias(id) => id,
            };
            self.resolved += 1;
            let slot = &mut self.slots[id as usize];
            if slot.exact == NO_TAG && slot.case == NO_TAG && slot.alias == NO_TAG {
                self.touched.push(id);
            }
            match (target, exact_name) {
                (KeyRef::Canonical(_), true) => slot.exact = i,
                (KeyRef::Canonical(_), false) => {
                    if slot.case == NO_TAG {
                        slot.case = i;
                    }
                    self.misnamed.push((i, id));
                }
                _ => {
                    if slot.alias == NO_TAG {
                        slot.alias = i;
                    }
                    self.misnamed.push((i, id));
                }
            }
        }
    }

    fn reset(&mut self) {
        for id in self.touched.drain(..) {
            self.slots[id as usize] = EMPTY_SLOT;
        }
        self.misnamed.clear();
        self.prohibited.clear();
        self.user_keys = 0;
        self.resolved = 0;
    }
}

fn fold_into(buf: &mut String, key: &str) {
    buf.clear();
    if key.is_ascii() {
        buf.push_str(key);
        buf.make_ascii_lowercase();
    } else {
        buf.extend(key.chars().flat_map(char::to_lowercase));
    }
}

fn check_required<K: AsRef<str>, V: AsRef<str>>(
    policy: &Policy,
    rules: &[u16],
    resolved: &Resolved<'_, K, V>,
    out: &mut Violations,
) {
    for &index in rules {
        let rule = &policy.required[index as usize];
        if let Some(when) = &rule.when
            && !when.holds(resolved.value(when.key))
        {
            continue;
        }
        let tag = resolved.tag_for(rule.key);
        let kind = match resolved.value(rule.key) {
            None if rule.when.is_some() => ViolationKind::ConditionalRequirement,
            None => ViolationKind::MissingRequiredTag,
            Some(v) if v.trim().is_empty() => ViolationKind::EmptyValue,
            Some(v) => match rule.check.check(v) {
                None => continue,
                Some(ValueProblem::NotAllowed) => ViolationKind::InvalidValue,
                Some(ValueProblem::BadFormat) => ViolationKind::InvalidFormat,
            },
        };
        out.push(Violation {
            kind,
            severity: rule.severity,
            key: rule.key,
            tag,
            rule: RuleRef::Required(index),
        });
    }
}

/// Optional tags need not be present, but a present one must be valid.
fn check_optional<K: AsRef<str>, V: AsRef<str>>(
    policy: &Policy,
    resolved: &Resolved<'_, K, V>,
    out: &mut Violations,
) {
    for (index, rule) in policy.optional.iter().enumerate() {
        if rule.check.is_unconstrained() {
            continue;
        }
        let Some(value) = resolved.value(rule.key) else {
            continue;
        };
        let kind = match rule.check.check(value) {
            None => continue,
            Some(ValueProblem::NotAllowed) => ViolationKind::InvalidValue,
            Some(ValueProblem::BadFormat) => ViolationKind::InvalidFormat,
        };
        out.push(Violation {
            kind,
            severity: rule.severity,
            key: rule.key,
            tag: resolved.tag_for(rule.key),
            rule: RuleRef::Optional(index as u16),
        });
    }
}

/// A misnamed key is as serious as the rule of its canonical key (`low` if none applies).
fn misnamed_severity(policy: &Policy, rules: &[u16], key: KeyId) -> Severity {
    rules
        .iter()
        .map(|&i| &policy.required[i as usize])
        .filter(|r| r.key == key)
        .map(|r| r.severity)
        .max()
        .unwrap_or(Severity::Low)
}

fn check_naming<K: AsRef<str>, V: AsRef<str>>(
    policy: &Policy,
    tags: &[(K, V)],
    out: &mut Violations,
) {
    if policy.max_key_length.is_none() && policy.max_value_length.is_none() {
        return;
    }
    let max_key = policy.max_key_length.unwrap_or(usize::MAX);
    let max_value = policy.max_value_length.unwrap_or(usize::MAX);
    for (i, (k, v)) in tags.iter().enumerate().take(NO_TAG as usize) {
        let (k, v) = (k.as_ref(), v.as_ref());
        if k.starts_with("aws:") {
            continue;
        }
        if k.chars().count() > max_key || v.chars().count() > max_value {
            out.push(Violation {
                kind: ViolationKind::InvalidFormat,
                severity: Severity::Low,
                key: NO_KEY,
                tag: i as u16,
                rule: RuleRef::Naming,
            });
        }
    }
}

/// `max_tags` counts user keys (not `aws:`).
fn check_max_tags(policy: &Policy, key_count: usize, out: &mut Violations) {
    let Some((limit, severity)) = policy.max_tags else {
        return;
    };
    if key_count > limit as usize {
        out.push(Violation {
            kind: ViolationKind::TooManyTags,
            severity,
            key: NO_KEY,
            tag: NO_TAG,
            rule: RuleRef::MaxTags,
        });
    }
}

fn check_conflicts<K: AsRef<str>, V: AsRef<str>>(
    policy: &Policy,
    resolved: &Resolved<'_, K, V>,
    out: &mut Violations,
) {
    for (index, conflict) in policy.conflicts.iter().enumerate() {
        if conflict
            .conditions
            .iter()
            .all(|c| c.holds(resolved.value(c.key)))
        {
            let first = &conflict.conditions[0];
            out.push(Violation {
                kind: ViolationKind::ConflictingTags,
                severity: conflict.severity,
                key: first.key,
                tag: resolved.tag_for(first.key),
                rule: RuleRef::Conflict(index as u16),
            });
        }
    }
}
