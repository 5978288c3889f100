use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::inventory::{Attributes, Attrs, Provider, Resource};

fn resource() -> Resource {
    Resource {
        id: "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc".into(),
        provider: Provider::Aws,
        account: "111122223333".into(),
        region: "us-east-1".into(),
        resource_type: "ec2:instance".into(),
        name: "payments-api-prod-03".into(),
        tags: vec![("env".into(), "prod".into())],
        attributes: Attrs::from(Attributes {
            vpc: Some("vpc-0123".into()),
            subnet: Some("subnet-0456".into()),
            stack: Some("payments-api-prod-use1".into()),
            creator: Some("ci-deployer".into()),
            created_at: None,
            alt_ids: Vec::new(),
        }),
    }
}

/// A resource with no optional attributes.
fn bare() -> Resource {
    Resource {
        attributes: Attrs::default(),
        ..resource()
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn spec(value: Value) -> RuleSpec {
    serde_json::from_value(value).unwrap()
}

/// A rule with the given priority, condition and `set`.
fn rule(name: &str, priority: i64, when: Value, set: Value) -> RuleSpec {
    spec(json!({"name": name, "priority": priority, "when": when, "set": set}))
}

fn compile(specs: Vec<RuleSpec>) -> CompiledRules {
    let rules: Vec<(i64, RuleSpec)> = specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| (i as i64 + 1, s))
        .collect();
    CompiledRules::compile(&rules).unwrap()
}

fn holds_on(when: Value, r: &Resource, eff: &BTreeMap<String, String>) -> bool {
    compile(vec![rule("t", 1, when, json!({"X": "y"}))])
        .first_match(r, eff)
        .is_some()
}

fn holds(when: Value) -> bool {
    holds_on(when, &resource(), &tags(&[("Team", "payments")]))
}

/// The tags the single rule sets on the standard resource, if it matches.
fn applied(when: Value, set: Value) -> Option<Vec<(String, String)>> {
    compile(vec![rule("t", 1, when, set)])
        .first_match(
            &resource(),
            &tags(&[("Team", "payments"), ("Environment", "production")]),
        )
        .map(|m| m.tags)
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn errors(rules: Vec<(i64, Value)>) -> Vec<RuleError> {
    let rules: Vec<(i64, RuleSpec)> = rules.into_iter().map(|(id, v)| (id, spec(v))).collect();
    match CompiledRules::compile(&rules) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e,
    }
}

fn one_error(when: Value, set: Value) -> RuleError {
    let e = errors(vec![(
        1,
        json!({"name": "r", "priority": 1, "when": when, "set": set}),
    )]);
    assert_eq!(e.len(), 1, "{e:?}");
    e.into_iter().next().unwrap()
}

// ---------------------------------------------------------------- operators × fields

#[test]
fn every_operator_on_every_field() {
    let r = resource();
    let eff = tags(&[("Team", "payments")]);
    let fields = [
        ("type", "ec2:instance"),
        ("name", "payments-api-prod-03"),
        ("id", "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc"),
        ("account", "111122223333"),
        ("region", "us-east-1"),
        ("provider", "aws"),
        ("vpc", "vpc-0123"),
        ("subnet", "subnet-0456"),
        ("stack", "payments-api-prod-use1"),
        ("creator", "ci-deployer"),
        ("tag:Team", "payments"),
    ];
    for (field, value) in fields {
        let t = |when: Value| holds_on(when, &r, &eff);
        assert!(t(json!({"field": field, "eq": value})), "{field} eq");
        assert!(
            !t(json!({"field": field, "eq": format!("{value}x")})),
            "{field} eq other"
        );
        assert!(
            t(json!({"field": field, "in": ["zzz", value]})),
            "{field} in"
        );
        assert!(
            !t(json!({"field": field, "in": ["zzz"]})),
            "{field} in other"
        );
        let prefix = &value[..2];
        assert!(
            t(json!({"field": field, "glob": format!("{prefix}*")})),
            "{field} glob"
        );
        assert!(
            !t(json!({"field": field, "glob": prefix})),
            "{field} glob is anchored"
        );
        let last = &value[value.len() - 2..];
        assert!(
            t(json!({"field": field, "regex": regex::escape(last)})),
            "{field} regex"
        );
        assert!(
            !t(json!({"field": field, "regex": "^zzz"})),
            "{field} regex other"
        );
        assert!(t(json!({"field": field, "exists": true})), "{field} exists");
        assert!(
            !t(json!({"field": field, "exists": false})),
            "{field} exists false"
        );
        assert!(
            !t(json!({"field": field, "absent": true})),
            "{field} absent"
        );
        assert!(
            t(json!({"field": field, "absent": false})),
            "{field} absent false"
        );
    }
}

#[test]
fn missing_fields_fail_every_test_but_absent() {
    let r = bare();
    let eff = tags(&[]);
    for field in ["vpc", "subnet", "stack", "creator", "tag:Team"] {
        let t = |when: Value| holds_on(when, &r, &eff);
        assert!(!t(json!({"field": field, "eq": ""})), "{field}");
        assert!(!t(json!({"field": field, "in": [""]})), "{field}");
        assert!(!t(json!({"field": field, "glob": "*"})), "{field}");
        assert!(!t(json!({"field": field, "regex": ""})), "{field}");
        assert!(!t(json!({"field": field, "exists": true})), "{field}");
        assert!(t(json!({"field": field, "exists": false})), "{field}");
        assert!(t(json!({"field": field, "absent": true})), "{field}");
        assert!(!t(json!({"field": field, "absent": false})), "{field}");
    }
}

#[test]
fn empty_values_are_absent_but_still_compare() {
    let r = resource();
    let eff = tags(&[("Team", "")]);
    let t = |when: Value| holds_on(when, &r, &eff);
    assert!(t(json!({"field": "tag:Team", "absent": true})));
    assert!(!t(json!({"field": "tag:Team", "exists": true})));
    assert!(t(json!({"field": "tag:Team", "eq": ""})));
    assert!(t(json!({"field": "tag:Team", "glob": "*"})));
}

#[test]
fn tag_conditions_read_the_effective_tags_only() {
    // The native tag is `env=prod`; the caller's effective view says Environment=production.
    let r = resource();
    let eff = tags(&[("Environment", "production")]);
    assert!(holds_on(
        json!({"field": "tag:Environment", "eq": "production"}),
        &r,
        &eff
    ));
    assert!(!holds_on(
        json!({"field": "tag:env", "exists": true}),
        &r,
        &eff
    ));
    // Keys are exact.
    assert!(!holds_on(
        json!({"field": "tag:environment", "exists": true}),
        &r,
        &eff
    ));
}

#[test]
fn eq_and_in_are_exact_and_case_sensitive() {
    assert!(!holds(json!({"field": "name", "eq": "payments-api"})));
    assert!(!holds(
        json!({"field": "name", "eq": "Payments-api-prod-03"})
    ));
    assert!(!holds(
        json!({"field": "region", "in": ["US-EAST-1", "us-east"]})
    ));
    assert!(holds(
        json!({"field": "region", "in": ["us-east-1", "us-east-1", "eu-west-1"]})
    ));
}

#[test]
fn glob_semantics() {
    let g = |glob: &str| holds(json!({"field": "name", "glob": glob}));
    assert!(g("payments-*"));
    assert!(g("*-prod-*"));
    assert!(g("*03"));
    assert!(g("*"));
    assert!(g("payments-api-prod-0?"));
    assert!(g("payments-api-prod-??"));
    assert!(!g("payments-api-prod-?"));
    assert!(g("p?yments-*-0?"));
    assert!(!g("Payments-*"), "case-sensitive");
    assert!(!g("payments"), "anchored");
    assert!(!g("api*"), "anchored at the start");
    // Regex metacharacters are literal.
    let r = Resource {
        name: "a.b[1]+".into(),
        ..resource()
    };
    let eff = tags(&[]);
    assert!(holds_on(
        json!({"field": "name", "glob": "a.b[1]?"}),
        &r,
        &eff
    ));
    assert!(!holds_on(
        json!({"field": "name", "glob": "a?b[1]"}),
        &r,
        &eff
    ));
    assert!(holds_on(
        json!({"field": "name", "glob": "a?b[1]*"}),
        &r,
        &eff
    ));
    // `?` is one character, not one byte.
    let r = Resource {
        name: "café".into(),
        ..resource()
    };
    assert!(holds_on(json!({"field": "name", "glob": "caf?"}), &r, &eff));
}

#[test]
fn regex_is_unanchored_and_case_sensitive_unless_asked() {
    let re = |regex: &str| holds(json!({"field": "name", "regex": regex}));
    assert!(re("api"));
    assert!(re("-prod-"));
    assert!(!re("^api"));
    assert!(re("^payments-api-prod-\\d+$"));
    assert!(!re("PAYMENTS"));
    assert!(re("(?i)PAYMENTS"));
}

#[test]
fn provider_field_uses_lowercase_names() {
    assert!(holds(json!({"field": "provider", "eq": "aws"})));
    let r = Resource {
        provider: Provider::Gcp,
        ..resource()
    };
    assert!(holds_on(
        json!({"field": "provider", "in": ["gcp", "azure"]}),
        &r,
        &tags(&[])
    ));
}

// ---------------------------------------------------------------- combinators

#[test]
fn not_all_any_nesting() {
    let yes = json!({"field": "type", "eq": "ec2:instance"});
    let no = json!({"field": "type", "eq": "s3:bucket"});
    assert!(holds(json!({"all": [yes]})));
    assert!(holds(json!({"all": [yes, yes]})));
    assert!(!holds(json!({"all": [yes, no]})));
    assert!(holds(json!({"any": [no, yes]})));
    assert!(!holds(json!({"any": [no, no]})));
    assert!(holds(json!({"not": no})));
    assert!(!holds(json!({"not": yes})));
    assert!(holds(json!({"not": {"not": yes}})));
    assert!(holds(
        json!({"all": [{"any": [no, yes]}, {"not": {"all": [yes, no]}}]})
    ));
    assert!(!holds(
        json!({"any": [{"all": [yes, no]}, {"not": {"any": [no, yes]}}]})
    ));
    assert!(holds(json!({"any": [{"all": [yes, {"not": no}]}, no]})));
}

// ---------------------------------------------------------------- captures

#[test]
fn positional_and_named_captures() {
    let when = json!({"field": "name", "regex": "^(?P<app>[a-z]+)-api-(prod|stg)-(\\d+)$"});
    assert_eq!(
        applied(
            when.clone(),
            json!({"Application": "{app}-api", "Stage": "{2}", "Unit": "n{3}", "All": "{1}/{app}"})
        ),
        Some(pairs(&[
            ("All", "payments/payments"),
            ("Application", "payments-api"),
            ("Stage", "prod"),
            ("Unit", "n03"),
        ]))
    );
    // Literal braces.
    assert_eq!(
        applied(when, json!({"X": "{{{1}}}"})),
        Some(pairs(&[("X", "{payments}")]))
    );
}

#[test]
fn positional_captures_come_from_the_first_capturing_regex_that_matched() {
    let when = json!({"all": [
        {"field": "region", "regex": "^us-"},
        {"field": "stack", "regex": "-(use1|usw2)$"},
        {"field": "name", "regex": "^([a-z]+)-(api)"}
    ]});
    // The first regex has no groups, so `{1}` comes from the stack regex; `{2}` exceeds its
    // groups, so it comes out empty (the value is not empty as a whole).
    assert_eq!(
        applied(when, json!({"Short": "{1}", "Two": "x{2}"})),
        Some(pairs(&[("Short", "use1"), ("Two", "x")]))
    );
}

#[test]
fn captures_are_independent_of_evaluation_order() {
    // The tag test is cheaper and runs first, but numbering follows the rule's text.
    let when = json!({"all": [
        {"field": "name", "regex": "^([a-z]+)-"},
        {"field": "tag:Team", "regex": "^(pay)"}
    ]});
    assert_eq!(
        applied(when, json!({"X": "{1}"})),
        Some(pairs(&[("X", "payments")]))
    );
}

#[test]
fn any_takes_captures_from_the_first_branch_that_holds() {
    let when = json!({"any": [
        {"all": [
            {"field": "name", "regex": "^(?P<app>payments)-"},
            {"field": "type", "eq": "s3:bucket"}
        ]},
        {"field": "stack", "regex": "^(?P<app>[a-z]+)-api-(?P<stage>[a-z]+)"},
        {"field": "name", "regex": "^(?P<app>.+)$"}
    ]});
    // The first branch's regex matched but its `all` failed: its capture must not be used.
    assert_eq!(
        applied(
            when,
            json!({"App": "{app}", "Stage": "{stage}", "P": "{1}"})
        ),
        Some(pairs(&[
            ("App", "payments"),
            ("P", "payments"),
            ("Stage", "prod")
        ]))
    );
    let when = json!({"any": [
        {"all": [
            {"field": "name", "regex": "^(?P<app>pay)ments-"},
            {"field": "type", "eq": "s3:bucket"}
        ]},
        {"field": "name", "regex": "^(?P<app>[a-z]+)-(?P<kind>[a-z]+)"}
    ]});
    assert_eq!(
        applied(when, json!({"App": "{app}-{kind}"})),
        Some(pairs(&[("App", "payments-api")]))
    );
}

#[test]
fn named_group_falls_back_to_the_next_regex_that_matched() {
    let when = json!({"all": [
        {"field": "name", "regex": "^(?:(?P<team>zzz)|payments)"},
        {"field": "tag:Team", "regex": "^(?P<team>.+)$"}
    ]});
    assert_eq!(
        applied(when, json!({"Team": "{team}"})),
        Some(pairs(&[("Team", "payments")]))
    );
}

#[test]
fn an_empty_substitution_means_no_match_and_the_next_rule_is_tried() {
    let rules = compile(vec![
        rule(
            "optional group",
            1,
            json!({"field": "name", "regex": "^payments(-v2)?"}),
            json!({"Version": "{1}"}),
        ),
        rule(
            "fallback",
            2,
            json!({"field": "type", "eq": "ec2:instance"}),
            json!({"Version": "v1"}),
        ),
    ]);
    let m = rules.first_match(&resource(), &tags(&[])).unwrap();
    assert_eq!(m.rule_name, "fallback");
    assert_eq!(m.tags, pairs(&[("Version", "v1")]));
}

#[test]
fn regexes_inside_not_give_no_captures() {
    // `{1}` can only come from the positive regex.
    let when = json!({"all": [
        {"not": {"field": "name", "regex": "^(zzz)"}},
        {"field": "name", "regex": "-(prod)-"}
    ]});
    assert_eq!(
        applied(when, json!({"S": "{1}"})),
        Some(pairs(&[("S", "prod")]))
    );
}

// ---------------------------------------------------------------- order and run

#[test]
fn first_match_by_priority_then_disabled_rules_are_skipped() {
    let ec2 = json!({"field": "type", "eq": "ec2:instance"});
    let rules = vec![
        (7, rule("late", 30, ec2.clone(), json!({"R": "late"}))),
        (8, rule("early", 10, ec2.clone(), json!({"R": "early"}))),
        (
            9,
            rule(
                "other type",
                5,
                json!({"field": "type", "eq": "s3:bucket"}),
                json!({"R": "s3"}),
            ),
        ),
    ];
    let compiled = CompiledRules::compile(&rules).unwrap();
    assert_eq!(compiled.len(), 3);
    assert!(!compiled.is_empty());
    let m = compiled.first_match(&resource(), &tags(&[])).unwrap();
    assert_eq!((m.rule_id, m.rule_name.as_str()), (8, "early"));
    assert!(!m.trusted && !m.override_native);

    let mut disabled = rule("early", 10, ec2.clone(), json!({"R": "early"}));
    disabled.enabled = false;
    let mut trusted = rules[0].1.clone();
    trusted.trusted = true;
    trusted.override_native = true;
    let compiled = CompiledRules::compile(&[(7, trusted), (8, disabled)]).unwrap();
    assert_eq!(compiled.len(), 2, "disabled rules are kept");
    let m = compiled.first_match(&resource(), &tags(&[])).unwrap();
    assert_eq!(m.rule_id, 7);
    assert!(m.trusted && m.override_native);

    let mut off = rule("off", 1, ec2, json!({"R": "x"}));
    off.enabled = false;
    let compiled = CompiledRules::compile(&[(1, off)]).unwrap();
    assert_eq!(compiled.first_match(&resource(), &tags(&[])), None);
}

#[test]
fn disabled_rules_may_share_a_priority_and_ties_go_by_id() {
    let ec2 = json!({"field": "type", "eq": "ec2:instance"});
    let mut a = rule("a", 10, ec2.clone(), json!({"R": "a"}));
    a.enabled = false;
    let b = rule("b", 10, ec2, json!({"R": "b"}));
    let compiled = CompiledRules::compile(&[(2, b), (1, a)]).unwrap();
    let m = compiled.first_match(&resource(), &tags(&[])).unwrap();
    assert_eq!(m.rule_id, 2);
    let run = compiled.run(&[resource()], &|_| Cow::Owned(BTreeMap::new()));
    assert_eq!(run.per_rule, vec![(1, 0), (2, 1)]);
}

#[test]
fn run_counts_matches_per_rule() {
    let resources: Vec<Resource> = ["ec2:instance", "s3:bucket", "ec2:instance", "rds:db"]
        .iter()
        .map(|t| Resource {
            resource_type: (*t).into(),
            ..resource()
        })
        .collect();
    let effective = [
        tags(&[("Team", "payments")]),
        tags(&[]),
        tags(&[]),
        tags(&[("Team", "search")]),
    ];
    let rules = CompiledRules::compile(&[
        (
            1,
            rule(
                "untagged ec2",
                10,
                json!({"all": [{"field": "type", "glob": "ec2:*"}, {"field": "tag:Team", "absent": true}]}),
                json!({"Team": "unknown"}),
            ),
        ),
        (
            2,
            rule("any team", 20, json!({"field": "tag:Team", "exists": true}), json!({"T": "x"})),
        ),
        (3, rule("never", 30, json!({"field": "type", "eq": "lambda:function"}), json!({"T": "y"}))),
    ])
    .unwrap();
    let calls = Cell::new(0);
    let run = rules.run(&resources, &|i| {
        calls.set(calls.get() + 1);
        Cow::Borrowed(&effective[i])
    });
    assert_eq!(
        calls.get(),
        4,
        "effective tags are fetched once per resource"
    );
    let matched: Vec<(usize, i64)> = run.matches.iter().map(|(i, m)| (*i, m.rule_id)).collect();
    assert_eq!(matched, vec![(0, 2), (2, 1), (3, 2)]);
    assert_eq!(run.per_rule, vec![(1, 1), (2, 2), (3, 0)]);
    assert_eq!(run.matches[1].1.tags, pairs(&[("Team", "unknown")]));
}

#[test]
fn run_does_not_ask_for_tags_no_rule_reads() {
    let rules = compile(vec![rule(
        "by type",
        1,
        json!({"field": "type", "eq": "ec2:instance"}),
        json!({"Kind": "vm"}),
    )]);
    let calls = Cell::new(0);
    let run = rules.run(&[resource(), resource()], &|_| {
        calls.set(calls.get() + 1);
        Cow::Owned(BTreeMap::new())
    });
    assert_eq!(calls.get(), 0);
    assert_eq!(run.matches.len(), 2);
    assert_eq!(run.per_rule, vec![(1, 2)]);
}

#[test]
fn runs_over_the_demo_estate_with_the_default_policy() {
    let policy = crate::policy::default_policy();
    let resources = crate::inventory::demo::generate(42, 3000).resources;
    let effective: Vec<BTreeMap<String, String>> = resources
        .iter()
        .map(|r| policy.effective_tags(&r.tags))
        .collect();
    let rules = compile(vec![
        rule(
            "app from instance name",
            10,
            json!({"all": [
                {"field": "type", "eq": "ec2:instance"},
                {"field": "name", "regex": "^(?P<app>[a-z-]+?)-(prod|stg|dev)-\\d+$"}
            ]}),
            json!({"Application": "{app}", "Stage": "{2}"}),
        ),
        rule(
            "team missing",
            20,
            json!({"field": "tag:Team", "absent": true}),
            json!({"Team": "unassigned"}),
        ),
    ]);
    let run = rules.run(&resources, &|i| Cow::Borrowed(&effective[i]));
    assert!(
        run.per_rule[0].1 > 0 && run.per_rule[1].1 > 0,
        "{:?}",
        run.per_rule
    );
    for (i, m) in &run.matches {
        assert_eq!(
            rules.first_match(&resources[*i], &effective[*i]).as_ref(),
            Some(m)
        );
        if m.rule_id == 1 {
            let app = &m.tags[0].1;
            assert!(resources[*i].name.starts_with(app.as_str()));
        }
    }
}

// ---------------------------------------------------------------- validation

#[test]
fn bad_regex_reports_the_regex_crates_message() {
    let e = one_error(
        json!({"field": "name", "regex": "^(abc"}),
        json!({"X": "y"}),
    );
    assert_eq!(e.path, "when.regex");
    assert_eq!(e.message, "invalid regex: unclosed group");
    assert_eq!(
        e.to_string(),
        "rule `r`: when.regex: invalid regex: unclosed group"
    );
    let e = one_error(
        json!({"all": [{"field": "name", "eq": "x"}, {"field": "name", "regex": "(?P<a>x)(?P<a>y)"}]}),
        json!({"X": "y"}),
    );
    assert_eq!(e.path, "when.all[1].regex");
    assert!(
        e.message
            .starts_with("invalid regex: duplicate capture group name"),
        "{}",
        e.message
    );
}

#[test]
fn unknown_field_lists_the_known_ones() {
    let e = one_error(json!({"field": "owner", "eq": "x"}), json!({"X": "y"}));
    assert_eq!(e.path, "when.field");
    assert!(
        e.message
            .starts_with("unknown field `owner` (for a tag, write `tag:owner`)"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("type, name, id, account, region, provider, vpc, subnet, stack, creator"),
        "{}",
        e.message
    );
    assert!(e.message.contains("tag:KEY"));
    let e = one_error(
        json!({"not": {"field": "Name", "eq": "x"}}),
        json!({"X": "y"}),
    );
    assert_eq!(e.path, "when.not.field");
    assert!(
        e.message
            .contains("did you mean `name`, or the tag `tag:Name`?"),
        "{}",
        e.message
    );
    let e = one_error(json!({"field": "tag:", "exists": true}), json!({"X": "y"}));
    assert!(e.message.contains("`tag:` needs a key"), "{}", e.message);
}

#[test]
fn empty_set_all_any_and_in_are_refused() {
    let e = one_error(json!({"field": "name", "eq": "x"}), json!({}));
    assert_eq!(e.path, "set");
    assert!(e.message.contains("`set` is empty"), "{}", e.message);
    let e = one_error(json!({"all": []}), json!({"X": "y"}));
    assert_eq!(e.path, "when.all");
    assert!(e.message.contains("the list is empty"), "{}", e.message);
    let e = one_error(json!({"not": {"any": []}}), json!({"X": "y"}));
    assert_eq!(e.path, "when.not.any");
    let e = one_error(json!({"field": "name", "in": []}), json!({"X": "y"}));
    assert_eq!(e.path, "when.in");
    assert!(e.message.contains("could never hold"), "{}", e.message);
}

#[test]
fn placeholders_are_checked_against_the_rules_regexes() {
    let name_re = json!({"field": "name", "regex": "^(?P<app>[a-z]+)-(api)"});
    let e = one_error(name_re.clone(), json!({"X": "{3}"}));
    assert_eq!(e.path, "set.X");
    assert_eq!(
        e.message,
        "`{3}` refers to group 3, but the rule's regexes have at most 2 groups"
    );
    let e = one_error(name_re.clone(), json!({"X": "{team}"}));
    assert_eq!(
        e.message,
        "`{team}`: no regex of the rule has a group named `team`; named groups: `app`"
    );
    let e = one_error(
        json!({"field": "name", "regex": "^(a)"}),
        json!({"X": "{team}"}),
    );
    assert!(e.message.contains("only numbered groups"), "{}", e.message);
    let e = one_error(json!({"field": "name", "eq": "a"}), json!({"X": "{1}"}));
    assert!(
        e.message.contains("no regex with capture groups"),
        "{}",
        e.message
    );
    let e = one_error(
        json!({"not": {"field": "name", "regex": "(a)"}}),
        json!({"X": "{1}"}),
    );
    assert!(
        e.message.contains("inside `not` never capture"),
        "{}",
        e.message
    );
    let e = one_error(name_re.clone(), json!({"X": "{0}"}));
    assert!(e.message.contains("start at `{1}`"), "{}", e.message);
    let e = one_error(name_re.clone(), json!({"X": "team-{1"}));
    assert!(
        e.message.starts_with("unclosed `{` at byte 5"),
        "{}",
        e.message
    );
    let e = one_error(name_re.clone(), json!({"X": "team}"}));
    assert!(e.message.starts_with("unmatched `}`"), "{}", e.message);
    let e = one_error(name_re, json!({"X": "{}"}));
    assert!(e.message.contains("is not a placeholder"), "{}", e.message);
}

#[test]
fn conflicting_priorities_name_both_rules() {
    let when = json!({"field": "name", "eq": "x"});
    let e = errors(vec![
        (
            1,
            json!({"name": "first", "priority": 10, "when": when, "set": {"X": "y"}}),
        ),
        (
            2,
            json!({"name": "second", "priority": 10, "when": when, "set": {"X": "y"}}),
        ),
    ]);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].rule, "second");
    assert_eq!(e[0].path, "priority");
    assert!(
        e[0].message.contains("conflicting priority: 10"),
        "{}",
        e[0].message
    );
    assert!(e[0].message.contains("`first` (id 1)"), "{}", e[0].message);
}

