use super::*;
use crate::compliance::evaluate_inventory;
use crate::inventory::{Attrs, Provider};
use crate::policy::parse_policy;

fn policy() -> Policy {
    parse_policy(
        r#"{"aliases":{"Environment":["env"], "Owner":["contact"]},
            "value_aliases":{"Environment":{"production":["prod"]}},
            "required_tags":[
              {"name":"Environment","allowed_values":["production","dev"],"severity":"critical"},
              {"name":"CostCenter","validation_regex":"CC-[0-9]{4}","severity":"high"},
              {"name":"Owner","severity":"low"},
              {"name":"Data","allowed_values":["public","secret"],"applies_to":["s3:bucket"],
               "when":{"key":"Environment","equals":"production"}}],
            "optional_tags":[{"name":"Team"}],
            "prohibited_tags":[{"name":"tmp","severity":"low"}],
            "max_tags": {"limit": 3, "severity": "medium"}}"#,
    )
    .unwrap()
}

fn resource(id: &str, ty: &str, tags: &[(&str, &str)]) -> Resource {
    let mut tags: crate::inventory::Tags = tags
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    tags.sort();
    Resource {
        id: id.into(),
        provider: Provider::Aws,
        account: "111111111111".into(),
        region: "us-east-1".into(),
        resource_type: ty.into(),
        name: format!("{id}-name").into(),
        tags,
        attributes: Attrs::default(),
    }
}

fn rows(p: &Policy, r: &Resource, filter: &ViolationFilter, facts: &ResourceFacts) -> Vec<Row> {
    let evals = evaluate_inventory(p, std::slice::from_ref(r));
    rows_of(p, filter, r, &r.tags, evals.get(0).effective, facts)
}

#[test]
fn one_row_per_effective_violation_ordered_by_key_then_kind() {
    let p = policy();
    let r = resource(
        "b",
        "s3:bucket",
        &[
            ("env", "prod"),
            ("CostCenter", "cc-1"),
            ("tmp", "x"),
            ("Team", "t"),
        ],
    );
    let facts = ResourceFacts {
        cost: Some(1_230_000),
        owner: Some("t".into()),
        suggestions: [("CostCenter".to_string(), ("CC-1000".to_string(), 0.95))]
            .into_iter()
            .collect(),
    };
    let got = rows(&p, &r, &ViolationFilter::default(), &facts);
    type Brief<'a> = (String, &'a str, Option<&'a str>, &'a str, Option<&'a str>);
    let summary: Vec<Brief> = got
        .iter()
        .map(|row| {
            (
                row.key.clone(),
                row.kind.as_str(),
                row.current.as_deref(),
                row.severity.as_str(),
                row.suggestion.as_ref().map(|(v, _)| v.as_str()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("".into(), "too_many_tags", None, "medium", None),
            (
                "CostCenter".into(),
                "invalid_format",
                Some("cc-1"),
                "high",
                Some("CC-1000")
            ),
            ("Data".into(), "conditional_requirement", None, "high", None),
            ("Owner".into(), "missing_required_tag", None, "low", None),
            ("tmp".into(), "prohibited_tag", Some("x"), "low", None),
        ]
    );
    let cc = &got[1];
    assert_eq!(cc.expected, "matches CC-[0-9]{4}");
    assert_eq!(
        cc.fix,
        "change `CostCenter` from `cc-1` to a value matching `CC-[0-9]{4}`"
    );
    assert_eq!(cc.monthly_cost, Some(1_230_000));
    assert_eq!(cc.owner.as_deref(), Some("t"));
    assert_eq!(
        (
            cc.resource_id.as_str(),
            cc.account.as_str(),
            cc.region.as_str()
        ),
        ("b", "111111111111", "us-east-1")
    );
    assert_eq!(
        (cc.resource_type.as_str(), cc.name.as_str()),
        ("s3:bucket", "b-name")
    );
    assert_eq!(
        got[2].expected,
        "one of: public, secret; required when Environment=production"
    );
    assert_eq!(got[3].expected, "any non-empty value");
    assert_eq!(got[4].expected, "tag absent");
    assert_eq!(got[0].expected, "at most 3 tags");
}

#[test]
fn filters_select_the_rows_and_compliant_resources_have_none() {
    let p = policy();
    let r = resource("b", "s3:bucket", &[("CostCenter", "bad")]);
    let high = ViolationFilter::new(&p, &[], &[], Severity::High).unwrap();
    let got = rows(&p, &r, &high, &ResourceFacts::default());
    let keys: Vec<&str> = got.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["CostCenter", "Environment"]);
    let evals = evaluate_inventory(&p, std::slice::from_ref(&r));
    assert_eq!(counted(&high, evals.get(0).effective), 2);
    let only_owner = ViolationFilter::new(&p, &["contact".into()], &[], Severity::Low).unwrap();
    let got = rows(&p, &r, &only_owner, &ResourceFacts::default());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key, "Owner");
    let good = resource(
        "g",
        "ec2:instance",
        &[
            ("Environment", "dev"),
            ("CostCenter", "CC-1234"),
            ("Owner", "o"),
        ],
    );
    assert!(
        rows(
            &p,
            &good,
            &ViolationFilter::default(),
            &ResourceFacts::default()
        )
        .is_empty()
    );
}

