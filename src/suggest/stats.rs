//! Co-occurrence statistics: for each governed key, how its valid values are spread over the
//! groups a resource belongs to (stack, VPC, account, name prefix, name token, the value of
//! another key). Counted once per estate; a suggestion for one resource subtracts that
//! resource's own contribution on the fly, so hiding a value never leaks it back.

use rustc_hash::FxHashMap;

/// Marks "no value" / "no group" in the dense id columns.
pub(super) const NONE: u32 = u32::MAX;

/// How many of a group's most frequent values are kept: one more than the candidates a source
/// proposes, so the top list stays exact after the resource's own value is subtracted.
pub(super) const TOP: usize = 4;

/// The smoothing strengths tried when fitting a table (see `Table::fit_beta`).
const BETAS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
/// The smoothing strength of a table with nothing to fit it on.
pub(super) const DEFAULT_BETA: f64 = 2.0;

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

/// Counts of (group, value) pairs, the number of valued members per group, and each group's
/// most frequent values.
pub(super) struct Table {
    counts: FxHashMap<u64, u32>,
    totals: Vec<u32>,
    top: Vec<[(u32, u32); TOP]>,
    /// How strongly a group's shares are pulled towards the estate-wide frequencies: small
    /// for groupings whose members agree (stacks), large for loose ones (projects).
    pub(super) beta: f64,
}

fn pair(group: u32, value: u32) -> u64 {
    ((group as u64) << 32) | value as u64
}

impl Table {
    pub(super) fn new(groups: usize) -> Self {
        Table {
            counts: FxHashMap::default(),
            totals: vec![0; groups],
            top: Vec::new(),
            beta: DEFAULT_BETA,
        }
    }

    pub(super) fn add(&mut self, group: u32, value: u32) {
        if let Some(t) = self.totals.get_mut(group as usize) {
            *t += 1;
            *self.counts.entry(pair(group, value)).or_insert(0) += 1;
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

    /// Empirical Bayes: picks the smoothing strength under which each member's value is best
    /// predicted by the *other* members of its groups (leave-one-out likelihood), so a
    /// grouping earns exactly the trust its own agreement rate warrants. `prior(v)` is the
    /// value's estate-wide frequency.
    pub(super) fn fit_beta(&mut self, prior: &dyn Fn(u32) -> f64) {
        let mut likelihood = [0.0f64; BETAS.len()];
        let mut members = 0u64;
        for (&key, &count) in &self.counts {
            let (group, value) = ((key >> 32) as usize, key as u32);
            let n = self.totals.get(group).copied().unwrap_or(0);
            if n < 2 {
                continue;
            }
            members += u64::from(count);
            let (c, n, p) = (f64::from(count), f64::from(n), prior(value));
            for (l, &beta) in likelihood.iter_mut().zip(BETAS) {
                *l += c * ((c - 1.0 + beta * p) / (n - 1.0 + beta)).ln();
            }
        }
        if members == 0 {
            return;
        }
        let mut best = 0;
        for (k, l) in likelihood.iter().enumerate() {
            if *l > likelihood[best] {
                best = k;
            }
        }
        self.beta = BETAS[best];
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
        let mut t = Table::new(2);
        for (g, v) in [(0, 5), (0, 5), (0, 3), (1, 7), (0, 9), (0, 3), (0, 1)] {
            t.add(g, v);
        }
        t.add(9, 1); // unknown group: ignored
        t.finish();
        assert_eq!(t.total(0), 6);
        assert_eq!(t.count(0, 5), 2);
        assert_eq!(t.top(0), &[(3, 2), (5, 2), (1, 1), (9, 1)]);
        assert_eq!(t.top(1)[0], (7, 1));
        assert_eq!(t.total(9), 0);
    }
}