#[test]
fn duplicate_ids_are_refused() {
    let when = json!({"field": "name", "eq": "x"});
    let e = errors(vec![
        (
            1,
            json!({"name": "first", "priority": 10, "when": when, "set": {"X": "y"}}),
        ),
        (
            1,
            json!({"name": "second", "priority": 20, "when": when, "set": {"X": "y"}}),
        ),
    ]);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "id");
    assert!(
        e[0].message.contains("also used by rule `first`"),
        "{}",
        e[0].message
    );
}

#[test]
fn empty_name_key_and_value_are_refused() {
    let e = errors(vec![(
        4,
        json!({"name": " ", "priority": 1, "when": {"field": "name", "eq": "x"}, "set": {"": "v", "K": ""}}),
    )]);
    let got: Vec<(String, String)> = e.iter().map(|e| (e.rule.clone(), e.path.clone())).collect();
    assert_eq!(
        got,
        pairs(&[("#4", "name"), ("#4", "set"), ("#4", "set.K")])
    );
    assert_eq!(e[0].message, "the rule needs a name");
    assert_eq!(e[1].message, "a tag key is empty");
    assert_eq!(e[2].message, "the value is empty");
}

#[test]
fn all_problems_are_reported_at_once() {
    let e = errors(vec![
        (
            1,
            json!({"name": "a", "priority": 1, "when": {"all": [
                {"field": "nme", "eq": "x"}, {"field": "name", "regex": "("}
            ]}, "set": {}}),
        ),
        (
            2,
            json!({"name": "b", "priority": 2, "when": {"any": []}, "set": {"X": "y"}}),
        ),
    ]);
    let paths: Vec<(&str, &str)> = e
        .iter()
        .map(|e| (e.rule.as_str(), e.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("a", "when.all[0].field"),
            ("a", "when.all[1].regex"),
            ("a", "set"),
            ("b", "when.any"),
        ]
    );
}

