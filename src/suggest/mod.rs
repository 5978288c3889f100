//! Tag suggestions with calibrated confidence.
//!
//! For a resource missing (or holding an invalid value for) a required key, propose likely
//! values, each with a confidence, the evidence behind it and one line of reasoning. Evidence
//! comes from the resource's name, from resources that share its stack, network, account, name
//! prefix or another tag value, from virtual-tagging rules and from stray tags on the resource
//! itself; it is combined per value (see `score.rs`) and the combination is checked against the
//! ground truth of two generated estates, the demo and an irregular one (`calibrate.rs`). Pure:
//! statistics are computed once per estate, then each resource is answered from them without
//! I/O.

mod calibrate;
mod score;
mod stats;
mod text;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::inventory::Resource;
use crate::policy::Policy;
use crate::policy::compiled::ValueCheck;
use crate::policy::pattern::Wildcard;

#[cfg(test)]
pub(crate) use calibrate::CalibrationReport;
pub(crate) use calibrate::{evaluate_demo, evaluate_irregular};
use score::Source;
use stats::{Interner, NONE, Patterns, Table};

/// Confidence thresholds and how many candidates to return per key.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuggestConfig {
    /// At or above: `high` (may be auto-proposed as a pending tag).
    pub high: f64,
    /// At or above (and below `high`): `medium`; below: `low` (shown as options only).
    pub medium: f64,
    /// Candidates returned per key, best first.
    pub max_candidates: usize,
}

impl Default for SuggestConfig {
    fn default() -> Self {
        SuggestConfig {
            high: 0.9,
            medium: 0.7,
            max_candidates: 3,
        }
    }
}

/// Users' decisions on suggested tags: evidence source name → (approved, denied).
pub type Reliability = BTreeMap<String, (u64, u64)>;

/// How sure a candidate is, by the configured thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    High,
    Medium,
    Low,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }
}

/// Proposed values for one key of one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeySuggestion {
    pub key: String,
    /// `missing` (absent or blank) or `invalid` (present but rejected by the policy).
    pub problem: String,
    /// The invalid value as found (after the policy's key and value aliases).
    pub current_value: Option<String>,
    /// Best first; empty when nothing supports any valid value.
    pub candidates: Vec<Candidate>,
}

/// One proposed value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Candidate {
    pub value: String,
    /// Estimated probability that the value is right, rounded to 3 decimals.
    pub confidence: f64,
    pub band: Band,
    /// What supports the value, strongest first.
    pub evidence: Vec<Evidence>,
    /// One line, e.g. "name token `prod` and 14 of 15 resources in stack payments-prod say
    /// production".
    pub reasoning: String,
}

/// One piece of support for a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// `name_token`, `similar_stack`, `similar_vpc`, `similar_account`, `name_prefix`,
    /// `related_tag`, `rule`, `current_value`, `similar_key` or `policy_values`.
    pub source: String,
    pub detail: String,
    /// Resources (or assertions) backing the value in this source.
    pub support: u32,
    /// The weight this evidence had in the combination: the source's designed weight scaled
    /// by users' feedback (1 for a stack with no feedback), and for one of several name
    /// tokens or other tags, by its share of that source.
    pub weight: f64,
}

/// A virtual-tagging rule's value for (resource index, key), if one would set it.
pub(crate) type RuleValues<'a> = Box<dyn Fn(usize, &str) -> Option<String> + 'a>;

/// Which group columns a resource has: stack, network (VPC, else subnet), account, name prefix.
const ATTRS: usize = 4;

/// The values seen for one policy key.
struct KeyValues {
    name: String,
    values: Interner,
    /// Whether each value passes the key's checks (only those count as evidence).
    usable: Vec<bool>,
}

