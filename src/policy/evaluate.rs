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

use super::compiled::{KeyId, KeyRef, Policy, ValueCheck, ValueProblem};
use super::model::Severity;
use super::violation::Span;
pub(crate) use super::violation::{
    Evaluation, EvaluationRef, Evaluations, NO_KEY, NO_TAG, RuleRef, View, Violation, ViolationKind,
};

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
    /// Reuse the effective result as the native one when the views cannot differ (off only in
    /// tests that check the shortcut against the full evaluation).
    shortcut: bool,
    scope_cache: FxHashMap<Box<str>, TypeScope>,
    /// The last type seen and its scope (a type never equals the initial empty string).
    last_type: (Box<str>, TypeScope),
    memo: ValueMemo,
    scratch: Scratch,
}

/// Whether a type is judged at all, and the required rules that apply to it.
#[derive(Debug, Clone, Default)]
struct TypeScope {
    in_scope: bool,
    rules: Box<[u16]>,
}

/// Remembers regex verdicts per rule and value: estates repeat the same few values (cost
/// centres, owners, applications) across thousands of resources, and both views usually check
/// the same value, so most checks become one hash lookup instead of a regex run.
struct ValueMemo {
    /// Index: required rules first, then optional rules.
    verdicts: Vec<FxHashMap<Box<str>, Option<ValueProblem>>>,
}

/// Entries kept per rule before the memo for that rule is reset (bounds memory on estates
/// whose values are all distinct).
const MEMO_LIMIT: usize = 4096;

impl ValueMemo {
    fn check(&mut self, slot: usize, check: &ValueCheck, value: &str) -> Option<ValueProblem> {
        if check.regex.is_none() {
            return check.check(value);
        }
        let verdicts = &mut self.verdicts[slot];
        if let Some(v) = verdicts.get(value) {
            return *v;
        }
        let verdict = check.check(value);
        if verdicts.len() >= MEMO_LIMIT {
            verdicts.clear();
        }
        verdicts.insert(value.into(), verdict);
        verdict
    }
}

/// Per-resource working state, reset after each resource.
struct Scratch {
    slots: Vec<Slot>,
    touched: Vec<KeyId>,
    misnamed: Vec<(u16, KeyId)>,
    prohibited: Vec<(u16, u16)>,
    naming: Vec<Violation>,
    lower: String,
    /// User tag keys (not `aws:`) on the resource.
    user_keys: usize,
    /// Tags that resolved to a canonical key (exactly or as a variant).
    resolved: usize,
}

impl Policy {
    /// An evaluator of resources under this policy (reusable scratch space).
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            policy: self,
            shortcut: true,
            scope_cache: FxHashMap::default(),
            last_type: (Box::from(""), TypeScope::default()),
            memo: ValueMemo {
                verdicts: vec![FxHashMap::default(); self.required.len() + self.optional.len()],
            },
            scratch: Scratch {
                slots: vec![EMPTY_SLOT; self.keys.len()],
                touched: Vec::new(),
                misnamed: Vec::new(),
                prohibited: Vec::new(),
                naming: Vec::new(),
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
    /// Set when a value alias was applied (the views then differ).
    aliased: std::cell::Cell<bool>,
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
            self.aliased.set(true);
            return Some(canonical);
        }
        Some(raw)
    }
}

impl<'p> Evaluator<'p> {
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    #[cfg(test)]
    pub(crate) fn without_shortcut(mut self) -> Self {
        self.shortcut = false;
        self
    }

    /// Indices of the required rules whose `applies_to` matches this type (cached per type).
    pub fn rules_for_type(&mut self, resource_type: &str) -> &[u16] {
        &scope(
            &mut self.scope_cache,
            &mut self.last_type,
            self.policy,
            resource_type,
        )
        .rules
    }

    pub fn evaluate<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        resource_type: &str,
        tags: &[(K, V)],
    ) -> Evaluation {
        let mut one = Evaluations::default();
        self.evaluate_into(resource_type, tags, &mut one);
        let r = one.get(0);
        Evaluation {
            in_scope: r.in_scope,
            effective: r.effective.to_vec(),
            native: r.native.to_vec(),
        }
    }

    /// Evaluates one resource and appends the result to `out`.
    pub fn evaluate_into<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        resource_type: &str,
        tags: &[(K, V)],
        out: &mut Evaluations,
    ) {
        let policy = self.policy;
        let start = out.violations.len();
        let type_scope = scope(
            &mut self.scope_cache,
            &mut self.last_type,
            policy,
            resource_type,
        );
        let rules = &type_scope.rules;
        if !type_scope.in_scope {
            out.spans.push(Span {
                effective_start: start as u32,
                native_start: start as u32,
                ..Span::default()
            });
            return;
        }
        let scratch = &mut self.scratch;
        scratch.scan(policy, tags);
        naming_violations(policy, tags, &mut scratch.naming);
        let list = &mut out.violations;
        let aliased = check_view(
            policy,
            rules,
            scratch,
            &mut self.memo,
            tags,
            View::Effective,
            list,
        );
        let effective_len = list.len() - start;
        // Without misnamed keys or aliased values the two views see the same tags: the native
        // result is the effective one (most resources; halves the work).
        let (native_start, native_len) = if self.shortcut && scratch.misnamed.is_empty() && !aliased
        {
            (start, effective_len)
        } else {
            let native_start = list.len();
            check_view(
                policy,
                rules,
                scratch,
                &mut self.memo,
                tags,
                View::Native,
                list,
            );
            (native_start, list.len() - native_start)
        };
        scratch.reset();
        out.spans.push(Span {
            effective_start: start as u32,
            native_start: native_start as u32,
            effective_len: effective_len as u16,
            native_len: native_len as u16,
            in_scope: true,
        });
    }
}

