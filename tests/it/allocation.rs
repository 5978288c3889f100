//! Shared-cost allocation in `get_cost_attribution_gap` over MCP (stdio) on the demo estate:
//! the demo's support charges and promotional credit (tied to no resource) are split across a
//! required key's values; the figures before and after add up exactly, to the micro-unit.

use crate::common::StdioClient;
use serde_json::{Value, json};

const DEMO: &[&str] = &["--demo", "--no-prewarm"];

fn ok(result: Value) -> Value {
    assert_ne!(result["isError"], true, "tool error: {result}");
    result["structuredContent"].clone()
}

fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected an error: {result}");
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn period() -> Value {
    json!({"start": "2026-10-01", "end": "2026-11-01"})
}

/// Checks one key's section: values after + unattributable after = total, unattributable after
/// = before − allocated, each value's after = before + allocated.
fn check_key_sums(k: &Value) {
    let values = k["values"].as_array().unwrap();
    let after: i64 = values.iter().map(|v| int(&v["after_micros"])).sum();
    let before: i64 = values.iter().map(|v| int(&v["before_micros"])).sum();
    let allocated: i64 = values.iter().map(|v| int(&v["allocated_micros"])).sum();
    assert_eq!(
        after + int(&k["unattributable_after_micros"]),
        int(&k["total_micros"]),
        "{k}"
    );
    assert_eq!(
        before + int(&k["unattributable_before_micros"]),
        int(&k["total_micros"]),
        "{k}"
    );
    assert_eq!(allocated, int(&k["allocated_micros"]));
    assert_eq!(
        int(&k["unattributable_after_micros"]),
        int(&k["unattributable_before_micros"]) - int(&k["allocated_micros"])
    );
    for v in values {
        assert_eq!(
            int(&v["after_micros"]),
            int(&v["before_micros"]) + int(&v["allocated_micros"]),
            "{v}"
        );
    }
}

#[test]
fn support_and_credits_split_exactly_before_and_after() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let plain = ok(c.call(
        "get_cost_attribution_gap",
        json!({"time_period": period(), "top": 0}),
    ));
    assert!(plain.get("allocation").is_none(), "no rules, no section");
    let rules = json!([
        {"name": "support", "key": "environment",
         "charges": {"without_resource": true, "services": ["AWS Support (Business)"]},
         "method": "proportional"},
        {"name": "credits", "key": "Environment",
         "charges": {"without_resource": true},
         "method": "fixed",
         "shares": [{"value": "production", "basis_points": 6000},
                    {"value": "staging", "basis_points": 2500}]},
        {"name": "support-by-owner", "key": "Owner",
         "charges": {"without_resource": true}, "method": "even"}
    ]);
    let out = ok(c.call(
        "get_cost_attribution_gap",
        json!({"time_period": period(), "top": 0, "allocation_rules": rules}),
    ));
    // The headline is unchanged: allocation is reported beside it.
    assert_eq!(out["total"], plain["total"]);
    assert_eq!(out["unattributable"], plain["unattributable"]);
    let a = &out["allocation"];
    let rules = a["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    // The demo has 31 days of USD 12.50 support per account and a USD -4.00/day credit in one.
    let support = &rules[0];
    assert_eq!(support["key"], "Environment", "the policy's spelling");
    assert_eq!(support["method"], "proportional");
    assert_eq!(int(&support["charges_micros"]) % (12_500_000 * 31), 0);
    assert!(int(&support["charges_micros"]) > 0);
    let credits = &rules[1];
    assert_eq!(int(&credits["charges_micros"]), -4_000_000 * 31);
    let parts: Vec<(String, i64)> = credits["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["value"].as_str().unwrap().to_string(),
                int(&p["amount_micros"]),
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            ("production".to_string(), -74_400_000),
            ("staging".to_string(), -31_000_000),
            ("(unallocated)".to_string(), -18_600_000),
        ]
    );
    for rule in rules {
        let sum: i64 = rule["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| int(&p["amount_micros"]))
            .sum();
        assert_eq!(sum, int(&rule["charges_micros"]), "{rule}");
    }
    // A charge belongs to the first rule *of its key*: the Owner rule takes every
    // resource-less charge, including those the Environment rules split.
    let owner_rule = &rules[2];
    assert_eq!(
        int(&owner_rule["charges_micros"]),
        int(&support["charges_micros"]) + int(&credits["charges_micros"])
    );
    let keys = a["by_key"].as_array().unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| k["key"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["Environment", "Owner"]
    );
    let env = &keys[0];
    check_key_sums(env);
    check_key_sums(&keys[1]);
    // Environment's before figure is the plain answer's per-key figure.
    let plain_env = plain["by_key"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "Environment")
        .unwrap();
    assert_eq!(
        (plain_env["unattributable"].as_f64().unwrap() * 1e6).round() as i64,
        int(&env["unattributable_before_micros"])
    );
    assert_eq!(
        int(&env["allocated_micros"]),
        int(&support["charges_micros"]) + int(&credits["charges_micros"]) + 18_600_000
    );
    assert!(
        env["gap_pct_after"].as_f64().unwrap() < env["gap_pct_before"].as_f64().unwrap(),
        "{env}"
    );
}

