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

use async_trait::async_trait;
use compact_str::{CompactString, format_compact};

use super::{
    Attributes, Inventory, InventoryError, InventoryProvider, Provider, Resource, ScanPart,
    ScanReport, Tags, normalise_tags,
};

pub const DEFAULT_SEED: u64 = 42;
pub const DEFAULT_SIZE: usize = 5000;

/// A generated estate and, for each resource, the tags it *should* carry.
pub struct DemoEstate {
    pub resources: Vec<Resource>,
    pub truth: Vec<Tags>,
}

pub struct DemoProvider {
    seed: u64,
    size: usize,
}

impl DemoProvider {
    pub fn new(seed: u64, size: usize) -> Self {
        DemoProvider { seed, size }
    }
}

#[async_trait]
impl InventoryProvider for DemoProvider {
    fn describe(&self) -> String {
        format!("demo estate (seed {}, {} resources)", self.seed, self.size)
    }

    async fn scan(&self) -> Result<Inventory, InventoryError> {
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
            }],
            duration_ms: started.elapsed().as_millis() as u64,
            ..ScanReport::default()
        };
        Ok(Inventory {
            resources: estate.resources,
            report,
            source: self.describe(),
            fetched_at: chrono::Utc::now(),
        })
    }
}

/// SplitMix64: tiny, fast, and its output for a seed never changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Archetype {
    Api,
    Web,
    Worker,
    Data,
    Ml,
    Compute,
}

struct Team {
    name: &'static str,
    cost_center: &'static str,
    apps: &'static [(&'static str, Archetype)],
}

use Archetype::*;

const TEAMS: &[Team] = &[
    Team {
        name: "payments",
        cost_center: "CC-1001",
        apps: &[
            ("payments-api", Api),
            ("payments-worker", Worker),
            ("ledger", Data),
        ],
    },
    Team {
        name: "checkout",
        cost_center: "CC-1002",
        apps: &[("checkout-web", Web), ("cart-service", Api)],
    },
    Team {
        name: "search",
        cost_center: "CC-1003",
        apps: &[("search-api", Api), ("indexer", Worker)],
    },
    Team {
        name: "identity",
        cost_center: "CC-1004",
        apps: &[("auth-service", Api), ("user-profile", Data)],
    },
    Team {
        name: "data-platform",
        cost_center: "CC-2001",
        apps: &[
            ("etl-pipeline", Worker),
            ("warehouse", Data),
            ("event-stream", Worker),
        ],
    },
    Team {
        name: "ml",
        cost_center: "CC-2002",
        apps: &[("recommender", Ml), ("fraud-model", Ml)],
    },
    Team {
        name: "web",
        cost_center: "CC-1005",
        apps: &[("storefront", Web), ("cms", Web)],
    },
    Team {
        name: "platform",
        cost_center: "CC-3001",
        apps: &[
            ("logging", Data),
            ("monitoring", Api),
            ("ci-runners", Compute),
        ],
    },
    Team {
        name: "mobile",
        cost_center: "CC-1006",
        apps: &[("mobile-bff", Api), ("push-notify", Worker)],
    },
    Team {
        name: "growth",
        cost_center: "CC-1007",
        apps: &[("email-campaigns", Worker), ("analytics", Data)],
    },
];

struct Env {
    tag: &'static str,
    short: &'static str,
    account: &'static str,
    /// Units of resources per generation round (production deployments are larger).
    weight: f64,
}

const ENVS: &[Env] = &[
    Env {
        tag: "production",
        short: "prod",
        account: "111122223333",
        weight: 3.0,
    },
    Env {
        tag: "staging",
        short: "stg",
        account: "444455556666",
        weight: 1.2,
    },
    Env {
        tag: "development",
        short: "dev",
        account: "777788889999",
        weight: 1.0,
    },
];

const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "use1"),
    ("us-west-2", "usw2"),
    ("eu-west-1", "euw1"),
    ("ap-southeast-2", "apse2"),
];

const DEVELOPERS: &[&str] = &["alice", "bob", "chen", "dana", "emeka", "farah"];
const FUNCTIONS: &[&str] = &[
    "ingest", "process", "settle", "notify", "retry", "export", "sync", "cleanup",
];
const PROJECTS: &[&str] = &[
    "q3-migration",
    "checkout-revamp",
    "cost-cutting",
    "eu-expansion",
];

