//! Policy evaluation throughput: the default policy over 1,000,000 demo resources, on one core.
//! Target: ≥ 2,000,000 resources/s. Run with `cargo bench --bench evaluate`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tagwarden::default_policy;
use tagwarden::{DEMO_SEED, generate_demo_estate};
use tagwarden::{ResourceFilter, ViolationFilter, evaluate_inventory, summarize};

const RESOURCES: usize = 1_000_000;

fn bench(c: &mut Criterion) {
    let policy = default_policy();
    let estate = generate_demo_estate(DEMO_SEED, RESOURCES);
    let resources = estate.resources;

    let mut group = c.benchmark_group("policy");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RESOURCES as u64));
    group.bench_function("evaluate_default_policy_1m", |b| {
        b.iter(|| black_box(evaluate_inventory(&policy, black_box(&resources))))
    });
    let evaluations = evaluate_inventory(&policy, &resources);
    group.bench_function("summarize_1m", |b| {
        b.iter(|| {
            black_box(summarize(
                &policy,
                &resources,
                &evaluations,
                &ResourceFilter::default(),
                &ViolationFilter::default(),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