#[test]
fn bad_rules_are_refused_naming_the_field() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    let mut ask = |rules: Value| {
        error_text(&c.call(
            "get_cost_attribution_gap",
            json!({"time_period": period(), "allocation_rules": rules}),
        ))
    };
    let e = ask(json!([{"name": "x", "key": "Colour",
                        "charges": {"without_resource": true}, "method": "even"}]));
    assert!(e.contains("`key`") && e.contains("Colour"), "{e}");
    let e = ask(json!([{"name": "x", "key": "Environment",
                        "charges": {"without_resource": true}, "method": "fixed",
                        "shares": [{"value": "prod", "basis_points": 100}]}]));
    assert!(e.contains("`shares.value`") && e.contains("prod"), "{e}");
    let e = ask(json!([{"name": "x", "key": "Environment",
                        "charges": {"without_resource": true}, "method": "fixed",
                        "shares": [{"value": "production", "basis_points": 9000},
                                   {"value": "staging", "basis_points": 2000}]}]));
    assert!(
        e.contains("`shares.basis_points`") && e.contains("11,000"),
        "{e}"
    );
    let e = ask(json!([{"name": "x", "key": "Environment", "charges": {}, "method": "even"}]));
    assert!(e.contains("`charges`"), "{e}");
}

const ENV_POLICY: &str = r#"{
  "version": "1.0",
  "required_tags": [
    {"name": "Environment", "allowed_values": ["production", "development"], "applies_to": []}
  ]
}"#;

/// tests/fixtures/focus/multicloud.csv: the tax line (24.10, no resource, billed under EC2) is
/// selected by service apart from support (100.00); fixed shares of 33.33% each leave 33.34%
/// unallocated — by hand: 24,100,000 × 3,333 / 10,000 = 8,032,530 each, 8,034,940 left.
#[test]
fn focus_tax_line_splits_by_fixed_shares_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("env.json");
    std::fs::write(&policy, ENV_POLICY).unwrap();
    let costs = crate::common::fixture("focus/multicloud.csv");
    let args = [
        "--demo",
        "--no-prewarm",
        "--policy",
        &crate::common::path_str(&policy),
        "--cost",
        &crate::common::path_str(&costs),
    ];
    let (mut c, _) = StdioClient::initialized(&args, &[]);
    let rules = json!([
        {"name": "tax", "key": "Environment",
         "charges": {"without_resource": true, "services": ["Amazon Elastic Compute Cloud"]},
         "method": "fixed",
         "shares": [{"value": "production", "basis_points": 3333},
                    {"value": "development", "basis_points": 3333}]}
    ]);
    let out = ok(c.call(
        "get_cost_attribution_gap",
        json!({"time_period": period(), "top": 0, "allocation_rules": rules}),
    ));
    let rule = &out["allocation"]["rules"][0];
    assert_eq!(int(&rule["charges_micros"]), 24_100_000, "{rule}");
    let parts: Vec<(&str, i64)> = rule["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["value"].as_str().unwrap(), int(&p["amount_micros"])))
        .collect();
    assert_eq!(
        parts,
        vec![
            ("development", 8_032_530),
            ("production", 8_032_530),
            ("(unallocated)", 8_034_940)
        ]
    );
    let key = &out["allocation"]["by_key"][0];
    assert_eq!(int(&key["total_micros"]), 1_358_465_678);
    assert_eq!(int(&key["allocated_micros"]), 16_065_060);
    check_key_sums(key);
}

