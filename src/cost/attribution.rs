//! Attribution of spend to tags, pure: which spend can be allocated by the policy's required
//! keys, overall and per key, grouped, with the unattributed resources that cost most.
//!
//! A line of spend is *attributable by a key* when the key is not required of its resource
//! (the rule's `applies_to` and `when`), or its resource carries a valid value for it (present,
//! non-empty, accepted by the rule's allowed values / pattern), read from effective tags (the
//! policy's key and value aliases applied; approved virtual tags on top). It is
//! *attributable* when that holds for every required key. A rule with a `when` condition
//! requires its key only where the condition holds, as in compliance.
//!
//! A charge tied to no resource (support, tax, a fee, an account-level credit) has no type for
//! `applies_to` to match, and no resource for a condition to describe, so every required key
//! applies to it, whatever its rules' `applies_to` and `when`: it is attributable by a key only
//! when its own tags carry a valid value for it (judged by the key's first rule, as billing data
//! is), and attributable only when they do for every key. Shared costs that no tag allocates are
//! part of the gap, and stay so when a rule for other types is added or removed.
//!
//! Every line is counted once, so attributable + unattributable = total, exactly, per key, per
//! group and overall. The sums cannot overflow: cost sources bound the absolute values of their
//! lines' amounts (`LineCosts::check_sums`), which bounds every sum here.

use std::collections::BTreeMap;

use compact_str::CompactString;
use rustc_hash::FxHashMap;

use super::{CostLine, Micros};
use crate::compliance::ResourceFilter;
use crate::inventory::{Provider, Resource, index_of};
use crate::policy::Policy;
use crate::policy::compiled::RequiredRule;

/// At most this many required keys are judged (a bit each); no real policy comes close.
pub(crate) const MAX_KEYS: usize = 64;

/// Judges, per required key, whether a value makes spend attributable.
pub struct KeyJudge<'p> {
    policy: &'p Policy,
    keys: Vec<JudgedKey<'p>>,
}

struct JudgedKey<'p> {
    name: &'p str,
    /// The key's rules, in policy order: the first that applies to a resource decides; a
    /// value judged without a resource (billing data) uses the first rule's check.
    rules: Vec<&'p RequiredRule>,
}

/// Why a key does not attribute a resource's spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyProblem {
    Missing,
    Invalid,
}

impl KeyProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyProblem::Missing => "missing",
            KeyProblem::Invalid => "invalid",
        }
    }
}

impl<'p> KeyJudge<'p> {
    pub fn new(policy: &'p Policy) -> KeyJudge<'p> {
        let mut keys: Vec<JudgedKey<'p>> = Vec::new();
        for rule in policy.required_rules() {
            let name = policy.key_name(rule.key);
            if let Some(k) = keys.iter_mut().find(|k| k.name == name) {
                k.rules.push(rule);
            } else if keys.len() < MAX_KEYS {
                keys.push(JudgedKey {
                    name,
                    rules: vec![rule],
                });
            }
        }
        KeyJudge { policy, keys }
    }

    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// The required keys, in policy order.
    pub fn keys(&self) -> impl Iterator<Item = &'p str> + '_ {
        self.keys.iter().map(|k| k.name)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bits of the keys whose value makes spend attributable.
    pub fn all_mask(&self) -> u64 {
        if self.keys.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.keys.len()) - 1
        }
    }

    /// Whether `value` (already effective: value aliases applied) is a valid value of key
    /// `index` under `rule` (None: the key's first rule).
    fn value_is_valid_under(&self, index: usize, rule: Option<&RequiredRule>, value: &str) -> bool {
        if value.trim().is_empty() {
            return false;
        }
        rule.or(self.keys[index].rules.first().copied())
            .is_none_or(|r| r.check.check(value).is_none())
    }

    /// Whether `value` (already effective) is a valid value of key `index` where nothing else
    /// is known of the resource (billing data): the key's first rule decides.
    pub fn value_is_valid(&self, index: usize, value: &str) -> bool {
        self.value_is_valid_under(index, None, value)
    }

