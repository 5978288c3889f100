//! Cost anomalies over MCP (stdio) on a FOCUS file generated here: 70 days of two resources
//! (one tagged with weekly seasonality, one untagged and flat), lumpy non-usage charges, a
//! planted spike on each, and a huge last day that is still accruing. The tool finds exactly
//! the planted spikes, names the resources and owners behind them, and a decision is recorded,
//! shown as the anomaly's status and audited.

use std::fmt::Write;

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Value, json};

use crate::common::{StdioClient, path_str};

const EC2: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0web";
const BUCKET: &str = "arn:aws:s3:::acme-logs";
const TAGS: &str = r#"{"user:Owner":"web@acme.example","user:Environment":"production","user:CostCenter":"CC-1001","user:Application":"web"}"#;

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap() // a Monday
}

/// The FOCUS CSV: day i of 70.
fn focus_csv() -> String {
    let mut csv = String::from(
        "BillingCurrency,ChargePeriodStart,ChargeCategory,ChargeFrequency,ProviderName,\
         SubAccountId,RegionId,ServiceName,ResourceId,BilledCost,EffectiveCost,Tags\n",
    );
    for i in 0..70i64 {
        let day = start() + Duration::days(i);
        let weekend = day.weekday().number_from_monday() >= 6;
        let mut web = if weekend { 40.0 } else { 100.0 };
        let mut logs = 50.0;
        if i == 60 {
            web += 400.0;
        }
        if i == 65 {
            logs += 300.0;
        }
        if i == 69 {
            logs += 1000.0; // the last day: still accruing, left out
        }
        let row = |csv: &mut String,
                   cat: &str,
                   freq: &str,
                   acct: &str,
                   svc: &str,
                   id: &str,
                   cost: f64,
                   tags: &str| {
            let tags = tags.replace('"', "\"\"");
            let _ = writeln!(
                csv,
                "USD,{day}T00:00:00Z,{cat},{freq},AWS,{acct},us-east-1,{svc},{id},{cost},{cost},\"{tags}\""
            );
        };
        row(
            &mut csv,
            "Usage",
            "Usage-Based",
            "111122223333",
            "Amazon Elastic Compute Cloud",
            EC2,
            web,
            TAGS,
        );
        row(
            &mut csv,
            "Usage",
            "Usage-Based",
            "222233334444",
            "Amazon Simple Storage Service",
            BUCKET,
            logs,
            "",
        );
        // Lumpy non-usage: support bought some days, a credit, a one-time fee.
        if i % 9 == 0 {
            row(
                &mut csv,
                "Purchase",
                "Recurring",
                "111122223333",
                "AWS Support",
                "",
                5000.0,
                "",
            );
        }
        if i == 62 {
            row(
                &mut csv,
                "Credit",
                "One-Time",
                "111122223333",
                "Amazon Elastic Compute Cloud",
                "",
                -900.0,
                "",
            );
            row(
                &mut csv,
                "Usage",
                "One-Time",
                "222233334444",
                "Amazon Route 53",
                "",
                800.0,
                "",
            );
        }
    }
    csv
}

fn ok(result: Value) -> Value {
    assert_ne!(result["isError"], true, "tool error: {result}");
    result["structuredContent"].clone()
}

