//! A second generated estate, irregular where the demo is tidy, to check that suggestion
//! confidence holds on an estate the scoring was not shaped on.
//!
//! The demo gives every deployment its own stack, VPC and naming scheme, so nearly every group
//! agrees. Real estates do not: here a team's sandbox stack is shared by several people, each
//! resource carrying its own `sandbox-<user>`; a platform stack holds resources of many
//! applications; a migration stack mixes production and staging; some resources were clicked
//! together without a stack or VPC; staging and development share a VPC and an account, and the
//! data team runs every environment in one account. Names follow five conventions (kebab,
//! SHOUTING_SNAKE, camelCase, opaque ids, no environment word). Noise tags (`Team` sometimes
//! wrong, `app-tier`, `env-type`) and damage (dropped keys, aliases, bad values, tags copied
//! from another resource, a stale Environment) come on top. The truth is kept, so it is
//! evaluated exactly as the demo is (`suggest --evaluate --estate irregular`).
//!
//! Deterministic: the demo's SplitMix generator, one stream for tags and one for ids.

use arcstr::ArcStr;

use super::demo::{DemoEstate, Rng};
use super::id::arn;
use super::{Tags, normalise_tags};

/// How an application names its resources.
#[derive(Clone, Copy)]
enum Style {
    /// `pay-gateway-prod-fn-3`
    Kebab,
    /// `LEDGER_PRD_FN3`
    Snake,
    /// `shopWebProdFn3` (one token: no signal)
    Camel,
    /// `fn-a83f1c`
    Opaque,
    /// `refunds-fn-3` (no environment word)
    NoEnv,
}

struct Team {
    name: &'static str,
    cost_center: &'static str,
    people: &'static [&'static str],
    apps: &'static [(&'static str, Style)],
}

use Style::*;

const TEAMS: &[Team] = &[
    Team {
        name: "payments",
        cost_center: "CC-1101",
        people: &["alice", "bob", "chen"],
        apps: &[
            ("pay-gateway", Kebab),
            ("ledger", Snake),
            ("refunds", NoEnv),
        ],
    },
    Team {
        name: "storefront",
        cost_center: "CC-1102",
        people: &["dana", "emeka"],
        apps: &[("shop-web", Camel), ("catalog", Kebab)],
    },
    Team {
        name: "data",
        cost_center: "CC-2201",
        people: &["farah", "gus", "hana"],
        apps: &[("etl", Opaque), ("warehouse", Snake), ("reports", Kebab)],
    },
    Team {
        name: "identity",
        cost_center: "CC-1103",
        people: &["ivan", "jo"],
        apps: &[("auth", Kebab), ("profiles", Camel)],
    },
    Team {
        name: "platform",
        cost_center: "CC-3301",
        people: &["kai", "lena", "mo"],
        apps: &[
            ("ci", Opaque),
            ("observability", Kebab),
            ("shared-net", NoEnv),
        ],
    },
    Team {
        name: "ml",
        cost_center: "CC-2202",
        people: &["nora", "omar"],
        apps: &[("ranker", Snake), ("feature-store", Kebab)],
    },
    Team {
        name: "growth",
        cost_center: "CC-1104",
        people: &["pia", "quinn"],
        apps: &[("campaigns", Camel), ("quotes", Kebab)],
    },
];

/// (Environment value, the words names use for it).
const ENVS: &[(&str, &[&str])] = &[
    ("production", &["prod", "prd", "live"]),
    ("staging", &["stg", "stage", "preprod"]),
    ("development", &["dev", "develop"]),
];

const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "ap-southeast-2"];
const PROD_ACCOUNT: &str = "210000000001";
const NONPROD_ACCOUNT: &str = "210000000002";
const SANDBOX_ACCOUNT: &str = "210000000003";
const LEGACY_ACCOUNT: &str = "210000000004";
const DATA_ACCOUNT: &str = "210000000005";

