//! Virtual-tagging rule throughput: 50 realistic rules (name regexes with captures, type, region
//! and account conditions, absent tags) over 100,000 demo resources, first match per resource,
//! on one core. Effective tags are computed once, outside the timed loop.
//! Target: ≤ 500 ms per run. Run with `cargo bench --bench rules`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tagwarden::default_policy;
use tagwarden::{CompiledRules, RuleSpec};
use tagwarden::{DEMO_SEED, generate_demo_estate};

const RESOURCES: usize = 100_000;

/// (app, team, cost centre), as the demo estate deploys them.
const APPS: [(&str, &str, &str); 23] = [
    ("payments-api", "payments", "CC-1001"),
    ("payments-worker", "payments", "CC-1001"),
    ("ledger", "payments", "CC-1001"),
    ("checkout-web", "checkout", "CC-1002"),
    ("cart-service", "checkout", "CC-1002"),
    ("search-api", "search", "CC-1003"),
    ("indexer", "search", "CC-1003"),
    ("auth-service", "identity", "CC-1004"),
    ("user-profile", "identity", "CC-1004"),
    ("etl-pipeline", "data-platform", "CC-2001"),
    ("warehouse", "data-platform", "CC-2001"),
    ("event-stream", "data-platform", "CC-2001"),
    ("recommender", "ml", "CC-2002"),
    ("fraud-model", "ml", "CC-2002"),
    ("storefront", "web", "CC-1005"),
    ("cms", "web", "CC-1005"),
    ("logging", "platform", "CC-3001"),
    ("monitoring", "platform", "CC-3001"),
    ("ci-runners", "platform", "CC-3001"),
    ("mobile-bff", "mobile", "CC-1006"),
    ("push-notify", "mobile", "CC-1006"),
    ("email-campaigns", "growth", "CC-1007"),
    ("analytics", "growth", "CC-1007"),
];

