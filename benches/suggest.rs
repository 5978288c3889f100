//! Tag suggestions on a 100,000-resource demo estate: building the statistics once
//! (`suggester_build_100k`, the caller's effective-tag overlay included) and answering 1,000
//! resources that have problems (`suggest_1000`). Target: ≤ 200 ms for the 1,000.
//! Run with `cargo bench --bench suggest`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tagwarden::default_policy;
use tagwarden::{DEMO_SEED, generate_demo_estate};
use tagwarden::{Reliability, SuggestConfig, Suggester};

const RESOURCES: usize = 100_000;
const ASKED: usize = 1_000;

fn bench(c: &mut Criterion) {
    let policy = default_policy();
    let estate = generate_demo_estate(DEMO_SEED, RESOURCES);
    let resources = estate.resources;
    let effective = |i: usize| -> BTreeMap<String, String> {
        resources
            .get(i)
            .map(|r| policy.effective_tags(&r.tags))
            .unwrap_or_default()
    };
    let reliability = Reliability::new();
    let config = SuggestConfig::default();

    let mut group = c.benchmark_group("suggest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RESOURCES as u64));
    group.bench_function("suggester_build_100k", |b| {
        b.iter(|| {
            black_box(Suggester::new(
                &policy,
                black_box(&resources),
                &effective,
                &reliability,
                config,
            ))
        })
    });

    let suggester = Suggester::new(&policy, &resources, &effective, &reliability, config);
    // 1,000 resources with problems, spread over the estate (every k-th one).
    let problems: Vec<usize> = (0..resources.len())
        .filter(|&i| !suggester.suggest(i, &[]).is_empty())
        .collect();
    let step = (problems.len() / ASKED).max(1);
    let asked: Vec<usize> = problems.iter().step_by(step).take(ASKED).copied().collect();
    group.throughput(Throughput::Elements(asked.len() as u64));
    group.bench_function("suggest_1000", |b| {
        b.iter(|| {
            for &i in &asked {
                black_box(suggester.suggest(black_box(i), &[]));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