// ---------------------------------------------------------------- JSON

/// The JSON examples in the module docs.
fn doc_examples() -> Vec<String> {
    let source = include_str!("mod.rs");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in source.lines().take_while(|l| l.starts_with("//!")) {
        let text = line
            .trim_start_matches("//!")
            .strip_prefix(' ')
            .unwrap_or("");
        match (&mut current, text) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn doc_examples_parse_round_trip_and_compile() {
    let examples = doc_examples();
    assert_eq!(examples.len(), 2);
    let specs: Vec<RuleSpec> = examples
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|err| panic!("{err}\n{e}")))
        .collect();
    for s in &specs {
        let text = serde_json::to_string(s).unwrap();
        let back: RuleSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, s);
    }
    assert!(specs[0].trusted && specs[0].enabled && !specs[0].override_native);
    assert!(!specs[1].trusted && specs[1].description.is_none());
    let rules = compile(specs);
    let r = Resource {
        tags: vec![],
        ..resource()
    };
    let m = rules
        .first_match(&r, &tags(&[("Team", "payments")]))
        .unwrap();
    assert_eq!(m.rule_name, "application from instance name");
    assert_eq!(
        m.tags,
        pairs(&[("Application", "payments-api"), ("Stage", "prod")])
    );
    let db = Resource {
        resource_type: "rds:db".into(),
        name: "payments-api-prod-db".into(),
        ..resource()
    };
    let m = rules
        .first_match(&db, &tags(&[("Environment", "production")]))
        .unwrap();
    assert_eq!(m.rule_name, "payments data stores outside sandboxes");
    assert!(
        rules
            .first_match(&db, &tags(&[("Environment", "sandbox-alice")]))
            .is_none()
    );
}

