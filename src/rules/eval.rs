//! Matching: conditions are checked without allocating (regexes only answer "is there a match",
//! and which capturing regexes matched is a bit mask); captures are extracted, and strings
//! built, only for the rule that matched.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;

use regex::Captures;

use super::compile::{CompiledRules, FieldRef, Glob, Node, Part, Rule, Template, Test};
use super::{RuleMatch, RunResult};
use crate::inventory::Resource;

/// Tag keys looked up per resource without allocating; rules reading more distinct keys than
/// this use a heap buffer.
const INLINE_KEYS: usize = 16;

/// A lazily-filled cache entry: `None` until looked up, then the tag's value (if any).
type Cached<'a> = Cell<Option<Option<&'a str>>>;

/// One resource's fields as the rules read them. Tag values are looked up once per key and
/// cached: many rules test the same few keys (`tag:Team`, `tag:Owner`), and repeated map
/// lookups were the largest cost in `benches/rules.rs`.
struct Fields<'a> {
    r: &'a Resource,
    effective: &'a BTreeMap<String, String>,
    keys: &'a [String],
    cache: &'a [Cached<'a>],
}

impl<'a> Fields<'a> {
    /// Runs `f` with the fields of `r`, the tag cache on the stack when it fits.
    fn with<T>(
        keys: &'a [String],
        r: &'a Resource,
        effective: &'a BTreeMap<String, String>,
        f: impl FnOnce(&Fields<'_>) -> T,
    ) -> T {
        if keys.len() <= INLINE_KEYS {
            let cache: [Cached<'_>; INLINE_KEYS] = Default::default();
            f(&Fields {
                r,
                effective,
                keys,
                cache: &cache[..keys.len()],
            })
        } else {
            let cache: Vec<Cached<'_>> = keys.iter().map(|_| Cell::new(None)).collect();
            f(&Fields {
                r,
                effective,
                keys,
                cache: &cache,
            })
        }
    }

    /// The field's value; `None` when the resource has none.
    fn get(&self, field: &FieldRef) -> Option<&'a str> {
        let r = self.r;
        match field {
            FieldRef::Type => Some(&r.resource_type),
            FieldRef::Name => Some(&r.name),
            FieldRef::Id => Some(&r.id),
            FieldRef::Account => Some(&r.account),
            FieldRef::Region => Some(&r.region),
            FieldRef::Provider => Some(r.provider.as_str()),
            FieldRef::Vpc => r.attributes.vpc.as_deref(),
            FieldRef::Subnet => r.attributes.subnet.as_deref(),
            FieldRef::Stack => r.stack(),
            FieldRef::Creator => r.creator(),
            FieldRef::Tag(i) => {
                let slot = self.cache.get(*i)?;
                if let Some(known) = slot.get() {
                    return known;
                }
                let value = self
                    .keys
                    .get(*i)
                    .and_then(|k| self.effective.get(k.as_str()))
                    .map(String::as_str);
                slot.set(Some(value));
                value
            }
        }
    }
}

/// Whether `node` holds; sets the mask bit of each capturing regex that matched along the way
/// (and clears the bits of an `all` that failed, so stale captures never leak into the result).
fn holds(node: &Node, fields: &Fields<'_>, mask: &mut u64) -> bool {
    match node {
        Node::All { children, clear } => {
            for child in children {
                if !holds(child, fields, mask) {
                    *mask &= !clear;
                    return false;
                }
            }
            true
        }
        // A failed branch leaves no bits set, so the captures are those of the first branch
        // that held (evaluation stops there).
        Node::Any(children) => children.iter().any(|c| holds(c, fields, mask)),
        // Regexes under `not` have no slots: nothing to undo.
        Node::Not(inner) => !holds(inner, fields, mask),
        Node::Test { field, test } => {
            let value = fields.get(field);
            match test {
                Test::Exists(want) => value.is_some_and(|v| !v.is_empty()) == *want,
                Test::Eq(expected) => value == Some(expected.as_str()),
                Test::In(values) => {
                    value.is_some_and(|v| values.binary_search_by(|x| x.as_str().cmp(v)).is_ok())
                }
                Test::Glob(Glob::Star(w)) => value.is_some_and(|v| w.matches(v)),
                Test::Glob(Glob::Regex(re)) => value.is_some_and(|v| re.is_match(v)),
                Test::Regex { regex, slot } => {
                    let matched = value.is_some_and(|v| regex.is_match(v));
                    if let (true, Some(bit)) = (matched, slot) {
                        *mask |= 1u64 << bit;
                    }
                    matched
                }
            }
        }
    }
}

impl Rule {
    /// The rule's tags for a resource, or `None` when it does not match (its condition fails
    /// or a value comes out empty).
    fn apply(&self, fields: &Fields<'_>) -> Option<Vec<(String, String)>> {
        let mut mask = 0u64;
        if !self.enabled || !holds(&self.when, fields, &mut mask) {
            return None;
        }
        let mut captures = CaptureCache {
            rule: self,
            mask,
            fields,
            found: Vec::new(),
        };
        let mut tags = Vec::with_capacity(self.set.len());
        for (key, template) in &self.set {
            let value = match template.literal() {
                Some(v) => v.to_string(),
                None => captures.render(template),
            };
            if value.is_empty() {
                return None;
            }
            tags.push((key.clone(), value));
        }
        Some(tags)
    }
}

/// Captures of the rule's matched regexes, extracted on first use.
struct CaptureCache<'r, 'f, 'a> {
    rule: &'r Rule,
    mask: u64,
    fields: &'f Fields<'a>,
    found: Vec<(usize, Option<Captures<'a>>)>,
}

impl<'a> CaptureCache<'_, '_, 'a> {
    fn matched(&self, slot: usize) -> bool {
        slot < 64 && self.mask & (1u64 << slot) != 0
    }

