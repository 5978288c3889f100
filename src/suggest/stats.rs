//! Co-occurrence statistics: for each governed key, how its valid values are spread over the
//! groups a resource belongs to (stack, VPC, account, name prefix, name token, the value of
//! another key). Counted once per estate; a suggestion for one resource subtracts that
//! resource's own contribution on the fly, so hiding a value never leaks it back.
//!
//! Values are also counted per *pattern*: the allowed value or glob they match (`production`,
//! `sandbox-*`). A kind of group can be telling about the pattern and not about the value
//! within it: a stack shared by several people says "a sandbox", not whose. So each table's
//! smoothing is fitted twice: once for the patterns, and once per pattern for the values in
//! it, each from how much the groups of that kind really agree.

use rustc_hash::FxHashMap;

use crate::policy::pattern::Wildcard;

/// Marks "no value" / "no group" in the dense id columns.
pub(super) const NONE: u32 = u32::MAX;

/// How many of a group's most frequent values are kept: one more than the candidates a source
/// proposes, so the top list stays exact after the resource's own value is subtracted.
pub(super) const TOP: usize = 4;

/// The smoothing strengths tried when fitting a table (see `Table::fit`).
const BETAS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
/// The rates of following the group tried when fitting a table, from "always" to "never".
const FOLLOWS: &[f64] = &[1.0, 0.97, 0.9, 0.75, 0.5, 0.25, 0.0];
/// The smoothing strength of a table with nothing to fit it on.
const DEFAULT_BETA: f64 = 2.0;

/// How a group's counts become shares. A member follows its group `follow` of the time (its
/// value is then drawn from the group's, Beta-smoothed towards the estate-wide frequency with
/// strength `beta`), and otherwise holds a value of its own, drawn from the estate. Stacks of
/// one deployment follow nearly always; stacks shared by several people's sandboxes hardly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Smoothing {
    pub(super) beta: f64,
    pub(super) follow: f64,
}

impl Smoothing {
    pub(super) const DEFAULT: Smoothing = Smoothing {
        beta: DEFAULT_BETA,
        follow: 1.0,
    };

    /// The share of a value that `c` of the `n` other members hold and that has estate-wide
    /// frequency `q`.
    pub(super) fn share(self, c: f64, n: f64, q: f64) -> f64 {
        self.follow * (c + self.beta * q) / (n + self.beta) + (1.0 - self.follow) * q
    }
}

/// Leave-one-out log-likelihood of the members seen, for each smoothing on the grid.
struct Fit {
    likelihood: Vec<f64>,
    members: u64,
}

impl Fit {
    fn new() -> Self {
        Fit {
            likelihood: vec![0.0; BETAS.len() * FOLLOWS.len()],
            members: 0,
        }
    }

    /// `count` members each holding a value that `count - 1` of the `n - 1` others hold,
    /// with estate-wide frequency `q`.
    fn add(&mut self, count: u32, n: u32, q: f64) {
        self.members += u64::from(count);
        let (c, n) = (f64::from(count), f64::from(n));
        let mut cells = self.likelihood.chunks_exact_mut(FOLLOWS.len());
        for &beta in BETAS {
            let group = (c - 1.0 + beta * q) / (n - 1.0 + beta);
            if let Some(row) = cells.next() {
                for (l, &follow) in row.iter_mut().zip(FOLLOWS) {
                    *l += c * (follow * group + (1.0 - follow) * q).ln();
                }
            }
        }
    }

    /// The most likely smoothing (the first of equals: least smoothing, most following), or
    /// `None` with nothing seen.
    fn best(&self) -> Option<Smoothing> {
        if self.members == 0 {
            return None;
        }
        let k = argmax(&self.likelihood);
        Some(Smoothing {
            beta: BETAS[k / FOLLOWS.len()],
            follow: FOLLOWS[k % FOLLOWS.len()],
        })
    }
}

/// Strings to dense ids.
#[derive(Default)]
pub(super) struct Interner {
    index: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub(super) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.index.insert(s.into(), id);
        id
    }

    pub(super) fn get(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }

    pub(super) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map(|s| &**s).unwrap_or("")
    }

    pub(super) fn len(&self) -> usize {
        self.names.len()
    }
}

/// The allowed-value patterns of a key (each allowed value or glob, in policy order, then one
/// for values matching none) and the pattern of each value id. A key without allowed values
/// has a single pattern and no per-value entries.
#[derive(Default)]
pub(super) struct Patterns {
    /// The allowed values and globs; empty for a single pattern.
    globs: Vec<Wildcard>,
    /// Value id → pattern; empty when there is a single pattern.
    of: Vec<u32>,
    /// Per pattern: valid resources holding a value of it.
    pub(super) counts: Vec<u32>,
    /// Per pattern: its values that get a share of the prior's smoothing.
    pub(super) distinct: Vec<u32>,
}