/// One resource's truth: what its governed keys should say.
#[derive(Clone)]
struct Truth {
    env: String,
    team: &'static Team,
    app: &'static str,
    cost_center: &'static str,
    owner: String,
}

/// Where a batch of resources goes.
struct Place {
    account: &'static str,
    region: &'static str,
    stack: Option<String>,
    vpc: Option<String>,
}

/// Generates `size` resources from `seed`.
pub(crate) fn generate(seed: u64, size: usize) -> DemoEstate {
    let mut g = Generator {
        rng: Rng::new(seed ^ 0x1AE6_0C1A),
        ids: Rng::new(seed ^ 0x0B5C_0DE5),
        estate: DemoEstate {
            resources: Vec::with_capacity(size),
            truth: Vec::with_capacity(size),
        },
        size,
        serial: 0,
    };
    while g.estate.resources.len() < size {
        g.deployment();
    }
    g.estate
}

struct Generator {
    rng: Rng,
    ids: Rng,
    estate: DemoEstate,
    size: usize,
    serial: usize,
}

impl Generator {
    /// Plans one deployment of a random kind and generates its resources.
    fn deployment(&mut self) {
        self.serial += 1;
        let team = self.rng.pick(TEAMS);
        let &(app, style) = self.rng.pick(team.apps);
        let env = self.env_index();
        let region = if self.rng.chance(0.25) {
            REGIONS[1 + self.rng.below(2)]
        } else {
            REGIONS[0]
        };
        let roll = self.rng.below(100);
        let base = |env: usize| Truth {
            env: ENVS[env].0.to_string(),
            team,
            app,
            cost_center: team.cost_center,
            owner: format!("{}@corp.example", team.name),
        };
        match roll {
            // A regular deployment: one stack (mostly), a few stragglers from another
            // environment (canaries, leftovers), sometimes a person as owner.
            0..50 => {
                let size = *self.rng.pick(&[1, 2, 3, 4, 6, 8, 12, 20, 35]);
                let stacked = self.rng.chance(0.85);
                let place = self.place(team, env, region, stacked, app);
                for i in 0..size {
                    let mut truth = base(env);
                    if self.rng.chance(0.06) {
                        truth.env = ENVS[(env + 1 + self.rng.below(2)) % 3].0.to_string();
                    }
                    if self.rng.chance(0.1) {
                        truth.owner = format!("{}@corp.example", self.rng.pick(team.people));
                    }
                    let name = self.name(style, app, &truth.env, i);
                    self.push(&place, truth, name);
                }
            }
            // Clicked together by hand: no stack, often no VPC, names from any convention.
            50..70 => {
                let place = Place {
                    account: account_for(team, env, &mut self.rng),
                    region,
                    stack: None,
                    vpc: self.rng.chance(0.5).then(|| vpc(PROD_ACCOUNT, region, env)),
                };
                for i in 0..1 + self.rng.below(5) {
                    let truth = base(env);
                    let style = *self.rng.pick(&[Kebab, Snake, Camel, Opaque, NoEnv]);
                    let name = self.name(style, app, &truth.env, i);
                    self.push(&place, truth, name);
                }
            }
            // A sandbox stack shared by two or three people of the team, one sandbox value
            // each: a few members may agree by chance.
            70..80 => {
                let place = Place {
                    account: SANDBOX_ACCOUNT,
                    region: REGIONS[0],
                    stack: Some(format!("{app}-sbx-{}", self.serial)),
                    vpc: Some(vpc(SANDBOX_ACCOUNT, REGIONS[0], 3)),
                };
                let first = self.rng.below(team.people.len());
                let sharing = 2 + self.rng.below(2);
                for i in 0..2 + self.rng.below(8) {
                    let k = (first + self.rng.below(sharing)) % team.people.len();
                    let person = team.people[k];
                    let truth = Truth {
                        env: format!("sandbox-{person}"),
                        owner: format!("{person}@corp.example"),
                        ..base(env)
                    };
                    let name = match self.rng.below(3) {
                        0 => format!("{person}-{app}-{i}"),
                        1 => format!("{app}-sbx-{}", self.ids.hex(4)),
                        _ => format!("tmp-{}", self.ids.hex(6)),
                    };
                    self.push(&place, truth, name);
                }
            }
            // One person's playground: pure, often without a stack.
            80..88 => {
                let person = *self.rng.pick(team.people);
                let place = Place {
                    account: SANDBOX_ACCOUNT,
                    region,
                    stack: self.rng.chance(0.6).then(|| format!("{person}-playground")),
                    vpc: Some(vpc(SANDBOX_ACCOUNT, region, 3)),
                };
                for i in 0..1 + self.rng.below(6) {
                    let truth = Truth {
                        env: format!("sandbox-{person}"),
                        owner: format!("{person}@corp.example"),
                        ..base(env)
                    };
                    let name = format!("{person}-{}-{i}", self.rng.pick(&["test", "poc", "try"]));
                    self.push(&place, truth, name);
                }
            }
            // The platform team's shared stack per environment: resources of many
            // applications, paid for by their teams (or by platform), run by platform.
            88..95 => {
                let platform = &TEAMS[4];
                let place = Place {
                    account: account_for(platform, env, &mut self.rng),
                    region: REGIONS[0],
                    stack: Some(format!("shared-{}-infra", ENVS[env].1[0])),
                    vpc: Some(vpc(PROD_ACCOUNT, REGIONS[0], env)),
                };
                for i in 0..2 + self.rng.below(8) {
                    let team = self.rng.pick(TEAMS);
                    let &(app, style) = self.rng.pick(team.apps);
                    let truth = Truth {
                        env: ENVS[env].0.to_string(),
                        team,
                        app,
                        cost_center: if self.rng.chance(0.7) {
                            team.cost_center
                        } else {
                            platform.cost_center
                        },
                        owner: format!("{}@corp.example", platform.name),
                    };
                    let name = self.name(style, app, &truth.env, i);
                    self.push(&place, truth, name);
                }
            }
            // A migration stack in the legacy account: production with staging copies.
            _ => {
                let place = Place {
                    account: LEGACY_ACCOUNT,
                    region,
                    stack: Some(format!("{app}-legacy")),
                    vpc: Some(vpc(LEGACY_ACCOUNT, region, 0)),
                };
                for i in 0..2 + self.rng.below(10) {
                    let env = if self.rng.chance(0.3) { 1 } else { 0 };
                    let truth = base(env);
                    let name = self.name(style, app, &truth.env, i);
                    self.push(&place, truth, name);
                }
            }
        }
    }

