//! Who runs what where in the demo estate: teams, applications, environments, regions, and
//! the deployments planned from them.

use super::Rng;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Archetype {
    Api,
    Web,
    Worker,
    Data,
    Ml,
    Compute,
}

pub(super) struct Team {
    pub(super) name: &'static str,
    pub(super) cost_center: &'static str,
    pub(super) apps: &'static [(&'static str, Archetype)],
}

use Archetype::*;

pub(super) const TEAMS: &[Team] = &[
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

pub(super) struct Env {
    pub(super) tag: &'static str,
    pub(super) short: &'static str,
    pub(super) account: &'static str,
    /// Units of resources per generation round (production deployments are larger).
    pub(super) weight: f64,
}

pub(super) const ENVS: &[Env] = &[
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

pub(super) const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "use1"),
    ("us-west-2", "usw2"),
    ("eu-west-1", "euw1"),
    ("ap-southeast-2", "apse2"),
];

pub(super) const DEVELOPERS: &[&str] = &["alice", "bob", "chen", "dana", "emeka", "farah"];
pub(super) const FUNCTIONS: &[&str] = &[
    "ingest", "process", "settle", "notify", "retry", "export", "sync", "cleanup",
];
pub(super) const PROJECTS: &[&str] = &[
    "q3-migration",
    "checkout-revamp",
    "cost-cutting",
    "eu-expansion",
];

pub(super) struct Deployment {
    pub(super) team: &'static Team,
    pub(super) app: &'static str,
    pub(super) archetype: Archetype,
    pub(super) env: &'static Env,
    /// `production`, `staging`, `development` or `sandbox-<developer>`.
    pub(super) env_value: String,
    pub(super) region: &'static str,
    pub(super) region_short: &'static str,
    pub(super) stack: String,
    pub(super) vpc: String,
    pub(super) subnet: String,
    pub(super) creator: &'static str,
    pub(super) project: Option<&'static str>,
    pub(super) units: usize,
}

pub(super) fn plan_deployments(rng: &mut Rng) -> Vec<Deployment> {
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
