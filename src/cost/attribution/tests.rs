use super::*;
use crate::inventory::{Attrs, Tags, normalise_tags};
use crate::policy::parse_policy;

const POLICY: &str = r#"{
  "aliases": {"team": ["owner_team"]},
  "value_aliases": {"env": {"production": ["prod"]}},
  "required_tags": [
    {"name": "team", "allowed_values": ["payments", "search", "data"]},
    {"name": "env", "allowed_values": ["production", "staging", "dev"]},
    {"name": "cc", "validation_regex": "CC-[0-9]{3}", "applies_to": ["ec2:*", "rds:db"]}
  ]
}"#;

fn resource(id: &str, ty: &str, tags: &[(&str, &str)]) -> Resource {
    Resource {
        id: id.into(),
        provider: Provider::Aws,
        account: "111".into(),
        region: "us-east-1".into(),
        resource_type: ty.into(),
        name: id.into(),
        tags: normalise_tags(
            tags.iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        ),
        attributes: Attrs::default(),
    }
}

fn line(id: &str, service: &str, amount: Micros) -> CostLine {
    CostLine {
        resource_id: id.into(),
        provider: Provider::Aws,
        account: "111".into(),
        region: "us-east-1".into(),
        service: service.into(),
        resource_type: arcstr::ArcStr::new(),
        name: arcstr::ArcStr::new(),
        tags: Tags::new(),
        amount,
    }
}

fn run(
    policy: &Policy,
    lines: &[CostLine],
    resources: &[Resource],
    group_by: GroupBy,
) -> Attribution {
    let judge = KeyJudge::new(policy);
    attribute(&AttributionInput {
        judge: &judge,
        lines,
        resources,
        filter: &ResourceFilter::default(),
        group_by: &group_by,
        overlay: &|_, _| {},
    })
}

#[test]
fn judge_reads_effective_tags_and_respects_types() {
    let p = parse_policy(POLICY).unwrap();
    let j = KeyJudge::new(&p);
    assert_eq!(j.keys().collect::<Vec<_>>(), vec!["team", "env", "cc"]);
    let eff = p.effective_tags(&[("owner_team", "payments"), ("ENV", "prod")]);
    // Alias key and value alias count; cc is not required of s3.
    assert_eq!(j.problems("s3:bucket", &eff), vec![None, None, None]);
    assert_eq!(
        j.problems("ec2:instance", &eff),
        vec![None, None, Some(KeyProblem::Missing)]
    );
    let eff = p.effective_tags(&[("team", "Payments"), ("env", ""), ("cc", "CC-12")]);
    assert_eq!(
        j.problems("ec2:volume", &eff),
        vec![
            Some(KeyProblem::Invalid),
            Some(KeyProblem::Missing),
            Some(KeyProblem::Invalid)
        ]
    );
    assert_eq!(j.valid_mask("ec2:volume", &eff), 0);
    assert_eq!(j.all_mask(), 0b111);
    assert!(j.applies_to_every_type(0));
    assert!(!j.applies_to_every_type(2));
}