impl Patterns {
    /// The patterns `globs` (each allowed value or glob, once; empty for a key without
    /// allowed values) and the pattern of each of the key's values.
    pub(super) fn new(globs: Vec<Wildcard>, values: &Interner) -> Self {
        let mut patterns = Patterns {
            globs,
            ..Patterns::default()
        };
        if !patterns.globs.is_empty() {
            patterns.of = (0..values.len() as u32)
                .map(|v| patterns.classify(values.name(v)) as u32)
                .collect();
        }
        let len = if patterns.of.is_empty() {
            1
        } else {
            patterns.globs.len() + 1
        };
        patterns.counts = vec![0; len];
        patterns.distinct = vec![0; len];
        patterns
    }

    /// The pattern a value text falls under: the first allowed value or glob it matches, or
    /// the last pattern (values matching none).
    pub(super) fn classify(&self, value: &str) -> usize {
        self.globs
            .iter()
            .position(|g| g.matches(value))
            .unwrap_or(self.globs.len())
    }

    /// The pattern as written in the policy (`*` for values matching no allowed value).
    pub(super) fn name(&self, pattern: usize) -> &str {
        self.globs.get(pattern).map_or("*", Wildcard::as_str)
    }

    pub(super) fn len(&self) -> usize {
        self.counts.len()
    }

    /// The value's pattern: 0 for a single-pattern key; `None` for a value the estate never
    /// held (proposed by a rule or a stray tag).
    pub(super) fn of(&self, value: u32) -> Option<usize> {
        if self.of.is_empty() {
            return Some(0);
        }
        self.of.get(value as usize).map(|&p| p as usize)
    }
}

/// Counts of (group, value) pairs, the number of valued members per group (and per pattern),
/// and each group's most frequent values.
pub(super) struct Table {
    counts: FxHashMap<u64, u32>,
    totals: Vec<u32>,
    /// Group-major: valued members per (group, pattern); empty for a single-pattern key.
    pattern_totals: Vec<u32>,
    patterns: usize,
    top: Vec<[(u32, u32); TOP]>,
    /// How a group's shares of the patterns are smoothed (several patterns only): little for
    /// groupings whose members agree (stacks), much for loose ones (projects).
    pub(super) pattern_smoothing: Smoothing,
    /// Per pattern, the same for the values within it: a pattern whose values are per person
    /// (`sandbox-*`) in groups shared by several people is smoothed much.
    smoothing: Vec<Smoothing>,
}

fn pair(group: u32, value: u32) -> u64 {
    ((group as u64) << 32) | value as u64
}

impl Table {
    pub(super) fn new(groups: usize, patterns: usize) -> Self {
        let patterns = patterns.max(1);
        Table {
            counts: FxHashMap::default(),
            totals: vec![0; groups],
            pattern_totals: if patterns > 1 {
                vec![0; groups * patterns]
            } else {
                Vec::new()
            },
            patterns,
            top: Vec::new(),
            pattern_smoothing: Smoothing::DEFAULT,
            smoothing: vec![Smoothing::DEFAULT; patterns],
        }
    }

    /// Counts one member of `group` holding `value`, of `pattern`.
    pub(super) fn add(&mut self, group: u32, value: u32, pattern: usize) {
        if let Some(t) = self.totals.get_mut(group as usize) {
            *t += 1;
            *self.counts.entry(pair(group, value)).or_insert(0) += 1;
            if let Some(c) = self
                .pattern_totals
                .get_mut(group as usize * self.patterns + pattern)
            {
                *c += 1;
            }
        }
    }

    /// Computes each group's most frequent values (ties: lower value id first, so results do
    /// not depend on hash order).
    pub(super) fn finish(&mut self) {
        self.top = vec![[(NONE, 0); TOP]; self.totals.len()];
        for (&key, &count) in &self.counts {
            let (group, value) = ((key >> 32) as usize, key as u32);
            if let Some(top) = self.top.get_mut(group) {
                insert_top(top, value, count);
            }
        }
    }

    /// Empirical Bayes: picks the smoothing under which each member's value is best predicted
    /// by the *other* members of its groups (leave-one-out likelihood), so a grouping earns
    /// exactly the trust its own agreement warrants, per pattern. With several patterns, the
    /// member's pattern is predicted from the group's patterns, then its value from the
    /// group's values of that pattern. `prior(v)` is the value's estate-wide frequency,
    /// `pattern_of` its pattern, `mass[p]` the pattern's frequency.
    pub(super) fn fit(
        &mut self,
        prior: &dyn Fn(u32) -> f64,
        pattern_of: &dyn Fn(u32) -> Option<usize>,
        mass: &[f64],
    ) {
        let np = self.patterns;
        let single = np == 1;
        if !single {
            let mut fit = Fit::new();
            for (g, &n) in self.totals.iter().enumerate() {
                if n < 2 {
                    continue;
                }
                let row = self.pattern_totals.get(g * np..(g + 1) * np).unwrap_or(&[]);
                for (&c, &m) in row.iter().zip(mass) {
                    if c > 0 {
                        fit.add(c, n, m);
                    }
                }
            }
            if let Some(best) = fit.best() {
                self.pattern_smoothing = best;
            }
        }
        let mut fits: Vec<Fit> = (0..np).map(|_| Fit::new()).collect();
        for (&key, &count) in &self.counts {
            let (group, value) = ((key >> 32) as usize, key as u32);
            let Some(p) = pattern_of(value).filter(|&p| p < np) else {
                continue;
            };
            // The pattern's members in the group, and the value's share of the pattern.
            let (n, q) = if single {
                (self.totals.get(group).copied().unwrap_or(0), prior(value))
            } else {
                let m = mass.get(p).copied().unwrap_or(0.0);
                let n = self.pattern_totals.get(group * np + p).copied();
                (n.unwrap_or(0), (prior(value) / m.max(1e-12)).min(1.0))
            };
            if n >= 2 && q < 1.0 {
                fits[p].add(count, n, q);
            }
        }
        for (p, fit) in fits.iter().enumerate() {
            self.smoothing[p] = match fit.best() {
                Some(best) => best,
                None if single => Smoothing::DEFAULT,
                // Nothing to learn from: as smooth within the pattern as between patterns.
                None => self.pattern_smoothing,
            };
        }
    }