// ---- Stored rules (manage_allocation_rules) and rules files (`--allocation-rules`) ----

fn support_rule() -> Value {
    json!({"name": "support", "key": "Environment",
           "charges": {"without_resource": true, "services": ["AWS Support (Business)"]},
           "method": "proportional"})
}

fn credits_rule() -> Value {
    json!({"name": "credits", "key": "Environment",
           "charges": {"without_resource": true},
           "method": "fixed",
           "shares": [{"value": "production", "basis_points": 6000},
                      {"value": "staging", "basis_points": 2500},
                      {"value": "(unallocated)", "basis_points": 1500}]})
}

/// The same gap question is asked around each change on purpose: no budget or loop refusals.
const NO_LIMITS: &[(&str, &str)] = &[
    ("TAGWARDEN_BUDGET_BURST", "0"),
    ("TAGWARDEN_BUDGET_PER_HOUR", "0"),
    ("TAGWARDEN_LOOP_MAX_REPEATS", "0"),
];

fn names(rules: &Value) -> Vec<String> {
    rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn stored_rules_are_added_listed_tested_applied_and_removed() {
    let (mut c, _) = StdioClient::initialized(DEMO, NO_LIMITS);
    let manage = |c: &mut StdioClient, args: Value| c.call("manage_allocation_rules", args);
    let gap = |c: &mut StdioClient, extra: Value| {
        let mut args = json!({"time_period": period(), "top": 0});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        ok(c.call("get_cost_attribution_gap", args))
    };
    let listed = ok(manage(&mut c, json!({"action": "list"})));
    assert_eq!(listed["rules"], json!([]));
    assert!(gap(&mut c, json!({})).get("allocation").is_none());

    // Refused on input, each saying what to fix; nothing is stored.
    let mut short = credits_rule();
    short["shares"].as_array_mut().unwrap().pop();
    let e = error_text(&manage(&mut c, json!({"action": "add", "rule": short})));
    assert!(
        e.contains("`shares.basis_points`")
            && e.contains("8,500, not 10,000")
            && e.contains("(unallocated)"),
        "{e}"
    );
    let mut colour = support_rule();
    colour["key"] = json!("Colour");
    let e = error_text(&manage(&mut c, json!({"action": "add", "rule": colour})));
    assert!(
        e.contains("`key`") && e.contains("Colour") && e.contains("Environment"),
        "{e}"
    );
    let e = error_text(&manage(&mut c, json!({"action": "add"})));
    assert!(e.contains("argument `rule`"), "{e}");
    let e = error_text(&manage(&mut c, json!({"action": "list", "name": "x"})));
    assert!(e.contains("`name`") && e.contains("list"), "{e}");
    assert_eq!(
        ok(manage(&mut c, json!({"action": "list"})))["rules"],
        json!([])
    );

    // Add: stored with who made it.
    let added = ok(manage(
        &mut c,
        json!({"action": "add", "rule": support_rule()}),
    ));
    assert_eq!(added["change"], "added");
    for field in ["name", "key", "method"] {
        assert_eq!(
            added["rule"]["rule"][field],
            support_rule()[field],
            "{added}"
        );
    }
    assert_eq!(
        added["rule"]["rule"]["charges"]["services"],
        json!(["AWS Support (Business)"])
    );
    assert_eq!(added["rule"]["created_by_principal"], "local");
    assert!(
        added["rule"]["created_by"]
            .as_str()
            .unwrap()
            .contains("tagwarden-tests"),
        "{added}"
    );
    assert_eq!(names(&added["rules"]), ["support"]);
    let e = error_text(&manage(
        &mut c,
        json!({"action": "add", "rule": support_rule()}),
    ));
    assert!(e.contains("support") && e.contains("upsert"), "{e}");

    // Test: the stored rule with a candidate, nothing stored.
    let tested = ok(manage(
        &mut c,
        json!({"action": "test", "rule": credits_rule(), "time_period": period()}),
    ));
    let dry = &tested["test"];
    assert_eq!(dry["rules_tried"], json!(["support", "credits"]));
    assert_eq!(dry["allocation"]["applied"], json!(["support", "credits"]));
    let dry_rules = dry["allocation"]["rules"].as_array().unwrap();
    assert_eq!(int(&dry_rules[1]["charges_micros"]), -4_000_000 * 31);
    let credit_parts: Vec<(&str, i64)> = dry_rules[1]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["value"].as_str().unwrap(), int(&p["amount_micros"])))
        .collect();
    assert_eq!(
        credit_parts,
        [
            ("production", -74_400_000),
            ("staging", -31_000_000),
            ("(unallocated)", -18_600_000)
        ]
    );
    check_key_sums(&dry["allocation"]["by_key"][0]);
    assert_eq!(names(&tested["rules"]), ["support"], "test stores nothing");

    // The gap applies the stored rule when the question gives none, and says so.
    let applied = gap(&mut c, json!({}));
    let a = &applied["allocation"];
    assert_eq!(a["source"], "stored");
    assert_eq!(a["applied"], json!(["support"]));
    assert_eq!(a["rules"][0], dry["allocation"]["rules"][0]);
    check_key_sums(&a["by_key"][0]);
    // The headline is unchanged.
    assert_eq!(
        applied["unattributable"],
        gap(&mut c, json!({"allocation_rules": []}))["unattributable"]
    );
    // `[]` applies none; given rules win over the stored ones.
    assert!(
        gap(&mut c, json!({"allocation_rules": []}))
            .get("allocation")
            .is_none()
    );
    let given = gap(&mut c, json!({"allocation_rules": [credits_rule()]}));
    assert_eq!(given["allocation"]["source"], "argument");
    assert_eq!(given["allocation"]["applied"], json!(["credits"]));

    // `tagwarden check` on the same data directory applies the stored rule too.
    let dir = crate::common::path_str(c.data_dir.path());
    let (code, stdout, stderr) = crate::common::run(
        &["check", "--demo", "--data-dir", &dir, "--limit", "0"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("shared-cost allocation (stored rules: support)"),
        "{stdout}"
    );

    // Upsert replaces the rule in place; the next answer reflects it (no stale cached answer).
    let mut fixed = credits_rule();
    fixed["name"] = json!("support");
    let upserted = ok(manage(
        &mut c,
        json!({"action": "upsert", "rule": fixed.clone()}),
    ));
    assert_eq!(upserted["change"], "updated");
    assert_eq!(upserted["rule"]["rule"]["shares"], fixed["shares"]);
    let again = ok(manage(&mut c, json!({"action": "upsert", "rule": fixed})));
    assert_eq!(again["change"], "unchanged");
    let after_upsert = gap(&mut c, json!({}));
    assert_eq!(after_upsert["allocation"]["rules"][0]["method"], "fixed");
    assert_ne!(after_upsert["data_quality"]["cache"]["result"], "hit");

    // Remove: gone from the list and from the answers.
    let removed = ok(manage(
        &mut c,
        json!({"action": "remove", "name": "support"}),
    ));
    assert_eq!(removed["change"], "removed");
    assert_eq!(removed["rules"], json!([]));
    assert!(gap(&mut c, json!({})).get("allocation").is_none());
    let e = error_text(&manage(
        &mut c,
        json!({"action": "remove", "name": "support"}),
    ));
    assert!(
        e.contains("no allocation rule named") && e.contains("list"),
        "{e}"
    );

    // Every change is in the audit log, with the caller's principal.
    let trail = ok(c.call(
        "get_audit_trail",
        json!({"tool": "manage_allocation_rules", "limit": 100}),
    ));
    let text = trail.to_string();
    for action in [
        "\\\"add\\\"",
        "\\\"upsert\\\"",
        "\\\"remove\\\"",
        "\\\"test\\\"",
    ] {
        assert!(text.contains(action), "{action} not audited: {text}");
    }
}