struct Deployment {
    team: &'static Team,
    app: &'static str,
    archetype: Archetype,
    env: &'static Env,
    /// `production`, `staging`, `development` or `sandbox-<developer>`.
    env_value: String,
    region: &'static str,
    region_short: &'static str,
    stack: String,
    vpc: String,
    subnet: String,
    creator: &'static str,
    project: Option<&'static str>,
    units: usize,
}

/// Generates `size` resources from `seed`.
pub fn generate(seed: u64, size: usize) -> DemoEstate {
    let mut rng = Rng(seed);
    // Ids come from their own stream so they never shift when tag generation changes.
    let mut ids = Rng(seed ^ 0x05EE_D1D5);
    let deployments = plan_deployments(&mut rng);
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
                for (resource, clean) in make_unit(&mut rng, &mut ids, d, unit) {
                    let damaged = damage(&mut rng, d, &resource, &clean);
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

fn plan_deployments(rng: &mut Rng) -> Vec<Deployment> {
    let mut out = Vec::new();
    for team in TEAMS {
        for &(app, archetype) in team.apps {
            let primary = if rng.chance(0.55) {
                0
            } else {
                1 + rng.below(REGIONS.len() - 1)
            };
            let project = rng.chance(0.3).then(|| *rng.pick(PROJECTS));
            for env in ENVS {
                let mut regions = vec![primary];
                if env.short == "prod" && rng.chance(0.45) {
                    regions.push((primary + 1 + rng.below(REGIONS.len() - 1)) % REGIONS.len());
                }
                for region_index in regions {
                    let (region, region_short) = REGIONS[region_index];
                    let env_value = if env.short == "dev" && rng.chance(0.15) {
                        format!("sandbox-{}", rng.pick(DEVELOPERS))
                    } else {
                        env.tag.to_string()
                    };
                    let creator = if rng.chance(0.8) {
                        "ci-deployer"
                    } else {
                        *rng.pick(DEVELOPERS)
                    };
                    out.push(Deployment {
                        team,
                        app,
                        archetype,
                        env,
                        env_value,
                        region,
                        region_short,
                        stack: format!("{app}-{}-{region_short}", env.short),
                        vpc: format!(
                            "vpc-{}",
                            stable_hex(&format!("{}{region}", env.account), 17)
                        ),
                        subnet: format!("subnet-{}", rng.hex(17)),
                        creator,
                        project,
                        units: 0,
                    });
                }
            }
        }
    }
    out
}

/// Hex derived from a string (FNV-1a fed to SplitMix), so shared ids (one VPC per account and
/// region) are the same wherever they are computed.
fn stable_hex(s: &str, len: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    Rng(h).hex(len)
}

/// One unit of a deployment: a server and its disk, a function and its logs, a bucket, ...;
/// unit 0 also creates the deployment's shared pieces (load balancer, queue, database...).
fn make_unit(rng: &mut Rng, ids: &mut Rng, d: &Deployment, unit: usize) -> Vec<(Resource, Tags)> {
    let mut out = Vec::new();
    let env = d.env.short;
    let base = format!("{}-{env}", d.app);
    let (r, a) = (d.region, d.env.account);
    let mut push = |rng: &mut Rng, id: String, ty: &str, name: String, ec2_name: bool| {
        let clean = clean_tags(rng, d, ty, &name, ec2_name);
        let resource = Resource {
            id: id.into(),
            provider: Provider::Aws,
            account: a.into(),
            region: r.into(),
            resource_type: ty.into(),
            name: name.into(),
            tags: Tags::new(),
            attributes: Attributes {
                vpc: (!matches!(
                    ty,
                    "s3:bucket"
                        | "sns:topic"
                        | "sqs:queue"
                        | "dynamodb:table"
                        | "kms:key"
                        | "logs:log-group"
                ))
                .then(|| d.vpc.as_str().into()),
                subnet: matches!(
                    ty,
                    "ec2:instance"
                        | "ec2:volume"
                        | "rds:db"
                        | "elasticache:cluster"
                        | "lambda:function"
                )
                .then(|| d.subnet.as_str().into()),
                stack: Some(d.stack.as_str().into()),
                creator: Some(d.creator.into()),
                created_at: Some(format_compact!(
                    "2026-{:02}-{:02}",
                    1 + rng.below(10),
                    1 + rng.below(28)
                )),
            },
        };
        out.push((resource, clean));
    };
    let instance = |rng: &mut Rng,
                    ids: &mut Rng,
                    push: &mut dyn FnMut(&mut Rng, String, &str, String, bool),
                    name: String| {
        push(
            rng,
            format!("arn:aws:ec2:{r}:{a}:instance/i-{}", ids.hex(17)),
            "ec2:instance",
            name.clone(),
            true,
        );
        push(
            rng,
            format!("arn:aws:ec2:{r}:{a}:volume/vol-{}", ids.hex(17)),
            "ec2:volume",
            format!("{name}-root"),
            true,
        );
        if rng.chance(0.25) {
            push(
                rng,
                format!("arn:aws:ec2:{r}:{a}:snapshot/snap-{}", ids.hex(17)),
                "ec2:snapshot",
                format!("{name}-root-backup"),
                true,
            );
        }
    };
    match d.archetype {
        Api | Web => {
            instance(rng, ids, &mut push, format!("{base}-{:02}", unit + 1));
            if unit == 0 {
                push(
                    rng,
                    format!(
                        "arn:aws:elasticloadbalancing:{r}:{a}:loadbalancer/app/{base}/{}",
                        ids.hex(16)
                    ),
                    "elasticloadbalancing:loadbalancer",
                    base.clone(),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:ec2:{r}:{a}:security-group/sg-{}", ids.hex(17)),
                    "ec2:security-group",
                    format!("{base}-sg"),
                    true,
                );
                push(
                    rng,
                    format!("arn:aws:logs:{r}:{a}:log-group:/acme/{}/{env}", d.app),
                    "logs:log-group",
                    format!("/acme/{}/{env}", d.app),
                    false,
                );
                let bucket = format!(
                    "acme-{base}-{}-{}",
                    if d.archetype == Web { "assets" } else { "logs" },
                    d.region_short
                );
                push(
                    rng,
                    format!("arn:aws:s3:::{bucket}"),
                    "s3:bucket",
                    bucket,
                    false,
                );
                if d.archetype == Api {
                    push(
                        rng,
                        format!("arn:aws:rds:{r}:{a}:db:{base}-db"),
                        "rds:db",
                        format!("{base}-db"),
                        false,
                    );
                }
            }
            if unit == 1 && d.archetype == Api {
                push(
                    rng,
                    format!("arn:aws:elasticache:{r}:{a}:cluster:{base}-cache"),
                    "elasticache:cluster",
                    format!("{base}-cache"),
                    false,
                );
            }
        }
        Worker => {
            let verb = FUNCTIONS[unit % FUNCTIONS.len()];
            let suffix = if unit < FUNCTIONS.len() {
                String::new()
            } else {
                format!("-{}", unit / FUNCTIONS.len() + 1)
            };
            let name = format!("{base}-{verb}{suffix}");
            push(
                rng,
                format!("arn:aws:lambda:{r}:{a}:function:{name}"),
                "lambda:function",
                name.clone(),
                false,
            );
            push(
                rng,
                format!("arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{name}"),
                "logs:log-group",
                format!("/aws/lambda/{name}"),
                false,
            );
            if unit == 0 {
                push(
                    rng,
                    format!("arn:aws:sqs:{r}:{a}:{base}-jobs"),
                    "sqs:queue",
                    format!("{base}-jobs"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:sqs:{r}:{a}:{base}-jobs-dlq"),
                    "sqs:queue",
                    format!("{base}-jobs-dlq"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:sns:{r}:{a}:{base}-events"),
                    "sns:topic",
                    format!("{base}-events"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:dynamodb:{r}:{a}:table/{base}-state"),
                    "dynamodb:table",
                    format!("{base}-state"),
                    false,
                );
            }
        }
        Data => {
            let bucket = format!("acme-{base}-{}-{:02}", d.region_short, unit + 1);
            push(
                rng,
                format!("arn:aws:s3:::{bucket}"),
                "s3:bucket",
                bucket,
                false,
            );
            if unit.is_multiple_of(2) {
                instance(
                    rng,
                    ids,
                    &mut push,
                    format!("{base}-node-{:02}", unit / 2 + 1),
                );
            }
            if unit == 0 {
                push(
                    rng,
                    format!("arn:aws:rds:{r}:{a}:db:{base}-db"),
                    "rds:db",
                    format!("{base}-db"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:dynamodb:{r}:{a}:table/{base}-catalog"),
                    "dynamodb:table",
                    format!("{base}-catalog"),
                    false,
                );
                let key = format!(
                    "{}-{}-{}-{}-{}",
                    ids.hex(8),
                    ids.hex(4),
                    ids.hex(4),
                    ids.hex(4),
                    ids.hex(12)
                );
                push(
                    rng,
                    format!("arn:aws:kms:{r}:{a}:key/{key}"),
                    "kms:key",
                    format!("{base}-key"),
                    false,
                );
            }
        }
        Ml => {
            instance(rng, ids, &mut push, format!("{base}-gpu-{:02}", unit + 1));
            if unit.is_multiple_of(3) {
                let name = format!("{base}-endpoint-{}", unit / 3 + 1);
                push(
                    rng,
                    format!("arn:aws:sagemaker:{r}:{a}:endpoint/{name}"),
                    "sagemaker:endpoint",
                    name,
                    false,
                );
            }
            if unit == 0 {
                let bucket = format!("acme-{base}-models-{}", d.region_short);
                push(
                    rng,
                    format!("arn:aws:s3:::{bucket}"),
                    "s3:bucket",
                    bucket,
                    false,
                );
            }
        }
        Compute => {
            instance(
                rng,
                ids,
                &mut push,
                format!("{base}-runner-{:02}", unit + 1),
            );
            if unit == 0 {
                push(
                    rng,
                    format!("arn:aws:ecs:{r}:{a}:cluster/{base}"),
                    "ecs:cluster",
                    base.clone(),
                    false,
                );
            }
            let svc = format!("{base}-svc-{:02}", unit + 1);
            push(
                rng,
                format!("arn:aws:ecs:{r}:{a}:service/{base}/{svc}"),
                "ecs:service",
                svc,
                false,
            );
        }
    }
    out
}

fn is_data_store(ty: &str) -> bool {
    matches!(
        ty,
        "s3:bucket" | "rds:db" | "dynamodb:table" | "elasticache:cluster"
    )
}

/// The tags a resource should carry.
fn clean_tags(rng: &mut Rng, d: &Deployment, ty: &str, name: &str, ec2_name: bool) -> Tags {
    let mut tags: Tags = vec![
        ("Environment".into(), d.env_value.as_str().into()),
        ("CostCenter".into(), d.team.cost_center.into()),
        (
            "Owner".into(),
            format_compact!("{}-team@acme.example", d.team.name),
        ),
        ("Application".into(), d.app.into()),
        ("Team".into(), d.team.name.into()),
        (
            "aws:cloudformation:stack-name".into(),
            d.stack.as_str().into(),
        ),
    ];
    if ec2_name {
        tags.push(("Name".into(), name.into()));
    }
    if is_data_store(ty) && d.env.short == "prod" {
        let class = match (d.team.name, d.app) {
            (_, "user-profile") => "restricted",
            ("payments" | "identity", _) => "confidential",
            (_, _) if name.contains("assets") => "public",
            _ => "internal",
        };
        tags.push(("DataClassification".into(), class.into()));
    }
    if matches!(ty, "rds:db" | "ec2:volume" | "dynamodb:table") && rng.chance(0.5) {
        let schedule = if d.env.short == "prod" {
            "daily"
        } else {
            "weekly"
        };
        tags.push(("BackupSchedule".into(), schedule.into()));
    }
    if let Some(p) = d.project {
        tags.push(("Project".into(), p.into()));
    }
    normalise_tags(tags)
}

/// What can go wrong with a resource's tags, and how often (production is better kept).
#[derive(Clone, Copy)]
enum Damage {
    None,
    Untagged,
    MissingKeys,
    MisnamedKey,
    ValueAlias,
    BadValue,
    EmptyValue,
    DropClassification,
}

fn choose_damage(rng: &mut Rng, production: bool, data_store: bool) -> Damage {
    let table: &[(Damage, f64)] = if production {
        &[
            (Damage::Untagged, 0.05),
            (Damage::MissingKeys, 0.12),
            (Damage::MisnamedKey, 0.08),
            (Damage::ValueAlias, 0.05),
            (Damage::BadValue, 0.07),
            (Damage::EmptyValue, 0.02),
            (
                Damage::DropClassification,
                if data_store { 0.10 } else { 0.0 },
            ),
        ]
    } else {
        &[
            (Damage::Untagged, 0.10),
            (Damage::MissingKeys, 0.15),
            (Damage::MisnamedKey, 0.09),
            (Damage::ValueAlias, 0.06),
            (Damage::BadValue, 0.10),
            (Damage::EmptyValue, 0.03),
        ]
    };
    let roll = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let mut acc = 0.0;
    for &(damage, p) in table {
        acc += p;
        if roll < acc {
            return damage;
        }
    }
    Damage::None
}

const GOVERNED: &[&str] = &["Environment", "CostCenter", "Owner", "Application"];
const PRODUCTION_ALIASES: &[&str] = &["prod", "prd", "live"];
const STAGING_ALIASES: &[&str] = &["stg", "stage"];

fn damage(rng: &mut Rng, d: &Deployment, r: &Resource, clean: &Tags) -> Tags {
    let production = d.env.short == "prod";
    let mut tags = clean.clone();
    let set = |tags: &mut Tags, key: &str, value: CompactString| {
        if let Some(t) = tags.iter_mut().find(|(k, _)| k == key) {
            t.1 = value;
        }
    };
    match choose_damage(rng, production, is_data_store(&r.resource_type)) {
        Damage::None => {}
        Damage::Untagged => tags.retain(|(k, _)| k.starts_with("aws:") || k == "Name"),
        Damage::MissingKeys => {
            // Owner and Application are forgotten most often.
            let weights: &[(&str, f64)] = &[
                ("Owner", 0.4),
                ("Application", 0.3),
                ("CostCenter", 0.2),
                ("Environment", 0.1),
            ];
            let count = 1 + rng.below(2);
            for _ in 0..count {
                let roll = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                let mut acc = 0.0;
                for &(key, w) in weights {
                    acc += w;
                    if roll < acc {
                        tags.retain(|(k, _)| k != key);
                        break;
                    }
                }
            }
        }
        Damage::MisnamedKey => {
            let key = *rng.pick(GOVERNED);
            let variants: &[&str] = match key {
                "Environment" => &[
                    "env",
                    "Env",
                    "ENVIRONMENT",
                    "environment",
                    "stage",
                    "Enviroment",
                ],
                "CostCenter" => &[
                    "cost-center",
                    "costcenter",
                    "CostCentre",
                    "cost_center",
                    "cc",
                ],
                "Owner" => &["owner", "OWNER", "owner_email", "contact", "owner-team"],
                _ => &["app", "application", "App", "service", "app-name"],
            };
            let variant = *rng.pick(variants);
            if let Some(pos) = tags.iter().position(|(k, _)| k == key) {
                let (_, value) = tags.remove(pos);
                tags.push((variant.into(), value));
            }
        }
        Damage::ValueAlias => {
            let aliases: &[&str] = match d.env_value.as_str() {
                "production" => PRODUCTION_ALIASES,
                "staging" => STAGING_ALIASES,
                "development" => &["dev"],
                // Sandboxes have no alias: damage their owner mailbox casing instead.
                _ => &[""],
            };
            let alias = *rng.pick(aliases);
            if alias.is_empty() {
                set(
                    &mut tags,
                    "Owner",
                    format_compact!("{}-Team@acme.example", d.team.name),
                );
            } else {
                set(&mut tags, "Environment", alias.into());
            }
        }
        Damage::BadValue => match rng.below(4) {
            0 => {
                let bad = *rng.pick(&["Production", "PROD", "prod-eu", "qa", "Staging", "test"]);
                set(&mut tags, "Environment", bad.into());
            }
            1 => {
                let digits = &d.team.cost_center[3..];
                let bad = match rng.below(3) {
                    0 => format_compact!("cc-{digits}"),
                    1 => format_compact!("{digits}"),
                    _ => format_compact!("CC{digits}"),
                };
                set(&mut tags, "CostCenter", bad);
            }
            2 => {
                let bad = if rng.chance(0.5) {
                    format_compact!("{} team", d.team.name)
                } else {
                    (*rng.pick(DEVELOPERS)).into()
                };
                set(&mut tags, "Owner", bad);
            }
            _ => {
                let bad = d.app.replace('-', "_").to_uppercase();
                set(&mut tags, "Application", bad.into());
            }
        },
        Damage::EmptyValue => {
            let key = *rng.pick(GOVERNED);
            set(&mut tags, key, CompactString::default());
        }
        Damage::DropClassification => tags.retain(|(k, _)| k != "DataClassification"),
    }
    if rng.chance(0.015) {
        tags.push(("tmp".into(), "true".into()));
    }
    let auto_stop = if production { 0.01 } else { 0.08 };
    if r.resource_type == "ec2:instance" && rng.chance(auto_stop) {
        tags.push(("AutoStop".into(), "true".into()));
    }
    normalise_tags(tags)
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
            assert!(super::super::arn::parse(&r.id).is_some(), "{}", r.id);
            assert_eq!(
                super::super::arn::parse(&r.id).unwrap().canonical_type(),
                r.resource_type
            );
            assert!(r.attributes.stack.is_some());
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