    /// The number of patterns counted (1 for a single-pattern key).
    pub(super) fn patterns(&self) -> usize {
        self.patterns
    }

    /// The smoothing of the values within a pattern.
    pub(super) fn smoothing(&self, pattern: usize) -> Smoothing {
        self.smoothing
            .get(pattern)
            .copied()
            .unwrap_or(self.pattern_smoothing)
    }

    /// The group's valued members of one pattern (all of them for a single-pattern key).
    pub(super) fn pattern_total(&self, group: u32, pattern: usize) -> u32 {
        if self.patterns == 1 {
            return self.total(group);
        }
        self.pattern_totals
            .get(group as usize * self.patterns + pattern)
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn count(&self, group: u32, value: u32) -> u32 {
        self.counts.get(&pair(group, value)).copied().unwrap_or(0)
    }

    pub(super) fn total(&self, group: u32) -> u32 {
        self.totals.get(group as usize).copied().unwrap_or(0)
    }

    /// The group's most frequent values, best first (entries with count 0 are empty).
    pub(super) fn top(&self, group: u32) -> &[(u32, u32)] {
        self.top.get(group as usize).map(|t| &t[..]).unwrap_or(&[])
    }
}

/// The index of the largest value (the first of equals).
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (k, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = k;
        }
    }
    best
}

/// Keeps `top` sorted by count (descending), then value id.
pub(super) fn insert_top(top: &mut [(u32, u32)], value: u32, count: u32) {
    let better = |a: (u32, u32), b: (u32, u32)| a.1 > b.1 || (a.1 == b.1 && a.0 < b.0);
    let mut item = (value, count);
    if count == 0 {
        return;
    }
    for slot in top.iter_mut() {
        if slot.1 == 0 || better(item, *slot) {
            std::mem::swap(slot, &mut item);
            if item.1 == 0 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_count_and_rank() {
        let mut t = Table::new(2, 1);
        for (g, v) in [(0, 5), (0, 5), (0, 3), (1, 7), (0, 9), (0, 3), (0, 1)] {
            t.add(g, v, 0);
        }
        t.add(9, 1, 0); // unknown group: ignored
        t.finish();
        assert_eq!(t.total(0), 6);
        assert_eq!(t.count(0, 5), 2);
        assert_eq!(t.top(0), &[(3, 2), (5, 2), (1, 1), (9, 1)]);
        assert_eq!(t.top(1)[0], (7, 1));
        assert_eq!(t.total(9), 0);
    }

    /// Pattern 0 (values 0–2) sits in groups that agree; pattern 1 (values 3–10) in groups
    /// of four different values, as per-person sandboxes in shared stacks.
    #[test]
    fn agreement_is_fitted_per_pattern() {
        let mut t = Table::new(20, 2);
        for g in 0..10u32 {
            for _ in 0..4 {
                t.add(g, g % 3, 0);
            }
        }
        for g in 10..20u32 {
            for k in 0..4 {
                t.add(g, 3 + (g + k) % 8, 1);
            }
        }
        t.finish();
        let prior = |v: u32| if v < 3 { 0.5 / 3.0 } else { 0.5 / 8.0 };
        t.fit(&prior, &|v| Some(usize::from(v >= 3)), &[0.5, 0.5]);
        // Groups hold one pattern each: the pattern is decisive.
        assert_eq!(t.pattern_smoothing.follow, 1.0);
        assert_eq!(t.smoothing(0).follow, 1.0);
        assert!(t.smoothing(0).beta <= 0.5, "{:?}", t.smoothing(0));
        // Within pattern 1, the other members never tell a member's value.
        assert_eq!(t.smoothing(1).follow, 0.0);
        let q = 1.0 / 8.0;
        assert_eq!(t.smoothing(1).share(2.0, 2.0, q), q);
        assert!(t.smoothing(0).share(2.0, 2.0, 1.0 / 3.0) > 0.8);
    }
}
