//! FOCUS CSV ingest throughput: 100,000 realistic rows (about 20,000 resources over 6 services,
//! Tags JSON on every row, a month of days) read from memory on one core.
//! Target: ≥ 500,000 rows/s. Run with `cargo bench --bench focus`.

use std::fmt::Write;
use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tagwarden::{CostMetric, Period};
use tagwarden::{FocusAggregate, read_focus};

const ROWS: usize = 100_000;
const RESOURCES: usize = 20_000;

const SERVICES: [(&str, &str, &str); 6] = [
    ("Amazon Elastic Compute Cloud", "ec2", "instance/i-"),
    ("Amazon Simple Storage Service", "s3", ""),
    ("Amazon Relational Database Service", "rds", "db:orders-"),
    ("AWS Lambda", "lambda", "function:fn-"),
    ("Amazon DynamoDB", "dynamodb", "table/t-"),
    ("Amazon CloudWatch", "logs", "log-group:/app/"),
];

const TEAMS: [&str; 5] = ["payments", "search", "data", "platform", "web"];
const ENVS: [&str; 4] = ["prod", "staging", "dev", "Production"];

/// A FOCUS export as AWS writes it: rows of one day together, resources repeating daily.
fn generate() -> Vec<u8> {
    let mut out = String::with_capacity(ROWS * 420);
    out.push_str(
        "BillingAccountId,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,\
         ProviderName,SubAccountId,RegionId,ServiceName,ResourceId,ResourceName,ResourceType,\
         BilledCost,EffectiveCost,ListCost,PricingQuantity,Tags\n",
    );
    let mut state: u64 = 42;
    for row in 0..ROWS {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = (state >> 33) as usize % RESOURCES;
        let day = 1 + row * 31 / ROWS;
        let (service, svc, kind) = SERVICES[r % SERVICES.len()];
        let account = 100_000_000_000u64 + (r % 12) as u64;
        let region = ["us-east-1", "eu-west-1", "ap-southeast-2"][r % 3];
        let id = if svc == "s3" {
            format!("arn:aws:s3:::bucket-{r}")
        } else {
            format!("arn:aws:{svc}:{region}:{account}:{kind}{r:08x}")
        };
        let cents = (state >> 40) % 100_000;
        let tags = if r.is_multiple_of(7) {
            String::new()
        } else {
            format!(
                "\"{{\"\"user:team\"\":\"\"{}\"\",\"\"user:Environment\"\":\"\"{}\"\",\
                 \"\"user:CostCenter\"\":\"\"CC-{}\"\"}}\"",
                TEAMS[r % TEAMS.len()],
                ENVS[r % ENVS.len()],
                1000 + r % 50
            )
        };
        let _ = writeln!(
            out,
            "999999999999,USD,Usage,2026-10-{day:02}T00:00:00Z,2026-10-{day:02}T23:59:59Z,AWS,\
             {account},{region},{service},{id},,Resource,{}.{:04},{}.{:04},{}.{:04},1,{tags}",
            cents / 10_000,
            cents % 10_000,
            cents * 9 / 100_000,
            cents * 9 / 10 % 10_000,
            cents / 10_000,
            cents % 10_000,
        );
    }
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let data = generate();
    let period = Some(Period {
        start: NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid date"),
        end: NaiveDate::from_ymd_opt(2026, 11, 1).expect("valid date"),
    });
    let read = || {
        let mut aggregate = FocusAggregate::new();
        read_focus(
            black_box(data.as_slice()),
            "bench.csv",
            CostMetric::BilledCost,
            period,
            &mut aggregate,
        )
        .expect("generated rows are valid");
        aggregate.finish(CostMetric::BilledCost, period, "bench".into())
    };
    let costs = read();
    assert_eq!(costs.report.rows_used, ROWS as u64);
    assert!(costs.report.complete);

    let mut group = c.benchmark_group("focus");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("read_focus_100k_rows", |b| b.iter(|| black_box(read())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
