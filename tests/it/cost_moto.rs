//! The cost gap from AWS Cost Explorer, against moto with injected `GetCostAndUsage` answers
//! (moto answers only what it is given, in the order requests arrive). Checks the exact figures,
//! the exact number of Cost Explorer requests (≤ required keys + 3), the fallback when
//! resource-level data is refused, and that a repeated question makes no request at all.

use crate::common::moto::{Moto, env_refs};
use crate::common::{StdioClient, path_str};
use serde_json::{Value, json};

const POLICY: &str = r#"{
  "value_aliases": {"Environment": {"production": ["prod"]}},
  "required_tags": [
    {"name": "Team", "allowed_values": ["payments", "search"]},
    {"name": "Environment", "allowed_values": ["production", "staging"]}
  ]
}"#;

fn groups(items: &[(&str, &str)]) -> Value {
    let groups: Vec<Value> = items
        .iter()
        .map(|(key, amount)| {
            json!({"Keys": [key], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}})
        })
        .collect();
    json!({
        "ResultsByTime": [{
            "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"},
            "Total": {},
            "Groups": groups,
            "Estimated": false
        }],
        "GroupDefinitions": [],
        "DimensionValueAttributes": []
    })
}

fn micros(v: &Value) -> i64 {
    (v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) * 1_000_000.0).round() as i64
}

#[test]
fn cost_explorer_gap_is_exact_and_costs_a_fixed_number_of_requests() {
    let moto = Moto::start_seeded();
    // In the order Tagwarden asks: one grouping per required key (policy order), the totals
    // per service, then the attributable spend per service.
    moto.queue_cost_results(&[
        groups(&[
            ("Team$payments", "120.50"),
            ("Team$", "30.25"),
            ("Team$Payments", "10.00"),
        ]),
        groups(&[
            ("Environment$prod", "100.00"),
            ("Environment$staging", "40.75"),
            ("Environment$", "20.00"),
        ]),
        groups(&[
            ("Amazon Elastic Compute Cloud - Compute", "110.75"),
            ("Amazon Simple Storage Service", "50.00"),
        ]),
        groups(&[
            ("Amazon Elastic Compute Cloud - Compute", "90.00"),
            ("Amazon Simple Storage Service", "15.50"),
        ]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, POLICY).unwrap();
    let policy = path_str(&policy);
    let env = moto.env();
    let (mut c, _) = StdioClient::initialized(
        &[
            "--aws",
            "--regions",
            "us-east-1",
            "--cost-explorer",
            "--policy",
            &policy,
            "--no-prewarm",
        ],
        &env_refs(&env),
    );
    // A recent period: Cost Explorer keeps about 14 months.
    let today = chrono::Utc::now().date_naive();
    let start = (today - chrono::Duration::days(30)).to_string();
    let args = json!({"time_period": {"start": start, "end": today.to_string()}});
    let before = moto.calls_of("GetCostAndUsage");
    let result = c.call("get_cost_attribution_gap", args.clone());
    assert_ne!(result["isError"], true, "{result}");
    let out = &result["structuredContent"];

    assert_eq!(micros(&out["total"]), 160_750_000);
    assert_eq!(micros(&out["attributable"]), 105_500_000);
    assert_eq!(micros(&out["unattributable"]), 55_250_000);
    assert_eq!(out["gap_pct"], 34.37);
    assert_eq!(out["by_key"][0]["key"], "Team");
    // `Payments` is not an allowed value (values are case-sensitive); untagged is `Team$`.
    assert_eq!(micros(&out["by_key"][0]["attributable"]), 120_500_000);
    assert_eq!(micros(&out["by_key"][0]["unattributable"]), 40_250_000);
    // `prod` is a value alias of `production`: attributable.
    assert_eq!(micros(&out["by_key"][1]["attributable"]), 140_750_000);
    assert_eq!(micros(&out["by_key"][1]["unattributable"]), 20_000_000);
    assert_eq!(out["groups"][0]["group"], "Amazon Simple Storage Service");
    assert_eq!(micros(&out["groups"][0]["unattributable"]), 34_500_000);
    assert_eq!(micros(&out["groups"][1]["unattributable"]), 20_750_000);
    assert_eq!(out["currency"], "USD");
    assert_eq!(out["metric"], "UnblendedCost");

    // Requests: 2 keys + totals + attributable = 4 GetCostAndUsage, and one refused
    // GetCostAndUsageWithResources (moto answers 500): 5 = keys + 3, as reported.
    assert_eq!(moto.calls_of("GetCostAndUsage") - before, 4);
    assert_eq!(moto.calls_of("GetCostAndUsageWithResources"), 1);
    let quality = &out["cost_quality"];
    assert_eq!(quality["api_calls"], 5);
    assert_eq!(quality["estimated_api_charge_usd"], 0.05);
    assert_eq!(quality["source"], "AWS Cost Explorer");
    let notes = quality["notes"].to_string();
    assert!(
        notes.contains("resource-level costs are unavailable"),
        "{notes}"
    );
    assert_eq!(out["top_unattributed"], json!([]));

    // The same question again: answered from the cache, no request.
    let again = c.call("get_cost_attribution_gap", args.clone());
    let again = &again["structuredContent"];
    assert_eq!(again["data_quality"]["cache"]["result"], "hit");
    assert_eq!(again["cost_quality"]["api_calls"], 0);
    assert_eq!(again["total"], out["total"]);
    assert_eq!(moto.calls_of("GetCostAndUsage") - before, 4);

    // force_refresh asks again (moto repeats its answers for repeated requests).
    let mut forced = args.clone();
    forced["force_refresh"] = json!(true);
    let fresh = c.call("get_cost_attribution_gap", forced);
    assert_eq!(fresh["structuredContent"]["cost_quality"]["api_calls"], 5);
    assert_eq!(fresh["structuredContent"]["total"], out["total"]);
    assert_eq!(moto.calls_of("GetCostAndUsage") - before, 8);

    // Questions Cost Explorer cannot answer are refused before any request.
    let refused = c.call(
        "get_cost_attribution_gap",
        json!({"group_by": "resource_type"}),
    );
    assert_eq!(refused["isError"], true);
    let refused = c.call("get_cost_attribution_gap", json!({"metric": "BilledCost"}));
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(refused.to_string().contains("UnblendedCost"));
    assert_eq!(moto.calls_of("GetCostAndUsage") - before, 8);

    // Compliance answers report why spend is missing (resource-level data refused).
    let check = c.call("check_tag_compliance", json!({"limit": 1}));
    let check = &check["structuredContent"];
    assert!(check.get("spend").is_none());
    assert!(
        check["spend_unavailable"]
            .as_str()
            .unwrap_or_default()
            .contains("GetCostAndUsageWithResources"),
        "{check}"
    );
}
