//! Evaluator tests: every violation kind, every format feature, both views, and the fixes.

use super::evaluate::{Evaluation, View, Violation};
use super::*;

/// A policy using every format feature, plus naming limits.
const FULL_POLICY: &str = r#"{
  "version": "2", "fail_at": "low", "key_matching": "case_insensitive",
  "aliases": { "Environment": ["env", "stage"], "CostCenter": ["cost-center", "cc"] },
  "value_aliases": { "Environment": { "production": ["prod", "prd"] } },
  "required_tags": [
    { "name": "Environment", "allowed_values": ["production", "staging", "dev-*"],
      "applies_to": ["*"], "severity": "critical" },
    { "name": "CostCenter", "validation_regex": "CC-[0-9]{4}", "applies_to": ["ec2:*", "s3:bucket"] },
    { "name": "Compliance", "allowed_values": ["pci", "none"], "applies_to": ["rds:*"],
      "when": { "key": "Environment", "equals": "production" } }
  ],
  "optional_tags": [ { "name": "Project" }, { "name": "Tier", "allowed_values": ["gold", "silver"] } ],
  "prohibited_tags": [ { "name": "tmp", "severity": "low" } ],
  "max_tags": 6,
  "conflicts": [ { "description": "prod is never auto-stopped", "severity": "high",
                   "tags": [ { "key": "Environment", "equals": "production" },
                             { "key": "AutoStop", "equals": "true" } ] } ]
}"#;

fn policy() -> Policy {
    parse_policy(FULL_POLICY).expect("spec policy compiles")
}

fn eval(p: &Policy, ty: &str, tags: &[(&str, &str)]) -> Evaluation {
    p.evaluate(ty, tags)
}

/// (kind, key name or "-", severity) of each violation, for compact assertions.
fn summary(p: &Policy, vs: &[Violation]) -> Vec<(ViolationKind, String, Severity)> {
    vs.iter()
        .map(|v| {
            let key = if v.key == evaluate::NO_KEY {
                "-".to_string()
            } else {
                p.key_name(v.key).to_string()
            };
            (v.kind, key, v.severity)
        })
        .collect()
}

use ViolationKind::*;

#[test]
fn fully_compliant_ec2() {
    let p = policy();
    let e = eval(
        &p,
        "ec2:instance",
        &[("CostCenter", "CC-1234"), ("Environment", "production")],
    );
    assert!(e.in_scope);
    assert!(e.effective.is_empty(), "{:?}", e.effective);
    assert!(e.native.is_empty());
    assert!(e.is_compliant(View::Effective, Severity::Low));
    assert!(e.is_compliant(View::Native, Severity::Low));
}

#[test]
fn missing_required_tags() {
    let p = policy();
    let e = eval(&p, "ec2:instance", &[]);
    assert_eq!(
        summary(&p, &e.effective),
        vec![
            (MissingRequiredTag, "Environment".into(), Severity::Critical),
            (MissingRequiredTag, "CostCenter".into(), Severity::High),
        ]
    );
    assert_eq!(e.effective, e.native);
}

#[test]
fn out_of_scope_type_has_no_violations() {
    // Environment applies to "*", so to scope a type out we need a narrower policy.
    let p = parse_policy(
        r#"{"required_tags":[{"name":"A","applies_to":["ec2:*"]}],"prohibited_tags":["tmp"]}"#,
    )
    .unwrap();
    let e = eval(&p, "s3:bucket", &[("tmp", "1")]);
    assert!(!e.in_scope);
    assert!(e.effective.is_empty() && e.native.is_empty());
    assert!(
        !e.is_compliant(View::Effective, Severity::Low),
        "out of scope is not compliant"
    );
}