#[test]
fn spend_splits_exactly_per_key_group_and_overall() {
    let p = parse_policy(POLICY).unwrap();
    let resources = vec![
        resource(
            "a",
            "ec2:instance",
            &[("team", "payments"), ("env", "prod"), ("cc", "CC-001")],
        ),
        resource(
            "b",
            "ec2:instance",
            &[("team", "payments"), ("env", "prod")],
        ),
        resource("c", "s3:bucket", &[("team", "search"), ("env", "dev")]),
        resource("d", "s3:bucket", &[("env", "dev")]),
    ];
    let lines = vec![
        line("a", "EC2", 100),
        line("a", "Data Transfer", 7),
        line("b", "EC2", 50),
        line("c", "S3", 30),
        line("d", "S3", 20),
        line("", "Support", 9),
        line("z", "S3", 4), // not in the inventory, no tags
        line("c", "S3 credit", -5),
    ];
    let a = run(&p, &lines, &resources, GroupBy::Service);
    assert_eq!(a.overall.total(), 215);
    assert_eq!(a.overall.attributable, 100 + 7 + 30 - 5);
    assert_eq!(a.overall.unattributable, 50 + 20 + 9 + 4);
    let key = |k: &str| a.by_key.iter().find(|(n, _)| n == k).unwrap().1;
    assert_eq!(key("team").unattributable, 20 + 9 + 4);
    assert_eq!(key("env").unattributable, 9 + 4);
    // cc applies to ec2 only: of the resources, b is the only gap (z has no known type); the
    // support charge has no resource, so every key is required of it.
    assert_eq!(key("cc").unattributable, 50 + 9);
    for (_, split) in &a.by_key {
        assert_eq!(split.total(), 215);
    }
    assert_eq!(
        a.groups.iter().map(|g| g.split.total()).sum::<Micros>(),
        215
    );
    let ec2 = a.groups.iter().find(|g| g.group == "EC2").unwrap();
    assert_eq!(
        ec2.split,
        Split {
            attributable: 100,
            unattributable: 50
        }
    );
    assert_eq!(
        a.without_resource,
        Split {
            attributable: 0,
            unattributable: 9
        }
    );
    // Unattributed, most costly first; the resource-less charge is listed too.
    let ids: Vec<&str> = a
        .unattributed
        .iter()
        .map(|u| u.resource_id.as_str())
        .collect();
    assert_eq!(ids, vec!["b", "d", "", "z"]);
    assert_eq!(
        a.unattributed[0].problems,
        vec![("cc".to_string(), KeyProblem::Missing)]
    );
    assert_eq!(
        a.unattributed[2].problems,
        vec![
            ("team".to_string(), KeyProblem::Missing),
            ("env".to_string(), KeyProblem::Missing),
            ("cc".to_string(), KeyProblem::Missing)
        ]
    );
    assert!(!a.unattributed[3].in_inventory);
    assert_eq!(
        a.unattributed.iter().map(|u| u.cost).sum::<Micros>(),
        a.overall.unattributable
    );
    assert_eq!(a.resources, 5);
    assert_eq!(a.resources_in_inventory, 4);
    assert_eq!(a.lines, 8);
}

/// Issue 12: when every rule named resource types, support, tax and fees (no type, so no
/// `applies_to` matched) counted as attributable, and the gap flipped once an unrelated rule
/// for all types was added. A resource-less line needs a valid value for every required key.
#[test]
fn resource_less_charges_need_every_key_whatever_the_rules_types() {
    let rules = r#"
        {"name": "team", "allowed_values": ["payments"], "applies_to": ["ec2:*"]},
        {"name": "env", "allowed_values": ["prod", "dev"], "applies_to": ["s3:bucket"]},
        {"name": "owner", "applies_to": ["lambda:function"], "when": {"key": "env", "equals": "prod"}}"#;
    let typed = format!(r#"{{"required_tags": [{rules}]}}"#);
    // The same, plus a rule for every type that every resource and the tagged tax satisfy.
    let with_all_types = format!(
        r#"{{"required_tags": [{rules}, {{"name": "cc", "validation_regex": "CC-[0-9]{{3}}"}}]}}"#
    );
    // Sorted by id, as inventories are.
    let resources = vec![
        resource("b-1", "s3:bucket", &[("env", "dev"), ("cc", "CC-100")]),
        resource(
            "i-1",
            "ec2:instance",
            &[("team", "payments"), ("cc", "CC-100")],
        ),
    ];
    let mut support = line("", "AWS Support (Business)", 100);
    support.account = "111".into();
    let mut tax = line("", "Tax", 20);
    tax.tags = normalise_tags(vec![
        ("team".into(), "payments".into()),
        ("env".into(), "dev".into()),
        ("owner".into(), "ops@example.com".into()),
        ("cc".into(), "CC-100".into()),
    ]);
    // A fee tagged with an invalid team: invalid for that key, missing for owner.
    let mut fee = line("", "Fee", 3);
    fee.tags = normalise_tags(vec![
        ("team".into(), "nobody".into()),
        ("env".into(), "prod".into()),
        ("cc".into(), "CC-100".into()),
    ]);
    let lines = vec![
        line("i-1", "EC2", 50),
        line("b-1", "S3", 30),
        support,
        tax,
        fee,
    ];
    for policy in [typed, with_all_types] {
        let p = parse_policy(&policy).unwrap();
        let a = run(&p, &lines, &resources, GroupBy::Service);
        assert_eq!(a.resources_in_inventory, 2);
        assert_eq!(
            a.overall,
            Split {
                attributable: 50 + 30 + 20,
                unattributable: 100 + 3
            },
            "{policy}"
        );
        assert_eq!(
            a.without_resource,
            Split {
                attributable: 20,
                unattributable: 100 + 3
            }
        );
        assert_eq!(a.by_provider[0].split, a.overall);
        let key = |k: &str| a.by_key.iter().find(|(n, _)| n == k).unwrap().1;
        // Resources are judged only where a key applies; charges without one, always.
        assert_eq!(key("team").unattributable, 100 + 3);
        assert_eq!(key("env").unattributable, 100);
        assert_eq!(key("owner").unattributable, 100 + 3);
        let fee = a
            .unattributed
            .iter()
            .find(|u| u.services == ["Fee"])
            .unwrap();
        assert_eq!(
            fee.problems,
            vec![
                ("team".to_string(), KeyProblem::Invalid),
                ("owner".to_string(), KeyProblem::Missing)
            ]
        );
        let support = a
            .groups
            .iter()
            .find(|g| g.group == "AWS Support (Business)");
        assert_eq!(support.unwrap().split.unattributable, 100);
    }
}

#[test]
fn lines_outside_the_inventory_are_judged_by_their_own_tags() {
    let p = parse_policy(POLICY).unwrap();
    let mut l = line("/subscriptions/s/vm1", "VM", 40);
    l.provider = Provider::Azure;
    l.resource_type = "azure:compute/virtualmachines".into();
    l.tags = normalise_tags(vec![
        ("TEAM".into(), "data".into()),
        ("Env".into(), "staging".into()),
    ]);
    let a = run(&p, &[l], &[], GroupBy::Provider);
    assert_eq!(
        a.overall,
        Split {
            attributable: 40,
            unattributable: 0
        }
    );
    assert_eq!(a.by_provider[0].group, "azure");
}

#[test]
fn groups_by_tag_value_and_virtual_tags_overlay() {
    let p = parse_policy(POLICY).unwrap();
    let resources = vec![
        resource("a", "s3:bucket", &[("team", "payments"), ("env", "dev")]),
        resource("b", "s3:bucket", &[("team", "nobody"), ("env", "dev")]),
        resource("c", "s3:bucket", &[("env", "dev")]),
    ];
    let lines = vec![line("a", "S3", 1), line("b", "S3", 2), line("c", "S3", 4)];
    let a = run(&p, &lines, &resources, GroupBy::Tag("team".into()));
    let groups: Vec<(&str, Micros)> = a
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.split.total()))
        .collect();
    assert_eq!(
        groups,
        vec![("(missing)", 4), ("(invalid)", 2), ("payments", 1)]
    );
    // A virtual tag fixes c.
    let judge = KeyJudge::new(&p);
    let overlay = |id: &str, tags: &mut BTreeMap<String, String>| {
        if id == "c" {
            tags.insert("team".into(), "data".into());
        }
    };
    let after = attribute(&AttributionInput {
        judge: &judge,
        lines: &lines,
        resources: &resources,
        filter: &ResourceFilter::default(),
        group_by: &GroupBy::Service,
        overlay: &overlay,
    });
    assert_eq!(
        after.overall,
        Split {
            attributable: 5,
            unattributable: 2
        }
    );
}