/// What is learned about one required key.
struct Target {
    /// The policy key id (index into `Suggester::keys`).
    key: usize,
    /// Indices of the required rules for this key.
    rules: Vec<usize>,
    /// Valid values across the estate: per value id, and in all.
    counts: Vec<u32>,
    valid: u32,
    /// Values that get a share of the prior's smoothing: seen ones and allowed literals.
    distinct: u32,
    attrs: [Table; ATTRS],
    tokens: Table,
    /// Per other policy key id: that key's value → this key's value.
    related: Vec<Option<Table>>,
    /// Squashed value (`paymentsapi`) → value id, and squashed mailbox local part → value id;
    /// `NONE` where two values collide.
    squashed: FxHashMap<String, u32>,
    local: FxHashMap<String, u32>,
    /// For the environment key: word (`prod`) → value id (`production`).
    env: FxHashMap<Box<str>, u32>,
    /// The literal allowed values, as value ids, in policy order.
    allowed: Vec<u32>,
    /// The allowed-value pattern of each value, and the counts per pattern.
    patterns: Patterns,
}

/// Built once per (inventory, policy, reliability); answers many resources fast.
pub struct Suggester<'a> {
    policy: &'a Policy,
    resources: &'a [Resource],
    rule_values: Option<RuleValues<'a>>,
    stats: Arc<SuggestStats>,
}

/// What a suggester learned from an estate, owned, so a server can keep it between calls
/// (counting 100k resources takes a few hundred ms; answering takes tens).
pub struct SuggestStats {
    config: SuggestConfig,
    /// Per source: its weight after feedback.
    weights: [f64; Source::COUNT],
    keys: Vec<KeyValues>,
    /// Resource-major: value id of each policy key for each resource, or `NONE`.
    cells: Vec<u32>,
    group_names: [Interner; ATTRS],
    /// Resource-major: group id per attribute, or `NONE`.
    groups: Vec<[u32; ATTRS]>,
    tokens: Interner,
    token_start: Vec<u32>,
    token_ids: Vec<u32>,
    targets: Vec<Target>,
}

/// The checks a key's values must pass to count as evidence: any of its required rules (rules
/// may differ by type) and its optional rule.
fn value_usable(policy: &Policy, key: usize, value: &str) -> bool {
    if value.trim().is_empty() {
        return false;
    }
    let mut required = policy
        .required_rules()
        .iter()
        .filter(|r| r.key as usize == key)
        .peekable();
    let required_ok = required.peek().is_none() || required.any(|r| passes(&r.check, value));
    let optional_ok = policy
        .optional_rules()
        .iter()
        .filter(|r| r.key as usize == key)
        .all(|r| passes(&r.check, value));
    required_ok && optional_ok
}

fn passes(check: &ValueCheck, value: &str) -> bool {
    !value.trim().is_empty() && check.check(value).is_none()
}

impl std::ops::Deref for Suggester<'_> {
    type Target = SuggestStats;

    fn deref(&self) -> &SuggestStats {
        &self.stats
    }
}

impl<'a> Suggester<'a> {
    /// `effective(i)` = resource i's effective tags (the caller overlays approved virtual
    /// tags). Statistics are counted here, once; `suggest` only looks them up.
    pub fn new(
        policy: &'a Policy,
        resources: &'a [Resource],
        effective: &dyn Fn(usize) -> BTreeMap<String, String>,
        reliability: &Reliability,
        config: SuggestConfig,
    ) -> Suggester<'a> {
        let key_count = policy.keys.len();
        let mut keys: Vec<KeyValues> = policy
            .keys
            .iter()
            .map(|k| KeyValues {
                name: k.name.clone(),
                values: Interner::default(),
                usable: Vec::new(),
            })
            .collect();
        let mut cells = vec![NONE; resources.len() * key_count];
        let mut group_names: [Interner; ATTRS] = Default::default();
        let mut groups = Vec::with_capacity(resources.len());
        let mut tokens = Interner::default();
        let mut token_start = Vec::with_capacity(resources.len() + 1);
        let mut token_ids = Vec::new();
        let (mut lower, mut buffer, mut prefix) = (String::new(), String::new(), String::new());

