//! The compliance report: its figures equal check_tag_compliance's and
//! get_cost_attribution_gap's over MCP stdio; `tagwarden report` in every format; the change
//! and trend from real snapshots; the HTML report rendered offline in the system Chromium (no
//! console error, no request leaves the file, the score shown is the tool's) with a screenshot
//! kept under target/report-artifacts/; and attacker-controlled tag values printed as text.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{StdioClient, artifacts, check_json, path_str, repo, run};

fn structured(c: &mut StdioClient, tool: &str, args: Value) -> Value {
    let r = c.call(tool, args);
    assert_ne!(r["isError"], true, "{tool}: {r}");
    r["structuredContent"].clone()
}

/// Report (json), check and gap for one scope, compared figure by figure.
fn assert_same_figures(c: &mut StdioClient, scope: Value) {
    let mut check_args = scope.clone();
    check_args["limit"] = json!(0);
    let check = structured(c, "check_tag_compliance", check_args);
    let gap = structured(c, "get_cost_attribution_gap", scope.clone());
    let mut report_args = scope.clone();
    report_args["format"] = json!("json");
    let out = structured(c, "generate_compliance_report", report_args);
    let report: Value = serde_json::from_str(out["content"].as_str().unwrap()).unwrap();
    assert_eq!(out["bytes"], out["content"].as_str().unwrap().len());
    let s = &report["summary"];
    assert_eq!(&out["summary"], s, "the structured summary is the report's");
    assert_eq!(s["score_pct"], check["score_pct"], "{scope}");
    assert_eq!(s["native_score_pct"], check["native_score_pct"]);
    assert_eq!(s["resources"], check["resources"]);
    assert_eq!(s["in_scope"], check["in_scope"]);
    assert_eq!(s["compliant"], check["effective"]["compliant"]);
    assert_eq!(s["non_compliant"], check["effective"]["non_compliant"]);
    assert_eq!(s["violations"], check["effective"]["violations"]);
    assert_eq!(s["violations"], check["violations_total"]);
    assert_eq!(s["by_severity"], check["by_severity"]);
    assert_eq!(report["policy"]["hash"], check["policy_hash"]);
    let spend = &s["spend"];
    let cs = &check["spend"];
    assert_eq!(spend["in_scope_spend"], cs["in_scope_spend"]);
    assert_eq!(spend["compliant_spend"], cs["compliant_spend"]);
    assert_eq!(
        spend["spend_weighted_score_pct"],
        cs["spend_weighted_score_pct"]
    );
    let non_compliant =
        cs["in_scope_spend"].as_f64().unwrap() - cs["compliant_spend"].as_f64().unwrap();
    assert!((spend["non_compliant_spend"].as_f64().unwrap() - non_compliant).abs() < 1e-6);
    assert_eq!(report["period"], cs["period"]);
    assert_eq!(spend["unattributed_spend"], gap["unattributable"]);
    assert_eq!(spend["total_spend"], gap["total"]);
    assert_eq!(spend["unattributed_pct"], gap["gap_pct"]);
    for key in gap["by_key"].as_array().unwrap() {
        let row = report["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == key["key"])
            .unwrap_or_else(|| panic!("no coverage row for {}", key["key"]));
        assert_eq!(row["attributable_spend"], key["attributable"]);
        assert_eq!(row["unattributable_spend"], key["unattributable"]);
    }
    // Groups: the same counts as check's by_account / by_type / by_region, the rest summed.
    for (mine, theirs) in [
        ("by_account", "by_account"),
        ("by_type", "by_type"),
        ("by_region", "by_region"),
    ] {
        let b = &report[mine];
        let listed = b["groups"].as_array().unwrap();
        let all = check[theirs].as_array().unwrap();
        assert_eq!(b["groups_total"], all.len(), "{mine}");
        for g in listed {
            let t = all.iter().find(|t| t["name"] == g["name"]).unwrap();
            for f in [
                "in_scope",
                "compliant",
                "non_compliant",
                "violations",
                "score_pct",
            ] {
                assert_eq!(g[f], t[f], "{mine} {} {f}", g["name"]);
            }
        }
        let sum = |rows: &mut dyn Iterator<Item = &Value>| -> u64 {
            rows.map(|g| g["in_scope"].as_u64().unwrap()).sum()
        };
        let others = b["others"]
            .as_object()
            .map(|o| o["in_scope"].as_u64().unwrap())
            .unwrap_or(0);
        assert_eq!(
            sum(&mut listed.iter()) + others,
            s["in_scope"].as_u64().unwrap(),
            "{mine}"
        );
    }
    // Offenders: every non-compliant resource is counted, most costly first.
    let o = &report["offenders"];
    assert_eq!(o["total"], check["effective"]["non_compliant"]);
    let costs: Vec<f64> = o["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["cost"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    assert!((o["total_cost"].as_f64().unwrap() - non_compliant).abs() < 1e-3);
}

#[test]
fn report_figures_equal_check_tag_compliance_and_the_cost_gap() {
    let (mut c, _) = StdioClient::initialized(&["--demo", "--no-prewarm"], &[]);
    assert_same_figures(&mut c, json!({}));
    assert_same_figures(
        &mut c,
        json!({"accounts": ["444455556666"], "resource_types": ["ec2:*"]}),
    );
    // Every format comes back as text with the same summary; unknown formats are refused.
    for format in ["markdown", "html", "csv"] {
        let out = structured(
            &mut c,
            "generate_compliance_report",
            json!({"format": format, "top": 3}),
        );
        assert_eq!(out["format"], format);
        let text = out["content"].as_str().unwrap();
        let score = format!("{:.2}", out["summary"]["score_pct"].as_f64().unwrap());
        assert!(text.contains(&score), "{format} shows the score {score}");
    }
    let r = c.call("generate_compliance_report", json!({"format": "pdf"}));
    assert_eq!(r["isError"], true, "{r}");
    let r = c.call("generate_compliance_report", json!({"owner_key": "Nope"}));
    assert_eq!(r["isError"], true, "{r}");
    assert!(r.to_string().contains("owner_key"), "{r}");
}

#[test]
fn cli_writes_every_format_and_the_top_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let check = check_json(&["--demo", "--data-dir", &data], &[]);
    let score = check["score_pct"].as_f64().unwrap();
    let (code, md, err) = run(
        &["report", "--demo", "--data-dir", &data, "--top", "3"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(md.starts_with("# Tag compliance report"), "{md}");
    assert!(md.contains(&format!("**{score:.2}%**")), "{md}");
    assert!(md.contains("## By Owner"), "{md}");
    let (code, csv, err) = run(
        &["report", "--demo", "--data-dir", &data, "--format", "csv"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("section,item,metric,value"));
    assert!(
        csv.lines()
            .any(|l| l == format!("summary,,score_pct,{score}")),
        "{csv}"
    );
    let out = dir.path().join("r.json");
    let (code, stdout, err) = run(
        &[
            "report",
            "--demo",
            "--data-dir",
            &data,
            "--format",
            "json",
            "--top",
            "2",
            "--out",
            &path_str(&out),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty(), "--out writes nothing on stdout");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["offenders"]["items"].as_array().unwrap().len(), 2);
    assert_eq!(report["by_owner"]["groups"].as_array().unwrap().len(), 2);
    assert!(report["by_owner"]["others"]["in_scope"].as_u64().unwrap() > 0);
    assert_eq!(report["by_owner"]["dimension"], "Owner");
    // No history in the data dir: no trend, no change, and a note saying how to get them.
    assert_eq!(report["trend"], json!([]));
    assert_eq!(report["summary"]["since_previous"], Value::Null);
    assert!(
        report["notes"].to_string().contains("snapshot"),
        "{}",
        report["notes"]
    );
}

#[test]
fn change_and_trend_come_from_the_snapshots_of_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let day = |back: i64| (chrono::Utc::now() - chrono::Duration::days(back)).to_rfc3339();
    // 40 days ago a smaller estate (another score), yesterday the current one.
    let (old_at, new_at) = (day(40), day(1));
    let old = check_json(
        &[
            "--demo",
            "--demo-size",
            "2000",
            "--data-dir",
            &data,
            "--snapshot",
            "--taken-at",
            &old_at,
        ],
        &[],
    );
    let new = check_json(
        &[
            "--demo",
            "--data-dir",
            &data,
            "--snapshot",
            "--taken-at",
            &new_at,
        ],
        &[],
    );
    let (code, stdout, err) = run(
        &["report", "--demo", "--data-dir", &data, "--format", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let s = &report["summary"];
    let now = s["score_pct"].as_f64().unwrap();
    let previous = &s["since_previous"];
    assert_eq!(previous["snapshot_id"], new["snapshot_id"]);
    assert_eq!(previous["score_change_pct_points"], 0.0);
    assert_eq!(previous["violations_change"], 0);
    let month = &s["since_30_days"];
    assert_eq!(month["snapshot_id"], old["snapshot_id"]);
    assert_eq!(month["score_pct"], old["score_pct"]);
    let expected = ((now - old["score_pct"].as_f64().unwrap()) * 100.0).round() / 100.0;
    assert_eq!(month["score_change_pct_points"].as_f64().unwrap(), expected);
    assert_eq!(
        month["violations_change"].as_i64().unwrap(),
        new["violations_total"].as_i64().unwrap() - old["violations_total"].as_i64().unwrap()
    );
    // Both within the 90-day trend, oldest first.
    let trend = report["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 2, "{trend:?}");
    assert_eq!(trend[0]["score_pct"], old["score_pct"]);
    assert_eq!(trend[1]["score_pct"], new["score_pct"]);
    // A scope without snapshots has none.
    let (_, stdout, _) = run(
        &[
            "report",
            "--demo",
            "--data-dir",
            &data,
            "--format",
            "json",
            "--only-regions",
            "eu-west-1",
        ],
        &[],
    );
    let scoped: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(scoped["summary"]["since_previous"], Value::Null);
    assert_eq!(scoped["trend"], json!([]));
}

/// Runs tests/js/render_report.mjs: (its JSON answer, the screenshot's path).
fn render_in_chromium(html: &std::path::Path, name: &str) -> (Value, PathBuf) {
    let (node, chromium) = crate::common::browser();
    let png = artifacts().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let out = Command::new(node)
        .arg(repo().join("tests/js/render_report.mjs"))
        .arg(html)
        .arg(&png)
        .arg(&chromium)
        .current_dir(repo().join("tests/js"))
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "render_report.mjs failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("render_report.mjs prints JSON");
    (answer, png)
}

#[test]
fn html_report_opens_offline_in_chromium_and_shows_the_score() {
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let html = artifacts().join("demo-report.html");
    let (code, _, err) = run(
        &[
            "report",
            "--demo",
            "--data-dir",
            &data,
            "--format",
            "html",
            "--out",
            &path_str(&html),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&html).unwrap();
    // Self-contained: no script, no link to anything, one document.
    assert!(!text.contains("<script"), "the report runs no script");
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "nothing external"
    );
    let (code, stdout, err) = run(
        &["report", "--demo", "--data-dir", &data, "--format", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let score = serde_json::from_str::<Value>(&stdout).unwrap()["summary"]["score_pct"]
        .as_f64()
        .unwrap();
    let (answer, png) = render_in_chromium(&html, "demo-report");
    assert_eq!(answer["errors"], json!([]), "{answer}");
    assert_eq!(answer["blocked"], json!([]), "{answer}");
    assert_eq!(answer["score_text"], format!("{score:.2}%"), "{answer}");
    assert_eq!(
        answer["score_data"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        score
    );
    let sections = answer["sections"].to_string();
    for s in [
        "Executive summary",
        "Score trend",
        "Worst offenders",
        "By account",
        "By Owner",
        "Data quality",
    ] {
        assert!(sections.contains(s), "{s} in {sections}");
    }
    let png_bytes = std::fs::read(&png).expect("the screenshot");
    assert_eq!(&png_bytes[1..4], b"PNG");
    assert!(
        png_bytes.len() > 50_000,
        "a full-page screenshot ({} bytes)",
        png_bytes.len()
    );
}

#[test]
fn tag_values_print_as_text_in_html_markdown_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("hostile.json");
    let evil = "<script>window.__pwned=1</script>";
    std::fs::write(
        &inventory,
        json!({"ResourceTagMappingList": [
            {"ResourceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-evil",
             "Tags": [{"Key": "Name", "Value": evil},
                      {"Key": "Owner", "Value": "<img src=x onerror=alert(1)>"},
                      {"Key": "CostCenter", "Value": "=HYPERLINK(\"http://x\")"}]}
        ]})
        .to_string(),
    )
    .unwrap();
    let inv = path_str(&inventory);
    let data = path_str(dir.path());
    let html = artifacts().join("hostile-report.html");
    let (code, _, err) = run(
        &[
            "report",
            "--inventory",
            &inv,
            "--data-dir",
            &data,
            "--format",
            "html",
            "--out",
            &path_str(&html),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(!text.contains("<script"), "a tag value became markup");
    assert!(!text.contains("<img"), "a tag value became markup");
    assert!(
        text.contains("&lt;script&gt;window.__pwned=1&lt;&#x2f;script&gt;"),
        "escaped name"
    );
    let (answer, _) = render_in_chromium(&html, "hostile-report");
    assert_eq!(answer["errors"], json!([]), "{answer}");
    assert_eq!(
        answer["blocked"],
        json!([]),
        "the img never loads: {answer}"
    );
    let (code, md, err) = run(&["report", "--inventory", &inv, "--data-dir", &data], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!md.contains("<script") && !md.contains("<img"), "{md}");
    assert!(md.contains("&lt;script&gt;"), "{md}");
    let (code, csv, err) = run(
        &[
            "report",
            "--inventory",
            &inv,
            "--data-dir",
            &data,
            "--format",
            "csv",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        !csv.contains(",=HYPERLINK"),
        "a cell a spreadsheet would run: {csv}"
    );
}
