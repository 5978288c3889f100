//! How the demo estate's tags go wrong, and how often: keys dropped, misspelled or case-mangled,
//! values aliased or wrong, resources left untagged. Production is better kept than the rest.

use arcstr::ArcStr;

use super::Rng;
use super::catalog::{DEVELOPERS, Deployment};
use super::units::is_data_store;
use crate::inventory::{Resource, Tags, normalise_tags};

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

pub(super) fn damage(rng: &mut Rng, d: &Deployment, r: &Resource, clean: &Tags) -> Tags {
    let production = d.env.short == "prod";
    let mut tags = clean.clone();
    let set = |tags: &mut Tags, key: &str, value: ArcStr| {
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
                    arcstr::format!("{}-Team@acme.example", d.team.name),
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
                    0 => arcstr::format!("cc-{digits}"),
                    1 => arcstr::format!("{digits}"),
                    _ => arcstr::format!("CC{digits}"),
                };
                set(&mut tags, "CostCenter", bad);
            }
            2 => {
                let bad = if rng.chance(0.5) {
                    arcstr::format!("{} team", d.team.name)
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
            set(&mut tags, key, ArcStr::new());
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