/// The figures a rules file gives on the demo estate, computed here from the demo's cost data
/// and the policy file (not by the allocation code): the spend each Environment value carries,
/// the support and credit charges, split by largest remainder.
struct Expected {
    before: i64,
    support: i64,
    support_parts: Vec<(String, i64)>,
    credit_parts: Vec<(String, i64)>,
}

fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((pre, post)) => {
            text.len() >= pre.len() + post.len() && text.starts_with(pre) && text.ends_with(post)
        }
    }
}

/// Largest remainder: floors, then one micro-unit each to the largest remainders (ties to the
/// earlier name); a negative amount splits as its magnitude.
fn largest_remainder(amount: i64, weights: &[(String, i64)]) -> Vec<(String, i64)> {
    let total: i128 = weights.iter().map(|(_, w)| i128::from(*w)).sum();
    let magnitude = i128::from(amount).abs();
    let mut parts: Vec<(String, i128, i128)> = weights
        .iter()
        .map(|(v, w)| {
            let exact = magnitude * i128::from(*w);
            (v.clone(), exact / total, exact % total)
        })
        .collect();
    let left = magnitude - parts.iter().map(|p| p.1).sum::<i128>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| {
        parts[b]
            .2
            .cmp(&parts[a].2)
            .then(parts[a].0.cmp(&parts[b].0))
    });
    for &i in order.iter().take(left as usize) {
        parts[i].1 += 1;
    }
    parts
        .into_iter()
        .filter(|p| p.1 != 0)
        .map(|(v, p, _)| (v, if amount < 0 { -(p as i64) } else { p as i64 }))
        .collect()
}