    /// Production 45%, staging 25%, development 30%.
    fn env_index(&mut self) -> usize {
        match self.rng.below(20) {
            0..9 => 0,
            9..14 => 1,
            _ => 2,
        }
    }

    fn place(
        &mut self,
        team: &'static Team,
        env: usize,
        region: &'static str,
        stacked: bool,
        app: &str,
    ) -> Place {
        let account = account_for(team, env, &mut self.rng);
        let short = *self.rng.pick(ENVS[env].1);
        let stack = stacked.then(|| match self.rng.below(3) {
            0 => format!("{app}-{short}-{}", self.serial),
            1 => format!("{app}-{}", self.ids.hex(6)),
            _ => format!("stack-{}", self.serial),
        });
        // Staging and development share the non-production VPC; some teams have their own.
        let vpc = if self.rng.chance(0.2) {
            vpc(
                account,
                region,
                10 + TEAMS.iter().position(|t| t.name == team.name).unwrap_or(0),
            )
        } else {
            vpc(account, region, usize::from(env == 0))
        };
        Place {
            account,
            region,
            stack,
            vpc: Some(vpc),
        }
    }

    /// A name in the given convention; now and then a word of another environment (a copy of
    /// production named after it).
    fn name(&mut self, style: Style, app: &str, env: &str, i: usize) -> String {
        let words = ENVS
            .iter()
            .find(|(v, _)| *v == env)
            .map_or(&["sbx"][..], |(_, w)| w);
        let word = if self.rng.chance(0.03) {
            "prod"
        } else {
            *self.rng.pick(words)
        };
        let kind = *self
            .rng
            .pick(&["fn", "api", "worker", "db", "queue", "web"]);
        match style {
            Kebab => format!("{app}-{word}-{kind}-{i}"),
            Snake => format!("{}_{}_{}{i}", app, word, kind)
                .replace('-', "_")
                .to_uppercase(),
            Camel => {
                let mut out = String::new();
                for (k, part) in app.split('-').chain([word, kind]).enumerate() {
                    let mut chars = part.chars();
                    if let Some(c) = chars.next() {
                        if k == 0 {
                            out.push(c);
                        } else {
                            out.extend(c.to_uppercase());
                        }
                        out.extend(chars);
                    }
                }
                format!("{out}{i}")
            }
            Opaque => format!("{kind}-{}", self.ids.hex(6)),
            NoEnv => format!("{app}-{kind}-{i}"),
        }
    }