#[test]
fn planted_spikes_are_found_explained_and_decided() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("focus.csv");
    std::fs::write(&file, focus_csv()).unwrap();
    let file = path_str(&file);
    let (mut c, _) = StdioClient::initialized(&["--demo", "--no-prewarm", "--cost", &file], &[]);
    let args = json!({"dimensions": ["service", "account", "tag"], "tag_keys": ["Owner"]});
    let r = ok(c.call("get_cost_anomalies", args.clone()));
    let found: Vec<(String, String, String, f64, f64, f64)> = r["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["day"].as_str().unwrap().to_string(),
                a["dimension"].as_str().unwrap().to_string(),
                a["value"].as_str().unwrap().to_string(),
                a["actual"].as_f64().unwrap(),
                a["expected"].as_f64().unwrap(),
                a["impact"].as_f64().unwrap(),
            )
        })
        .collect();
    let day60 = "2026-05-01";
    let day65 = "2026-05-06";
    let mut expected = vec![
        (day60, "account", "111122223333", 500.0, 100.0, 400.0),
        (
            day60,
            "service",
            "Amazon Elastic Compute Cloud",
            500.0,
            100.0,
            400.0,
        ),
        (day60, "tag:Owner", "web@acme.example", 500.0, 100.0, 400.0),
        (day65, "account", "222233334444", 350.0, 50.0, 300.0),
        (
            day65,
            "service",
            "Amazon Simple Storage Service",
            350.0,
            50.0,
            300.0,
        ),
        (day65, "tag:Owner", "untagged", 350.0, 50.0, 300.0),
    ];
    let mut got: Vec<(&str, &str, &str, f64, f64, f64)> = found
        .iter()
        .map(|(d, k, v, a, e, i)| (d.as_str(), k.as_str(), v.as_str(), *a, *e, *i))
        .collect();
    got.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    expected.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    assert_eq!(got, expected, "{r}");
    assert_eq!(
        r["checked"],
        json!({"start": "2026-04-26", "end": "2026-05-10"})
    );
    assert_eq!(r["last_day_skipped"], "2026-05-10");
    assert_eq!(r["pending"], 6);
    let notes = r["cost_quality"]["notes"].to_string();
    assert!(notes.contains("rows that are not usage"), "{notes}");

    let by = |dim: &str, value: &str| -> Value {
        r["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["dimension"] == dim && a["value"] == value)
            .unwrap()
            .clone()
    };
    let ec2 = by("service", "Amazon Elastic Compute Cloud");
    assert_eq!(ec2["drivers"][0]["resource_id"], EC2);
    assert_eq!(ec2["drivers"][0]["owner"], "web@acme.example");
    assert_eq!(ec2["drivers"][0]["impact"], 400.0);
    assert_eq!(ec2["drivers_total"], 1);
    assert_eq!(ec2["untagged_share_pct"], 0.0);
    assert_eq!(ec2["impact_pct"], 400.0);
    let logs = by("tag:Owner", "untagged");
    assert_eq!(logs["drivers"][0]["resource_id"], BUCKET);
    assert_eq!(logs["drivers"][0]["owner"], Value::Null);
    assert_eq!(logs["untagged_share_pct"], 100.0);
    assert_eq!(logs["impact_pct"], 600.0);

    // The same anomaly has the same id on every run.
    let again = ok(c.call("get_cost_anomalies", args.clone()));
    assert_eq!(again["anomalies"], r["anomalies"]);

    // A decision: recorded with who and why, the status changes, the call is audited.
    let id = logs["anomaly_id"].as_str().unwrap().to_string();
    let mut decide = args.clone();
    decide["decide"] = json!({"anomaly_id": id, "decision": "planned",
                              "reason": "backfill of the logs bucket", "decided_by": "alice"});
    let d = ok(c.call("get_cost_anomalies", decide));
    assert_eq!(d["recorded"]["decision"], "planned");
    assert_eq!(d["recorded"]["decided_by"], "alice");
    assert_eq!(d["recorded"]["decided_by_principal"], "local");
    assert_eq!(d["pending"], 5);
    let decided: Vec<&Value> = d["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] != "pending")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["anomaly_id"], id.as_str());
    assert_eq!(decided[0]["status"], "planned");
    assert_eq!(
        decided[0]["decision"]["reason"],
        "backfill of the logs bucket"
    );

    let trail = ok(c.call("get_audit_trail", json!({"tool": "get_cost_anomalies"})));
    assert_eq!(trail["total"], 3, "{trail}");
    let newest = &trail["rows"][0];
    assert_eq!(newest["outcome"], "ok");
    assert_eq!(newest["principal"], "local");
    let arguments = newest["arguments"].as_str().unwrap();
    assert!(
        arguments.contains(&id) && arguments.contains("planned"),
        "{arguments}"
    );

    // An unknown id is refused with what to do.
    let mut bad = args;
    bad["decide"] = json!({"anomaly_id": "anm-0000000000000000", "decision": "dismissed",
                           "reason": "noise"});
    let e = c.call("get_cost_anomalies", bad);
    assert_eq!(e["isError"], true, "{e}");
    assert!(
        e["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("list them first"),
        "{e}"
    );
}

/// The demo's daily costs carry planted spikes; the CLI finds them.
#[test]
fn the_demo_shows_its_planted_spikes() {
    let (code, stdout, stderr) = crate::common::run(
        &[
            "anomalies",
            "--demo",
            "--format",
            "json",
            "--data-dir",
            "/nonexistent-tagwarden",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    let days: std::collections::BTreeSet<&str> = r["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["day"].as_str().unwrap())
        .collect();
    let last =
        NaiveDate::parse_from_str(r["last_day_skipped"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let planted: std::collections::BTreeSet<String> = [2, 5, 9]
        .iter()
        .map(|back| (last - Duration::days(*back)).to_string())
        .collect();
    let planted: std::collections::BTreeSet<&str> = planted.iter().map(String::as_str).collect();
    assert_eq!(days, planted, "{stdout}");
}

/// One Cost Explorer day: `ResultsByTime` entry with `(keys, amount)` groups.
fn ce_day(day: NaiveDate, groups: &[(Vec<&str>, f64)]) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|(keys, amount)| {
            json!({"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": format!("{amount:.2}"), "Unit": "USD"}}})
        })
        .collect();
    json!({
        "TimePeriod": {"Start": day.to_string(), "End": (day + Duration::days(1)).to_string()},
        "Total": {},
        "Groups": groups,
        "Estimated": false
    })
}

/// Cost Explorer's daily series (against moto, answers injected in request order): one request
/// grouped by service and account, one per required key; a spike planted on one day in EC2's
/// untagged spend is found in the service, account and `Team` series — and only there — with
/// the untagged share known only for the tag series.
#[test]
fn cost_explorer_daily_series_find_the_planted_spike() {
    const POLICY: &str =
        r#"{"required_tags": [{"name": "Team", "allowed_values": ["payments", "search"]}]}"#;
    let moto = crate::common::moto::Moto::start_seeded();
    let today = chrono::Utc::now().date_naive();
    let first = today - Duration::days(147);
    let spike = today - Duration::days(5);
    let (mut by_service, mut by_team) = (Vec::new(), Vec::new());
    for i in 0..147 {
        let day = first + Duration::days(i);
        let weekend = day.weekday().number_from_monday() >= 6;
        let ec2 = if weekend { 60.0 } else { 100.0 } + if day == spike { 300.0 } else { 0.0 };
        by_service.push(ce_day(
            day,
            &[
                (
                    vec!["Amazon Elastic Compute Cloud - Compute", "111122223333"],
                    ec2,
                ),
                (vec!["Amazon Simple Storage Service", "111122223333"], 20.0),
            ],
        ));
        let untagged = if weekend { 30.0 } else { 50.0 } + if day == spike { 300.0 } else { 0.0 };
        by_team.push(ce_day(
            day,
            &[
                (vec!["Team$payments"], if weekend { 50.0 } else { 70.0 }),
                (vec!["Team$"], untagged),
            ],
        ));
    }
    let answer = |days: Vec<Value>| json!({"ResultsByTime": days, "GroupDefinitions": [], "DimensionValueAttributes": []});
    moto.queue_cost_results(&[answer(by_service), answer(by_team)]);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, POLICY).unwrap();
    let env = moto.env();
    let before = moto.calls_of("GetCostAndUsage");
    let (code, stdout, stderr) = crate::common::run(
        &[
            "anomalies",
            "--demo",
            "--cost-explorer",
            "--policy",
            &path_str(&policy),
            "--format",
            "json",
            "--data-dir",
            "/nonexistent-tagwarden",
        ],
        &crate::common::moto::env_refs(&env),
    );
    assert_eq!(code, 0, "{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    let found: Vec<(String, String, String)> = r["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["dimension"].as_str().unwrap().to_string(),
                a["value"].as_str().unwrap().to_string(),
                a["day"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let day = spike.to_string();
    let mut expected = vec![
        (
            "account".to_string(),
            "111122223333".to_string(),
            day.clone(),
        ),
        (
            "service".to_string(),
            "Amazon Elastic Compute Cloud - Compute".to_string(),
            day.clone(),
        ),
        ("tag:Team".to_string(), "untagged".to_string(), day.clone()),
    ];
    let mut found_sorted = found.clone();
    found_sorted.sort();
    expected.sort();
    assert_eq!(found_sorted, expected, "{stdout}");
    for a in r["anomalies"].as_array().unwrap() {
        // The rise is exactly the planted 300 over a flat same-weekday baseline.
        assert_eq!(a["impact"], 300.0, "{a}");
        let share = &a["untagged_share_pct"];
        if a["dimension"] == "tag:Team" {
            assert_eq!(share, 100.0, "{a}");
        } else {
            assert!(share.is_null(), "service/account tags are unknown: {a}");
        }
    }
    // One request by service and account, one for the one required key: 2, reported and
    // charged.
    assert_eq!(moto.calls_of("GetCostAndUsage") - before, 2);
    assert_eq!(r["cost_quality"]["api_calls"], 2, "{}", r["cost_quality"]);
    assert_eq!(r["cost_quality"]["estimated_api_charge_usd"], 0.02);
    assert_eq!(r["cost_quality"]["source"], "AWS Cost Explorer");
}