fn expected_on_demo(days: i64) -> Expected {
    use tagwarden::{CostMetric, Period, demo_line_costs, load_policy_file, sort_and_dedupe};
    let mut resources = tagwarden::generate_demo_estate(42, 5000).resources;
    sort_and_dedupe(&mut resources);
    let start: chrono::NaiveDate = "2026-10-01".parse().unwrap();
    let period = Period {
        start,
        end: start + chrono::Duration::days(days),
    };
    let costs = demo_line_costs(
        42,
        &resources,
        period,
        CostMetric::BilledCost,
        String::new(),
    );
    let path = crate::common::repo().join("policies/tagging_policy.json");
    let policy = load_policy_file(&path).unwrap();
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let env_rule = raw["required_tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Environment")
        .unwrap()
        .clone();
    let allowed: Vec<&str> = env_rule["allowed_values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (mut total, mut support, mut credit) = (0i64, 0i64, 0i64);
    let mut carried: std::collections::BTreeMap<String, i64> = Default::default();
    for line in &costs.lines {
        total += line.amount;
        if line.resource_id.is_empty() {
            match line.service.as_str() {
                "AWS Support (Business)" => support += line.amount,
                _ => credit += line.amount,
            }
            continue;
        }
        let Some(r) = resources.iter().find(|r| r.id == line.resource_id) else {
            continue;
        };
        let tags = policy.effective_tags(&r.tags);
        if let Some(v) = tags.get("Environment")
            && allowed.iter().any(|a| glob_match(a, v))
        {
            *carried.entry(v.clone()).or_default() += line.amount;
        }
    }
    let weights: Vec<(String, i64)> = carried
        .iter()
        .filter(|(_, s)| **s > 0)
        .map(|(v, s)| (v.clone(), *s))
        .collect();
    let credit_weights = [
        ("production".to_string(), 6000),
        ("staging".to_string(), 2500),
        ("(unallocated)".to_string(), 1500),
    ];
    Expected {
        before: total - carried.values().sum::<i64>(),
        support,
        support_parts: largest_remainder(support, &weights),
        credit_parts: largest_remainder(credit, &credit_weights),
    }
}

/// `1,234.57` (cents, half away from zero), written here rather than borrowed.
fn usd(micros: i64) -> String {
    let cents = (i128::from(micros) + if micros >= 0 { 5_000 } else { -5_000 }) / 10_000;
    let digits = (cents.abs() / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!(
        "{}{grouped}.{:02}",
        if cents < 0 { "-" } else { "" },
        cents.abs() % 100
    )
}

const RULES_YAML: &str = "rules:
  - name: support
    key: Environment
    charges: {without_resource: true, services: [AWS Support (Business)]}
    method: proportional
  - name: credits
    key: environment
    charges: {without_resource: true}
    method: fixed
    shares:
      - {value: production, basis_points: 6000}
      - {value: staging, basis_points: 2500}
      - {value: (unallocated), basis_points: 1500}
";

#[test]
fn check_and_report_apply_a_rules_file_with_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES_YAML).unwrap();
    let rules = crate::common::path_str(&rules);
    let data = crate::common::path_str(dir.path());
    // `check` and `report` price the last 30 complete days: the demo's figures depend only on
    // the number of days.
    let want = expected_on_demo(30);
    assert_eq!(want.support % (12_500_000 * 30), 0);
    let allocated: i64 = want
        .support_parts
        .iter()
        .chain(&want.credit_parts)
        .filter(|(v, _)| v != "(unallocated)")
        .map(|(_, p)| p)
        .sum();
    assert_eq!(
        want.credit_parts,
        [
            ("production".to_string(), -72_000_000),
            ("staging".to_string(), -30_000_000),
            ("(unallocated)".to_string(), -18_000_000)
        ]
    );

    let (code, stdout, stderr) = crate::common::run(
        &[
            "check",
            "--demo",
            "--data-dir",
            &data,
            "--limit",
            "0",
            "--allocation-rules",
            &rules,
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("shared-cost allocation (file rules: support, credits)"),
        "{stdout}"
    );
    let line = format!("Environment  unattributed USD {} before", usd(want.before));
    assert!(stdout.contains(&line), "{line} not in {stdout}");
    let line = format!(
        "USD {} allocated, USD {} after",
        usd(allocated),
        usd(want.before - allocated)
    );
    assert!(stdout.contains(&line), "{line} not in {stdout}");
    let parts: Vec<String> = want
        .support_parts
        .iter()
        .map(|(v, p)| format!("{v} {}", usd(*p)))
        .collect();
    let line = format!(
        "rule support onto Environment (proportional): USD {} = {}",
        usd(want.support),
        parts.join(", ")
    );
    assert!(stdout.contains(&line), "{line} not in {stdout}");
    // The plain check's per-key figure is the same `before`.
    let (_, plain, _) = crate::common::run(
        &["check", "--demo", "--data-dir", &data, "--limit", "0"],
        &[],
    );
    assert!(
        !plain.contains("shared-cost allocation"),
        "no rules, no section"
    );
    assert!(
        plain.contains(&format!("Environment USD {}", usd(want.before))),
        "{plain}"
    );

    // The report's JSON carries the exact micro-units.
    let (code, stdout, stderr) = crate::common::run(
        &[
            "report",
            "--demo",
            "--data-dir",
            &data,
            "--format",
            "json",
            "--allocation-rules",
            &rules,
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let a = &report["allocation"];
    assert_eq!(a["source"], "file");
    let env = &a["by_key"][0];
    assert_eq!(env["key"], "Environment");
    assert_eq!(int(&env["unattributable_before_micros"]), want.before);
    assert_eq!(int(&env["allocated_micros"]), allocated);
    assert_eq!(
        int(&env["unattributable_after_micros"]),
        want.before - allocated
    );
    check_key_sums(env);
    let parts = |rule: &Value| -> Vec<(String, i64)> {
        rule["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["value"].as_str().unwrap().to_string(),
                    int(&p["amount_micros"]),
                )
            })
            .collect()
    };
    assert_eq!(int(&a["rules"][0]["charges_micros"]), want.support);
    assert_eq!(parts(&a["rules"][0]), want.support_parts);
    assert_eq!(parts(&a["rules"][1]), want.credit_parts);
    let coverage = report["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "Environment")
        .unwrap();
    assert_eq!(
        (coverage["unattributable_after_allocation"]
            .as_f64()
            .unwrap()
            * 1e6)
            .round() as i64,
        want.before - allocated
    );
    // The Markdown report shows before and after.
    let (code, md, stderr) = crate::common::run(
        &[
            "report",
            "--demo",
            "--data-dir",
            &data,
            "--allocation-rules",
            &rules,
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let row = format!("| Environment | {} |", usd(want.before));
    assert!(
        md.contains("## Shared-cost allocation") && md.contains(&row),
        "{md}"
    );
    assert!(md.contains(&usd(want.before - allocated)), "{md}");
    let (code, html, stderr) = crate::common::run(
        &[
            "report",
            "--demo",
            "--data-dir",
            &data,
            "--format",
            "html",
            "--allocation-rules",
            &rules,
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let section = &html[html
        .find(r#"<section id="allocation">"#)
        .expect("the section")..];
    assert!(
        section.contains(&usd(want.before)) && section.contains(&usd(want.before - allocated)),
        "{section}"
    );
}

#[test]
fn bad_rules_files_are_refused_before_any_scan() {
    let dir = tempfile::tempdir().unwrap();
    let data = crate::common::path_str(dir.path());
    let refuse = |name: &str, text: &str| -> String {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let file = crate::common::path_str(&file);
        let (code, _, stderr) = crate::common::run(
            &[
                "check",
                "--demo",
                "--data-dir",
                &data,
                "--allocation-rules",
                &file,
            ],
            &[],
        );
        assert_ne!(code, 0, "{name} accepted");
        stderr
    };
    let e = refuse(
        "short.json",
        r#"[{"name": "x", "key": "Environment", "charges": {"without_resource": true},
             "method": "fixed", "shares": [{"value": "production", "basis_points": 5000}]}]"#,
    );
    assert!(
        e.contains("--allocation-rules") && e.contains("not 10,000"),
        "{e}"
    );
    let e = refuse(
        "colour.json",
        r#"[{"name": "x", "key": "Colour", "charges": {"without_resource": true},
             "method": "even"}]"#,
    );
    assert!(
        e.contains("--allocation-rules FILE") && e.contains("Colour"),
        "{e}"
    );
    let e = refuse("empty.yaml", "rules: []\n");
    assert!(e.contains("no rules"), "{e}");
    let missing = dir.path().join("missing.json");
    let (code, _, e) = crate::common::run(
        &[
            "check",
            "--demo",
            "--data-dir",
            &data,
            "--allocation-rules",
            &crate::common::path_str(&missing),
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(e.contains("cannot open"), "{e}");
}