#[test]
fn declared_scope_judges_types_without_required_rules() {
    // `scope` brings s3 in: its optional, prohibited and misnamed-key rules are checked although
    // no required rule applies to it; lambda stays out.
    let p = parse_policy(
        r#"{"required_tags":[{"name":"A","applies_to":["ec2:*"]}],
            "optional_tags":[{"name":"CostCenter","allowed_values":["1*"]}],
            "prohibited_tags":["tmp"], "scope":["s3:*"]}"#,
    )
    .unwrap();
    let e = eval(
        &p,
        "s3:bucket",
        &[("tmp", "1"), ("CostCenter", "2"), ("costcenter", "1")],
    );
    assert!(e.in_scope);
    assert_eq!(
        summary(&p, &e.effective),
        vec![
            (InvalidValue, "CostCenter".into(), Severity::Low),
            (ProhibitedTag, "-".into(), Severity::High),
        ]
    );
    assert_eq!(
        summary(&p, &e.native),
        vec![
            (InvalidValue, "CostCenter".into(), Severity::Low),
            (MisnamedKey, "CostCenter".into(), Severity::Low),
            (ProhibitedTag, "-".into(), Severity::High),
        ]
    );
    // In scope with nothing wrong is compliant (not "out of scope").
    let ok = eval(&p, "s3:bucket", &[("CostCenter", "12")]);
    assert!(ok.in_scope && ok.is_compliant(View::Native, Severity::Low));
    assert!(!eval(&p, "lambda:function", &[("tmp", "1")]).in_scope);
    assert!(p.in_scope("s3:bucket") && p.in_scope("ec2:volume") && !p.in_scope("rds:db"));
    // An empty scope means none (not "every type"); an empty pattern is refused.
    let none = parse_policy(r#"{"required_tags":[],"scope":[]}"#).unwrap();
    assert!(!none.in_scope("s3:bucket"));
    let err = parse_policy(r#"{"required_tags":[],"scope":["s3:*",""]}"#).unwrap_err();
    assert!(err.to_string().contains("scope[1]"), "{err}");
    assert!(
        p.summary_lines()
            .iter()
            .any(|l| l == "Resources of type s3:* are judged also where no required tag applies."),
        "{:?}",
        p.summary_lines()
    );
}

#[test]
fn empty_value_and_whitespace() {
    let p = policy();
    let e = eval(
        &p,
        "s3:bucket",
        &[("Environment", ""), ("CostCenter", "  ")],
    );
    assert_eq!(
        summary(&p, &e.effective),
        vec![
            (EmptyValue, "Environment".into(), Severity::Critical),
            (EmptyValue, "CostCenter".into(), Severity::High),
        ]
    );
}

#[test]
fn invalid_value_is_case_sensitive_and_wildcards_match_whole() {
    let p = policy();
    for (value, ok) in [
        ("production", true),
        ("Production", false),
        ("staging", true),
        ("dev-alice", true),
        ("dev-", true),
        ("xdev-alice", false),
        ("development", false),
    ] {
        let e = eval(
            &p,
            "s3:bucket",
            &[("Environment", value), ("CostCenter", "CC-0001")],
        );
        assert_eq!(
            e.effective.is_empty(),
            ok,
            "value {value}: {:?}",
            e.effective
        );
        if !ok {
            assert_eq!(e.effective[0].kind, InvalidValue);
        }
    }
}

#[test]
fn regex_is_anchored() {
    let p = policy();
    for (value, ok) in [
        ("CC-1234", true),
        ("CC-12345", false),
        ("xCC-1234", false),
        ("cc-1234", false),
        ("CC-12", false),
    ] {
        let e = eval(
            &p,
            "ec2:volume",
            &[("Environment", "staging"), ("CostCenter", value)],
        );
        assert_eq!(e.effective.is_empty(), ok, "value {value}");
        if !ok {
            assert_eq!(
                summary(&p, &e.effective),
                vec![(InvalidFormat, "CostCenter".into(), Severity::High)]
            );
        }
    }
    // Already-anchored patterns (the Python peer writes ^...$) work the same.
    let q =
        parse_policy(r#"{"required_tags":[{"name":"O","validation_regex":"^[a-z]+@x\\.com$"}]}"#)
            .unwrap();
    assert!(eval(&q, "t:t", &[("O", "ann@x.com")]).effective.is_empty());
    assert_eq!(
        eval(&q, "t:t", &[("O", "ann@x.com.evil")]).effective[0].kind,
        InvalidFormat
    );
}

#[test]
fn allowed_values_checked_before_regex() {
    let p = parse_policy(
        r#"{"required_tags":[{"name":"E","allowed_values":["a-*"],"validation_regex":"a-[0-9]+"}]}"#,
    )
    .unwrap();
    assert_eq!(
        eval(&p, "x:y", &[("E", "b")]).effective[0].kind,
        InvalidValue
    );
    assert_eq!(
        eval(&p, "x:y", &[("E", "a-b")]).effective[0].kind,
        InvalidFormat
    );
    assert!(eval(&p, "x:y", &[("E", "a-12")]).effective.is_empty());
}

#[test]
fn aliases_are_misnamed_natively_and_fixed_effectively() {
    let p = policy();
    let e = eval(&p, "ec2:instance", &[("cc", "CC-1234"), ("env", "staging")]);
    assert!(
        e.effective.is_empty(),
        "effective view renames aliases: {:?}",
        e.effective
    );
    assert_eq!(
        summary(&p, &e.native),
        vec![
            (MissingRequiredTag, "Environment".into(), Severity::Critical),
            (MissingRequiredTag, "CostCenter".into(), Severity::High),
            (MisnamedKey, "CostCenter".into(), Severity::High),
            (MisnamedKey, "Environment".into(), Severity::Critical),
        ]
    );
}

#[test]
fn case_variants_are_misnamed_and_precedence_is_exact_case_alias() {
    let p = policy();
    // Exact key wins over the case variant and the alias.
    let e = eval(
        &p,
        "s3:bucket",
        &[
            ("ENVIRONMENT", "bogus"),
            ("Environment", "staging"),
            ("env", "also-bogus"),
            ("CostCenter", "CC-0001"),
        ],
    );
    assert!(e.effective.is_empty(), "{:?}", e.effective);
    assert_eq!(
        summary(&p, &e.native),
        vec![
            (MisnamedKey, "Environment".into(), Severity::Critical),
            (MisnamedKey, "Environment".into(), Severity::Critical),
        ]
    );
    // Case variant wins over alias when the exact key is absent.
    let e = eval(
        &p,
        "s3:bucket",
        &[
            ("environment", "staging"),
            ("stage", "bogus"),
            ("CostCenter", "CC-0001"),
        ],
    );
    assert!(e.effective.is_empty(), "{:?}", e.effective);
    // Alias used when it is the only source; its bad value is reported on the canonical key.
    let e = eval(
        &p,
        "s3:bucket",
        &[("stage", "bogus"), ("CostCenter", "CC-0001")],
    );
    assert_eq!(
        summary(&p, &e.effective),
        vec![(InvalidValue, "Environment".into(), Severity::Critical)]
    );
}

#[test]
fn exact_matching_mode_ignores_case_variants() {
    let p = parse_policy(
        r#"{"key_matching":"exact","aliases":{"Environment":["env"]},
            "required_tags":[{"name":"Environment"}]}"#,
    )
    .unwrap();
    let e = eval(&p, "a:b", &[("environment", "x")]);
    assert_eq!(
        summary(&p, &e.effective),
        vec![(MissingRequiredTag, "Environment".into(), Severity::High)]
    );
    assert_eq!(
        e.native, e.effective,
        "a case variant is just another key in exact mode"
    );
    let e = eval(&p, "a:b", &[("env", "x")]);
    assert!(e.effective.is_empty());
    assert_eq!(e.native.len(), 2);
    let e = eval(&p, "a:b", &[("ENV", "x")]);
    assert_eq!(e.effective.len(), 1, "aliases match exactly in exact mode");
}

#[test]
fn value_aliases_apply_only_in_effective_view() {
    let p = policy();
    let e = eval(
        &p,
        "s3:bucket",
        &[("Environment", "prod"), ("CostCenter", "CC-0001")],
    );
    assert!(e.effective.is_empty());
    assert_eq!(
        summary(&p, &e.native),
        vec![(InvalidValue, "Environment".into(), Severity::Critical)]
    );
    // Value aliases are case-sensitive: "PROD" is not an alias.
    let e = eval(
        &p,
        "s3:bucket",
        &[("Environment", "PROD"), ("CostCenter", "CC-0001")],
    );
    assert_eq!(e.effective[0].kind, InvalidValue);
    // Value aliases also apply to a value found under a key alias.
    let e = eval(
        &p,
        "s3:bucket",
        &[("env", "prd"), ("CostCenter", "CC-0001")],
    );
    assert!(e.effective.is_empty());
}

#[test]
fn conditional_requirement_follows_when() {
    let p = policy();
    let e = eval(&p, "rds:db", &[("Environment", "production")]);
    assert_eq!(
        summary(&p, &e.effective),
        vec![(ConditionalRequirement, "Compliance".into(), Severity::High)]
    );
    let e = eval(&p, "rds:db", &[("Environment", "staging")]);
    assert!(e.effective.is_empty(), "condition false: rule skipped");
    // The condition sees the effective value: prod → production.
    let e = eval(&p, "rds:db", &[("Environment", "prod")]);
    assert_eq!(
        summary(&p, &e.effective),
        vec![(ConditionalRequirement, "Compliance".into(), Severity::High)]
    );
    // ...but natively "prod" is not "production", so the conditional rule does not apply there.
    assert_eq!(
        summary(&p, &e.native),
        vec![(InvalidValue, "Environment".into(), Severity::Critical)]
    );
    // Present but invalid under the condition is an ordinary invalid value.
    let e = eval(
        &p,
        "rds:db",
        &[("Environment", "production"), ("Compliance", "hipaa")],
    );
    assert_eq!(
        summary(&p, &e.effective),
        vec![(InvalidValue, "Compliance".into(), Severity::High)]
    );
}

#[test]
fn condition_forms() {
    let p = parse_policy(
        r#"{"required_tags":[
            {"name":"A","when":{"key":"T","in":["x","y"]}},
            {"name":"B","when":{"key":"T","exists":false}},
            {"name":"C","when":{"key":"T","exists":true}}]}"#,
    )
    .unwrap();
    let keys = |tags: &[(&str, &str)]| -> Vec<String> {
        summary(&p, &eval(&p, "q:r", tags).effective)
            .into_iter()
            .map(|s| s.1)
            .collect()
    };
    assert_eq!(keys(&[]), vec!["B"]);
    assert_eq!(keys(&[("T", "x")]), vec!["A", "C"]);
    assert_eq!(keys(&[("T", "z")]), vec!["C"]);
}