        // Pass 1: each resource's values, groups and name tokens as dense ids.
        for (i, r) in resources.iter().enumerate() {
            let tags = effective(i);
            for (k, kv) in keys.iter_mut().enumerate() {
                if let Some(value) = tags.get(&kv.name) {
                    let before = kv.values.len();
                    let id = kv.values.intern(value);
                    if kv.values.len() > before {
                        kv.usable.push(value_usable(policy, k, value));
                    }
                    cells[i * key_count + k] = id;
                }
            }
            lower.clear();
            lower.extend(r.name.chars().flat_map(char::to_lowercase));
            let network = r.attributes.vpc.as_ref().or(r.attributes.subnet.as_ref());
            let mut g = [NONE; ATTRS];
            if let Some(stack) = r.stack() {
                g[0] = group_names[0].intern(stack);
            }
            if let Some(network) = network {
                g[1] = group_names[1].intern(network);
            }
            if !r.account.is_empty() {
                g[2] = group_names[2].intern(&r.account);
            }
            if text::name_prefix(&lower, &mut prefix) {
                g[3] = group_names[3].intern(&prefix);
            }
            groups.push(g);
            let start = token_ids.len();
            token_start.push(start as u32);
            text::for_each_token(&lower, &mut buffer, |t| token_ids.push(tokens.intern(t)));
            token_ids[start..].sort_unstable();
            let mut unique = start;
            for j in start..token_ids.len() {
                if j == start || token_ids[j] != token_ids[unique - 1] {
                    token_ids[unique] = token_ids[j];
                    unique += 1;
                }
            }
            token_ids.truncate(unique);
        }
        token_start.push(token_ids.len() as u32);