#[test]
fn every_condition_shape_round_trips() {
    let shapes = [
        json!({"all": [{"field": "name", "eq": "x"}]}),
        json!({"any": [{"field": "name", "in": ["x", "y"]}]}),
        json!({"not": {"field": "name", "glob": "x*"}}),
        json!({"field": "tag:Team", "regex": "^(a)"}),
        json!({"field": "vpc", "exists": true}),
        json!({"field": "vpc", "absent": false}),
    ];
    for shape in shapes {
        let c: Condition = serde_json::from_value(shape.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), shape);
    }
    let s = spec(
        json!({"name": "n", "priority": -3, "when": {"field": "name", "eq": "x"}, "set": {"A": "b"}}),
    );
    assert!(s.enabled && !s.trusted && !s.override_native);
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({"name": "n", "priority": -3, "enabled": true, "trusted": false,
               "override_native": false, "when": {"field": "name", "eq": "x"}, "set": {"A": "b"}})
    );
}

#[test]
fn malformed_conditions_say_what_is_wrong() {
    let err = |v: Value| {
        serde_json::from_value::<Condition>(v)
            .unwrap_err()
            .to_string()
    };
    assert!(
        err(json!({})).starts_with("empty condition: a condition is"),
        "{}",
        err(json!({}))
    );
    assert_eq!(
        err(json!({"field": "name", "eq": "x", "glob": "y"})),
        "one condition tests one thing (got `eq` and `glob`): combine tests with `all` or `any`"
    );
    assert_eq!(
        err(json!({"all": [], "field": "name", "eq": "x"})),
        "one condition cannot combine `all` and `field` and `eq`: nest them in an `all` or `any` list"
    );
    assert_eq!(err(json!({"eq": "x"})), "`eq` needs a `field` to test");
    assert!(err(json!({"field": "name"})).starts_with("field `name` needs a test"));
    assert!(err(json!({"field": "name", "regx": "a"})).starts_with("unknown field `regx`"));
    assert!(err(json!({"field": "name", "exists": "yes"})).contains("expected a boolean"));
    // Errors in nested conditions surface too.
    assert_eq!(
        err(json!({"all": [{"eq": "x"}]})),
        "`eq` needs a `field` to test"
    );
    let e = serde_json::from_value::<RuleSpec>(json!({"name": "n", "priority": 1,
        "when": {"field": "name", "eq": "x"}, "set": {"A": "b"}, "prio": 2}))
    .unwrap_err();
    assert!(e.to_string().starts_with("unknown field `prio`"), "{e}");
}