    fn captures(&mut self, slot: usize) -> Option<&Captures<'a>> {
        let at = match self.found.iter().position(|(s, _)| *s == slot) {
            Some(at) => at,
            None => {
                let s = self.rule.slots.get(slot)?;
                let caps = self
                    .fields
                    .get(&s.field)
                    .and_then(|text| s.regex.captures(text));
                self.found.push((slot, caps));
                self.found.len() - 1
            }
        };
        self.found[at].1.as_ref()
    }

    fn group(&mut self, slot: usize, group: usize) -> Option<&'a str> {
        self.captures(slot)?.get(group).map(|m| m.as_str())
    }

    fn render(&mut self, template: &Template) -> String {
        let mut out = String::new();
        for part in &template.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Position(n) => {
                    // `{n}` comes from the first capturing regex that matched, in rule order.
                    let first = (0..self.rule.slots.len()).find(|&s| self.matched(s));
                    if let Some(text) = first.and_then(|s| self.group(s, *n)) {
                        out.push_str(text);
                    }
                }
                Part::Named(candidates) => {
                    for &(slot, group) in candidates {
                        if !self.matched(slot) {
                            continue;
                        }
                        if let Some(text) = self.group(slot, group) {
                            out.push_str(text);
                            break;
                        }
                    }
                }
            }
        }
        out
    }
}

impl CompiledRules {
    /// The first enabled rule (by priority, then id) whose condition holds for `r`, with its
    /// tags (captures substituted). `effective` is `r`'s effective tags, which `tag:KEY`
    /// conditions read. A rule whose value comes out empty does not match; the next is tried.
    pub fn first_match(
        &self,
        r: &Resource,
        effective: &BTreeMap<String, String>,
    ) -> Option<RuleMatch> {
        self.match_one(r, effective).map(|(_, m)| m)
    }

    /// The matching rule's index in evaluation order, and the match.
    fn match_one(
        &self,
        r: &Resource,
        effective: &BTreeMap<String, String>,
    ) -> Option<(usize, RuleMatch)> {
        Fields::with(&self.tag_keys, r, effective, |fields| self.match_in(fields))
    }

    fn match_in(&self, fields: &Fields<'_>) -> Option<(usize, RuleMatch)> {
        self.rules.iter().enumerate().find_map(|(i, rule)| {
            rule.apply(fields).map(|tags| {
                (
                    i,
                    RuleMatch {
                        rule_id: rule.id,
                        rule_name: rule.name.clone(),
                        tags,
                        override_native: rule.override_native,
                        trusted: rule.trusted,
                    },
                )
            })
        })
    }

    /// Runs the rules over every resource: the matches (resource index, match) in resource
    /// order and each rule's match count. `effective(i)` gives resource i's effective tags; it
    /// is called at most once per resource, and never when no enabled rule reads a tag.
    pub fn run<'e>(
        &self,
        resources: &[Resource],
        effective: &dyn Fn(usize) -> Cow<'e, BTreeMap<String, String>>,
    ) -> RunResult {
        let no_tags = BTreeMap::new();
        let mut counts = vec![0u64; self.rules.len()];
        let mut matches = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            let owned;
            let eff = if self.uses_tags {
                owned = effective(i);
                owned.as_ref()
            } else {
                &no_tags
            };
            if let Some((rule, m)) = self.match_one(r, eff) {
                counts[rule] += 1;
                matches.push((i, m));
            }
        }
        RunResult {
            matches,
            per_rule: self
                .rules
                .iter()
                .zip(counts)
                .map(|(rule, n)| (rule.id, n))
                .collect(),
        }
    }
}