    /// The effective value of key `index` among effective tags.
    pub fn value<'t>(
        &self,
        index: usize,
        effective: &'t BTreeMap<String, String>,
    ) -> Option<&'t str> {
        effective.get(self.keys[index].name).map(String::as_str)
    }

    /// The first rule of key `index` that requires it of a resource of this type with these
    /// effective tags (its types match and its `when` holds).
    fn rule_for(
        &self,
        index: usize,
        resource_type: &str,
        effective: &BTreeMap<String, String>,
    ) -> Option<&'p RequiredRule> {
        self.keys[index].rules.iter().copied().find(|r| {
            r.applies_to.matches(resource_type)
                && r.when.as_ref().is_none_or(|w| {
                    w.holds(
                        effective
                            .get(self.policy.key_name(w.key))
                            .map(String::as_str),
                    )
                })
        })
    }

    /// Whether key `index` is required of a resource of this type with these effective tags
    /// (a rule's types match and its `when` holds): the resources its coverage counts.
    pub fn required(
        &self,
        index: usize,
        resource_type: &str,
        effective: &BTreeMap<String, String>,
    ) -> bool {
        self.rule_for(index, resource_type, effective).is_some()
    }

    /// Whether key `index` is required of every resource (a rule for every type, without a
    /// condition).
    pub fn applies_to_every_type(&self, index: usize) -> bool {
        self.keys[index]
            .rules
            .iter()
            .any(|r| r.applies_to.matches_all_types() && r.when.is_none())
    }

    /// Each key's verdict for a resource's effective tags: `None` when attributable (valid, or
    /// not required of the type).
    pub fn problems(
        &self,
        resource_type: &str,
        effective: &BTreeMap<String, String>,
    ) -> Vec<Option<KeyProblem>> {
        (0..self.keys.len())
            .map(|i| {
                let rule = self.rule_for(i, resource_type, effective)?;
                self.verdict(i, Some(rule), effective)
            })
            .collect()
    }

    /// Each key's verdict for a charge tied to no resource: every key is required of it (see
    /// the module docs), its value judged by the key's first rule.
    pub fn problems_without_resource(
        &self,
        effective: &BTreeMap<String, String>,
    ) -> Vec<Option<KeyProblem>> {
        (0..self.keys.len())
            .map(|i| self.verdict(i, None, effective))
            .collect()
    }

    /// Key `index`'s verdict on effective tags, where it is required (under `rule`; None: the
    /// key's first rule).
    fn verdict(
        &self,
        index: usize,
        rule: Option<&RequiredRule>,
        effective: &BTreeMap<String, String>,
    ) -> Option<KeyProblem> {
        match self.value(index, effective) {
            None => Some(KeyProblem::Missing),
            Some(v) if v.trim().is_empty() => Some(KeyProblem::Missing),
            Some(v) if self.value_is_valid_under(index, rule, v) => None,
            Some(_) => Some(KeyProblem::Invalid),
        }
    }

    /// Bit i set when key i attributes the resource.
    pub fn valid_mask(&self, resource_type: &str, effective: &BTreeMap<String, String>) -> u64 {
        self.problems(resource_type, effective)
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_none())
            .fold(0u64, |mask, (i, _)| mask | (1 << i))
    }
}

/// How to break the gap down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    ResourceType,
    Region,
    Account,
    Service,
    Provider,
    /// The effective value of a tag key (`(missing)` / `(invalid)` when it has none valid).
    Tag(String),
}

/// Spend split into attributable and not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub attributable: Micros,
    pub unattributable: Micros,
}

impl Split {
    pub fn total(&self) -> Micros {
        self.attributable + self.unattributable
    }

    fn add(&mut self, amount: Micros, attributable: bool) {
        if attributable {
            self.attributable += amount;
        } else {
            self.unattributable += amount;
        }
    }
}

/// One group of the breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSplit {
    pub group: String,
    pub split: Split,
}

/// An unattributed resource (or resource-less charge) and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unattributed {
    /// Empty for charges tied to no resource.
    pub resource_id: CompactString,
    pub provider: Provider,
    pub resource_type: arcstr::ArcStr,
    pub name: arcstr::ArcStr,
    pub account: arcstr::ArcStr,
    pub region: arcstr::ArcStr,
    pub services: Vec<CompactString>,
    pub cost: Micros,
    /// (key, problem) for each required key that does not attribute it.
    pub problems: Vec<(String, KeyProblem)>,
    /// True when the resource is in the inventory (else only the cost data knows it).
    pub in_inventory: bool,
}