#[test]
fn prohibited_tags_in_both_views_any_case() {
    let p = policy();
    let e = eval(
        &p,
        "s3:bucket",
        &[
            ("Environment", "staging"),
            ("CostCenter", "CC-0001"),
            ("TMP", "1"),
        ],
    );
    assert_eq!(
        summary(&p, &e.effective),
        vec![(ProhibitedTag, "-".into(), Severity::Low)]
    );
    assert_eq!(e.native, e.effective);
}

#[test]
fn max_tags_excludes_aws_keys_and_merges_variants_effectively() {
    let p = policy();
    let base = [
        ("Environment", "staging"),
        ("CostCenter", "CC-0001"),
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("d", "4"),
    ];
    let e = eval(&p, "s3:bucket", &base);
    assert!(e.effective.is_empty());
    let mut with_aws = base.to_vec();
    with_aws.push(("aws:cloudformation:stack-name", "s"));
    assert!(
        eval(&p, "s3:bucket", &with_aws).effective.is_empty(),
        "aws: keys are not counted"
    );
    let mut seven = base.to_vec();
    seven.push(("e", "5"));
    let e = eval(&p, "s3:bucket", &seven);
    assert_eq!(
        summary(&p, &e.effective),
        vec![(TooManyTags, "-".into(), Severity::High)]
    );
    // A duplicate variant is 7 native keys but 6 effective ones.
    let mut dup = base.to_vec();
    dup.push(("env", "staging"));
    let e = eval(&p, "s3:bucket", &dup);
    assert!(e.effective.is_empty(), "{:?}", e.effective);
    assert!(e.native.iter().any(|v| v.kind == TooManyTags));
}