#[test]
fn filters_narrow_every_figure() {
    let p = parse_policy(POLICY).unwrap();
    let resources = vec![
        resource("a", "s3:bucket", &[("team", "payments"), ("env", "dev")]),
        resource("b", "ec2:volume", &[]),
    ];
    let lines = vec![line("a", "S3", 10), line("b", "EC2", 20)];
    let judge = KeyJudge::new(&p);
    let filter = ResourceFilter::new(&["ec2:*".to_string()], &[], &[]);
    let a = attribute(&AttributionInput {
        judge: &judge,
        lines: &lines,
        resources: &resources,
        filter: &filter,
        group_by: &GroupBy::ResourceType,
        overlay: &|_, _| {},
    });
    assert_eq!(
        a.overall,
        Split {
            attributable: 0,
            unattributable: 20
        }
    );
    assert_eq!(a.lines, 1);
}

/// Random estates: the parts always add up, and an independent recount (plain loops over the
/// policy's allowed values) gives the same figures.
#[test]
fn random_estates_add_up_and_match_a_recount() {
    let p = parse_policy(
        r#"{"required_tags": [
            {"name": "team", "allowed_values": ["a", "b"]},
            {"name": "env", "allowed_values": ["prod", "dev"], "applies_to": ["ec2:*"]}
        ]}"#,
    )
    .unwrap();
    let types = ["ec2:instance", "s3:bucket", "rds:db"];
    let values = ["a", "b", "c", "", "prod", "dev"];
    for seed in 0..200u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut resources: Vec<Resource> = (0..rng.usize(0..30))
            .map(|i| {
                let mut tags = Vec::new();
                if rng.bool() {
                    tags.push(("team", values[rng.usize(..values.len())]));
                }
                if rng.bool() {
                    tags.push(("env", values[rng.usize(..values.len())]));
                }
                resource(&format!("r{i:02}"), types[rng.usize(..types.len())], &tags)
            })
            .collect();
        resources.sort_by(|a, b| a.id.cmp(&b.id));
        let lines: Vec<CostLine> = (0..rng.usize(0..60))
            .map(|_| {
                let id = match rng.usize(0..10) {
                    0 => String::new(),
                    1 => "elsewhere".to_string(),
                    _ => format!("r{:02}", rng.usize(0..30)),
                };
                let service = ["S1", "S2", "S3"][rng.usize(0..3)];
                let mut l = line(&id, service, rng.i64(-1_000..100_000));
                // Charges without a resource carry tags of their own, sometimes.
                if id.is_empty() && rng.bool() {
                    l.tags = normalise_tags(vec![
                        ("team".into(), values[rng.usize(..values.len())].into()),
                        ("env".into(), values[rng.usize(..values.len())].into()),
                    ]);
                }
                l
            })
            .collect();
        let group_by = [
            GroupBy::Service,
            GroupBy::ResourceType,
            GroupBy::Tag("team".into()),
        ][rng.usize(0..3)]
        .clone();
        let a = run(&p, &lines, &resources, group_by);
        let total: Micros = lines.iter().map(|l| l.amount).sum();
        assert_eq!(a.overall.total(), total, "seed {seed}");
        for (_, split) in &a.by_key {
            assert_eq!(split.total(), total, "seed {seed}");
        }
        assert_eq!(
            a.groups.iter().map(|g| g.split.total()).sum::<Micros>(),
            total
        );
        assert_eq!(
            a.by_provider
                .iter()
                .map(|g| g.split.total())
                .sum::<Micros>(),
            total
        );
        assert_eq!(
            a.unattributed.iter().map(|u| u.cost).sum::<Micros>(),
            a.overall.unattributable,
            "seed {seed}"
        );
        // Recount: a resource's type decides whether env applies; a charge without a resource
        // needs both keys, from its own tags.
        let (mut attributable, mut team_gap, mut env_gap) = (0, 0, 0);
        for l in &lines {
            let r = resources
                .iter()
                .find(|r| r.id == l.resource_id && !l.resource_id.is_empty());
            let ty = r.map(|r| r.resource_type.as_str()).unwrap_or("");
            let tag = |k: &str| {
                if l.resource_id.is_empty() {
                    l.tags
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.as_str())
                } else {
                    r.and_then(|r| r.tag(k))
                }
                .unwrap_or("")
            };
            let team_ok = ["a", "b"].contains(&tag("team"));
            let env_applies = l.resource_id.is_empty() || ty.starts_with("ec2:");
            let env_ok = !env_applies || ["prod", "dev"].contains(&tag("env"));
            if team_ok && env_ok {
                attributable += l.amount;
            }
            team_gap += if team_ok { 0 } else { l.amount };
            env_gap += if env_ok { 0 } else { l.amount };
        }
        assert_eq!(a.overall.attributable, attributable, "seed {seed}");
        assert_eq!(a.by_key[0].1.unattributable, team_gap, "seed {seed}");
        assert_eq!(a.by_key[1].1.unattributable, env_gap, "seed {seed}");
    }
}

