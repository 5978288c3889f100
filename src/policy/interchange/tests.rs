//! Interchange tests: the fixture tag policy (every operator, both envelopes) converted field by
//! field, the compliant set it gives on the fixture inventory against AWS's own rules computed
//! by hand, the export's lossiness, and the Custodian file's shape.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::aws_import::AwsImport;
use super::aws_import::AwsSource;
use super::*;
use crate::policy::compiled::Policy;
use crate::policy::evaluate::View;
use crate::policy::loader::parse_policy;

const TAG_POLICY: &str = include_str!("../../../tests/fixtures/aws_tag_policy.json");
const EFFECTIVE: &str = include_str!("../../../tests/fixtures/aws_effective_tag_policy.json");
const INVENTORY: &str = include_str!("../../../tests/fixtures/aws_tag_policy_inventory.json");

fn import(text: &str) -> AwsImport {
    import_aws_tag_policy(text).expect("tag policy imports")
}

fn compiled(file: &crate::policy::model::PolicyFile) -> Policy {
    parse_policy(&serde_json::to_string(file).unwrap()).expect("imported policy compiles")
}

fn refused(text: &str) -> (String, String) {
    match import_aws_tag_policy(text) {
        Err(InterchangeError::Invalid { path, reason }) => (path, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The rules of an imported policy without their prose: (name, applies_to, allowed_values,
/// severity) for required and optional tags.
fn rules(file: &crate::policy::model::PolicyFile) -> Value {
    json!({
        "required": file.required_tags.iter().map(|r| json!([r.name, r.applies_to, r.allowed_values, r.severity])).collect::<Vec<_>>(),
        "optional": file.optional_tags.iter().map(|r| json!([r.name, r.allowed_values, r.severity])).collect::<Vec<_>>(),
    })
}

/// [`rules`] in name order, to compare policies whose keys were read in another order.
fn sorted_rules(file: &crate::policy::model::PolicyFile) -> Value {
    let mut v = rules(file);
    for part in ["required", "optional"] {
        if let Some(list) = v[part].as_array_mut() {
            list.sort_by_key(|r| r[0].as_str().unwrap_or_default().to_string());
        }
    }
    v
}

#[test]
fn fixture_tag_policy_converts_exactly() {
    let imported = import(TAG_POLICY);
    assert_eq!(imported.source, AwsSource::PolicyDocument);
    assert_eq!(imported.keys, 6);
    let file = &imported.policy;
    // Policy keys are read in JSON key order (upper case sorts first): DataClass, costcenter,
    // environment, owner, project, team.
    assert_eq!(
        rules(file),
        json!({
            "required": [
                // report_required_tag_for only; enforced_for does not add secretsmanager.
                ["CostCenter", ["ec2:instance", "ec2:volume"], null, null],
                // ec2:ALL_SUPPORTED → ec2:*.
                ["Environment", ["ec2:*", "rds:db"], null, null],
                // No tag_key: the key is the policy key in lower case.
                ["team", ["s3:bucket"], null, null],
            ],
            "optional": [
                // tag_key only: governs the capitalisation, any value.
                ["DataClass", null, null],
                ["CostCenter", ["100", "200", "300*"], "high"],
                ["Environment", ["production", "staging", "sandbox-*"], "high"],
                // Not required anywhere: a value rule only, wildcard kept.
                ["Owner", ["*@example.com"], "high"],
                // @@append to nothing inherited.
                ["project", ["apollo", "gemini"], "high"],
            ],
        })
    );
    assert_eq!(file.scope, Some(vec!["*".to_string()]));
    assert_eq!(
        file.key_matching,
        Some(crate::policy::KeyMatching::CaseInsensitive)
    );
    assert_eq!(file.fail_at, Some(crate::policy::Severity::Low));
    let costcenter = &file.required_tags[0];
    let description = costcenter.description.as_deref().unwrap();
    assert!(
        description.contains("secretsmanager:*, ec2:instance (enforced_for)"),
        "{description}"
    );
    assert!(
        file.optional_tags[3]
            .description
            .as_deref()
            .unwrap()
            .contains("s3:bucket (enforced_for)")
    );
    let loss: Vec<(LossKind, &str)> = imported
        .lossiness
        .iter()
        .map(|l| (l.kind, l.path.as_str()))
        .collect();
    assert_eq!(
        loss,
        vec![
            (
                LossKind::Dropped,
                "tags.@@operators_allowed_for_child_policies"
            ),
            (
                LossKind::Dropped,
                "tags.DataClass.@@operators_allowed_for_child_policies"
            ),
            (
                LossKind::Dropped,
                "tags.costcenter.tag_key.@@operators_allowed_for_child_policies"
            ),
            (LossKind::Recorded, "tags.costcenter.enforced_for"),
            (LossKind::Recorded, "tags.owner.enforced_for"),
            (LossKind::Approximated, "tags.project.tag_value.@@append"),
            (LossKind::Dropped, "tags.team.tag_value.@@remove"),
            (LossKind::Approximated, "tags"),
            (LossKind::Approximated, "report_required_tag_for"),
        ]
    );
    assert!(imported.lossiness[6].reason.contains("`legacy`"));
    assert!(imported.lossiness[5].reason.contains("`apollo`, `gemini`"));
    compiled(file);
}

#[test]
fn effective_policy_gives_the_same_rules() {
    let file = import(TAG_POLICY);
    let effective = import(EFFECTIVE);
    assert_eq!(effective.source, AwsSource::EffectivePolicy);
    assert_eq!(effective.target_id.as_deref(), Some("111122223333"));
    assert_eq!(
        effective.policy.last_updated.as_deref(),
        Some("2026-11-20T10:15:00+00:00")
    );
    assert_eq!(
        effective.policy.description.as_deref(),
        Some("Imported from the effective AWS Organizations tag policy of 111122223333.")
    );
    // The effective policy spells the DataClass policy key in lower case: same key, same rule
    // (read in another order).
    assert_eq!(sorted_rules(&effective.policy), sorted_rules(&file.policy));
    // Already merged by AWS: no operator to report, only the two general notes and enforced_for.
    let paths: Vec<&str> = effective
        .lossiness
        .iter()
        .map(|l| l.path.as_str())
        .collect();
    assert_eq!(
        paths,
        vec![
            "tags.costcenter.enforced_for",
            "tags.owner.enforced_for",
            "tags",
            "report_required_tag_for"
        ]
    );
    // The EffectivePolicy object alone, and DescribePolicy's answer, are accepted too.
    let inner: Value = serde_json::from_str(EFFECTIVE).unwrap();
    let alone = import(&inner["EffectivePolicy"].to_string());
    assert_eq!(rules(&alone.policy), rules(&effective.policy));
    let described = json!({"Policy": {
        "PolicySummary": {"Name": "org-tags", "Type": "TAG_POLICY"},
        "Content": TAG_POLICY}});
    let described = import(&described.to_string());
    assert_eq!(described.source, AwsSource::DescribePolicy);
    assert_eq!(rules(&described.policy), rules(&file.policy));
    assert_eq!(
        described.policy.description.as_deref(),
        Some("Imported from the AWS Organizations tag policy `org-tags`.")
    );
}

/// Evaluates the fixture inventory: the ids compliant in each view.
fn compliant_sets(policy: &Policy) -> (BTreeSet<String>, BTreeSet<String>) {
    let page: crate::inventory::file::Page = serde_json::from_str(INVENTORY).unwrap();
    let mut native = BTreeSet::new();
    let mut effective = BTreeSet::new();
    for m in page.resource_tag_mapping_list {
        let tags = m
            .tags
            .into_iter()
            .map(|t| (t.key.as_ref().into(), t.value.as_ref().into()))
            .collect::<Vec<_>>();
        let r =
            crate::inventory::id::arn::resource_from_arn(&m.resource_arn, tags, "eu-west-1", "")
                .expect("fixture ARN");
        let e = policy.evaluate(&r.resource_type, &r.tags);
        let short = r.id.rsplit([':', '/']).next().unwrap().to_string();
        if e.is_compliant(View::Native, policy.fail_at()) {
            native.insert(short.clone());
        }
        if e.is_compliant(View::Effective, policy.fail_at()) {
            effective.insert(short);
        }
    }
    (native, effective)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn imported_policy_judges_the_fixture_inventory_as_aws_does() {
    // AWS's rules for the fixture policy, applied by hand to each resource:
    // - CostCenter: key spelled exactly `CostCenter`; value 100, 200 or 300*; required on
    //   ec2:instance and ec2:volume.
    // - Environment: exactly `Environment`; production, staging or sandbox-*; required on every
    //   ec2 type and rds:db.
    // - Owner: exactly `Owner`; *@example.com. project: exactly `project`; apollo or gemini
    //   (@@append). DataClass: exactly `DataClass`, any value. team: exactly `team`, any value,
    //   required on s3:bucket.
    // - Value and capitalisation rules hold on every type; a key differing only in case is a
    //   non-compliant key.
    //
    // i-good            CostCenter=100, Environment=production                    compliant
    // i-wild            CostCenter=300-alpha (300*), sandbox-alice, ops@example    compliant
    // i-case            costcenter=100: wrong capitals                            NOT
    // i-badval          CostCenter=400                                            NOT
    // i-missing         no CostCenter (required on ec2:instance)                  NOT
    // i-empty           Environment="" (not an allowed value)                     NOT
    // vol-ok            CostCenter=200, Environment=staging                       compliant
    // snap-noenv        no Environment (ec2:ALL_SUPPORTED)                        NOT
    // bucket-ok         team=payments, Owner=alice@example.com                    compliant
    // bucket-case       Team: wrong capitals, and team missing                    NOT
    // bucket-owner-bad  Owner=alice@example.org                                   NOT
    // db-ok             Environment=production, project=apollo                    compliant
    // db-project-bad    project=mercury (@@remove is not in this policy)          NOT
    // fn-nothing        only Name: nothing applies                                compliant
    // fn-dataclass-case dataclass: wrong capitals                                 NOT
    // fn-costcenter-bad CostCenter=abc (value rules hold on lambda too)           NOT
    // table-env-case    ENVIRONMENT: wrong capitals (not required on dynamodb)    NOT
    // queue-ok          project=gemini, Owner=bob@example.com                     compliant
    let aws_compliant = set(&[
        "i-good",
        "i-wild",
        "vol-ok",
        "bucket-ok",
        "db-ok",
        "fn-nothing",
        "queue-ok",
    ]);
    // Tagwarden's effective view also reads the case variants as their key: i-case,
    // bucket-case, fn-dataclass-case and table-env-case become compliant there.
    let effective_compliant = set(&[
        "i-good",
        "i-wild",
        "i-case",
        "vol-ok",
        "bucket-ok",
        "bucket-case",
        "db-ok",
        "fn-nothing",
        "fn-dataclass-case",
        "table-env-case",
        "queue-ok",
    ]);
    for text in [TAG_POLICY, EFFECTIVE] {
        let policy = compiled(&import(text).policy);
        let (native, effective) = compliant_sets(&policy);
        assert_eq!(native, aws_compliant, "native view = AWS's verdict");
        assert_eq!(effective, effective_compliant);
    }
}

#[test]
fn documented_difference_empty_required_value() {
    // AWS counts `team=""` as the required key present; Tagwarden flags it (reported in the
    // lossiness as `report_required_tag_for`).
    let policy = compiled(&import(TAG_POLICY).policy);
    let e = policy.evaluate("s3:bucket", &[("team", "")]);
    assert!(!e.is_compliant(View::Native, policy.fail_at()));
}

#[test]
fn malformed_tag_policies_are_refused_with_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        ("[1]", "$", "tag policy"),
        (r#"{"nottags": {}}"#, "tags", "missing"),
        (r#"{"tags": []}"#, "tags", "object"),
        (r#"{"tags": {"cc": []}}"#, "tags.cc", "expected an object"),
        (
            r#"{"tags": {"cc": {"tag_key": {"@@assign": "Owner"}}}}"#,
            "tags.cc.tag_key",
            "must be the policy key",
        ),
        (
            r#"{"tags": {"cc": {"tag_key": {"@@append": ["CC"]}}}}"#,
            "tags.cc.tag_key",
            "lists only",
        ),
        (
            r#"{"tags": {"cc": {"tag_key": {"@@replace": "CC"}}}}"#,
            "tags.cc.tag_key.@@replace",
            "unknown operator",
        ),
        (
            r#"{"tags": {"cc": {"tag_key": {"assign": "CC"}}}}"#,
            "tags.cc.tag_key.assign",
            "@@ operators",
        ),
        (
            r#"{"tags": {"cc": {"tag_value": {"@@assign": ["a", 2]}}}}"#,
            "tags.cc.tag_value.@@assign[1]",
            "string",
        ),
        (
            r#"{"tags": {"cc": {"tag_value": "a"}}}"#,
            "tags.cc.tag_value.@@assign",
            "list of strings",
        ),
        (
            r#"{"tags": {"cc": {}, "CC": {}}}"#,
            "tags.cc",
            "repeats `CC`",
        ),
        (
            r#"{"tags": {"@@unknown": {}}}"#,
            "tags.@@unknown",
            "unknown operator",
        ),
        (r#"{"tags": {"aws:x": {}}}"#, "tags.aws:x", "reserved"),
        (r#"{"tags": {" cc": {}}}"#, "tags", "spaces"),
        (
            r#"{"EffectivePolicy": {"PolicyType": "BACKUP_POLICY", "PolicyContent": "{}"}}"#,
            "EffectivePolicy.PolicyType",
            "not a TAG_POLICY",
        ),
        (
            r#"{"EffectivePolicy": {"PolicyContent": "{\"tags\": "}}"#,
            "EffectivePolicy.PolicyContent",
            "not valid JSON",
        ),
        (
            r#"{"EffectivePolicy": {"TargetId": "1"}}"#,
            "EffectivePolicy.PolicyContent",
            "missing",
        ),
        (
            r#"{"Policy": {"PolicySummary": {"Type": "SERVICE_CONTROL_POLICY"}, "Content": "{}"}}"#,
            "Policy.PolicySummary.Type",
            "not a TAG_POLICY",
        ),
    ];
    for (text, path, reason) in cases {
        let (p, r) = refused(text);
        assert_eq!(&p, path, "{text}: {r}");
        assert!(r.contains(reason), "{text}: {r}");
    }
    assert!(matches!(
        import_aws_tag_policy("{\"tags\": "),
        Err(InterchangeError::Syntax { line: 1, .. })
    ));
}

#[test]
fn edge_cases_are_carried_and_reported() {
    let imported = import(
        r#"{"tags": {"email": {"tag_value": ["*@*.com", "x"], "enforced_for": ["*:instance", "ec2:inst*"]},
                     "env": {"tag_value": {"@@assign": []}, "report_required_tag_for": ["ec2:*", "ec2:ALL_SUPPORTED", "nope"]}},
            "version": "1"}"#,
    );
    let items: Vec<(LossKind, &str, &str)> = imported
        .lossiness
        .iter()
        .map(|l| (l.kind, l.path.as_str(), l.reason.as_str()))
        .collect();
    assert_eq!(items[0].0, LossKind::Dropped);
    assert_eq!(items[0].1, "version");
    assert_eq!(items[1].1, "tags.email.tag_value");
    assert!(
        items[1].2.contains("`*@*.com` has more than one `*`"),
        "{}",
        items[1].2
    );
    assert_eq!(
        (items[2].0, items[2].1),
        (LossKind::Dropped, "tags.email.enforced_for")
    );
    assert!(items[2].2.contains("`*:instance`"));
    assert!(items[3].2.contains("`ec2:inst*`"));
    assert_eq!(
        (items[4].0, items[4].1),
        (LossKind::Approximated, "tags.env.tag_value")
    );
    assert!(items[5].2.contains("`nope`"));
    // The two-star value is kept as a glob; the empty list means any value; the duplicate
    // ec2:* and ec2:ALL_SUPPORTED make one pattern.
    assert_eq!(
        rules(&imported.policy),
        json!({
            "required": [["env", ["ec2:*"], null, null]],
            "optional": [["email", ["*@*.com", "x"], "high"], ["env", null, null]],
        })
    );
    let policy = compiled(&imported.policy);
    assert!(
        policy
            .evaluate("s3:bucket", &[("email", "a@b.com")])
            .effective
            .is_empty()
    );
    // An empty tags object is a valid, empty policy.
    let empty = import(r#"{"tags": {}}"#);
    assert!(empty.policy.required_tags.is_empty() && empty.lossiness.is_empty());
}

#[test]
fn export_writes_assign_only_and_reports_the_rest() {
    let policy = crate::policy::default_policy();
    let export = export_aws_tag_policy(&policy);
    let tags = &export.document["tags"];
    assert_eq!(export.keys, tags.as_object().unwrap().len());
    // Environment: required on every type (not expressible), values with one `*` each.
    assert_eq!(
        tags["environment"],
        json!({"tag_key": {"@@assign": "Environment"},
               "tag_value": {"@@assign": ["production", "staging", "development", "sandbox-*"]}})
    );
    // CostCenter has only a regex: no tag_value. DataClassification is required under a
    // condition: only its capitalisation is exported.
    assert_eq!(
        tags["costcenter"],
        json!({"tag_key": {"@@assign": "CostCenter"}})
    );
    assert_eq!(
        tags["dataclassification"],
        json!({"tag_key": {"@@assign": "DataClassification"}})
    );
    assert_eq!(export.keys, 8);
    let text = serde_json::to_string(&export.document).unwrap();
    assert!(!text.contains("@@append") && !text.contains("@@remove"));
    let paths: BTreeSet<&str> = export.lossiness.iter().map(|l| l.path.as_str()).collect();
    for expected in [
        "required_tags[0].applies_to",
        "required_tags[1].validation_regex",
        "required_tags[4].when",
        "severity",
        "aliases.Environment",
        "value_aliases.Environment",
        "prohibited_tags[0]",
        "max_tags",
        "conflicts[0]",
    ] {
        assert!(paths.contains(expected), "{expected} not in {paths:?}");
    }
}

#[test]
fn export_maps_types_and_merges_values() {
    let policy = parse_policy(
        r#"{"required_tags": [
              {"name": "Team", "applies_to": ["ec2:*", "rds", "s3:bucket", "ec2:vol*"], "allowed_values": ["a", "b"]},
              {"name": "Team", "applies_to": ["lambda:function"], "allowed_values": ["c", "a*b*"]}
            ],
            "optional_tags": [{"name": "Owner"}, {"name": "Tier", "allowed_values": ["gold"]}]}"#,
    )
    .unwrap();
    let export = export_aws_tag_policy(&policy);
    assert_eq!(
        export.document,
        json!({"tags": {
            "owner": {"tag_key": {"@@assign": "Owner"}},
            "team": {"tag_key": {"@@assign": "Team"},
                     "tag_value": {"@@assign": ["a", "b", "c"]},
                     "report_required_tag_for": {"@@assign": ["ec2:ALL_SUPPORTED", "rds:ALL_SUPPORTED", "s3:bucket", "lambda:function"]}},
            "tier": {"tag_key": {"@@assign": "Tier"}, "tag_value": {"@@assign": ["gold"]}}
        }})
    );
    let reasons: Vec<String> = export.lossiness.iter().map(LossItem::line).collect();
    assert!(
        reasons.iter().any(|r| r.contains("`ec2:vol*`")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("`a*b*`")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("merged (2 → 3 values)")),
        "{reasons:?}"
    );
    // Round trip: importing the export gives the same keys, values and required types.
    let back = import(&export.document.to_string());
    assert_eq!(
        rules(&back.policy),
        json!({
            "required": [["Team", ["ec2:*", "rds:*", "s3:bucket", "lambda:function"], null, null]],
            "optional": [["Owner", null, null], ["Team", ["a", "b", "c"], "high"], ["Tier", ["gold"], "high"]],
        })
    );
}

#[test]
fn custodian_file_for_the_default_policy() {
    let policy = crate::policy::default_policy();
    let out = generate_custodian(
        &policy,
        &CustodianOptions {
            actions: vec![CustodianAction::Tag, CustodianAction::MarkForOp],
            resource_types: vec![
                "ec2:instance".into(),
                "states:*".into(),
                "azure:vm".into(),
                "ec2:transit-gateway".into(),
            ],
            ..CustodianOptions::default()
        },
    )
    .unwrap();
    assert_eq!(out.unmapped_types, vec!["azure:vm", "ec2:transit-gateway"]);
    let names: Vec<(&str, &str)> = out
        .policies
        .iter()
        .map(|p| (p.name.as_str(), p.resource.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("tagwarden-ec2", "aws.ec2"),
            ("tagwarden-step-machine", "aws.step-machine")
        ]
    );
    assert!(out.policies.iter().all(|p| custodian::valid_name(&p.name)));
    // mark-for-op is not registered for step functions.
    assert!(out.lossiness.iter().any(|l| l.path == "aws.step-machine"));
    let doc: Value = serde_norway::from_str(&out.yaml).unwrap();
    let ec2 = &doc["policies"][0];
    assert_eq!(ec2["resource"], "aws.ec2");
    let checks = ec2["filters"][0]["or"].as_array().unwrap();
    // Environment: absent, blank, outside the values (wildcard → negated regex).
    assert_eq!(checks[0], json!({"tag:Environment": "absent"}));
    assert_eq!(
        checks[1],
        json!({"type": "value", "key": "tag:Environment", "op": "regex-case", "value": "^\\s*\\Z"})
    );
    assert_eq!(
        checks[2],
        json!({"type": "value", "key": "tag:Environment", "op": "regex-case",
               "value": "^(?!(?:production|staging|development|sandbox\\-.*)\\Z)"})
    );
    // CostCenter's regex, negated.
    assert!(
        checks.contains(
            &json!({"type": "value", "key": "tag:CostCenter", "op": "regex-case",
               "value": "^(?!(?:CC-[0-9]{4})\\Z)"})
        ),
        "{checks:?}"
    );
    // The prohibited tag and the conflict.
    assert!(checks.contains(&json!({"tag:tmp": "present"})));
    assert!(
        checks.contains(&json!({"and": [
        {"type": "value", "key": "tag:Environment", "op": "eq", "value": "production"},
        {"type": "value", "key": "tag:AutoStop", "op": "eq", "value": "true"}]})),
        "{checks:?}"
    );
    assert_eq!(
        ec2["actions"],
        json!([{"type": "mark-for-op", "tag": "tagwarden_status", "op": "notify", "days": 7},
               {"type": "tag", "key": "tagwarden_compliance", "value": "non-compliant"}])
    );
    assert!(
        out.yaml
            .starts_with("# Cloud Custodian policies generated by Tagwarden")
    );
}

#[test]
fn custodian_value_rules_and_refusals() {
    let policy = parse_policy(
        r#"{"required_tags": [
              {"name": "Env", "allowed_values": ["prod", "dev"], "applies_to": ["s3:bucket"]},
              {"name": "Data", "allowed_values": ["pii"], "applies_to": ["s3:bucket"], "severity": "low",
               "when": {"key": "Env", "in": ["prod"]}},
              {"name": "Code", "validation_regex": "\\p{Lu}+", "applies_to": ["s3:bucket"]}
            ],
            "optional_tags": [{"name": "Tier", "allowed_values": ["gold"], "severity": "high"}],
            "fail_at": "low"}"#,
    )
    .unwrap();
    let out = generate_custodian(&policy, &CustodianOptions::default()).unwrap();
    assert_eq!(out.policies.len(), 1);
    let doc: Value = serde_norway::from_str(&out.yaml).unwrap();
    let checks = doc["policies"][0]["filters"][0]["or"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        checks[2],
        json!({"type": "value", "key": "tag:Env", "op": "not-in", "value": ["prod", "dev"]})
    );
    assert_eq!(
        checks[3],
        json!({"and": [
            {"type": "value", "key": "tag:Env", "op": "in", "value": ["prod"]},
            {"or": [{"tag:Data": "absent"},
                    {"type": "value", "key": "tag:Data", "op": "regex-case", "value": "^\\s*\\Z"},
                    {"type": "value", "key": "tag:Data", "op": "not-in", "value": ["pii"]}]}]})
    );
    // The optional key: only when present.
    assert_eq!(
        *checks.last().unwrap(),
        json!({"and": [{"tag:Tier": "present"},
                       {"type": "value", "key": "tag:Tier", "op": "not-in", "value": ["gold"]}]})
    );
    assert!(
        out.lossiness
            .iter()
            .any(|l| l.path == "required_tags[2].validation_regex")
    );
    assert!(doc["policies"][0].get("actions").is_none());

    // fail_at medium leaves the low rule out (and says so).
    let strict = parse_policy(
        r#"{"required_tags": [{"name": "A", "applies_to": ["s3:bucket"], "severity": "low"},
                              {"name": "B", "applies_to": ["s3:bucket"]}], "fail_at": "medium"}"#,
    )
    .unwrap();
    let out = generate_custodian(&strict, &CustodianOptions::default()).unwrap();
    assert!(!out.yaml.contains("tag:A"));
    assert!(
        out.lossiness
            .iter()
            .any(|l| l.path == "severity" && l.reason.contains(": A"))
    );

    // notify needs a queue; a bad prefix is refused.
    let notify = CustodianOptions {
        actions: vec![CustodianAction::Notify],
        ..CustodianOptions::default()
    };
    assert!(matches!(
        generate_custodian(&policy, &notify),
        Err(InterchangeError::Invalid { ref path, .. }) if path == "notify_queue"
    ));
    let out = generate_custodian(
        &policy,
        &CustodianOptions {
            notify_queue: Some("https://sqs.us-east-1.amazonaws.com/123456789012/mailer".into()),
            ..notify
        },
    )
    .unwrap();
    let doc: Value = serde_norway::from_str(&out.yaml).unwrap();
    assert_eq!(
        doc["policies"][0]["actions"][0],
        json!({"type": "notify", "subject": "s3:bucket resources fail the tagging policy",
               "to": ["resource-owner"],
               "transport": {"type": "sqs", "queue": "https://sqs.us-east-1.amazonaws.com/123456789012/mailer"}})
    );
    for bad in ["", "1x", "a--b", "a_b", "a-"] {
        let options = CustodianOptions {
            name_prefix: bad.into(),
            ..CustodianOptions::default()
        };
        assert!(generate_custodian(&policy, &options).is_err(), "{bad}");
    }
    assert!(custodian::valid_name("Tagwarden-2-x"));
}

#[test]
fn custodian_file_for_an_imported_policy_covers_every_mapped_type() {
    let policy = compiled(&import(TAG_POLICY).policy);
    let out = generate_custodian(&policy, &CustodianOptions::default()).unwrap();
    // scope ["*"]: every mapped type is judged (value rules hold everywhere).
    assert_eq!(out.policies.len(), c7n_types::C7N_TYPES.len());
    assert!(out.unmapped_types.is_empty());
    let lambda = out
        .policies
        .iter()
        .find(|p| p.resource == "aws.lambda")
        .unwrap();
    // CostCenter, Environment, Owner, project values when present.
    assert_eq!(lambda.checks, 4);
    let ec2 = out
        .policies
        .iter()
        .find(|p| p.resource == "aws.ec2")
        .unwrap();
    // CostCenter and Environment required (absent + blank each) plus four value rules.
    assert_eq!(ec2.checks, 8);
}
#[test]
fn canonical_types_are_what_arns_give() {
    // One ARN per mapped type: the type Tagwarden derives from it is the one mapped, so a
    // mapped type is one real resources carry.
    let arns = [
        "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
        "arn:aws:ec2:us-east-1:123456789012:volume/vol-1",
        "arn:aws:ec2:us-east-1:123456789012:snapshot/snap-1",
        "arn:aws:ec2:us-east-1:123456789012:image/ami-1",
        "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1",
        "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1",
        "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-1",
        "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1",
        "arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-1",
        "arn:aws:ec2:us-east-1:123456789012:natgateway/nat-1",
        "arn:aws:ec2:us-east-1:123456789012:internet-gateway/igw-1",
        "arn:aws:s3:::bucket-1",
        "arn:aws:rds:us-east-1:123456789012:db:orders",
        "arn:aws:rds:us-east-1:123456789012:cluster:orders",
        "arn:aws:rds:us-east-1:123456789012:snapshot:orders-1",
        "arn:aws:lambda:us-east-1:123456789012:function:settle",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1",
        "arn:aws:elasticache:us-east-1:123456789012:cluster:cache-1",
        "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rg-1",
        "arn:aws:sqs:us-east-1:123456789012:jobs",
        "arn:aws:sns:us-east-1:123456789012:alerts",
        "arn:aws:eks:us-east-1:123456789012:cluster/prod",
        "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-1",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/x",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
        "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
        "arn:aws:ecs:us-east-1:123456789012:task-definition/api:3",
        "arn:aws:ecr:us-east-1:123456789012:repository/api",
        "arn:aws:states:us-east-1:123456789012:stateMachine:flow",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
        "arn:aws:cloudfront::123456789012:distribution/E1",
        "arn:aws:apigateway:us-east-1::/restapis/abc",
        "arn:aws:kinesis:us-east-1:123456789012:stream/events",
        "arn:aws:firehose:us-east-1:123456789012:deliverystream/events",
        "arn:aws:redshift:us-east-1:123456789012:cluster:dw",
        "arn:aws:es:us-east-1:123456789012:domain/search",
        "arn:aws:iam::123456789012:role/app",
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:cloudtrail:us-east-1:123456789012:trail/main",
        "arn:aws:acm:us-east-1:123456789012:certificate/1",
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:u:autoScalingGroupName/web",
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/model",
        "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/nb",
    ];
    let derived: std::collections::BTreeSet<String> = arns
        .iter()
        .map(|a| {
            crate::inventory::id::arn::parse(a)
                .expect("valid ARN")
                .canonical_type()
                .to_string()
        })
        .collect();
    let mapped: std::collections::BTreeSet<String> = c7n_types::C7N_TYPES
        .iter()
        .map(|t| t.canonical.to_string())
        .collect();
    assert_eq!(derived, mapped);
}