#[test]
fn conflicts_need_all_conditions() {
    let p = policy();
    let tags = [
        ("Environment", "production"),
        ("CostCenter", "CC-0001"),
        ("AutoStop", "true"),
    ];
    let e = eval(&p, "s3:bucket", &tags);
    assert_eq!(
        summary(&p, &e.effective),
        vec![(ConflictingTags, "Environment".into(), Severity::High)]
    );
    let e = eval(
        &p,
        "s3:bucket",
        &[
            ("Environment", "staging"),
            ("CostCenter", "CC-0001"),
            ("AutoStop", "true"),
        ],
    );
    assert!(e.effective.is_empty());
    // autostop (a case variant) counts effectively, and is misnamed natively.
    let e = eval(
        &p,
        "s3:bucket",
        &[
            ("Environment", "production"),
            ("CostCenter", "CC-0001"),
            ("autostop", "true"),
        ],
    );
    assert_eq!(
        summary(&p, &e.effective),
        vec![(ConflictingTags, "Environment".into(), Severity::High)]
    );
    assert_eq!(
        summary(&p, &e.native),
        vec![(MisnamedKey, "AutoStop".into(), Severity::Low)]
    );
}

#[test]
fn optional_tags_checked_only_when_present() {
    let p = policy();
    let ok = [("Environment", "staging"), ("CostCenter", "CC-0001")];
    assert!(eval(&p, "s3:bucket", &ok).effective.is_empty());
    let mut bad = ok.to_vec();
    bad.push(("Tier", "bronze"));
    assert_eq!(
        summary(&p, &eval(&p, "s3:bucket", &bad).effective),
        vec![(InvalidValue, "Tier".into(), Severity::Low)]
    );
}