/// The attribution of a set of cost lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub overall: Split,
    /// Per required key, in policy order.
    pub by_key: Vec<(String, Split)>,
    /// The breakdown, most unattributable spend first.
    pub groups: Vec<GroupSplit>,
    pub by_provider: Vec<GroupSplit>,
    /// Unattributed resources, most costly first (all of them; callers truncate).
    pub unattributed: Vec<Unattributed>,
    /// Spend on lines tied to no resource (support, tax, account-level credits): attributable
    /// only where their own tags carry a valid value for every required key.
    pub without_resource: Split,
    /// Lines and distinct resources priced, and of those resources how many the inventory
    /// holds.
    pub lines: usize,
    pub resources: usize,
    pub resources_in_inventory: usize,
}

/// Everything the attribution reads. `resources` must be sorted by id (inventories are).
pub(crate) struct AttributionInput<'a> {
    pub judge: &'a KeyJudge<'a>,
    pub lines: &'a [CostLine],
    pub resources: &'a [Resource],
    pub filter: &'a ResourceFilter,
    pub group_by: &'a GroupBy,
    /// Tags to lay over a resource's effective tags (approved virtual tags), by resource id.
    pub overlay: &'a dyn Fn(&str, &mut BTreeMap<String, String>),
}

/// Per resource: where its tags come from and its verdict.
struct Verdict {
    problems: Vec<Option<KeyProblem>>,
    effective: BTreeMap<String, String>,
    inventory_index: Option<usize>,
}

pub(crate) fn attribute(input: &AttributionInput<'_>) -> Attribution {
    let judge = input.judge;
    let policy = judge.policy();
    let key_names: Vec<&str> = judge.keys().collect();
    let mut verdicts: FxHashMap<&str, Verdict> = FxHashMap::default();
    let mut overall = Split::default();
    let mut by_key = vec![Split::default(); key_names.len()];
    let mut groups: BTreeMap<String, Split> = BTreeMap::new();
    let mut by_provider: BTreeMap<&'static str, Split> = BTreeMap::new();
    let mut without_resource = Split::default();
    let mut unattributed: BTreeMap<(&str, usize), Unattributed> = BTreeMap::new();
    let mut lines = 0;
    let group_key_index = match input.group_by {
        GroupBy::Tag(key) => Some(key.as_str()),
        _ => None,
    };
    for (line_index, line) in input.lines.iter().enumerate() {
        let inventory_index = if line.resource_id.is_empty() {
            None
        } else {
            index_of(input.resources, &line.resource_id)
        };
        let as_resource;
        let resource: &Resource = match inventory_index {
            Some(i) => &input.resources[i],
            None => {
                as_resource = line.as_resource();
                &as_resource
            }
        };
        if !input.filter.matches(resource) {
            continue;
        }
        lines += 1;
        // Resource-less lines are judged one by one (by their own tags), keyed by position.
        let verdict_key: &str = if line.resource_id.is_empty() {
            ""
        } else {
            line.resource_id.as_str()
        };
        let fresh_verdict = || {
            let mut effective = policy.effective_tags(&resource.tags);
            if !line.resource_id.is_empty() {
                (input.overlay)(&line.resource_id, &mut effective);
            }
            let problems = if line.resource_id.is_empty() {
                judge.problems_without_resource(&effective)
            } else {
                judge.problems(&resource.resource_type, &effective)
            };
            Verdict {
                problems,
                effective,
                inventory_index,
            }
        };
        let owned;
        let verdict: &Verdict = if verdict_key.is_empty() {
            owned = fresh_verdict();
            &owned
        } else {
            verdicts.entry(verdict_key).or_insert_with(fresh_verdict)
        };
        let attributable = verdict.problems.iter().all(Option::is_none);
        overall.add(line.amount, attributable);
        for (i, p) in verdict.problems.iter().enumerate() {
            by_key[i].add(line.amount, p.is_none());
        }
        by_provider
            .entry(resource.provider.as_str())
            .or_default()
            .add(line.amount, attributable);
        if line.resource_id.is_empty() {
            without_resource.add(line.amount, attributable);
        }
        let group = match input.group_by {
            GroupBy::ResourceType => non_empty(&resource.resource_type, "(unknown type)"),
            GroupBy::Region => non_empty(&resource.region, "(no region)"),
            GroupBy::Account => non_empty(&resource.account, "(no account)"),
            GroupBy::Service => non_empty(&line.service, "(no service)"),
            GroupBy::Provider => resource.provider.as_str().to_string(),
            GroupBy::Tag(_) => tag_group(judge, group_key_index, verdict),
        };
        groups
            .entry(group)
            .or_default()
            .add(line.amount, attributable);
        if !attributable {
            let slot = if line.resource_id.is_empty() {
                line_index
            } else {
                0
            };
            let entry = unattributed
                .entry((verdict_key, slot))
                .or_insert_with(|| Unattributed {
                    resource_id: line.resource_id.clone(),
                    provider: resource.provider,
                    resource_type: resource.resource_type.clone(),
                    name: resource.name.clone(),
                    account: resource.account.clone(),
                    region: resource.region.clone(),
                    services: Vec::new(),
                    cost: 0,
                    problems: verdict
                        .problems
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| p.map(|p| (key_names[i].to_string(), p)))
                        .collect(),
                    in_inventory: verdict.inventory_index.is_some(),
                });
            entry.cost += line.amount;
            if !entry.services.contains(&line.service) {
                entry.services.push(line.service.clone());
            }
        }
    }
    let resources = verdicts.len();
    let resources_in_inventory = verdicts
        .values()
        .filter(|v| v.inventory_index.is_some())
        .count();
    let mut unattributed: Vec<Unattributed> = unattributed.into_values().collect();
    unattributed.sort_by(|a, b| {
        b.cost
            .cmp(&a.cost)
            .then_with(|| a.resource_id.cmp(&b.resource_id))
    });
    Attribution {
        overall,
        by_key: key_names
            .iter()
            .map(|k| k.to_string())
            .zip(by_key)
            .collect(),
        groups: sorted_groups(groups.into_iter()),
        by_provider: sorted_groups(by_provider.into_iter().map(|(k, v)| (k.to_string(), v))),
        unattributed,
        without_resource,
        lines,
        resources,
        resources_in_inventory,
    }
}