    /// Makes one resource (an instance brings its volume) of a random type, with its truth,
    /// noise tags and damage.
    fn push(&mut self, place: &Place, truth: Truth, name: String) {
        let (r, a) = (place.region, place.account);
        let lower = name.to_lowercase();
        let (id, data_store, in_vpc) = match self.rng.below(100) {
            0..25 => (
                format!("arn:aws:lambda:{r}:{a}:function:{name}"),
                false,
                self.rng.chance(0.4),
            ),
            25..45 => (
                format!("arn:aws:ec2:{r}:{a}:instance/i-{}", self.ids.hex(17)),
                false,
                true,
            ),
            45..55 => (
                format!("arn:aws:s3:::{lower}-{}", self.ids.hex(4)),
                true,
                false,
            ),
            55..63 => (format!("arn:aws:sqs:{r}:{a}:{name}"), false, false),
            63..68 => (format!("arn:aws:sns:{r}:{a}:{name}"), false, false),
            68..75 => (
                format!("arn:aws:dynamodb:{r}:{a}:table/{name}"),
                true,
                false,
            ),
            75..80 => (format!("arn:aws:rds:{r}:{a}:db:{lower}"), true, true),
            80..90 => (
                format!("arn:aws:ecs:{r}:{a}:service/{}/{name}", truth.team.name),
                false,
                true,
            ),
            _ => (
                format!("arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{name}"),
                false,
                false,
            ),
        };
        let instance = id.contains(":instance/");
        let clean = self.clean_tags(&truth, place, data_store, instance.then_some(&name));
        self.emit(&id, place, in_vpc, &truth, clean.clone());
        if instance && self.estate.resources.len() < self.size {
            let volume = format!("arn:aws:ec2:{r}:{a}:volume/vol-{}", self.ids.hex(17));
            let mut tags = clean;
            if let Some(t) = tags.iter_mut().find(|(k, _)| k == "Name") {
                t.1 = format!("{name}-root").into();
            }
            self.emit(&volume, place, true, &truth, tags);
        }
    }

    fn clean_tags(
        &mut self,
        t: &Truth,
        place: &Place,
        data_store: bool,
        ec2_name: Option<&String>,
    ) -> Tags {
        let mut tags: Tags = vec![
            ("Environment".into(), t.env.as_str().into()),
            ("CostCenter".into(), t.cost_center.into()),
            ("Owner".into(), t.owner.as_str().into()),
            ("Application".into(), t.app.into()),
        ];
        if let Some(stack) = &place.stack {
            tags.push((
                "aws:cloudformation:stack-name".into(),
                stack.as_str().into(),
            ));
        }
        if let Some(name) = ec2_name {
            tags.push(("Name".into(), name.as_str().into()));
        }
        if data_store && t.env == "production" {
            let class = match (t.team.name, self.rng.below(5)) {
                (_, 0) => "internal",
                ("payments" | "identity", _) => "confidential",
                ("data", _) => "restricted",
                _ => "internal",
            };
            tags.push(("DataClassification".into(), class.into()));
        }
        normalise_tags(tags)
    }

