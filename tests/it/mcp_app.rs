//! The MCP App (`io.modelcontextprotocol/ui`): over stdio, the server declares the extension,
//! exactly the four tools with a view carry `_meta.ui` (a `ui://tagwarden/` URI, visible to the
//! model and the app), and each view reads as one self-contained HTML page with the MCP App
//! MIME type and an empty content-security policy; in the system Chromium, a host page played
//! by tests/js/app_host.mjs loads those pages, sends them real results of the binary on
//! `--demo`, and the figures shown are the results'; approving and denying in the review view
//! goes through the host to review_virtual_tags and reaches the store. Screenshots are kept
//! under target/report-artifacts/ (mcp-app-*.png).

use std::collections::BTreeMap;
use std::process::Command;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tagwarden::{HistoryDb, MemberRecord, NewSnapshot, Severity, snapshot_filters};

use crate::common::{StdioClient, bin, path_str, repo};

const DEMO: &[&str] = &["--demo"];
const MIME: &str = "text/html;profile=mcp-app";

/// The tools that have a view, and the view's URI.
fn expected_views() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("check_tag_compliance", "ui://tagwarden/compliance"),
        ("get_cost_attribution_gap", "ui://tagwarden/cost-gap"),
        ("get_violation_history", "ui://tagwarden/history"),
        ("review_virtual_tags", "ui://tagwarden/review"),
    ])
}

#[test]
fn extension_tool_meta_and_self_contained_views_over_stdio() {
    let (mut c, init) = StdioClient::initialized(DEMO, &[]);
    assert_eq!(
        init["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/ui"]["mimeTypes"],
        json!([MIME]),
        "{init}"
    );

    let tools = c.request("tools/list", json!({}));
    let mut with_view = BTreeMap::new();
    for t in tools["result"]["tools"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        if let Some(ui) = t.get("_meta").and_then(|m| m.get("ui")) {
            assert_eq!(ui["visibility"], json!(["model", "app"]), "{name}");
            with_view.insert(name, ui["resourceUri"].as_str().unwrap());
        }
        // The exported schemas are the listed definitions, _meta included.
        let file = repo().join(format!("tools/{name}.json"));
        let exported: Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(
            exported.get("_meta"),
            t.get("_meta"),
            "{name}: tools/{name}.json"
        );
    }
    assert_eq!(with_view, expected_views());

    let listed = c.request("resources/list", json!({}));
    let resources = listed["result"]["resources"].as_array().unwrap();
    for uri in expected_views().values() {
        let r = resources
            .iter()
            .find(|r| r["uri"] == *uri)
            .unwrap_or_else(|| panic!("{uri} not in resources/list: {listed}"));
        assert_eq!(r["mimeType"], MIME, "{r}");

        let read = c.request("resources/read", json!({"uri": uri}));
        let contents = &read["result"]["contents"][0];
        assert_eq!(contents["uri"], *uri);
        assert_eq!(contents["mimeType"], MIME, "{uri}");
        assert_eq!(contents["_meta"]["ui"]["prefersBorder"], true, "{uri}");
        assert_eq!(
            contents["_meta"]["ui"]["csp"],
            json!({"connectDomains": [], "resourceDomains": []}),
            "{uri}"
        );
        let html = contents["text"].as_str().unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{uri}");
        let view = uri.rsplit('/').next().unwrap();
        assert!(html.contains(&format!("data-view=\"{view}\"")), "{uri}");
        let lower = html.to_ascii_lowercase();
        for external in ["http://", "https://", "//cdn"] {
            assert!(!lower.contains(external), "{uri} names {external}");
        }
        // Nothing to load: no src or href attribute at all (scripts, styles and pictures are
        // inline), so the host's default content-security policy needs no exception.
        for attribute in [" src=", " href=", "<link", "<iframe", "<object", "<embed"] {
            assert!(!lower.contains(attribute), "{uri} has {attribute}");
        }
        assert!(lower.contains("<script>") && lower.contains("<style>") && lower.contains("<svg"));
    }
    let missing = c.request("resources/read", json!({"uri": "ui://tagwarden/nope"}));
    assert_eq!(missing["error"]["code"], -32002, "{missing}");

    // The text content is still the whole answer, for hosts without the extension.
    let r = c.call("check_tag_compliance", json!({"limit": 5}));
    let text = r["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        r["structuredContent"]
    );
}