fn non_empty(text: &str, otherwise: &str) -> String {
    if text.is_empty() {
        otherwise.to_string()
    } else {
        text.to_string()
    }
}

/// The group of a resource by a tag key: its valid value, `(missing)` or `(invalid)`. A key
/// the policy does not require is read as it is (any non-empty value is a group).
fn tag_group(judge: &KeyJudge<'_>, key: Option<&str>, verdict: &Verdict) -> String {
    let Some(key) = key else {
        return String::new();
    };
    match judge.keys().position(|k| k == key) {
        Some(i) => match verdict.problems[i] {
            None => judge
                .value(i, &verdict.effective)
                .unwrap_or_default()
                .to_string(),
            Some(KeyProblem::Missing) => "(missing)".to_string(),
            Some(KeyProblem::Invalid) => "(invalid)".to_string(),
        },
        None => match verdict.effective.get(key).filter(|v| !v.trim().is_empty()) {
            Some(v) => v.clone(),
            None => "(missing)".to_string(),
        },
    }
}

/// Most unattributable spend first, then by name.
fn sorted_groups(groups: impl Iterator<Item = (String, Split)>) -> Vec<GroupSplit> {
    let mut v: Vec<GroupSplit> = groups
        .map(|(group, split)| GroupSplit { group, split })
        .collect();
    v.sort_by(|a, b| {
        b.split
            .unattributable
            .cmp(&a.split.unattributable)
            .then_with(|| b.split.total().cmp(&a.split.total()))
            .then_with(|| a.group.cmp(&b.group))
    });
    v
}

/// Each resource's total cost over all its lines (for money on compliance findings).
pub(crate) fn cost_by_resource(lines: &[CostLine]) -> FxHashMap<CompactString, Micros> {
    let mut costs: FxHashMap<CompactString, Micros> = FxHashMap::default();
    for line in lines.iter().filter(|l| !l.resource_id.is_empty()) {
        *costs.entry(line.resource_id.clone()).or_default() += line.amount;
    }
    costs
}

/// `part` as a percentage of `whole`, 2 decimals; None for a zero whole.
pub(crate) fn pct(part: Micros, whole: Micros) -> Option<f64> {
    (whole != 0).then(|| ((part as f64 / whole as f64) * 10_000.0).round() / 100.0)
}

#[cfg(test)]
mod tests;