        // The distinct required keys, with the allowed values and dictionary words interned so
        // that they can be proposed even when the estate has never used them.
        let mut target_keys: Vec<usize> = Vec::new();
        for rule in policy.required_rules() {
            if !target_keys.contains(&(rule.key as usize)) {
                target_keys.push(rule.key as usize);
            }
        }
        let mut targets = Vec::with_capacity(target_keys.len());
        for &key in &target_keys {
            let rules: Vec<usize> = policy
                .required_rules()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.key as usize == key)
                .map(|(i, _)| i)
                .collect();
            let (allowed, env) = intern_policy_values(policy, key, &rules, &mut keys[key]);
            targets.push(Target {
                key,
                rules,
                counts: Vec::new(),
                valid: 0,
                distinct: 0,
                attrs: std::array::from_fn(|_| Table::new(0, 1)),
                tokens: Table::new(0, 1),
                related: Vec::new(),
                squashed: FxHashMap::default(),
                local: FxHashMap::default(),
                env,
                allowed,
                patterns: Patterns::default(),
            });
        }

        // Pass 2: count each valid value in every group its resource belongs to.
        for t in &mut targets {
            let kv = &keys[t.key];
            t.patterns = classify_values(policy, &t.rules, kv);
            let np = t.patterns.len();
            t.counts = vec![0; kv.values.len()];
            t.attrs = std::array::from_fn(|a| Table::new(group_names[a].len(), np));
            t.tokens = Table::new(tokens.len(), np);
            t.related = (0..key_count)
                .map(|j| (j != t.key).then(|| Table::new(keys[j].values.len(), np)))
                .collect();
            for (i, g) in groups.iter().enumerate() {
                let own = cells[i * key_count + t.key];
                if own == NONE || !kv.usable[own as usize] {
                    continue;
                }
                let pattern = t.patterns.of(own).unwrap_or(0);
                t.counts[own as usize] += 1;
                t.valid += 1;
                for (a, &group) in g.iter().enumerate() {
                    if group != NONE {
                        t.attrs[a].add(group, own, pattern);
                    }
                }
                let (s, e) = (token_start[i] as usize, token_start[i + 1] as usize);
                for &token in &token_ids[s..e] {
                    t.tokens.add(token, own, pattern);
                }
                for (j, table) in t.related.iter_mut().enumerate() {
                    if let Some(table) = table {
                        let other = cells[i * key_count + j];
                        if other != NONE && keys[j].usable[other as usize] {
                            table.add(other, own, pattern);
                        }
                    }
                }
            }
            for (v, &c) in t.counts.iter().enumerate() {
                if c > 0 || t.allowed.contains(&(v as u32)) {
                    t.distinct += 1;
                    let p = t.patterns.of(v as u32).unwrap_or(0);
                    t.patterns.counts[p] += c;
                    t.patterns.distinct[p] += 1;
                }
            }
            let denominator = f64::from(t.valid) + 0.5 * f64::from(t.distinct + 1);
            let counts = &t.counts;
            let prior = |v: u32| {
                (f64::from(counts.get(v as usize).copied().unwrap_or(0)) + 0.5) / denominator
            };
            let patterns = &t.patterns;
            let mass: Vec<f64> = patterns
                .counts
                .iter()
                .zip(&patterns.distinct)
                .map(|(&c, &d)| (f64::from(c) + 0.5 * f64::from(d)) / denominator)
                .collect();
            for table in t
                .attrs
                .iter_mut()
                .chain([&mut t.tokens])
                .chain(t.related.iter_mut().flatten())
            {
                table.finish();
                table.fit(&prior, &|v| patterns.of(v), &mass);
            }
            for (id, &count) in t.counts.iter().enumerate() {
                if count == 0 && !t.allowed.contains(&(id as u32)) {
                    continue;
                }
                let value = kv.values.name(id as u32);
                insert_unique(&mut t.squashed, text::squash(value), id as u32);
                if let Some((local, _)) = value.split_once('@') {
                    insert_unique(&mut t.local, text::squash(local), id as u32);
                }
            }
        }

        let stats = SuggestStats {
            config,
            weights: score::weights(reliability),
            keys,
            cells,
            group_names,
            groups,
            tokens,
            token_start,
            token_ids,
            targets,
        };
        Suggester {
            policy,
            resources,
            rule_values: None,
            stats: Arc::new(stats),
        }
    }

    /// A suggester over statistics built earlier for the same resources, policy and feedback.
    pub fn from_stats(
        policy: &'a Policy,
        resources: &'a [Resource],
        stats: Arc<SuggestStats>,
    ) -> Suggester<'a> {
        Suggester {
            policy,
            resources,
            rule_values: None,
            stats,
        }
    }

    /// The statistics, to keep for later calls on the same data.
    pub fn stats(&self) -> Arc<SuggestStats> {
        self.stats.clone()
    }

    /// Adds virtual-tagging rule values as evidence (`rule`): `f(i, key)` is the value a rule
    /// would set on resource `i`, if any.
    pub fn with_rule_values(mut self, f: RuleValues<'a>) -> Self {
        self.rule_values = Some(f);
        self
    }

    /// Suggestions for resource `index`: for each required key that applies to it and is
    /// missing or invalid (restricted to `keys` when non-empty; names may be aliases or case
    /// variants), candidates best first. Keys whose value is valid are not included.
    pub fn suggest(&self, index: usize, keys: &[String]) -> Vec<KeySuggestion> {
        if index >= self.resources.len() {
            return Vec::new();
        }
        let wanted: Vec<usize> = keys
            .iter()
            .filter_map(|k| match self.policy.classify(k) {
                Some(
                    crate::policy::compiled::KeyRef::Canonical(id)
                    | crate::policy::compiled::KeyRef::Alias(id),
                ) => Some(id as usize),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (t, target) in self.targets.iter().enumerate() {
            if !keys.is_empty() && !wanted.contains(&target.key) {
                continue;
            }
            let Some(rule) = self.applicable_rule(index, target) else {
                continue;
            };
            let current = self.cell(index, target.key);
            let current_text =
                (current != NONE).then(|| self.keys[target.key].values.name(current));
            let blank = current_text.is_none_or(|v| v.trim().is_empty());
            if !blank && current_text.is_some_and(|v| self.passes_rule(rule, v)) {
                continue;
            }
            let analysis = self.analyse(index, t, rule, false);
            out.push(KeySuggestion {
                key: self.keys[target.key].name.clone(),
                problem: if blank { "missing" } else { "invalid" }.to_string(),
                current_value: (!blank).then(|| current_text.unwrap_or_default().to_string()),
                candidates: self.render(&analysis, t),
            });
        }
        out
    }

    fn cell(&self, index: usize, key: usize) -> u32 {
        self.cells
            .get(index * self.keys.len() + key)
            .copied()
            .unwrap_or(NONE)
    }

    /// The first required rule of the target key that applies to the resource's type and
    /// whose condition holds on its effective tags.
    fn applicable_rule(&self, index: usize, target: &Target) -> Option<usize> {
        let resource = self.resources.get(index)?;
        target.rules.iter().copied().find(|&r| {
            let Some(rule) = self.policy.required_rules().get(r) else {
                return false;
            };
            if !rule.applies_to.matches(&resource.resource_type) {
                return false;
            }
            match &rule.when {
                None => true,
                Some(when) => {
                    let v = self.cell(index, when.key as usize);
                    let value = (v != NONE).then(|| self.keys[when.key as usize].values.name(v));
                    when.holds(value)
                }
            }
        })
    }

    fn passes_rule(&self, rule: usize, value: &str) -> bool {
        self.policy
            .required_rules()
            .get(rule)
            .is_some_and(|r| passes(&r.check, value))
    }
}

/// The key's allowed-value patterns (allowed values and globs of its required rules, each
/// once, in policy order, then one for values matching none) and each known value's pattern.
/// A key without allowed values has a single pattern.
fn classify_values(policy: &Policy, rules: &[usize], kv: &KeyValues) -> Patterns {
    let mut globs: Vec<Wildcard> = Vec::new();
    for &r in rules {
        let allowed = policy
            .required_rules()
            .get(r)
            .and_then(|rule| rule.check.allowed.as_ref());
        for v in allowed.map(|a| a.values()).unwrap_or(&[]) {
            if !globs.iter().any(|g| g.as_str() == v) {
                globs.push(Wildcard::new(v));
            }
        }
    }
    Patterns::new(globs, &kv.values)
}

/// Inserts `key → id`, marking the key ambiguous (`NONE`) when another id already holds it.
fn insert_unique(map: &mut FxHashMap<String, u32>, key: String, id: u32) {
    if key.is_empty() {
        return;
    }
    map.entry(key)
        .and_modify(|v| {
            if *v != id {
                *v = NONE;
            }
        })
        .or_insert(id);
}

/// Interns the key's literal allowed values and, for an environment key, builds the word →
/// value map: the policy's own values and value aliases first, then the dictionary's words
/// mapped onto them. Returns (allowed value ids, word map).
fn intern_policy_values(
    policy: &Policy,
    key: usize,
    rules: &[usize],
    kv: &mut KeyValues,
) -> (Vec<u32>, FxHashMap<Box<str>, u32>) {
    let intern = |kv: &mut KeyValues, value: &str| -> u32 {
        let before = kv.values.len();
        let id = kv.values.intern(value);
        if kv.values.len() > before {
            kv.usable.push(value_usable(policy, key, value));
        }
        id
    };
    let mut allowed = Vec::new();
    for &r in rules {
        if let Some(values) = policy
            .required_rules()
            .get(r)
            .and_then(|rule| rule.check.allowed.as_ref())
        {
            for v in values.values() {
                if !v.contains('*') {
                    let id = intern(kv, v);
                    if !allowed.contains(&id) {
                        allowed.push(id);
                    }
                }
            }
        }
    }
    let mut env: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let aliases = &policy.keys[key].value_aliases;
    let is_env = text::is_env_key_name(&kv.name)
        || policy
            .aliases_of(&kv.name)
            .iter()
            .any(|a| text::is_env_key_name(a));
    if !is_env {
        return (allowed, env);
    }
    for &id in &allowed {
        env.entry(kv.values.name(id).to_lowercase().into())
            .or_insert(id);
    }
    let mut alias_pairs: Vec<(&str, &str)> = aliases.iter().map(|(v, c)| (&**v, &**c)).collect();
    alias_pairs.sort_unstable();
    for (variant, canonical) in alias_pairs {
        if value_usable(policy, key, canonical) {
            let id = intern(kv, canonical);
            env.entry(variant.to_lowercase().into()).or_insert(id);
        }
    }
    for words in text::ENV_WORDS {
        // The concept's value: the first of its words the policy accepts, directly, as a
        // value alias or as a case variant of an allowed value.
        let mapped = words.iter().find_map(|w| {
            if let Some(&id) = env.get(*w) {
                return Some(id);
            }
            value_usable(policy, key, w).then(|| intern(kv, w))
        });
        if let Some(id) = mapped {
            for w in words.iter() {
                env.entry((*w).into()).or_insert(id);
            }
        }
    }
    (allowed, env)
}