/// Runs tests/js/app_host.mjs against the binary with a fresh data directory: its JSON answer.
fn play_host(data_dir: &std::path::Path) -> Value {
    let (node, chromium) = crate::common::browser();
    let shots = crate::common::artifacts();
    for name in ["compliance", "review", "cost-gap", "history"] {
        let _ = std::fs::remove_file(shots.join(format!("mcp-app-{name}.png")));
    }
    let out = Command::new(node)
        .arg(repo().join("tests/js/app_host.mjs"))
        .arg(bin())
        .arg(data_dir)
        .arg(&shots)
        .arg(&chromium)
        .current_dir(repo().join("tests/js"))
        .env_remove("REDIS_URL")
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "app_host.mjs failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["compliance", "review", "cost-gap", "history"] {
        let png = std::fs::read(shots.join(format!("mcp-app-{name}.png"))).expect("a screenshot");
        assert_eq!(&png[1..4], b"PNG", "mcp-app-{name}.png");
    }
    serde_json::from_slice(&out.stdout).expect("app_host.mjs prints JSON")
}

/// Five weekly snapshots of the whole estate before today's, so the trend has a line: the
/// effective score rising from 58% to 66%, the native one from 50% to 54%.
fn seed_history(data_dir: &std::path::Path, policy_hash: &str) {
    let store = HistoryDb::open(&data_dir.join("history.db")).unwrap();
    let today = Utc::now().date_naive();
    for week in 0..5usize {
        let day = today - chrono::Days::new(7 * (5 - week as u64));
        let in_scope = 5000;
        let compliant = 2900 + 100 * week;
        let violations = 3300 - 120 * week;
        let mut by_violation = BTreeMap::new();
        by_violation.insert("missing_required_tag:Owner".to_string(), 900 - 40 * week);
        store
            .insert(&NewSnapshot {
                taken_at: Utc.from_utc_datetime(&day.and_hms_opt(9, 0, 0).unwrap()),
                trigger: "cli".into(),
                source: "demo".into(),
                policy_hash: policy_hash.into(),
                filters: snapshot_filters(&[], &[], &[], &[], Severity::Low),
                resources: in_scope,
                in_scope,
                compliant,
                violations,
                score_pct: Some(compliant as f64 * 100.0 / in_scope as f64),
                native_score_pct: Some(50.0 + week as f64),
                spend_score_pct: None,
                counts: json!({}),
                by_violation,
                members: vec![MemberRecord {
                    resource_id: "arn:aws:s3:::b".into(),
                    resource_type: "s3:bucket".into(),
                    region: "global".into(),
                    account: "1".into(),
                    name: "b".into(),
                    tags: vec![],
                    violations: vec![],
                    failing: false,
                    in_scope: true,
                }],
            })
            .unwrap();
    }
}