    fn emit(&mut self, id: &str, place: &Place, in_vpc: bool, truth: &Truth, clean: Tags) {
        if self.estate.resources.len() >= self.size {
            return;
        }
        let damaged = self.damage(truth, &clean);
        let Some(mut resource) = arn::resource_from_arn(id, damaged, place.region, place.account)
        else {
            return;
        };
        if in_vpc && let Some(vpc) = &place.vpc {
            resource.attributes.vpc = Some(vpc.as_str().into());
            resource.attributes.subnet =
                Some(format!("subnet-{}{}", &vpc[4..12], self.rng.below(3)).into());
        }
        self.estate.resources.push(resource);
        self.estate.truth.push(clean);
    }

    /// Noise tags, then what goes wrong with the governed ones (production is better kept).
    fn damage(&mut self, truth: &Truth, clean: &Tags) -> Tags {
        let rng = &mut self.rng;
        let mut tags = clean.clone();
        if rng.chance(0.3) {
            let by = *rng.pick(truth.team.people);
            tags.push(("created-by".into(), by.into()));
        }
        if rng.chance(0.2) {
            let team = if rng.chance(0.2) {
                rng.pick(TEAMS).name
            } else {
                truth.team.name
            };
            tags.push(("Team".into(), team.into()));
        }
        if rng.chance(0.1) {
            let tier = *rng.pick(&["web", "api", "worker", "db"]);
            tags.push(("app-tier".into(), tier.into()));
        }
        if rng.chance(0.05) {
            let kind = if truth.env == "production" {
                "prod"
            } else {
                "nonprod"
            };
            tags.push(("env-type".into(), kind.into()));
        }
        if rng.chance(0.1) {
            tags.push((
                "ticket".into(),
                format!("OPS-{}", 100 + rng.below(900)).into(),
            ));
        }
        let set = |tags: &mut Tags, key: &str, value: ArcStr| {
            if let Some(t) = tags.iter_mut().find(|(k, _)| k == key) {
                t.1 = value;
            }
        };
        let production = truth.env == "production";
        let roll = rng.below(100);
        let untagged = if production { 7 } else { 12 };
        match roll {
            r if r < untagged => tags.retain(|(k, _)| k.starts_with("aws:") || k == "Name"),
            r if r < untagged + 20 => {
                for _ in 0..1 + rng.below(3) {
                    let key =
                        *rng.pick(&["Owner", "Owner", "Application", "CostCenter", "Environment"]);
                    tags.retain(|(k, _)| k != key);
                }
            }
            r if r < untagged + 27 => {
                let (key, variant) = *rng.pick(&[
                    ("Environment", "env"),
                    ("Environment", "Enviroment"),
                    ("CostCenter", "cost_center"),
                    ("Owner", "owner-team"),
                    ("Application", "app"),
                ]);
                if let Some(pos) = tags.iter().position(|(k, _)| k == key) {
                    let (_, value) = tags.remove(pos);
                    tags.push((variant.into(), value));
                }
            }
            r if r < untagged + 33 => {
                let alias = match truth.env.as_str() {
                    "production" => *rng.pick(&["prod", "prd", "live"]),
                    "staging" => *rng.pick(&["stg", "stage"]),
                    "development" => "dev",
                    _ => "",
                };
                if !alias.is_empty() {
                    set(&mut tags, "Environment", alias.into());
                }
            }
            r if r < untagged + 42 => match rng.below(4) {
                0 => {
                    let bad = *rng.pick(&["Production", "PROD", "qa", "uat", "nonprod", "Sandbox"]);
                    set(&mut tags, "Environment", bad.into());
                }
                1 => {
                    let digits = &truth.cost_center[3..];
                    set(&mut tags, "CostCenter", format!("cc{digits}").into());
                }
                2 => {
                    let bad = format!("{} team", truth.team.name);
                    set(&mut tags, "Owner", bad.into());
                }
                _ => {
                    let bad = truth.app.replace('-', "_").to_uppercase();
                    set(&mut tags, "Application", bad.into());
                }
            },
            r if r < untagged + 44 => {
                let key = *rng.pick(&["Environment", "CostCenter", "Owner", "Application"]);
                set(&mut tags, key, ArcStr::new());
            }
            // Tags copied from another resource: valid, and wrong where the two differ.
            r if r < untagged + 47 => {
                let n = self.estate.truth.len();
                if n > 0 {
                    let other = &self.estate.truth[rng.below(n)];
                    for (k, v) in other {
                        if matches!(
                            k.as_str(),
                            "Environment" | "CostCenter" | "Owner" | "Application"
                        ) {
                            set(&mut tags, k, v.clone());
                        }
                    }
                }
            }
            // A stale environment: promoted, never retagged.
            r if r < untagged + 50 => {
                let stale = rng.pick(ENVS).0;
                set(&mut tags, "Environment", stale.into());
            }
            _ => {}
        }
        normalise_tags(tags)
    }
}