#[test]
fn percentages_and_costs_by_resource() {
    assert_eq!(pct(1, 3), Some(33.33));
    assert_eq!(pct(5, 0), None);
    let costs = cost_by_resource(&[line("a", "x", 5), line("a", "y", 6), line("", "z", 7)]);
    assert_eq!(costs.get("a"), Some(&11));
    assert_eq!(costs.len(), 1);
}

#[test]
fn conditional_keys_count_only_where_their_condition_holds() {
    let p = parse_policy(
        r#"{"required_tags": [
            {"name": "env", "allowed_values": ["production", "dev"]},
            {"name": "data", "allowed_values": ["public", "secret"],
             "when": {"key": "env", "equals": "production"}}
        ]}"#,
    )
    .unwrap();
    let resources = vec![
        resource("a", "s3:bucket", &[("env", "dev")]),
        resource("b", "s3:bucket", &[("env", "production")]),
        resource(
            "c",
            "s3:bucket",
            &[("env", "production"), ("data", "secret")],
        ),
    ];
    let lines = vec![line("a", "S3", 1), line("b", "S3", 2), line("c", "S3", 4)];
    let a = run(&p, &lines, &resources, GroupBy::Service);
    assert_eq!(
        a.overall,
        Split {
            attributable: 5,
            unattributable: 2
        }
    );
    assert!(!KeyJudge::new(&p).applies_to_every_type(1));
}