fn rules() -> Vec<(i64, RuleSpec)> {
    let mut specs: Vec<Value> = vec![
        json!({"name": "app and stage from instance name", "trusted": true,
            "when": {"all": [
                {"field": "type", "eq": "ec2:instance"},
                {"field": "tag:Application", "absent": true},
                {"field": "name", "regex": "^(?P<app>[a-z-]+?)-(?P<stage>prod|stg|dev)-(?:gpu-|runner-)?\\d+$"}
            ]},
            "set": {"Application": "{app}", "Stage": "{stage}"}}),
        json!({"name": "lambda log groups",
            "when": {"all": [
                {"field": "type", "eq": "logs:log-group"},
                {"field": "name", "regex": "^/aws/lambda/(?P<fn>.+)$"}
            ]},
            "set": {"Function": "{fn}"}}),
        json!({"name": "application log groups",
            "when": {"all": [
                {"field": "type", "eq": "logs:log-group"},
                {"field": "name", "regex": "^/acme/(?P<app>[^/]+)/(?P<env>[^/]+)$"}
            ]},
            "set": {"Application": "{app}"}}),
        json!({"name": "buckets by naming convention",
            "when": {"all": [
                {"field": "type", "eq": "s3:bucket"},
                {"field": "tag:Application", "absent": true},
                {"field": "name", "regex": "^acme-(.+)-(prod|stg|dev)-(use1|usw2|euw1|apse2)"}
            ]},
            "set": {"Application": "{1}", "Stage": "{2}"}}),
        json!({"name": "application from stack",
            "when": {"all": [
                {"field": "tag:Application", "absent": true},
                {"field": "stack", "regex": "^(?P<app>.+)-(?P<stage>prod|stg|dev)-(?:use1|usw2|euw1|apse2)$"}
            ]},
            "set": {"Application": "{app}"}}),
        json!({"name": "sandbox owner",
            "when": {"field": "tag:Environment", "regex": "^sandbox-(?P<dev>[a-z]+)$"},
            "set": {"Owner": "{dev}@acme.example"}}),
        json!({"name": "EU data residency",
            "when": {"all": [
                {"field": "region", "eq": "eu-west-1"},
                {"field": "type", "in": ["s3:bucket", "rds:db", "dynamodb:table", "elasticache:cluster"]},
                {"field": "tag:DataResidency", "absent": true}
            ]},
            "set": {"DataResidency": "eu"}}),
        json!({"name": "hand-made resources",
            "when": {"all": [
                {"not": {"field": "creator", "eq": "ci-deployer"}},
                {"field": "tag:Owner", "absent": true},
                {"field": "creator", "regex": "^(alice|bob|chen|dana|emeka|farah)$"}
            ]},
            "set": {"Owner": "{1}@acme.example"}}),
        json!({"name": "dead-letter queues",
            "when": {"all": [
                {"field": "type", "in": ["sqs:queue", "sns:topic"]},
                {"field": "name", "regex": "-dlq$"}
            ]},
            "set": {"Purpose": "dead-letter"}}),
        json!({"name": "ml endpoints", "when": {"field": "type", "glob": "sagemaker:*"},
            "set": {"Workload": "ml"}}),
        json!({"name": "kms keys are confidential",
            "when": {"all": [
                {"field": "type", "eq": "kms:key"},
                {"field": "tag:DataClassification", "absent": true}
            ]},
            "set": {"DataClassification": "confidential"}}),
        json!({"name": "root volumes",
            "when": {"all": [
                {"field": "type", "eq": "ec2:volume"},
                {"field": "name", "regex": "^(.+)-root$"}
            ]},
            "set": {"AttachedTo": "{1}"}}),
    ];
    for (account, env) in [
        ("111122223333", "production"),
        ("444455556666", "staging"),
        ("777788889999", "development"),
    ] {
        specs.push(json!({"name": format!("{env} account"),
            "when": {"all": [
                {"field": "account", "eq": account},
                {"field": "tag:Environment", "absent": true}
            ]},
            "set": {"Environment": env}}));
    }
    for (app, team, cc) in APPS.iter() {
        specs.push(json!({"name": format!("{app} belongs to {team}"),
            "when": {"all": [
                {"field": "tag:Team", "absent": true},
                {"any": [
                    {"field": "name", "glob": format!("{app}-*")},
                    {"field": "stack", "glob": format!("{app}-*")}
                ]}
            ]},
            "set": {"Team": team, "CostCenter": cc}}));
    }
    for team in [
        "payments",
        "checkout",
        "search",
        "identity",
        "data-platform",
        "ml",
        "web",
        "platform",
        "mobile",
        "growth",
    ] {
        let cc = APPS.iter().find(|a| a.1 == team).map_or("CC-0000", |a| a.2);
        specs.push(json!({"name": format!("{team} cost centre"),
            "when": {"all": [
                {"field": "tag:CostCenter", "absent": true},
                {"field": "tag:Team", "eq": team}
            ]},
            "set": {"CostCenter": cc}}));
    }
    specs.push(
        json!({"name": "unowned", "when": {"field": "tag:Owner", "absent": true},
        "set": {"Owner": "unowned@acme.example"}}),
    );
    specs.push(json!({"name": "backup policy for prod data",
        "when": {"all": [
            {"field": "tag:Environment", "eq": "production"},
            {"field": "type", "in": ["rds:db", "dynamodb:table", "ec2:volume"]},
            {"field": "tag:BackupSchedule", "absent": true}
        ]},
        "set": {"BackupSchedule": "daily"}}));
    assert_eq!(specs.len(), 50);
    specs
        .into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            v["priority"] = json!((i as i64 + 1) * 10);
            let spec: RuleSpec = match serde_json::from_value(v) {
                Ok(s) => s,
                Err(e) => panic!("bench rule {i}: {e}"),
            };
            (i as i64 + 1, spec)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let policy = default_policy();
    let resources = generate_demo_estate(DEMO_SEED, RESOURCES).resources;
    let effective: Vec<BTreeMap<String, String>> = resources
        .iter()
        .map(|r| policy.effective_tags(&r.tags))
        .collect();
    let rules = match CompiledRules::compile(&rules()) {
        Ok(r) => r,
        Err(e) => panic!("bench rules do not compile: {e:?}"),
    };
    let result = rules.run(&resources, &|i| Cow::Borrowed(&effective[i]));
    let fired = result.per_rule.iter().filter(|(_, n)| *n > 0).count();
    eprintln!(
        "{} of {RESOURCES} resources matched; {fired} of {} rules fired",
        result.matches.len(),
        rules.len()
    );

    let mut group = c.benchmark_group("rules");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RESOURCES as u64));
    group.bench_function("run_50_rules_100k", |b| {
        b.iter(|| black_box(rules.run(black_box(&resources), &|i| Cow::Borrowed(&effective[i]))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