/// All violations of one view; returns whether a value alias was applied.
fn check_view<K: AsRef<str>, V: AsRef<str>>(
    policy: &Policy,
    rules: &[u16],
    scratch: &Scratch,
    memo: &mut ValueMemo,
    tags: &[(K, V)],
    view: View,
    list: &mut Vec<Violation>,
) -> bool {
    let resolved = Resolved {
        policy,
        slots: &scratch.slots,
        tags,
        view,
        aliased: std::cell::Cell::new(false),
    };
    check_required(policy, rules, &resolved, memo, list);
    check_optional(policy, &resolved, memo, list);
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
    list.extend(scratch.naming.iter().copied());
    // In the effective view every variant merges into its canonical key.
    let key_count = match view {
        View::Native => scratch.user_keys,
        View::Effective => scratch.user_keys - scratch.resolved + scratch.touched.len(),
    };
    check_max_tags(policy, key_count, list);
    check_conflicts(policy, &resolved, list);
    resolved.aliased.get()
}

/// The scope of a type: resources arrive clustered by type (sorted by ARN), so the last type
/// is remembered before the hash map is consulted.
fn scope<'c>(
    cache: &'c mut FxHashMap<Box<str>, TypeScope>,
    last: &'c mut (Box<str>, TypeScope),
    policy: &Policy,
    resource_type: &str,
) -> &'c TypeScope {
    if *last.0 == *resource_type {
        return &last.1;
    }
    let found = match cache.get(resource_type) {
        Some(s) => s.clone(),
        None => {
            let rules: Box<[u16]> = policy.rules_for_type(resource_type).into_boxed_slice();
            let s = TypeScope {
                in_scope: !rules.is_empty() || policy.in_declared_scope(resource_type),
                rules,
            };
            cache.insert(resource_type.into(), s.clone());
            s
        }
    };
    *last = (resource_type.into(), found);
    &last.1
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
        self.naming.clear();
        self.user_keys = 0;
        self.resolved = 0;
    }
}

impl ValueProblem {
    fn kind(self) -> ViolationKind {
        match self {
            ValueProblem::NotAllowed => ViolationKind::InvalidValue,
            ValueProblem::BadFormat => ViolationKind::InvalidFormat,
        }
    }
}

/// Empty or only whitespace; stops at the first visible character (no trimming copy).
fn is_blank(v: &str) -> bool {
    v.chars().all(char::is_whitespace)
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
    memo: &mut ValueMemo,
    out: &mut Vec<Violation>,
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
            Some(v) if is_blank(v) => ViolationKind::EmptyValue,
            Some(v) => match memo.check(index as usize, &rule.check, v) {
                None => continue,
                Some(problem) => problem.kind(),
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
    memo: &mut ValueMemo,
    out: &mut Vec<Violation>,
) {
    for (index, rule) in policy.optional.iter().enumerate() {
        if rule.check.is_unconstrained() {
            continue;
        }
        let Some(value) = resolved.value(rule.key) else {
            continue;
        };
        let Some(problem) = memo.check(policy.required.len() + index, &rule.check, value) else {
            continue;
        };
        let kind = problem.kind();
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

/// Tags longer than `tag_naming_rules` allows (the same in both views, so found once).
fn naming_violations<K: AsRef<str>, V: AsRef<str>>(
    policy: &Policy,
    tags: &[(K, V)],
    out: &mut Vec<Violation>,
) {
    if policy.max_key_length.is_none() && policy.max_value_length.is_none() {
        return;
    }
    let max_key = policy.max_key_length.unwrap_or(usize::MAX);
    let max_value = policy.max_value_length.unwrap_or(usize::MAX);
    // A string of n bytes has at most n characters: count characters only when the byte
    // length is over the limit.
    let too_long = |s: &str, max: usize| s.len() > max && s.chars().count() > max;
    for (i, (k, v)) in tags.iter().enumerate().take(NO_TAG as usize) {
        let (k, v) = (k.as_ref(), v.as_ref());
        if k.starts_with("aws:") {
            continue;
        }
        if too_long(k, max_key) || too_long(v, max_value) {
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
fn check_max_tags(policy: &Policy, key_count: usize, out: &mut Vec<Violation>) {
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
    out: &mut Vec<Violation>,
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