#[test]
fn misnamed_severity_follows_canonical_rule_for_this_type() {
    let p = policy();
    // CostCenter does not apply to rds, so a misnamed `cc` on rds is low.
    let e = eval(
        &p,
        "rds:db",
        &[("Environment", "staging"), ("cc", "CC-0001")],
    );
    assert_eq!(
        summary(&p, &e.native),
        vec![(MisnamedKey, "CostCenter".into(), Severity::Low)]
    );
    assert!(e.effective.is_empty());
}

#[test]
fn fail_at_decides_compliance() {
    let p = parse_policy(
        r#"{"fail_at":"high","required_tags":[{"name":"A","severity":"medium"},{"name":"B","severity":"critical"}]}"#,
    )
    .unwrap();
    let e = eval(&p, "x:y", &[("B", "1")]);
    assert_eq!(e.effective.len(), 1);
    assert!(
        e.is_compliant(View::Effective, p.fail_at()),
        "medium is below fail_at high"
    );
    let e = eval(&p, "x:y", &[("A", "1")]);
    assert!(!e.is_compliant(View::Effective, p.fail_at()));
}

#[test]
fn aws_system_keys_are_never_governed() {
    let p = parse_policy(r#"{"required_tags":[{"name":"A"}],"prohibited_tags":["x"]}"#).unwrap();
    let e = eval(&p, "x:y", &[("A", "1"), ("aws:x", "1"), ("aws:a", "1")]);
    assert!(e.effective.is_empty() && e.native.is_empty());
}

#[test]
fn naming_rule_lengths() {
    let p = parse_policy(
        r#"{"required_tags":[{"name":"A"}],"tag_naming_rules":{"max_key_length":5,"max_value_length":3}}"#,
    )
    .unwrap();
    let e = eval(&p, "x:y", &[("A", "1234"), ("toolong", "1")]);
    assert_eq!(
        summary(&p, &e.effective),
        vec![
            (InvalidFormat, "-".into(), Severity::Low),
            (InvalidFormat, "-".into(), Severity::Low)
        ]
    );
    let d = p.render(
        "r",
        &[("A", "1234"), ("toolong", "1")],
        View::Effective,
        &e.effective[1],
    );
    assert_eq!(d.fix, "shorten tag key `toolong` to at most 5 characters");
}

#[test]
fn evaluator_reuse_gives_identical_results() {
    let p = policy();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("ec2:instance", vec![("env", "prod"), ("cc", "CC-1")]),
        (
            "s3:bucket",
            vec![("Environment", "production"), ("AutoStop", "true")],
        ),
        ("rds:db", vec![("ENVIRONMENT", "production")]),
        ("lambda:function", vec![]),
        (
            "ec2:instance",
            vec![
                ("tmp", "x"),
                ("Environment", "dev-x"),
                ("CostCenter", "CC-1234"),
            ],
        ),
    ];
    let mut ev = p.evaluator();
    for _round in 0..3 {
        for (ty, tags) in &cases {
            assert_eq!(ev.evaluate(ty, tags), p.evaluate(ty, tags), "{ty} {tags:?}");
        }
    }
}