/// The account a team's environment runs in: the data team keeps everything in its own.
fn account_for(team: &Team, env: usize, rng: &mut Rng) -> &'static str {
    if team.name == "data" && rng.chance(0.7) {
        return DATA_ACCOUNT;
    }
    if env == 0 {
        PROD_ACCOUNT
    } else {
        NONPROD_ACCOUNT
    }
}

/// A stable VPC id for (account, region, flavour).
fn vpc(account: &str, region: &str, flavour: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account.bytes().chain(region.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("vpc-{}", Rng::new(h ^ flavour as u64).hex(17))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = generate(42, 700);
        let b = generate(42, 700);
        assert_eq!(a.resources, b.resources);
        assert_eq!(a.resources.len(), 700);
        assert_eq!(a.truth.len(), 700);
        assert_ne!(a.resources, generate(7, 700).resources);
    }

    #[test]
    fn irregular_where_the_demo_is_regular() {
        let e = generate(42, 4000);
        let accounts: BTreeSet<&str> = e.resources.iter().map(|r| r.account.as_str()).collect();
        assert_eq!(accounts.len(), 5, "{accounts:?}");
        let unstacked = e.resources.iter().filter(|r| r.stack().is_none()).count();
        assert!(unstacked > 400, "{unstacked}");
        let no_network = e
            .resources
            .iter()
            .filter(|r| r.attributes.vpc.is_none())
            .count();
        assert!(no_network > 1000, "{no_network}");
        // Stacks whose truth holds several Environments, and several sandbox values.
        let mut per_stack: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (r, t) in e.resources.iter().zip(&e.truth) {
            if let (Some(s), Some((_, env))) =
                (r.stack(), t.iter().find(|(k, _)| k == "Environment"))
            {
                per_stack.entry(s).or_default().insert(env.as_str());
            }
        }
        let mixed = per_stack.values().filter(|v| v.len() > 1).count();
        let shared_sandboxes = per_stack
            .values()
            .filter(|v| v.iter().filter(|e| e.starts_with("sandbox-")).count() > 1)
            .count();
        assert!(mixed > 20, "{mixed}");
        assert!(shared_sandboxes >= 5, "{shared_sandboxes}");
        let mut members: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &e.resources {
            if let Some(s) = r.stack() {
                *members.entry(s).or_default() += 1;
            }
        }
        let sizes: BTreeSet<usize> = members.values().copied().collect();
        assert!(
            sizes.contains(&1) && sizes.iter().any(|&n| n > 30),
            "{sizes:?}"
        );
        for r in &e.resources {
            assert_eq!(
                arn::parse(&r.id).map(|a| a.canonical_type()),
                Some(r.resource_type.as_str().into())
            );
        }
    }
}