#[test]
fn views_render_real_results_in_chromium_and_review_goes_through_the_host() {
    // The demo estate's score from the command line: what the compliance view must show.
    let data_cli = tempfile::tempdir().unwrap();
    let check =
        crate::common::check_json(&["--demo", "--data-dir", &path_str(data_cli.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    seed_history(data.path(), check["policy_hash"].as_str().unwrap());
    let a = play_host(data.path());
    assert_eq!(a["errors"], json!([]), "{a}");
    assert_eq!(a["blocked"], json!([]), "no request leaves the view: {a}");

    // Compliance: the gauge shows the result's scores.
    let c = &a["compliance"];
    assert_eq!(c["protocol_version"], "2026-01-26", "{a}");
    let score = c["result_score"].as_f64().unwrap();
    assert!(score > 0.0 && score < 100.0, "{a}");
    assert_eq!(c["score_text"], format!("{score:.2}%"), "{a}");
    assert_eq!(
        c["score_data"].as_str().unwrap().parse::<f64>().unwrap(),
        score
    );
    let native = c["result_native_score"].as_f64().unwrap();
    assert_eq!(c["native_text"], format!("{native:.2}%"), "{a}");
    assert!(c["offenders"].as_u64().unwrap() > 0, "{a}");
    assert!(c["key_bars"].to_string().contains("Owner"), "{a}");
    // The same figure the command line prints for the demo estate.
    assert_eq!(check["score_pct"].as_f64(), Some(score));

    // Hostile tag values are text.
    let h = &a["hostile"];
    assert_eq!(h["shown_as_text"], true, "{a}");
    assert_eq!(h["key_as_text"], true, "{a}");
    assert_eq!(h["images"], 0, "{a}");
    assert_eq!(h["bold"], 0, "{a}");
    assert_ne!(h["title"], "pwned", "{a}");

    // Cost gap and history: the headline figures.
    let g = &a["gap"];
    assert_eq!(
        g["gap_data"].as_str().unwrap().parse::<f64>().unwrap(),
        g["result_unattributable"].as_f64().unwrap(),
        "{a}"
    );
    let gap_pct = g["result_gap_pct"].as_f64().unwrap();
    assert!(
        g["gap_text"]
            .as_str()
            .unwrap()
            .contains(&format!("{gap_pct:.2}%")),
        "{a}"
    );
    let hist = &a["history"];
    assert_eq!(hist["points"], 6, "five seeded weeks and today: {a}");
    assert_eq!(hist["direction"], "improving", "{a}");
    assert_eq!(hist["shown_direction"], "improving", "{a}");
    assert_eq!(
        hist["score_data"].as_str().unwrap().parse::<f64>().unwrap(),
        hist["result_last_score"].as_f64().unwrap()
    );
    assert_eq!(hist["polylines"], 2, "effective and native lines: {a}");

    // Review: the view called review_virtual_tags through the host with the clicked ids,
    // then listed again; the totals it shows went down by one per decision.
    let r = &a["review"];
    let total = r["result_total"].as_u64().unwrap();
    assert!(total >= 2, "suggest_tags proposed pending tags: {a}");
    assert_eq!(r["shown_total"].as_u64(), Some(total));
    assert_eq!(r["total_after_approve"].as_u64(), Some(total - 1), "{a}");
    assert_eq!(r["total_after_deny"].as_u64(), Some(total - 2), "{a}");
    assert_eq!(r["shows_approved_again"], 0, "{a}");
    let (approved, denied) = (
        r["approved_id"].as_i64().unwrap(),
        r["denied_id"].as_i64().unwrap(),
    );
    assert_ne!(approved, denied);
    let calls = r["view_calls"].as_array().unwrap();
    let decisions: Vec<&Value> = calls
        .iter()
        .filter(|c| c["arguments"]["action"] != "list")
        .collect();
    assert_eq!(decisions.len(), 2, "{a}");
    for (call, action, id) in [
        (decisions[0], "approve", approved),
        (decisions[1], "deny", denied),
    ] {
        assert_eq!(call["name"], "review_virtual_tags", "{a}");
        assert_eq!(call["arguments"]["action"], action, "{a}");
        assert_eq!(call["arguments"]["ids"], json!([id]), "{a}");
        assert!(
            call["arguments"]["reason"].as_str().unwrap().len() >= 3,
            "{a}"
        );
    }
    assert!(
        calls.iter().all(|c| c["name"] == "review_virtual_tags"),
        "{a}"
    );
    assert_eq!(calls.len(), 4, "each decision, then the list again: {a}");
    assert!(a["size_changes"].as_u64().unwrap() > 0, "{a}");

    // The decisions are in the store the server keeps.
    let (mut c, _) =
        StdioClient::initialized(DEMO, &[("TAGWARDEN_DATA_DIR", &path_str(data.path()))]);
    let decided = c.call(
        "review_virtual_tags",
        json!({"ids": [approved, denied], "limit": 10}),
    );
    let tags = decided["structuredContent"]["tags"].as_array().unwrap();
    let status = |id: i64| {
        tags.iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].clone())
    };
    assert_eq!(status(approved), Some(json!("approved")), "{decided}");
    assert_eq!(status(denied), Some(json!("denied")), "{decided}");
}