#[test]
fn rendered_fixes_are_the_smallest_change() {
    let p = policy();
    let fix = |ty: &str, tags: &[(&str, &str)], view: View| -> Vec<String> {
        let e = eval(&p, ty, tags);
        e.violations(view)
            .iter()
            .map(|v| p.render("r1", tags, view, v).fix)
            .collect()
    };
    assert_eq!(
        fix(
            "ec2:instance",
            &[("CostCenter", "CC-1234")],
            View::Effective
        ),
        vec!["add tag `Environment` with one of: production, staging, dev-*"]
    );
    assert_eq!(
        fix(
            "ec2:instance",
            &[("Environment", "staging")],
            View::Effective
        ),
        vec!["add tag `CostCenter` with a value matching `CC-[0-9]{4}`"]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[("Environment", "Production"), ("CostCenter", "CC-0001")],
            View::Effective
        ),
        vec!["change `Environment` from `Production` to `production`"]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[("Environment", "prd"), ("CostCenter", "CC-0001")],
            View::Native
        ),
        vec!["change `Environment` from `prd` to `production`"]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[("Environment", "staging"), ("CostCenter", "cc-0001")],
            View::Effective
        ),
        vec!["change `CostCenter` from `cc-0001` to `CC-0001`"]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[("Environment", "qa"), ("CostCenter", "CC-0001")],
            View::Effective
        ),
        vec!["change `Environment` from `qa` to one of: production, staging, dev-*"]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[("env", "staging"), ("CostCenter", "CC-0001")],
            View::Native
        ),
        vec![
            "rename tag key `env` to `Environment`",
            "rename tag key `env` to `Environment`"
        ]
    );
    assert_eq!(
        fix("rds:db", &[("Environment", "production")], View::Effective),
        vec![
            "add tag `Compliance` (required because Environment=production) with one of: pci, none"
        ]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[
                ("Environment", "staging"),
                ("CostCenter", "CC-0001"),
                ("tmp", "")
            ],
            View::Effective
        ),
        vec!["remove tag `tmp`"]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[
                ("Environment", "production"),
                ("CostCenter", "CC-0001"),
                ("AutoStop", "true")
            ],
            View::Effective
        ),
        vec![
            "change or remove one of Environment=production, AutoStop=true (prod is never auto-stopped)"
        ]
    );
    assert_eq!(
        fix(
            "s3:bucket",
            &[("Environment", ""), ("CostCenter", "CC-0001")],
            View::Effective
        ),
        vec!["set `Environment` to one of: production, staging, dev-*"]
    );
    let many: Vec<(String, String)> = (0..9).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let e = p.evaluate("x:y", &many);
    let too_many = e
        .effective
        .iter()
        .find(|v| v.kind == TooManyTags)
        .expect("too many");
    assert_eq!(
        p.render("r", &many, View::Effective, too_many).fix,
        "remove at least 3 tag(s): 9 user tags, the limit is 6"
    );
}

#[test]
fn rendered_details_carry_key_value_and_expected() {
    let p = policy();
    let tags = [("env", "qa"), ("CostCenter", "CC-0001")];
    let e = eval(&p, "s3:bucket", &tags);
    let d = p.render("arn:x", &tags, View::Effective, &e.effective[0]);
    assert_eq!(d.resource_id, "arn:x");
    assert_eq!(d.tag_key.as_deref(), Some("Environment"));
    assert_eq!(d.current_key.as_deref(), Some("env"));
    assert_eq!(d.current_value.as_deref(), Some("qa"));
    assert_eq!(
        d.expected.allowed_values,
        Some(vec![
            "production".to_string(),
            "staging".into(),
            "dev-*".into()
        ])
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["kind"], "invalid_value");
    assert_eq!(json["severity"], "critical");
}

#[test]
fn summary_mentions_every_rule() {
    let p = policy();
    let text = p.summary_lines().join("\n");
    for needle in [
        "`Environment`",
        "`CostCenter`",
        "Environment=production",
        "`tmp`",
        "At most 6",
        "auto-stopped",
        "severity low",
    ] {
        assert!(text.contains(needle), "summary lacks {needle}:\n{text}");
    }
}

#[test]
fn native_shortcut_equals_full_evaluation_on_the_demo_estate() {
    let estate = crate::inventory::demo::generate(7, 5000);
    for policy in [policy(), default_policy()] {
        let mut fast = policy.evaluator();
        let mut full = policy.evaluator().without_shortcut();
        for r in &estate.resources {
            assert_eq!(
                fast.evaluate(&r.resource_type, &r.tags),
                full.evaluate(&r.resource_type, &r.tags),
                "{} {:?}",
                r.id,
                r.tags
            );
        }
    }
}
