//! The built-in demo estate: a deterministic, realistic AWS estate for first runs, docs, tests
//! and benchmarks.
//!
//! Ten teams run 24 applications in three accounts (production, staging, development) across
//! four regions. Each deployment is a CloudFormation stack in a VPC; names carry signal
//! (`payments-api-prod-03`). Tags are generated clean (the *truth*, kept for evaluating
//! suggestions) and then damaged the way real estates are: keys dropped, misspelled or
//! case-mangled, values aliased or wrong, resources left untagged, temporary markers left on.
//! The same seed and size always give the same estate, on every platform and version, which is
//! why the generator uses its own tiny PRNG rather than a crate whose streams may change.

use std::time::Instant;

mod catalog;
mod damage;
mod units;

use async_trait::async_trait;

use super::{
    Coverage, Inventory, InventoryError, InventoryProvider, Resource, ScanOptions, ScanPart,
    ScanReport, SourceCoverage, SourceKind, Tags,
};

/// The seed `--demo` uses unless told otherwise: the estate the README and tests describe.
pub const DEFAULT_SEED: u64 = 42;
pub(crate) const DEFAULT_SIZE: usize = 5000;

/// A generated estate and, for each resource, the tags it *should* carry.
pub struct DemoEstate {
    /// The resources, sorted by id.
    pub resources: Vec<Resource>,
    /// For each resource (same index), the tags it should carry.
    pub truth: Vec<Tags>,
}

pub(crate) struct DemoProvider {
    seed: u64,
    size: usize,
}

impl DemoProvider {
    pub(crate) fn new(seed: u64, size: usize) -> Self {
        DemoProvider { seed, size }
    }
}

#[async_trait]
impl InventoryProvider for DemoProvider {
    fn metrics_source(&self) -> crate::metrics::InventorySource {
        crate::metrics::InventorySource::Demo
    }

    fn describe(&self) -> String {
        format!("demo estate (seed {}, {} resources)", self.seed, self.size)
    }

    async fn scan(&self, _options: &ScanOptions) -> Result<Inventory, InventoryError> {
        let started = Instant::now();
        let estate = generate(self.seed, self.size);
        let report = ScanReport {
            complete: true,
            parts: vec![ScanPart {
                scope: "demo".into(),
                ok: true,
                resources: estate.resources.len(),
                pages: 0,
                error: None,
                cached: false,
            }],
            duration_ms: started.elapsed().as_millis() as u64,
            coverage: Coverage::of(vec![SourceCoverage::new(
                SourceKind::Generated,
                estate.resources.len(),
            )]),
            ..ScanReport::default()
        };
        Ok(Inventory {
            resources: estate.resources,
            report,
            source: self.describe(),
            fetched_at: chrono::Utc::now(),
            accounts: super::AccountDirectory::default(),
        })
    }
}

/// SplitMix64: tiny, fast, and its output for a seed never changes.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(crate) fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

/// Generates `size` resources from `seed`.
pub fn generate(seed: u64, size: usize) -> DemoEstate {
    let mut rng = Rng(seed);
    // Ids come from their own stream so they never shift when tag generation changes.
    let mut ids = Rng(seed ^ 0x05EE_D1D5);
    let deployments = catalog::plan_deployments(&mut rng);
    let mut resources = Vec::with_capacity(size);
    let mut truth = Vec::with_capacity(size);
    let mut round = 0usize;
    let mut deployments = deployments;
    'outer: while resources.len() < size {
        for d in deployments.iter_mut() {
            let before = (round as f64 * d.env.weight).floor() as usize;
            let after = ((round + 1) as f64 * d.env.weight).floor() as usize;
            for _ in before..after {
                let unit = d.units;
                d.units += 1;
                for (resource, clean) in units::make_unit(&mut rng, &mut ids, d, unit) {
                    let damaged = damage::damage(&mut rng, d, &resource, &clean);
                    resources.push(Resource {
                        tags: damaged,
                        ..resource
                    });
                    truth.push(clean);
                    if resources.len() == size {
                        break 'outer;
                    }
                }
            }
        }
        round += 1;
    }
    DemoEstate { resources, truth }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(42, 500);
        let b = generate(42, 500);
        assert_eq!(a.resources, b.resources);
        let c = generate(43, 500);
        assert_ne!(a.resources, c.resources);
    }

    #[test]
    fn default_estate_shape() {
        let e = generate(DEFAULT_SEED, DEFAULT_SIZE);
        assert_eq!(e.resources.len(), DEFAULT_SIZE);
        assert_eq!(e.truth.len(), DEFAULT_SIZE);
        let types: BTreeSet<&str> = e
            .resources
            .iter()
            .map(|r| r.resource_type.as_str())
            .collect();
        assert!(types.len() >= 10, "{types:?}");
        let accounts: BTreeSet<&str> = e.resources.iter().map(|r| r.account.as_str()).collect();
        assert_eq!(accounts.len(), 3);
        let regions: BTreeSet<&str> = e.resources.iter().map(|r| r.region.as_str()).collect();
        assert_eq!(regions.len(), 4, "{regions:?}");
        let ids: HashSet<&str> = e.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), DEFAULT_SIZE, "ids are unique");
        assert!(e.resources.iter().any(|r| r.name == "payments-api-prod-03"));
        for r in &e.resources {
            assert!(super::super::id::arn::parse(&r.id).is_some(), "{}", r.id);
            assert_eq!(
                super::super::id::arn::parse(&r.id)
                    .unwrap()
                    .canonical_type(),
                r.resource_type
            );
            assert!(r.stack().is_some());
        }
    }

    #[test]
    fn realistic_mix_of_damage() {
        let e = generate(DEFAULT_SEED, DEFAULT_SIZE);
        let n = e.resources.len() as f64;
        let untouched = e
            .resources
            .iter()
            .zip(&e.truth)
            .filter(|(r, t)| &r.tags == *t)
            .count() as f64;
        let untagged = e
            .resources
            .iter()
            .filter(|r| {
                r.tags
                    .iter()
                    .all(|(k, _)| k.starts_with("aws:") || k == "Name")
            })
            .count() as f64;
        let misnamed = e
            .resources
            .iter()
            .filter(|r| r.tag("env").is_some() || r.tag("cost-center").is_some())
            .count();
        assert!(
            (0.40..0.70).contains(&(untouched / n)),
            "untouched {}",
            untouched / n
        );
        assert!(
            (0.03..0.15).contains(&(untagged / n)),
            "untagged {}",
            untagged / n
        );
        assert!(misnamed > 20, "misnamed {misnamed}");
    }
}