#[test]
fn suggestions_go_only_on_rows_a_value_can_fix() {
    let p = policy();
    let r = resource("b", "ec2:instance", &[("tmp", "1")]);
    let facts = ResourceFacts {
        suggestions: [
            ("Owner".to_string(), ("o@example.com".to_string(), 0.91)),
            ("tmp".to_string(), ("never".to_string(), 0.99)),
        ]
        .into_iter()
        .collect(),
        ..ResourceFacts::default()
    };
    let got = rows(&p, &r, &ViolationFilter::default(), &facts);
    let owner = got.iter().find(|r| r.key == "Owner").unwrap();
    assert_eq!(owner.suggestion, Some(("o@example.com".into(), 0.91)));
    let tmp = got.iter().find(|r| r.key == "tmp").unwrap();
    assert_eq!(tmp.suggestion, None, "a prohibited tag is removed, not set");
}

#[test]
fn owner_is_the_first_owner_key_present_read_through_aliases() {
    let p = policy();
    let keys: Vec<String> = DEFAULT_OWNER_KEYS.iter().map(|k| k.to_string()).collect();
    let eff = p.effective_tags(&[("contact", "ops@example.com"), ("Team", "payments")]);
    assert_eq!(
        owner_of(&p, &eff, &keys).as_deref(),
        Some("ops@example.com")
    );
    let eff = p.effective_tags(&[("Owner", "  "), ("team", "payments")]);
    assert_eq!(
        owner_of(&p, &eff, &keys).as_deref(),
        Some("payments"),
        "blank skipped, case folded"
    );
    let eff = p.effective_tags(&[("Env", "x")]);
    assert_eq!(owner_of(&p, &eff, &keys), None);
    let eff = p.effective_tags(&[("squad", "core"), ("Owner", "o")]);
    assert_eq!(
        owner_of(&p, &eff, &["squad".into()]).as_deref(),
        Some("core")
    );
}

#[test]
fn amounts_are_exact_plain_decimals() {
    assert_eq!(decimal(0), "0.00");
    assert_eq!(decimal(21_920_000), "21.92");
    assert_eq!(decimal(123_456), "0.123456");
    assert_eq!(decimal(-3_500_000), "-3.50");
    assert_eq!(decimal(1_234_567_890_000), "1234567.89");
    assert_eq!(decimal(i64::MIN), "-9223372036854.775808");
}

#[test]
fn conflicts_say_what_must_not_hold_together() {
    let p = parse_policy(
        r#"{"required_tags":[{"name":"Env"}],
            "conflicts":[{"description":"prod is never auto-stopped","severity":"high",
              "tags":[{"key":"Env","equals":"prod"},{"key":"AutoStop","equals":"true"}]}]}"#,
    )
    .unwrap();
    let r = resource(
        "c",
        "ec2:instance",
        &[("Env", "prod"), ("AutoStop", "true")],
    );
    let got = rows(
        &p,
        &r,
        &ViolationFilter::default(),
        &ResourceFacts::default(),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, ViolationKind::ConflictingTags);
    assert_eq!(got[0].expected, "not all of: prod is never auto-stopped");
}