#[test]
fn schema_is_one_branch_per_shape_and_strict() {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<RuleSpec>();
    let schema = serde_json::to_value(schema).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(
        schema["required"],
        json!(["name", "priority", "when", "set"])
    );
    let branches = schema["$defs"]["Condition"]["anyOf"].as_array().unwrap();
    assert_eq!(branches.len(), 9);
    for b in branches {
        assert_eq!(b["type"], "object");
        assert_eq!(b["additionalProperties"], json!(false));
        assert!(b["description"].is_string());
    }
    assert_eq!(branches[4]["required"], json!(["field", "in"]));
    assert_eq!(branches[0]["properties"]["all"]["minItems"], json!(1));
}

#[test]
fn many_distinct_tag_keys_are_read_correctly() {
    // More keys than fit the on-stack cache, each read by two rules.
    let mut specs = Vec::new();
    for i in 0..20 {
        specs.push(rule(
            &format!("k{i} absent"),
            i * 2,
            json!({"all": [{"field": format!("tag:K{i}"), "exists": true}, {"field": "tag:K0", "absent": true}]}),
            json!({"Hit": format!("{i}")}),
        ));
        specs.push(rule(
            &format!("k{i} value"),
            i * 2 + 1,
            json!({"field": format!("tag:K{i}"), "regex": "^(v.*)$"}),
            json!({"Hit": format!("{i}:{{1}}")}),
        ));
    }
    let rules = compile(specs);
    let hit = |eff: BTreeMap<String, String>| {
        rules
            .first_match(&resource(), &eff)
            .map(|m| m.tags[0].1.clone())
    };
    assert_eq!(hit(tags(&[("K19", "v19")])).as_deref(), Some("19"));
    assert_eq!(
        hit(tags(&[("K0", "v0"), ("K17", "x")])).as_deref(),
        Some("0:v0")
    );
    assert_eq!(hit(tags(&[("K18", "w")])).as_deref(), Some("18"));
    assert_eq!(hit(tags(&[])), None);
}
